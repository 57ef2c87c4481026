//! Envoy set-ups for the platform-credential tests: the clusters the
//! `aws-lambda` filter reaches its sources through, and the token-file
//! recipe (a loopback listener with Envoy's `file_server` filter, which is
//! how a VM without a filesystem reads IRSA and Pod Identity tokens).

use crate::{bootstrap, cluster, emulator, route, wasm_filter_with_env};
use serde_json::{json, Value};

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
    let mut clusters = vec![cluster("functions", emulator().port())];
    clusters.extend(SOURCE_CLUSTERS.iter().map(|name| cluster(name, fakes_port)));
    let mut doc = bootstrap(
        vec![route("f", "/f", "functions")],
        vec![wasm_filter_with_env("aws-lambda", plugin, env)],
        clusters,
    );
    if let Some((port, dirs)) = token_files {
        if let Some(c) = doc["static_resources"]["clusters"].as_array_mut() {
            c.push(cluster(TOKEN_FILE_CLUSTER, port));
        }
        if let Some(l) = doc["static_resources"]["listeners"].as_array_mut() {
            l.push(token_file_listener(port, dirs));
        }
    }
    doc
}
