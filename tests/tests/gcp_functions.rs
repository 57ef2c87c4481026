//! `gcp-functions` in real Envoy 1.40 (issue 30): the filter fetches
//! Google-signed ID tokens from the emulator's metadata server fake through
//! an Envoy cluster, keeps them fresh, and sends them to the emulator's
//! Cloud Run and Cloud Functions hosts, whose front door verifies them as
//! Google's does (RS256 against the key set, `iss`, `aud`, `exp`) and hands
//! the function the token with its signature removed. Every cluster is
//! loopback.

use faas_emulator::google::{CUSTOM_AUDIENCE, EMAIL, SIGNATURE_REMOVED};
use faas_emulator::metadata::Fakes;
use integration_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Plain HTTP to the emulator underneath (its clusters have no TLS); the
/// URL is what the token's audience and the front door go by.
const SERVICE: &str = "https://svc-abc123-uc.a.run.app";

/// The emulator's echo behind the Cloud Run host on `/f`, with a token.
fn plugin(entry: Value) -> Value {
    json!({"cluster": "functions", "routes": {"f": merged(
        json!({"function_uri": format!("{SERVICE}/echo"), "strip_prefix": "/f",
               "authorization": {"id_token": {}}}),
        entry)}})
}

fn start(plugin: &Value, fakes: &Fakes) -> Envoy {
    Envoy::start(&gcp_identity_bootstrap(plugin, fakes.port, None))
        .unwrap_or_else(|log| panic!("{log}"))
}

fn stat(family: &str) -> String {
    credentials_stat("gcp-functions", "metadata_server", family)
}

/// The claims of the (signature-removed) token the function saw in `header`.
fn claims_seen(r: &Response, header: &str) -> Value {
    let echo = r.echo();
    let value = echo
        .header(header)
        .unwrap_or_else(|| panic!("no {header}: {}", r.text()));
    let token = value.strip_prefix("Bearer ").expect("bearer");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        parts.get(2),
        Some(&SIGNATURE_REMOVED),
        "Cloud Run strips the signature"
    );
    let mut b64 = parts[1].replace('-', "+").replace('_', "/");
    while !b64.len().is_multiple_of(4) {
        b64.push('=');
    }
    serde_json::from_slice(&base64_decode(&b64)).expect("claims")
}

#[test]
fn the_metadata_servers_token_reaches_a_private_service_both_paths() {
    let fakes = Fakes::start(3600).expect("fakes");
    for forwarding in ["callout", "route"] {
        let plugin = plugin(json!({"forwarding": forwarding}));
        let config = gcp_identity_bootstrap(&plugin, fakes.port, None);
        let mut config = config;
        if forwarding == "route" {
            // In place: the twin route first, the route's cluster the function's.
            let routes = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]
                ["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"];
            let twin = twin_route("f", json!({"cluster": "functions"}));
            routes.as_array_mut().expect("routes").insert(0, twin);
        }
        let mut envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
        envoy
            .wait_stat(&stat("envoy_faas_credentials_refreshes_total"), 1)
            .unwrap();
        let r = http1(
            envoy.port,
            "POST",
            "/f/items?x=1",
            &[("authorization", "Bearer client")],
            b"{}",
        );
        assert_eq!(r.status, 200, "{forwarding}: {} {}", r.text(), envoy.log());
        let claims = claims_seen(&r, "authorization");
        assert_eq!(claims["aud"], SERVICE);
        assert_eq!(
            (claims["iss"].as_str(), claims["email"].as_str()),
            (Some("https://accounts.google.com"), Some(EMAIL))
        );
        let echo = r.echo();
        assert_eq!(echo.path, "/echo/items");
        assert_eq!(
            echo.header("x-forwarded-authorization"),
            Some("Bearer client"),
            "the client's moves aside"
        );
        assert!(!envoy.log().contains("eyJ"), "no token in the log");
    }
    assert_eq!(
        fakes.controls.calls("refused"),
        0,
        "Metadata-Flavor sent, no X-Forwarded-For"
    );
}

#[test]
fn x_serverless_authorization_and_custom_audiences() {
    let fakes = Fakes::start(3600).expect("fakes");
    let plugin = plugin(json!({"authorization": {"id_token": {
        "header": "x-serverless-authorization", "audience": CUSTOM_AUDIENCE}}}));
    let mut envoy = start(&plugin, &fakes);
    envoy
        .wait_stat(&stat("envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    let r = http1(
        envoy.port,
        "GET",
        "/f",
        &[("authorization", "Bearer app-token")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        claims_seen(&r, "x-serverless-authorization")["aud"],
        CUSTOM_AUDIENCE
    );
    assert_eq!(
        r.echo().header("authorization"),
        Some("Bearer app-token"),
        "untouched"
    );
}

#[test]
fn a_first_generation_function_gets_its_own_url_as_audience_and_a_public_one_no_token() {
    let fakes = Fakes::start(3600).expect("fakes");
    let plugin = json!({"cluster": "functions", "routes": {
        "gen1": {"function_uri": "https://us-central1-proj.cloudfunctions.net/echo", "strip_prefix": "/gen1",
                 "authorization": {"id_token": {}}},
        "const": {"function_uri": "https://us-central1-proj.cloudfunctions.net/echo/fixed",
                  "path_translation": "CONSTANT_ADDRESS", "authorization": {"id_token": {}}},
        "open": {"function_uri": "https://public-svc.a.run.app/echo", "strip_prefix": "/open"},
        "private": {"function_uri": format!("{SERVICE}/echo")},
    }});
    let routes = ["gen1", "const", "open", "private"];
    let config = bootstrap(
        routes
            .iter()
            .map(|n| route(n, &format!("/{n}"), "functions"))
            .collect(),
        vec![wasm_filter("gcp-functions", &plugin)],
        vec![
            cluster("functions", emulator().port()),
            cluster("gcp_metadata", fakes.port),
        ],
    );
    let mut envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    envoy
        .wait_stat(&stat("envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    let r = get(envoy.port, "/gen1/a");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        claims_seen(&r, "authorization")["aud"],
        "https://us-central1-proj.cloudfunctions.net/echo"
    );
    let r = get(envoy.port, "/const/ignored/path?q=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.echo();
    assert_eq!(
        (echo.path.as_str(), echo.query.as_deref()),
        ("/echo/fixed", Some("q=1"))
    );
    let r = get(envoy.port, "/open/x");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.echo().header("authorization"), None);
    // A private service without a token: Google's front door refuses it.
    let r = get(envoy.port, "/private");
    assert_eq!(r.status, 401, "{}", r.text());
}

#[test]
fn short_lived_tokens_rotate_before_expiry_with_zero_failed_requests() {
    let fakes = Fakes::start(20).expect("fakes");
    let mut envoy = start(&plugin(json!({})), &fakes);
    envoy
        .wait_stat(&stat("envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    assert_rotation_without_failures(&envoy, &fakes.controls, "/f", "gcp_identity");
}

#[test]
fn an_outage_keeps_the_token_until_5_s_before_exp_then_503_then_recovers() {
    let fakes = Fakes::start(20).expect("fakes");
    let mut envoy = start(&plugin(json!({})), &fakes);
    let refreshes = stat("envoy_faas_credentials_refreshes_total");
    envoy.wait_stat(&refreshes, 1).unwrap();
    let (at, body) = outage_until_refused(&envoy, &fakes.controls, "/f")
        .expect("refused once the token expired");
    assert!(
        at >= Duration::from_secs(13),
        "kept the valid token: {at:?}"
    );
    assert_eq!(body["error"], "credentials_unavailable");
    assert!(!body.to_string().contains("eyJ"), "{body}");
    end_outage(&mut envoy, &fakes.controls, &refreshes);
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn two_workers_make_one_fetch_per_period() {
    let fakes = Fakes::start(20).expect("fakes");
    let bootstrap = gcp_identity_bootstrap(&plugin(json!({})), fakes.port, None);
    let refreshes = stat("envoy_faas_credentials_refreshes_total");
    assert_one_fetch_per_period(&bootstrap, &refreshes, &fakes.controls, "gcp_identity");
}

#[test]
fn invalid_configs_are_refused_at_load_naming_the_field() {
    let fakes = Fakes::start(3600).expect("fakes");
    for (entry, field) in [
        (json!({"path_translation": "APPEND"}), "path_translation"),
        (
            json!({"authorization": {"id_token": {"header": "x-token"}}}),
            "authorization.id_token.header",
        ),
        (
            json!({"authorization": {"id_token": {"source": "service_account_key"}}}),
            "authorization.id_token.source",
        ),
    ] {
        let log = Envoy::start(&gcp_identity_bootstrap(&plugin(entry), fakes.port, None))
            .err()
            .unwrap_or_else(|| panic!("{field}: accepted"));
        assert!(
            log.contains(&format!(r#"route "f": field "{field}""#)),
            "{field}: {log}"
        );
    }
}

/// `envoy/gcp-functions.yaml` as shipped, its clusters on the emulator
/// (plain HTTP) and its metadata server on the fakes: every route passes
/// Google's front door with its own token.
#[test]
fn the_shipped_config_reaches_each_private_service() {
    let fakes = Fakes::start(3600).expect("fakes");
    let config = on_loopback(local_bootstrap(
        "gcp-functions.yaml",
        |cluster| match cluster {
            "gcp_metadata" => fakes.port,
            _ => emulator().port(),
        },
    ));
    let mut envoy = Envoy::start(&config).unwrap_or_else(|log| panic!("{log}"));
    envoy
        .wait_stat(&stat("envoy_faas_credentials_refreshes_total"), 3)
        .unwrap();
    // Past the front door, the emulator has no such functions: its 404
    // names the path each route forwarded.
    let r = get(envoy.port, "/orders/items");
    assert_eq!(
        (r.status, r.json()["path"].as_str()),
        (404, Some("/api/items")),
        "{}",
        r.text()
    );
    let r = get(envoy.port, "/report/anything?q=1");
    assert_eq!(
        (r.status, r.json()["path"].as_str()),
        (404, Some("/report")),
        "{}",
        r.text()
    );
    let r = http1(
        envoy.port,
        "GET",
        "/app/echo",
        &[("authorization", "Bearer app")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.echo().header("authorization"), Some("Bearer app"));
    assert_eq!(
        claims_seen(&r, "x-serverless-authorization")["aud"],
        "https://app-abc123xyz-ew.a.run.app"
    );
}

/// A credential configuration file as gcloud writes it for a pool provider,
/// with `credential_source`.
fn external_account(credential_source: Value) -> Value {
    json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/gw/providers/aws",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/gateway@proj.iam.gserviceaccount.com:generateAccessToken",
        "credential_source": credential_source,
    })
}

/// Envoy on `bootstrap`, once its first federated ID token is in.
fn federated(bootstrap: &Value) -> Envoy {
    let mut envoy = Envoy::start(bootstrap).unwrap_or_else(|log| panic!("{log}"));
    let refreshes = credentials_stat(
        "gcp-functions",
        "external_account",
        "envoy_faas_credentials_refreshes_total",
    );
    envoy
        .wait_stat(&refreshes, 1)
        .unwrap_or_else(|e| panic!("{e}: {}", envoy.log()));
    envoy
}

#[test]
fn workload_identity_federation_from_a_token_file() {
    let fakes = Fakes::start(3600).expect("fakes");
    let token = "eyJhbGciOiJSUzI1NiJ9.federated-subject.sig";
    *fakes.controls.gcp_subject_token.lock().expect("lock") = Some(token.to_string());
    let dir = token_dir("gcp-wif", "token", token);
    let dir_path = dir.0.display().to_string();
    let file = format!("{dir_path}/token");
    let mut config = plugin(json!({}));
    config["external_account"] = external_account(json!({"file": file}));
    let token_port = free_port();
    let bootstrap = gcp_identity_bootstrap(
        &config,
        fakes.port,
        Some((token_port, &[dir_path.as_str()])),
    );
    let envoy = federated(&bootstrap);
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(claims_seen(&r, "authorization")["aud"], SERVICE);
    assert_eq!(
        (
            fakes.controls.calls("gcp_sts"),
            fakes.controls.calls("gcp_generate_id_token")
        ),
        (1, 1)
    );
    assert_eq!(fakes.controls.calls("refused"), 0);
    assert!(
        !envoy.log().contains("federated-subject"),
        "no token in the log"
    );
}

#[test]
fn workload_identity_federation_from_a_url_with_a_json_subject_token() {
    // A gateway on Azure: the subject token is Azure IMDS's access token.
    let fakes = Fakes::start(3600).expect("fakes");
    let mut config = plugin(json!({}));
    config["external_account"] = external_account(json!({
        "url": "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api://AzureADTokenExchange",
        "headers": {"Metadata": "true"},
        "format": {"type": "json", "subject_token_field_name": "access_token"},
    }));
    let envoy = federated(&gcp_identity_bootstrap(&config, fakes.port, None));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fakes.controls.calls("azure_imds"), 1);
    assert_eq!(fakes.controls.calls("gcp_generate_id_token"), 1);
}

/// A gateway on EC2: the credential configuration gcloud writes for an
/// AWS provider. The filter walks IMDSv2 (session token, zone, role,
/// keys) through the subject-token cluster, signs `GetCallerIdentity` with
/// the instance role, and Google's STS (the fake verifies the SigV4
/// signature as AWS would, and the target resource) trades it.
#[test]
fn workload_identity_federation_from_aws_signs_get_caller_identity() {
    let fakes = Fakes::start(3600).expect("fakes");
    let mut account = external_account(json!({
        "environment_id": "aws1",
        "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
        "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
        "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        "imdsv2_session_token_url": "http://169.254.169.254/latest/api/token",
    }));
    account["subject_token_type"] = json!("urn:ietf:params:aws:token-type:aws4_request");
    let mut config = plugin(json!({}));
    config["external_account"] = account;
    let envoy = federated(&gcp_identity_bootstrap(&config, fakes.port, None));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(claims_seen(&r, "authorization")["aud"], SERVICE);
    let c = &fakes.controls;
    assert_eq!(
        (
            c.calls("imds_token"),
            c.calls("imds_region"),
            c.calls("imds_role"),
            c.calls("imds_credentials"),
            c.calls("gcp_sts_aws"),
            c.calls("gcp_generate_id_token"),
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(c.calls("refused"), 0, "the signature verified");
    let log = envoy.log();
    assert!(
        !log.contains("fakeSecret") && !log.contains("fakeToken"),
        "no AWS secret in the log"
    );
    // A configuration without the zone URL is refused, naming it.
    let mut config = plugin(json!({}));
    config["external_account"] = external_account(json!({
        "environment_id": "aws1",
        "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
        "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
    }));
    let log = Envoy::start(&gcp_identity_bootstrap(&config, fakes.port, None))
        .err()
        .expect("refused");
    assert!(
        log.contains(r#"field "external_account.credential_source.region_url": is required with environment_id aws1"#),
        "{log}"
    );
}

#[test]
fn an_incomplete_external_account_is_refused_naming_the_field() {
    let fakes = Fakes::start(3600).expect("fakes");
    let mut account = external_account(json!({"file": "/var/run/token"}));
    account
        .as_object_mut()
        .expect("object")
        .remove("service_account_impersonation_url");
    let mut config = plugin(json!({}));
    config["external_account"] = account;
    let log = Envoy::start(&gcp_identity_bootstrap(&config, fakes.port, None))
        .err()
        .expect("refused");
    assert!(
        log.contains(r#"field "external_account.service_account_impersonation_url": is required"#),
        "{log}"
    );
    let mut config = plugin(json!({}));
    config["external_account"] = external_account(json!({"executable": {"command": "x"}}));
    let log = Envoy::start(&gcp_identity_bootstrap(&config, fakes.port, None))
        .err()
        .expect("refused");
    assert!(log.contains("external_account.credential_source"), "{log}");
}

/// A service-account key file, served by the token-file listener (as a
/// mounted Kubernetes secret would be): the filter signs an RS256
/// assertion with it, and Google's token endpoint (the fake verifies the
/// signature against the key, `iss`, `aud`, `exp`) answers the ID token.
#[test]
fn a_service_account_key_signs_the_assertion_for_the_id_token() {
    let fakes = Fakes::start(3600).expect("fakes");
    let key_file =
        faas_emulator::google::service_account_key_file("https://oauth2.googleapis.com/token");
    let dir = token_dir("gcp-sa-key", "key.json", &key_file);
    let dir_path = dir.0.display().to_string();
    let mut config = plugin(json!({}));
    config["service_account_key_file"] = json!(format!("{dir_path}/key.json"));
    let token_port = free_port();
    let bootstrap = gcp_identity_bootstrap(
        &config,
        fakes.port,
        Some((token_port, &[dir_path.as_str()])),
    );
    let mut envoy = Envoy::start(&bootstrap).unwrap_or_else(|log| panic!("{log}"));
    let refreshes = credentials_stat(
        "gcp-functions",
        "service_account_key",
        "envoy_faas_credentials_refreshes_total",
    );
    envoy
        .wait_stat(&refreshes, 1)
        .unwrap_or_else(|e| panic!("{e}: {}", envoy.log()));
    let r = get(envoy.port, "/f");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(claims_seen(&r, "authorization")["aud"], SERVICE);
    assert_eq!(
        (
            fakes.controls.calls("gcp_oauth2"),
            fakes.controls.calls("refused")
        ),
        (1, 0)
    );
    assert!(!envoy.log().contains("PRIVATE KEY"), "no key in the log");
}

/// `deploy/istio/wasmplugin-gcp-functions.yaml` as Istio up to 1.29
/// delivers it (ECDS `extensions.istio.io/wasmplugin/<ns>.<name>`, the
/// module from the agent's cache, no flag), with a buffer filter holding
/// bodies after it and the clusters its ServiceEntries make: the metadata
/// server's `outbound|80||metadata.google.internal` on the fakes, the
/// service's on the emulator. A POST passes Google's front door.
#[test]
fn the_istio_recipe_as_istio_renders_it() {
    let fakes = Fakes::start(3600).expect("fakes");
    let scratch = ScratchDir::new("istio-gcp");
    let plugin = manifest_kind("deploy/istio/wasmplugin-gcp-functions.yaml", "WasmPlugin");
    let url = plugin["spec"]["url"].as_str().expect("url").to_string();
    let module = istio_agent_copy(&scratch.0, "gcp-functions", &url);
    let name = "extensions.istio.io/wasmplugin/istio-ingress.gcp-functions";
    let resource = istio_wasm(
        "istio-ingress.gcp-functions",
        &module,
        Some(&plugin["spec"]["pluginConfig"]),
        &[],
    );
    write_ecds(&scratch.0, name, &resource);
    let service = "outbound|443||orders-abc123xyz-uc.a.run.app";
    let metadata = cluster("outbound|80||metadata.google.internal", fakes.port);
    let config = bootstrap(
        vec![route("orders", "/orders", service)],
        vec![istio_ecds_filter(name, &scratch.0), buffer_filter(1048576)],
        vec![cluster(service, emulator().port()), metadata],
    );
    assert_recipe_passes_the_front_door(&config, &fakes, "/api/items");
}

/// Envoy on a recipe's `config`, once its first token is in: a POST on
/// `/orders/items` passes Google's front door with the metadata server's
/// token and reaches `forwarded` (the emulator has no function there, so
/// its 404 names the path; a 401 would be the front door's refusal).
fn assert_recipe_passes_the_front_door(config: &Value, fakes: &Fakes, forwarded: &str) {
    let mut envoy = Envoy::start(config).unwrap_or_else(|log| panic!("{log}"));
    envoy
        .wait_stat(&stat("envoy_faas_credentials_refreshes_total"), 1)
        .unwrap();
    let r = http1(envoy.port, "POST", "/orders/items", &[], &[b'x'; 4096]);
    assert_eq!(
        (r.status, r.json()["path"].as_str()),
        (404, Some(forwarded)),
        "{}",
        r.text()
    );
    assert_eq!(fakes.controls.calls("gcp_identity"), 1);
}

/// `deploy/envoy-gateway/envoyextensionpolicy-gcp-functions.yaml` as
/// Envoy Gateway 1.9 renders it (the filter inline and disabled, enabled
/// on the HTTPRoute's route, no flag), with `holding-filter.yaml`'s buffer
/// filter after it and the EnvoyPatchPolicy's two clusters as patched in:
/// the service's (here on the emulator, without the TLS the recipe sets
/// towards Google) and `gcp_metadata` (on the fakes). A POST passes
/// Google's front door with the metadata server's token.
#[test]
fn the_envoy_gateway_recipe_as_envoy_gateway_renders_it() {
    let fakes = Fakes::start(3600).expect("fakes");
    let path = "deploy/envoy-gateway/envoyextensionpolicy-gcp-functions.yaml";
    let policy = manifest_kind(path, "EnvoyExtensionPolicy");
    let spec = &policy["spec"]["wasm"][0];
    assert_eq!(spec["config"]["body_layout"], "holding_filter");
    let (wasm_filter, (filter_name, enable)) = envoy_gateway_wasm(
        ("default", "gcp-functions", 0),
        spec,
        &wasm("gcp_functions"),
    );
    let patch = manifest_kind(path, "EnvoyPatchPolicy");
    let mut clusters = Vec::new();
    for p in patch["spec"]["jsonPatches"].as_array().expect("patches") {
        let mut c = p["operation"]["value"].clone();
        let port = match c["name"].as_str() {
            Some("gcp_metadata") => fakes.port,
            Some(name) => {
                assert_eq!(
                    Some(name),
                    spec["config"]["cluster"].as_str(),
                    "the plugin's cluster is patched in"
                );
                emulator().port()
            }
            None => panic!("a cluster without a name"),
        };
        let endpoint = &mut c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
        endpoint["address"]["socket_address"] = json!({"address": "127.0.0.1", "port_value": port});
        if let Some(c) = c.as_object_mut() {
            c.remove("transport_socket");
            c.remove("typed_extension_protocol_options");
            c.insert("type".into(), json!("STATIC"));
        }
        clusters.push(c);
    }
    assert_eq!(clusters.len(), 2);
    let limit = 8 * 1024 * 1024;
    let mut buffer = buffer_filter(limit);
    buffer["disabled"] = json!(true);
    let mut orders = route(
        "orders",
        "/orders",
        spec["config"]["cluster"].as_str().expect("cluster"),
    );
    orders["typed_per_filter_config"] = json!({
        filter_name: enable,
        "envoy.filters.http.buffer": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "buffer": {"max_request_bytes": limit}
        }
    });
    let config = bootstrap(vec![orders], vec![wasm_filter, buffer], clusters);
    // The recipe sets no strip_prefix: the function's path as it stands.
    assert_recipe_passes_the_front_door(&config, &fakes, "/api");
}
