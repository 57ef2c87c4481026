//! `dist/openfunction.wasm` in real Envoy 1.40 against the loopback emulator
//! (the demo gateway's routes are in gateway.rs).

use integration_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The function's base URL on the emulator.
fn fn_url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", emulator().port())
}

/// Envoy with the openfunction filter (see [`start_filter`]).
fn start(plugin: Value, routes: &[(&str, &str)]) -> Envoy {
    start_or_panic("openfunction", &plugin, routes)
}

fn try_start(plugin: Value, routes: &[(&str, &str)]) -> Result<Envoy, String> {
    start_filter("openfunction", &plugin, routes, &[])
}

fn one_route(function_path: &str, extra: Value) -> Value {
    single_route(merged(
        json!({"function_uri": fn_url(function_path), "cluster": "functions"}),
        extra,
    ))
}

#[test]
fn get_and_post_forward_method_headers_and_body() {
    let envoy = start(one_route("/echo", json!({})), &[("f", "/api")]);
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = http1(
        envoy.port,
        "GET",
        "/api",
        &[
            ("x-custom", "one"),
            ("x-custom", "two"),
            ("traceparent", trace),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    let e = r.echo();
    assert_eq!(
        (e.method.as_str(), e.path.as_str(), e.query.as_deref()),
        ("GET", "/echo", None)
    );
    assert_eq!(e.headers_named("x-custom"), vec!["one", "two"]);
    assert_eq!(
        e.header("host"),
        Some(format!("127.0.0.1:{}", emulator().port()).as_str())
    );
    assert_eq!(e.header("x-forwarded-host"), Some("gateway.test"));
    assert_eq!(e.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(e.header("x-forwarded-proto"), Some("http"));
    assert_eq!(e.header("traceparent"), Some(trace));
    let rid = e.header("x-request-id").expect("x-request-id forwarded");
    assert_eq!(rid.len(), 36, "a UUID: {rid}");
    assert!(e.body.is_empty());
    assert!(
        e.header("content-length").is_none(),
        "no body, no length: {:?}",
        e.headers
    );

    let r = http1(
        envoy.port,
        "POST",
        "/api",
        &[("content-type", "text/plain")],
        b"hello body",
    );
    let e = r.echo();
    assert_eq!(e.method, "POST");
    assert_eq!(e.body, b"hello body");
    assert_eq!(e.header("content-type"), Some("text/plain"));
    assert_eq!(e.header("content-length"), Some("10"));
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        assert_eq!(
            http1(envoy.port, method, "/api", &[], b"x").echo().method,
            method
        );
    }
}

#[test]
fn path_forwarding_appends_the_remainder_safely() {
    let envoy = start(
        one_route("/echo/base", json!({"strip_prefix": "/fwd"})),
        &[("f", "/fwd")],
    );
    let cases = [
        ("/fwd", "/echo/base"),
        ("/fwd/", "/echo/base/"),
        ("/fwd/123", "/echo/base/123"),
        ("/fwd/a/b/c", "/echo/base/a/b/c"),
        (
            "/fwd/a%2Fb/c%20d/caf%C3%A9",
            "/echo/base/a%2Fb/c%20d/caf%C3%A9",
        ),
        ("/fwd/../../status/500", "/echo/base/status/500"),
        ("/fwd/x/%2e%2E/y", "/echo/base/y"),
        ("/fwd//a///b", "/echo/base/a/b"),
    ];
    for (client, expected) in cases {
        let r = get(envoy.port, client);
        assert_eq!(r.status, 200, "{client}: {}", r.text());
        assert_eq!(r.echo().path, expected, "{client}");
    }
}

#[test]
fn service_token_replaces_client_authorization_and_is_absent_otherwise() {
    let plugin = json!({
        "cluster": "functions",
        "routes": {
            "secured": {"function_uri": fn_url("/echo"), "authorization": {"service_token": "test:test"}},
            "open": {"function_uri": fn_url("/echo")}
        }
    });
    let envoy = start(plugin, &[("secured", "/secured"), ("open", "/open")]);
    let client_auth = [("authorization", "Bearer client-token")];
    let e = http1(envoy.port, "GET", "/secured", &client_auth, b"").echo();
    assert_eq!(e.headers_named("authorization"), vec!["Basic dGVzdDp0ZXN0"]);
    let e = get(envoy.port, "/secured").echo();
    assert_eq!(e.headers_named("authorization"), vec!["Basic dGVzdDp0ZXN0"]);
    let e = http1(envoy.port, "GET", "/open", &client_auth, b"").echo();
    assert_eq!(
        e.headers_named("authorization"),
        vec!["Bearer client-token"]
    );
    let e = get(envoy.port, "/open").echo();
    assert!(e.headers_named("authorization").is_empty());
    // The token never shows up in Envoy's log.
    let log = envoy.log();
    assert!(
        !log.contains("test:test") && !log.contains("dGVzdDp0ZXN0"),
        "secret in log"
    );
}

#[test]
fn query_is_forwarded_byte_for_byte_and_merged_with_the_function_uri_query() {
    let plugin = json!({
        "cluster": "functions",
        "routes": {
            "q": {"function_uri": fn_url("/echo")},
            "keyed": {"function_uri": fn_url("/echo?code=k%3D1")}
        }
    });
    let envoy = start(plugin, &[("q", "/q"), ("keyed", "/keyed")]);
    let query = "b=2&a=1&a=0&flag&sp=x+y&e=&pct=%2B%26&u=%E2%9C%93&lower=%e2%9c%93&sl=/?&star=*";
    let e = get(envoy.port, &format!("/q?{query}")).echo();
    assert_eq!(e.query.as_deref(), Some(query));
    let e = get(envoy.port, "/keyed?b=2&a=1").echo();
    assert_eq!(e.query.as_deref(), Some("code=k%3D1&b=2&a=1"));
    let e = get(envoy.port, "/q").echo();
    assert_eq!(e.query, None, "no trailing '?' without a query");
}

#[test]
fn hop_by_hop_headers_are_stripped_both_ways() {
    let plugin = json!({"cluster": "functions", "routes": {
        "echo": {"function_uri": fn_url("/echo")},
        "hop": {"function_uri": fn_url("/hop")}
    }});
    let envoy = start(plugin, &[("echo", "/echo"), ("hop", "/hop")]);
    let r = http1(
        envoy.port,
        "POST",
        "/echo",
        &[
            ("connection", "x-hop-req"),
            ("x-hop-req", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic cHJveHk6cHc="),
            ("proxy-foo", "bar"),
            ("trailer", "x-t"),
            ("te", "trailers"),
            ("x-end-to-end", "kept"),
            ("expect", "100-continue"),
        ],
        b"body",
    );
    let e = r.echo();
    for name in [
        "connection",
        "x-hop-req",
        "keep-alive",
        "proxy-authorization",
        "proxy-foo",
        "trailer",
        "te",
        "transfer-encoding",
        "expect",
    ] {
        assert!(
            e.header(name).is_none(),
            "{name} was forwarded: {:?}",
            e.headers
        );
    }
    assert_eq!(e.header("x-end-to-end"), Some("kept"));
    assert_eq!(e.body, b"body");

    let r = get(envoy.port, "/hop");
    assert_eq!((r.status, r.text().as_str()), (200, "hop"));
    for name in ["x-hop-resp", "keep-alive", "proxy-authenticate"] {
        assert!(
            r.header(name).is_none(),
            "{name} reached the client: {:?}",
            r.headers
        );
    }
    assert_eq!(
        r.headers_named("connection"),
        vec!["close"],
        "only the client connection's own"
    );
    assert_eq!(r.header("x-end-to-end"), Some("kept"));
}

#[test]
fn repeated_set_cookie_headers_are_kept_in_order_over_http1_and_http2() {
    let envoy = start(one_route("/hop", json!({})), &[("f", "/hop")]);
    let expected = vec!["a=1; Path=/", "b=2; Path=/"];
    assert_eq!(
        get(envoy.port, "/hop").headers_named("set-cookie"),
        expected
    );
    assert_eq!(
        http2(envoy.port, "GET", "/hop", &[], b"").headers_named("set-cookie"),
        expected
    );
}

#[test]
fn binary_bodies_are_byte_exact_in_both_directions() {
    let envoy = start(one_route("/mirror", json!({})), &[("f", "/mirror")]);
    let mut body: Vec<u8> = (0..=255u8).cycle().take(256 * 64).collect();
    body.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3, 0x28, b'\r', b'\n', 0x80]);
    let ct = [("content-type", "application/octet-stream")];
    let r = http1(envoy.port, "POST", "/mirror", &ct, &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(
        r.body == body,
        "HTTP/1.1 body differs ({} vs {} bytes)",
        r.body.len(),
        body.len()
    );
    let r = http2(envoy.port, "POST", "/mirror", &ct, &body);
    assert_eq!(r.status, 200);
    assert!(
        r.body == body,
        "HTTP/2 body differs ({} vs {} bytes)",
        r.body.len(),
        body.len()
    );
}

#[test]
fn http2_downstream_works_for_get_and_post() {
    let plugin = json!({"cluster": "functions", "routes": {
        "hello": {"function_uri": fn_url("/default/function-sample"), "strip_prefix": "/hello"},
        "echo": {"function_uri": fn_url("/echo")}
    }});
    let envoy = start(plugin, &[("hello", "/hello"), ("echo", "/echo")]);
    let r = http2(envoy.port, "GET", "/hello/h2", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, h2!"));
    let r = http2(
        envoy.port,
        "POST",
        "/echo?x=1",
        &[("x-custom", "v")],
        b"h2 body",
    );
    let e = r.echo();
    assert_eq!(
        (e.method.as_str(), e.query.as_deref(), e.body.as_slice()),
        ("POST", Some("x=1"), &b"h2 body"[..])
    );
    assert_eq!(e.header("x-custom"), Some("v"));
    assert_eq!(e.header("x-forwarded-host"), Some("gateway.test"));
}

#[test]
fn a_slow_function_times_out_with_504() {
    let envoy = start(
        one_route("/delay/3000", json!({"timeout": 200})),
        &[("f", "/slow")],
    );
    let started = Instant::now();
    let r = get(envoy.port, "/slow");
    let elapsed = started.elapsed();
    let v = assert_error(&r, 504, "function_timeout", "f");
    assert!(v["message"].as_str().unwrap_or_default().contains("200 ms"));
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    // The configured timeout was applied (Envoy's ms timers may fire a hair early).
    assert!(elapsed >= Duration::from_millis(150), "took {elapsed:?}");
}

#[test]
fn an_unreachable_or_misbehaving_function_is_502() {
    let plugin = json!({"routes": {
        "down": {"function_uri": fn_url("/echo"), "cluster": "dead"},
        "closes": {"function_uri": fn_url("/close"), "cluster": "functions"},
        "missing-cluster": {"function_uri": fn_url("/echo"), "cluster": "no-such-cluster"}
    }});
    let envoy = start(
        plugin,
        &[
            ("down", "/down"),
            ("closes", "/closes"),
            ("missing-cluster", "/missing"),
        ],
    );
    assert_error(
        &get(envoy.port, "/down"),
        502,
        "function_unreachable",
        "down",
    );
    assert_error(
        &get(envoy.port, "/closes"),
        502,
        "function_unreachable",
        "closes",
    );
    let v = assert_error(
        &get(envoy.port, "/missing"),
        500,
        "callout_failed",
        "missing-cluster",
    );
    assert!(v["message"]
        .as_str()
        .unwrap_or_default()
        .contains("no-such-cluster"));
}

#[test]
fn a_functions_own_error_status_and_empty_body_pass_through() {
    let plugin = json!({"cluster": "functions", "routes": {"f": {"function_uri": fn_url("/status"), "strip_prefix": "/s"}}});
    let envoy = start(plugin, &[("f", "/s")]);
    for code in [404u16, 418, 503, 504] {
        let path = format!("/s/{code}");
        let r = run_test(envoy.port, &Exchange::get(&path, code));
        assert!(r.body.is_empty(), "{code}: {:?}", r.text());
        assert_eq!(
            r.header("x-emulator-status"),
            Some(code.to_string().as_str())
        );
    }
}

#[test]
fn request_bodies_over_the_limit_get_413_before_being_read() {
    let envoy = start(
        one_route("/echo", json!({"max_req_body_size": 1024})),
        &[("f", "/up")],
    );
    let at_limit = vec![b'x'; 1024];
    let r = http1(envoy.port, "POST", "/up", &[], &at_limit);
    assert_eq!(r.status, 200);
    assert_eq!(r.echo().body.len(), 1024);
    // Announced by content-length: refused on the headers alone (the body is never sent).
    let raw = b"POST /up HTTP/1.1\r\nhost: gateway.test\r\ncontent-length: 2048\r\n\r\n";
    let r = try_request(envoy.port, raw).expect("response without sending the body");
    let v = assert_error(&r, 413, "request_body_too_large", "f");
    assert!(v["message"].as_str().unwrap_or_default().contains("1024"));
    // Chunked: refused once the buffered body passes the limit.
    let mut raw = b"POST /up HTTP/1.1\r\nhost: gateway.test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    raw.extend_from_slice(b"800\r\n");
    raw.extend_from_slice(&[b'y'; 0x800]);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_error(
        &try_request(envoy.port, &raw).expect("response"),
        413,
        "request_body_too_large",
        "f",
    );
    // Over HTTP/2 too.
    assert_error(
        &http2(envoy.port, "POST", "/up", &[], &[b'z'; 4096]),
        413,
        "request_body_too_large",
        "f",
    );
}

#[test]
fn function_responses_over_the_cap_are_not_passed_on() {
    let envoy = start(
        one_route(
            "/bytes",
            json!({"strip_prefix": "/b", "max_resp_body_size": 1000}),
        ),
        &[("f", "/b")],
    );
    let r = get(envoy.port, "/b/1000");
    assert_eq!((r.status, r.body.len()), (200, 1000));
    let v = assert_error(
        &get(envoy.port, "/b/1001"),
        502,
        "function_response_too_large",
        "f",
    );
    assert!(v["message"].as_str().unwrap_or_default().contains("1001"));
}

#[test]
fn invalid_configs_are_refused_with_the_field_named() {
    let cases = [
        (
            json!({"function_uri": fn_url("/echo"), "timeout": 50}),
            "route \"*\": field \"timeout\": must be between 100",
        ),
        (
            json!({"routes": {"r1": {"function_uri": fn_url("/echo"), "tiemout": 500}}}),
            "route \"r1\": field \"tiemout\": unknown field",
        ),
        (
            json!({"function_uri": "localhost/x"}),
            "field \"function_uri\": must be an absolute http:// or https:// URL",
        ),
        (
            json!({"function_uri": fn_url("/echo"), "authorization": {"service_token": "no-colon-secret"}}),
            "field \"authorization.service_token\": must have the form",
        ),
        (
            json!({"function_uri": fn_url("/echo"), "authorization": "a:b"}),
            "field \"authorization\": must be an object, got string",
        ),
    ];
    for (plugin, expected) in cases {
        let log = match try_start(plugin.clone(), &[("f", "/f")]) {
            Ok(envoy) => panic!("envoy accepted {plugin}\n{}", envoy.log()),
            Err(log) => log,
        };
        assert!(
            log.contains(expected),
            "expected {expected:?} in the log of a refused start:\n{log}"
        );
        assert!(!log.contains("no-colon-secret"), "a secret was logged");
    }
}

#[test]
fn routes_without_an_entry_pass_through_to_their_cluster() {
    let envoy = start(one_route("/echo", json!({})), &[("f", "/f")]);
    let r = get(envoy.port, "/plain/abc?x=1");
    assert_eq!(r.status, 200);
    let e = r.echo();
    assert_eq!(
        (e.path.as_str(), e.query.as_deref()),
        ("/echo/abc", Some("x=1"))
    );
    assert!(
        e.header("x-forwarded-host").is_none(),
        "the filter must not touch this route"
    );
    assert_eq!(e.header("host"), Some("gateway.test"));
}

#[test]
fn a_single_config_applies_to_every_route() {
    let plugin = json!({"function_uri": fn_url("/echo"), "cluster": "functions"});
    let envoy = start(plugin, &[("f", "/f")]);
    for path in ["/f/x", "/plain/y"] {
        let e = get(envoy.port, path).echo();
        assert_eq!(e.path, "/echo", "{path}");
        assert_eq!(e.header("x-forwarded-host"), Some("gateway.test"));
    }
}

#[test]
fn nothing_a_client_sends_crashes_the_vm() {
    let envoy = start(one_route("/echo", json!({})), &[("f", "/f")]);
    let nasty: Vec<Vec<u8>> = vec![
        b"GET /f HTTP/1.1\r\nhost: gateway.test\r\nx-bin: \xff\xfe\x80\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /f/%00%ff/..%2f..%2f?%zz=%%% HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n".to_vec(),
        b"POST /f HTTP/1.1\r\nhost: gateway.test\r\ncontent-length: 18446744073709551615\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /f HTTP/1.1\r\nhost: \xc3\r\nx-forwarded-for: ::::,,,\r\nconnection: close\r\n\r\n".to_vec(),
    ];
    let vms_before = envoy.stat("wasm.envoy.wasm.runtime.v8.created");
    assert!(vms_before.is_some());
    for raw in &nasty {
        // Any answer is fine (Envoy itself rejects some); the VM must survive.
        let _ = try_request(envoy.port, raw);
    }
    // The non-UTF-8 header value reached the function (replaced, not dropped).
    let r = try_request(envoy.port, &nasty[0]).expect("answer");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.echo().header("x-bin"), Some("\u{fffd}\u{fffd}\u{fffd}"));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "the VM survived: {}", r.text());
    assert_eq!(
        envoy.stat("wasm.envoy.wasm.runtime.v8.created"),
        vms_before,
        "no VM was (re)created"
    );
}

#[test]
fn a_bad_hot_update_is_refused_and_the_last_good_config_keeps_serving() {
    let dir = std::env::temp_dir().join(format!("envoy-faas-ecds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let version = |path: &str, timeout: u64| {
        wasm_filter(
            "openfunction",
            &json!({"function_uri": fn_url(path), "cluster": "functions", "timeout": timeout}),
        )
    };
    write_ecds(&dir, "faas", &version("/echo/v1", 1000));
    let mut envoy = Envoy::start(&bootstrap(
        vec![route("f", "/f", "functions")],
        vec![ecds_filter("faas", &dir)],
        vec![cluster("functions", emulator().port())],
    ))
    .unwrap_or_else(|log| panic!("{log}"));
    assert_eq!(get(envoy.port, "/f").echo().path, "/echo/v1");

    write_ecds(&dir, "faas", &version("/echo/v2", 1000));
    envoy
        .wait_stat("http_filter.faas.update_success", 2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(envoy.port, "/f").echo().path, "/echo/v2");

    write_ecds(&dir, "faas", &version("/echo/v3", 1));
    envoy
        .wait_stat("http_filter.faas.update_rejected", 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        get(envoy.port, "/f").echo().path,
        "/echo/v2",
        "the last good config still serves"
    );
    assert!(
        envoy
            .log()
            .contains("field \"timeout\": must be between 100"),
        "the refusal names the field"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shell's `wasm_memory_bytes` gauge is defined at load and holds the
/// VM's linear memory (a whole number of 64 KiB pages). Linear memory never
/// shrinks: it climbs to the allocator's high-water mark while the first
/// requests run, and after that it must stay put (a leak would not).
#[test]
fn wasm_memory_gauge_reports_linear_memory_without_growth() {
    let envoy = start(one_route("/echo", json!({})), &[("f", "/api")]);
    let body = vec![b'x'; 64 * 1024];
    let request = || {
        let r = http1(envoy.port, "POST", "/api", &[], &body);
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let gauge = "envoy_faas_wasm_memory_bytes.filter=.=openfunction;.;";
    request();
    let (name, first) = envoy.stat_ending(gauge).expect("gauge exported");
    assert!(name.ends_with(gauge), "{name}");
    assert!(first >= 65536 && first % 65536 == 0, "{first}");
    for _ in 0..100 {
        request(); // warm-up to the high-water mark
    }
    let (_, warm) = envoy.stat_ending(gauge).expect("gauge exported");
    assert!(warm >= first, "{warm} < {first}");
    for _ in 0..300 {
        request();
    }
    let (_, after) = envoy.stat_ending(gauge).expect("gauge exported");
    assert_eq!(
        after, warm,
        "linear memory grew over 300 requests after warm-up"
    );
}

/// A function that does not speak HTTP (garbage, an invalid status line)
/// gets the filter's JSON 502, logged, never Envoy's text/plain "protocol
/// error" passed through as if the function had sent it. Broken framing
/// after a valid status line reaches the filter as a failed call, the same
/// signal as an answer over Envoy's buffer: a JSON 502 that names both.
#[test]
fn a_function_that_does_not_speak_http_gets_the_json_502() {
    let replies: [(&'static [u8], &str); 3] = [
        (b"this is not http\r\n\r\n", "function_unreachable"),
        (
            b"HTTP/1.1 99x OK\r\ncontent-length: 2\r\n\r\nok",
            "function_unreachable",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n",
            "function_response_too_large",
        ),
    ];
    for (reply, code) in replies {
        let port = raw_reply_server(reply);
        let plugin = json!({"routes": {"f": {
            "function_uri": format!("http://127.0.0.1:{port}/x"),
            "cluster": "broken"
        }}});
        let mut envoy = Envoy::start(&bootstrap(
            vec![route("f", "/api", "functions")],
            vec![wasm_filter("openfunction", &plugin)],
            vec![
                cluster("functions", emulator().port()),
                cluster("broken", port),
            ],
        ))
        .unwrap_or_else(|log| panic!("{log}"));
        let r = http1(envoy.port, "GET", "/api", &[], b"");
        let what = String::from_utf8_lossy(reply);
        assert_eq!(r.status, 502, "{what}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        assert_eq!(r.json()["error"], code, "{what}");
        envoy
            .wait_log(&format!("route \"f\": {code}"))
            .unwrap_or_else(|e| panic!("{what}: not logged: {e}"));
    }
}

/// Headers that describe the representation (`content-type`, and for a
/// HEAD the `content-length` a GET would have) reach the client as the
/// function sent them, over HTTP/1.1 and HTTP/2, exactly as a plain Envoy
/// route to the same function passes them.
#[test]
fn head_and_empty_bodies_keep_the_functions_representation_headers() {
    // The raw server answers once per connection and closes it, so it says
    // so: without `connection: close` the router (the `/plain` route) may
    // reuse the pooled connection just as the server closes it, and the
    // next request gets the router's 503 (seen once in compose).
    let csv: &'static [u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: 42\r\nx-fn: 1\r\nconnection: close\r\n\r\n";
    let empty_json: &'static [u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 0\r\nx-fn: 1\r\nconnection: close\r\n\r\n";
    for (method, reply, length) in [("HEAD", csv, "42"), ("GET", empty_json, "0")] {
        let port = raw_reply_server(reply);
        let plugin = json!({"routes": {"f": {
            "function_uri": format!("http://127.0.0.1:{port}/x"),
            "cluster": "fn"
        }}});
        let envoy = Envoy::start(&bootstrap(
            vec![route("f", "/api", "fn"), route("plain", "/plain", "fn")],
            vec![wasm_filter("openfunction", &plugin)],
            vec![cluster("fn", port)],
        ))
        .unwrap_or_else(|log| panic!("{log}"));
        let content_type = if method == "HEAD" {
            "text/csv"
        } else {
            "application/json"
        };
        for path in ["/plain", "/api"] {
            let what = format!("{method} {path}");
            let r = http1(envoy.port, method, path, &[], b"");
            assert_eq!(r.status, 200, "{what}");
            assert_eq!(r.header("x-fn"), Some("1"), "{what}: {:?}", r.headers);
            assert_eq!(
                r.header("content-type"),
                Some(content_type),
                "{what}: {:?}",
                r.headers
            );
            assert_eq!(
                r.header("content-length"),
                Some(length),
                "{what}: {:?}",
                r.headers
            );
            assert_eq!(
                r.header("transfer-encoding"),
                None,
                "{what}: {:?}",
                r.headers
            );
            assert!(r.body.is_empty(), "{what}");
            let r = http2(envoy.port, method, path, &[], b"");
            assert_eq!(r.status, 200, "{what} h2");
            assert_eq!(
                r.header("content-type"),
                Some(content_type),
                "{what} h2: {:?}",
                r.headers
            );
            if method == "HEAD" {
                assert_eq!(
                    r.header("content-length"),
                    Some(length),
                    "{what} h2: {:?}",
                    r.headers
                );
            }
            assert!(r.body.is_empty(), "{what} h2");
        }
    }
}

/// Envoy's async client drops a callout answer above its buffer limit
/// (32 MiB by default) after the function's headers, and the plugin sees
/// a failed call: that is the 502 function_response_too_large, not an
/// unreachable function.
#[test]
fn answers_beyond_envoys_callout_buffer_are_too_large() {
    let cap = 33_554_432u64;
    let envoy = start(
        one_route(
            "/bytes",
            json!({"strip_prefix": "/b", "max_resp_body_size": cap}),
        ),
        &[("f", "/b")],
    );
    let r = get(envoy.port, &format!("/b/{cap}"));
    assert_eq!((r.status, r.body.len() as u64), (200, cap));
    for size in [cap + 1, 2 * cap] {
        let path = format!("/b/{size}");
        let case = Exchange::get(&path, 502).failing("function_response_too_large");
        let v = run_test(envoy.port, &case).json();
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("cut off") && message.contains(&cap.to_string()),
            "{message}"
        );
    }
}
