//! Recorded real payloads (reference/gateways.md) parse into the expected events; malformed
//! ones give typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use komek_gateways::{
    Action, CallEventKind, DeliveryState, DialOutcome, HangupCause, InboundEvent, ParseError, Provider,
    Recording, WebhookRequest, parse,
};

fn one(provider: Provider, action: Action, req: &WebhookRequest<'_>) -> InboundEvent {
    let mut events = parse(provider, action, req).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn sms(e: InboundEvent) -> komek_gateways::InboundSms {
    match e {
        InboundEvent::Sms(s) => s,
        other => panic!("expected SMS, got {other:?}"),
    }
}

fn status(e: InboundEvent) -> komek_gateways::DeliveryStatus {
    match e {
        InboundEvent::Status(s) => s,
        other => panic!("expected status, got {other:?}"),
    }
}

fn call(e: InboundEvent) -> komek_gateways::CallEvent {
    match e {
        InboundEvent::Call(c) => c,
        other => panic!("expected call event, got {other:?}"),
    }
}

const AT_URL: &str = "https://komek.example/webhooks/africastalking/8eb23e93-5ecb-45ba-b726-3b064e0c56ab/sms";

#[test]
fn africastalking_sms() {
    let body = "linkId=03090445075804249226&text=Msg&to=21512&id=ec9adc86-51d5-4bc8-8eb0-d8ab0bb53dc3&date=2017-05-03T06%3A04%3A45Z&from=%2B254791541111";
    let s = sms(one(
        Provider::AfricasTalking,
        Action::Sms,
        &post(AT_URL, body.as_bytes()),
    ));
    assert_eq!(s.event_id, "ec9adc86-51d5-4bc8-8eb0-d8ab0bb53dc3");
    assert_eq!(s.text.expose(), "Msg");
    assert_eq!(s.from.expose(), "+254791541111");
    assert_eq!(s.to.as_ref().unwrap().expose(), "21512");
    assert_eq!(
        s.received_at,
        Some(Utc.with_ymd_and_hms(2017, 5, 3, 6, 4, 45).unwrap())
    );
    // Space-separated date.
    let body2 = body.replace("2017-05-03T06%3A04%3A45Z", "2017-05-03+06%3A04%3A45");
    let s2 = sms(one(
        Provider::AfricasTalking,
        Action::Sms,
        &post(AT_URL, body2.as_bytes()),
    ));
    assert_eq!(s2.received_at, s.received_at);
    // Missing text, bad date.
    let no_text =
        "linkId=03090445075804249226&to=21512&id=ec9adc86&date=2017-05-03T06%3A04%3A45Z&from=%2B254791541111";
    assert_eq!(
        parse(
            Provider::AfricasTalking,
            Action::Sms,
            &post(AT_URL, no_text.as_bytes())
        ),
        Err(ParseError::MissingField("text"))
    );
    assert_eq!(
        ParseError::MissingField("text").to_string(),
        "field 'text' required"
    );
    let bad_date = body.replace("2017-05-03T06%3A04%3A45Z", "2017-05-03T06%3A04");
    assert_eq!(
        parse(
            Provider::AfricasTalking,
            Action::Sms,
            &post(AT_URL, bad_date.as_bytes())
        ),
        Err(ParseError::InvalidField {
            field: "date",
            reason: "invalid date format"
        })
    );
}

#[test]
fn africastalking_status() {
    let ok = status(one(
        Provider::AfricasTalking,
        Action::Status,
        &post(
            AT_URL,
            b"id=ATXid_dda018a640edfcc5d2ce455de3e4a6e7&status=Success",
        ),
    ));
    assert_eq!(ok.provider_message_id, "ATXid_dda018a640edfcc5d2ce455de3e4a6e7");
    assert_eq!(ok.state, DeliveryState::Delivered);
    let expired = status(one(
        Provider::AfricasTalking,
        Action::Status,
        &post(AT_URL, b"id=ATXid_1&status=Expired"),
    ));
    assert_eq!(expired.state, DeliveryState::Failed);
    let failed = status(one(
        Provider::AfricasTalking,
        Action::Status,
        &post(
            AT_URL,
            b"id=ATXid_1&status=Failed&failureReason=InsufficientCredit",
        ),
    ));
    assert_eq!(failed.error_code.as_deref(), Some("InsufficientCredit"));
    assert_eq!(
        parse(
            Provider::AfricasTalking,
            Action::Status,
            &post(AT_URL, b"id=ATXid_1&status=Borked")
        ),
        Err(ParseError::InvalidField {
            field: "status",
            reason: "unknown status"
        })
    );
}

#[test]
fn africastalking_voice() {
    let start = "isActive=1&sessionId=ATVId_1&direction=Inbound&callerNumber=%2B254711XXXYYY&destinationNumber=%2B254711000000";
    let c = call(one(
        Provider::AfricasTalking,
        Action::Voice,
        &post(AT_URL, start.as_bytes()),
    ));
    assert_eq!(c.call_id, "ATVId_1");
    assert_eq!(c.kind, CallEventKind::Started);
    assert_eq!(c.from.unwrap().expose(), "+254711XXXYYY");
    let digits = format!("{start}&dtmfDigits=2");
    let c = call(one(
        Provider::AfricasTalking,
        Action::Ivr,
        &post(AT_URL, digits.as_bytes()),
    ));
    assert!(
        matches!(c.kind, CallEventKind::DigitsEntered { ref digits, timed_out: false } if digits.expose() == "2")
    );
    let nothing = call(one(
        Provider::AfricasTalking,
        Action::Ivr,
        &post(AT_URL, start.as_bytes()),
    ));
    assert_eq!(nothing.kind, CallEventKind::NoInput);
    let fin = "isActive=0&sessionId=ATVId_1&direction=Inbound&callerNumber=%2B254711XXXYYY&destinationNumber=%2B254711000000&durationInSeconds=42&currencyCode=KES&amount=1.5&hangupCause=NORMAL_CLEARING&recordingUrl=https%3A%2F%2Frec.example%2F1.mp3";
    let events = parse(
        Provider::AfricasTalking,
        Action::Voice,
        &post(AT_URL, fin.as_bytes()),
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&call(events[0].clone()).kind, CallEventKind::RecordingReady(Recording::Url { url, .. }) if url.expose() == "https://rec.example/1.mp3")
    );
    assert_eq!(
        call(events[1].clone()).kind,
        CallEventKind::Hangup {
            cause: HangupCause::Completed,
            duration_secs: Some(42)
        }
    );
    assert_eq!(
        parse(
            Provider::AfricasTalking,
            Action::Voice,
            &post(AT_URL, b"isActive=1")
        ),
        Err(ParseError::MissingField("sessionId"))
    );
}

const TW_URL: &str = "https://localhost/c/t/8eb23e93-5ecb-45ba-b726-3b064e0c56ab/receive";

#[test]
fn twilio_sms_and_status() {
    let body = "ToCountry=US&ToState=District+Of+Columbia&SmsMessageSid=SMe287d7109a5a925f182f0e07fe5b223b&NumMedia=0&ToCity=&FromZip=01022&SmsSid=SMe287d7109a5a925f182f0e07fe5b223b&FromState=MA&SmsStatus=received&FromCity=CHICOPEE&Body=Msg&FromCountry=US&To=%2B12028831111&ToZip=&NumSegments=1&MessageSid=SMe287d7109a5a925f182f0e07fe5b223b&AccountSid=acctid&From=%2B14133881111&ApiVersion=2010-04-01";
    let s = sms(one(Provider::Twilio, Action::Sms, &post(TW_URL, body.as_bytes())));
    assert_eq!(s.event_id, "SMe287d7109a5a925f182f0e07fe5b223b");
    assert_eq!(s.from.expose(), "+14133881111");
    assert_eq!(s.to.unwrap().expose(), "+12028831111");
    assert_eq!(s.text.expose(), "Msg");

    let d = status(one(
        Provider::Twilio,
        Action::Status,
        &post(
            TW_URL,
            b"MessageSid=SMe287d7109a5a925f182f0e07fe5b223b&MessageStatus=delivered",
        ),
    ));
    assert_eq!(
        (d.state, d.provider_status.as_str()),
        (DeliveryState::Delivered, "delivered")
    );
    let stop = status(one(
        Provider::Twilio,
        Action::Status,
        &post(TW_URL, b"ErrorCode=21610&MessageSid=SMe287d7109a5a925f182f0e07fe5b223b&MessageStatus=failed&To=%2B12028831111"),
    ));
    assert_eq!(
        (stop.state, stop.error_code.as_deref()),
        (DeliveryState::Failed, Some("21610"))
    );
    let ms = status(one(Provider::Twilio, Action::Status, &post(TW_URL, b"SmsStatus=sent&MessageStatus=sent&To=2021&MessagingServiceSid=MGdb23ec0f89ee2632e46e91d8128f5e2b&MessageSid=SM0b6e2697aae04182a9f5b5c7a8994c7f&AccountSid=acctid&From=%2B14133881111&ApiVersion=2010-04-01")));
    assert_eq!(
        (ms.state, ms.provider_message_id.as_str()),
        (DeliveryState::Sent, "SM0b6e2697aae04182a9f5b5c7a8994c7f")
    );
    assert_eq!(
        parse(Provider::Twilio, Action::Sms, &post(TW_URL, b"Body=x")),
        Err(ParseError::MissingField("MessageSid"))
    );
}

#[test]
fn twilio_voice() {
    let base = "CallSid=12345&AccountSid=23456&Caller=%2B12064871234&To=%2B12029795079&Called=%2B12029795079&CallStatus=queued&ApiVersion=2010-04-01&Direction=inbound";
    let c = call(one(
        Provider::Twilio,
        Action::Voice,
        &post(TW_URL, base.as_bytes()),
    ));
    assert_eq!((c.call_id.as_str(), &c.kind), ("12345", &CallEventKind::Started));
    assert_eq!(c.from.unwrap().expose(), "+12064871234");
    let g = call(one(
        Provider::Twilio,
        Action::Ivr,
        &post(TW_URL, format!("{base}&Digits=1&FinishedOnKey=").as_bytes()),
    ));
    assert!(matches!(g.kind, CallEventKind::DigitsEntered { ref digits, .. } if digits.expose() == "1"));
    let r = call(one(
        Provider::Twilio,
        Action::Ivr,
        &post(TW_URL, format!("{base}&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2FRE1&RecordingDuration=7&RecordingSid=RE1&Digits=hangup").as_bytes()),
    ));
    assert!(matches!(
        r.kind,
        CallEventKind::RecordingReady(Recording::Url {
            duration_secs: Some(7),
            ..
        })
    ));
    let d = call(one(
        Provider::Twilio,
        Action::Ivr,
        &post(
            TW_URL,
            format!("{base}&DialCallStatus=no-answer&DialCallSid=CA9").as_bytes(),
        ),
    ));
    assert!(matches!(
        d.kind,
        CallEventKind::DialResult {
            outcome: DialOutcome::NoAnswer,
            ..
        }
    ));
    let n = call(one(Provider::Twilio, Action::Ivr, &post(TW_URL, base.as_bytes())));
    assert_eq!(n.kind, CallEventKind::NoInput);
    let h = call(one(
        Provider::Twilio,
        Action::VoiceStatus,
        &post(
            TW_URL,
            format!("{base}&CallDuration=30")
                .replace("queued", "completed")
                .as_bytes(),
        ),
    ));
    assert_eq!(
        h.kind,
        CallEventKind::Hangup {
            cause: HangupCause::Completed,
            duration_secs: Some(30)
        }
    );
    assert!(
        parse(
            Provider::Twilio,
            Action::Ivr,
            &post(TW_URL, format!("{base}&DialCallStatus=weird").as_bytes())
        )
        .is_err()
    );
}

const VN_URL: &str = "https://komek.example/webhooks/vonage/c1/sms";

#[test]
fn vonage_sms_get_post_and_parts() {
    let url = format!("{VN_URL}?to=2020&msisdn=2349067554729&text=Join&messageId=external1");
    let s = sms(one(Provider::Vonage, Action::Sms, &get(&url)));
    assert_eq!(
        (
            s.event_id.as_str(),
            s.from.expose().as_str(),
            s.text.expose().as_str()
        ),
        ("external1", "2349067554729", "Join")
    );
    let s = sms(one(
        Provider::Vonage,
        Action::Sms,
        &post(
            VN_URL,
            b"to=2020&msisdn=2349067554729&text=Join&messageId=external1",
        ),
    ));
    assert_eq!(s.event_id, "external1");
    let json = r#"{"msisdn":"447700900001","to":"447700900000","messageId":"0A0000000123ABCD1","text":"Hello","type":"text","keyword":"HELLO","message-timestamp":"2020-01-01 12:00:00","concat":"true","concat-ref":"1","concat-total":"2","concat-part":"1"}"#;
    let s = sms(one(
        Provider::Vonage,
        Action::Sms,
        &post_json(VN_URL, json.as_bytes()),
    ));
    let part = s.part.unwrap();
    assert_eq!((part.reference.as_str(), part.total, part.index), ("1", 2, 1));
    assert_eq!(
        s.received_at,
        Some(Utc.with_ymd_and_hms(2020, 1, 1, 12, 0, 0).unwrap())
    );
    let bad = json.replace(r#""concat-part":"1""#, r#""concat-part":"3""#);
    assert!(matches!(
        parse(Provider::Vonage, Action::Sms, &post_json(VN_URL, bad.as_bytes())),
        Err(ParseError::InvalidField {
            field: "concat-part",
            ..
        })
    ));
    assert_eq!(
        parse(Provider::Vonage, Action::Sms, &post_json(VN_URL, b"{not json")),
        Err(ParseError::MalformedBody("invalid JSON"))
    );
    assert_eq!(
        parse(Provider::Vonage, Action::Sms, &get(&format!("{VN_URL}?text=x"))),
        Err(ParseError::MissingField("messageId"))
    );
}

#[test]
fn vonage_dlr() {
    let body = r#"{"err-code":"0","message-timestamp":"2018-10-25 12:10:29","messageId":"0B00000127FDBC63","msisdn":"447547232824","network-code":"23410","price":"0.03330000","scts":"1810251310","status":"delivered","to":"Vonage"}"#;
    let d = status(one(
        Provider::Vonage,
        Action::Status,
        &post_json(VN_URL, body.as_bytes()),
    ));
    assert_eq!(
        (d.provider_message_id.as_str(), d.state, d.error_code),
        ("0B00000127FDBC63", DeliveryState::Delivered, None)
    );
    assert_eq!(d.at, Some(Utc.with_ymd_and_hms(2018, 10, 25, 13, 10, 0).unwrap()));
    let failed = body
        .replace("delivered", "rejected")
        .replace(r#""err-code":"0""#, r#""err-code":"6""#);
    let d = status(one(
        Provider::Vonage,
        Action::Status,
        &post_json(VN_URL, failed.as_bytes()),
    ));
    assert_eq!(
        (d.state, d.error_code.as_deref()),
        (DeliveryState::Failed, Some("6"))
    );
}

#[test]
fn vonage_voice() {
    let answer = "https://komek.example/answer?to=442079460000&from=447700900000&conversation_uuid=CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab&uuid=aaaaaaaa-bbbb-cccc-dddd-0123456789ab&SipHeader_X-UserId=1938ND9";
    let c = call(one(Provider::Vonage, Action::Voice, &get(answer)));
    assert_eq!(
        (c.call_id.as_str(), &c.kind),
        ("aaaaaaaa-bbbb-cccc-dddd-0123456789ab", &CallEventKind::Started)
    );
    let nested = br#"{"from":"447700900000","to":"442079460000","uuid":"u1","conversation_uuid":"c1","timestamp":"2021-01-01T00:00:00.000Z","dtmf":{"digits":"42","timed_out":true}}"#;
    let c = call(one(Provider::Vonage, Action::Ivr, &post_json(VN_URL, nested)));
    assert!(
        matches!(c.kind, CallEventKind::DigitsEntered { ref digits, timed_out: true } if digits.expose() == "42")
    );
    let flat = br#"{"uuid":"u1","conversation_uuid":"c1","dtmf":"7","timed_out":false}"#;
    let c = call(one(Provider::Vonage, Action::Ivr, &post_json(VN_URL, flat)));
    assert!(
        matches!(c.kind, CallEventKind::DigitsEntered { ref digits, timed_out: false } if digits.expose() == "7")
    );
    let empty = br#"{"uuid":"u1","dtmf":{"digits":"","timed_out":true}}"#;
    assert_eq!(
        call(one(Provider::Vonage, Action::Ivr, &post_json(VN_URL, empty))).kind,
        CallEventKind::NoInput
    );
    let rec = br#"{"start_time":"2020-01-01T12:00:00Z","recording_url":"https://api.nexmo.com/v1/files/aaaaaaaa","size":12222,"recording_uuid":"r1","end_time":"2020-01-01T12:00:10Z","conversation_uuid":"c1","timestamp":"2020-01-01T12:00:10Z"}"#;
    let c = call(one(Provider::Vonage, Action::Ivr, &post_json(VN_URL, rec)));
    assert!(
        matches!(c.kind, CallEventKind::RecordingReady(Recording::Url { ref recording_id, .. }) if recording_id.as_deref() == Some("r1"))
    );
    let dial = br#"{"uuid":"leg2","conversation_uuid":"c1","status":"unanswered","from":"1","to":"2"}"#;
    assert!(matches!(
        call(one(Provider::Vonage, Action::Ivr, &post_json(VN_URL, dial))).kind,
        CallEventKind::DialResult {
            outcome: DialOutcome::NoAnswer,
            ..
        }
    ));
    let done =
        br#"{"uuid":"u1","conversation_uuid":"c1","status":"completed","duration":"35","from":"1","to":"2"}"#;
    assert_eq!(
        call(one(
            Provider::Vonage,
            Action::VoiceStatus,
            &post_json(VN_URL, done)
        ))
        .kind,
        CallEventKind::Hangup {
            cause: HangupCause::Completed,
            duration_secs: Some(35)
        }
    );
    let ringing = br#"{"uuid":"u1","status":"ringing"}"#;
    assert!(matches!(
        call(one(
            Provider::Vonage,
            Action::VoiceStatus,
            &post_json(VN_URL, ringing)
        ))
        .kind,
        CallEventKind::Progress { .. }
    ));
}

#[test]
fn infobip_several_messages() {
    let body = r#"{"results":[{"messageId":"0191e180-7d60-7000-aded-7d8b151cbd5b","from":"385916242493","to":"385921004026","text":"QUIZ Correct answer is Paris","cleanText":"Correct answer is Paris","keyword":"QUIZ","receivedAt":"2016-10-06T09:28:39.220+0000","smsCount":1,"price":{"pricePerMessage":0,"currency":"EUR"},"callbackData":"callbackData"},{"messageId":"second","from":"385916242494","to":"385921004026","text":"help","receivedAt":"2016-10-06T09:29:00.000+0000","smsCount":1}],"messageCount":2,"pendingMessageCount":0}"#;
    let events = parse(
        Provider::Infobip,
        Action::Sms,
        &post_json(VN_URL, body.as_bytes()),
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    let first = sms(events[0].clone());
    assert_eq!(first.event_id, "0191e180-7d60-7000-aded-7d8b151cbd5b");
    assert_eq!(first.text.expose(), "QUIZ Correct answer is Paris");
    assert_eq!(
        first.received_at.unwrap().timestamp(),
        Utc.with_ymd_and_hms(2016, 10, 6, 9, 28, 39).unwrap().timestamp()
    );
    assert_eq!(sms(events[1].clone()).event_id, "second");
    let none = parse(
        Provider::Infobip,
        Action::Sms,
        &post_json(
            VN_URL,
            br#"{"results":[],"messageCount":0,"pendingMessageCount":0}"#,
        ),
    )
    .unwrap();
    assert!(none.is_empty());
    assert_eq!(
        parse(Provider::Infobip, Action::Sms, &post_json(VN_URL, b"{}")),
        Err(ParseError::MissingField("results"))
    );
    let dlr = r#"{"results":[{"bulkId":"b1","messageId":"m1","to":"41793026727","sentAt":"2019-11-09T16:00:00.000+0000","doneAt":"2019-11-09T16:00:00.000+0000","smsCount":1,"price":{"pricePerMessage":0.01,"currency":"EUR"},"status":{"groupId":3,"groupName":"DELIVERED","id":5,"name":"DELIVERED_TO_HANDSET","description":"Message delivered to handset"},"error":{"groupId":0,"groupName":"Ok","id":0,"name":"NO_ERROR","description":"No Error","permanent":false}},{"messageId":"m2","status":{"groupId":5,"groupName":"REJECTED","id":6,"name":"REJECTED_NETWORK"},"error":{"id":9,"name":"EC_ABSENT_SUBSCRIBER"}}]}"#;
    let events = parse(
        Provider::Infobip,
        Action::Status,
        &post_json(VN_URL, dlr.as_bytes()),
    )
    .unwrap();
    let a = status(events[0].clone());
    assert_eq!(
        (a.state, a.error_code.clone(), a.provider_status.as_str()),
        (DeliveryState::Delivered, None, "DELIVERED_TO_HANDSET")
    );
    let b = status(events[1].clone());
    assert_eq!(
        (b.state, b.error_code.as_deref()),
        (DeliveryState::Failed, Some("EC_ABSENT_SUBSCRIBER"))
    );
}

#[test]
fn jasmin_mo_and_dlr() {
    let s = sms(one(
        Provider::Jasmin,
        Action::Sms,
        &post(
            VN_URL,
            b"content=%05v%05nement&coding=0&From=2349067554729&To=2349067554711&id=1001",
        ),
    ));
    assert_eq!(s.text.expose(), "événement");
    assert_eq!(
        (s.event_id.as_str(), s.from.expose().as_str()),
        ("1001", "2349067554729")
    );
    // UCS-2 content, as hex in `binary`.
    let s = sms(one(
        Provider::Jasmin,
        Action::Sms,
        &post(
            VN_URL,
            b"id=1002&from=77011234567&to=1414&coding=8&content=x&binary=041f043e043c043e0433043804420435",
        ),
    ));
    assert_eq!(s.text.expose(), "Помогите");
    let d = status(one(
        Provider::Jasmin,
        Action::Status,
        &post(
            VN_URL,
            b"id=1001&message_status=DELIVRD&level=2&err=000&donedate=1810251310",
        ),
    ));
    assert_eq!(
        (d.state, d.error_code, d.provider_message_id.as_str()),
        (DeliveryState::Delivered, None, "1001")
    );
    let d = status(one(
        Provider::Jasmin,
        Action::Status,
        &post(VN_URL, b"id=1001&message_status=UNDELIV&err=001"),
    ));
    assert_eq!(
        (d.state, d.error_code.as_deref()),
        (DeliveryState::Failed, Some("001"))
    );
    assert_eq!(
        parse(
            Provider::Jasmin,
            Action::Sms,
            &post(VN_URL, b"coding=0&from=1&id=1")
        ),
        Err(ParseError::MissingField("content"))
    );
    assert!(
        parse(
            Provider::Jasmin,
            Action::Status,
            &post(VN_URL, b"id=1&message_status=NOPE")
        )
        .is_err()
    );
}

#[test]
fn smssync_form() {
    let body = "from=%2B77011234567&message=help&message_id=042b3515-ef6b-f424-c4qd&sent_to=%2B77001112233&secret=s3cret&device_id=1&sent_timestamp=1700000000000";
    let s = sms(one(
        Provider::Smssync,
        Action::Sms,
        &post(VN_URL, body.as_bytes()),
    ));
    assert_eq!(
        (
            s.event_id.as_str(),
            s.from.expose().as_str(),
            s.text.expose().as_str()
        ),
        ("042b3515-ef6b-f424-c4qd", "+77011234567", "help")
    );
    assert_eq!(s.received_at.unwrap().timestamp(), 1_700_000_000);
    let no_id = "from=%2B77011234567&message=help&secret=s3cret&sent_timestamp=1700000000";
    let a = sms(one(
        Provider::Smssync,
        Action::Sms,
        &post(VN_URL, no_id.as_bytes()),
    ));
    let b = sms(one(
        Provider::Smssync,
        Action::Sms,
        &post(VN_URL, no_id.as_bytes()),
    ));
    assert!(a.event_id.starts_with("sha256:") && a.event_id == b.event_id);
    assert!(
        parse(
            Provider::Smssync,
            Action::Sms,
            &get("https://k.example/w?task=send&secret=s3cret")
        )
        .unwrap()
        .is_empty()
    );
    assert_eq!(
        parse(Provider::Smssync, Action::Sms, &post(VN_URL, b"message=x")),
        Err(ParseError::MissingField("from"))
    );
}

#[test]
fn capcom6_envelopes() {
    let a1 = r#"{"deviceId":"ffffffffceb0b1db00000193991c27e5","event":"sms:received","id":"-9qZ4oiiZZRm-h_A3mrp2","payload":{"message":"Android is always a sweet treat!","receivedAt":"2025-03-14T07:29:55.000+07:00","messageId":"69bde8d0","phoneNumber":"6505551212","simNumber":1},"webhookId":"LreFUt-Z3sSq0JufY9uWB"}"#;
    let s = sms(one(
        Provider::Capcom6,
        Action::Sms,
        &post_json(VN_URL, a1.as_bytes()),
    ));
    assert_eq!(s.event_id, "-9qZ4oiiZZRm-h_A3mrp2");
    assert_eq!(s.from.expose(), "6505551212");
    assert_eq!(s.text.expose(), "Android is always a sweet treat!");
    assert_eq!(
        s.received_at,
        Some(Utc.with_ymd_and_hms(2025, 3, 14, 0, 29, 55).unwrap())
    );
    let newer = r#"{"deviceId":"d","event":"sms:received","id":"e2","payload":{"messageId":"m","message":"Привет","sender":"+77011234567","recipient":"+77000000000","simNumber":null,"receivedAt":"2025-03-14T07:29:55.000+05:00"},"webhookId":"w"}"#;
    let s = sms(one(
        Provider::Capcom6,
        Action::Sms,
        &post_json(VN_URL, newer.as_bytes()),
    ));
    assert_eq!(
        (s.from.expose().as_str(), s.to.unwrap().expose().as_str()),
        ("+77011234567", "+77000000000")
    );
    let delivered = r#"{"deviceId":"d","event":"sms:delivered","id":"e3","payload":{"messageId":"out-1","phoneNumber":"+77011234567","deliveredAt":"2025-03-14T07:30:00.000+05:00"},"webhookId":"w"}"#;
    let d = status(one(
        Provider::Capcom6,
        Action::Status,
        &post_json(VN_URL, delivered.as_bytes()),
    ));
    assert_eq!(
        (d.provider_message_id.as_str(), d.state),
        ("out-1", DeliveryState::Delivered)
    );
    let failed = r#"{"deviceId":"d","event":"sms:failed","id":"e4","payload":{"messageId":"out-2","phoneNumber":"+7","failedAt":"2025-03-14T07:30:00.000+05:00","reason":"RESULT_ERROR_NO_SERVICE"}}"#;
    assert_eq!(
        status(one(
            Provider::Capcom6,
            Action::Status,
            &post_json(VN_URL, failed.as_bytes())
        ))
        .state,
        DeliveryState::Failed
    );
    let ping = r#"{"deviceId":"d","event":"system:ping","id":"e5","payload":{},"webhookId":"w"}"#;
    assert!(
        parse(
            Provider::Capcom6,
            Action::Sms,
            &post_json(VN_URL, ping.as_bytes())
        )
        .unwrap()
        .is_empty()
    );
    assert_eq!(
        parse(Provider::Capcom6, Action::Sms, &post_json(VN_URL, b"[]")),
        Err(ParseError::MalformedBody("expected a JSON object"))
    );
    let no_id = a1.replace(r#""id":"-9qZ4oiiZZRm-h_A3mrp2","#, "");
    assert_eq!(
        parse(
            Provider::Capcom6,
            Action::Sms,
            &post_json(VN_URL, no_id.as_bytes())
        ),
        Err(ParseError::MissingField("id"))
    );
    let bad_date = a1.replace("2025-03-14T07:29:55.000+07:00", "yesterday");
    assert!(matches!(
        parse(
            Provider::Capcom6,
            Action::Sms,
            &post_json(VN_URL, bad_date.as_bytes())
        ),
        Err(ParseError::InvalidField {
            field: "receivedAt",
            ..
        })
    ));
}

#[test]
fn freeswitch_httapi() {
    let start = "session_id=4f0b-uuid&hostname=fs1&Caller-Caller-ID-Number=%2B77011234567&Caller-Destination-Number=1414&url=x";
    let c = call(one(
        Provider::Freeswitch,
        Action::Voice,
        &post(VN_URL, start.as_bytes()),
    ));
    assert_eq!(
        (c.call_id.as_str(), &c.kind),
        ("4f0b-uuid", &CallEventKind::Started)
    );
    assert_eq!(c.from.unwrap().expose(), "+77011234567");
    let digits = format!("{start}&komek_digits=3");
    assert!(matches!(
        call(one(
            Provider::Freeswitch,
            Action::Ivr,
            &post(VN_URL, digits.as_bytes())
        ))
        .kind,
        CallEventKind::DigitsEntered { .. }
    ));
    let body = b"--BND\r\nContent-Disposition: form-data; name=\"session_id\"\r\n\r\n4f0b-uuid\r\n--BND\r\nContent-Disposition: form-data; name=\"komek_recording\"; filename=\"komek-recording.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF....WAVE\r\n--BND--\r\n";
    let req = WebhookRequest::new("POST", VN_URL, body, now())
        .with_header("Content-Type", "multipart/form-data; boundary=BND");
    let c = call(one(Provider::Freeswitch, Action::Ivr, &req));
    assert!(
        matches!(c.kind, CallEventKind::RecordingReady(Recording::Inline { ref audio, .. }) if audio.expose() == b"RIFF....WAVE")
    );
    let exiting = format!("{start}&exiting=true&variable_hangup_cause=NORMAL_CLEARING&variable_billsec=12");
    assert_eq!(
        call(one(
            Provider::Freeswitch,
            Action::Ivr,
            &post(VN_URL, exiting.as_bytes())
        ))
        .kind,
        CallEventKind::Hangup {
            cause: HangupCause::Completed,
            duration_secs: Some(12)
        }
    );
    let dial = format!("{start}&variable_originate_disposition=USER_BUSY");
    assert!(matches!(
        call(one(
            Provider::Freeswitch,
            Action::Ivr,
            &post(VN_URL, dial.as_bytes())
        ))
        .kind,
        CallEventKind::DialResult {
            outcome: DialOutcome::Busy,
            ..
        }
    ));
    assert_eq!(
        parse(
            Provider::Freeswitch,
            Action::Voice,
            &post(VN_URL, b"hostname=fs1")
        ),
        Err(ParseError::MissingField("session_id"))
    );
    let broken = WebhookRequest::new("POST", VN_URL, b"garbage", now())
        .with_header("Content-Type", "multipart/form-data; boundary=BND");
    assert_eq!(
        parse(Provider::Freeswitch, Action::Voice, &broken),
        Err(ParseError::MalformedBody("invalid multipart body"))
    );
}

#[test]
fn unsupported_actions_are_typed_errors() {
    for p in Provider::all() {
        for a in Action::ALL {
            if !p.supports(a) {
                assert_eq!(
                    parse(*p, a, &post(VN_URL, b"")),
                    Err(ParseError::UnsupportedAction {
                        provider: *p,
                        action: a
                    })
                );
            }
        }
    }
}

#[test]
fn events_debug_redacts_personal_data() {
    let body = "from=%2B77011234567&message=I+need+help&message_id=m1&secret=s";
    let events = parse(Provider::Smssync, Action::Sms, &post(VN_URL, body.as_bytes())).unwrap();
    let dbg = format!("{events:?}");
    assert!(
        !dbg.contains("77011234567") && !dbg.contains("need help"),
        "{dbg}"
    );
}
