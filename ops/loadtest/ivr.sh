#!/usr/bin/env bash
# IVR step latency on loopback: starts a throw-away `komek serve` (SQLite in a temp folder, port 18090),
# adds a FreeSWITCH channel and a duty roster, then drives whole calls with wrk (ops/loadtest/ivr.lua)
# for a bounded time. Loopback only; stops the server it started.
#   apt-get install wrk
#   cargo build --release && ops/loadtest/ivr.sh [SECONDS=20] [CONNECTIONS=4]
# With LOADTEST_PG=postgres://postgres@127.0.0.1:5432/postgres it runs on a throw-away PostgreSQL
# database (created and dropped) instead of SQLite.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
conns=${2:-4}
[ "$secs" -le 120 ] || { echo "at most 120 seconds" >&2; exit 1; }
bin=${KOMEK_BIN:-${CARGO_TARGET_DIR:-target}/release/komek}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set KOMEK_BIN)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
dir=$(mktemp -d)
export KOMEK_DATA_DIR="$dir" KOMEK_BIND=127.0.0.1:18090 KOMEK_PUBLIC_URL=http://127.0.0.1:18090 KOMEK_LOG=warn
pgdb=""
if [ -n "${LOADTEST_PG:-}" ]; then
    pgdb="komek_loadtest_$$"
    psql -q "$LOADTEST_PG" -c "CREATE DATABASE $pgdb"
    export KOMEK_DATABASE_URL="${LOADTEST_PG%/*}/$pgdb"
fi
"$bin" org add --slug loadtest --name "Load test" --country KZ >/dev/null
channel=$("$bin" channel add --secret komek:loadtest --org loadtest --provider freeswitch --language kk --json \
    | sed 's/.*"id":"\([^"]*\)".*/\1/')
"$bin" roster set --org loadtest --kind general --numbers +77011110001,+77011110002 >/dev/null
"$bin" serve >"$dir/serve.log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
    [ -z "$pgdb" ] || psql -q "$LOADTEST_PG" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" || true
    rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 50); do curl -fsS http://127.0.0.1:18090/healthz >/dev/null 2>&1 && break; sleep 0.2; done
LOADTEST_CHANNEL=$channel LOADTEST_AUTH=$(printf 'komek:loadtest' | base64) \
    wrk -t"$conns" -c"$conns" -d"${secs}s" --latency -s ops/loadtest/ivr.lua http://127.0.0.1:18090
if [ -n "$pgdb" ]; then
    echo "calls stored: $(psql -Atq "$KOMEK_DATABASE_URL" -c 'select count(*) from calls')"
else
    echo "calls stored: $(sqlite3 "$dir/komek.db" 'select count(*) from calls' 2>/dev/null || echo '?')"
fi
