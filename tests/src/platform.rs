//! Envoy set-ups for the platform-credential tests: the clusters the
//! `aws-lambda` filter reaches its sources through, and the token-file
//! recipe (a loopback listener with Envoy's `file_server` filter, which is
//! how a VM without a filesystem reads IRSA and Pod Identity tokens).

use crate::{bootstrap, cluster, emulator, get, route, wasm_filter_with_env, Envoy, ScratchDir};
use faas_emulator::metadata::Controls;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The cluster names the filter uses by default, in the order of
/// `imds_cluster`, `container_credentials_cluster`, `sts_cluster`.
pub const SOURCE_CLUSTERS: [&str; 3] = ["aws_imds", "aws_container_credentials", "aws_sts"];
/// The default `token_file_cluster`.
pub const TOKEN_FILE_CLUSTER: &str = "aws_token_files";

/// A loopback listener on `port` that serves the files under each of
/// `dirs` at the same path (and nothing else) with Envoy's `file_server`.
pub fn token_file_listener(port: u16, dirs: &[&str]) -> Value {
    let mappings: Vec<Value> = dirs
        .iter()
        .map(|d| json!({"request_path_prefix": d, "file_path_prefix": d}))
        .collect();
    json!({
        "name": "token_files",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "token_files",
                "route_config": {"virtual_hosts": [{"name": "files", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]}]},
                "http_filters": [
                    {"name": "envoy.filters.http.file_server", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.file_server.v3.FileServerConfig",
                        "manager_config": {"thread_pool": {"thread_count": 1}},
                        "path_mappings": mappings
                    }},
                    {"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                ]
            }
        }]}]
    })
}

/// The `azure-functions` filter's default token-source clusters:
/// `imds_cluster`, `identity_endpoint_cluster`, `entra_cluster`.
pub const AZURE_SOURCE_CLUSTERS: [&str; 3] =
    ["azure_imds", "azure_identity_endpoint", "azure_entra"];
/// Its default `token_file_cluster`.
pub const AZURE_TOKEN_FILE_CLUSTER: &str = "azure_token_files";

/// Envoy with the `aws-lambda` filter (`plugin`, VM environment `env`) on
/// prefix `/f`, the emulator as `functions`, every source cluster pointing
/// at the fakes on `fakes_port`, and, with `token_files`, the token-file
/// listener on `token_port` as the token-file cluster.
pub fn platform_bootstrap(
    plugin: &Value,
    env: &[(&str, &str)],
    fakes_port: u16,
    token_files: Option<(u16, &[&str])>,
) -> Value {
    sources_bootstrap(
        ("aws-lambda", &SOURCE_CLUSTERS, TOKEN_FILE_CLUSTER),
        plugin,
        env,
        fakes_port,
        token_files,
    )
}

/// [`platform_bootstrap`] for the `azure-functions` filter's managed
/// identity: its token-source clusters at the fakes.
pub fn azure_identity_bootstrap(
    plugin: &Value,
    env: &[(&str, &str)],
    fakes_port: u16,
    token_files: Option<(u16, &[&str])>,
) -> Value {
    sources_bootstrap(
        (
            "azure-functions",
            &AZURE_SOURCE_CLUSTERS,
            AZURE_TOKEN_FILE_CLUSTER,
        ),
        plugin,
        env,
        fakes_port,
        token_files,
    )
}

/// The `gcp-functions` filter's default source clusters:
/// `metadata_cluster`, `sts_cluster`, `iam_credentials_cluster`,
/// `subject_token_cluster`, `oauth2_cluster`.
pub const GCP_SOURCE_CLUSTERS: [&str; 5] = [
    "gcp_metadata",
    "gcp_sts",
    "gcp_iam_credentials",
    "gcp_subject_token",
    "gcp_oauth2",
];
/// Its default `token_file_cluster`.
pub const GCP_TOKEN_FILE_CLUSTER: &str = "gcp_token_files";

/// [`platform_bootstrap`] for the `gcp-functions` filter: every source
/// cluster at the fakes, and with `token_files` the token-file listener.
pub fn gcp_identity_bootstrap(
    plugin: &Value,
    fakes_port: u16,
    token_files: Option<(u16, &[&str])>,
) -> Value {
    sources_bootstrap(
        (
            "gcp-functions",
            &GCP_SOURCE_CLUSTERS,
            GCP_TOKEN_FILE_CLUSTER,
        ),
        plugin,
        &[],
        fakes_port,
        token_files,
    )
}

/// `filter` on `/f` with its source clusters at the fakes, and the
/// token-file listener as its token-file cluster.
fn sources_bootstrap(
    (filter, source_clusters, token_file_cluster): (&str, &[&str], &str),
    plugin: &Value,
    env: &[(&str, &str)],
    fakes_port: u16,
    token_files: Option<(u16, &[&str])>,
) -> Value {
    let mut clusters = vec![cluster("functions", emulator().port())];
    clusters.extend(source_clusters.iter().map(|name| cluster(name, fakes_port)));
    let mut doc = bootstrap(
        vec![route("f", "/f", "functions")],
        vec![wasm_filter_with_env(filter, plugin, env)],
        clusters,
    );
    if let Some((port, dirs)) = token_files {
        if let Some(c) = doc["static_resources"]["clusters"].as_array_mut() {
            c.push(cluster(token_file_cluster, port));
        }
        if let Some(l) = doc["static_resources"]["listeners"].as_array_mut() {
            l.push(token_file_listener(port, dirs));
        }
    }
    doc
}

/// A token directory for the token-file recipe, with `token` in `name`.
pub fn token_dir(tag: &str, name: &str, token: &str) -> ScratchDir {
    let dir = ScratchDir::new(tag);
    std::fs::write(dir.0.join(name), token).expect("write the token file");
    dir
}

/// Replaces a token file the way the kubelet does: a new file renamed over.
pub fn rotate_token_file(dir: &ScratchDir, name: &str, token: &str) {
    let tmp = dir.0.join(".rotating");
    std::fs::write(&tmp, token).expect("write the new token");
    std::fs::rename(&tmp, dir.0.join(name)).expect("rename it over the old one");
}

/// 24 s of steady GETs of `path` over 20 s tokens (the fakes' TTL): not one
/// fails, and the fakes issued tokens of `kind` at least three times (it
/// rotated at least twice).
pub fn assert_rotation_without_failures(
    envoy: &Envoy,
    controls: &Controls,
    path: &str,
    kind: &str,
) {
    let (sent, failed) = steady_traffic(envoy, path, Duration::from_secs(24));
    assert!(sent > 50, "{sent}");
    assert!(failed.is_empty(), "{failed:?}");
    let issued = controls.calls(kind);
    assert!(issued >= 3, "rotated at least twice: {issued}");
}

/// Envoy with two workers (three VMs tick) on `bootstrap`, 20 s tokens:
/// coordinated, they make the first fetch of `kind` and one per refresh
/// period (the first 8 to 10 s in, then every 8 s), under steady traffic
/// on `/f` that never fails. `refreshes` is the source's refresh counter.
pub fn assert_one_fetch_per_period(
    bootstrap: &Value,
    refreshes: &str,
    controls: &Controls,
    kind: &str,
) {
    let started = Instant::now();
    let mut envoy = Envoy::start_with_workers(bootstrap, 2).unwrap_or_else(|log| panic!("{log}"));
    envoy.wait_stat(refreshes, 1).unwrap();
    let (_, failed) = steady_traffic(&envoy, "/f", Duration::from_secs(13));
    assert!(failed.is_empty(), "{failed:?}");
    envoy.wait_stat(refreshes, 2).unwrap();
    let fetches = controls.calls(kind);
    let periods = started.elapsed().as_secs() / 8;
    assert!(
        (2..=1 + periods).contains(&fetches),
        "token fetches: {fetches} in {periods} refresh periods"
    );
}

/// GETs of `path` in a row for `length`: how many, and the first failed
/// ones (when, status, body).
pub fn steady_traffic(
    envoy: &Envoy,
    path: &str,
    length: Duration,
) -> (usize, Vec<(Duration, u16, String)>) {
    let start = Instant::now();
    let (mut sent, mut failed) = (0, Vec::new());
    while start.elapsed() < length {
        let r = get(envoy.port, path);
        sent += 1;
        if r.status != 200 && failed.len() < 5 {
            failed.push((start.elapsed(), r.status, r.text()));
        }
    }
    (sent, failed)
}

/// The stat name of a platform-credentials metric of `filter`'s `source`.
pub fn credentials_stat(filter: &str, source: &str, family: &str) -> String {
    format!("{family}.filter=.={filter};.;source=.={source};.;")
}

/// Starts an outage of every source the fakes serve and sends `path` until
/// the filter refuses (at most 30 s): how long after the outage began, and
/// the 503's body. Any status other than 200 and 503 fails the test.
pub fn outage_until_refused(
    envoy: &Envoy,
    controls: &Controls,
    path: &str,
) -> Option<(Duration, Value)> {
    let began = Instant::now();
    controls.failing.store(true, Ordering::SeqCst);
    while began.elapsed() < Duration::from_secs(30) {
        let r = get(envoy.port, path);
        match r.status {
            200 => {}
            503 => return Some((began.elapsed(), r.json())),
            other => panic!("{other}: {}", r.text()),
        }
    }
    None
}

/// Ends the outage and waits (up to 75 s) for one refresh more than
/// `refreshes` counts now: usually one VM makes the first fetch, but when
/// the main thread's VM and a worker's tick in the same instant both may,
/// so recovery is one success more than counted while every refresh failed.
pub fn end_outage(envoy: &mut Envoy, controls: &Controls, refreshes: &str) {
    let before = envoy.stat_ending(refreshes).map_or(1, |(_, v)| v);
    controls.failing.store(false, Ordering::SeqCst);
    envoy
        .wait_stat_within(refreshes, before + 1, Duration::from_secs(75))
        .unwrap_or_else(|e| panic!("no refresh after the outage: {e}"));
}

/// Starts `bootstrap` (its IMDS cluster on a dead port), waits for the
/// first failed refresh of `filter`'s IMDS source, then sends `path` ten
/// times over HTTP/1.1 and ten over HTTP/2: each gets the 503 whose message
/// says the endpoint could not be reached, and the log has one line for the
/// outage's start and none per refused request.
pub fn assert_unreachable_and_logged_once(bootstrap: &Value, filter: &str, path: &str) {
    let mut envoy = Envoy::start(bootstrap).unwrap_or_else(|log| panic!("{log}"));
    let failures = credentials_stat(
        filter,
        "imds",
        "envoy_faas_credentials_refresh_failures_total",
    );
    envoy.wait_stat(&failures, 1).unwrap();
    for h2 in [false, true] {
        for _ in 0..10 {
            let r = crate::http_either(h2, envoy.port, "GET", path, &[], b"");
            assert_eq!(r.status, 503, "{}", r.text());
            let message = r.json()["message"].as_str().unwrap_or_default().to_string();
            assert!(
                message.contains("imds: the endpoint could not be reached"),
                "{message}"
            );
            assert!(!message.contains("HTTP 503"), "{message}");
        }
    }
    let log = envoy.log();
    let refusing = log
        .matches("refusing requests with 503 credentials_unavailable")
        .count();
    assert_eq!(refusing, 1, "{log}");
    let per_request = log
        .lines()
        .filter(|l| l.contains("credentials_unavailable") && l.contains(": route \""))
        .count();
    assert_eq!(per_request, 0, "{log}");
}
