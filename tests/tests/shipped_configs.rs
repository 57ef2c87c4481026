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
