//! The imports of the examples, held stable: each output and report is
//! compared with its file in tests/golden/ (reviewed once by a person).
//! `UPDATE_GOLDEN=1 cargo test -p envoy-faas --test golden` rewrites them
//! after a deliberate change; review the diff before committing it.

use envoy_faas::{envoy, import, istio, Source, Target};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn envoy(in_place: bool) -> Target {
    Target::Envoy(envoy::Options {
        listen: ("0.0.0.0".into(), 8080),
        admin: ("127.0.0.1".into(), 9901),
        wasm_dir: "dist".into(),
        trusted_ca: "/etc/ssl/certs/ca-certificates.crt".into(),
        upstream_override: None,
        in_place,
    })
}

fn istio(in_place: bool) -> Target {
    Target::Istio(istio::Options {
        namespace: "istio-ingress".into(),
        gateway: "istio-ingress/ingressgateway".into(),
        selector: ("istio".into(), "ingressgateway".into()),
        version: "0.1.0".into(),
        in_place,
    })
}

/// Each target's golden-file stem suffix, and the target: the callout
/// imports, then `--forwarding route`.
fn targets() -> [(&'static str, Target); 4] {
    [
        ("envoy", envoy(false)),
        ("istio", istio(false)),
        ("in-place.envoy", envoy(true)),
        ("in-place.istio", istio(true)),
    ]
}

fn compare(name: &str, actual: &str, failures: &mut Vec<String>) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => {}
        Ok(_) => failures.push(format!(
            "{name} differs from the import (UPDATE_GOLDEN=1 rewrites it; review the diff)"
        )),
        Err(e) => failures.push(format!("{}: {e}", path.display())),
    }
}

#[test]
fn imports_of_the_examples_match_their_golden_files() {
    // The generated VMs have no environment; neither does this import.
    for name in envoy_faas::filters::VM_ENVIRONMENT {
        std::env::remove_var(name);
    }
    let mut failures = Vec::new();
    for (source, example) in [(Source::Apisix, "apisix.yaml"), (Source::Kong, "kong.yml")] {
        let text = std::fs::read_to_string(root().join("examples").join(example)).expect("example");
        for (target_name, target) in targets() {
            let imported = import(source, &text, &format!("examples/{example}"), &target)
                .unwrap_or_else(|e| panic!("{example}: {e}"));
            let stem = format!("{}.{target_name}", source.name());
            compare(&format!("{stem}.yaml"), &imported.output, &mut failures);
            compare(
                &format!("{stem}.report.txt"),
                &imported.report.to_string(),
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
