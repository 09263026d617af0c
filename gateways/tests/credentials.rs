//! The `--secret` formats of every provider: accepted shapes, typed errors, redacted `Debug`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use komek_gateways::{ChannelCredentials, CredentialsError, Provider};

fn ok(p: Provider, secret: &str) -> ChannelCredentials {
    let c = ChannelCredentials::parse(p, secret).unwrap_or_else(|e| panic!("{p} {secret:?}: {e}"));
    assert_eq!(c.provider(), p);
    c
}

fn err(p: Provider, secret: &str) -> CredentialsError {
    ChannelCredentials::parse(p, secret).expect_err(secret)
}

#[test]
fn accepted_formats() {
    ok(Provider::Capcom6, "signing_key=abc");
    ok(
        Provider::Capcom6,
        " signing_key=abc ; user=sms ; password=p=w:d ; api_url=http://192.168.1.20:8080 ",
    );
    ok(Provider::Twilio, "AC0123456789abcdef0123456789abcdef:authtoken");
    ok(
        Provider::Twilio,
        "AC0123456789abcdef0123456789abcdef:authtoken:oldtoken",
    );
    ok(
        Provider::Twilio,
        "account_sid=AC0123456789abcdef0123456789abcdef;auth_token=t",
    );
    ok(Provider::Vonage, "signature_secret=s");
    ok(
        Provider::Vonage,
        "signature_secret=s;signature_method=sha512;api_key=k;api_secret=x;jwt_max_age=600;sig_max_age=300",
    );
    ok(Provider::AfricasTalking, "");
    ok(Provider::AfricasTalking, "sandbox:atsk_123");
    ok(
        Provider::AfricasTalking,
        "username=app;api_key=k;allow_ips=196.201.214.0/24",
    );
    ok(Provider::AfricasTalking, "allow_ips=196.201.214.0/24");
    ok(Provider::Infobip, "");
    ok(
        Provider::Infobip,
        "api_key=k;base_url=https://abc.api.infobip.com/",
    );
    ok(Provider::Jasmin, "");
    ok(
        Provider::Jasmin,
        "user=u;password=p;send_url=http://127.0.0.1:1401/send;allow_ips=127.0.0.1",
    );
    ok(Provider::Smssync, "any string; even = and : and ;");
    ok(Provider::Freeswitch, "komek:pa:ss");
    ok(Provider::Freeswitch, "allow_ips=10.0.0.5");
}

#[test]
fn typed_errors() {
    assert_eq!(err(Provider::Capcom6, "").code(), "secret_empty");
    assert_eq!(
        err(Provider::Capcom6, "user=u;password=p").code(),
        "secret_missing_field"
    );
    assert_eq!(
        err(Provider::Capcom6, "signing_key=k;user=u").code(),
        "secret_missing_field"
    );
    assert_eq!(
        err(Provider::Capcom6, "signing_key=k;api_url=ftp://x").code(),
        "secret_invalid_value"
    );
    assert_eq!(
        err(Provider::Capcom6, "signing_key=k;colour=blue").code(),
        "secret_unknown_field"
    );
    assert_eq!(
        err(Provider::Twilio, "AC0123456789abcdef0123456789abcdef").code(),
        "secret_missing_field"
    );
    assert_eq!(
        err(Provider::Twilio, "SK0123456789abcdef:x").code(),
        "secret_invalid_value"
    );
    assert_eq!(
        err(Provider::Vonage, "api_key=k;api_secret=s").code(),
        "secret_missing_field"
    );
    assert_eq!(
        err(Provider::Vonage, "signature_secret=s;signature_method=sha3").code(),
        "secret_invalid_value"
    );
    assert_eq!(
        err(Provider::Vonage, "signature_secret=s;jwt_max_age=-1").code(),
        "secret_invalid_value"
    );
    assert_eq!(
        err(Provider::AfricasTalking, "justakey").code(),
        "secret_missing_field"
    );
    assert_eq!(
        err(Provider::AfricasTalking, "allow_ips=999.1.1.1").code(),
        "secret_invalid_value"
    );
    assert_eq!(err(Provider::Infobip, "api_key=k").code(), "secret_missing_field");
    assert_eq!(
        err(Provider::Jasmin, "user=u;password=p").code(),
        "secret_missing_field"
    );
    assert_eq!(err(Provider::Smssync, "").code(), "secret_empty");
    assert_eq!(err(Provider::Freeswitch, "").code(), "secret_empty");
    assert_eq!(
        err(Provider::Freeswitch, "nocolon").code(),
        "secret_missing_field"
    );
    assert_eq!(
        err(Provider::Capcom6, "signing_key=a;signing_key=b").code(),
        "secret_duplicate_field"
    );
}

#[test]
fn debug_never_shows_secrets() {
    let cases = [
        (Provider::Capcom6, "signing_key=SECRET1;user=sms;password=SECRET2"),
        (
            Provider::Twilio,
            "AC0123456789abcdef0123456789abcdef:SECRET1:SECRET2",
        ),
        (
            Provider::Vonage,
            "signature_secret=SECRET1;api_key=k;api_secret=SECRET2",
        ),
        (Provider::AfricasTalking, "app:SECRET1"),
        (
            Provider::Infobip,
            "api_key=SECRET1;base_url=https://x.api.infobip.com",
        ),
        (
            Provider::Jasmin,
            "user=u;password=SECRET1;send_url=http://j:1401/send",
        ),
        (Provider::Smssync, "SECRET1"),
        (Provider::Freeswitch, "u:SECRET1"),
    ];
    for (p, s) in cases {
        let dbg = format!("{:?}", ok(p, s));
        assert!(!dbg.contains("SECRET"), "{p}: {dbg}");
    }
    // A secret pasted where a field name belongs is not echoed.
    let e = err(Provider::Capcom6, "signing_key=k;Sup3rS3cretValue");
    assert!(!e.to_string().contains("Sup3rS3cret"), "{e}");
}

#[test]
fn formats_are_documented() {
    for p in Provider::all() {
        assert!(!ChannelCredentials::format(*p).is_empty());
    }
}
