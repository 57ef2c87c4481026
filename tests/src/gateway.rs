//! The shipped demo gateway as the suite's target: `envoy/demo.yaml` on
//! loopback, or the composed `envoy` service (`envoy/compose.yaml`) when
//! `FAAS_GATEWAY` names it. Cases written against [`Gateway`] run unchanged
//! in `make test` and in `make compose-test`.

use crate::{admin_get, dead_port, emulator, repo_root, wasm, Endpoint, Envoy};
use serde_json::Value;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a composed gateway may take to answer `/ready` (containers
/// starting, Envoy loading three modules).
const COMPOSED_READY_WITHIN: Duration = Duration::from_secs(90);

/// The demo gateway a test talks to.
pub struct Gateway {
    host: String,
    pub port: u16,
    admin: (String, u16),
    /// The Envoy this test started; `None` for a composed gateway.
    local: Option<Envoy>,
}

impl Endpoint for &Gateway {
    fn host_port(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }
}

impl Gateway {
    /// With `FAAS_GATEWAY=host:port` (admin at `FAAS_GATEWAY_ADMIN`,
    /// default port 9901 on the same host): that gateway, once its `/ready`
    /// answers. Otherwise a new Envoy with `envoy/demo.yaml` on free loopback
    /// ports, its `functions` cluster on the in-process emulator and its
    /// `nowhere` cluster on a port with nothing listening.
    pub fn start() -> Gateway {
        match composed_target() {
            Some((host, port, admin)) => {
                if let Err(e) = composed_ready(&admin) {
                    panic!("{e}");
                }
                Gateway {
                    host,
                    port,
                    admin,
                    local: None,
                }
            }
            None => {
                let envoy = Envoy::start(&local_demo_bootstrap())
                    .unwrap_or_else(|log| panic!("envoy/demo.yaml did not start: {log}"));
                Gateway {
                    host: "127.0.0.1".into(),
                    port: envoy.port,
                    admin: ("127.0.0.1".into(), envoy.admin_port),
                    local: Some(envoy),
                }
            }
        }
    }

    /// True for the composed gateway (another host, another network).
    pub fn is_composed(&self) -> bool {
        self.local.is_none()
    }

    /// Envoy's log, when this test owns the Envoy (a composed gateway's log
    /// is checked by `make compose-test` through `docker-compose logs`).
    pub fn log(&self) -> Option<String> {
        self.local.as_ref().map(Envoy::log)
    }

    /// The first stat whose name ends with `suffix`, as `(name, value)`.
    pub fn stat_ending(&self, suffix: &str) -> Option<(String, u64)> {
        crate::stat_ending_at((self.admin.0.as_str(), self.admin.1), suffix)
    }

    /// The `host:port` the config's function URIs name, which the function
    /// sees as `host` (`functions:8080` in compose, the emulator's in the demo).
    pub fn functions_authority(&self) -> &'static str {
        if self.is_composed() {
            "functions:8080"
        } else {
            "127.0.0.1:8090"
        }
    }
}

fn composed_target() -> Option<(String, u16, (String, u16))> {
    let gateway = std::env::var("FAAS_GATEWAY").ok()?;
    let (host, port) = split_host_port(&gateway)
        .unwrap_or_else(|| panic!("FAAS_GATEWAY={gateway:?}: expected host:port"));
    let admin = match std::env::var("FAAS_GATEWAY_ADMIN") {
        Ok(a) => split_host_port(&a)
            .unwrap_or_else(|| panic!("FAAS_GATEWAY_ADMIN={a:?}: expected host:port")),
        Err(_) => (host.clone(), 9901),
    };
    Some((host, port, admin))
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

/// Waits (once per test process, bounded) for the composed gateway's
/// `/ready`: compose starts services in order but not in readiness.
fn composed_ready(admin: &(String, u16)) -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let deadline = Instant::now() + COMPOSED_READY_WITHIN;
            loop {
                let last = match admin_get((admin.0.as_str(), admin.1), "/ready") {
                    Ok(r) if r.status == 200 => return Ok(()),
                    Ok(r) => format!("/ready answered {}: {}", r.status, r.text()),
                    Err(e) => e.to_string(),
                };
                if Instant::now() > deadline {
                    return Err(format!(
                        "the composed gateway's admin {}:{} was not ready within {:?}: {last}",
                        admin.0, admin.1, COMPOSED_READY_WITHIN
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .clone()
}

/// A shipped config file (`envoy/<name>`) as JSON.
pub fn shipped_config(name: &str) -> Value {
    let path = repo_root().join("envoy").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// `envoy/demo.yaml` for a test's own Envoy: listener and admin on port 0,
/// `functions` and `gcp_metadata` on the in-process emulator (it serves the
/// metadata server's ID tokens too), `nowhere` on a dead port, module
/// paths absolute. Routes, filters and plugin configs stay as shipped.
pub fn local_demo_bootstrap() -> Value {
    local_bootstrap("demo.yaml", |cluster| match cluster {
        "functions" | "gcp_metadata" => emulator().port(),
        "nowhere" => dead_port(),
        other => panic!("envoy/demo.yaml: unexpected cluster {other:?}"),
    })
}

/// A shipped config (`envoy/<name>`) for a test's own Envoy: listeners and
/// admin on port 0, each cluster's endpoints on `port_of(cluster name)`,
/// module paths absolute; everything else as shipped.
pub fn local_bootstrap(name: &str, port_of: impl Fn(&str) -> u16) -> Value {
    let mut config = shipped_config(name);
    set_port(&mut config["admin"]["address"], 0);
    for listener in as_array_mut(&mut config["static_resources"]["listeners"]) {
        set_port(&mut listener["address"], 0);
    }
    for cluster in as_array_mut(&mut config["static_resources"]["clusters"]) {
        let name = cluster["name"].as_str().unwrap_or_default().to_string();
        let mut endpoints = endpoints_mut(cluster)
            .into_iter()
            .filter(|e| e["endpoint"]["address"].get("socket_address").is_some())
            .peekable();
        if endpoints.peek().is_none() {
            continue; // an internal listener's cluster: no port to move
        }
        let port = port_of(&name);
        for endpoint in endpoints {
            set_port(&mut endpoint["endpoint"]["address"], port);
        }
    }
    absolute_module_paths(&mut config);
    config
}

/// A shipped copy-paste config made to run on loopback: the first
/// listener on 127.0.0.1, every cluster STATIC on 127.0.0.1 (its port
/// already set by [`local_bootstrap`]) in plain HTTP, without TLS, DNS or
/// SNI options. What the function host and its certificate would be is the
/// emulator's business (it routes by `Host`).
pub fn on_loopback(mut config: Value) -> Value {
    config["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] =
        "127.0.0.1".into();
    for cluster in as_array_mut(&mut config["static_resources"]["clusters"]) {
        cluster["type"] = "STATIC".into();
        if let Some(c) = cluster.as_object_mut() {
            c.remove("dns_lookup_family");
            c.remove("transport_socket");
        }
        // `get_mut`: indexing would add the keys to a cluster without them.
        if let Some(options) = cluster
            .get_mut("typed_extension_protocol_options")
            .and_then(|o| o.get_mut("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"))
            .and_then(Value::as_object_mut)
        {
            options.remove("upstream_http_protocol_options");
        }
        for endpoint in endpoints_mut(cluster) {
            endpoint["endpoint"]["address"]["socket_address"]["address"] = "127.0.0.1".into();
        }
    }
    config
}

/// `envoy/compose.yaml` with demo.yaml's addresses: the only differences the
/// two files are allowed to have (listen on all interfaces in the container,
/// the emulator by service name, DNS clusters for it).
pub fn compose_as_demo(mut config: Value) -> Value {
    let loopback = |address: &mut Value| {
        if address["socket_address"]["address"] == "0.0.0.0" {
            address["socket_address"]["address"] = "127.0.0.1".into();
        }
    };
    loopback(&mut config["admin"]["address"]);
    for listener in as_array_mut(&mut config["static_resources"]["listeners"]) {
        loopback(&mut listener["address"]);
    }
    for cluster in as_array_mut(&mut config["static_resources"]["clusters"]) {
        if cluster["type"] == "STRICT_DNS" {
            cluster["type"] = "STATIC".into();
            if let Some(c) = cluster.as_object_mut() {
                c.remove("dns_lookup_family");
            }
        }
        for endpoint in endpoints_mut(cluster) {
            let socket = &mut endpoint["endpoint"]["address"]["socket_address"];
            if socket["address"] == "functions" {
                socket["address"] = "127.0.0.1".into();
                if socket["port_value"] == 8080 {
                    socket["port_value"] = 8090.into();
                }
            }
        }
    }
    replace_in_strings(
        &mut config,
        "http://functions:8080/",
        "http://127.0.0.1:8090/",
    );
    config
}

fn as_array_mut(v: &mut Value) -> Vec<&mut Value> {
    v.as_array_mut()
        .map(|a| a.iter_mut().collect())
        .unwrap_or_default()
}

fn endpoints_mut(cluster: &mut Value) -> Vec<&mut Value> {
    as_array_mut(&mut cluster["load_assignment"]["endpoints"])
        .into_iter()
        .flat_map(|e| as_array_mut(&mut e["lb_endpoints"]))
        .collect()
}

/// Moves a socket address to `port`; internal listeners and their
/// endpoints (`envoy_internal_address`) have none and stay as they are.
fn set_port(address: &mut Value, port: u16) {
    if let Some(socket) = address.get_mut("socket_address") {
        socket["port_value"] = port.into();
    }
}

fn absolute_module_paths(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let module = value
                    .as_str()
                    .and_then(|s| s.strip_prefix("dist/"))
                    .and_then(|s| s.strip_suffix(".wasm"));
                match module {
                    Some(name) if key == "filename" => {
                        *value = wasm(name).display().to_string().into()
                    }
                    _ => absolute_module_paths(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(absolute_module_paths),
        _ => {}
    }
}

fn replace_in_strings(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Object(map) => map
            .values_mut()
            .for_each(|x| replace_in_strings(x, from, to)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|x| replace_in_strings(x, from, to)),
        _ => {}
    }
}
