//! Plugin blocks exported from a running Kong (the Admin API's
//! `GET /plugins/{id}`: every field, at its default or `null`) load into
//! the filters unchanged, in real Envoy 1.40, and behave as in Kong.

use integration_tests::*;
use serde_json::{json, Value};

/// The `config` object of an exported plugin, as Kong printed it.
fn exported(file: &str) -> Value {
    let path = repo_root().join("tests/data/kong").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let plugin: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    plugin["config"].clone()
}

/// The Kong block as one route's entry, untouched; only Envoy's cluster
/// is given, at the top level.
fn plugin_with(config: Value) -> Value {
    json!({"cluster": "functions", "routes": {"f": config}})
}

fn start(filter: &str, config: Value) -> Envoy {
    start_filter(filter, &plugin_with(config), &[("f", "/f")], &[])
        .unwrap_or_else(|log| panic!("the exported block was refused: {log}"))
}

#[test]
fn an_exported_aws_lambda_block_loads_unchanged_and_invokes() {
    let config = exported("aws-lambda.admin-api.json");
    assert!(
        config.as_object().is_some_and(|c| c.len() >= 28),
        "every field"
    );
    let envoy = start("aws-lambda", config.clone());
    let body = br#"{"order": 42}"#;
    let r = http1(envoy.port, "POST", "/f", &[], body);
    assert_eq!(r.status, 200, "{}", r.text());
    // Raw payload and raw result (Kong's defaults), and log_type Tail as
    // the block says: the log tail reaches the client, as in Kong.
    assert_eq!(r.body, body);
    assert!(r.header("x-amz-log-result").is_some(), "{:?}", r.headers);

    // Kong's API Gateway switches: awsgateway_compatible shapes the event
    // only; the result is the event echoed as the body (no proxy reading)
    // until is_proxy_integration says so.
    let mut gateway = config.clone();
    gateway["function_name"] = json!("proxy-echo");
    gateway["awsgateway_compatible"] = json!(true);
    gateway["awsgateway_compatible_payload_version"] = json!("2.0");
    gateway["log_type"] = json!("None");
    let envoy = start("aws-lambda", gateway.clone());
    let r = get(envoy.port, "/f/x?a=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let result = r.json();
    assert_eq!(
        result["statusCode"], 200,
        "the proxy result itself: {result}"
    );
    gateway["is_proxy_integration"] = json!(true);
    let envoy = start("aws-lambda", gateway);
    let r = get(envoy.port, "/f/x?a=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let event = r.json();
    assert_eq!(event["version"], "2.0", "{event}");
    assert_eq!(event["rawQueryString"], "a=1");
}

#[test]
fn kong_values_envoy_faas_cannot_honour_are_refused_naming_the_field() {
    for (field, value, says) in [
        (
            "proxy_url",
            json!("http://proxy.internal:3128"),
            "http_11_proxy",
        ),
        ("empty_arrays_mode", json!("sometimes"), "legacy, correct"),
        (
            "awsgateway_compatible_payload_version",
            json!("3.0"),
            "1.0, 2.0",
        ),
    ] {
        let mut config = exported("aws-lambda.admin-api.json");
        config[field] = value;
        let Err(log) = start_filter("aws-lambda", &plugin_with(config), &[("f", "/f")], &[]) else {
            panic!("{field}: accepted");
        };
        assert!(
            log.contains(&format!("route \"f\": field \"{field}\"")) && log.contains(says),
            "{field}: {log}"
        );
        assert!(!log.contains("wJalrXUtnFEMI"), "the secret is never logged");
    }
}

#[test]
fn an_exported_azure_functions_block_loads_unchanged_and_calls() {
    let config = exported("azure-functions.admin-api.json");
    let envoy = start("azure-functions", config);
    let r = get(envoy.port, "/f/ignored?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.echo();
    assert_eq!(
        (e.path.as_str(), e.query.as_deref()),
        ("/api/echo", Some("x=1"))
    );
    assert_eq!(e.header("host"), Some("kongapp.azurewebsites.net"));
    assert_eq!(e.header("x-functions-key"), Some("azure-function-key"));
    assert_eq!(e.header("x-functions-clientid"), None, "clientid is null");
}
