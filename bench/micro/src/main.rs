//! `faas-micro-bench [--json]`: timings of the pure logic the filters run
//! per request (and per config load), without Envoy. `make bench` runs it
//! twice: natively, and built for wasm32-wasip1 in Node's V8 (the engine
//! Envoy embeds), which is what the filters really cost per request.
//!
//! Each case runs in batches sized to ~20 ms; the median batch's time per
//! operation is reported (robust to the odd preemption on a busy machine).

use aws_credential_types::Credentials as AwsCredentials;
use aws_lambda::sigv4::{self, Credentials, Signer};
use aws_lambda::AwsLambda;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use azure_functions::AzureFunctions;
use faas_core::config::{compile, PluginConfig};
use faas_core::{CalloutResponse, ClientRequest, Integration};
use openfunction::OpenFunction;
use serde_json::{json, Value};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const INVOKE_HOST: &str = "lambda.us-east-1.amazonaws.com";
const INVOKE_PATH: &str = "/2015-03-31/functions/bench/invocations";

/// Median nanoseconds per call of `f`.
fn time_ns(mut f: impl FnMut()) -> f64 {
    let mut iterations = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        if start.elapsed() >= Duration::from_millis(20) {
            break;
        }
        iterations *= 2;
    }
    let mut samples: Vec<f64> = (0..11)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_nanos() as f64 / iterations as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn payload(size: usize) -> Vec<u8> {
    let mut body = b"{\"data\":\"".to_vec();
    body.resize(size - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

fn client_request(method: &str, body: Vec<u8>) -> ClientRequest {
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), method.into()),
        (":path".into(), "/bench?a=1&b=two".into()),
        (":authority".into(), "gateway.example.com".into()),
        (":scheme".into(), "http".into()),
        ("user-agent".into(), "h2load nghttp2/1.52.0".into()),
        ("accept".into(), "*/*".into()),
        ("x-forwarded-proto".into(), "http".into()),
        (
            "x-request-id".into(),
            "6c1c7a2e-0f7e-4d4b-9a53-0a3c1c8f6b2d".into(),
        ),
    ];
    if !body.is_empty() {
        headers.push(("content-type".into(), "application/json".into()));
        headers.push(("content-length".into(), body.len().to_string()));
    }
    ClientRequest {
        headers,
        peer_address: Some("127.0.0.1:53422".into()),
        protocol: Some("HTTP/1.1".into()),
        body,
    }
}

type Compiled<I> = PluginConfig<<I as Integration>::Global, <I as Integration>::Route>;

fn compiled<I: Integration>(config: &Value) -> Compiled<I> {
    match compile(config.to_string().as_bytes(), I::read_global, I::read_route) {
        Ok(c) => c,
        Err(e) => panic!("{} config refused: {e}", I::NAME),
    }
}

/// Time of `build_callout` (request -> signed callout) for one route.
fn build_cost<I: Integration>(config: &Compiled<I>, request: &ClientRequest) -> f64 {
    let route = config.routes.lookup(None).expect("single-route config");
    let now = SystemTime::now();
    time_ns(|| {
        black_box(I::build_callout(&config.global, &route, black_box(request), now).is_ok());
    })
}

/// Time of `map_response` (function answer -> client reply).
fn map_cost<I: Integration>(config: &Compiled<I>, response: &CalloutResponse) -> f64 {
    let route = config.routes.lookup(None).expect("single-route config");
    time_ns(|| {
        black_box(I::map_response(&config.global, &route, black_box(response.clone())).is_ok());
    })
}

fn theirs(method: &str, body: &[u8], headers: &[(&str, &str)]) -> f64 {
    let identity = AwsCredentials::new(AKID, SECRET, None, None, "bench").into();
    let uri = format!("https://{INVOKE_HOST}{INVOKE_PATH}");
    time_ns(|| {
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("lambda")
            .time(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let request = SignableRequest::new(
            method,
            &uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        black_box(sign(request, &params).expect("signed").into_parts());
    })
}

fn sigv4_cases(results: &mut Vec<(String, f64)>) {
    let amz_date = sigv4::amz_date(1_700_000_000);
    for (label, method, body) in [
        ("GET, empty body", "GET", Vec::new()),
        ("POST, 1 KiB JSON", "POST", payload(1024)),
        ("POST, 256 KiB JSON", "POST", payload(256 * 1024)),
    ] {
        let length = body.len().to_string();
        let mut headers = vec![
            ("host", INVOKE_HOST),
            ("x-amz-date", amz_date.as_str()),
            ("x-amz-invocation-type", "RequestResponse"),
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ];
        let credentials = Credentials {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
            session_token: None,
        };
        let cached = Signer::new("us-east-1", "lambda");
        // Both signers hash the payload inside the measurement. With
        // `fresh_signer` the key is derived on every call, as aws-sigv4 does;
        // otherwise it comes from the per-date cache, as in the filter.
        let ours = |fresh_signer: bool| {
            time_ns(|| {
                let fresh;
                let signer = if fresh_signer {
                    fresh = Signer::new("us-east-1", "lambda");
                    &fresh
                } else {
                    &cached
                };
                let hash = sigv4::hex_sha256(black_box(&body));
                let req = sigv4::Request {
                    method,
                    path: INVOKE_PATH,
                    query: "",
                    headers: headers.clone(),
                    payload_hash: &hash,
                };
                black_box(signer.sign_at(&credentials, &req, &amz_date));
            })
        };
        results.push((
            format!("sigv4 {label}: ours, key cached (as in the filter)"),
            ours(false),
        ));
        results.push((
            format!("sigv4 {label}: ours, key derived per call"),
            ours(true),
        ));
        headers.retain(|(n, _)| *n != "x-amz-date" && *n != "host");
        results.push((
            format!("sigv4 {label}: aws-sigv4 crate"),
            theirs(method, &body, &headers),
        ));
    }
}

/// SHA-256 alone, as the filters hash a payload: in Node's V8 this is the
/// figure to hold Envoy's (bench/scaling.py's probe) against.
fn sha256_case(results: &mut Vec<(String, f64)>) {
    let body = vec![b'x'; 256 * 1024];
    results.push((
        "sha256 256 KiB (hex, as SigV4 hashes a payload)".to_string(),
        time_ns(|| {
            black_box(sigv4::hex_sha256(black_box(&body)));
        }),
    ));
}

fn per_request_cases(results: &mut Vec<(String, f64)>) {
    let iam = json!({"accesskey": AKID, "secretkey": SECRET});
    let url = compiled::<AwsLambda>(&json!({
        "cluster": "fn", "function_uri": "http://bench.lambda-url.us-east-1.on.aws/",
        "authorization": {"iam": iam}}));
    let invoke = compiled::<AwsLambda>(&json!({
        "cluster": "fn", "function_name": "bench", "aws_region": "us-east-1",
        "endpoint": format!("http://{INVOKE_HOST}"), "payload_format": "apigateway_v2",
        "aws_key": AKID, "aws_secret": SECRET}));
    let azure = compiled::<AzureFunctions>(&json!({
        "cluster": "fn", "function_uri": "http://bench.azurewebsites.net/api/bench",
        "authorization": {"apikey": "bench-function-key"}}));
    let openfunction = compiled::<OpenFunction>(&json!({
        "cluster": "fn", "function_uri": "http://bench.openfunction.local/bench"}));
    for (label, request) in [
        ("GET", client_request("GET", Vec::new())),
        ("POST 1 KiB", client_request("POST", payload(1024))),
        ("POST 256 KiB", client_request("POST", payload(256 * 1024))),
    ] {
        results.push((
            format!("build_callout {label}: aws_lambda function_uri + IAM"),
            build_cost::<AwsLambda>(&url, &request),
        ));
        results.push((
            format!("build_callout {label}: aws_lambda Invoke, API GW 2.0 event + SigV4"),
            build_cost::<AwsLambda>(&invoke, &request),
        ));
        results.push((
            format!("build_callout {label}: azure_functions"),
            build_cost::<AzureFunctions>(&azure, &request),
        ));
        results.push((
            format!("build_callout {label}: openfunction"),
            build_cost::<OpenFunction>(&openfunction, &request),
        ));
    }
    // What issue 27 added to every request: the forwarded-path check (on
    // the request's headers) and keeping the signed call's credential
    // values for a possible error log line (at dispatch).
    let route = url.routes.lookup(None).expect("single-route config");
    let signed = AwsLambda::build_callout(
        &url.global,
        &route,
        &client_request("GET", Vec::new()),
        SystemTime::now(),
    )
    .expect("signed call");
    results.push((
        "hardening per request: forwarded-path check + credential values kept (IAM GET)".into(),
        time_ns(|| {
            black_box(faas_core::path::forwarded_path_escapes(
                black_box(Some("/api")),
                black_box("/api/orders/42/items?x=1&y=2"),
            ));
            black_box(faas_core::redact::credential_values(black_box(
                &signed.headers,
            )));
        }),
    ));
    let fixed = br#"{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"hello from the function"}"#;
    let response = CalloutResponse {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), fixed.len().to_string()),
            (
                "x-amzn-requestid".into(),
                "6c1c7a2e-0f7e-4d4b-9a53-0a3c1c8f6b2d".into(),
            ),
        ],
        body: fixed.to_vec(),
    };
    results.push((
        "map_response: aws_lambda Invoke proxy result".into(),
        map_cost::<AwsLambda>(&invoke, &response),
    ));
    results.push((
        "map_response: aws_lambda function_uri (passthrough)".into(),
        map_cost::<AwsLambda>(&url, &response),
    ));
    results.push((
        "map_response: openfunction (passthrough)".into(),
        map_cost::<OpenFunction>(&openfunction, &response),
    ));
}

fn compile_cases(results: &mut Vec<(String, f64)>) {
    let routes: serde_json::Map<String, Value> = (0..1000)
        .map(|i| {
            (
                format!("route-{i}"),
                json!({"function_name": format!("fn-{i}"), "aws_region": "us-east-1",
                       "cluster": "lambda", "payload_format": "apigateway_v2",
                       "strip_prefix": format!("/r{i}")}),
            )
        })
        .collect();
    let config = json!({"aws_key": AKID, "aws_secret": SECRET, "routes": routes}).to_string();
    results.push((
        "config compile: aws_lambda, 1000 Invoke routes".into(),
        time_ns(|| {
            black_box(
                compile(
                    black_box(config.as_bytes()),
                    AwsLambda::read_global,
                    AwsLambda::read_route,
                )
                .is_ok(),
            );
        }),
    ));
    let routes: serde_json::Map<String, Value> = (0..1000)
        .map(|i| {
            (
                format!("route-{i}"),
                json!({"function_uri": format!("http://fn-{i}.example/api")}),
            )
        })
        .collect();
    let config = json!({"cluster": "fn", "routes": routes}).to_string();
    results.push((
        "config compile: openfunction, 1000 routes".into(),
        time_ns(|| {
            black_box(
                compile(
                    black_box(config.as_bytes()),
                    OpenFunction::read_global,
                    OpenFunction::read_route,
                )
                .is_ok(),
            );
        }),
    ));
}

/// `faas-micro-bench [--json]`: a table on stderr; with `--json`, also the
/// results as one JSON object on stdout (name -> nanoseconds).
fn main() {
    let mut results = Vec::new();
    sigv4_cases(&mut results);
    sha256_case(&mut results);
    per_request_cases(&mut results);
    compile_cases(&mut results);
    for (name, ns) in &results {
        eprintln!("{:>12.2} us  {name}", ns / 1000.0);
    }
    if std::env::args().any(|a| a == "--json") {
        let map: serde_json::Map<String, Value> =
            results.into_iter().map(|(n, ns)| (n, json!(ns))).collect();
        println!("{}", Value::Object(map));
    }
}
