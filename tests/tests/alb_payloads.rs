//! Application Load Balancer target-group payloads (issue 31) in real
//! Envoy 1.40: a function written for ALB behind `aws_lambda.wasm` with
//! `payload_format: alb` (or `alb_multi_value`) receives ALB's event and
//! its result is mapped as ALB maps it.

use integration_tests::*;
use serde_json::{json, Value};

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/6d0ecf831eec9f09";

fn envoy(function: &str, format: &str) -> Envoy {
    let plugin = json!({
        "cluster": "lambda", "function_name": function, "aws_region": "us-east-1",
        "endpoint": "http://lambda.us-east-1.amazonaws.com", "payload_format": format,
        "target_group_arn": ARN,
        "aws_key": "AKIDEXAMPLE", "aws_secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    });
    let config = bootstrap(
        vec![route("all", "/", "lambda")],
        vec![wasm_filter("aws-lambda", &plugin)],
        vec![cluster("lambda", emulator().port())],
    );
    Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"))
}

/// The event the function received: `proxy-echo` answers it as its body.
fn event(envoy: &Envoy, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let r = http1(envoy.port, "POST", target, headers, body);
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("the event")
}

#[test]
fn the_function_receives_albs_event_in_both_header_modes() {
    let single = envoy("proxy-echo", "alb");
    let headers = [
        ("content-type", "application/json"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
    ];
    let e = event(
        &single,
        "/orders/7?k=1&k=2&enc=a%20b",
        &headers,
        br#"{"n":1}"#,
    );
    assert_eq!(e["requestContext"], json!({"elb": {"targetGroupArn": ARN}}));
    assert_eq!(
        (e["httpMethod"].as_str(), e["path"].as_str()),
        (Some("POST"), Some("/orders/7"))
    );
    assert_eq!(
        e["queryStringParameters"],
        json!({"k": "2", "enc": "a%20b"})
    );
    assert_eq!(e["headers"]["cookie"], "b=2", "the last value, as ALB");
    assert_eq!(
        e["headers"]["host"], "gateway.test",
        "the host the client asked for"
    );
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some(r#"{"n":1}"#), Some(false))
    );
    let multi = envoy("proxy-echo", "alb_multi_value");
    let e = event(&multi, "/orders/7?k=1&k=2", &headers, &[0, 159, 146, 150]);
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"k": ["1", "2"]})
    );
    assert_eq!(e["multiValueHeaders"]["cookie"], json!(["a=1", "b=2"]));
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some("AJ+Slg=="), Some(true))
    );
}

#[test]
fn results_map_as_alb_maps_them() {
    // `envoy-result` answers with the `body` of the event it got: the
    // client writes the function's result.
    let envoy = envoy("envoy-result", "alb_multi_value");
    let result = json!({
        "isBase64Encoded": true, "statusCode": 201, "statusDescription": "201 Created",
        "multiValueHeaders": {"Set-cookie": ["a=1", "b=2"], "Content-Type": ["image/png"]},
        "body": "iVBORw0KGgo="
    });
    let r = http1(
        envoy.port,
        "POST",
        "/r",
        &[("content-type", "application/json")],
        result.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.headers_named("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.body, [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']);
    // A malformed result: ALB answers 502, and so does the filter (JSON).
    let r = http1(
        envoy.port,
        "POST",
        "/r",
        &[("content-type", "application/json")],
        br#"{"body":"no status"}"#,
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "invalid_function_response");
}
