//! Envoy's native `aws_lambda` payloads (issue 31): the same function
//! behind Envoy 1.40's own `envoy.filters.http.aws_lambda` (the PyPI Envoy
//! has it) and behind `aws_lambda.wasm` with `payload_format: envoy`, over
//! a generated set of requests and results. What the function receives and
//! what the client gets must be the same.
//!
//! "The same" is exact where native is deterministic: the top-level field
//! order, every string as escaped on the wire (protobuf's JSON escapes, not
//! serde_json's), the values. Native writes its two maps (`headers`,
//! `query_string_parameters`) in hash order, which changes from request to
//! request, so their members are compared as sets; no function can depend
//! on that order.

use integration_tests::*;
use serde_json::{json, Value};

const LAMBDA_HOST: &str = "lambda.us-east-1.amazonaws.com";
const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Envoy with the native filter invoking `function`, as its docs set it
/// up: the cluster marked as a Lambda egress gateway, the host rewritten
/// to the Invoke API's, inline credentials.
fn native(function: &str) -> Envoy {
    Envoy::start(&native_bootstrap(function)).unwrap_or_else(|log| panic!("{log}"))
}

fn native_bootstrap(function: &str) -> Value {
    let filter = json!({
        "name": "envoy.filters.http.aws_lambda",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.aws_lambda.v3.Config",
            "arn": format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
            "payload_passthrough": false,
            "host_rewrite": LAMBDA_HOST,
            "credentials": {"access_key_id": AKID, "secret_access_key": SECRET}
        }
    });
    let mut lambda = cluster("lambda", emulator().port());
    lambda["metadata"] =
        json!({"filter_metadata": {"com.amazonaws.lambda": {"egress_gateway": true}}});
    bootstrap(
        vec![route("all", "/", "lambda")],
        vec![filter],
        vec![lambda],
    )
}

/// Envoy with `aws_lambda.wasm` invoking `function` in native's format.
fn ours(function: &str) -> Envoy {
    let plugin = json!({
        "cluster": "lambda", "function_name": function, "aws_region": "us-east-1",
        "endpoint": format!("http://{LAMBDA_HOST}"), "payload_format": "envoy",
        "aws_key": AKID, "aws_secret": SECRET,
    });
    let config = bootstrap(
        vec![route("all", "/", "lambda")],
        vec![wasm_filter("aws-lambda", &plugin)],
        vec![cluster("lambda", emulator().port())],
    );
    Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"))
}

type Request = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
);

/// The generated requests: methods, paths with escapes, repeated, empty
/// and valueless query parameters, repeated headers, the client's own
/// `authorization`, and bodies under every content type native tells
/// apart, with the characters protobuf and serde_json escape differently.
fn requests() -> Vec<Request> {
    let tricky = "<b>&'\"\\/\t\u{7f}\u{85}\u{ad}\u{200b}\u{2028}\u{feff}\u{1d173}\u{e0041}é😀";
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "application/json",
            format!(
                r#"{{"a":"{}"}}"#,
                tricky.replace('\\', "\\\\").replace('"', "\\\"")
            )
            .into_bytes(),
        ),
        ("application/json; charset=utf-8", br#"{"x":1}"#.to_vec()),
        ("text/plain", tricky.as_bytes().to_vec()),
        ("TEXT/HTML", b"<p>upper-case type</p>".to_vec()),
        ("application/xml", b"<a>1</a>".to_vec()),
        ("application/javascript", b"f()".to_vec()),
        ("application/octet-stream", vec![0, 1, 2, 255, 254]),
        ("application/x-www-form-urlencoded", b"a=1&b=2".to_vec()),
        ("image/png", vec![0x89, b'P', b'N', b'G']),
    ];
    let mut out: Vec<Request> = Vec::new();
    for (i, (content_type, body)) in bodies.into_iter().enumerate() {
        let method = ["POST", "PUT", "PATCH"][i % 3];
        out.push((
            method,
            format!("/orders/{i}?a=1&a=2&b=x%20y&flag&e=&%3C=%3E"),
            vec![
                ("content-type", content_type),
                ("x-rep", "one"),
                ("x-rep", "two"),
            ],
            body,
        ));
    }
    out.push(("GET", "/".into(), vec![], vec![]));
    out.push((
        "GET",
        "/p%2Fq/r?q=%3C%3E&u=%C3%A9&&".into(),
        vec![
            ("x-quote", "say \"hi\" <x>"),
            ("authorization", "Bearer client-token"),
        ],
        vec![],
    ));
    out.push((
        "DELETE",
        "/items/9?".into(),
        vec![("cookie", "a=1"), ("cookie", "b=2")],
        vec![],
    ));
    out.push(("GET", "/head?x".into(), vec![("accept", "*/*")], vec![]));
    out.push(("OPTIONS", "/*".into(), vec![], vec![]));
    out
}

/// Every JSON string literal in `text` as written (escapes and all).
fn string_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices();
    while let Some((start, c)) = chars.next() {
        if c != '"' {
            continue;
        }
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    out.push(text[start..=i].to_string());
                    break;
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The event a function received, with the request id (each Envoy makes
/// its own) replaced, as text.
fn event_text(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let id = r.json()["headers"]["x-request-id"]
        .as_str()
        .expect("x-request-id")
        .to_string();
    text.replace(&id, "request-id")
}

fn top_level_keys(text: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(text).expect("JSON");
    let mut keys: Vec<(usize, String)> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(|k| (text.find(&format!("\"{k}\":")).expect("key"), k.clone()))
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

#[test]
fn the_function_receives_what_native_sends() {
    let (native, ours) = (native("envoy-echo"), ours("envoy-echo"));
    assert_same_events(&native, &ours);
}

/// Every generated request reaches the function the same through both.
fn assert_same_events(native: &Envoy, ours: &Envoy) {
    for request in requests() {
        let (method, target, headers, body) = &request;
        let theirs = event_text(&http1(native.port, method, target, headers, body));
        let mine = event_text(&http1(ours.port, method, target, headers, body));
        let what = format!("{method} {target} {headers:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&mine).unwrap(),
            serde_json::from_str::<Value>(&theirs).unwrap(),
            "{what}\nnative: {theirs}\nours:   {mine}"
        );
        assert_eq!(top_level_keys(&mine), top_level_keys(&theirs), "{what}");
        assert_eq!(
            string_literals(&mine),
            string_literals(&theirs),
            "{what}: the strings are escaped as native escapes them\nnative: {theirs}\nours:   {mine}"
        );
    }
}

/// The client-visible part of an answer: status, the function's headers
/// (not the Invoke API's, which native leaks and we do not, nor the
/// connection's), body.
fn answer(r: &Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| {
            !n.starts_with("x-amz")
                && !matches!(
                    n.as_str(),
                    "date" | "server" | "connection" | "x-envoy-upstream-service-time"
                )
        })
        .cloned()
        .collect();
    headers.sort();
    (r.status, headers, r.body.clone())
}

#[test]
fn the_client_gets_what_native_answers_for_every_well_formed_result() {
    let (native, ours) = (native("envoy-result"), ours("envoy-result"));
    let results = [
        r#"{"status_code":201,"headers":{"x-a":"1","content-type":"text/plain"},"cookies":["a=1","b=2"],"body":"hi"}"#,
        r#"{"statusCode":202,"isBase64Encoded":true,"body":"aGk="}"#,
        r#"{"status_code":200,"is_base64_encoded":true,"body":"AAEC//4=","headers":{"content-type":"application/octet-stream"}}"#,
        r#"{"body":"no status"}"#,
        r#"{"status_code":0,"body":"zero"}"#,
        r#"{"status_code":"203","body":"string status"}"#,
        r#"{"status_code":404}"#,
        r#"{"status_code":200,"multiValueHeaders":{"x-m":["1","2"]},"body":"mv ignored"}"#,
        r#"{"status_code":200,"headers":{":status":"500","x-b":"v"},"body":"pseudo skipped"}"#,
        r#"{"status_code":200,"unknown":1,"body":"unknown ignored"}"#,
        r#"{"status_code":200,"headers":{"set-cookie":"h=1"},"cookies":["c=1"],"body":"cookie mix"}"#,
        r#"{"status_code":503,"headers":{"retry-after":"5"},"body":"{\"error\":\"busy\"}"}"#,
        r#"{}"#,
    ];
    for result in results {
        let send = |envoy: &Envoy| {
            answer(&http1(
                envoy.port,
                "POST",
                "/r",
                &[("content-type", "application/json")],
                result.as_bytes(),
            ))
        };
        assert_eq!(send(&ours), send(&native), "{result}");
    }
}

/// Where native answers a malformed result badly (an empty 500, a 200
/// that dropped the body, a status line no client can read), ours is the
/// JSON 502 `invalid_function_response` every other result format gets.
#[test]
fn malformed_results_are_502_where_native_answers_500_or_drops_the_body() {
    let (native, ours) = (native("envoy-result"), ours("envoy-result"));
    for (result, native_status) in [
        ("not json", 500),
        ("[1,2]", 500),
        (
            r#"{"status_code":404,"headers":{"x-n":5},"body":"number header"}"#,
            500,
        ),
        (
            r#"{"status_code":200,"is_base64_encoded":true,"body":"%%%"}"#,
            200,
        ),
    ] {
        let send = |envoy: &Envoy| {
            http1(
                envoy.port,
                "POST",
                "/r",
                &[("content-type", "application/json")],
                result.as_bytes(),
            )
        };
        let theirs = send(&native);
        assert_eq!(
            (theirs.status, theirs.body.len()),
            (native_status, 0),
            "{result}"
        );
        let mine = send(&ours);
        assert_eq!(mine.status, 502, "{result}: {}", mine.text());
        assert_eq!(
            mine.json()["error"],
            "invalid_function_response",
            "{result}"
        );
    }
    let mine = http1(
        ours.port,
        "POST",
        "/r",
        &[("content-type", "application/json")],
        br#"{"status_code":99,"body":"no such status"}"#,
    );
    assert_eq!(mine.status, 502, "native writes an unreadable status line");
}

/// `envoy-faas import envoy` on a native config: a listener-wide
/// `aws_lambda` for the egress-gateway cluster, a route with its own
/// `invoke_config` (no name: the import names it), and a plain route the
/// native filter leaves alone. The output runs in Envoy: the same events
/// reach the function as through native, the per-route function answers,
/// the plain route still passes, and the report says what it carried over.
#[test]
fn import_envoy_turns_a_native_config_into_ours() {
    let scratch = ScratchDir::new("import-native");
    let mut config = native_bootstrap("envoy-echo");
    let routes = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"];
    let per_route = json!({"match": {"prefix": "/other"}, "route": {"cluster": "lambda"},
    "typed_per_filter_config": {"envoy.filters.http.aws_lambda": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.aws_lambda.v3.PerRouteConfig",
        "invoke_config": {
            "arn": "arn:aws:lambda:us-east-1:123456789012:function:envoy-result",
            "host_rewrite": LAMBDA_HOST,
            "credentials": {"access_key_id": AKID, "secret_access_key": SECRET}
        }}}});
    let plain =
        json!({"name": "plain", "match": {"prefix": "/hello"}, "route": {"cluster": "plain"}});
    let all = routes.as_array().expect("routes")[0].clone();
    *routes = json!([plain, per_route, all]);
    config["static_resources"]["clusters"]
        .as_array_mut()
        .expect("clusters")
        .push(cluster("plain", emulator().port()));
    // Native itself serves this config (the per-route function included).
    let native_envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    let input = scratch.0.join("native.json");
    std::fs::write(&input, config.to_string()).expect("write");
    let output = scratch.0.join("ours.yaml");
    let report = scratch.0.join("report.txt");
    let dist = repo_root().join("dist");
    let status = std::process::Command::new(envoy_faas_bin())
        .args(["import", "envoy"])
        .arg(&input)
        .args(["--wasm-dir", dist.to_str().expect("utf-8"), "-o"])
        .arg(&output)
        .arg("--report")
        .arg(&report)
        .status()
        .expect("run envoy-faas");
    assert!(status.success());
    let report = std::fs::read_to_string(&report).expect("report");
    assert!(
        report.contains("2 function route(s) translated, 0 item(s) not translated"),
        "{report}"
    );
    assert!(
        report.contains("inline credentials carried over"),
        "{report}"
    );
    assert!(!report.contains(SECRET), "no secret in the report");
    let text = std::fs::read_to_string(&output).expect("output");
    assert!(!text.contains("aws_lambda.v3.Config"), "{text}");
    let imported: Value = serde_yaml::from_str(&text).expect("YAML");
    let ours = Envoy::start(&imported).unwrap_or_else(|log| panic!("{log}"));
    assert_same_events(&native_envoy, &ours);
    // The per-route function (envoy-result) answers what the client says,
    // through both.
    for envoy in [&native_envoy, &ours] {
        let r = http1(
            envoy.port,
            "POST",
            "/other",
            &[("content-type", "application/json")],
            br#"{"status_code":201,"body":"per route"}"#,
        );
        assert_eq!((r.status, r.text().as_str()), (201, "per route"));
        let r = get(envoy.port, "/hello/world");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "Hello, world!"),
            "the plain route passes"
        );
    }
}

/// Envoy with the native `aws_request_signing` in front of a Function URL
/// (the emulator's, which verifies SigV4 for `lambda`).
fn native_signing_bootstrap() -> Value {
    let filter = json!({
        "name": "envoy.filters.http.aws_request_signing",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning",
            "service_name": "lambda",
            "region": "us-east-1",
            "host_rewrite": "fn1.lambda-url.us-east-1.on.aws",
            "credential_provider": {"inline_credential": {"access_key_id": AKID, "secret_access_key": SECRET}}
        }
    });
    bootstrap(
        vec![route("url", "/", "url")],
        vec![filter],
        vec![cluster("url", emulator().port())],
    )
}

/// The import of a signed Function URL config works on both request
/// paths: the front door accepts the signature and the function sees the
/// client's path and body, as behind native.
#[test]
fn import_envoy_signs_function_urls_on_both_request_paths() {
    let scratch = ScratchDir::new("import-signing");
    let config = native_signing_bootstrap();
    let native_envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    let input = scratch.0.join("native.json");
    std::fs::write(&input, config.to_string()).expect("write");
    let dist = repo_root().join("dist");
    for forwarding in ["callout", "route"] {
        let output = scratch.0.join(format!("{forwarding}.yaml"));
        let status = std::process::Command::new(envoy_faas_bin())
            .args(["import", "envoy"])
            .arg(&input)
            .args([
                "--wasm-dir",
                dist.to_str().expect("utf-8"),
                "--forwarding",
                forwarding,
                "-o",
            ])
            .arg(&output)
            .status()
            .expect("run envoy-faas");
        assert!(status.success());
        let imported: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&output).expect("output")).expect("YAML");
        let ours = Envoy::start(&imported).unwrap_or_else(|log| panic!("{log}"));
        for envoy in [&native_envoy, &ours] {
            let r = get(envoy.port, "/hello/world");
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "Hello, world!"),
                "{forwarding}"
            );
            let r = http1(
                envoy.port,
                "POST",
                "/echo/x?q=1",
                &[("content-type", "text/plain")],
                b"signed body",
            );
            assert_eq!(r.status, 200, "{forwarding}: {}", r.text());
            let echo = r.echo();
            assert_eq!(
                (echo.path.as_str(), echo.body.as_slice()),
                ("/echo/x", &b"signed body"[..])
            );
        }
    }
}
