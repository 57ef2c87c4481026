//! Run by `make oci-test` (tests/oci/run.sh) after the images went through
//! a real registry: Envoy loads each module pulled back from it and serves
//! a request through it. Ignored in the plain suite, which has no pulled
//! modules.

use integration_tests::*;
use serde_json::json;
use std::path::PathBuf;

fn pulled(filter: &str) -> PathBuf {
    let dir = std::env::var_os("OCI_PULLED_DIR").expect("OCI_PULLED_DIR (set by make oci-test)");
    PathBuf::from(dir).join(format!("{}.wasm", filter.replace('-', "_")))
}

/// `filter` from the pulled module, in Istio's flag-free layout (a
/// holding buffer filter after it), answering a POST from the emulator.
fn serve_from_pulled(filter: &str, function: serde_json::Value, expect: &str) {
    let mut wasm_filter = without_flag(wasm_filter(filter, &function));
    wasm_filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] =
        json!(pulled(filter).display().to_string());
    let buffer = buffer_filter(8388608);
    let recorder = RecordingUpstream::start();
    let envoy = Envoy::start(&bootstrap(
        vec![route("fn", "/", "route-upstream")],
        vec![wasm_filter, buffer],
        vec![
            cluster("functions", emulator().port()),
            cluster("route-upstream", recorder.port),
        ],
    ))
    .expect("envoy loads the pulled module");
    let r = http1(
        envoy.port,
        "POST",
        "/",
        &[("content-type", "text/plain")],
        b"OCI",
    );
    assert_eq!(r.status, 200, "{filter}: {}", r.text());
    assert!(r.text().contains(expect), "{filter}: {}", r.text());
    assert_eq!(recorder.connections(), 0);
}

#[test]
#[ignore = "run by make oci-test with modules pulled from a registry"]
fn openfunction_from_the_registry_serves() {
    serve_from_pulled(
        "openfunction",
        json!({"body_layout": "holding_filter", "function_uri": "http://fn.local/hello",
               "cluster": "functions"}),
        "Hello, OCI!",
    );
}

#[test]
#[ignore = "run by make oci-test with modules pulled from a registry"]
fn azure_functions_from_the_registry_serves() {
    serve_from_pulled(
        "azure-functions",
        json!({"body_layout": "holding_filter",
               "function_uri": "http://app.azurewebsites.net/api/greet",
               "cluster": "functions",
               "authorization": {"apikey": "azure-function-key"}}),
        "Hello, OCI",
    );
}

#[test]
#[ignore = "run by make oci-test with modules pulled from a registry"]
fn aws_lambda_from_the_registry_serves() {
    serve_from_pulled(
        "aws-lambda",
        json!({"body_layout": "holding_filter",
               "function_uri": "http://fn.local/hello",
               "cluster": "functions"}),
        "Hello, OCI!",
    );
}

#[test]
#[ignore = "run by make oci-test with modules pulled from a registry"]
fn gcp_functions_from_the_registry_serves() {
    serve_from_pulled(
        "gcp-functions",
        json!({"body_layout": "holding_filter",
               "function_uri": "https://public-svc.a.run.app/hello",
               "cluster": "functions"}),
        "Hello, OCI!",
    );
}
