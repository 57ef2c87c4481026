//! `dist/azure_functions.wasm` in real Envoy 1.40 against the emulator's
//! Azure Functions host (function keys from `x-functions-key` or `?code=`,
//! 401 without a valid one).

use faas_emulator::azure::KEYS;
use integration_tests::*;
use serde_json::{json, Value};

const APP: &str = "http://demo-app.azurewebsites.net";
const FUNCTION_KEY: &str = KEYS[0];
const HOST_KEY: &str = KEYS[1];

fn start(plugin: Value, routes: &[(&str, &str)]) -> Envoy {
    start_or_panic("azure-functions", &plugin, routes)
}

fn one(entry: Value) -> Value {
    single_route(merged(json!({"cluster": "functions"}), entry))
}

#[test]
fn apisix_form_greets_and_azure_refuses_without_a_key() {
    let envoy = start(
        one(
            json!({"function_uri": format!("{APP}/api/greet"), "authorization": {"apikey": FUNCTION_KEY}}),
        ),
        &[("f", "/azure")],
    );
    let r = get(envoy.port, "/azure?name=Envoy");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, Envoy"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("request-context"), Some("appId=cid-v1:emulated"));
    let r = http1(
        envoy.port,
        "POST",
        "/azure",
        &[("content-type", "application/json")],
        br#"{"name":"Body"}"#,
    );
    assert_eq!(r.text(), "Hello, Body");

    let envoy = start(
        one(json!({"function_uri": format!("{APP}/api/greet")})),
        &[("f", "/azure")],
    );
    let r = get(envoy.port, "/azure?name=Envoy");
    assert_eq!(
        (r.status, r.body.len()),
        (401, 0),
        "Azure's 401 passes through verbatim"
    );
}

#[test]
fn kong_form_builds_the_url() {
    let plugin = one(json!({
        "appname": "demo-app", "functionname": "/echo/", "routeprefix": "/api/",
        "https": false, "apikey": FUNCTION_KEY, "clientid": "kong-client"
    }));
    let envoy = start(plugin, &[("f", "/kong")]);
    let r = get(envoy.port, "/kong/ignored?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_eq!(
        (e.path.as_str(), e.query.as_deref()),
        ("/api/echo", Some("x=1")),
        "Kong >= 3.6 does not append the client path"
    );
    assert_eq!(e.header("host"), Some("demo-app.azurewebsites.net"));
    assert_eq!(e.header("x-functions-key"), Some(FUNCTION_KEY));
    assert_eq!(e.header("x-functions-clientid"), Some("kong-client"));
}

#[test]
fn mixing_the_forms_is_refused_at_load() {
    let plugin = one(
        json!({"function_uri": format!("{APP}/api/echo"), "appname": "demo-app", "functionname": "echo"}),
    );
    let log = match start_filter("azure-functions", &plugin, &[("f", "/f")], &[]) {
        Ok(envoy) => panic!("accepted a mixed config\n{}", envoy.log()),
        Err(log) => log,
    };
    assert!(log.contains("route \"f\": field \"appname\": is a Kong-form field and cannot be mixed with the APISIX form"), "{log}");
}

/// The keys the function received for a config and client headers.
fn keys_received(plugin: Value, client: &[(&str, &str)]) -> (Option<String>, Option<String>) {
    let envoy = start(plugin, &[("f", "/f")]);
    let r = http1(envoy.port, "GET", "/f", client, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    for h in ["x-functions-key", "x-functions-clientid"] {
        assert!(e.headers_named(h).len() <= 1, "{h} sent twice");
        assert!(e.header(h) != Some(""), "empty {h} sent");
    }
    (
        e.header("x-functions-key").map(String::from),
        e.header("x-functions-clientid").map(String::from),
    )
}

#[test]
fn key_precedence_matrix() {
    let s = |v: &str| Some(v.to_string());
    let uri = format!("{APP}/api/echo");
    let client = [
        ("x-functions-key", HOST_KEY),
        ("x-functions-clientid", "client-cid"),
    ];
    let rows = [
        // client keys win over route and master keys
        (
            json!({"master_apikey": "mk", "master_clientid": "mc", "routes": {"f": {"function_uri": uri, "cluster": "functions", "authorization": {"apikey": FUNCTION_KEY, "clientid": "route-cid"}}}}),
            &client[..],
            (s(HOST_KEY), s("client-cid")),
        ),
        // then the route's
        (
            json!({"master_apikey": "mk", "master_clientid": "mc", "routes": {"f": {"function_uri": uri, "cluster": "functions", "authorization": {"apikey": FUNCTION_KEY, "clientid": "route-cid"}}}}),
            &[][..],
            (s(FUNCTION_KEY), s("route-cid")),
        ),
        // then the master keys
        (
            json!({"master_apikey": HOST_KEY, "master_clientid": "mc", "routes": {"f": {"function_uri": uri, "cluster": "functions"}}}),
            &[][..],
            (s(HOST_KEY), s("mc")),
        ),
        // per header: route key with the master client id
        (
            json!({"master_apikey": "mk", "master_clientid": "mc", "routes": {"f": {"function_uri": uri, "cluster": "functions", "authorization": {"apikey": FUNCTION_KEY}}}}),
            &[][..],
            (s(FUNCTION_KEY), s("mc")),
        ),
        // strip_client_keys: the client's are replaced by configured ones
        (
            json!({"master_clientid": "mc", "routes": {"f": {"function_uri": uri, "cluster": "functions", "strip_client_keys": true, "authorization": {"apikey": FUNCTION_KEY}}}}),
            &client[..],
            (s(FUNCTION_KEY), s("mc")),
        ),
    ];
    for (plugin, client, expected) in rows {
        assert_eq!(keys_received(plugin.clone(), client), expected, "{plugin}");
    }
    // Nothing configured and nothing sent: no key headers at all (and Azure says 401).
    let envoy = start(one(json!({"function_uri": uri})), &[("f", "/f")]);
    assert_eq!(get(envoy.port, "/f").status, 401);
    // strip_client_keys with nothing configured: the client's key is removed.
    let envoy = start(
        one(json!({"function_uri": uri, "strip_client_keys": true})),
        &[("f", "/f")],
    );
    assert_eq!(
        http1(
            envoy.port,
            "GET",
            "/f",
            &[("x-functions-key", HOST_KEY)],
            b""
        )
        .status,
        401
    );
}

#[test]
fn a_code_key_in_function_uri_is_kept_and_merged_with_the_query() {
    let envoy = start(
        one(json!({"function_uri": format!("{APP}/api/echo?code={FUNCTION_KEY}")})),
        &[("f", "/f")],
    );
    let r = get(envoy.port, "/f?b=2&a=1");
    assert_eq!(r.status, 200, "Azure accepted the ?code= key: {}", r.text());
    assert_eq!(
        r.echo().query.as_deref(),
        Some(format!("code={FUNCTION_KEY}&b=2&a=1").as_str())
    );
}

#[test]
fn path_forwarding() {
    let plugin = one(
        json!({"function_uri": format!("{APP}/api/echo"), "strip_prefix": "/azure", "authorization": {"apikey": FUNCTION_KEY}}),
    );
    let envoy = start(plugin, &[("f", "/azure")]);
    for (client, expected) in [
        ("/azure/", "/api/echo/"),
        ("/azure/httptrigger", "/api/echo/httptrigger"),
        (
            "/azure/http/trigger/deep/path",
            "/api/echo/http/trigger/deep/path",
        ),
        ("/azure///http////trigger", "/api/echo/http/trigger"),
    ] {
        let r = get(envoy.port, client);
        assert_eq!(r.status, 200, "{client}: {}", r.text());
        assert_eq!(r.echo().path, expected, "{client}");
    }
}

#[test]
fn method_headers_body_and_query_are_forwarded_exactly() {
    let plugin = one(
        json!({"function_uri": format!("{APP}/api/echo"), "authorization": {"apikey": FUNCTION_KEY}}),
    );
    let envoy = start(plugin, &[("f", "/f")]);
    let body: Vec<u8> = (0..=255u8).collect();
    let r = http1(
        envoy.port,
        "PATCH",
        "/f?z=1&a=%20&a=2&flag",
        &[
            ("x-one", "1"),
            ("x-rep", "a"),
            ("x-rep", "b"),
            ("content-type", "application/octet-stream"),
        ],
        &body,
    );
    let e = r.echo();
    assert_eq!(
        (e.method.as_str(), e.query.as_deref()),
        ("PATCH", Some("z=1&a=%20&a=2&flag"))
    );
    assert_eq!(e.headers_named("x-rep"), vec!["a", "b"]);
    assert_eq!(e.header("x-one"), Some("1"));
    assert_eq!(e.body, body);
}

#[test]
fn status_and_headers_come_back_verbatim() {
    let plugin = one(
        json!({"function_uri": format!("{APP}/api"), "strip_prefix": "/f", "authorization": {"apikey": FUNCTION_KEY}}),
    );
    let envoy = start(plugin, &[("f", "/f")]);
    let r = get(envoy.port, "/f/status/503");
    assert_eq!((r.status, r.body.len()), (503, 0));
    assert_eq!(r.header("x-emulator-status"), Some("503"));
    let r = get(envoy.port, "/f/hop");
    assert_eq!(
        r.headers_named("set-cookie"),
        vec!["a=1; Path=/", "b=2; Path=/"]
    );
    assert_eq!(r.header("x-end-to-end"), Some("kept"));
}

#[test]
fn http2_downstream() {
    let envoy = start(
        one(
            json!({"function_uri": format!("{APP}/api/greet"), "authorization": {"apikey": FUNCTION_KEY}}),
        ),
        &[("f", "/f")],
    );
    let r = http2(envoy.port, "GET", "/f?name=h2", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, h2"));
    let r = http2(envoy.port, "POST", "/f", &[], b"plain body");
    assert_eq!(r.text(), "Hello, plain body");
}
