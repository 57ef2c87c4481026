//! The shipped demo gateway end to end: `envoy/demo.yaml` in real Envoy 1.40
//! with the three modules, the emulator as its functions. With
//! `FAAS_GATEWAY=envoy:10000` the same cases run against the composed
//! gateway (`envoy/compose.yaml` in `integration/docker-compose.yaml`), so
//! they also prove service-name clusters, published ports and container
//! networking. Cases need only the gateway: nothing here reads Envoy's log or
//! restarts it.

use integration_tests::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// The demo's service token (envoy/demo.yaml, route `secure`), and how it
/// reaches the function.
const DEMO_SERVICE_TOKEN: &str = "demo:demo-secret";
const DEMO_BASIC_AUTH: &str = "Basic ZGVtbzpkZW1vLXNlY3JldA==";

#[test]
fn hello_function_answers_through_envoy() {
    let gw = Gateway::start();
    let r = get(&gw, "/hello/123");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, 123!"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = get(&gw, "/hello?name=Ada%20L");
    assert_eq!(r.text(), "Hello, Ada L!");
    let r = http1(
        &gw,
        "POST",
        "/hello",
        &[("content-type", "application/json")],
        br#"{"name":"Grace"}"#,
    );
    assert_eq!(r.text(), "Hello, Grace!");
}

#[test]
fn the_echo_function_sees_the_forwarded_request() {
    let gw = Gateway::start();
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = http1(
        &gw,
        "GET",
        "/echo/any/path?b=2&a=1",
        &[
            ("x-custom", "one"),
            ("x-custom", "two"),
            ("traceparent", trace),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_eq!(
        (e.method.as_str(), e.path.as_str(), e.query.as_deref()),
        ("GET", "/echo/any/path", Some("b=2&a=1"))
    );
    assert_eq!(e.header("host"), Some(gw.functions_authority()));
    assert_eq!(e.headers_named("x-custom"), vec!["one", "two"]);
    assert_eq!(e.header("traceparent"), Some(trace));
    assert_eq!(e.header("x-forwarded-host"), Some("gateway.test"));
    assert_eq!(e.header("x-forwarded-proto"), Some("http"));
    // The client's address as Envoy saw it: loopback here, the suite
    // container's address on the compose network.
    let client = e.header("x-forwarded-for").unwrap_or_default();
    assert!(
        client.parse::<std::net::IpAddr>().is_ok(),
        "x-forwarded-for {client:?}"
    );
    assert_eq!(
        client == "127.0.0.1",
        !gw.is_composed(),
        "x-forwarded-for {client:?}"
    );
    let rid = e.header("x-request-id").unwrap_or_default();
    assert_eq!(rid.len(), 36, "a UUID: {rid:?}");

    let r = http1(
        &gw,
        "PUT",
        "/echo/put",
        &[("content-type", "text/plain")],
        b"a body",
    );
    let e = r.echo();
    assert_eq!(
        (e.method.as_str(), e.body.as_slice()),
        ("PUT", &b"a body"[..])
    );
    assert_eq!(e.header("content-length"), Some("6"));
}

#[test]
fn the_service_token_replaces_the_client_authorization() {
    let gw = Gateway::start();
    let e = http1(
        &gw,
        "GET",
        "/secure",
        &[("authorization", "Bearer mine")],
        b"",
    )
    .echo();
    assert_eq!(e.headers_named("authorization"), vec![DEMO_BASIC_AUTH]);
    assert_eq!(e.path, "/echo/secure");
    if let Some(log) = gw.log() {
        assert!(
            !log.contains(DEMO_SERVICE_TOKEN) && !log.contains(DEMO_BASIC_AUTH),
            "secret in log"
        );
    }
}

#[test]
fn a_slow_function_is_a_json_504_at_the_route_timeout() {
    let gw = Gateway::start();
    let started = Instant::now();
    let r = get(&gw, "/slow");
    assert_error(&r, 504, "function_timeout", "slow");
    // The route's 300 ms, not the function's 2 s.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_unreachable_function_is_a_json_502() {
    let gw = Gateway::start();
    assert_error(
        &get(&gw, "/unreachable"),
        502,
        "function_unreachable",
        "unreachable",
    );
}

#[test]
fn the_hello_function_through_a_signed_function_url() {
    // The emulated Function URL checks SigV4 like AWS: only a correctly
    // signed request reaches the function.
    let gw = Gateway::start();
    let r = get(&gw, "/lambda?name=Lambda");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, Lambda!"));
    let r = http1(
        &gw,
        "POST",
        "/lambda",
        &[("content-type", "application/json")],
        br#"{"name":"JSON"}"#,
    );
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, JSON!"));
}

#[test]
fn the_invoke_api_with_an_api_gateway_v2_event() {
    let gw = Gateway::start();
    let r = http1(
        &gw,
        "POST",
        "/orders/42?a=1&a=2",
        &[("content-type", "application/json"), ("cookie", "c1=1")],
        br#"{"n":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-invoked"), Some("proxy-echo:$LATEST"));
    assert_eq!(
        r.headers_named("set-cookie"),
        vec!["a=1; Path=/", "b=2; Path=/"]
    );
    let event = r.json();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/orders/42");
    assert_eq!(event["rawQueryString"], "a=1&a=2");
    assert_eq!(event["pathParameters"], json!({"proxy": "42"}));
    assert_eq!(event["cookies"], json!(["c1=1"]));
    assert_eq!(event["body"], r#"{"n":1}"#);
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
}

#[test]
fn the_azure_greeting_with_the_host_key() {
    // The emulated Azure host answers 401 without a key.
    let gw = Gateway::start();
    let r = get(&gw, "/azure?name=Azure");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, Azure"));
    let r = http1(
        &gw,
        "POST",
        "/azure",
        &[("content-type", "application/json")],
        br#"{"name":"Body"}"#,
    );
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, Body"));
}

#[test]
fn a_private_cloud_run_service_with_a_google_id_token() {
    // The emulated Cloud Run front door answers 401 without a valid token;
    // the filter's first token comes from the metadata server a tick after
    // start (the refresh counter says when).
    let gw = Gateway::start();
    let refreshed = "envoy_faas_credentials_refreshes_total.filter=.=gcp-functions;.;source=.=metadata_server;.;";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while gw.stat_ending(refreshed).is_none_or(|(_, n)| n == 0) {
        assert!(std::time::Instant::now() < deadline, "no ID token fetched");
        std::thread::yield_now();
    }
    let r = get(&gw, "/gcp/CloudRun");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, CloudRun!"));
}

#[test]
fn other_routes_are_plain_envoy() {
    let gw = Gateway::start();
    let e = get(&gw, "/plain/not-a-function").echo();
    assert_eq!(e.path, "/echo/plain/not-a-function");
    let r = get(&gw, "/no-such-route");
    assert_eq!((r.status, r.body.len()), (404, 0), "Envoy's own 404");
}

#[test]
fn http2_reaches_every_filter() {
    let gw = Gateway::start();
    let r = http2(&gw, "GET", "/hello/h2", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, h2!"));
    let r = http2(&gw, "GET", "/lambda?name=h2", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, h2!"));
    let r = http2(&gw, "GET", "/azure?name=h2", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, h2"));
    let r = http2(&gw, "POST", "/orders", &[], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["requestContext"]["http"]["protocol"], "HTTP/2.0");
}

#[test]
fn the_modules_report_to_the_admin_stats() {
    let gw = Gateway::start();
    assert_eq!(get(&gw, "/hello").status, 200);
    for filter in [
        "openfunction",
        "aws-lambda",
        "azure-functions",
        "gcp-functions",
    ] {
        let gauge = format!("envoy_faas_wasm_memory_bytes.filter=.={filter};.;");
        let stat = gw.stat_ending(&gauge);
        assert!(
            stat.as_ref().is_some_and(|(_, b)| *b > 0),
            "{gauge}: {stat:?}"
        );
    }
}

/// The shipped listener settings (normalize_path, merge_slashes,
/// path_with_escaped_slashes_action: REJECT_REQUEST): no encoded separator
/// reaches a function, and dot segments resolve before routing.
#[test]
fn the_shipped_listener_confines_paths() {
    let gw = Gateway::start();
    for escape in [
        "/echo/..%2F..%2Fadmin",
        "/echo/..%5C..%5Cadmin",
        "/echo/a%2fb",
    ] {
        for h2 in [false, true] {
            let r = http_either(h2, &gw, "GET", escape, &[], b"");
            assert_eq!(r.status, 400, "{escape} h2={h2}: {}", r.text());
        }
    }
    // Plain dot segments are resolved by Envoy before the route matches:
    // out of /echo, this is no function route at all.
    let raw = b"GET /echo/../../admin HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n";
    let r = try_request(&gw, raw).expect("raw request");
    assert_eq!(r.status, 404, "{}", r.text());
    // A raw backslash: Envoy's normalisation or the filter refuses it.
    let raw =
        b"GET /echo/..\\..\\admin HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n";
    let r = try_request(&gw, raw).expect("raw request");
    assert!(matches!(r.status, 400 | 404), "{}: {}", r.status, r.text());
    // What stays below the function passes.
    assert_eq!(get(&gw, "/echo/a/./b/../c").echo().path, "/echo/a/c");
}
