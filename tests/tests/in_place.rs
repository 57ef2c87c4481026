//! `forwarding: "route"` (issue 28, first part) in real Envoy 1.40: the
//! filter rewrites the request in place and Envoy's router forwards it to
//! the route's cluster. Bodies stream (no `max_req_body_size` ceiling), the
//! router's retries apply, and its own failures become the callout path's
//! JSON errors; the function's own answers pass untouched.
//!
//! Envoy routes the rewritten request again (a proxy-wasm ABI 0.2.1
//! module's request-header changes clear the route cache), so every
//! in-place route has a twin, first in the list, that matches the
//! `x-envoy-faas-route` header the filter adds and removes it.

use faas_emulator::aws::KEYS;
use integration_tests::*;
use serde_json::{json, Value};

const URL_HOST: &str = "fn1.lambda-url.us-east-1.on.aws";

fn emulator_url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", emulator().port())
}

fn in_place(entry: Value) -> Value {
    merged(
        json!({"forwarding": "route", "cluster": "functions"}),
        entry,
    )
}

/// Routes by name: `(name, prefix, cluster, extra route action fields)`,
/// each with its in-place twin first.
fn start(filter: &str, plugin: Value, routes: &[(&str, &str, &str, Value)]) -> Envoy {
    start_with(filter, plugin, routes, Vec::new())
}

/// [`start`] with more clusters besides `functions`, `dead` and `twice`.
fn start_with(
    filter: &str,
    plugin: Value,
    routes: &[(&str, &str, &str, Value)],
    more_clusters: Vec<Value>,
) -> Envoy {
    let mut twins = Vec::new();
    let mut client_routes = Vec::new();
    for (name, prefix, cluster, extra) in routes {
        let mut action = json!({"cluster": cluster});
        if let (Some(a), Some(e)) = (action.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        twins.push(twin_route(name, action.clone()));
        client_routes.push(json!({"name": name, "match": {"prefix": prefix}, "route": action}));
    }
    twins.extend(client_routes);
    let routes = twins;
    // `twice`: a dead endpoint, then the emulator (round robin).
    let twice = cluster_of("twice", &[dead_port(), emulator().port()]);
    let config = bootstrap(
        routes,
        vec![wasm_filter(filter, &plugin)],
        vec![
            cluster("functions", emulator().port()),
            cluster("dead", dead_port()),
            twice,
        ]
        .into_iter()
        .chain(more_clusters)
        .collect(),
    );
    Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"))
}

fn send(port: u16, h2: bool, method: &str, path: &str, body: &[u8]) -> Response {
    http_either(h2, port, method, path, &[("x-client", "1")], body)
}

#[test]
fn openfunction_in_place_rewrites_the_request_and_streams_a_body_past_the_ceiling() {
    let plugin = json!({"routes": {
        "f": in_place(json!({"function_uri": emulator_url("/echo/base"), "strip_prefix": "/f",
            "max_req_body_size": 10})),
    }});
    let envoy = start(
        "openfunction",
        plugin,
        &[("f", "/f", "functions", json!({}))],
    );
    for h2 in [false, true] {
        let r = send(envoy.port, h2, "GET", "/f/orders/42?q=1", b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let e = r.echo();
        assert_eq!(
            (e.path.as_str(), e.query.as_deref()),
            ("/echo/base/orders/42", Some("q=1"))
        );
        assert_eq!(e.header("x-client"), Some("1"));
        assert_eq!(e.header("x-forwarded-host"), Some("gateway.test"));
        let authority = format!("127.0.0.1:{}", emulator().port());
        assert_eq!(e.header("host"), Some(authority.as_str()));
        // 3 MiB, against max_req_body_size 10: in place nothing holds it.
        let body = vec![b'z'; 3 * 1024 * 1024];
        let r = send(envoy.port, h2, "POST", "/f/upload", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.echo().body.len(), body.len());
    }
    // Only the gateway sets the twin route's header.
    let r = spoof_twin_header(envoy.port, "/f/x", "f");
    assert_error(&r, 400, "reserved_header", "f");
    // The function's own error passes as it is.
    let r = get(envoy.port, "/f/../status/503");
    assert_eq!(r.status, 200, "dot segments stay contained: {}", r.text());
    let plugin =
        json!({"routes": {"s": in_place(json!({"function_uri": emulator_url("/status/503")}))}});
    let envoy = start(
        "openfunction",
        plugin,
        &[("s", "/s", "functions", json!({}))],
    );
    let r = get(envoy.port, "/s");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(!r.text().contains("function_unreachable"));
}

#[test]
fn the_routers_failures_are_the_callout_paths_json_errors() {
    let plugin = json!({"routes": {
        "dead": in_place(json!({"function_uri": emulator_url("/echo"), "cluster": "dead"})),
        "slow": in_place(json!({"function_uri": emulator_url("/delay/2000")})),
        "tries": in_place(json!({"function_uri": emulator_url("/delay/2000")})),
        "wrong": in_place(json!({"function_uri": emulator_url("/echo"), "cluster": "not_the_routes"})),
    }});
    let envoy = start(
        "openfunction",
        plugin,
        &[
            ("dead", "/dead", "dead", json!({})),
            ("slow", "/slow", "functions", json!({"timeout": "0.2s"})),
            (
                "tries",
                "/tries",
                "functions",
                json!({"timeout": "5s", "retry_policy": {"retry_on": "5xx",
                    "num_retries": 1, "per_try_timeout": "0.2s"}}),
            ),
            ("wrong", "/wrong", "functions", json!({})),
        ],
    );
    for h2 in [false, true] {
        let r = send(envoy.port, h2, "GET", "/dead", b"");
        let v = assert_error(&r, 502, "function_unreachable", "dead");
        assert!(
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("\"dead\""),
            "{v}"
        );
        assert_error(
            &send(envoy.port, h2, "GET", "/slow", b""),
            504,
            "function_timeout",
            "slow",
        );
        // Each try timed out (the router retried once): still the 504.
        assert_error(
            &send(envoy.port, h2, "GET", "/tries", b""),
            504,
            "function_timeout",
            "tries",
        );
        let v = assert_error(
            &send(envoy.port, h2, "GET", "/wrong", b""),
            500,
            "forwarding_misconfigured",
            "wrong",
        );
        assert!(
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("not_the_routes"),
            "{v}"
        );
    }
    // The per-try timeouts were retried by the router, once per request.
    assert!(
        envoy
            .stat("cluster.functions.upstream_rq_retry")
            .unwrap_or(0)
            >= 2,
        "{:?}",
        envoy.stat("cluster.functions.upstream_rq_retry")
    );
    // Counted as the callout path counts them.
    let unreachable = envoy
        .stat_ending("route=.=dead;.;outcome=.=unreachable;.;fault=.=function;.;")
        .map(|(_, n)| n);
    assert_eq!(unreachable, Some(2));
}

/// A circuit breaker that is full: the router's overflow is the callout
/// path's error for the same overflow, status, code and metrics.
#[test]
fn a_circuit_breakers_overflow_is_the_callout_paths_error() {
    let mut full = cluster("full", emulator().port());
    full["circuit_breakers"] = json!({"thresholds": [{"max_pending_requests": 0}]});
    let function = |forwarding: &str| json!({"function_uri": emulator_url("/echo"), "cluster": "full", "forwarding": forwarding});
    let plugin = json!({"routes": {"in_place": function("route"), "callout": function("callout")}});
    let envoy = start_with(
        "openfunction",
        plugin,
        &[
            ("in_place", "/in_place", "full", json!({})),
            ("callout", "/callout", "full", json!({})),
        ],
        vec![full],
    );
    for h2 in [false, true] {
        let in_place = send(envoy.port, h2, "GET", "/in_place", b"");
        let callout = send(envoy.port, h2, "GET", "/callout", b"");
        let a = assert_error(&in_place, 502, "function_unreachable", "in_place");
        let b = assert_error(&callout, 502, "function_unreachable", "callout");
        assert!(
            a["message"]
                .as_str()
                .unwrap_or_default()
                .contains("overflow"),
            "{a}"
        );
        assert_eq!(a["error"], b["error"]);
    }
    assert_eq!(
        envoy.stat("cluster.full.upstream_rq_pending_overflow"),
        Some(4)
    );
    for route in ["in_place", "callout"] {
        let counted = envoy
            .stat_ending(&format!(
                "route=.={route};.;outcome=.=unreachable;.;fault=.=function;.;"
            ))
            .map(|(_, n)| n);
        assert_eq!(counted, Some(2), "{route}");
    }
}

/// Outlier detection ejects an endpoint that keeps failing: in place the
/// router's load balancer sees the function's 5xx (which reach the client
/// untouched), and after the ejection every request lands on the healthy
/// endpoint.
#[test]
fn outlier_detection_ejects_a_failing_endpoint() {
    let failing = raw_reply_server(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nsick",
    );
    let mut pair = cluster_of("pair", &[failing, emulator().port()]);
    pair["outlier_detection"] = json!({"consecutive_5xx": 2, "enforcing_consecutive_5xx": 100,
        "max_ejection_percent": 50, "base_ejection_time": "60s", "interval": "60s"});
    let plugin = json!({"routes": {
        "p": in_place(json!({"function_uri": emulator_url("/echo"), "cluster": "pair"})),
    }});
    let mut envoy = start_with(
        "openfunction",
        plugin,
        &[("p", "/p", "pair", json!({}))],
        vec![pair],
    );
    let mut function_5xx = 0;
    for _ in 0..4 {
        let r = get(envoy.port, "/p");
        if r.status == 503 {
            // The function's own 5xx: its body, not an error of ours.
            assert_eq!(r.body, b"sick");
            function_5xx += 1;
        } else {
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    assert_eq!(function_5xx, 2, "round robin over both endpoints");
    envoy
        .wait_stat("cluster.pair.outlier_detection.ejections_enforced_total", 1)
        .unwrap_or_else(|log| panic!("no ejection: {log}"));
    for i in 0..6 {
        let r = get(envoy.port, "/p");
        assert_eq!(r.status, 200, "after the ejection, {i}: {}", r.text());
        assert_eq!(r.echo().path, "/echo");
    }
}

/// A function endpoint answering 503: the router retries the request on
/// the other endpoint (`retry_on: 5xx`), so every client gets the healthy
/// function's answer; without the retry policy half of them would get the
/// 503 (a function's own 5xx passes untouched).
#[test]
fn the_routers_retries_move_a_503_to_the_other_endpoint() {
    let failing = raw_reply_server(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nsick",
    );
    let pair = cluster_of("pair", &[failing, emulator().port()]);
    let plugin = json!({"routes": {
        "p": in_place(json!({"function_uri": emulator_url("/echo"), "cluster": "pair"})),
    }});
    let retry = json!({"retry_policy": {"retry_on": "5xx", "num_retries": 1}});
    let envoy = start_with(
        "openfunction",
        plugin,
        &[("p", "/p", "pair", retry)],
        vec![pair],
    );
    for i in 0..6 {
        let r = send(
            envoy.port,
            i % 2 == 1,
            "POST",
            "/p",
            format!("{{\"n\":{i}}}").as_bytes(),
        );
        assert_eq!(r.status, 200, "{i}: {}", r.text());
        assert_eq!(r.echo().body, format!("{{\"n\":{i}}}").as_bytes());
    }
    assert!(envoy.stat("cluster.pair.upstream_rq_retry").unwrap_or(0) >= 2);
}

#[test]
fn the_routers_retries_reach_a_second_endpoint() {
    let plugin = json!({"routes": {
        "r": in_place(json!({"function_uri": emulator_url("/echo/retried"), "cluster": "twice"})),
    }});
    let retry = json!({"retry_policy": {"retry_on": "connect-failure,reset", "num_retries": 2}});
    let envoy = start("openfunction", plugin, &[("r", "/r", "twice", retry)]);
    for i in 0..6 {
        let r = http1(
            envoy.port,
            "POST",
            "/r",
            &[],
            format!("{{\"n\":{i}}}").as_bytes(),
        );
        assert_eq!(r.status, 200, "{i}: {}", r.text());
        assert_eq!(r.echo().path, "/echo/retried");
    }
    assert!(envoy.stat("cluster.twice.upstream_rq_retry").unwrap_or(0) >= 1);
}

#[test]
fn azure_keys_go_in_place() {
    let plugin = json!({"routes": {"a": in_place(json!({
        "function_uri": "http://demo-app.azurewebsites.net/api/echo",
        "authorization": {"apikey": faas_emulator::azure::KEYS[0]}}))}});
    let envoy = start(
        "azure-functions",
        plugin,
        &[("a", "/a", "functions", json!({}))],
    );
    let r = http1(envoy.port, "POST", "/a", &[], b"streamed");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.echo().body, b"streamed");
}

/// A signed POST in place: the headers wait (flag set, `stop_iteration`)
/// for the body, whose hash SigV4 signs, then the router forwards the
/// signed request, and re-sends it intact when it retries. Through the
/// `twice` cluster (a dead endpoint, then the emulator) only the router's
/// retries make every request succeed: a callout has none.
#[test]
fn signed_requests_go_in_place_and_the_routers_retries_resend_them_intact() {
    let plugin = json!({"routes": {"l": in_place(json!({
        "function_uri": format!("http://{URL_HOST}/echo"), "strip_prefix": "/l", "cluster": "twice",
        "max_req_body_size": 64,
        "authorization": {"iam": {"accesskey": KEYS[0].0, "secretkey": KEYS[0].1}}}))}});
    let retry = json!({"retry_policy": {"retry_on": "connect-failure,reset", "num_retries": 2}});
    let envoy = start("aws-lambda", plugin, &[("l", "/l", "twice", retry)]);
    // The emulator's Function URL verifies SigV4 (aws-sigv4 crate), body hash included.
    for i in 0..4 {
        let h2 = i % 2 == 1;
        let r = send(envoy.port, h2, "GET", "/l/x", b"");
        assert_eq!(r.status, 200, "GET {i}: {}", r.text());
        assert!(r.echo().header("authorization").is_some());
        let body = format!("{{\"signed\":{i}}}");
        let r = send(envoy.port, h2, "POST", "/l/x", body.as_bytes());
        assert_eq!(r.status, 200, "POST {i}: {}", r.text());
        let echo = r.echo();
        assert_eq!(echo.body, body.as_bytes());
        assert_eq!(echo.path, "/echo/x");
        assert_eq!(echo.header(TWIN_ROUTE_HEADER), None);
    }
    assert!(envoy.stat("cluster.twice.upstream_rq_retry").unwrap_or(0) >= 2);
    // The body is held to be signed: max_req_body_size applies.
    let r = http1(envoy.port, "POST", "/l/x", &[], &[b'a'; 65]);
    assert_error(&r, 413, "request_body_too_large", "l");
    let r = post_chunked(envoy.port, "/l/x", &[&[b'a'; 40], &[b'b'; 40]]);
    assert_error(&r, 413, "request_body_too_large", "l");
}

/// Without the flag (`holding_filter` layout, a buffer filter holding the
/// request) the headers cannot change once the body is here: a signed
/// body takes the callout path, a signed GET still goes in place. Through
/// the `twice` cluster with retries (one worker, round robin) every GET
/// succeeds, and callouts, which the router does not retry, alternate.
#[test]
fn signed_bodies_behind_a_holding_filter_take_the_callout_path() {
    let plugin = json!({"body_layout": "holding_filter", "routes": {"l": in_place(json!({
        "function_uri": format!("http://{URL_HOST}/echo"), "strip_prefix": "/l", "cluster": "twice",
        "authorization": {"iam": {"accesskey": KEYS[0].0, "secretkey": KEYS[0].1}}}))}});
    let wasm = without_flag(wasm_filter("aws-lambda", &plugin));
    let buffer = buffer_filter(1048576);
    let retry = json!({"retry_on": "connect-failure,reset", "num_retries": 2});
    let twin = twin_route("l", json!({"cluster": "twice", "retry_policy": retry}));
    let client = json!({"name": "l", "match": {"prefix": "/l"},
        "route": {"cluster": "twice", "retry_policy": retry}});
    let twice = cluster_of("twice", &[dead_port(), emulator().port()]);
    let config = bootstrap(vec![twin, client], vec![wasm, buffer], vec![twice]);
    let envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    for _ in 0..3 {
        let r = get(envoy.port, "/l/x");
        assert_eq!(r.status, 200, "GET in place: {}", r.text());
    }
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            let r = http1(envoy.port, "POST", "/l/x", &[], b"{\"signed\":true}");
            if r.status == 200 {
                assert_eq!(r.echo().body, b"{\"signed\":true}");
            } else {
                assert_error(&r, 502, "function_unreachable", "l");
            }
            r.status
        })
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        2,
        "callouts alternate between the endpoints: {statuses:?}"
    );
}

#[test]
fn invoke_mode_is_refused_in_place() {
    // Invoke mode is refused in place, naming the field.
    let invoke = json!({"routes": {"i": in_place(json!({"function_name": "echo-event",
        "endpoint": "http://lambda.us-east-1.amazonaws.com", "aws_key": KEYS[0].0, "aws_secret": KEYS[0].1}))}});
    let log = start_filter("aws-lambda", &invoke, &[("i", "/i")], &[])
        .err()
        .expect("refused");
    assert!(log.contains(r#"route "i": field "forwarding""#), "{log}");
}

/// In place the function's answer streams: each chunk reaches the client
/// as the function writes it, within 50 ms (issue 28's target), chunked
/// `application/octet-stream` and `text/event-stream` alike, over a
/// function that writes one every 100 ms. Through a callout the client sees
/// nothing until the function has finished (the whole answer is one local
/// reply).
#[test]
fn in_place_a_streaming_answer_reaches_the_client_chunk_by_chunk() {
    let events = 8;
    let gap = std::time::Duration::from_millis(100);
    let markers: Vec<String> = (0..events).map(|i| format!("data: {i}\n")).collect();
    for content_type in ["text/event-stream", "application/octet-stream"] {
        let (function, written) = streaming_server(events, gap, content_type);
        let url = format!("http://127.0.0.1:{function}/events");
        let plugin = json!({"routes": {
            "live": in_place(json!({"function_uri": url, "cluster": "stream"})),
            "held": {"function_uri": url, "cluster": "stream", "timeout": 10000},
        }});
        let mut config = bootstrap(
            vec![
                twin_route("live", json!({"cluster": "stream"})),
                route("live", "/live", "stream"),
                route("held", "/held", "stream"),
            ],
            vec![wasm_filter("openfunction", &plugin)],
            vec![cluster("stream", function)],
        );
        config["static_resources"]["clusters"][0]["connect_timeout"] = "1s".into();
        let envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));

        let (seen, answer) = arrivals(envoy.port, "/live", &markers);
        let sent = written.lock().map(|w| w.clone()).unwrap_or_default();
        assert_eq!(sent.len(), events, "{content_type}: {answer}");
        let delays: Vec<_> = seen
            .iter()
            .zip(&sent)
            .map(|(got, wrote)| got.map(|g| g.saturating_duration_since(*wrote)))
            .collect();
        eprintln!("{content_type} in place: each chunk reached the client after {delays:?}");
        for (i, delay) in delays.iter().enumerate() {
            let delay = delay.unwrap_or_else(|| panic!("{content_type}: chunk {i} never came"));
            assert!(
                delay < std::time::Duration::from_millis(50),
                "{content_type}: chunk {i} reached the client {delay:?} after it was written"
            );
        }

        let (seen, answer) = arrivals(envoy.port, "/held", &markers);
        let sent = written.lock().map(|w| w.clone()).unwrap_or_default();
        let (first_seen, last_sent) = (seen[0].expect("the first chunk"), sent[events - 1]);
        assert!(answer.contains(&markers[events - 1]), "{answer}");
        assert!(
            first_seen >= last_sent,
            "{content_type}: a callout answers only once the function has finished"
        );
    }
}

/// The size of each bulk transfer: 1 GiB (issue 28's target), smaller
/// with `FAAS_BULK_BYTES` for a quick local run.
fn bulk_bytes() -> u64 {
    std::env::var("FAAS_BULK_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

/// No ceiling, flat memory: in place a 1 GiB answer (every filter) and a
/// 1 GiB request body (openfunction, azure-functions) pass through one
/// Envoy, and its peak resident memory stays within 16 MiB of what it was
/// before (the callout path would hold either whole, and refuse both).
#[test]
fn in_place_a_gibibyte_streams_both_ways_in_flat_memory() {
    let size = bulk_bytes();
    let bulk = bulk_server();
    let (key, secret, _) = KEYS[0];
    let cases = [
        (
            "openfunction",
            json!({"function_uri": "http://fn.test/"}),
            true,
        ),
        (
            "azure-functions",
            json!({"function_uri": "http://demo-app.azurewebsites.net/",
                   "authorization": {"apikey": faas_emulator::azure::KEYS[0]}}),
            true,
        ),
        (
            "aws-lambda",
            json!({"function_uri": format!("http://{URL_HOST}/"),
                   "authorization": {"iam": {"accesskey": key, "secretkey": secret}}}),
            false,
        ),
    ];
    for (filter, function, with_body) in cases {
        let route = merged(function, json!({"cluster": "bulk", "strip_prefix": "/b"}));
        let plugin = json!({"routes": {"b": in_place(route)}});
        let envoy = start_with(
            filter,
            plugin,
            &[("b", "/b", "bulk", json!({"timeout": "0s"}))],
            vec![cluster("bulk", bulk)],
        );
        // Warm up (connections, the VM's first request) before measuring.
        let warm = bulk_exchange(
            envoy.port,
            "POST",
            "/b/sink",
            if with_body { 1024 } else { 0 },
        );
        assert_eq!(warm.status, 200, "{filter}: {}", warm.text);
        let (before, _) = envoy.memory();
        let answer = bulk_exchange(envoy.port, "GET", &format!("/b/bytes/{size}"), 0);
        assert_eq!(
            (answer.status, answer.body_bytes),
            (200, size),
            "{filter}: {}",
            answer.text
        );
        let mut line = format!(
            "{filter}: {size}-byte answer in {:?} ({:.0} MiB/s)",
            answer.elapsed,
            size as f64 / 1048576.0 / answer.elapsed.as_secs_f64()
        );
        if with_body {
            let sent = bulk_exchange(envoy.port, "POST", "/b/sink", size);
            assert_eq!(
                (sent.status, sent.text.as_str()),
                (200, size.to_string().as_str()),
                "{filter}"
            );
            line.push_str(&format!(
                ", {size}-byte request in {:?} ({:.0} MiB/s)",
                sent.elapsed,
                size as f64 / 1048576.0 / sent.elapsed.as_secs_f64()
            ));
        }
        let (_, peak) = envoy.memory();
        let growth = peak.saturating_sub(before);
        eprintln!("{line}; Envoy RSS {before} B before, peak {peak} B (+{growth} B)");
        assert!(before > 0, "read Envoy's memory");
        assert!(
            growth < 16 * 1024 * 1024,
            "{filter}: Envoy's peak memory grew by {growth} bytes"
        );
    }
}

/// `envoy/in-place.yaml` as shipped (clusters on the emulator): the
/// function answers through the router, a body four times the listener's
/// buffer limit streams to it, and a client's own twin-route header is
/// refused.
#[test]
fn the_shipped_in_place_config_serves_and_streams() {
    let config = local_bootstrap("in-place.yaml", |cluster| match cluster {
        "openfunction-gateway" => emulator().port(),
        other => panic!("envoy/in-place.yaml: unexpected cluster {other:?}"),
    });
    // The cluster's DNS name becomes the loopback emulator; the listener
    // binds loopback only.
    let mut config = config;
    let cluster = &mut config["static_resources"]["clusters"][0];
    cluster["type"] = json!("STATIC");
    if let Some(c) = cluster.as_object_mut() {
        c.remove("dns_lookup_family");
    }
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["socket_address"]["address"] = json!("127.0.0.1");
    config["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] =
        json!("127.0.0.1");
    let envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    let r = get(envoy.port, "/hello/123");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, 123!"));
    let name = "x".repeat(4 * 1024 * 1024);
    let r = http1(envoy.port, "POST", "/hello", &[], name.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), "Hello, !".len() + name.len());
    let r = spoof_twin_header(envoy.port, "/hello", "hello");
    assert_error(&r, 400, "reserved_header", "hello");
}
