//! Whole phone calls through the real webhooks, for every voice provider (Twilio TwiML, Vonage NCCO,
//! Africa's Talking XML, FreeSWITCH httapi): each menu path, an early hang-up, no input, the duty roster
//! dialled with nobody answering, the silent path. Every call must become exactly one voice report whose
//! case carries the right flags; a repeated callback gets the same answer and writes nothing; every
//! document parses as XML or JSON; with the database down the caller hears the fallback; prompts are
//! served cacheably and nothing else is.
//!
//! Requests are built and signed here, independently of the gateways crate (Twilio HMAC-SHA1 over the
//! full URL with the query, Vonage HS256 JWT with the body hash, FreeSWITCH Basic auth).

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::backend_tests;
use crate::helpers::{AppOptions, Backend, Outage, PUBLIC_URL, TestApp, spawn_app, spawn_app_with};

backend_tests!(
    every_voice_provider_turns_each_menu_path_into_one_report_with_the_right_flags,
    a_repeated_callback_step_gets_the_same_answer_and_writes_nothing,
    with_the_database_down_a_caller_hears_the_fallback_in_the_channel_language,
    prompts_are_served_cacheable_and_nothing_else_is,
    roster_set_on_the_command_line_is_what_the_danger_path_dials,
    no_caller_number_digits_or_recording_address_is_stored_or_logged_in_clear,
    a_call_that_goes_quiet_without_a_hang_up_still_becomes_one_report,
);

const TWILIO_SECRET: &str = "AC0123456789abcdef0123456789abcdef:twilio-voice-token";
const VONAGE_SECRET: &str = "signature_secret=vonage-voice-secret;signature_method=sha256";
const FS_SECRET: &str = "komek:fs-password";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Voice {
    Twilio,
    Vonage,
    AfricasTalking,
    Freeswitch,
}

const VOICES: [Voice; 4] = [
    Voice::Twilio,
    Voice::Vonage,
    Voice::AfricasTalking,
    Voice::Freeswitch,
];

impl Voice {
    fn slug(self) -> &'static str {
        match self {
            Voice::Twilio => "twilio",
            Voice::Vonage => "vonage",
            Voice::AfricasTalking => "africastalking",
            Voice::Freeswitch => "freeswitch",
        }
    }

    fn secret(self) -> &'static str {
        match self {
            Voice::Twilio => TWILIO_SECRET,
            Voice::Vonage => VONAGE_SECRET,
            Voice::AfricasTalking => "",
            Voice::Freeswitch => FS_SECRET,
        }
    }

    /// Several numbers in one dial (the roster rung in order by the provider).
    fn dials_in_order(self) -> bool {
        matches!(self, Voice::AfricasTalking | Voice::Freeswitch)
    }
}

/// One XML element: name, attributes, text.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn owned(text: &str) -> String {
    text.to_owned()
}

fn attrs_of(e: &quick_xml::events::BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap();
            (
                owned(a.key.into_inner()),
                a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .unwrap()
                    .into_owned(),
            )
        })
        .collect()
}

/// Parses an XML document strictly (it must be well formed) into its elements, in document order.
fn parse_xml(xml: &str) -> Vec<Node> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: Vec<Node> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {xml}"))
        {
            Event::Start(e) => {
                out.push(Node {
                    name: owned(e.name().into_inner()),
                    attrs: attrs_of(&e),
                    text: String::new(),
                });
                stack.push(out.len() - 1);
            }
            Event::Empty(e) => out.push(Node {
                name: owned(e.name().into_inner()),
                attrs: attrs_of(&e),
                text: String::new(),
            }),
            Event::End(_) => {
                stack.pop().expect("balanced");
            }
            Event::Text(t) => {
                if let Some(i) = stack.last() {
                    out[*i].text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => match r.as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => panic!("unknown entity {other:?}"),
                    },
                };
                if let Some(i) = stack.last() {
                    out[*i].text.push_str(&c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {xml}");
    out
}

/// An answer from Komek, parsed.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
    xml: Vec<Node>,
    ncco: Vec<Value>,
}

impl Answer {
    /// Audio files the answer plays (prompt URLs).
    fn plays(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in &self.xml {
            match n.name.as_str() {
                "Play" if !n.text.is_empty() => out.push(n.text.clone()),
                "Play" | "playback" => out.extend(n.attr("url").or(n.attr("file")).map(str::to_owned)),
                _ => {}
            }
        }
        for a in &self.ncco {
            if a["action"] == "stream" {
                out.push(a["streamUrl"][0].as_str().unwrap().to_owned());
            }
        }
        out
    }

    /// Anything spoken or played at all.
    fn is_silent(&self) -> bool {
        self.plays().is_empty()
            && !self
                .xml
                .iter()
                .any(|n| matches!(n.name.as_str(), "Say" | "speak"))
            && !self.ncco.iter().any(|a| a["action"] == "talk")
    }

    /// Names of the terminal action the answer ends with: gather, record, dial, hangup.
    fn kind(&self) -> &'static str {
        for n in &self.xml {
            match n.name.as_str() {
                "Gather" | "GetDigits" => return "gather",
                "Record" | "record" => return "record",
                "Dial" | "dial" => return "dial",
                "playback" | "speak" | "pause" if n.attr("action").is_some() => return "gather",
                _ => {}
            }
        }
        for a in &self.ncco {
            match a["action"].as_str() {
                Some("input") => return "gather",
                Some("record") => return "record",
                Some("connect") => return "dial",
                _ => {}
            }
        }
        "hangup"
    }

    /// The numbers a dial rings.
    fn dialled(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.xml {
            match n.name.as_str() {
                "Number" => out.push(n.text.clone()),
                "Dial" if n.attr("phoneNumbers").is_some() => {
                    out.extend(n.attr("phoneNumbers").unwrap().split(',').map(str::to_owned))
                }
                "dial" => out.extend(n.text.split('|').map(str::to_owned)),
                _ => {}
            }
        }
        for a in &self.ncco {
            if a["action"] == "connect" {
                out.extend(
                    a["endpoint"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["number"].as_str().unwrap().to_owned()),
                );
            }
        }
        out
    }

    /// The path and query of the URL the provider calls next.
    fn next(&self) -> Option<String> {
        let absolute = self
            .xml
            .iter()
            .find_map(|n| match n.name.as_str() {
                "Gather" | "Record" | "Dial" => n.attr("action").map(str::to_owned),
                "GetDigits" => n.attr("callbackUrl").map(str::to_owned),
                "record" | "dial" | "playback" | "speak" | "pause" | "continue" => {
                    n.attr("action").map(str::to_owned)
                }
                _ => None,
            })
            .or_else(|| {
                self.xml
                    .iter()
                    .find(|n| n.name == "Redirect")
                    .map(|n| n.text.clone())
            })
            .or_else(|| {
                self.ncco
                    .iter()
                    .find(|a| a.get("eventUrl").is_some())
                    .map(|a| a["eventUrl"][0].as_str().unwrap().to_owned())
            })?;
        Some(
            absolute
                .strip_prefix(PUBLIC_URL)
                .unwrap_or_else(|| panic!("action URL outside the public URL: {absolute}"))
                .to_owned(),
        )
    }
}

/// One caller on one provider.
struct Call<'a> {
    app: &'a TestApp,
    voice: Voice,
    channel: String,
    id: String,
    from: String,
    next: Option<String>,
    last: Option<Answer>,
}

fn jwt(secret: &str, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({
        "iat": chrono::Utc::now().timestamp(), "jti": uuid::Uuid::new_v4().to_string(), "iss": "Vonage",
        "payload_hash": hex::encode(sha2::Sha256::digest(body)), "api_key": "a1b2c3d",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    });
    let payload = b64.encode(serde_json::to_vec(&claims).unwrap());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    format!("{header}.{payload}.{}", b64.encode(mac.finalize().into_bytes()))
}

fn twilio_signature(url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut signed = url.to_owned();
    for (k, v) in sorted {
        signed.push_str(&k);
        signed.push_str(&v);
    }
    let token = TWILIO_SECRET.split(':').nth(1).unwrap();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// What a provider sends, before provider-specific encoding.
enum Payload {
    Form(Vec<(String, String)>),
    Json(Value),
    Multipart(Vec<(String, String)>, Vec<u8>),
}

fn form(pairs: &[(&str, &str)]) -> Payload {
    Payload::Form(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

async fn send(app: &TestApp, voice: Voice, path: &str, payload: Payload) -> Answer {
    let url = app.url(path);
    let mut request = app.client.post(&url);
    match payload {
        Payload::Form(params) => {
            if voice == Voice::Twilio {
                let signature = twilio_signature(&format!("{PUBLIC_URL}{path}"), &params);
                request = request.header("X-Twilio-Signature", signature);
            }
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(&params).unwrap());
        }
        Payload::Json(value) => {
            let body = serde_json::to_vec(&value).unwrap();
            let secret = VONAGE_SECRET
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("signature_secret=");
            request = request
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {}", jwt(secret, &body)))
                .body(body);
        }
        Payload::Multipart(params, audio) => {
            let boundary = "komekboundary7MA4YWxkTrZu0gW";
            let mut body = Vec::new();
            for (k, v) in &params {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                        .as_bytes(),
                );
            }
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"komek_recording\"; \
                     filename=\"komek-recording.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(&audio);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            request = request
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body);
        }
    }
    if voice == Voice::Freeswitch {
        request = request.basic_auth("komek", Some("fs-password"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.text().await.unwrap();
    let mut answer = Answer {
        status,
        body: body.clone(),
        xml: Vec::new(),
        ncco: Vec::new(),
    };
    if status == 200 && !body.is_empty() {
        if content_type.contains("json") {
            let value: Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
            answer.ncco = value
                .as_array()
                .unwrap_or_else(|| panic!("an NCCO is an array: {body}"))
                .clone();
        } else if content_type.contains("xml") {
            answer.xml = parse_xml(&body);
        }
    }
    answer
}

/// A WAV file as FreeSWITCH uploads it: 2 seconds of 8 kHz 16-bit silence.
fn wav_upload() -> Vec<u8> {
    let data = vec![0u8; 32_000];
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    wav
}

impl<'a> Call<'a> {
    fn new(app: &'a TestApp, voice: Voice, channel: &str, from: &str) -> Call<'a> {
        let id = match voice {
            Voice::Twilio => format!("CA{}", uuid::Uuid::new_v4().simple()),
            Voice::AfricasTalking => format!("ATVId_{}", uuid::Uuid::new_v4().simple()),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        Call {
            app,
            voice,
            channel: channel.to_owned(),
            id,
            from: from.to_owned(),
            next: None,
            last: None,
        }
    }

    fn path(&self, action: &str) -> String {
        format!("/webhooks/{}/{}/{action}", self.voice.slug(), self.channel)
    }

    async fn post(&mut self, path: String, payload: Payload) -> Answer {
        let answer = send(self.app, self.voice, &path, payload).await;
        assert_eq!(answer.status, 200, "{:?} {path}: {}", self.voice, answer.body);
        if let Some(next) = answer.next() {
            self.next = Some(next);
        }
        self.last = Some(answer.clone());
        answer
    }

    fn next_url(&self) -> String {
        self.next
            .clone()
            .unwrap_or_else(|| panic!("{:?}: no action URL to call", self.voice))
    }

    /// The payload of a request at the current step (`extra` added), for repeating it verbatim.
    fn step_payload(&self, extra: &[(&str, &str)]) -> Payload {
        let mut pairs: Vec<(&str, &str)> = match self.voice {
            Voice::Twilio => vec![
                ("CallSid", &self.id),
                ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ],
            Voice::Vonage => vec![],
            Voice::AfricasTalking => vec![
                ("isActive", "1"),
                ("sessionId", &self.id),
                ("callerNumber", &self.from),
            ],
            Voice::Freeswitch => vec![("session_id", &self.id)],
        };
        pairs.extend_from_slice(extra);
        form(&pairs)
    }

    fn vonage(&self, extra: Value) -> Payload {
        let mut body = json!({
            "uuid": self.id, "conversation_uuid": format!("CON-{}", self.id),
            "from": self.from.trim_start_matches('+'), "to": "77270000000",
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        Payload::Json(body)
    }

    async fn start(&mut self) -> Answer {
        let from = self.from.clone();
        let id = self.id.clone();
        let payload = match self.voice {
            Voice::Twilio => form(&[
                ("CallSid", &id),
                ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
                ("From", &from),
                ("To", "+77270000000"),
                ("Caller", &from),
                ("Called", "+77270000000"),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("ApiVersion", "2010-04-01"),
            ]),
            Voice::Vonage => self.vonage(json!({})),
            Voice::AfricasTalking => form(&[
                ("isActive", "1"),
                ("sessionId", &id),
                ("direction", "Inbound"),
                ("callerNumber", &from),
                ("destinationNumber", "+254711082000"),
            ]),
            Voice::Freeswitch => form(&[
                ("session_id", &id),
                ("Caller-Caller-ID-Number", &from),
                ("Caller-Destination-Number", "1414"),
            ]),
        };
        let answer = self.post(self.path("voice"), payload).await;
        assert_eq!(
            answer.kind(),
            "gather",
            "{:?}: the language menu: {}",
            self.voice,
            answer.body
        );
        answer
    }

    async fn press(&mut self, digits: &str) -> Answer {
        let payload = match self.voice {
            Voice::Twilio => self.step_payload(&[("Digits", digits)]),
            Voice::Vonage => self.vonage(json!({ "dtmf": { "digits": digits, "timed_out": false } })),
            Voice::AfricasTalking => self.step_payload(&[("dtmfDigits", digits)]),
            Voice::Freeswitch => self.step_payload(&[("komek_digits", digits)]),
        };
        self.post(self.next_url(), payload).await
    }

    async fn silence(&mut self) -> Answer {
        let payload = match self.voice {
            Voice::Vonage => self.vonage(json!({ "dtmf": { "digits": "", "timed_out": true } })),
            _ => self.step_payload(&[]),
        };
        self.post(self.next_url(), payload).await
    }

    /// The duty-roster number rang out. Africa's Talking only reports it in the call's final request.
    async fn nobody_answers(&mut self) -> Answer {
        let payload = match self.voice {
            Voice::Twilio => {
                self.step_payload(&[("DialCallStatus", "no-answer"), ("DialCallSid", "CAleg000001")])
            }
            // The dialled leg's events carry the leg's own uuid.
            Voice::Vonage => Payload::Json(json!({
                "uuid": uuid::Uuid::new_v4().to_string(), "conversation_uuid": format!("CON-leg-{}", self.id),
                "status": "timeout", "direction": "outbound", "from": "77270000000", "to": "77011110001",
            })),
            Voice::AfricasTalking => unreachable!("Africa's Talking ends the call after a dial"),
            Voice::Freeswitch => self.step_payload(&[("variable_originate_disposition", "NO_ANSWER")]),
        };
        self.post(self.next_url(), payload).await
    }

    /// The caller leaves a message.
    async fn record(&mut self) -> Answer {
        let url = format!("https://recordings.example/{}.wav", self.id);
        match self.voice {
            Voice::Twilio => {
                let payload = self.step_payload(&[
                    ("RecordingUrl", &url),
                    ("RecordingDuration", "17"),
                    ("RecordingSid", "RE0123456789"),
                    ("Digits", "#"),
                ]);
                self.post(self.next_url(), payload).await
            }
            Voice::Vonage => {
                // The continuation request first, then the recording event (asynchronous).
                let next = self.next_url();
                let cont = self.vonage(json!({ "komek": "record-finished" }));
                let answer = self.post(next.clone(), cont).await;
                let record = Payload::Json(json!({
                    "start_time": "2026-11-22T07:00:00Z", "recording_url": url, "size": 12345,
                    "recording_uuid": uuid::Uuid::new_v4().to_string(), "end_time": "2026-11-22T07:00:17Z",
                    "conversation_uuid": format!("CON-{}", self.id), "timestamp": "2026-11-22T07:00:18Z",
                }));
                let late = send(self.app, self.voice, &next, record).await;
                assert_eq!(late.status, 200, "{}", late.body);
                answer
            }
            Voice::AfricasTalking => {
                let payload = self.step_payload(&[("recordingUrl", &url)]);
                self.post(self.next_url(), payload).await
            }
            Voice::Freeswitch => {
                let payload = Payload::Multipart(vec![("session_id".into(), self.id.clone())], wav_upload());
                self.post(self.next_url(), payload).await
            }
        }
    }

    /// The caller hangs up (the provider's status / final request).
    async fn hang_up(&mut self) {
        let id = self.id.clone();
        let (path, payload) = match self.voice {
            Voice::Twilio => (
                self.path("voice-status"),
                form(&[
                    ("CallSid", &id),
                    ("CallStatus", "completed"),
                    ("CallDuration", "42"),
                ]),
            ),
            Voice::Vonage => (
                self.path("voice-status"),
                self.vonage(json!({ "status": "completed", "duration": "42" })),
            ),
            Voice::AfricasTalking => {
                let mut pairs = vec![
                    ("isActive", "0"),
                    ("sessionId", id.as_str()),
                    ("durationInSeconds", "42"),
                    ("hangupCause", "NORMAL_CLEARING"),
                    ("callerNumber", self.from.as_str()),
                ];
                if self.last.as_ref().is_some_and(|a| a.kind() == "dial") {
                    pairs.extend([
                        ("dialDestinationNumber", "+77011110001"),
                        ("dialDurationInSeconds", "0"),
                    ]);
                }
                (self.path("voice"), form(&pairs))
            }
            Voice::Freeswitch => (
                self.path("voice"),
                form(&[
                    ("session_id", &id),
                    ("exiting", "true"),
                    ("variable_hangup_cause", "NORMAL_CLEARING"),
                    ("variable_billsec", "42"),
                ]),
            ),
        };
        let answer = send(self.app, self.voice, &path, payload).await;
        assert_eq!(answer.status, 200, "{:?} hang-up: {}", self.voice, answer.body);
    }
}

#[derive(Debug, diesel::QueryableByName)]
struct Outcome {
    #[diesel(sql_type = diesel::sql_types::Text)]
    risk: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    child_victim: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    silent: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    ivr_path: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    source: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    reports: i64,
}

/// The one report of a call and its case.
async fn outcome(app: &TestApp, channel: &str, call_id: &str) -> Outcome {
    app.settle().await;
    let query = format!(
        "SELECT c.risk, c.child_victim, c.silent, r.ivr_path, r.source, \
         (SELECT COUNT(*) FROM reports x WHERE x.channel_id = '{channel}' AND x.provider_event_id = 'call:{call_id}') AS reports \
         FROM reports r JOIN cases c ON c.id = r.case_id \
         WHERE r.channel_id = '{channel}' AND r.provider_event_id = 'call:{call_id}'"
    );
    app.db
        .run(move |conn| {
            use diesel::RunQueryDsl as _;
            diesel::sql_query(query)
                .get_result::<Outcome>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap_or_else(|e| panic!("the call's report and case: {e}"))
}

/// The sealed details of a call's report, opened with the server's keys.
async fn report_details(app: &TestApp, channel: &str, call_id: &str) -> Value {
    let channel = channel.to_owned();
    let event = format!("call:{call_id}");
    let (id, sealed, dek, version) = app
        .db
        .run(move |conn| {
            use diesel::prelude::*;
            use komek::db::schema::reports;
            reports::table
                .filter(reports::channel_id.eq(&channel))
                .filter(reports::provider_event_id.eq(&event))
                .select((
                    reports::id,
                    reports::details_enc,
                    reports::dek_wrapped,
                    reports::key_version,
                ))
                .first::<(String, Option<Vec<u8>>, Vec<u8>, i32)>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let key = crypto.unwrap_record_key(&dek, version).unwrap();
    let plain = key
        .open(komek::reports::details_place(&id), &sealed.unwrap())
        .unwrap();
    serde_json::from_slice(plain.expose()).unwrap()
}

async fn voice_channel(app: &TestApp, voice: Voice, language: &str) -> (String, String) {
    let org = app
        .create_org(&format!("ivr-{}-{language}", voice.slug()), Some("KZ"))
        .await;
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let new = komek::channels::NewChannel {
        organization_id: org.clone(),
        provider: voice.slug().parse().unwrap(),
        number: Some(komek::domain::PhoneNumber::parse("+77012000000", None).unwrap()),
        secret: (!voice.secret().is_empty())
            .then(|| komek::sensitive::Sensitive::new(voice.secret().to_owned())),
        language: language.to_owned(),
    };
    let channel = app
        .db
        .write(move |conn| komek::channels::create(conn, &crypto, &new))
        .await
        .unwrap()
        .id;
    (org, channel)
}

async fn set_roster(app: &TestApp, org: &str, kind: komek::ivr::RosterKind, numbers: &str) {
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let numbers = komek::ivr::roster::parse_numbers(numbers).unwrap();
    let org = org.to_owned();
    app.db
        .write(move |conn| komek::ivr::roster::set(conn, &crypto, &org, kind, &numbers))
        .await
        .unwrap();
}

fn caller(voice: Voice, n: u32) -> String {
    let p = VOICES.iter().position(|v| *v == voice).unwrap() as u32;
    format!("+7701{:03}{:04}", 200 + p, n)
}

async fn every_voice_provider_turns_each_menu_path_into_one_report_with_the_right_flags(backend: Backend) {
    let app = spawn_app(backend).await;
    for voice in VOICES {
        let (org, channel) = voice_channel(&app, voice, "kk").await;
        set_roster(
            &app,
            &org,
            komek::ivr::RosterKind::General,
            "+77011110001,+77011110002",
        )
        .await;
        set_roster(&app, &org, komek::ivr::RosterKind::Child, "+77011110009").await;
        let mut reports = 0;

        // 2: report a situation → record → thanks.
        let mut call = Call::new(&app, voice, &channel, &caller(voice, 1));
        let menu = call.start().await;
        let plays = menu.plays();
        assert!(
            plays
                .first()
                .is_some_and(|p| p.ends_with("/prompts/kk/language_option.wav"))
                && plays.len() == 6,
            "{voice:?}: the channel's language first, then the other five: {plays:?}"
        );
        let main = call.press("1").await;
        assert_eq!(main.kind(), "gather");
        assert!(
            main.plays()
                .iter()
                .any(|p| p.ends_with("/prompts/ru/main_menu.wav")),
            "{voice:?}: {}",
            main.body
        );
        let rec = call.press("2").await;
        assert_eq!(rec.kind(), "record", "{voice:?}: {}", rec.body);
        assert!(rec.plays().iter().any(|p| p.ends_with("/prompts/ru/record.wav")));
        let done = call.record().await;
        assert!(
            done.plays().iter().any(|p| p.ends_with("/prompts/ru/thanks.wav")),
            "{voice:?}: {}",
            done.body
        );
        call.hang_up().await;
        reports += 1;
        let o = outcome(&app, &channel, &call.id).await;
        assert_eq!((o.reports, o.source.as_str()), (1, "voice"));
        assert_eq!(o.ivr_path.as_deref(), Some("lang:ru>2:report"), "{voice:?}");
        assert!(
            o.risk != "critical" && !o.child_victim && !o.silent,
            "{voice:?}: {o:?}"
        );
        let details = report_details(&app, &channel, &call.id).await;
        let ivr = &details["ivr"];
        assert_eq!(ivr["menu_path"], "lang:ru>2:report", "{voice:?}: {details}");
        assert_eq!(ivr["digits"], json!(["1", "2"]), "{voice:?}");
        assert_eq!(ivr["language"], "ru");
        match voice {
            Voice::Freeswitch => {
                assert!(ivr["recording"]["stored_id"].is_string(), "{details}");
                assert_eq!(ivr["recording"]["duration_secs"], 2, "read from the WAV header");
            }
            _ => assert_eq!(
                ivr["recording"]["url"],
                format!("https://recordings.example/{}.wav", call.id),
                "{voice:?}: the recording's address (even when it arrives after the report)"
            ),
        }
        if voice == Voice::Twilio {
            assert_eq!(ivr["recording"]["duration_secs"], 17);
        }
        if voice != Voice::Freeswitch {
            assert_eq!(ivr["call_duration_secs"], 42, "{voice:?}: the hang-up's duration");
        }

        // 1: in danger → the general roster rings out → record, critical.
        let mut call = Call::new(&app, voice, &channel, &caller(voice, 2));
        call.start().await;
        call.press("2").await;
        let dial = call.press("1").await;
        assert_eq!(dial.kind(), "dial", "{voice:?}: {}", dial.body);
        assert!(
            dial.plays()
                .iter()
                .any(|p| p.ends_with("/prompts/kk/connecting.wav"))
        );
        let dialled = dial.dialled();
        if voice.dials_in_order() {
            assert_eq!(
                dialled.len(),
                2,
                "{voice:?}: the whole roster in order: {dialled:?}"
            );
            assert!(dialled[0].contains("+77011110001") && dialled[1].contains("+77011110002"));
        } else {
            assert_eq!(dialled, vec!["+77011110001".to_owned()], "{voice:?}");
        }
        if voice == Voice::AfricasTalking {
            // The dial ends the call at Africa's Talking: the final request reports nobody answered.
            call.hang_up().await;
            let o = outcome(&app, &channel, &call.id).await;
            assert_eq!(
                o.ivr_path.as_deref(),
                Some("lang:kk>1:danger>dial:no_answer>hangup"),
                "{voice:?}"
            );
            assert_eq!((o.reports, o.risk.as_str()), (1, "critical"));
        } else {
            let mut answer = call.nobody_answers().await;
            if !voice.dials_in_order() {
                assert_eq!(
                    answer.kind(),
                    "dial",
                    "{voice:?}: the next number: {}",
                    answer.body
                );
                assert_eq!(answer.dialled(), vec!["+77011110002".to_owned()]);
                answer = call.nobody_answers().await;
            }
            assert_eq!(answer.kind(), "record", "{voice:?}: {}", answer.body);
            assert!(
                answer
                    .plays()
                    .iter()
                    .any(|p| p.ends_with("/prompts/kk/no_answer.wav"))
            );
            call.record().await;
            call.hang_up().await;
            let o = outcome(&app, &channel, &call.id).await;
            assert_eq!(
                o.ivr_path.as_deref(),
                Some("lang:kk>1:danger>dial:no_answer>record"),
                "{voice:?}"
            );
            assert_eq!((o.reports, o.risk.as_str()), (1, "critical"), "{voice:?}");
            let details = report_details(&app, &channel, &call.id).await;
            assert_eq!(details["ivr"]["dial_outcome"], "no_answer", "{details}");
            assert_eq!(details["ivr"]["roster"], "general");
            let dialled = if voice.dials_in_order() { 1 } else { 2 };
            assert_eq!(details["ivr"]["dialled"], dialled);
        }
        reports += 1;

        // 3: under 18 → the child roster → record; a child case.
        let mut call = Call::new(&app, voice, &channel, &caller(voice, 3));
        call.start().await;
        call.press("6").await;
        let dial = call.press("3").await;
        assert_eq!(dial.kind(), "dial");
        assert!(
            dial.plays()
                .iter()
                .any(|p| p.ends_with("/prompts/en/connecting_child.wav"))
        );
        assert!(dial.dialled()[0].contains("+77011110009"));
        if voice == Voice::AfricasTalking {
            call.hang_up().await;
        } else {
            assert_eq!(call.nobody_answers().await.kind(), "record");
            call.record().await;
            call.hang_up().await;
        }
        reports += 1;
        let o = outcome(&app, &channel, &call.id).await;
        assert!(
            o.child_victim && matches!(o.risk.as_str(), "high" | "critical"),
            "{voice:?}: {o:?}"
        );
        assert!(o.ivr_path.unwrap().starts_with("lang:en>3:child"));

        // 5: cannot speak → nothing more is played; the caller hangs up; critical and silent.
        let mut call = Call::new(&app, voice, &channel, &caller(voice, 4));
        call.start().await;
        call.press("4").await;
        let silent = call.press("5").await;
        assert_eq!(silent.kind(), "record", "{voice:?}: {}", silent.body);
        assert!(
            silent.is_silent(),
            "{voice:?}: the silent path plays nothing: {}",
            silent.body
        );
        for beep in ["playBeep=\"true\"", "\"beepStart\":true", "beep-file"] {
            assert!(!silent.body.contains(beep), "{voice:?}: no beep: {}", silent.body);
        }
        call.hang_up().await;
        reports += 1;
        let o = outcome(&app, &channel, &call.id).await;
        assert_eq!(
            (o.risk.as_str(), o.silent),
            ("critical", true),
            "{voice:?}: {o:?}"
        );
        assert_eq!(o.ivr_path.as_deref(), Some("lang:tg>5:silent>hangup"));

        // An early hang-up at the language menu still becomes a report.
        let mut call = Call::new(&app, voice, &channel, &caller(voice, 5));
        call.start().await;
        call.hang_up().await;
        reports += 1;
        let o = outcome(&app, &channel, &call.id).await;
        assert_eq!(
            (o.reports, o.ivr_path.as_deref()),
            (1, Some("lang:kk>hangup")),
            "{voice:?}"
        );

        // No input: the language defaults to the channel's, the menu repeats once, then a recording.
        let mut call = Call::new(&app, voice, &channel, &caller(voice, 6));
        call.start().await;
        let menu = call.silence().await;
        assert!(
            menu.plays()
                .iter()
                .any(|p| p.ends_with("/prompts/kk/main_menu.wav")),
            "{voice:?}: {}",
            menu.body
        );
        let again = call.silence().await;
        assert_eq!(again.kind(), "gather", "{voice:?}: repeated once");
        let rec = call.silence().await;
        assert_eq!(rec.kind(), "record", "{voice:?}: then record: {}", rec.body);
        call.record().await;
        call.hang_up().await;
        reports += 1;
        let o = outcome(&app, &channel, &call.id).await;
        assert_eq!(
            o.ivr_path.as_deref(),
            Some("lang:kk>noinput>noinput>record"),
            "{voice:?}"
        );

        let n = app
            .count(&format!(
                "reports WHERE channel_id = '{channel}' AND source = 'voice'"
            ))
            .await;
        assert_eq!(n, reports, "{voice:?}: one report per call");
        assert_eq!(
            app.count(&format!(
                "calls WHERE channel_id = '{channel}' AND report_id IS NOT NULL"
            ))
            .await,
            reports
        );
    }
    assert_eq!(
        app.count("call_recordings").await,
        4,
        "FreeSWITCH uploads are stored (encrypted)"
    );
    assert_eq!(app.count("reports WHERE triage_status = 'pending'").await, 0);
}

async fn a_repeated_callback_step_gets_the_same_answer_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for voice in VOICES {
        let (org, channel) = voice_channel(&app, voice, "ru").await;
        set_roster(&app, &org, komek::ivr::RosterKind::General, "+77011110001").await;
        let mut call = Call::new(&app, voice, &channel, &caller(voice, 50));
        let first = call.start().await;
        let again = call.start().await;
        assert_eq!(first.body, again.body, "{voice:?}: a repeated answer webhook");
        let url = call.next_url();
        let press = |call: &Call<'_>| match voice {
            Voice::Twilio => call.step_payload(&[("Digits", "1")]),
            Voice::Vonage => call.vonage(json!({ "dtmf": { "digits": "1", "timed_out": false } })),
            Voice::AfricasTalking => call.step_payload(&[("dtmfDigits", "1")]),
            Voice::Freeswitch => call.step_payload(&[("komek_digits", "1")]),
        };
        let one = send(&app, voice, &url, press(&call)).await;
        let snapshot = snapshot(&app).await;
        let two = send(&app, voice, &url, press(&call)).await;
        assert_eq!(
            (one.status, &one.body),
            (two.status, &two.body),
            "{voice:?}: same answer"
        );
        assert_eq!(snapshot, self::snapshot(&app).await, "{voice:?}: nothing written");
        // The menu goes on from where it was: 1 = in danger, once.
        call.next = one.next();
        let dial = call.press("1").await;
        assert_eq!(dial.kind(), "dial");
        let repeat = send(&app, voice, &url, press(&call)).await;
        assert_eq!(
            repeat.body, dial.body,
            "{voice:?}: an old step is answered with the current state"
        );
        call.hang_up().await;
        call.hang_up().await;
        app.settle().await;
        assert_eq!(
            app.count(&format!("reports WHERE channel_id = '{channel}'"))
                .await,
            1,
            "{voice:?}: a repeated hang-up writes no second report"
        );
    }
}

async fn snapshot(app: &TestApp) -> (i64, i64, i64, String) {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let rows = app
        .db
        .run(|conn| {
            use diesel::RunQueryDsl as _;
            diesel::sql_query(
                "SELECT id || ':' || step || ':' || CAST(seq AS TEXT) || ':' || CAST(updated_at AS TEXT) AS v \
                 FROM calls ORDER BY id",
            )
            .load::<Row>(conn)
            .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    (
        app.count("reports").await,
        app.count("contacts").await,
        app.count("calls").await,
        rows.into_iter().map(|r| r.v).collect::<Vec<_>>().join(","),
    )
}

async fn with_the_database_down_a_caller_hears_the_fallback_in_the_channel_language(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            sqlite_busy_timeout_ms: 200,
            db_checkout_timeout_ms: 500,
            ivr_fallback_number: Some("+7 727 150".to_owned()),
            ..AppOptions::default()
        },
    )
    .await;
    let (_, twilio) = voice_channel(&app, Voice::Twilio, "ky").await;
    let (_, vonage) = voice_channel(&app, Voice::Vonage, "uz").await;
    let mut warm = Call::new(&app, Voice::Twilio, &twilio, "+77015550300");
    warm.start().await;
    let mut warm_v = Call::new(&app, Voice::Vonage, &vonage, "+77015550301");
    warm_v.start().await;
    let before = app.count("calls").await;

    let outage = Outage::begin(&app).await;
    let mut call = Call::new(&app, Voice::Twilio, &twilio, "+77015550302");
    let answer = send(
        &app,
        Voice::Twilio,
        &call.path("voice"),
        call.step_payload(&[("From", "+77015550302")]),
    )
    .await;
    let menu_press = send(
        &app,
        Voice::Twilio,
        &warm.next_url(),
        warm.step_payload(&[("Digits", "1")]),
    )
    .await;
    let mut v = Call::new(&app, Voice::Vonage, &vonage, "+77015550303");
    let ncco = send(&app, Voice::Vonage, &v.path("voice"), v.vonage(json!({}))).await;
    outage.end(&app).await;
    call.next = None;
    v.next = None;

    for (answer, lang) in [(&answer, "ky"), (&menu_press, "ky"), (&ncco, "uz")] {
        assert_eq!(
            answer.status, 200,
            "a caller never gets an error: {}",
            answer.body
        );
        let plays = answer.plays();
        assert!(
            plays
                .first()
                .is_some_and(|p| p.ends_with(&format!("/prompts/{lang}/unavailable.wav"))),
            "{plays:?}"
        );
        let digits: Vec<String> = plays
            .iter()
            .skip(1)
            .map(|p| p.rsplit('/').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            digits,
            [
                "digit_7.wav",
                "digit_7.wav",
                "digit_2.wav",
                "digit_7.wav",
                "digit_1.wav",
                "digit_5.wav",
                "digit_0.wav"
            ],
            "the other number, digit by digit"
        );
        assert_eq!(answer.kind(), "hangup");
    }
    assert_eq!(
        app.count("calls").await,
        before,
        "nothing was stored during the outage"
    );
}

async fn prompts_are_served_cacheable_and_nothing_else_is(backend: Backend) {
    let app = spawn_app(backend).await;
    for lang in ["ru", "kk", "ky", "tg", "uz", "en"] {
        let response = app.get(&format!("/prompts/{lang}/main_menu.wav")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "audio/wav");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("public, max-age=")
        );
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.starts_with(b"RIFF") && bytes.len() > 10_000);
    }
    for path in [
        "/prompts/ru/..%2F..%2FCargo.toml",
        "/prompts/ru/../../Cargo.toml",
        "/prompts/xx/main_menu.wav",
        "/prompts/ru/manifest.tsv",
        "/prompts/ru/main_menu.mp3",
        "/prompts/..%2Fprompts/main_menu.wav",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

async fn roster_set_on_the_command_line_is_what_the_danger_path_dials(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org, channel) = voice_channel(&app, Voice::Freeswitch, "ru").await;
    let slug = {
        let org = org.clone();
        app.db
            .run(move |conn| {
                use diesel::prelude::*;
                komek::db::schema::organizations::table
                    .find(&org)
                    .select(komek::db::schema::organizations::slug)
                    .first::<String>(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap()
    };
    let komek = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_komek"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KOMEK_") {
                command.env_remove(key);
            }
        }
        command
            .env("KOMEK_DATABASE_URL", app.storage.database_url())
            .env("KOMEK_DATA_DIR", app.storage.dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let bad = komek(&[
        "roster",
        "set",
        "--org",
        &slug,
        "--kind",
        "general",
        "--numbers",
        "+7701,+77011110001",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("roster number 1"));
    let bad_kind = komek(&[
        "roster",
        "set",
        "--org",
        &slug,
        "--kind",
        "boss",
        "--numbers",
        "+77011110001",
    ]);
    assert!(!bad_kind.status.success());
    let ok = komek(&[
        "roster",
        "set",
        "--org",
        &slug,
        "--kind",
        "general",
        "--numbers",
        "+77011119991, +7 701 111 9992",
        "--json",
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let printed: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(printed["count"], 2);
    let stored = app.count("duty_rosters").await;
    assert_eq!(stored, 1);

    let mut call = Call::new(&app, Voice::Freeswitch, &channel, "+77015550400");
    call.start().await;
    call.press("1").await;
    let dial = call.press("1").await;
    let dialled = dial.dialled();
    assert!(
        dialled.len() == 2 && dialled[0].contains("+77011119991") && dialled[1].contains("+77011119992"),
        "{dialled:?}"
    );
    // Stored encrypted: the numbers are nowhere in the roster row.
    let raw = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            komek::db::schema::duty_rosters::table
                .select(komek::db::schema::duty_rosters::numbers_enc)
                .first::<Vec<u8>>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("9991"));
}

async fn no_caller_number_digits_or_recording_address_is_stored_or_logged_in_clear(backend: Backend) {
    let app = spawn_app(backend).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let digits: String = unique
        .chars()
        .filter(char::is_ascii_digit)
        .chain("3456789".chars())
        .take(7)
        .collect();
    let phone = format!("+7702{digits}");
    let keys = format!("90{digits}");
    for voice in VOICES {
        let (_, channel) = voice_channel(&app, voice, "ru").await;
        let mut call = Call::new(&app, voice, &channel, &phone);
        call.id = format!("{}{unique}", &call.id[..4]);
        call.start().await;
        call.press("1").await;
        // A long, odd key sequence at the main menu: treated as a wrong key.
        assert_eq!(call.press(&keys).await.kind(), "gather");
        call.press("2").await;
        call.record().await;
        call.hang_up().await;
    }
    app.settle().await;
    assert_eq!(app.count("reports WHERE source = 'voice'").await, 4);
    let national = phone.trim_start_matches("+7");
    let needles = [
        phone.as_str(),
        &phone[1..],
        national,
        keys.as_str(),
        "recordings.example",
    ];
    let log = crate::helpers::assert_nothing_in_clear(&app, &needles, "calls");
    assert!(
        !log.contains(&unique),
        "the provider call id is logged only as a short prefix"
    );
}

async fn a_call_that_goes_quiet_without_a_hang_up_still_becomes_one_report(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, channel) = voice_channel(&app, Voice::Twilio, "ru").await;
    let mut call = Call::new(&app, Voice::Twilio, &channel, "+77015550500");
    call.start().await;
    call.press("1").await;
    call.press("1").await;
    // No hang-up notice ever comes (status callbacks not configured, or lost).
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let closed = app
        .db
        .write(move |conn| komek::ivr::store::finish_stale(conn, &crypto, chrono::Duration::zero(), 20))
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    let ctx = komek::intake::process::ProcessContext {
        crypto: komek::crypto::Crypto::new(app.keys.clone()),
        engine: std::sync::Arc::new(komek::triage::Engine::embedded().unwrap()),
        critical_ack_deadline: chrono::Duration::minutes(15),
        flood_threshold: 10,
        flood_window: chrono::Duration::minutes(10),
        parts_wait: chrono::Duration::seconds(120),
    };
    komek::intake::sweeper::process_one(&app.db, &ctx, closed[0].clone()).await;
    let o = outcome(&app, &channel, &call.id).await;
    assert_eq!(
        o.ivr_path.as_deref(),
        Some("lang:ru>1:danger>dial:no_roster>record>timeout")
    );
    assert_eq!((o.reports, o.risk.as_str()), (1, "critical"));
    // A late hang-up changes nothing; a second sweep finds nothing.
    call.hang_up().await;
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let again = app
        .db
        .write(move |conn| komek::ivr::store::finish_stale(conn, &crypto, chrono::Duration::zero(), 20))
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(app.count("reports").await, 1);
}
