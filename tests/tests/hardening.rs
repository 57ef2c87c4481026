//! Issue 27's attacks on the forwarding path, in real Envoy 1.40 over
//! HTTP/1.1 and HTTP/2, through all three filters: dot segments hidden
//! behind encoded separators, client forwarding headers, and the client's
//! `x-api-key` against the configured one.

use faas_emulator::aws::{API_KEY, KEYS};
use integration_tests::*;
use serde_json::{json, Value};

const API_HOST: &str = "api1.execute-api.us-east-1.amazonaws.com";
const APP: &str = "http://demo-app.azurewebsites.net";

fn emulator_url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", emulator().port())
}

/// Each filter forwarding `/fwd/<rest>` to its function's echo under a
/// base path, and the base path the echo reports.
fn forwarding_filters() -> Vec<(&'static str, Value, &'static str)> {
    let on = |entry: Value| json!({"cluster": "functions", "routes": {"f": entry}});
    vec![
        (
            "openfunction",
            on(json!({"function_uri": emulator_url("/echo/base"), "strip_prefix": "/fwd"})),
            "/echo/base",
        ),
        (
            "azure-functions",
            on(
                json!({"function_uri": format!("{APP}/api/echo"), "strip_prefix": "/fwd",
                "authorization": {"apikey": faas_emulator::azure::KEYS[0]}}),
            ),
            "/api/echo",
        ),
        (
            "aws-lambda",
            on(
                json!({"function_uri": format!("http://{API_HOST}/iam/echo"), "strip_prefix": "/fwd",
                "authorization": {"iam": {"accesskey": KEYS[0].0, "secretkey": KEYS[0].1}}}),
            ),
            "/iam/echo",
        ),
    ]
}

fn send(port: u16, h2: bool, path: &str, headers: &[(&str, &str)]) -> Response {
    http_either(h2, port, "GET", path, headers, b"")
}

/// Sends a request line exactly as written (no client-side normalisation).
fn raw_get(port: u16, target: &str) -> Response {
    let raw = format!("GET {target} HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n");
    try_request(port, raw.as_bytes()).expect("raw request")
}

#[test]
fn dot_segments_behind_encoded_separators_are_refused_in_every_filter() {
    let escapes = [
        "/fwd/..%2F..%2Fadmin",
        "/fwd/..%2f..%2fadmin",
        "/fwd/..%5C..%5Cadmin",
        "/fwd/x/%2e%2e%2Fadmin",
        "/fwd/a%2F..%2F..%2Fadmin?q=1",
    ];
    for (filter, plugin, base) in forwarding_filters() {
        let envoy = start_or_panic(filter, &plugin, &[("f", "/fwd")]);
        for h2 in [false, true] {
            for path in escapes {
                let r = send(envoy.port, h2, path, &[]);
                let v = assert_error(&r, 400, "unsafe_path", "f");
                assert!(
                    !v["message"].as_str().unwrap_or_default().contains("admin"),
                    "the path is not echoed: {v}"
                );
            }
            // What stays below the base still passes, bytes kept.
            let r = send(envoy.port, h2, "/fwd/a%2Fb/c", &[]);
            assert_eq!(r.status, 200, "{filter}: {}", r.text());
            assert_eq!(r.echo().path, format!("{base}/a%2Fb/c"), "{filter}");
        }
        // A raw backslash, as Envoy's defaults let it through.
        let r = raw_get(envoy.port, "/fwd/..\\..\\admin");
        assert_error(&r, 400, "unsafe_path", "f");
        let stat = envoy
            .stat_ending("outcome=.=request_refused;.;fault=.=client;.;")
            .map(|(_, n)| n);
        assert_eq!(stat, Some(11), "{filter}: refusals counted");
    }
}

#[test]
fn client_forwarding_headers_the_filter_does_not_set_never_reach_the_function() {
    let spoofed = [
        ("x-forwarded-port", "8443"),
        ("x-forwarded-prefix", "/evil"),
        ("x-forwarded-server", "attacker"),
        ("x-forwarded-ssl", "on"),
        ("forwarded", "for=6.6.6.6;host=evil.test;proto=https"),
    ];
    for (filter, plugin, _) in forwarding_filters() {
        let envoy = start_or_panic(filter, &plugin, &[("f", "/fwd")]);
        for h2 in [false, true] {
            let r = send(envoy.port, h2, "/fwd/x", &spoofed);
            assert_eq!(r.status, 200, "{filter}: {}", r.text());
            let e = r.echo();
            for (name, _) in spoofed {
                assert_eq!(
                    e.header(name),
                    None,
                    "{filter} h2={h2}: {name} reached the function"
                );
            }
            // The ones the filter sets itself are there, from Envoy's facts.
            assert_eq!(e.header("x-forwarded-host"), Some("gateway.test"));
            assert_eq!(e.header("x-forwarded-proto"), Some("http"));
            assert_eq!(e.header("x-forwarded-for"), Some("127.0.0.1"));
        }
    }
}

#[test]
fn strip_client_apikey_makes_the_configured_key_win() {
    let plugin = |strip: bool| {
        json!({"cluster": "functions", "routes": {"f": {
            "function_uri": format!("http://{API_HOST}/key/echo"), "strip_prefix": "/f",
            "strip_client_apikey": strip, "authorization": {"apikey": API_KEY}}}})
    };
    // Default (APISIX parity): the client's key wins, and API Gateway
    // refuses a wrong one.
    let envoy = start_or_panic("aws-lambda", &plugin(false), &[("f", "/f")]);
    for h2 in [false, true] {
        let r = send(envoy.port, h2, "/f", &[("x-api-key", "client-chosen")]);
        assert_eq!(r.status, 403, "{}", r.text());
    }
    let envoy = start_or_panic("aws-lambda", &plugin(true), &[("f", "/f")]);
    for h2 in [false, true] {
        let r = send(envoy.port, h2, "/f", &[("x-api-key", "client-chosen")]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.echo().headers_named("x-api-key"), vec![API_KEY]);
    }
}
