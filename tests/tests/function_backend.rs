//! `envoy/function-backend.yaml` in real Envoy 1.40, as shipped (only ports
//! and module paths moved): JWT validation, rate limits, the response cache
//! with the function filter upstream, correlation ids and one error
//! envelope, against the emulator's `catalog` function.

use integration_tests::jwt::{claims, token, token_signed_by};
use integration_tests::*;
use serde_json::{json, Value};

/// The shipped posture, its function cluster on `functions_port`.
fn start_with_functions_on(functions_port: u16) -> Envoy {
    let config = local_bootstrap("function-backend.yaml", |cluster| match cluster {
        "functions" => functions_port,
        other => panic!("envoy/function-backend.yaml: unexpected cluster {other:?}"),
    });
    Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"))
}

fn start() -> Envoy {
    start_with_functions_on(emulator().port())
}

/// The function filter entry of the `catalog_function` internal listener.
fn backend_filter(config: &mut Value) -> &mut Value {
    let listener = config["static_resources"]["listeners"]
        .as_array_mut()
        .and_then(|l| l.iter_mut().find(|l| l["name"] == "catalog_function"))
        .expect("catalog_function");
    let filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_array_mut()
        .expect("http_filters");
    filters
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the function filter")
}

/// The shipped posture with the function filter's plugin config changed.
fn start_with_plugin(change: impl FnOnce(&mut Value)) -> Envoy {
    let mut config = local_bootstrap("function-backend.yaml", |_| emulator().port());
    let value =
        &mut backend_filter(&mut config)["typed_config"]["config"]["configuration"]["value"];
    let mut plugin: Value =
        serde_json::from_str(value.as_str().unwrap_or("{}")).expect("plugin JSON");
    change(&mut plugin);
    *value = plugin.to_string().into();
    Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"))
}

fn get_as(envoy: &Envoy, path: &str, bearer: &str, extra: &[(&str, &str)]) -> Response {
    let auth = format!("Bearer {bearer}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    http1(envoy.port, "GET", path, &headers, b"")
}

/// Asserts the shared envelope: JSON with exactly error, message, route
/// and request_id (the response's own x-request-id). Returns the body.
fn envelope(r: &Response, status: u16, error: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(keys, ["error", "message", "request_id", "route"], "{v}");
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(
        v["request_id"].as_str(),
        r.header("x-request-id"),
        "the envelope names the request: {v}"
    );
    v
}

/// Calls the function answered (Envoy's count of requests on the callout's cluster).
fn function_calls(envoy: &Envoy) -> u64 {
    envoy
        .stat("cluster.functions.upstream_rq_total")
        .unwrap_or(0)
}

#[test]
fn only_a_valid_token_passes_and_its_claims_reach_the_function() {
    let envoy = start();
    let none = http1(envoy.port, "GET", "/api/catalog/42", &[], b"");
    let v = envelope(&none, 401, "unauthorized");
    assert_eq!(v["message"], "Jwt is missing");

    let forged = token_signed_by("untrusted.pem", &claims("mallory"));
    envelope(
        &get_as(&envoy, "/api/catalog/42", &forged, &[]),
        401,
        "unauthorized",
    );
    let mut expired = claims("alice");
    // Older than jwt_authn's 60 s clock skew.
    expired["exp"] = json!(expired["iat"].as_u64().unwrap_or(0) - 600);
    let expired = token_signed_by("trusted.pem", &expired);
    let v = envelope(
        &get_as(&envoy, "/api/catalog/42", &expired, &[]),
        401,
        "unauthorized",
    );
    assert_eq!(v["message"], "Jwt is expired");
    // jwt_authn answers a wrong audience with 403, not 401.
    let mut other_api = claims("alice");
    other_api["aud"] = json!("orders-api");
    let other_api = token_signed_by("trusted.pem", &other_api);
    let v = envelope(
        &get_as(&envoy, "/api/catalog/42", &other_api, &[]),
        403,
        "forbidden",
    );
    assert_eq!(v["message"], "Audiences in Jwt are not allowed");
    assert_eq!(
        function_calls(&envoy),
        0,
        "no refused request reached the function"
    );

    let ok = get_as(&envoy, "/api/catalog/claims-1", &token("alice"), &[]);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let seen = &ok.json()["gateway"];
    assert_eq!(seen["client"], "alice");
    assert_eq!(seen["scope"], "catalog.read");
    assert_eq!(
        seen["authorization_forwarded"], false,
        "the token stays at the gateway"
    );
}

#[test]
fn a_client_over_its_limit_gets_429_in_the_envelope_with_rate_limit_headers() {
    let envoy = start();
    let alice = token("rate-alice");
    for i in 1..=5 {
        let r = get_as(&envoy, "/api/catalog/rl-1", &alice, &[]);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some((5 - i).to_string().as_str())
        );
    }
    let over = get_as(&envoy, "/api/catalog/rl-1", &alice, &[]);
    envelope(&over, 429, "rate_limited");
    assert_eq!(over.header("x-ratelimit-remaining"), Some("0"));
    // Another client has its own bucket.
    let bob = get_as(&envoy, "/api/catalog/rl-1", &token("rate-bob"), &[]);
    assert_eq!(bob.status, 200, "{}", bob.text());
}

#[test]
fn safe_gets_are_cached_as_the_function_allows_and_posts_never() {
    let envoy = start();
    let alice = token("cache-alice");
    let answers: Vec<Response> = (0..3)
        .map(|_| get_as(&envoy, "/api/catalog/cached-1", &alice, &[]))
        .collect();
    assert_eq!(function_calls(&envoy), 1, "three GETs, one function call");
    assert_eq!(answers[0].header("x-cache-status"), Some("miss"));
    assert!(answers[0].header("age").is_none());
    for later in &answers[1..] {
        assert_eq!(later.status, 200);
        assert_eq!(later.header("x-cache-status"), Some("hit"));
        assert!(later.header("age").is_some(), "{:?}", later.headers);
        assert_eq!(later.body, answers[0].body, "the stored answer");
    }
    assert_eq!(answers[0].json()["gateway"]["cache_status"], "miss");

    // `cache-control: no-store` (the function's `?fresh=1`): never stored.
    // (Another client each time: one client may send 5 requests a minute.)
    let carol = token("cache-carol");
    for _ in 0..3 {
        let r = get_as(&envoy, "/api/catalog/cached-1?fresh=1", &carol, &[]);
        assert_eq!(r.header("x-cache-status"), Some("miss"));
    }
    assert_eq!(function_calls(&envoy), 4);

    // POST: never cached, and the function is told the cache was bypassed.
    let auth = format!("Bearer {}", token("cache-bob"));
    for _ in 0..3 {
        let r = http1(
            envoy.port,
            "POST",
            "/api/catalog/cached-1",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            b"{}",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-cache-status"), Some("bypass"));
        assert_eq!(r.json()["gateway"]["cache_status"], "bypass");
    }
    assert_eq!(function_calls(&envoy), 7);
}

#[test]
fn the_correlation_id_reaches_the_function_and_the_client_and_bad_ones_are_replaced() {
    let envoy = start();
    let t = token("corr-alice");
    let supplied = "order-7f3a-2026";
    let r = get_as(
        &envoy,
        "/api/catalog/corr-1",
        &t,
        &[("x-correlation-id", supplied)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-correlation-id"), Some(supplied));
    let seen = &r.json()["gateway"];
    assert_eq!(seen["correlation_id"], supplied);
    assert_eq!(seen["routed_by"], "envoy-faas");

    let t2 = token("corr-bob");
    for bad in [
        "short",
        "has spaces in it",
        "semi;colon-12345",
        &"x".repeat(65),
    ] {
        let r = get_as(
            &envoy,
            "/api/catalog/corr-2?fresh=1",
            &t2,
            &[("x-correlation-id", bad)],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let request_id = r.header("x-request-id").expect("x-request-id");
        assert_eq!(r.header("x-correlation-id"), Some(request_id), "{bad}");
        assert_eq!(r.json()["gateway"]["correlation_id"], request_id, "{bad}");
    }
    let none = get_as(&envoy, "/api/catalog/corr-3", &t, &[]);
    assert_eq!(none.header("x-correlation-id"), none.header("x-request-id"));
}

#[test]
fn every_error_the_gateway_produces_has_the_same_envelope() {
    let envoy = start();
    let t = token("envelope-alice");
    // Envoy's own: no route.
    let v = envelope(
        &http1(envoy.port, "GET", "/nope", &[], b""),
        404,
        "no_route",
    );
    assert!(v["route"].is_null());
    // The function filter's own, upstream: an announced body over
    // max_req_body_size (6 MiB), refused before it is read.
    let auth = format!("Bearer {t}");
    let big = try_request(
        envoy.port,
        format!(
            "POST /api/catalog/e-1 HTTP/1.1\r\nhost: gateway.test\r\nauthorization: {auth}\r\ncontent-length: 7340032\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("answer");
    let v = envelope(&big, 413, "request_body_too_large");
    assert_eq!(v["route"], "catalog", "upstream filters see the route name");
    // The function's path contract is the function's own answer.
    let r = get_as(&envoy, "/api/catalog/bad%20id", &t, &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_item_id");
    // The function filter's unreachable function.
    let down = start_with_functions_on(dead_port());
    let v = envelope(
        &get_as(&down, "/api/catalog/e-2", &t, &[]),
        502,
        "function_unreachable",
    );
    assert!(v["message"]
        .as_str()
        .is_some_and(|m| m.contains("functions")));
    // The function filter's timeout.
    let slow = start_with_plugin(|plugin| {
        plugin["function_uri"] =
            format!("http://127.0.0.1:{}/delay/3000", emulator().port()).into();
        plugin["timeout"] = 200.into();
    });
    envelope(
        &get_as(&slow, "/api/catalog/e-3", &t, &[]),
        504,
        "function_timeout",
    );
}

/// The same posture with `aws-lambda` upstream, signing for an emulated
/// Lambda Function URL: the signature holds although the router added its
/// own headers to the upstream request, and the answer is cached.
#[test]
fn aws_lambda_signs_and_is_cached_as_an_upstream_filter() {
    let mut config = local_bootstrap("function-backend.yaml", |_| emulator().port());
    let (key, secret, _) = faas_emulator::aws::KEYS[0];
    let plugin = json!({
        "function_uri": "http://upstream.lambda-url.us-east-1.on.aws/catalog",
        "cluster": "functions",
        "strip_prefix": "/api/catalog",
        "placement": "upstream",
        "authorization": {"iam": {"accesskey": key, "secretkey": secret}},
    });
    *backend_filter(&mut config) = wasm_filter("aws-lambda", &plugin);
    let envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    let t = token("lambda-alice");
    let first = get_as(&envoy, "/api/catalog/l-1", &t, &[]);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["gateway"]["routed_by"], "envoy-faas");
    let second = get_as(&envoy, "/api/catalog/l-1", &t, &[]);
    assert_eq!(second.header("x-cache-status"), Some("hit"));
    assert_eq!(function_calls(&envoy), 1);
}

fn post_as(envoy: &Envoy, path: &str, bearer: &str, body: &[u8]) -> Response {
    let auth = format!("Bearer {bearer}");
    http1(
        envoy.port,
        "POST",
        path,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body,
    )
}

/// RFC 9111 section 3.5: an answer to an authenticated request is shared
/// only when marked public (or s-maxage, must-revalidate). Every request
/// here is authenticated (jwt_authn takes the token off before the cache).
#[test]
fn an_answer_not_marked_public_is_never_served_to_another_caller() {
    let envoy = start();
    let (alice, bob) = (token("vary-alice"), token("vary-bob"));
    let path = "/api/catalog/personal-1?personal=1";
    let first = get_as(&envoy, path, &alice, &[]);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["gateway"]["client"], "vary-alice");
    // Another caller: its own function call, never alice's answer, also
    // when it claims to be alice in the header the key is built from.
    for extra in [&[][..], &[("x-jwt-sub", "vary-alice")][..]] {
        let r = get_as(&envoy, path, &bob, extra);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["gateway"]["client"], "vary-bob", "{}", r.text());
        assert_ne!(
            r.json()["call"],
            first.json()["call"],
            "alice's answer served to bob"
        );
    }
    // Not stored at all: alice's own repeat is a new call too, and the
    // answer says it varies by caller (for any shared cache further out).
    let again = get_as(&envoy, path, &alice, &[]);
    assert_eq!(again.header("x-cache-status"), Some("miss"));
    assert_ne!(again.json()["call"], first.json()["call"]);
    assert_eq!(first.header("vary"), Some("x-jwt-sub"));
    let calls = function_calls(&envoy);
    assert_eq!(calls, 4);
    // An answer marked public is one copy for every caller.
    let carol = get_as(&envoy, "/api/catalog/shared-1", &token("vary-carol"), &[]);
    let dave = get_as(&envoy, "/api/catalog/shared-1", &token("vary-dave"), &[]);
    assert_eq!(dave.header("x-cache-status"), Some("hit"));
    assert_eq!(dave.body, carol.body);
    assert_eq!(function_calls(&envoy), calls + 1);
}

/// The function's own answers and the function filter's errors are
/// upstream answers for every method: the envelope mapping never rewrites
/// them, and they name the route.
#[test]
fn the_envelope_never_rewrites_the_functions_answers_or_the_filters_errors() {
    let t = token("methods-alice");
    for (status, path) in [(404, "/status/404"), (503, "/status/503")] {
        let envoy = start_with_plugin(|plugin| {
            plugin["function_uri"] = format!("http://127.0.0.1:{}{path}", emulator().port()).into();
        });
        for r in [
            get_as(&envoy, "/api/catalog/m-1", &t, &[]),
            post_as(&envoy, "/api/catalog/m-1", &t, b"{}"),
        ] {
            assert_eq!(r.status, status, "{}", r.text());
            assert!(
                !r.text().contains("no_route") && !r.text().contains("gateway_error"),
                "the function's own {status} was rewritten: {}",
                r.text()
            );
        }
    }
    let slow = start_with_plugin(|plugin| {
        plugin["function_uri"] =
            format!("http://127.0.0.1:{}/delay/3000", emulator().port()).into();
        plugin["timeout"] = 200.into();
    });
    for r in [
        get_as(&slow, "/api/catalog/m-2", &t, &[]),
        post_as(&slow, "/api/catalog/m-2", &t, b"{}"),
    ] {
        let v = envelope(&r, 504, "function_timeout");
        assert_eq!(v["route"], "catalog", "{v}");
        assert!(
            !v["message"].as_str().unwrap_or_default().starts_with('{'),
            "{v}"
        );
    }
    let down = start_with_functions_on(dead_port());
    for r in [
        get_as(&down, "/api/catalog/m-3", &t, &[]),
        post_as(&down, "/api/catalog/m-3", &t, b"{}"),
        http2(
            down.port,
            "GET",
            "/api/catalog/m-3",
            &[("authorization", &format!("Bearer {t}"))],
            b"",
        ),
    ] {
        let v = envelope(&r, 502, "function_unreachable");
        assert_eq!(v["route"], "catalog", "{v}");
    }
    // The filter's 413: its own JSON, not wrapped in another.
    let envoy = start();
    let big = try_request(
        envoy.port,
        format!(
            "POST /api/catalog/m-4 HTTP/1.1\r\nhost: gateway.test\r\nauthorization: Bearer {t}\r\ncontent-length: 7340032\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("answer");
    let v = envelope(&big, 413, "request_body_too_large");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_req_body_size"),
        "{v}"
    );
}

/// GETs (fetched by the cache) and POSTs (through the router) alike: the
/// route's name in the metrics, and x-forwarded-for as the gateway's
/// connection manager set it, with no x-envoy-* header added on the way.
#[test]
fn every_method_reaches_the_function_the_same_way_and_is_counted_under_the_route() {
    let envoy = start_with_plugin(|plugin| {
        plugin["function_uri"] = format!("http://127.0.0.1:{}/echo", emulator().port()).into();
    });
    let t = token("same-alice");
    let get = get_as(
        &envoy,
        "/api/catalog/s-1",
        &t,
        &[("x-forwarded-for", "203.0.113.9")],
    );
    let post = post_as(&envoy, "/api/catalog/s-1", &t, b"{}");
    let (g, p) = (get.echo(), post.echo());
    let peer = p
        .header("x-forwarded-for")
        .expect("x-forwarded-for")
        .to_string();
    assert!(!peer.contains(','), "one hop on POST: {peer}");
    // use_remote_address: the peer appended once to the client's chain
    // (the cache's fetch would append it a second time).
    let expected = format!("203.0.113.9,{peer}");
    assert_eq!(
        g.header("x-forwarded-for"),
        Some(expected.as_str()),
        "{:?}",
        g.headers
    );
    for e in [&g, &p] {
        for name in [
            "x-envoy-internal",
            "x-envoy-expected-rq-timeout-ms",
            "x-faas-gateway-xff",
        ] {
            assert_eq!(e.header(name), None, "{name}: {:?}", e.headers);
        }
    }
    let counted = |method_outcome: &str| {
        envoy
            .stat(&format!(
                "wasmcustom.envoy_faas_requests_total.filter=.=openfunction;.;route=.=catalog;.;outcome=.={method_outcome};.;fault=.=none;.;"
            ))
            .unwrap_or(0)
    };
    assert_eq!(counted("function_2xx"), 2, "both under route=catalog");
    let unnamed = envoy.stat_ending("route=.=*;.;outcome=.=function_2xx;.;fault=.=none;.;");
    assert_eq!(unnamed.map(|(_, n)| n).unwrap_or(0), 0);
}
