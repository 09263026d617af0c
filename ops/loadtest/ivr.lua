-- wrk script: whole IVR calls against a FreeSWITCH (mod_httapi) channel, one connection per thread.
-- Each call: the answer request (new session id) → language key → main-menu key 2 (report) → the
-- recording is skipped (empty continue) → the hang-up. Every request is one IVR step; wrk's latency
-- figures are per step. Reads LOADTEST_CHANNEL and LOADTEST_AUTH (base64 user:password).
local channel = os.getenv("LOADTEST_CHANNEL")
local auth = "Basic " .. os.getenv("LOADTEST_AUTH")
local thread_id = 0
local counter = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

local stage = 0
local session = ""
local next_path = nil

local function post(path, body)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, body)
end

function request()
  if stage == 0 or next_path == nil then
    counter = counter + 1
    session = string.format("load-%d-%d-%d", tid, os.time(), counter)
    stage = 1
    return post("/webhooks/freeswitch/" .. channel .. "/voice",
      "session_id=" .. session .. "&Caller-Caller-ID-Number=%2B7701" .. string.format("%07d", (tid * 100000 + counter) % 10000000))
  elseif stage == 1 then
    return post(next_path, "session_id=" .. session .. "&komek_digits=1")
  elseif stage == 2 then
    return post(next_path, "session_id=" .. session .. "&komek_digits=2")
  elseif stage == 3 then
    return post(next_path, "session_id=" .. session)
  else
    return post("/webhooks/freeswitch/" .. channel .. "/voice",
      "session_id=" .. session .. "&exiting=true&variable_hangup_cause=NORMAL_CLEARING")
  end
end

function response(status, headers, body)
  if status ~= 200 then
    stage = 0
    next_path = nil
    return
  end
  local action = string.match(body, 'action="https?://[^/"]+(/webhooks/[^"]+)"')
  if action then
    next_path = string.gsub(action, "&amp;", "&")
  end
  if stage >= 4 then
    stage = 0
    next_path = nil
  else
    stage = stage + 1
  end
end
