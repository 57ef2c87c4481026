//! Lambda response streaming (issue 29) in real Envoy 1.40, in place:
//! Function URLs in `RESPONSE_STREAM` mode and `InvokeWithResponseStream`
//! (the filter decodes the eventstream as it arrives). Streaming is proven
//! without timing: the emulator's functions write each chunk only after
//! the client saw the one before (a gate the test opens), so a gateway
//! that held chunks back would stall the function and time out.

use faas_emulator::aws::KEYS;
use integration_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

const URL_HOST: &str = "fn1.lambda-url.us-east-1.on.aws";
const LAMBDA: &str = "http://lambda.us-east-1.amazonaws.com";

/// A gate name no other test uses.
fn gate() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "g{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn markers(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} {i}\n")).collect()
}

fn streaming(entry: Value) -> Value {
    merged(
        json!({"forwarding": "route", "cluster": "functions", "invoke_mode": "RESPONSE_STREAM"}),
        entry,
    )
}

fn invoke(function: &str, extra: Value) -> Value {
    streaming(merged(
        json!({"function_name": function, "endpoint": LAMBDA,
            "aws_key": KEYS[0].0, "aws_secret": KEYS[0].1}),
        extra,
    ))
}

/// Envoy with the aws-lambda filter (its `wasm_filter` has the flag) and
/// each route's in-place twin first.
fn start(plugin: Value, routes: &[(&str, &str)]) -> Envoy {
    let mut all: Vec<Value> = routes
        .iter()
        .map(|(name, _)| twin_route(name, json!({"cluster": "functions"})))
        .collect();
    all.extend(
        routes
            .iter()
            .map(|(name, prefix)| route(name, prefix, "functions")),
    );
    let config = bootstrap(
        all,
        vec![wasm_filter("aws-lambda", &plugin)],
        vec![cluster("functions", emulator().port())],
    );
    Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"))
}

#[test]
fn a_function_url_streams_chunk_by_chunk_public_and_signed() {
    let iam = json!({"iam": {"accesskey": KEYS[0].0, "secretkey": KEYS[0].1}});
    let plugin = json!({"routes": {
        "open": streaming(json!({"function_uri": format!("http://127.0.0.1:{}/", emulator().port()), "strip_prefix": "/open"})),
        "signed": streaming(json!({"function_uri": format!("http://{URL_HOST}/"), "strip_prefix": "/signed",
            "authorization": iam})),
    }});
    let mut envoy = start(plugin, &[("open", "/open"), ("signed", "/signed")]);
    let expected = markers("chunk", 4);
    for (prefix, method, body) in [
        ("/open", "GET", &b""[..]),
        ("/signed", "GET", &b""[..]),
        // A signed body is held to be hashed (the flag), then it streams back.
        ("/signed", "POST", &b"{\"question\": 42}"[..]),
    ] {
        let g = gate();
        let target = format!("{prefix}/stream/4?gate={g}");
        let r = gated_exchange(envoy.port, method, &target, body, &g, &expected);
        assert_eq!(
            (r.status, r.markers_seen, r.complete),
            (200, 4, true),
            "{method} {prefix}: each chunk reached the client before the next was written: {}",
            r.text()
        );
        assert_eq!(r.text(), expected.concat());
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
    }
    // The stream metrics: every byte passed on, counted per route.
    let bytes = "envoy_faas_stream_bytes_total.filter=.=aws-lambda;.;route=.=signed;.;";
    let counted = envoy.stat_ending(bytes).map(|(_, v)| v);
    assert_eq!(counted, Some(2 * expected.concat().len() as u64), "{bytes}");
    // The first-byte and duration histograms, at Envoy's next stats flush.
    for family in [
        "envoy_faas_stream_first_byte_ms",
        "envoy_faas_stream_duration_ms",
    ] {
        let name = format!("{family}.filter=.=aws-lambda;.;route=.=signed;.;");
        envoy
            .poll(&name, std::time::Duration::from_secs(20), |e| {
                let r = admin_get(e.admin_port, &format!("/stats?filter={family}")).ok()?;
                let text = r.text();
                let line = text.lines().find(|l| l.contains(&name))?;
                (!line.contains("No recorded values")).then_some(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // A Function URL that breaks mid-stream: the client's stream ends
    // without its final chunk (Envoy resets it), never as a success.
    let g = gate();
    let r = gated_exchange(
        envoy.port,
        "GET",
        &format!("/open/stream/2?gate={g}&abort=1"),
        b"",
        &g,
        &markers("chunk", 2),
    );
    assert_eq!(
        (r.status, r.markers_seen, r.complete),
        (200, 2, false),
        "{}",
        r.text()
    );
}

#[test]
fn invoke_with_response_stream_delivers_each_payload_chunk_as_it_comes() {
    let plugin = json!({"routes": {
        "raw": invoke("stream-chunks", json!({})),
        "echo": invoke("stream-echo", json!({"payload_format": "apigateway_v2"})),
    }});
    let envoy = start(plugin, &[("raw", "/raw"), ("echo", "/echo")]);
    let expected = markers("chunk", 5);
    let g = gate();
    let payload = json!({"chunks": 5, "gate": g}).to_string();
    let r = gated_exchange(
        envoy.port,
        "POST",
        "/raw",
        payload.as_bytes(),
        &g,
        &expected,
    );
    assert_eq!(
        (r.status, r.markers_seen, r.complete),
        (200, 5, true),
        "each payload chunk reached the client before the next was written: {}",
        r.text()
    );
    assert_eq!(
        r.text(),
        expected.concat(),
        "the frames are gone, the bytes are whole"
    );
    assert_eq!(
        r.header("content-type"),
        Some("text/plain"),
        "X-Amzn-Remapped-Content-Type"
    );
    for hidden in [
        "x-amzn-remapped-content-type",
        "x-amzn-requestid",
        "x-amz-executed-version",
    ] {
        assert_eq!(r.header(hidden), None, "{hidden}");
    }
    // The request side is Invoke mode's: the event built from the client's
    // request (API Gateway v2 here), signed, is what the function got.
    let body = b"{\"hello\": \"stream\"}";
    let r = http1(
        envoy.port,
        "POST",
        "/echo/items?x=1",
        &[("content-type", "application/json")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let event: Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/echo/items");
    assert_eq!(event["rawQueryString"], "x=1");
    assert_eq!(event["body"], "{\"hello\": \"stream\"}");
}

/// A request without a body (a GET) has no body for the event: Envoy
/// gives a filter no buffer to write one into (the write is refused), so
/// the request takes the callout path and the whole stream is decoded at
/// once: the same status, headers and bytes, but nothing streams (the book,
/// "Lambda response streaming"). The stream metrics, in place only, stay untouched.
#[test]
fn a_request_without_a_body_gets_the_whole_stream_through_a_callout() {
    let plugin = json!({"routes": {"get": invoke("stream-http",
        json!({"payload_format": "apigateway_v1"}))}});
    let envoy = start(plugin, &[("get", "/get")]);
    let r = get(envoy.port, "/get?chunks=3");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.headers_named("set-cookie").len(), 2);
    let bytes = "envoy_faas_stream_bytes_total.filter=.=aws-lambda;.;route=.=get;.;";
    assert_eq!(envoy.stat_ending(bytes).map(|(_, v)| v), None);
}

#[test]
fn the_functions_http_metadata_becomes_the_status_headers_and_cookies() {
    let plugin = json!({"routes": {"sse": invoke("stream-http", json!({}))}});
    let envoy = start(plugin, &[("sse", "/sse")]);
    let expected: Vec<String> = (0..4).map(|i| format!("data: {i}\n\n")).collect();
    let g = gate();
    let payload = json!({"chunks": 4, "gate": g}).to_string();
    let r = gated_exchange(
        envoy.port,
        "POST",
        "/sse",
        payload.as_bytes(),
        &g,
        &expected,
    );
    assert_eq!(
        (r.status, r.markers_seen, r.complete),
        (201, 4, true),
        "{}",
        r.text()
    );
    assert_eq!(
        r.text(),
        expected.concat(),
        "the metadata and its 8 NULs are stripped"
    );
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("x-stream"), Some("yes"));
    assert_eq!(
        r.headers_named("set-cookie"),
        vec!["a=1; Path=/", "b=2; Path=/"]
    );
}

#[test]
fn without_the_flag_the_metadata_is_stripped_and_the_answer_is_not_held() {
    // holding_filter layout, no flag: a request with a body takes the
    // callout path (the metadata applies, the answer comes whole).
    let plugin = json!({"body_layout": "holding_filter", "routes": {"sse": invoke("stream-http", json!({}))}});
    let wasm = without_flag(wasm_filter("aws-lambda", &plugin));
    let buffer = buffer_filter(1048576);
    let config = bootstrap(
        vec![
            twin_route("sse", json!({"cluster": "functions"})),
            route("sse", "/sse", "functions"),
        ],
        vec![wasm, buffer],
        vec![cluster("functions", emulator().port())],
    );
    let envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    let r = http1(
        envoy.port,
        "POST",
        "/sse",
        &[],
        json!({"chunks": 2}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), "data: 0\n\ndata: 1\n\n");
    assert_eq!(r.headers_named("set-cookie").len(), 2);
}

#[test]
fn errors_before_the_first_byte_are_json_after_it_the_stream_is_reset() {
    let plugin = json!({"routes": {
        "first": invoke("stream-error-first", json!({})),
        "late": invoke("stream-error-late", json!({})),
        "crc": invoke("stream-bad-crc", json!({})),
        "cut": invoke("stream-truncated", json!({})),
        "exception": invoke("stream-exception", json!({})),
        "missing": invoke("no-such-function", json!({})),
    }});
    let envoy = start(
        plugin,
        &[
            ("first", "/first"),
            ("late", "/late"),
            ("crc", "/crc"),
            ("cut", "/cut"),
            ("exception", "/exception"),
            ("missing", "/missing"),
        ],
    );
    // Before the first byte the head is still held: a JSON 502.
    let r = http1(envoy.port, "POST", "/first", &[], b"{}");
    let body = assert_error(&r, 502, "function_error", "first");
    assert_eq!(body["error_type"], "Unhandled");
    assert!(
        !r.text().contains("SECRET"),
        "the function's details stay in the log: {}",
        r.text()
    );
    // Lambda refusing the call is Invoke mode's error.
    let r = http1(envoy.port, "POST", "/missing", &[], b"{}");
    let body = assert_error(&r, 502, "lambda_invoke_failed", "missing");
    assert_eq!(body["aws_error_type"], "ResourceNotFoundException");
    // After the first byte the status went out, so the stream is reset.
    // Each function writes its failure only once the client saw its first
    // chunk (the gate).
    let failing = [
        ("/late", "partial "),
        ("/crc", "good "),
        ("/cut", "good "),
        ("/exception", "good "),
    ];
    for (path, first) in failing {
        let g = gate();
        let payload = json!({"gate": g}).to_string();
        let seen = [first.to_string()];
        let r = gated_exchange(envoy.port, "POST", path, payload.as_bytes(), &g, &seen);
        assert_eq!((r.status, r.markers_seen), (200, 1), "{path}: {}", r.text());
        assert!(!r.complete, "{path}: the stream must not end as a success");
        assert_eq!(r.text(), first, "{path}: nothing after the failure");
    }
    // Without the gate the failure may come in the same piece as the first
    // bytes: then nothing went out yet, and it is the JSON 502.
    let r = gated_exchange(envoy.port, "POST", "/late", b"{}", &gate(), &[]);
    if r.status == 200 {
        assert!(!r.complete, "a reset, never a success");
    } else {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(
            (r.status, &body["error"]),
            (502, &json!("function_error")),
            "{}",
            r.text()
        );
    }
    let log = envoy.log();
    assert!(log.contains("function_error"), "{log}");
    assert!(
        !log.contains("SECRET-IN-EXCEPTION"),
        "exception messages are not read"
    );
    let resets = |outcome: &str, route: &str| {
        let name = format!(
            "envoy_faas_stream_resets_total.filter=.=aws-lambda;.;route=.={route};.;outcome=.={outcome};.;"
        );
        envoy.stat_ending(&name).map_or(0, |(_, v)| v)
    };
    let late = resets("function_error", "late");
    assert!(late == 1 || late == 2, "late resets: {late}");
    assert_eq!(resets("function_error", "exception"), 1);
    assert_eq!(resets("invalid_response", "crc"), 1);
    assert_eq!(resets("invalid_response", "cut"), 1);
}

#[test]
fn streaming_config_is_checked_at_load_naming_the_field() {
    let cases = [
        (
            json!({"function_uri": format!("http://{URL_HOST}/"), "cluster": "functions",
                "invoke_mode": "RESPONSE_STREAM"}),
            "invoke_mode",
        ),
        (
            json!({"function_uri": format!("http://{URL_HOST}/"), "invoke_mode": "STREAM"}),
            "invoke_mode",
        ),
        (
            invoke("f", json!({"invocation_type": "Event"})),
            "invocation_type",
        ),
        (
            invoke("f", json!({"is_proxy_integration": true})),
            "is_proxy_integration",
        ),
    ];
    for (entry, field) in cases {
        let plugin = json!({"routes": {"r": entry}});
        let log = start_filter("aws-lambda", &plugin, &[("r", "/r")], &[])
            .err()
            .unwrap_or_else(|| panic!("{field}: accepted"));
        assert!(
            log.contains(&format!(r#"route "r": field "{field}""#)),
            "{field}: {log}"
        );
    }
}

/// `envoy/lambda-streaming.yaml` as shipped, its clusters on the emulator
/// (plain HTTP there), its credentials the emulator's: the Invoke route
/// and the Function URL route both stream chunk by chunk.
#[test]
fn the_shipped_streaming_config_streams_both_forms() {
    let mut config = on_loopback(local_bootstrap("lambda-streaming.yaml", |_| {
        emulator().port()
    }));
    let vm = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"][0]["typed_config"]["config"]["vm_config"];
    vm["environment_variables"] = json!({"key_values": {
        "AWS_ACCESS_KEY_ID": KEYS[0].0, "AWS_SECRET_ACCESS_KEY": KEYS[0].1,
        "AWS_EC2_METADATA_DISABLED": "true"}});
    let envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));

    let g = gate();
    let expected: Vec<String> = (0..3).map(|i| format!("data: {i}\n\n")).collect();
    let target = format!("/chat?chunks=3&gate={g}");
    let r = gated_exchange(envoy.port, "POST", &target, b"{\"q\": 1}", &g, &expected);
    assert_eq!(
        (r.status, r.markers_seen, r.complete),
        (201, 3, true),
        "{}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("text/event-stream"));

    let g = gate();
    let expected = markers("chunk", 3);
    let target = format!("/export/stream/3?gate={g}");
    let r = gated_exchange(envoy.port, "GET", &target, b"", &g, &expected);
    assert_eq!(
        (r.status, r.markers_seen, r.complete),
        (200, 3, true),
        "{}",
        r.text()
    );
}
