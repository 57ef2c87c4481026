//! `envoy-faas` against real Envoy: the APISIX and Kong examples
//! (tools/envoy-faas/examples) import into bootstraps Envoy accepts and that
//! serve requests through the three filters against the emulator; and
//! `envoy-faas check` gives the same verdict and error paths as the module
//! does when Envoy loads the same plugin config.

use integration_tests::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("envoy-faas-migrate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(envoy_faas_bin())
        .args(args)
        // The VM the generated config starts has no AWS variables.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run envoy-faas")
}

struct Imported {
    /// The production form (TLS clusters to the real hosts).
    production: PathBuf,
    /// The same, every function cluster sent to the emulator.
    loopback: Value,
    report: String,
}

fn import(source: &str, example: &str, dir: &Path) -> Imported {
    import_file(
        source,
        &repo_root().join("tools/envoy-faas/examples").join(example),
        dir,
    )
}

/// Imports `input`: the production form and the loopback one.
fn import_file(source: &str, input: &Path, dir: &Path) -> Imported {
    import_with(source, input, dir, &[])
}

/// [`import_file`] with more options for both imports.
fn import_with(source: &str, input: &Path, dir: &Path, extra: &[&str]) -> Imported {
    let input = input.to_str().expect("utf-8 path");
    let wasm_dir = repo_root().join("dist");
    let wasm_dir = wasm_dir.to_str().expect("utf-8 path");
    let production = dir.join("production.yaml");
    let report = dir.join("report.txt");
    let mut args = vec![
        "import",
        source,
        input,
        "-o",
        production.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--wasm-dir",
        wasm_dir,
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let emulator = emulator().to_string();
    let loopback = dir.join("loopback.yaml");
    let mut args = vec![
        "import",
        source,
        input,
        "-o",
        loopback.to_str().unwrap(),
        "--report",
        "/dev/null",
        "--wasm-dir",
        wasm_dir,
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--upstream-override",
        &emulator,
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&loopback).expect("output");
    assert!(
        text.contains("TEST OVERRIDE"),
        "the override is announced in the output"
    );
    Imported {
        production,
        loopback: serde_yaml::from_str(&text).expect("the output is YAML"),
        report: std::fs::read_to_string(report).expect("report"),
    }
}

#[test]
fn the_apisix_example_imports_into_an_envoy_that_serves_its_functions() {
    let dir = temp_dir("apisix");
    let imported = import("apisix", "apisix.yaml", &dir);
    // The production form loads: wasm modules, plugin configs, TLS clusters.
    if let Err(log) = envoy_validate(&imported.production) {
        panic!("Envoy refuses the imported config:\n{log}");
    }
    assert!(
        imported.report.contains("6 function route(s) translated"),
        "{}",
        imported.report
    );
    for untranslated in [
        "APISIX route \"6\": plugin key-auth",
        "APISIX route \"7\": no function plugin",
    ] {
        assert!(
            imported.report.contains(untranslated),
            "{}",
            imported.report
        );
    }

    let envoy = Envoy::start(&imported.loopback).unwrap_or_else(|log| panic!("{log}"));
    // azure-functions: the route's key; then path forwarding with the
    // plugin-metadata master key (the emulator refuses calls without a key).
    let r = get(envoy.port, "/azure?name=APISIX");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello, APISIX"),
        "{}",
        envoy.log()
    );
    let r = get(envoy.port, "/azure/greet?name=metadata");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, metadata"));
    // methods: [GET, POST] on that route.
    assert_eq!(
        http1(envoy.port, "DELETE", "/azure/greet", &[], b"").status,
        404
    );
    // aws-lambda: API Gateway with an API key, then with SigV4 (the
    // emulator verifies the signature with the aws-sigv4 crate).
    let r = get(envoy.port, "/aws?name=APISIX");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, APISIX!"));
    let r = get(envoy.port, "/aws-iam?name=IAM");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, IAM!"));
    // openfunction: an exact route, and `/hello/*` forwarding its suffix.
    let r = get(envoy.port, "/hello");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, test!"));
    let r = get(envoy.port, "/hello/123");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, 123!"));
    // The ordinary proxy route was not migrated.
    assert_eq!(get(envoy.port, "/index.html").status, 404);
}

#[test]
fn the_kong_example_imports_into_an_envoy_that_serves_its_functions() {
    let dir = temp_dir("kong");
    let imported = import("kong", "kong.yml", &dir);
    if let Err(log) = envoy_validate(&imported.production) {
        panic!("Envoy refuses the imported config:\n{log}");
    }
    for expected in [
        "3 function route(s) translated",
        "Kong route \"lambda1\": plugin rate-limiting",
        "consumers: section not translated",
        "Kong route \"web\": no function plugin",
    ] {
        assert!(imported.report.contains(expected), "{}", imported.report);
    }

    let envoy = Envoy::start(&imported.loopback).unwrap_or_else(|log| panic!("{log}"));
    // azure-functions on the service, Kong's appname/functionname form.
    let r = get(envoy.port, "/mytest?name=Kong");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello, Kong"),
        "{}",
        envoy.log()
    );
    // aws-lambda Invoke, SigV4 with the block's keys, Kong's
    // forward_request_* payload (echo-event answers the payload it got).
    let r = http1(envoy.port, "POST", "/lambda1?x=1", &[], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let payload = r.json();
    assert_eq!(payload["request_method"], "POST");
    assert_eq!(payload["request_uri"], "/lambda1?x=1");
    assert_eq!(
        http1(envoy.port, "DELETE", "/lambda1", &[], b"").status,
        404
    );
    // API Gateway event and proxy result.
    let r = get(envoy.port, "/api/items");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("x-invoked")
            .is_some_and(|v| v.starts_with("proxy-echo")),
        "{:?}",
        r.headers
    );
    assert_eq!(
        get(envoy.port, "/").status,
        404,
        "the plain service route was not migrated"
    );
}

/// `(route, field)` of each error line (`route "r": field "f": ...`).
fn error_paths<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        .filter_map(|line| {
            let rest = &line[line.find("route \"")? + 7..];
            let (route, rest) = rest.split_once('"')?;
            let field = rest
                .strip_prefix(": field \"")
                .and_then(|f| f.split_once('"'))
                .map_or("", |(f, _)| f);
            Some((route.to_string(), field.to_string()))
        })
        .collect()
}

/// (filter, plugin config text, expected `(route, field)` errors; none: accepted)
type CheckCase = (&'static str, String, Vec<(&'static str, &'static str)>);

#[test]
fn check_gives_the_modules_verdict_and_error_paths() {
    let dir = temp_dir("check");
    let cases: Vec<CheckCase> = vec![
        ("openfunction", json!({"function_uri": "http://h/f"}).to_string(), vec![]),
        ("openfunction", json!({"function_uri": "http://h/f", "timeout": 50}).to_string(), vec![("*", "timeout")]),
        (
            "openfunction",
            json!({"routes": {
                "a": {"function_uri": "http://h/a", "timeout": 5},
                "b": {"function_uri": "ftp://h/b"},
                "c": {"function_uri": "http://h/c"}}})
            .to_string(),
            vec![("a", "timeout"), ("b", "function_uri")],
        ),
        (
            "openfunction",
            json!({"function_uri": "http://h/f", "authorization": {"service_token": "no-colon"}}).to_string(),
            vec![("*", "authorization.service_token")],
        ),
        (
            "azure-functions",
            json!({"function_uri": "https://a.azurewebsites.net/api/f", "authorization": {"apikey": "k", "extra": 1}})
                .to_string(),
            vec![("*", "authorization.extra")],
        ),
        ("azure-functions", json!({"appname": "a", "functionname": "f"}).to_string(), vec![]),
        (
            "aws-lambda",
            json!({"function_name": "f", "aws_key": "AKIDEXAMPLE", "aws_secret": "s", "aws_region": "us-east-1"})
                .to_string(),
            vec![],
        ),
        (
            "aws-lambda",
            json!({"routes": {"x": {"function_name": "f", "aws_region": "us-east-1", "aws_key": "AKIDEXAMPLE"}}})
                .to_string(),
            vec![("x", "aws_secret")],
        ),
        ("aws-lambda", "{not json".to_string(), vec![("*", "")]),
    ];
    for (i, (filter, config, expected)) in cases.iter().enumerate() {
        let file = dir.join(format!("case-{i}.json"));
        std::fs::write(&file, config).expect("write");
        let out = run(&["check", "--filter", filter, file.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let from_check = error_paths(
            stdout
                .lines()
                .filter(|l| l.contains("invalid configuration:")),
        );
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(r, f)| (r.to_string(), f.to_string()))
            .collect();
        assert_eq!(from_check, want, "check, case {i}: {stdout}");
        assert_eq!(
            out.status.success(),
            expected.is_empty(),
            "check's exit status, case {i}"
        );

        // The module, in Envoy, on the same bytes.
        let mut wasm = wasm_filter(filter, &json!({}));
        wasm["typed_config"]["config"]["configuration"]["value"] = Value::String(config.clone());
        let bootstrap = bootstrap(
            vec![route("r", "/", "c")],
            vec![wasm],
            vec![cluster("c", dead_port())],
        );
        let path = dir.join(format!("envoy-{i}.json"));
        std::fs::write(&path, bootstrap.to_string()).expect("write");
        let verdict = envoy_validate(&path);
        assert_eq!(
            verdict.is_ok(),
            expected.is_empty(),
            "Envoy's verdict, case {i}: {verdict:?}"
        );
        let log = verdict.unwrap_or_else(|log| log);
        let from_module = error_paths(log.lines().filter(|l| l.contains("invalid configuration:")));
        assert_eq!(from_module, from_check, "case {i}: Envoy's log:\n{log}");
    }
}

/// Kong's `proxy_url` (an egress HTTP CONNECT proxy): the function's
/// cluster tunnels through it (`http_11_proxy`: TLS to the function inside
/// an HTTP/1.1 CONNECT tunnel), and the proxy on loopback sees the tunnel.
/// The production output runs as imported, with two changes a test needs:
/// the Lambda host's address is a local TLS front (a test certificate for
/// `lambda.us-east-1.amazonaws.com`, passed as `--trusted-ca`) that hands
/// the call to the emulator. A proxy given by host name is reported.
#[test]
fn kong_proxy_url_becomes_a_connect_tunnel_the_proxy_sees() {
    let proxy = ConnectProxy::start();
    let dir = temp_dir("kong-proxy");
    let block = |name: &str, proxy_url: &str| {
        format!(
            r#"      - name: {name}
        paths: [/{name}]
        plugins:
          - name: aws-lambda
            config:
              aws_key: AKIDEXAMPLE
              aws_secret: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
              aws_region: us-east-1
              function_name: echo-event
              proxy_url: {proxy_url}
"#
        )
    };
    let kong = format!(
        "_format_version: \"3.0\"\nservices:\n  - name: lambda\n    url: http://dead.end.com\n    routes:\n{}{}",
        block("via-proxy", &format!("http://127.0.0.1:{}", proxy.port)),
        block("named-proxy", "http://proxy.corp.example:3128"),
    );
    let input = dir.join("kong.yml");
    std::fs::write(&input, kong).expect("write");
    let certificate = repo_root().join("tests/data/tls/lambda-test.crt");
    let output = dir.join("envoy.yaml");
    let report = dir.join("report.txt");
    let wasm_dir = repo_root().join("dist");
    let out = run(&[
        "import",
        "kong",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--wasm-dir",
        wasm_dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--trusted-ca",
        certificate.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Err(log) = envoy_validate(&output) {
        panic!("Envoy refuses the imported config:\n{log}");
    }
    let report = std::fs::read_to_string(&report).expect("report");
    assert!(
        report.contains("Kong route \"named-proxy\": route left out: proxy_url names a host"),
        "{report}"
    );
    let mut config: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&output).expect("output")).expect("YAML");
    // The Lambda host is a local TLS front on `front`, which passes the
    // call on to the emulator.
    let front = free_port();
    let clusters = config["static_resources"]["clusters"]
        .as_array_mut()
        .expect("clusters");
    let function = clusters
        .iter_mut()
        .find(|c| c["transport_socket"]["name"] == "envoy.transport_sockets.http_11_proxy")
        .expect("a cluster through the proxy");
    assert_eq!(
        function["transport_socket"]["typed_config"]["default_proxy_address"]["socket_address"]
            ["port_value"],
        u64::from(proxy.port)
    );
    function["type"] = "STATIC".into();
    function["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] =
        json!({"socket_address": {"address": "127.0.0.1", "port_value": front}});
    clusters.push(cluster("emulator_plain", emulator().port()));
    let key = repo_root().join("tests/data/tls/lambda-test.key");
    config["static_resources"]["listeners"]
        .as_array_mut()
        .expect("listeners")
        .push(tls_front(front, &certificate, &key, "emulator_plain"));
    let envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    for h2 in [false, true] {
        let body = br#"{"n":1}"#;
        let r = http_either(h2, envoy.port, "POST", "/via-proxy", &[], body);
        assert_eq!(r.status, 200, "{} {}", r.text(), envoy.log());
        assert_eq!(r.body, body);
    }
    let targets = proxy.targets();
    assert!(!targets.is_empty(), "the call went through the proxy");
    let expected = format!("127.0.0.1:{front}");
    assert!(targets.iter().all(|t| *t == expected), "{targets:?}");
    assert_eq!(get(envoy.port, "/named-proxy").status, 404, "left out");
}

/// A TLS-terminating listener on `port` (certificate and key files) whose
/// every request goes to `cluster`.
fn tls_front(port: u16, certificate: &Path, key: &Path, cluster: &str) -> Value {
    json!({
        "name": "tls_front",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{
            "transport_socket": {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    "common_tls_context": {"tls_certificates": [{
                        "certificate_chain": {"filename": certificate},
                        "private_key": {"filename": key}
                    }]}
                }
            },
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "tls_front",
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]
                    }]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
                }
            }]
        }]
    })
}

/// `envoy-faas import --forwarding route`: the APISIX example's routes
/// forward in place (each with its twin route), and the imported Envoy
/// serves the same answers through the router.
/// In place, Envoy routes the rewritten request again by the function's
/// authority, not the client's host: an imported route for one host only
/// still reaches its twin (the importer adds a virtual host of the
/// function authorities).
#[test]
fn in_place_routes_for_one_host_reach_their_twins() {
    let dir = temp_dir("apisix-in-place-host");
    let input = dir.join("apisix.yaml");
    std::fs::write(
        &input,
        "routes:\n  - id: 1\n    uri: /hello\n    hosts: [api.example.com]\n    plugins:\n      \
         openfunction:\n        function_uri: http://localhost:3233/default/function-sample/test\n        \
         authorization:\n          service_token: test:test\n#END\n",
    )
    .expect("write input");
    let imported = import_with("apisix", &input, &dir, &["--forwarding", "route"]);
    let envoy = Envoy::start(&imported.loopback).unwrap_or_else(|log| panic!("{log}"));
    let ask = |host: &str| {
        let raw = format!("GET /hello HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        try_request(envoy.port, raw.as_bytes()).expect("request")
    };
    let r = ask("api.example.com");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello, test!"),
        "{}",
        envoy.log()
    );
    assert_eq!(ask("other.example.com").status, 404);
}

#[test]
fn the_apisix_example_imports_forwarding_in_place() {
    let dir = temp_dir("apisix-in-place");
    let input = repo_root().join("tools/envoy-faas/examples/apisix.yaml");
    let imported = import_with("apisix", &input, &dir, &["--forwarding", "route"]);
    if let Err(log) = envoy_validate(&imported.production) {
        panic!("Envoy refuses the imported config:\n{log}");
    }
    let text = serde_json::to_string(&imported.loopback).expect("JSON");
    assert!(text.contains(TWIN_ROUTE_HEADER), "twin routes");
    assert!(
        text.contains("\\\"forwarding\\\": \\\"route\\\""),
        "plugin configs: {text}"
    );
    let envoy = Envoy::start(&imported.loopback).unwrap_or_else(|log| panic!("{log}"));
    for (path, expected) in [
        ("/azure?name=APISIX", "Hello, APISIX"),
        ("/azure/greet?name=metadata", "Hello, metadata"),
        ("/aws?name=APISIX", "Hello, APISIX!"),
        ("/aws-iam?name=IAM", "Hello, IAM!"),
        ("/hello", "Hello, test!"),
        ("/hello/123", "Hello, 123!"),
    ] {
        let r = get(envoy.port, path);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, expected),
            "{path}: {}",
            envoy.log()
        );
    }
    // The in-place path is the one answering: only it refuses a client's
    // own twin-route header (the callout path would forward the request).
    let r = spoof_twin_header(envoy.port, "/hello/x", "spoofed");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "reserved_header");
    assert_eq!(get(envoy.port, "/index.html").status, 404);
}
