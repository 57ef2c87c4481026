//! Managed identity for `azure-functions` in real Envoy 1.40: the filter
//! fetches Entra ID tokens from the emulator's fakes of IMDS, the Entra ID
//! token endpoint (AKS workload identity, through the token-file recipe)
//! and the App Service identity endpoint, through Envoy clusters, refreshes
//! them, and sends them as `Authorization: Bearer` to the emulator's
//! protected function, which accepts only an unexpired token issued for its
//! audience. Every cluster is loopback.

use faas_emulator::azure::PROTECTED_AUDIENCE;
use faas_emulator::metadata::Fakes;
use integration_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

const FUNCTION: &str = "http://fnapp.azurewebsites.net/api/protected";

/// The protected function on `/f`, called with the managed identity's token
/// for `resource`.
fn plugin(resource: &str) -> Value {
    json!({"cluster": "functions", "routes": {"f": {
        "function_uri": FUNCTION,
        "authorization": {"managed_identity": {"resource": resource}}
    }}})
}

fn start(plugin: &Value, env: &[(&str, &str)], fakes: &Fakes) -> Envoy {
    Envoy::start(&azure_identity_bootstrap(plugin, env, fakes.port, None))
        .unwrap_or_else(|log| panic!("{log}"))
}

/// Envoy's log when it refuses to start with `plugin` and `env`.
fn refused(plugin: &Value, env: &[(&str, &str)], fakes: &Fakes) -> String {
    Envoy::start(&azure_identity_bootstrap(plugin, env, fakes.port, None))
        .err()
        .expect("refused")
}

fn stat(source: &str, family: &str) -> String {
    credentials_stat("azure-functions", source, family)
}

fn assert_accepted(envoy: &Envoy) {
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{} {}", r.text(), envoy.log());
    assert_eq!(r.json()["audience"], PROTECTED_AUDIENCE);
}

#[test]
fn imds_token_is_accepted_by_the_protected_function() {
    let fakes = Fakes::start(3600).expect("fakes");
    let mut envoy = start(&plugin(PROTECTED_AUDIENCE), &[], &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    // A client's own Authorization is replaced by the gateway's token.
    let r = http1(
        envoy.port,
        "GET",
        "/f",
        &[("authorization", "Bearer client-token")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_accepted(&envoy);
    assert_eq!(fakes.controls.calls("azure_imds"), 1);
    assert_eq!(
        fakes.controls.calls("refused"),
        0,
        "Metadata: true was sent"
    );
    let expiry = envoy
        .stat_ending(&stat("imds", "envoy_faas_credentials_expiry_seconds"))
        .unwrap()
        .1;
    assert!((3500..=3600).contains(&expiry), "{expiry}");
    assert!(!envoy.log().contains("eyJmi"), "no token in the log");
}

#[test]
fn a_token_for_another_audience_is_refused_by_the_function() {
    let fakes = Fakes::start(3600).expect("fakes");
    let mut envoy = start(&plugin("api://some-other-app"), &[], &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 401, "the function's own answer passes through");
}

#[test]
fn workload_identity_exchanges_the_rotating_federated_token() {
    let fakes = Fakes::start(20).expect("fakes");
    let dir = token_dir("azure-workload", "azure-identity-token", "fed-jwt-v1\n");
    *fakes.controls.federated_token.lock().unwrap() = Some("fed-jwt-v1".into());
    *fakes.controls.azure_client_id.lock().unwrap() = Some("client-1".into());
    let token_file = dir.0.join("azure-identity-token");
    let env = [
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AZURE_TENANT_ID", "tenant-1"),
        ("AZURE_CLIENT_ID", "client-1"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ];
    let dir_path = dir.0.to_str().unwrap().to_string();
    let bootstrap = azure_identity_bootstrap(
        &plugin(PROTECTED_AUDIENCE),
        &env,
        fakes.port,
        Some((free_port(), &[dir_path.as_str()])),
    );
    let mut envoy = Envoy::start(&bootstrap).unwrap_or_else(|log| panic!("{log}"));
    let refreshes = stat(
        "workload_identity",
        "envoy_faas_credentials_refreshes_total",
    );
    envoy.wait_stat(&refreshes, 1).unwrap();
    assert_accepted(&envoy);
    assert_eq!(fakes.controls.calls("entra"), 1);
    assert_eq!(fakes.controls.calls("azure_imds"), 0, "IMDS never asked");
    // The kubelet rotates the token; the next refresh (20 s tokens: 8 to
    // 10 s in) must present the new one, now the only one Entra accepts.
    rotate_token_file(&dir, "azure-identity-token", "fed-jwt-v2");
    *fakes.controls.federated_token.lock().unwrap() = Some("fed-jwt-v2".into());
    envoy.wait_stat(&refreshes, 2).unwrap();
    assert_eq!(
        fakes.controls.calls("refused"),
        0,
        "the old assertion was never sent after rotation"
    );
    assert_accepted(&envoy);
    assert!(
        !envoy.log().contains("fed-jwt"),
        "the assertion is not logged"
    );
}

#[test]
fn app_service_identity_endpoint_with_its_header() {
    let fakes = Fakes::start(3600).expect("fakes");
    *fakes.controls.identity_header.lock().unwrap() = Some("identity-header-secret".into());
    let endpoint = format!("http://127.0.0.1:{}/msi/token", fakes.port);
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", "identity-header-secret"),
    ];
    let mut envoy = start(&plugin(PROTECTED_AUDIENCE), &env, &fakes);
    envoy
        .wait_stat(
            &stat("app_service", "envoy_faas_credentials_refreshes_total"),
            1,
        )
        .unwrap();
    assert_accepted(&envoy);
    assert_eq!(fakes.controls.calls("app_service"), 1);
    assert_eq!(fakes.controls.calls("azure_imds"), 0);
    assert!(!envoy.log().contains("identity-header-secret"));
}

#[test]
fn without_a_token_the_client_gets_503_and_nothing_goes_out() {
    let fakes = Fakes::start(3600).expect("fakes");
    fakes.controls.failing.store(true, Ordering::SeqCst);
    let mut envoy = start(&plugin(PROTECTED_AUDIENCE), &[], &fakes);
    envoy
        .wait_stat(
            &stat("imds", "envoy_faas_credentials_refresh_failures_total"),
            1,
        )
        .unwrap();
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "credentials_unavailable");
    assert_eq!(body["source"], "imds");
    assert!(
        body["message"].as_str().unwrap().contains("HTTP 500"),
        "{body}"
    );
}

#[test]
fn short_lived_tokens_rotate_before_expiry_with_zero_failed_requests() {
    let fakes = Fakes::start(20).expect("fakes");
    let mut envoy = start(&plugin(PROTECTED_AUDIENCE), &[], &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    assert_rotation_without_failures(&envoy, &fakes.controls, "/f", "azure_imds");
}

#[test]
fn an_outage_keeps_the_token_until_expiry_then_503_then_recovers() {
    let fakes = Fakes::start(20).expect("fakes");
    let mut envoy = start(&plugin(PROTECTED_AUDIENCE), &[], &fakes);
    let refreshes = stat("imds", "envoy_faas_credentials_refreshes_total");
    envoy.wait_stat(&refreshes, 1).unwrap();
    let (at, body) = outage_until_refused(&envoy, &fakes.controls, "/f")
        .expect("refused once the token expired");
    // Refreshes fail from ~8 s on; the token is used until 5 s before its
    // expiry at 20 s.
    assert!(
        at >= Duration::from_secs(13),
        "kept the valid token: {at:?}"
    );
    assert_eq!(body["error"], "credentials_unavailable");
    assert!(fakes.controls.calls("failed") >= 1);
    end_outage(&mut envoy, &fakes.controls, &refreshes);
    assert_accepted(&envoy);
}

#[test]
fn two_workers_make_one_refresh_per_period() {
    let fakes = Fakes::start(20).expect("fakes");
    let bootstrap = azure_identity_bootstrap(&plugin(PROTECTED_AUDIENCE), &[], fakes.port, None);
    let refreshes = stat("imds", "envoy_faas_credentials_refreshes_total");
    assert_one_fetch_per_period(&bootstrap, &refreshes, &fakes.controls, "azure_imds");
}

#[test]
fn incomplete_environments_are_refused_at_load_naming_the_variable() {
    let fakes = Fakes::start(3600).expect("fakes");
    let env = [(
        "AZURE_FEDERATED_TOKEN_FILE",
        "/var/run/secrets/azure/tokens/azure-identity-token",
    )];
    let log = refused(&plugin(PROTECTED_AUDIENCE), &env, &fakes);
    assert!(
        log.contains(r#"route "f": field "AZURE_TENANT_ID": (environment) is required with AZURE_FEDERATED_TOKEN_FILE"#),
        "{log}"
    );
    let bad = json!({"cluster": "functions", "routes": {"f": {
        "function_uri": FUNCTION, "authorization": {"managed_identity": {"client_id": "c"}}}}});
    let log = refused(&bad, &[], &fakes);
    assert!(
        log.contains(r#"field "authorization.managed_identity.resource": is required"#),
        "{log}"
    );
}

/// Issue 27: the source is explicit or said out loud, a deployment that
/// left a workload-identity variable out is refused rather than quietly
/// given the node's identity (IMDS), and a named source must be complete.
#[test]
fn the_source_is_named_or_logged_and_half_a_workload_identity_is_refused() {
    let fakes = Fakes::start(3600).expect("fakes");
    let with_source = |source: &str| {
        json!({"cluster": "functions", "routes": {"f": {
            "function_uri": FUNCTION,
            "authorization": {"managed_identity": {"resource": PROTECTED_AUDIENCE, "source": source}}
        }}})
    };
    let half = [
        ("AZURE_TENANT_ID", "tenant-1"),
        ("AZURE_CLIENT_ID", "client-1"),
    ];
    let log = refused(&plugin(PROTECTED_AUDIENCE), &half, &fakes);
    assert!(
        log.contains(r#"route "f": field "AZURE_FEDERATED_TOKEN_FILE": (environment) is not set although AZURE_TENANT_ID is"#),
        "{log}"
    );
    let log = refused(&with_source("workload_identity"), &[], &fakes);
    assert!(
        log.contains(r#"field "AZURE_FEDERATED_TOKEN_FILE": (environment) is required: managed_identity.source is workload_identity"#),
        "{log}"
    );
    let log = refused(&with_source("msi"), &[], &fakes);
    assert!(
        log.contains(r#"field "authorization.managed_identity.source": must be one of auto, workload_identity, app_service, imds"#),
        "{log}"
    );
    // Named, IMDS is used whatever else the environment holds.
    let mut envoy = start(&with_source("imds"), &half, &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    assert_accepted(&envoy);
    assert!(envoy
        .log()
        .contains(r#"route "f": managed identity token from imds (source is imds)"#));
    // Chosen by the environment: the line says which and why.
    let mut envoy = start(&plugin(PROTECTED_AUDIENCE), &[], &fakes);
    envoy
        .wait_log("managed identity token from imds (no workload identity or App Service variables reach the VM)")
        .unwrap();
}

/// An endpoint Envoy cannot reach is reported as unreachable, and an
/// outage logs once when it starts (then a summary a minute), not a line
/// per refused request.
#[test]
fn an_unreachable_token_endpoint_is_named_and_refusals_do_not_flood_the_log() {
    let bootstrap = azure_identity_bootstrap(&plugin(PROTECTED_AUDIENCE), &[], dead_port(), None);
    assert_unreachable_and_logged_once(&bootstrap, "azure-functions", "/f");
}

/// APIM's `output-token-variable-name` use: the token goes into another
/// header, and the client's own Authorization reaches the function.
#[test]
fn the_token_can_travel_in_another_header_beside_the_clients_authorization() {
    let fakes = Fakes::start(3600).expect("fakes");
    let plugin = json!({"cluster": "functions", "routes": {"f": {
        "function_uri": "http://fnapp.azurewebsites.net/api/echo",
        "authorization": {
            "apikey": faas_emulator::azure::KEYS[0],
            "managed_identity": {"resource": PROTECTED_AUDIENCE, "header": "X-Gateway-Token"}
        }
    }}});
    let mut envoy = start(&plugin, &[], &fakes);
    envoy
        .wait_stat(&stat("imds", "envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    for h2 in [false, true] {
        let headers = [("authorization", "Bearer client-token")];
        let r = http_either(h2, envoy.port, "GET", "/f", &headers, b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let e = r.echo();
        assert_eq!(e.header("authorization"), Some("Bearer client-token"));
        let token = e.header("x-gateway-token").expect("the gateway's token");
        assert!(token.starts_with("Bearer ") && token.len() > 20, "{token}");
    }
}
