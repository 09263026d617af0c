//! Outbound SMS against a local mock HTTP server: request shape, timeouts, error classes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use komek_gateways::{
    ChannelCredentials, Endpoints, OutboundSms, Provider, SendError, SendErrorClass, SenderConfig, Sensitive,
    SmsSender,
};
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SID: &str = "AC00000000000000000000000000000000";

fn sender(base: &str, total: Duration) -> SmsSender {
    SmsSender::new(SenderConfig {
        connect_timeout: Duration::from_millis(500),
        total_timeout: total,
        endpoints: Endpoints::all_at(base),
        ..SenderConfig::default()
    })
    .unwrap()
}

fn sms(text: &str) -> OutboundSms {
    OutboundSms {
        from: Some("+15005550006".into()),
        to: Sensitive::new("+77011234567".into()),
        text: Sensitive::new(text.into()),
        status_callback_url: Some("https://komek.example/webhooks/twilio/c1/status".into()),
    }
}

fn twilio() -> ChannelCredentials {
    ChannelCredentials::parse(Provider::Twilio, &format!("{SID}:token")).unwrap()
}

async fn twilio_with(status: u16, body: &str) -> Result<komek_gateways::SentMessage, SendError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    sender(&server.uri(), Duration::from_secs(5))
        .send(Provider::Twilio, &twilio(), &sms("hi"))
        .await
}

#[tokio::test]
async fn twilio_request_shape_and_success() {
    let server = MockServer::start().await;
    // Basic base64("AC…:token").
    let auth = format!("Basic {}", base64_basic(&format!("{SID}:token")));
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
        .and(header("authorization", auth.as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("To=%2B77011234567"))
        .and(body_string_contains("Body=%D0%9F%D0%BE%D0%BC%D0%BE%D1%89%D1%8C"))
        .and(body_string_contains("From=%2B15005550006"))
        .and(body_string_contains("StatusCallback=https%3A%2F%2Fkomek.example"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM123","status":"queued"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let sent = sender(&server.uri(), Duration::from_secs(5))
        .send(Provider::Twilio, &twilio(), &sms("Помощь"))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, "SM123");
}

fn base64_basic(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn twilio_error_classes() {
    let e = twilio_with(500, "").await.unwrap_err();
    assert_eq!(
        (e.class(), e.code()),
        (SendErrorClass::Retryable, "send_provider_unavailable")
    );
    let e = twilio_with(503, "").await.unwrap_err();
    assert!(e.is_retryable());
    let e = twilio_with(429, r#"{"code":20429}"#).await.unwrap_err();
    assert!(matches!(e, SendError::RateLimited { .. }) && e.is_retryable());
    let e = twilio_with(
        400,
        r#"{"code":21211,"message":"The 'To' number +77011234567 is not a valid phone number."}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        SendError::Rejected {
            provider: Provider::Twilio,
            status: 400,
            provider_code: Some("21211".into())
        }
    );
    assert!(!e.is_retryable());
    assert!(
        !e.to_string().contains("77011234567"),
        "errors never quote the number"
    );
    let e = twilio_with(401, r#"{"code":20003}"#).await.unwrap_err();
    assert!(matches!(e, SendError::Unauthorized { .. }) && !e.is_retryable());
    // A redirect is not followed and is not success.
    let e = twilio_with(302, "").await.unwrap_err();
    assert!(!e.is_retryable());
    // 2xx without a sid: permanent, the message may have been sent.
    let e = twilio_with(201, "not json").await.unwrap_err();
    assert!(matches!(e, SendError::BadResponse { .. }) && !e.is_retryable());
}

#[tokio::test]
async fn timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_string(r#"{"sid":"SM1"}"#)
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let e = sender(&server.uri(), Duration::from_millis(300))
        .send(Provider::Twilio, &twilio(), &sms("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Timeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    // Bind then drop a listener to get a local port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = sender(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2))
        .send(Provider::Twilio, &twilio(), &sms("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Connect { .. }), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn vonage_sms_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .and(body_string_contains("api_key=key1"))
        .and(body_string_contains("api_secret=sec1"))
        .and(body_string_contains("to=77011234567"))
        .and(body_string_contains("type=unicode"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"message-count":"1","messages":[{"to":"77011234567","message-id":"0A0000000123ABCD1","status":"0","remaining-balance":"3.14","message-price":"0.03","network":"12345"}]}"#))
        .mount(&server)
        .await;
    let creds = ChannelCredentials::parse(
        Provider::Vonage,
        "signature_secret=s;api_key=key1;api_secret=sec1",
    )
    .unwrap();
    let s = sender(&server.uri(), Duration::from_secs(5));
    let sent = s
        .send(Provider::Vonage, &creds, &sms("Жардам керек"))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, "0A0000000123ABCD1");

    for (code, retryable) in [("1", true), ("5", true), ("4", false), ("15", false)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(format!(
                r#"{{"message-count":"1","messages":[{{"status":"{code}","error-text":"x"}}]}}"#
            )))
            .mount(&server)
            .await;
        let e = sender(&server.uri(), Duration::from_secs(5))
            .send(Provider::Vonage, &creds, &sms("hi"))
            .await
            .unwrap_err();
        assert_eq!(e.is_retryable(), retryable, "status {code}: {e:?}");
    }
    let no_api = ChannelCredentials::parse(Provider::Vonage, "signature_secret=s").unwrap();
    let e = s.send(Provider::Vonage, &no_api, &sms("hi")).await.unwrap_err();
    assert_eq!(e.code(), "send_not_configured");
}

#[tokio::test]
async fn africastalking_messaging() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/version1/messaging"))
        .and(header("apikey", "atsk_key"))
        .and(body_string_contains("username=myapp"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"SMSMessageData":{"Message":"Sent to 1/1 Total Cost: KES 0.8000","Recipients":[{"statusCode":101,"number":"+254711XXXYYY","status":"Success","cost":"KES 0.8000","messageId":"ATPid_SampleTxnId123"}]}}"#))
        .mount(&server)
        .await;
    let creds = ChannelCredentials::parse(Provider::AfricasTalking, "myapp:atsk_key").unwrap();
    let sent = sender(&server.uri(), Duration::from_secs(5))
        .send(Provider::AfricasTalking, &creds, &sms("hi"))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, "ATPid_SampleTxnId123");

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"SMSMessageData":{"Message":"Sent to 0/1","Recipients":[{"statusCode":403,"number":"+1","status":"InvalidPhoneNumber","cost":"0","messageId":"None"}]}}"#))
        .mount(&server)
        .await;
    let e = sender(&server.uri(), Duration::from_secs(5))
        .send(Provider::AfricasTalking, &creds, &sms("hi"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        SendError::Rejected {
            provider: Provider::AfricasTalking,
            status: 201,
            provider_code: Some("403".into())
        }
    );
}

#[tokio::test]
async fn capcom6_local_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/message"))
        .and(header("authorization", format!("Basic {}", base64_basic("sms:pw")).as_str()))
        .and(body_json(serde_json::json!({"message": "hi", "phoneNumbers": ["+77011234567"], "withDeliveryReport": true})))
        .respond_with(ResponseTemplate::new(202).set_body_string(r#"{"id":"PyDmBQZZXYmyxMwED8Fzy","state":"Pending","recipients":[{"phoneNumber":"+77011234567","state":"Pending"}]}"#))
        .mount(&server)
        .await;
    let creds = ChannelCredentials::parse(
        Provider::Capcom6,
        &format!("signing_key=k;user=sms;password=pw;api_url={}", server.uri()),
    )
    .unwrap();
    let sent = sender("http://127.0.0.1:9", Duration::from_secs(5))
        .send(Provider::Capcom6, &creds, &sms("hi"))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, "PyDmBQZZXYmyxMwED8Fzy");
    let no_login = ChannelCredentials::parse(Provider::Capcom6, "signing_key=k").unwrap();
    let e = sender("http://127.0.0.1:9", Duration::from_secs(5))
        .send(Provider::Capcom6, &no_login, &sms("hi"))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::NotConfigured { .. }));
}

#[tokio::test]
async fn infobip_advanced() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/2/text/advanced"))
        .and(header("authorization", "App ib-key"))
        .and(body_json(serde_json::json!({"messages": [{"destinations": [{"to": "+77011234567"}], "text": "hi", "from": "+15005550006", "notifyUrl": "https://komek.example/webhooks/twilio/c1/status", "notifyContentType": "application/json"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"bulkId":"b","messages":[{"messageId":"ib-1","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED"},"to":"+77011234567"}]}"#))
        .mount(&server)
        .await;
    let creds = ChannelCredentials::parse(
        Provider::Infobip,
        &format!("api_key=ib-key;base_url={}", server.uri()),
    )
    .unwrap();
    let sent = sender("http://127.0.0.1:9", Duration::from_secs(5))
        .send(Provider::Infobip, &creds, &sms("hi"))
        .await
        .unwrap();
    assert_eq!(sent.provider_message_id, "ib-1");
}

#[tokio::test]
async fn jasmin_http_send() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(body_string_contains("username=foo"))
        .and(body_string_contains("coding=8"))
        .and(body_string_contains(
            "hex-content=041f043e043c043e0433043804420435",
        ))
        .and(body_string_contains("dlr=yes"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("Success \"07033084-5cfd-4812-90a4-e4d24ffb6e3d\""),
        )
        .mount(&server)
        .await;
    let creds = ChannelCredentials::parse(
        Provider::Jasmin,
        &format!("user=foo;password=bar;send_url={}/send", server.uri()),
    )
    .unwrap();
    let s = sender("http://127.0.0.1:9", Duration::from_secs(5));
    let sent = s.send(Provider::Jasmin, &creds, &sms("Помогите")).await.unwrap();
    assert_eq!(sent.provider_message_id, "07033084-5cfd-4812-90a4-e4d24ffb6e3d");

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(403).set_body_string("Error \"Authentication failure for username:foo\""),
        )
        .mount(&server)
        .await;
    let creds = ChannelCredentials::parse(
        Provider::Jasmin,
        &format!("user=foo;password=bad;send_url={}/send", server.uri()),
    )
    .unwrap();
    let e = s.send(Provider::Jasmin, &creds, &sms("hi")).await.unwrap_err();
    assert!(matches!(e, SendError::Unauthorized { .. }) && !e.is_retryable());
}

#[tokio::test]
async fn unsupported_and_mismatched() {
    let s = sender("http://127.0.0.1:9", Duration::from_secs(1));
    let sync = ChannelCredentials::parse(Provider::Smssync, "secret").unwrap();
    assert_eq!(
        s.send(Provider::Smssync, &sync, &sms("x")).await,
        Err(SendError::Unsupported(Provider::Smssync))
    );
    assert!(matches!(
        s.send(Provider::Twilio, &sync, &sms("x")).await,
        Err(SendError::CredentialsMismatch { .. })
    ));
}
