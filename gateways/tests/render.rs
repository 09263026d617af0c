//! Rendered TwiML, NCCO, Africa's Talking XML and FreeSWITCH httapi XML: expected shape,
//! well-formedness, and arbitrary text surviving an XML/JSON parser unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use komek_gateways::{IvrStep, Prompt, Provider, RenderError, ack, render_ivr, xml_representable};
use proptest::prelude::*;
use quick_xml::events::Event;

/// Parses the whole document (checking it is well formed) and returns, in document order,
/// (element name, attributes, text content) of every element.
/// (element name, attributes, text content).
type Element = (String, Vec<(String, String)>, String);

fn elements(xml: &str) -> Vec<Element> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: Vec<Element> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let attrs = e.attributes().map(|a| {
                    let a = a.unwrap();
                    (
                        a.key.as_ref().to_owned(),
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                });
                out.push((e.name().as_ref().to_owned(), attrs.collect(), String::new()));
                stack.push(out.len() - 1);
            }
            Event::Empty(e) => {
                let attrs = e.attributes().map(|a| {
                    let a = a.unwrap();
                    (
                        a.key.as_ref().to_owned(),
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                });
                out.push((e.name().as_ref().to_owned(), attrs.collect(), String::new()));
            }
            Event::End(_) => {
                stack.pop().expect("balanced");
            }
            Event::Text(t) => {
                if let Some(i) = stack.last() {
                    out[*i].2.push_str(&t.xml10_content());
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
                    out[*i].2.push_str(&c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements");
    out
}

fn attr<'a>(el: &'a Element, name: &str) -> Option<&'a str> {
    el.1.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn menu(action: &str) -> Vec<IvrStep> {
    vec![
        IvrStep::Prompt(Prompt::play("kk-KZ", "https://cdn.example/kk/welcome.mp3")),
        IvrStep::Gather {
            prompts: vec![Prompt::say("en-US", "enter a number")],
            num_digits: Some(1),
            timeout_secs: 30,
            finish_on_key: None,
            action_url: action.into(),
        },
    ]
}

#[test]
fn twiml_gather_matches_mailroom_shape() {
    let r = render_ivr(
        Provider::Twilio,
        &menu("http://temba.io/resume?session=1&wait_type=gather"),
    )
    .unwrap();
    assert_eq!((r.status, r.content_type), (200, "text/xml"));
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>")
    );
    assert!(
        r.body
            .contains(r#"<Play>https://cdn.example/kk/welcome.mp3</Play>"#)
    );
    assert!(
        r.body
            .contains(r#"action="http://temba.io/resume?session=1&amp;wait_type=gather""#)
    );
    assert!(r.body.contains(r#"<Say language="en-US">enter a number</Say></Gather><Redirect method="POST">http://temba.io/resume?session=1&amp;wait_type=gather</Redirect></Response>"#), "{}", r.body);
    let els = elements(&r.body);
    let gather = els.iter().find(|e| e.0 == "Gather").unwrap();
    assert_eq!(attr(gather, "numDigits"), Some("1"));
    assert_eq!(attr(gather, "timeout"), Some("30"));
}

#[test]
fn twiml_record_dial_hangup() {
    let rec = render_ivr(
        Provider::Twilio,
        &[
            IvrStep::Prompt(Prompt::say("ru-RU", "Говорите после сигнала")),
            IvrStep::Record {
                max_length_secs: 600,
                finish_on_key: Some('#'),
                play_beep: true,
                action_url: "https://k/ivr?s=rec".into(),
            },
        ],
    )
    .unwrap();
    assert!(rec.body.contains(r##"<Say language="ru-RU">Говорите после сигнала</Say><Record action="https://k/ivr?s=rec" method="POST" maxLength="600" finishOnKey="#" playBeep="true"/><Redirect method="POST">https://k/ivr?s=rec</Redirect>"##), "{}", rec.body);
    let dial = render_ivr(
        Provider::Twilio,
        &[IvrStep::Dial {
            numbers: vec!["+1234567890".into()],
            ring_timeout_secs: 20,
            caller_id: Some("+77000000000".into()),
            action_url: "https://k/ivr?s=dial".into(),
        }],
    )
    .unwrap();
    assert!(dial.body.contains(r#"<Dial action="https://k/ivr?s=dial" method="POST" timeout="20" callerId="+77000000000"><Number>+1234567890</Number></Dial>"#));
    let bye = render_ivr(
        Provider::Twilio,
        &[
            IvrStep::Prompt(Prompt::play("ky-KG", "https://mailroom.io/recordings/foo.wav")),
            IvrStep::Hangup,
        ],
    )
    .unwrap();
    assert!(
        bye.body
            .ends_with("<Response><Play>https://mailroom.io/recordings/foo.wav</Play><Hangup/></Response>")
    );
}

#[test]
fn language_rules() {
    // Twilio does not speak Kazakh: text alone fails, text + recording plays the recording.
    let kk = Prompt::say("kk-KZ", "Сәлеметсіз бе");
    assert_eq!(
        render_ivr(Provider::Twilio, &[IvrStep::Prompt(kk.clone())]),
        Err(RenderError::LanguageNotSpoken {
            provider: Provider::Twilio,
            lang: "kk-KZ".into()
        })
    );
    let r = render_ivr(
        Provider::Twilio,
        &[IvrStep::Prompt(kk.or_play("https://cdn/kk.mp3"))],
    )
    .unwrap();
    assert!(r.body.contains("<Play>https://cdn/kk.mp3</Play>"));
    // Africa's Talking speaks English only.
    assert!(
        render_ivr(
            Provider::AfricasTalking,
            &[IvrStep::Prompt(Prompt::say("ru-RU", "Здравствуйте"))]
        )
        .is_err()
    );
    assert!(
        render_ivr(
            Provider::AfricasTalking,
            &[IvrStep::Prompt(Prompt::say("en", "Hello"))]
        )
        .is_ok()
    );
    assert_eq!(
        render_ivr(Provider::Jasmin, &[]),
        Err(RenderError::NoVoice(Provider::Jasmin))
    );
    let empty = Prompt {
        lang: "en-US".into(),
        text: None,
        audio_url: None,
    };
    assert_eq!(
        render_ivr(Provider::Twilio, &[IvrStep::Prompt(empty)]),
        Err(RenderError::EmptyPrompt { index: 0 })
    );
}

#[test]
fn shared_step_rules() {
    for p in [
        Provider::Twilio,
        Provider::Vonage,
        Provider::AfricasTalking,
        Provider::Freeswitch,
    ] {
        assert_eq!(
            render_ivr(p, &[IvrStep::Hangup, IvrStep::Pause { secs: 1 }]),
            Err(RenderError::StepAfterTerminal { index: 1 }),
            "{p}"
        );
        let two = IvrStep::Dial {
            numbers: vec!["+1".into(), "+2".into()],
            ring_timeout_secs: 20,
            caller_id: None,
            action_url: "https://k/ivr".into(),
        };
        assert_eq!(render_ivr(p, &[two]).is_ok(), p.dials_in_order(), "{p}");
        let bad = IvrStep::Gather {
            prompts: vec![],
            num_digits: Some(0),
            timeout_secs: 5,
            finish_on_key: None,
            action_url: "https://k".into(),
        };
        assert!(matches!(
            render_ivr(p, &[bad]),
            Err(RenderError::InvalidStep { .. })
        ));
    }
}

#[test]
fn ncco_shape() {
    let r = render_ivr(Provider::Vonage, &menu("https://k/ivr?s=menu")).unwrap();
    assert_eq!(r.content_type, "application/json");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v[0],
        serde_json::json!({"action": "stream", "streamUrl": ["https://cdn.example/kk/welcome.mp3"], "bargeIn": false})
    );
    assert_eq!(
        v[1],
        serde_json::json!({"action": "talk", "text": "enter a number", "language": "en-US", "bargeIn": true})
    );
    assert_eq!(
        v[2],
        serde_json::json!({"action": "input", "type": ["dtmf"], "dtmf": {"timeOut": 10, "maxDigits": 1, "submitOnHash": false}, "eventUrl": ["https://k/ivr?s=menu"], "eventMethod": "POST"})
    );
    let rec = render_ivr(
        Provider::Vonage,
        &[IvrStep::Record {
            max_length_secs: 120,
            finish_on_key: Some('#'),
            play_beep: true,
            action_url: "https://k/r".into(),
        }],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&rec.body).unwrap();
    assert_eq!(v[0]["action"], "record");
    assert_eq!(v[0]["endOnKey"], "#");
    assert_eq!(v[1]["action"], "notify");
    let dial = render_ivr(
        Provider::Vonage,
        &[IvrStep::Dial {
            numbers: vec!["447000000000".into()],
            ring_timeout_secs: 25,
            caller_id: Some("1234567890".into()),
            action_url: "https://k/d".into(),
        }],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&dial.body).unwrap();
    assert_eq!(
        v[0]["endpoint"],
        serde_json::json!([{"type": "phone", "number": "447000000000"}])
    );
    assert_eq!(v[0]["from"], "1234567890");
    assert_eq!(v[0]["eventType"], "synchronous");
    assert!(
        render_ivr(
            Provider::Vonage,
            &[IvrStep::Gather {
                prompts: vec![],
                num_digits: None,
                timeout_secs: 5,
                finish_on_key: Some('*'),
                action_url: "https://k".into()
            }]
        )
        .is_err()
    );
}

#[test]
fn africastalking_xml_shape() {
    let r = render_ivr(
        Provider::AfricasTalking,
        &[IvrStep::Gather {
            prompts: vec![Prompt::say(
                "en-US",
                "Please enter your account number followed by the hash sign",
            )],
            num_digits: None,
            timeout_secs: 30,
            finish_on_key: Some('#'),
            action_url: "https://k/ivr".into(),
        }],
    )
    .unwrap();
    assert!(r.body.contains(r##"<GetDigits timeout="30" callbackUrl="https://k/ivr" finishOnKey="#"><Say>Please enter your account number followed by the hash sign</Say></GetDigits><Redirect>https://k/ivr</Redirect>"##), "{}", r.body);
    let d = render_ivr(
        Provider::AfricasTalking,
        &[IvrStep::Dial {
            numbers: vec!["+254711000001".into(), "+254711000002".into()],
            ring_timeout_secs: 20,
            caller_id: None,
            action_url: "https://k/d".into(),
        }],
    )
    .unwrap();
    assert!(
        d.body
            .contains(r#"<Dial phoneNumbers="+254711000001,+254711000002" sequential="true"/>"#)
    );
    assert!(render_ivr(Provider::AfricasTalking, &[IvrStep::Pause { secs: 2 }]).is_err());
}

#[test]
fn httapi_shape() {
    let r = render_ivr(
        Provider::Freeswitch,
        &menu("http://komek.local/webhooks/freeswitch/c/ivr?s=menu"),
    )
    .unwrap();
    let els = elements(&r.body);
    assert_eq!(els[0].0, "document");
    assert_eq!(attr(&els[0], "type"), Some("xml/freeswitch-httapi"));
    assert_eq!(els[1].0, "work");
    assert_eq!(
        (els[2].0.as_str(), attr(&els[2], "file")),
        ("playback", Some("https://cdn.example/kk/welcome.mp3"))
    );
    let speak = &els[3];
    assert_eq!(speak.0, "speak");
    assert_eq!(attr(speak, "name"), Some("komek_digits"));
    assert_eq!(
        attr(speak, "action"),
        Some("http://komek.local/webhooks/freeswitch/c/ivr?s=menu")
    );
    assert_eq!((els[4].0.as_str(), els[4].2.as_str()), ("bind", "~\\d{1}"));
    assert_eq!(els[5].0, "continue");
    let d = render_ivr(
        Provider::Freeswitch,
        &[IvrStep::Dial {
            numbers: vec!["+77011234567".into(), "sofia/gateway/gsm/+77017654321".into()],
            ring_timeout_secs: 20,
            caller_id: None,
            action_url: "http://k/d".into(),
        }],
    )
    .unwrap();
    assert!(d.body.contains("<dial action=\"http://k/d\">[leg_timeout=20]loopback/+77011234567/default|[leg_timeout=20]sofia/gateway/gsm/+77017654321</dial>"), "{}", d.body);
}

#[test]
fn acks() {
    use komek_gateways::{AckOutcome::*, Action};
    let t = ack(Provider::Twilio, Action::Sms, Accepted);
    assert_eq!((t.status, t.content_type), (200, "text/xml"));
    assert!(t.body.ends_with("<Response/>"));
    assert_eq!(ack(Provider::Jasmin, Action::Sms, Accepted).body, "ACK/Jasmin");
    let s: serde_json::Value =
        serde_json::from_str(&ack(Provider::Smssync, Action::Sms, Accepted).body).unwrap();
    assert_eq!(
        s,
        serde_json::json!({"payload": {"success": true, "error": null}})
    );
    for p in Provider::all() {
        for a in p.actions() {
            assert_eq!(ack(*p, *a, Accepted).status, 200);
            assert_eq!(ack(*p, *a, TemporaryFailure).status, 503);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn xml_text_round_trips(text in any::<String>(), url in any::<String>()) {
        prop_assume!(!xml_representable(&text).is_empty() && !xml_representable(&url).is_empty());
        let want_text = xml_representable(&text);
        let want_url = xml_representable(&url);
        let steps = vec![
            IvrStep::Prompt(Prompt::say("en-US", text.clone())),
            IvrStep::Redirect { url: url.clone() },
        ];
        // Twilio: text content; AT: text content; FreeSWITCH: attributes.
        for p in [Provider::Twilio, Provider::AfricasTalking] {
            let r = render_ivr(p, &steps).unwrap();
            let els = elements(&r.body);
            let say = els.iter().find(|e| e.0 == "Say").unwrap();
            prop_assert_eq!(&say.2, &want_text);
            let redirect = els.iter().find(|e| e.0 == "Redirect").unwrap();
            prop_assert_eq!(&redirect.2, &want_url);
        }
        let r = render_ivr(Provider::Freeswitch, &steps).unwrap();
        let els = elements(&r.body);
        let speak = els.iter().find(|e| e.0 == "speak").unwrap();
        prop_assert_eq!(attr(speak, "text"), Some(want_text.as_str()));
        let cont = els.iter().find(|e| e.0 == "continue").unwrap();
        prop_assert_eq!(attr(cont, "action"), Some(want_url.as_str()));
        // Action URLs in attributes (Twilio Gather).
        let g = render_ivr(Provider::Twilio, &[IvrStep::Gather { prompts: vec![], num_digits: Some(1), timeout_secs: 5, finish_on_key: None, action_url: url.clone() }]).unwrap();
        let els = elements(&g.body);
        let gather = els.iter().find(|e| e.0 == "Gather").unwrap();
        prop_assert_eq!(attr(gather, "action"), Some(want_url.as_str()));
    }

    #[test]
    fn ncco_text_round_trips(text in any::<String>(), url in any::<String>()) {
        prop_assume!(!text.is_empty() && !url.is_empty());
        let r = render_ivr(Provider::Vonage, &[
            IvrStep::Prompt(Prompt::say("ru-RU", text.clone())),
            IvrStep::Redirect { url: url.clone() },
        ]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        prop_assert_eq!(v[0]["text"].as_str(), Some(text.as_str()));
        prop_assert_eq!(v[1]["eventUrl"][0].as_str(), Some(url.as_str()));
    }
}
