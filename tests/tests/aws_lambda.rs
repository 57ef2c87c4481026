//! `dist/aws_lambda.wasm` in real Envoy 1.40 against the emulator's AWS
//! front doors, which verify `x-api-key` and SigV4 with the `aws-sigv4`
//! crate (not our signer) and answer 403 like AWS when they are wrong.

use faas_emulator::aws::{API_KEY, KEYS};
use integration_tests::*;
use serde_json::{json, Value};

const API_HOST: &str = "api1.execute-api.us-east-1.amazonaws.com";
const URL_HOST: &str = "fn1.lambda-url.us-east-1.on.aws";

fn iam() -> Value {
    json!({"accesskey": KEYS[0].0, "secretkey": KEYS[0].1})
}

fn session_iam() -> Value {
    json!({"accesskey": KEYS[1].0, "secretkey": KEYS[1].1, "session_token": KEYS[1].2})
}

/// One route `f` on `/f` with `strip_prefix: /f` to `function_uri`.
fn one(function_uri: String, authorization: Value) -> Value {
    json!({"cluster": "functions", "routes": {"f": {
        "function_uri": function_uri, "strip_prefix": "/f", "authorization": authorization
    }}})
}

fn start(plugin: Value) -> Envoy {
    start_or_panic("aws-lambda", &plugin, &[("f", "/f")])
}

fn assert_aws_403(r: &Response, error_type: &str) -> String {
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some(error_type),
        "{}",
        r.text()
    );
    let v = r.json();
    v["message"]
        .as_str()
        .or(v["Message"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn assert_signed(e: &Echo) {
    let auth = e.headers_named("authorization");
    assert_eq!(auth.len(), 1, "{:?}", e.headers);
    assert!(
        auth[0].starts_with("AWS4-HMAC-SHA256 Credential="),
        "{}",
        auth[0]
    );
    assert!(e.header("x-amz-date").is_some());
}

#[test]
fn api_key_is_sent_and_checked() {
    let envoy = start(one(
        format!("http://{API_HOST}/key/echo"),
        json!({"apikey": API_KEY}),
    ));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_eq!(e.header("x-api-key"), Some(API_KEY));
    assert_eq!(e.header("host"), Some(API_HOST));
    assert!(e.header("authorization").is_none());

    let envoy = start(one(
        format!("http://{API_HOST}/key/echo"),
        json!({"apikey": "wrong-key"}),
    ));
    assert_aws_403(&get(envoy.port, "/f"), "ForbiddenException");
    // APISIX parity: a key the client sends itself takes precedence.
    let r = http1(envoy.port, "GET", "/f", &[("x-api-key", API_KEY)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn iam_signed_get_and_post_are_accepted() {
    let envoy = start(one(
        format!("http://{API_HOST}/iam/echo"),
        json!({"iam": iam()}),
    ));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_signed(&r.echo());
    let r = http1(
        envoy.port,
        "POST",
        "/f/orders",
        &[("content-type", "application/json")],
        br#"{"id":42}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_signed(&e);
    assert_eq!(
        (e.method.as_str(), e.path.as_str()),
        ("POST", "/iam/echo/orders")
    );
    assert_eq!(e.body, br#"{"id":42}"#);
    assert!(e.headers_named("authorization")[0].contains("/us-east-1/execute-api/aws4_request"));
}

#[test]
fn api_key_and_iam_together() {
    let envoy = start(one(
        format!("http://{API_HOST}/both/echo"),
        json!({"apikey": API_KEY, "iam": iam()}),
    ));
    let r = http1(
        envoy.port,
        "PUT",
        "/f",
        &[("content-type", "text/plain")],
        b"both",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_signed(&e);
    assert!(e.headers_named("authorization")[0]
        .contains("SignedHeaders=content-type;host;x-amz-date;x-api-key,"));
}

#[test]
fn queries_that_need_encoding_are_signed_correctly_and_sent_verbatim() {
    let envoy = start(one(
        format!("http://{API_HOST}/iam/echo?stage=1"),
        json!({"iam": iam()}),
    ));
    let queries = [
        "sp=a+b&enc=a%20b",
        "slash=a/b&enc_slash=a%2Fb",
        "star=*&enc_star=%2A",
        "rep=2&rep=1&rep=10",
        "flag&empty=&flag2",
        "uni=%E2%9C%93&lower=%e2%9c%93&pct=%25&amp=%26&eq=a=b",
        "%E2%9C%93=key&Z=1&a=2",
    ];
    for q in queries {
        let r = get(envoy.port, &format!("/f?{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        assert_eq!(
            r.echo().query.as_deref(),
            Some(format!("stage=1&{q}").as_str()),
            "{q}"
        );
    }
}

#[test]
fn unicode_and_reserved_characters_in_the_forwarded_path() {
    let envoy = start(one(
        format!("http://{URL_HOST}/echo"),
        json!({"iam": iam()}),
    ));
    let paths = [
        "/f/caf%C3%A9/%E1%88%B4",
        "/f/a%3Ab/arn%3Aaws%3Alambda",
        "/f/!$&'()*+,;=:@",
        "/f/a%20b/%25/%2F/~-._",
        "/f/trailing/",
    ];
    for p in paths {
        let r = get(envoy.port, p);
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        assert_eq!(r.echo().path, format!("/echo{}", &p[2..]), "{p}");
    }
}

#[test]
fn empty_and_binary_bodies() {
    let envoy = start(one(
        format!("http://{URL_HOST}/mirror"),
        json!({"iam": iam()}),
    ));
    let r = http1(envoy.port, "POST", "/f", &[], b"");
    assert_eq!((r.status, r.body.len()), (200, 0), "{}", r.text());
    let body: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let r = http1(
        envoy.port,
        "POST",
        "/f",
        &[("content-type", "application/octet-stream")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == body, "binary body differs");
}

#[test]
fn session_credentials_sign_the_token() {
    let envoy = start(one(
        format!("http://{URL_HOST}/echo"),
        json!({"iam": session_iam()}),
    ));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_eq!(e.header("x-amz-security-token"), KEYS[1].2);
    assert!(e.headers_named("authorization")[0].contains("x-amz-security-token"));

    let mut wrong = session_iam();
    wrong["session_token"] = json!("not-the-token");
    let envoy = start(one(
        format!("http://{URL_HOST}/echo"),
        json!({"iam": wrong}),
    ));
    let v = assert_error(&get(envoy.port, "/f"), 502, "aws_signing_refused", "f");
    assert_eq!(v["aws_error_type"], "UnrecognizedClientException");
}

#[test]
fn function_urls_are_scoped_to_the_lambda_service() {
    let envoy = start(one(
        format!("http://{URL_HOST}/echo"),
        json!({"iam": iam()}),
    ));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.echo().headers_named("authorization")[0].contains("/us-east-1/lambda/aws4_request"));

    let mut scoped = iam();
    scoped["service"] = json!("execute-api");
    let envoy = start(one(
        format!("http://{URL_HOST}/echo"),
        json!({"iam": scoped}),
    ));
    // AWS's refusal of a signed request: our error with AWS's type, its
    // message only in the log.
    let r = get(envoy.port, "/f");
    let v = assert_error(&r, 502, "aws_signing_refused", "f");
    assert_eq!(v["aws_error_type"], "InvalidSignatureException");
    assert!(!r.text().contains("scoped to"), "{}", r.text());
    assert!(envoy.log().contains("scoped to correct service: 'lambda'"));
}

#[test]
fn credentials_from_vm_environment_variables() {
    let env = [
        ("AWS_ACCESS_KEY_ID", KEYS[1].0),
        ("AWS_SECRET_ACCESS_KEY", KEYS[1].1),
        ("AWS_SESSION_TOKEN", KEYS[1].2.unwrap_or_default()),
        ("AWS_REGION", "us-east-1"),
    ];
    let plugin = one(format!("http://{URL_HOST}/echo"), json!({"iam": {}}));
    let envoy =
        start_filter("aws-lambda", &plugin, &[("f", "/f")], &env).unwrap_or_else(|l| panic!("{l}"));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.echo().headers_named("authorization")[0].contains(&format!("Credential={}/", KEYS[1].0))
    );

    // No credentials anywhere: refused at load, never sent unsigned.
    let log = match start_filter("aws-lambda", &plugin, &[("f", "/f")], &[]) {
        Ok(envoy) => panic!("accepted without credentials\n{}", envoy.log()),
        Err(log) => log,
    };
    assert!(log.contains("route \"f\": field \"authorization.iam\": IAM signing is configured but there are no credentials"), "{log}");
}

#[test]
fn client_authorization_and_aws_headers_are_dropped_when_signing() {
    let envoy = start(one(
        format!("http://{API_HOST}/iam/echo"),
        json!({"iam": iam()}),
    ));
    let r = http1(
        envoy.port,
        "GET",
        "/f",
        &[
            ("authorization", "Bearer client-token"),
            ("x-amz-date", "19990101T000000Z"),
            ("x-amz-security-token", "client-token"),
            ("x-amzn-trace-id", "Root=1-abc"),
            ("x-amzn-vpce-id", "vpce-123"),
            ("x-custom", "kept"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_signed(&e);
    assert!(
        e.headers.iter().all(|(n, _)| !n.starts_with("x-amzn-")),
        "{:?}",
        e.headers
    );
    assert!(e.header("x-amz-security-token").is_none());
    assert_ne!(e.header("x-amz-date"), Some("19990101T000000Z"));
    assert_eq!(e.header("x-custom"), Some("kept"));
}

#[test]
fn http2_downstream() {
    let envoy = start(one(
        format!("http://{URL_HOST}/echo"),
        json!({"iam": iam()}),
    ));
    let r = http2(envoy.port, "GET", "/f/h2?x=1", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_signed(&r.echo());
    let r = http2(
        envoy.port,
        "POST",
        "/f",
        &[("content-type", "application/json")],
        br#"{"h2":true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.echo().body, br#"{"h2":true}"#);
}

#[test]
fn a_wrong_secret_gets_our_502_and_awss_message_stays_out_of_the_answer() {
    let mut wrong = session_iam();
    wrong["secretkey"] = json!("definitely-not-the-secret");
    let envoy = start(one(
        format!("http://{API_HOST}/iam/echo"),
        json!({"iam": wrong}),
    ));
    let token = KEYS[1].2.unwrap();
    for h2 in [false, true] {
        let r = http_either(h2, envoy.port, "GET", "/f", &[], b"");
        let v = assert_error(&r, 502, "aws_signing_refused", "f");
        assert_eq!(
            (v["aws_status"].as_u64(), v["aws_error_type"].as_str()),
            (Some(403), Some("InvalidSignatureException"))
        );
        assert!(!r.text().contains(token), "session token reflected");
        assert!(!r.text().contains("Canonical String"), "{}", r.text());
    }
    let log = envoy.log();
    assert!(
        !log.contains("definitely-not-the-secret") && !log.contains(KEYS[0].1),
        "secret in log"
    );
    assert!(!log.contains(token), "session token in the log");
    let line = log
        .lines()
        .find(|l| l.contains("aws_signing_refused"))
        .expect("the refusal is logged");
    assert!(
        line.contains("Canonical String") && line.contains("x-amz-security-token:[redacted]"),
        "{line}"
    );
}
