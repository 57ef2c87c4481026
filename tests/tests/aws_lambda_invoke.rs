//! `dist/aws_lambda.wasm` in Invoke API mode, in real Envoy 1.40, against
//! the emulator's Lambda Invoke API (SigV4 verified with `aws-sigv4`).

use faas_emulator::aws::KEYS;
use integration_tests::*;
use serde_json::{json, Value};

const LAMBDA_HOST: &str = "http://lambda.us-east-1.amazonaws.com";

/// One Invoke-mode route `f` on `/f` (endpoint: the emulator, by cluster).
fn invoke_route(function_name: &str, extra: Value) -> Value {
    let entry = json!({
        "function_name": function_name,
        "endpoint": LAMBDA_HOST,
        "cluster": "functions",
        "strip_prefix": "/f",
        "aws_key": KEYS[0].0,
        "aws_secret": KEYS[0].1,
    });
    single_route(merged(entry, extra))
}

fn start(function_name: &str, extra: Value) -> Envoy {
    start_or_panic(
        "aws-lambda",
        &invoke_route(function_name, extra),
        &[("f", "/f")],
    )
}

fn error_of(r: &Response, status: u16, code: &str) -> Value {
    assert_error(r, status, code, "f")
}

#[test]
fn raw_mode_passes_the_body_both_ways_and_hides_invoke_headers() {
    let envoy = start("echo-event", json!({}));
    let body = br#"{"order": 42, "items": ["a", "b"]}"#;
    let r = http1(
        envoy.port,
        "POST",
        "/f",
        &[("content-type", "application/json")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    for h in [
        "x-amzn-requestid",
        "x-amz-executed-version",
        "x-amzn-trace-id",
    ] {
        assert!(r.header(h).is_none(), "{h} leaked: {:?}", r.headers);
    }
    let envoy = start("echo-event", json!({"forward_invoke_headers": true}));
    let r = http1(envoy.port, "POST", "/f", &[], b"{}");
    assert_eq!(r.header("x-amzn-requestid"), Some("emulated-request-id"));
}

#[test]
fn apigateway_v2_event_and_proxy_result() {
    let envoy = start("proxy-echo", json!({"payload_format": "apigateway_v2"}));
    let r = http1(
        envoy.port,
        "POST",
        "/f/orders/42?a=1&a=2&sp=x+y",
        &[
            ("cookie", "c1=1; c2=2"),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("content-type", "application/json; charset=utf-8"),
            ("user-agent", "it/1"),
        ],
        br#"{"n":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.headers_named("set-cookie"),
        vec!["a=1; Path=/", "b=2; Path=/"]
    );
    assert_eq!(r.header("x-invoked"), Some("proxy-echo:$LATEST"));
    let event = r.json();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/f/orders/42");
    assert_eq!(event["rawQueryString"], "a=1&a=2&sp=x+y");
    assert_eq!(event["cookies"], json!(["c1=1", "c2=2"]));
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(event["headers"]["host"], "gateway.test");
    assert_eq!(
        event["queryStringParameters"],
        json!({"a": "1,2", "sp": "x y"})
    );
    assert_eq!(event["pathParameters"], json!({"proxy": "orders/42"}));
    assert_eq!(
        event["body"], r#"{"n":1}"#,
        "a JSON body with charset is text, not base64"
    );
    assert_eq!(event["isBase64Encoded"], false);
    let ctx = &event["requestContext"];
    assert_eq!(ctx["http"]["method"], "POST");
    assert_eq!(ctx["http"]["protocol"], "HTTP/1.1");
    assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["http"]["userAgent"], "it/1");
    assert_eq!(
        ctx["requestId"].as_str().map(str::len),
        Some(36),
        "Envoy's x-request-id: {ctx}"
    );

    let r = http2(envoy.port, "GET", "/f", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["requestContext"]["http"]["protocol"], "HTTP/2.0");
}

#[test]
fn apigateway_v1_event() {
    let envoy = start("proxy-echo", json!({"payload_format": "apigateway_v1"}));
    let r = http1(
        envoy.port,
        "GET",
        "/f/x?k=1&k=2&flag",
        &[("x-multi", "one"), ("x-multi", "two")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let event = r.json();
    assert_eq!(
        (
            event["version"].as_str(),
            event["httpMethod"].as_str(),
            event["path"].as_str()
        ),
        (Some("1.0"), Some("GET"), Some("/f/x"))
    );
    assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
    assert_eq!(event["headers"]["x-multi"], "two");
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"k": ["1", "2"], "flag": [""]})
    );
    assert_eq!(
        event["queryStringParameters"],
        json!({"k": "2", "flag": ""})
    );
    assert_eq!(event["body"], Value::Null);
}

#[test]
fn binary_bodies_are_base64_in_the_event_and_decoded_from_the_result() {
    let envoy = start("proxy-echo", json!({"payload_format": "apigateway_v2"}));
    let bytes = [0u8, 159, 146, 150, 255];
    let r = http1(
        envoy.port,
        "POST",
        "/f",
        &[("content-type", "application/octet-stream")],
        &bytes,
    );
    let event = r.json();
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(
        base64_decode(event["body"].as_str().unwrap_or_default()),
        bytes
    );

    let envoy = start("binary", json!({"payload_format": "apigateway_v2"}));
    let r = get(envoy.port, "/f");
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/png"))
    );
    assert_eq!(r.body, base64_decode("iVBORw0KGgr/AP8="));
}

#[test]
fn json_results_are_never_reserialised() {
    let expected = br#"{"z": 1, "n": 12345678901234567890123, "a": [], "s": "\/x"}"#;
    let envoy = start("big-number", json!({"payload_format": "apigateway_v2"}));
    let r = get(envoy.port, "/f");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &expected[..]),
        "{}",
        r.text()
    );
    let envoy = start("big-number", json!({}));
    assert_eq!(get(envoy.port, "/f").body, expected);
    // A bare v2 result: the event itself comes back untouched.
    let envoy = start("v2-echo", json!({"payload_format": "apigateway_v2"}));
    let r = get(envoy.port, "/f?x=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rawQueryString"], "x=1");
}

#[test]
fn malformed_results_are_502_with_the_reason() {
    for (function, format, reason) in [
        ("bad-json", "apigateway_v2", "not valid JSON"),
        ("no-status", "apigateway_v1", "statusCode is missing"),
        ("bad-base64", "apigateway_v2", "not valid base64"),
    ] {
        let envoy = start(function, json!({"payload_format": format}));
        let v = error_of(&get(envoy.port, "/f"), 502, "invalid_function_response");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(reason),
            "{function}: {v}"
        );
    }
}

#[test]
fn function_errors_use_unhandled_status_or_502_without_the_stack_trace() {
    let envoy = start("crash", json!({}));
    let r = get(envoy.port, "/f");
    let v = error_of(&r, 502, "function_error");
    // The type only: the function's message is its text, for the log.
    assert_eq!(v["error_type"].as_str(), Some("ValueError"));
    assert!(v.get("error_message").is_none(), "{v}");
    assert!(
        !r.text().contains("boom"),
        "message reflected: {}",
        r.text()
    );
    assert!(!r.text().contains("secret_handler"), "stack trace leaked");
    let envoy = start("crash", json!({"unhandled_status": 500}));
    error_of(&get(envoy.port, "/f"), 500, "function_error");
}

#[test]
fn invoke_api_errors_map_to_documented_statuses() {
    let envoy = start("no-such-function", json!({}));
    let v = error_of(&get(envoy.port, "/f"), 502, "lambda_invoke_failed");
    assert_eq!(
        (v["aws_status"].as_u64(), v["aws_error_type"].as_str()),
        (Some(404), Some("ResourceNotFoundException"))
    );
    let envoy = start(
        "no-such-function",
        json!({"preserve_lambda_api_error_code": true}),
    );
    error_of(&get(envoy.port, "/f"), 404, "lambda_invoke_failed");
    let envoy = start("throttled", json!({}));
    error_of(&get(envoy.port, "/f"), 429, "lambda_invoke_failed");

    let plugin = invoke_route("echo-event", json!({"aws_secret": "definitely-wrong"}));
    let envoy =
        start_filter("aws-lambda", &plugin, &[("f", "/f")], &[]).unwrap_or_else(|l| panic!("{l}"));
    let v = error_of(&get(envoy.port, "/f"), 502, "lambda_invoke_failed");
    assert_eq!(v["aws_error_type"], "InvalidSignatureException");
    assert!(!envoy.log().contains("definitely-wrong"));
}

/// AWS's SignatureDoesNotMatch quotes the canonical request, session
/// token included, over several lines: the client gets the code and the
/// error type; the log gets one line with the token and signature out.
#[test]
fn upstream_error_text_never_reaches_the_client_and_is_redacted_in_the_log() {
    let (key, secret, token) = KEYS[1];
    let token = token.expect("a session key");
    let iam = json!({"authorization": {"iam": {
        "accesskey": key, "secretkey": secret, "session_token": token, "aws_region": "us-east-1"}}});
    let plugin = single_route(json!({
        "function_name": "signature-mismatch",
        "endpoint": LAMBDA_HOST,
        "cluster": "functions",
        "authorization": iam["authorization"],
    }));
    let envoy = start_or_panic("aws-lambda", &plugin, &[("f", "/f")]);
    for h2 in [false, true] {
        let r = http_either(h2, envoy.port, "POST", "/f", &[], b"{}");
        let v = error_of(&r, 502, "lambda_invoke_failed");
        assert_eq!(v["aws_error_type"], "SignatureDoesNotMatch");
        assert_eq!(v["aws_status"], 403);
        let text = r.text();
        for leaked in [
            token,
            "Canonical String",
            "signature we calculated",
            "Signature=",
        ] {
            assert!(
                !text.contains(leaked),
                "{leaked} reached the client: {text}"
            );
        }
    }
    let log = envoy.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("lambda_invoke_failed"))
        .collect();
    assert!(!lines.is_empty(), "no error line: {log}");
    for line in &lines {
        // One line holds the whole message (its line breaks escaped) ...
        assert!(
            line.contains("upstream said: The request signature we calculated"),
            "{line}"
        );
        assert!(line.contains("String-to-Sign"), "{line}");
        assert!(line.contains("x-amz-security-token:[redacted]"), "{line}");
    }
    // ... and no line of the log holds the token, the secret or a signature.
    assert!(!log.contains(token), "session token in the log");
    assert!(!log.contains(secret), "secret key in the log");
    assert!(!log.contains("Signature=") || log.contains("Signature=[redacted]"));
    for line in log.lines() {
        assert!(
            !line.starts_with("host;x-amz-date"),
            "a split log line: {line}"
        );
    }
}

/// A proxy result's status is final: 100 and 101 are not answers.
#[test]
fn interim_statuses_in_a_proxy_result_are_invalid() {
    for function in ["status-101", "status-100"] {
        let envoy = start(function, json!({"payload_format": "apigateway_v1"}));
        let r = http1(envoy.port, "POST", "/f", &[], b"{}");
        let v = error_of(&r, 502, "invalid_function_response");
        assert!(
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("200 to 599"),
            "{v}"
        );
        assert!(r.header("upgrade").is_none());
        let r = http2(envoy.port, "POST", "/f", &[], b"{}");
        error_of(&r, 502, "invalid_function_response");
    }
}

#[test]
fn event_and_dry_run_invocations() {
    let envoy = start(
        "echo-event",
        json!({"invocation_type": "Event", "payload_format": "apigateway_v2", "forward_invoke_headers": true}),
    );
    let r = http1(envoy.port, "POST", "/f", &[], b"{}");
    assert_eq!((r.status, r.body.len()), (202, 0), "{}", r.text());
    // The Invoke API really ran it asynchronously (no executed version).
    assert_eq!(r.header("x-amzn-requestid"), Some("emulated-request-id"));
    assert!(
        r.header("x-amz-executed-version").is_none(),
        "{:?}",
        r.headers
    );
    let envoy = start("echo-event", json!({"invocation_type": "DryRun"}));
    assert_eq!(get(envoy.port, "/f").status, 204);
}

#[test]
fn the_log_tail_is_returned_only_when_asked_for() {
    let envoy = start("echo-event", json!({}));
    assert!(get(envoy.port, "/f").header("x-amz-log-result").is_none());
    let envoy = start("echo-event", json!({"log_type": "Tail"}));
    assert_eq!(
        get(envoy.port, "/f").header("x-amz-log-result"),
        Some("U1RBUlQgUmVxdWVzdElkOiBlbXVsYXRlZApFTkQK")
    );
}

#[test]
fn names_arns_and_qualifiers_reach_the_invoke_api() {
    let cases = [
        ("proxy-echo", json!({}), "proxy-echo:$LATEST"),
        ("proxy-echo:live", json!({}), "proxy-echo:live"),
        ("proxy-echo", json!({"qualifier": "7"}), "proxy-echo:7"),
        (
            "123456789012:function:proxy-echo",
            json!({}),
            "proxy-echo:$LATEST",
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:proxy-echo:prod",
            json!({}),
            "proxy-echo:prod",
        ),
    ];
    for (name, extra, invoked) in cases {
        let mut extra = extra;
        extra["is_proxy_integration"] = json!(true);
        let envoy = start(name, extra);
        let r = get(envoy.port, "/f");
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(r.header("x-invoked"), Some(invoked), "{name}");
    }
}

#[test]
fn session_credentials_and_environment_credentials() {
    let plugin = json!({"routes": {"f": {
        "function_name": "echo-event", "endpoint": LAMBDA_HOST, "cluster": "functions",
        "authorization": {"iam": {"accesskey": KEYS[1].0, "secretkey": KEYS[1].1, "session_token": KEYS[1].2}}
    }}});
    let envoy =
        start_filter("aws-lambda", &plugin, &[("f", "/f")], &[]).unwrap_or_else(|l| panic!("{l}"));
    assert_eq!(
        http1(envoy.port, "POST", "/f", &[], b"{\"s\":1}").status,
        200
    );

    let plugin = json!({"routes": {"f": {"function_name": "echo-event", "endpoint": LAMBDA_HOST, "cluster": "functions"}}});
    let env = [
        ("AWS_ACCESS_KEY_ID", KEYS[0].0),
        ("AWS_SECRET_ACCESS_KEY", KEYS[0].1),
        ("AWS_REGION", "us-east-1"),
    ];
    let envoy =
        start_filter("aws-lambda", &plugin, &[("f", "/f")], &env).unwrap_or_else(|l| panic!("{l}"));
    assert_eq!(http1(envoy.port, "POST", "/f", &[], b"{}").status, 200);
}

#[test]
fn kong_forward_request_object() {
    let envoy = start(
        "proxy-echo",
        json!({
            "forward_request_method": true, "forward_request_uri": true,
            "forward_request_headers": true, "forward_request_body": true, "is_proxy_integration": true
        }),
    );
    let r = http1(
        envoy.port,
        "POST",
        "/f/p?k=1",
        &[("content-type", "application/json")],
        br#"{"a":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["request_method"].as_str(), v["request_uri"].as_str()),
        (Some("POST"), Some("/f/p?k=1"))
    );
    assert_eq!(v["request_uri_args"], json!({"k": "1"}));
    assert_eq!(v["request_body_args"], json!({"a": 1}));
    assert_eq!(v["request_headers"]["content-type"], "application/json");
}

#[test]
fn slow_and_oversized_functions() {
    let envoy = start("slow", json!({"timeout": 300}));
    error_of(&get(envoy.port, "/f"), 504, "function_timeout");
    let envoy = start("large", json!({}));
    error_of(&get(envoy.port, "/f"), 502, "function_response_too_large");
}
