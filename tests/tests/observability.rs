//! Metrics, access-log fields and the dashboard, in real Envoy 1.40 with
//! the shipped `stats_config` and access-log format (`envoy/demo.yaml`):
//! every outcome is driven through the three filters, then
//! `/stats/prometheus` is scraped and parsed, and the access log read.

use faas_emulator::aws::KEYS;
use integration_tests::prometheus::{self, Scrape};
use integration_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The outcome labels the book documents, with their fault.
const OUTCOMES: [(&str, &str); 18] = [
    ("function_1xx", "none"),
    ("function_2xx", "none"),
    ("function_3xx", "none"),
    ("function_4xx", "client"),
    ("function_5xx", "function"),
    ("timeout", "function"),
    ("unreachable", "function"),
    ("response_too_large", "function"),
    ("invalid_response", "function"),
    ("function_error", "function"),
    ("invoke_api_error", "function"),
    ("throttled", "function"),
    ("request_too_large", "client"),
    ("credentials_unavailable", "gateway"),
    ("callout_failed", "gateway"),
    ("body_layout_misconfigured", "gateway"),
    ("client_closed", "client"),
    ("request_refused", "client"),
];

fn fault_of(outcome: &str) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(o, _)| *o == outcome)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("undocumented outcome {outcome}"))
}

fn fn_url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", emulator().port())
}

/// One request per outcome: `(filter, route, method, body, outcome)`; the
/// Envoy route `<route>` matches the prefix `/<route>`.
const CASES: [(&str, &str, &str, usize, &str); 17] = [
    ("openfunction", "ok", "POST", 1000, "function_2xx"),
    ("openfunction", "redirect", "GET", 0, "function_3xx"),
    ("openfunction", "missing", "GET", 0, "function_4xx"),
    ("openfunction", "broken", "GET", 0, "function_5xx"),
    ("openfunction", "slow", "GET", 0, "timeout"),
    ("openfunction", "dead", "GET", 0, "unreachable"),
    ("openfunction", "big", "GET", 0, "response_too_large"),
    ("openfunction", "small", "POST", 100, "request_too_large"),
    ("openfunction", "nocluster", "GET", 0, "callout_failed"),
    // Sent to `/escape/..%2Fadmin` (see `target`).
    ("openfunction", "escape", "GET", 0, "request_refused"),
    ("aws-lambda", "crash", "POST", 2, "function_error"),
    ("aws-lambda", "badjson", "POST", 2, "invalid_response"),
    ("aws-lambda", "throttled", "POST", 2, "throttled"),
    ("aws-lambda", "unknown", "POST", 2, "invoke_api_error"),
    (
        "aws-lambda",
        "nocreds",
        "POST",
        2,
        "credentials_unavailable",
    ),
    (
        "azure-functions",
        "layout",
        "POST",
        10,
        "body_layout_misconfigured",
    ),
    // Sent by `abandon`: the client leaves before the function answers.
    ("openfunction", "abandoned", "GET", 0, "client_closed"),
];

fn openfunction_config() -> Value {
    let of = |path: &str, extra: Value| {
        merged(
            json!({"function_uri": fn_url(path), "cluster": "functions"}),
            extra,
        )
    };
    json!({"routes": {
        "ok": of("/echo", json!({})),
        "redirect": of("/status/302", json!({})),
        "missing": of("/status/404", json!({})),
        "broken": of("/status/500", json!({})),
        "slow": of("/delay/5000", json!({"timeout": 200})),
        "dead": of("/echo", json!({"cluster": "dead"})),
        "big": of("/bytes/1000", json!({"max_resp_body_size": 100})),
        "small": of("/echo", json!({"max_req_body_size": 10})),
        "nocluster": of("/echo", json!({"cluster": "no_such_cluster"})),
        "abandoned": of("/delay/5000", json!({"timeout": 10000})),
        "escape": of("/echo", json!({"strip_prefix": "/escape"})),
    }})
}

fn aws_lambda_config() -> Value {
    let invoke = |function: &str, signed: bool| {
        let mut e = json!({
            "function_name": function,
            "endpoint": "http://lambda.us-east-1.amazonaws.com",
            "cluster": "functions",
            "aws_region": "us-east-1",
        });
        if signed {
            e["aws_key"] = KEYS[0].0.into();
            e["aws_secret"] = KEYS[0].1.into();
        }
        e
    };
    let mut badjson = invoke("bad-json", true);
    badjson["payload_format"] = "apigateway_v2".into();
    json!({
        // No keys on `nocreds`: it signs with instance credentials, and the
        // metadata service's cluster has no one listening.
        "imds_cluster": "dead",
        "routes": {
            "crash": invoke("crash", true),
            "badjson": badjson,
            "throttled": invoke("throttled", true),
            "unknown": invoke("no-such-function", true),
            "nocreds": invoke("echo-event", false),
        }
    })
}

/// The scenario's Envoy: the three filters in one chain (azure-functions
/// without `allow_on_headers_stop_iteration`, so a body it waits for is
/// withheld), the shipped stats_config, and the shipped access log into a
/// file. Histograms reach `/stats/prometheus` at each stats flush: 1 s here.
fn start_scenario(access_log: &Path, plugins: [Value; 3]) -> Envoy {
    let [openfunction, aws_lambda, azure] = plugins;
    let mut routes: Vec<Value> = CASES
        .iter()
        .map(|(_, name, ..)| route(name, &format!("/{name}"), "functions"))
        .collect();
    routes.push(json!({"name": "plain", "match": {"prefix": "/plain/"},
                       "route": {"cluster": "functions", "prefix_rewrite": "/echo/"}}));
    let azure_filter = without_flag(wasm_filter("azure-functions", &azure));
    let env = [("AWS_EC2_METADATA_DISABLED", "false")];
    let mut config = bootstrap(
        routes,
        vec![
            wasm_filter("openfunction", &openfunction),
            wasm_filter_with_env("aws-lambda", &aws_lambda, &env),
            azure_filter,
        ],
        vec![
            cluster("functions", emulator().port()),
            cluster("dead", dead_port()),
        ],
    );
    config["stats_config"] = prometheus::shipped_stats_config();
    config["stats_flush_interval"] = "1s".into();
    let hcm = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["access_log"] = json!([prometheus::shipped_access_log_to(access_log)]);
    Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"))
}

fn default_plugins() -> [Value; 3] {
    let azure =
        json!({"routes": {"layout": {"function_uri": fn_url("/echo"), "cluster": "functions"}}});
    [openfunction_config(), aws_lambda_config(), azure]
}

/// The request-target a case is sent to.
fn target(route: &str) -> String {
    match route {
        "escape" => "/escape/..%2Fadmin".into(),
        other => format!("/{other}"),
    }
}

/// Sends every case but the abandoned one; returns the statuses by route.
fn drive(envoy: &Envoy) -> Vec<(&'static str, u16)> {
    CASES
        .iter()
        .filter(|(_, _, _, _, outcome)| *outcome != "client_closed")
        .map(|(_, name, method, size, _)| {
            let body = vec![b'x'; *size];
            let r = http1(envoy.port, method, &target(name), &[], &body);
            (*name, r.status)
        })
        .collect()
}

/// Sends `GET /abandoned` and closes the connection once Envoy's callout to
/// the function is in flight (the cluster's own gauge says so).
fn abandon(envoy: &mut Envoy) {
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", envoy.port)).expect("connect");
    socket
        .write_all(b"GET /abandoned HTTP/1.1\r\nhost: gateway.test\r\n\r\n")
        .expect("send");
    settle(envoy, "the callout to be in flight", |e| {
        e.stat("cluster.functions.upstream_rq_active")
            .filter(|&n| n >= 1)
    });
    drop(socket);
}

/// [`Envoy::poll`] for 20 s, failing the test with Envoy's log.
fn settle<T>(envoy: &mut Envoy, what: &str, probe: impl FnMut(&Envoy) -> Option<T>) -> T {
    envoy
        .poll(what, Duration::from_secs(20), probe)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn scrape(envoy: &Envoy) -> Scrape {
    let r = admin_get(envoy.admin_port, "/stats/prometheus").expect("scrape");
    assert_eq!(r.status, 200);
    prometheus::parse(&r.text()).unwrap_or_else(|e| panic!("{e}"))
}

fn requests(s: &Scrape, filter: &str, route: &str, outcome: &str) -> Option<f64> {
    let labels = [
        ("filter", filter),
        ("route", route),
        ("outcome", outcome),
        ("fault", fault_of(outcome)),
    ];
    s.value("envoy_faas_requests_total", &labels)
}

/// Scrapes until every case's counter shows and the histograms of the
/// slow route are flushed.
fn settled_scrape(envoy: &mut Envoy) -> Scrape {
    settle(envoy, "every outcome and the flushed histograms", |e| {
        let s = scrape(e);
        let counted = CASES
            .iter()
            .all(|(f, r, _, _, o)| requests(&s, f, r, o) == Some(1.0));
        let flushed = s
            .value(
                "envoy_faas_response_body_bytes_count",
                &[("filter", "openfunction"), ("route", "ok")],
            )
            .is_some_and(|n| n >= 1.0);
        (counted && flushed).then_some(s)
    })
}

#[test]
fn every_outcome_is_scraped_once_with_its_labels_and_the_dashboard_queries_exist() {
    let dir = ScratchDir::new("observability-metrics");
    let mut envoy = start_scenario(&dir.0.join("access.log"), default_plugins());
    let statuses = drive(&envoy);
    abandon(&mut envoy);
    let s = settled_scrape(&mut envoy);

    // One family per measurement, with its type.
    for (family, kind) in [
        ("envoy_faas_requests_total", "counter"),
        ("envoy_faas_function_latency_ms", "histogram"),
        ("envoy_faas_request_body_bytes", "histogram"),
        ("envoy_faas_response_body_bytes", "histogram"),
        ("envoy_faas_wasm_memory_bytes", "gauge"),
        ("envoy_faas_build_info", "gauge"),
    ] {
        assert_eq!(
            s.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    let per_route = s
        .types
        .keys()
        .filter(|f| f.contains("requests_total"))
        .count();
    assert_eq!(
        per_route, 1,
        "the requests counter is one family, not one per route"
    );

    // Each case counted once under its outcome, every other outcome of its
    // route defined and zero.
    for (filter, route, _, _, outcome) in CASES {
        let samples = s.find(
            "envoy_faas_requests_total",
            &[("filter", filter), ("route", route)],
        );
        let seen: BTreeSet<&str> = samples
            .iter()
            .map(|x| x.labels["outcome"].as_str())
            .collect();
        let documented: BTreeSet<&str> = OUTCOMES.iter().map(|(o, _)| *o).collect();
        assert_eq!(seen, documented, "{filter}/{route}: outcome series");
        for x in samples {
            let o = &x.labels["outcome"];
            assert_eq!(x.labels["fault"], fault_of(o), "{filter}/{route}/{o}");
            let want = if o == outcome { 1.0 } else { 0.0 };
            assert_eq!(
                x.value, want,
                "{filter}/{route}/{o} (statuses {statuses:?})"
            );
        }
    }

    // Latency: the slow function was cut at its 200 ms timeout.
    let slow = [("filter", "openfunction"), ("route", "slow")];
    let latency_sum = s
        .value("envoy_faas_function_latency_ms_sum", &slow)
        .expect("latency of /slow");
    assert!(
        (190.0..2000.0).contains(&latency_sum),
        "slow latency {latency_sum} ms"
    );
    let buckets = s.find("envoy_faas_function_latency_ms_bucket", &slow);
    assert!(buckets
        .iter()
        .any(|b| b.labels["le"] == "+Inf" && b.value == 1.0));
    // Body sizes: 1000 bytes sent to /echo (Envoy's histogram sums are
    // approximate: within 5%).
    let ok = [("filter", "openfunction"), ("route", "ok")];
    let sent = s
        .value("envoy_faas_request_body_bytes_sum", &ok)
        .expect("request body histogram");
    assert!((950.0..1050.0).contains(&sent), "request body sum {sent}");
    let buckets = s.find("envoy_faas_request_body_bytes_bucket", &ok);
    assert!(
        buckets.iter().any(|b| b.labels["le"] == "1024"),
        "byte buckets from the shipped histogram_bucket_settings"
    );
    // Nothing for a route the filters do not answer.
    assert!(s
        .find("envoy_faas_requests_total", &[("route", "plain")])
        .is_empty());

    // The module's own gauges; the build is also logged once per VM.
    let log = envoy.log();
    for filter in ["openfunction", "aws-lambda", "azure-functions"] {
        let info = s.find("envoy_faas_build_info", &[("filter", filter)]);
        assert_eq!(info.len(), 1, "{filter} build info");
        assert_eq!(info[0].value, 1.0);
        let (version, commit) = (&info[0].labels["version"], &info[0].labels["commit"]);
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{commit}"
        );
        let started = format!("{filter}: envoy-faas {version} (commit {commit}) started");
        assert!(log.contains(&started), "no \"{started}\" in the log");
        let memory = s
            .value("envoy_faas_wasm_memory_bytes", &[("filter", filter)])
            .unwrap_or(0.0);
        assert!(memory >= 65536.0, "{filter} memory gauge {memory}");
    }
    // Platform credentials, labelled by source.
    let refused = s
        .value(
            "envoy_faas_credentials_requests_refused_total",
            &[("filter", "aws-lambda"), ("source", "imds")],
        )
        .expect("credentials counter");
    assert!(refused >= 1.0);

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("envoy/grafana-dashboard.json"))
            .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 4, "dashboard queries: {queries:?}");
    queries_name_what_the_scrape_shows(&s, &queries);
    let rules = alert_rules();
    assert!(rules.len() >= 6, "alert rules: {rules:?}");
    queries_name_what_the_scrape_shows(&s, &rules);
}

/// The `expr` of every rule in the book's "Alerts worth having" (the YAML
/// block a reader copies into Prometheus).
fn alert_rules() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/src/operating/alerts.md"))
        .expect("alerts chapter");
    let block = text
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the rules block");
    let rules: serde_yaml::Value = serde_yaml::from_str(block).expect("rules YAML");
    let groups = rules["groups"].as_sequence().expect("groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .map(|rule| {
            assert!(rule["alert"].as_str().is_some(), "{rule:?} has a name");
            rule["expr"].as_str().expect("expr").to_string()
        })
        .collect()
}

/// Every query names families, labels and label values present in the
/// real scrape.
fn queries_name_what_the_scrape_shows(s: &Scrape, queries: &[String]) {
    for expr in queries {
        for (label, value) in promql_matched_values(expr) {
            assert!(
                s.samples
                    .iter()
                    .any(|x| x.labels.get(&label).is_some_and(|v| *v == value)),
                "{expr}: no series has {label}=\"{value}\""
            );
        }
        let (families, labels) = promql_names(expr);
        assert!(!families.is_empty(), "no metric in {expr}");
        for sample_name in &families {
            let family = s.family_of(sample_name);
            // This scenario has no streaming route, so the stream families
            // are not exported here; they must at least be the names the
            // filters declare (lambda_streaming.rs counts them).
            if family.starts_with("envoy_faas_stream_") && !s.types.contains_key(family) {
                let declared =
                    std::fs::read_to_string(repo_root().join("filters/core/src/metrics.rs"))
                        .expect("metrics.rs");
                assert!(
                    declared.contains(&format!("\"{family}\"")),
                    "{expr}: {family} is not a family the filters declare"
                );
                continue;
            }
            assert!(
                s.types.contains_key(family),
                "{expr}: {sample_name} is not in the scrape"
            );
            for label in &labels {
                assert!(
                    s.samples
                        .iter()
                        .filter(|x| s.family_of(&x.name) == family)
                        .any(|x| x.labels.contains_key(label) || label == "le"),
                    "{expr}: {family} has no label {label}"
                );
            }
        }
    }
}

/// Every `expr` of every panel target (rows nest panels).
fn dashboard_queries(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Object(map) => {
            if let Some(Value::String(e)) = map.get("expr") {
                out.push(e.clone());
            }
            for x in map.values() {
                out.extend(dashboard_queries(x));
            }
        }
        Value::Array(list) => list.iter().for_each(|x| out.extend(dashboard_queries(x))),
        _ => {}
    }
    out
}

/// The `label="value"` and `label!="value"` matchers of an expression
/// (not the regex ones).
fn promql_matched_values(expr: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map(|c| open + c).expect("closed");
        for matcher in rest[open + 1..close].split(',') {
            // Regex matchers (`=~`, `!~`) name no one value.
            if let Some((name, value)) = matcher.split_once('=') {
                if !value.starts_with('~') {
                    let name = name.trim().trim_end_matches('!').to_string();
                    found.push((name, value.trim().trim_matches('"').to_string()));
                }
            }
        }
        rest = &rest[close + 1..];
    }
    found
}

/// The metric names (`envoy_faas_*`) and label names a PromQL expression
/// uses: matchers inside `{}` and `by (...)` / `without (...)` lists.
fn promql_names(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut families = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("envoy_faas_") {
        let tail = &rest[i..];
        let end = tail.find(|c| !ident(c)).unwrap_or(tail.len());
        families.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map(|c| open + c).expect("closed");
        for matcher in rest[open + 1..close].split(',') {
            let name: String = matcher.trim().chars().take_while(|c| ident(*c)).collect();
            if !name.is_empty() {
                labels.insert(name);
            }
        }
        rest = &rest[close + 1..];
    }
    for keyword in ["by (", "by(", "without (", "without("] {
        let mut rest = expr;
        while let Some(i) = rest.find(keyword) {
            let after = &rest[i + keyword.len()..];
            let close = after.find(')').expect("closed");
            for name in after[..close].split(',') {
                labels.insert(name.trim().to_string());
            }
            rest = &after[close..];
        }
    }
    labels.retain(|l| !l.is_empty());
    (families, labels)
}

/// The access-log lines (JSON) of `path`, once there are `n`.
fn access_lines(envoy: &mut Envoy, path: &Path, n: usize) -> Vec<Value> {
    settle(envoy, "the access log lines", |_| {
        let text = std::fs::read_to_string(path).ok()?;
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (lines.len() >= n).then_some(lines)
    })
}

#[test]
fn access_log_lines_carry_the_function_facts() {
    let dir = ScratchDir::new("observability-log");
    let log = dir.0.join("access.log");
    let mut envoy = start_scenario(&log, default_plugins());
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let ok = http1(
        envoy.port,
        "GET",
        "/ok",
        &[("x-request-id", "rid-ok-1"), ("traceparent", trace)],
        b"",
    );
    assert_eq!(ok.status, 200);
    // What the function saw: the same request id and trace context.
    let echo = ok.echo();
    assert_eq!(echo.header("x-request-id"), Some("rid-ok-1"));
    assert_eq!(echo.header("traceparent"), Some(trace));
    let statuses = drive(&envoy);
    abandon(&mut envoy);
    let lines = access_lines(&mut envoy, &log, 2 + statuses.len());
    let line = |route: &str| -> &Value {
        lines
            .iter()
            .find(|l| l["route"] == route)
            .unwrap_or_else(|| panic!("no access-log line for {route}: {lines:?}"))
    };

    let first = line("ok");
    assert_eq!(first["request_id"], "rid-ok-1");
    assert_eq!(first["traceparent"], trace);
    assert_eq!(first["function_host"], "127.0.0.1");
    assert_eq!(first["outcome"], "function_2xx");
    assert_eq!(first["function_status"], "200");
    assert!(first["error"].is_null(), "{first}");
    assert!(first["function_latency_ms"].as_str().is_some(), "{first}");

    let slow = line("slow");
    assert_eq!(slow["status"], 504);
    assert_eq!(
        (&slow["outcome"], &slow["error"]),
        (&json!("timeout"), &json!("function_timeout"))
    );
    assert!(
        slow["function_status"].is_null(),
        "Envoy's own timeout: {slow}"
    );
    let waited: u64 = slow["function_latency_ms"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("latency");
    // The route's 200 ms timeout, give or take what separates Envoy's
    // timer from the filter's reading of the clock (193 ms was seen).
    assert!((150..2000).contains(&waited), "{waited}");

    let throttled = line("throttled");
    assert_eq!(throttled["status"], 429);
    assert_eq!(throttled["function_host"], "lambda.us-east-1.amazonaws.com");
    assert_eq!(throttled["function_status"], "429");
    assert_eq!(throttled["error"], "lambda_invoke_failed");
    assert_eq!(throttled["outcome"], "throttled");

    let broken = line("broken");
    assert_eq!(
        (&broken["status"], &broken["function_status"]),
        (&json!(500), &json!("500"))
    );
    assert_eq!(broken["outcome"], "function_5xx");

    let nocreds = line("nocreds");
    assert_eq!(
        (&nocreds["status"], &nocreds["error"], &nocreds["outcome"]),
        (
            &json!(503),
            &json!("credentials_unavailable"),
            &json!("credentials_unavailable")
        )
    );
    let layout = line("layout");
    assert_eq!(layout["outcome"], "body_layout_misconfigured");
    let small = line("small");
    assert_eq!(
        (&small["status"], &small["outcome"]),
        (&json!(413), &json!("request_too_large"))
    );

    // The client that left: outcome set before Envoy wrote the line.
    let gone = line("abandoned");
    assert_eq!(gone["outcome"], "client_closed", "{gone}");

    let plain = http1(envoy.port, "GET", "/plain/x", &[], b"");
    assert_eq!(plain.status, 200);
    let lines = access_lines(&mut envoy, &log, 3 + statuses.len());
    let plain = lines
        .iter()
        .find(|l| l["route"] == "plain")
        .expect("plain line");
    assert!(
        plain["outcome"].is_null() && plain["function_host"].is_null(),
        "no facts where no function filter answered: {plain}"
    );
}

#[test]
fn metrics_and_access_log_fields_can_be_switched_off() {
    let dir = ScratchDir::new("observability-off");
    let log = dir.0.join("access.log");
    let mut plugins = default_plugins();
    plugins[0]["metrics"] = false.into();
    plugins[0]["access_log_fields"] = false.into();
    let mut envoy = start_scenario(&log, plugins);
    let r = http1(envoy.port, "GET", "/ok", &[], b"");
    assert_eq!(r.status, 200);
    let r = http1(envoy.port, "GET", "/throttled", &[], b"");
    assert_eq!(r.status, 429);
    let lines = access_lines(&mut envoy, &log, 2);
    let ok = lines.iter().find(|l| l["route"] == "ok").expect("ok");
    assert!(
        ok["outcome"].is_null() && ok["function_host"].is_null(),
        "{ok}"
    );
    let s = settle(&mut envoy, "the aws-lambda counter", |e| {
        let s = scrape(e);
        (requests(&s, "aws-lambda", "throttled", "throttled") == Some(1.0)).then_some(s)
    });
    assert!(
        s.find("envoy_faas_requests_total", &[("filter", "openfunction")])
            .is_empty(),
        "openfunction has metrics off"
    );
    // Its error bodies still name the route.
    let r = http1(envoy.port, "GET", "/slow", &[], b"");
    assert_eq!((r.status, r.json()["route"].as_str()), (504, Some("slow")));
}
