//! The shipped Envoy configs that must agree: `envoy/compose.yaml` is the
//! demo gateway (`envoy/demo.yaml`) for docker-compose, and may differ from it
//! only in addresses. Pure file checks (Envoy loads both in `make validate`).

use integration_tests::*;

#[test]
fn compose_yaml_is_the_demo_with_container_addresses() {
    let demo = shipped_config("demo.yaml");
    let compose = compose_as_demo(shipped_config("compose.yaml"));
    if compose != demo {
        let a = serde_json::to_string_pretty(&demo).unwrap_or_default();
        let b = serde_json::to_string_pretty(&compose).unwrap_or_default();
        let first = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(b.lines().count()));
        panic!(
            "envoy/compose.yaml drifted from envoy/demo.yaml (beyond addresses) at line {first} of:\n{}\n--- compose.yaml, brought to demo addresses ---\n{}",
            a.lines().skip(first.saturating_sub(3)).take(8).collect::<Vec<_>>().join("\n"),
            b.lines().skip(first.saturating_sub(3)).take(8).collect::<Vec<_>>().join("\n"),
        );
    }
}

#[test]
fn the_drift_check_sees_a_changed_route() {
    let mut compose = shipped_config("compose.yaml");
    compose["static_resources"]["clusters"][0]["connect_timeout"] = "9s".into();
    assert_ne!(compose_as_demo(compose), shipped_config("demo.yaml"));
}

fn named<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list.as_array()
        .and_then(|l| l.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The platform-credentials config ships the token-file listener the
/// credential tests run (`token_file_listener`), and STS over verified TLS.
#[test]
fn platform_credentials_ship_the_tested_token_recipe_and_verified_sts() {
    let config = shipped_config("aws-platform-credentials.yaml");
    let resources = &config["static_resources"];
    let shipped = named(
        &resources["listeners"],
        TOKEN_FILE_CLUSTER.trim_start_matches("aws_"),
    );
    let tested = token_file_listener(
        10001,
        &[
            "/var/run/secrets/eks.amazonaws.com/serviceaccount",
            "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
        ],
    );
    assert_eq!(
        shipped, &tested,
        "envoy/aws-platform-credentials.yaml token_files listener"
    );
    let sts = named(&resources["clusters"], "aws_sts");
    let tls = &sts["transport_socket"]["typed_config"]["common_tls_context"];
    assert_eq!(
        tls["validation_context"]["trusted_ca"]["filename"],
        "/etc/ssl/certs/ca-certificates.crt"
    );
    let options = &sts["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        ["upstream_http_protocol_options"];
    assert_eq!(
        (
            options["auto_sni"].as_bool(),
            options["auto_san_validation"].as_bool()
        ),
        (Some(true), Some(true))
    );
    for name in SOURCE_CLUSTERS.iter().chain([&TOKEN_FILE_CLUSTER]) {
        named(&resources["clusters"], name);
    }
}

/// Every shipped config carries the same stats_config (the Prometheus
/// labels) and, on its gateway listener, the same access-log format as
/// `envoy/demo.yaml`, which `observability.rs` runs.
#[test]
fn every_shipped_config_has_the_tested_stats_tags_and_access_log() {
    let stats = integration_tests::prometheus::shipped_stats_config();
    let tags: Vec<&str> = stats["stats_tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["tag_name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        tags,
        ["filter", "route", "outcome", "fault", "source", "version", "commit"]
    );
    let log = integration_tests::prometheus::shipped_access_log();
    let dir = repo_root().join("envoy");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("envoy/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !name.ends_with(".yaml") {
            continue;
        }
        let config = shipped_config(&name);
        assert_eq!(config["stats_config"], stats, "{name}: stats_config");
        // The same logger and fields; a config may log more of its own.
        let mut shipped =
            integration_tests::prometheus::gateway_hcm(&config)["access_log"][0].clone();
        let fields = &mut shipped["typed_config"]["log_format"]["json_format"];
        if let Some(fields) = fields.as_object_mut() {
            fields.retain(|key, _| {
                log["typed_config"]["log_format"]["json_format"]
                    .get(key)
                    .is_some()
            });
        }
        assert_eq!(shipped, log, "{name}: access_log");
        checked += 1;
    }
    assert!(checked >= 8, "{checked} configs");
}

/// Envoy Gateway's EnvoyProxy merges the same stats_tags into its bootstrap.
#[test]
fn envoy_gateway_merges_the_shipped_stats_tags() {
    let proxy = manifest_kind("deploy/envoy-gateway/holding-filter.yaml", "EnvoyProxy");
    assert_eq!(proxy["spec"]["bootstrap"]["type"], "Merge");
    let value = proxy["spec"]["bootstrap"]["value"]
        .as_str()
        .expect("bootstrap value");
    let merged: serde_json::Value = serde_yaml::from_str(value).expect("bootstrap YAML");
    assert_eq!(
        merged["stats_config"]["stats_tags"],
        integration_tests::prometheus::shipped_stats_config()["stats_tags"]
    );
}
