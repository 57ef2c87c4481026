//! Harness for the real-Envoy integration suite.
//!
//! - The function emulator runs in-process on a free port.
//! - Each test starts its own Envoy 1.40 (`.venv/bin/envoy`, or `$ENVOY_BIN`)
//!   with a bootstrap generated for it: listener and admin on port 0, a
//!   dynamic `--base-id`. Readiness is read from Envoy itself (the admin
//!   address file, then `/ready`), never from a sleep.
//! - Envoy's log is printed when a test fails, and the process is killed
//!   when the test ends.
//! - [`Gateway`] is the shipped demo gateway: a local Envoy with
//!   `envoy/demo.yaml`, or with `FAAS_GATEWAY=host:port` (and
//!   `FAAS_GATEWAY_ADMIN`) a running one, as `make compose-test` does with the
//!   composed `envoy` service.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod gateway;
pub mod jwt;
mod platform;
pub mod prometheus;
pub use gateway::{
    compose_as_demo, local_bootstrap, local_demo_bootstrap, on_loopback, shipped_config, Gateway,
};
pub use platform::{
    assert_one_fetch_per_period, assert_rotation_without_failures,
    assert_unreachable_and_logged_once, azure_identity_bootstrap, credentials_stat, end_outage,
    gcp_identity_bootstrap, outage_until_refused, platform_bootstrap, rotate_token_file,
    steady_traffic, token_dir, token_file_listener, AZURE_SOURCE_CLUSTERS,
    AZURE_TOKEN_FILE_CLUSTER, SOURCE_CLUSTERS, TOKEN_FILE_CLUSTER,
};

/// Every file under `dir` (recursively) whose extension is `extension`,
/// in path order.
pub fn files_under(dir: &std::path::Path, extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/envoy"))
}

/// The compiled filter, as `make build` leaves it (in `$FAAS_DIST` when set:
/// the suite container of `make compose-test` mounts `dist/` elsewhere).
pub fn wasm(name: &str) -> PathBuf {
    let dist = std::env::var_os("FAAS_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist"));
    let path = dist.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make build` first",
        path.display()
    );
    path
}

/// The `envoy-faas` command, as `make build` leaves it in `dist/`.
pub fn envoy_faas_bin() -> PathBuf {
    let path = repo_root().join("dist/envoy-faas");
    assert!(
        path.exists(),
        "{} is missing: run `make build` first",
        path.display()
    );
    path
}

/// Envoy's `--mode validate` on a config file: `Ok` with its log when it
/// accepts the config, `Err` with its log when it refuses it. Validation
/// loads the wasm modules and runs their `on_configure`.
pub fn envoy_validate(config: &std::path::Path) -> Result<String, String> {
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(config)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", envoy_bin().display()));
    verdict_of(&out)
}

/// A command's verdict: `Ok` with its stdout and stderr when it succeeded,
/// `Err` with them when it failed.
pub fn verdict_of(out: &std::process::Output) -> Result<String, String> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The in-process emulator (one per test binary).
pub fn emulator() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind emulator");
        faas_emulator::start_background(listener).expect("start emulator")
    })
}

/// A loopback port that refuses connections for the rest of the test
/// process: a socket is bound to it but never listens (the kernel answers
/// with a reset), and is held, so no other test's listener can take the port
/// (a released port can be, and a refused connection would become a 404).
pub fn dead_port() -> u16 {
    use socket2::{Domain, Socket, Type};
    static HELD: std::sync::Mutex<Vec<Socket>> = std::sync::Mutex::new(Vec::new());
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind a dead port");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("bound address")
        .port();
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(socket);
    port
}

/// A free loopback port for a server the test starts (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A STATIC loopback cluster.
pub fn cluster(name: &str, port: u16) -> Value {
    cluster_of(name, &[port])
}

/// A STATIC loopback cluster over several endpoints, in order (round robin:
/// with one worker, successive requests take them in turn).
pub fn cluster_of(name: &str, ports: &[u16]) -> Value {
    let endpoints: Vec<Value> = ports
        .iter()
        .map(|port| {
            json!({"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": port}}}})
        })
        .collect();
    json!({
        "name": name,
        "connect_timeout": "1s",
        "type": "STATIC",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]}
    })
}

/// The header the filter adds to a request it rewrote in place, which
/// leads Envoy's second routing to the route's twin.
pub const TWIN_ROUTE_HEADER: &str = "x-envoy-faas-route";

/// The in-place twin of route `name` (the book, "Forwarding in place"): any
/// path carrying the twin header with the route's name, sent by `action`,
/// the header removed on the way. Put it before the client's route.
pub fn twin_route(name: &str, action: Value) -> Value {
    json!({"name": name,
        "match": {"prefix": "/", "headers": [
            {"name": TWIN_ROUTE_HEADER, "string_match": {"exact": name}}]},
        "route": action,
        "request_headers_to_remove": [TWIN_ROUTE_HEADER]})
}

/// A client that sends the twin header itself (`value`) on `GET target`:
/// only the in-place path refuses it (400 `reserved_header`).
pub fn spoof_twin_header(to: impl Endpoint, target: &str, value: &str) -> Response {
    http1(to, "GET", target, &[(TWIN_ROUTE_HEADER, value)], b"")
}

/// A prefix route to a cluster.
pub fn route(name: &str, prefix: &str, cluster: &str) -> Value {
    json!({"name": name, "match": {"prefix": prefix}, "route": {"cluster": cluster}})
}

/// A `wasm_filter` entry without `allow_on_headers_stop_iteration`, as
/// Istio's WasmPlugin and Envoy Gateway render it.
pub fn without_flag(mut wasm: Value) -> Value {
    if let Some(config) = wasm["typed_config"]["config"].as_object_mut() {
        config.remove("allow_on_headers_stop_iteration");
    }
    wasm
}

/// Envoy's buffer filter, holding request bodies up to `max_bytes`: the
/// holding filter of `body_layout: holding_filter`.
pub fn buffer_filter(max_bytes: u64) -> Value {
    json!({"name": "envoy.filters.http.buffer", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
        "max_request_bytes": max_bytes}})
}

/// The wasm HTTP filter entry for the HCM, configured like Istio does
/// (a StringValue holding JSON).
pub fn wasm_filter(filter: &str, plugin_config: &Value) -> Value {
    wasm_filter_with_env(filter, plugin_config, &[])
}

/// [`wasm_filter`] with `vm_config.environment_variables` (Istio: `vmConfig.env`).
/// `AWS_EC2_METADATA_DISABLED=true` unless `env` says otherwise: no test VM
/// may ever try a real instance metadata address.
pub fn wasm_filter_with_env(filter: &str, plugin_config: &Value, env: &[(&str, &str)]) -> Value {
    let module = wasm(&filter.replace('-', "_"));
    let key_values: serde_json::Map<String, Value> = [("AWS_EC2_METADATA_DISABLED", "true")]
        .iter()
        .chain(env)
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": filter,
                "allow_on_headers_stop_iteration": true,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config.to_string()
                },
                "vm_config": {
                    "vm_id": filter,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module.display().to_string()}},
                    "environment_variables": {"key_values": key_values}
                }
            }
        }
    })
}

/// Envoy with `filter` in front of a prefix route per `(route name, prefix)`
/// to the `functions` cluster (the emulator), a `dead` cluster (nothing
/// listening), and `/plain/` routed straight to the emulator's echo.
pub fn start_filter(
    filter: &str,
    plugin: &Value,
    routes: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Result<Envoy, String> {
    let mut route_list: Vec<Value> = routes
        .iter()
        .map(|(n, p)| route(n, p, "functions"))
        .collect();
    route_list.push(json!({"name": "plain", "match": {"prefix": "/plain/"},
                           "route": {"cluster": "functions", "prefix_rewrite": "/echo/"}}));
    Envoy::start(&bootstrap(
        route_list,
        vec![wasm_filter_with_env(filter, plugin, env)],
        vec![
            cluster("functions", emulator().port()),
            cluster("dead", dead_port()),
        ],
    ))
}

/// An HTTP filter whose config comes from a watched ECDS file (how Istio
/// delivers WasmPlugins); write the file with [`write_ecds`].
pub fn ecds_filter(name: &str, dir: &std::path::Path) -> Value {
    json!({
        "name": name,
        "config_discovery": {
            "config_source": {"path_config_source": {
                "path": dir.join("ecds.json").display().to_string(),
                "watched_directory": {"path": dir.display().to_string()}
            }},
            "type_urls": ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
        }
    })
}

/// Atomically replaces the ECDS file with `filter`'s config (a [`wasm_filter`] value).
pub fn write_ecds(dir: &std::path::Path, name: &str, filter: &Value) {
    let doc = json!({"resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": name,
        "typed_config": filter["typed_config"]
    }]});
    let tmp = dir.join(".ecds.json.tmp");
    std::fs::write(&tmp, doc.to_string()).expect("write ecds");
    std::fs::rename(&tmp, dir.join("ecds.json")).expect("move ecds into place");
}

/// A bootstrap with one listener whose HCM runs `http_filters` then the router.
pub fn bootstrap(routes: Vec<Value>, http_filters: Vec<Value>, clusters: Vec<Value>) -> Value {
    let mut filters = http_filters;
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    json!({
        "node": {"id": "envoy-faas-test", "cluster": "envoy-faas-test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "per_connection_buffer_limit_bytes": 8 * 1024 * 1024,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "codec_type": "AUTO",
                        "route_config": {"virtual_hosts": [{"name": "vh", "domains": ["*"], "routes": routes}]},
                        "http_filters": filters
                    }
                }]}]
            }],
            "clusters": clusters
        }
    })
}

/// Polls `probe` every 20 ms until it yields a value; fails when `exited`
/// says the process behind it is gone or `within` passes. What is polled
/// is the other process's own signal (a file, `/ready`, a stat, a log
/// line), never a stand-in for one.
pub fn poll_until<T>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
    mut exited: impl FnMut() -> bool,
) -> Result<T, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if exited() {
            return Err(format!("exited while waiting for {what}"));
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `base` with the fields of `extra` added (or replaced); both objects.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(x)) = (base.as_object_mut(), extra) {
        b.extend(x);
    }
    base
}

/// A plugin config with one function route, `f`.
pub fn single_route(entry: Value) -> Value {
    json!({"routes": {"f": entry}})
}

/// [`start_filter`], or the test fails with Envoy's log.
pub fn start_or_panic(filter: &str, plugin: &Value, routes: &[(&str, &str)]) -> Envoy {
    start_filter(filter, plugin, routes, &[]).unwrap_or_else(|log| panic!("{log}"))
}

/// Asserts the filter's JSON error reply (status, content type, code and
/// route, a message) and returns its body.
pub fn assert_error(r: &Response, status: u16, code: &str, route: &str) -> Value {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["error"], code, "{v}");
    assert_eq!(v["route"], route, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v
}

/// One integration case, the shape of Envoy's own `runTest`: a request
/// and what the client must get. `error` expects the filter's JSON error.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub status: u16,
    pub error: Option<&'a str>,
}

impl<'a> Exchange<'a> {
    pub fn get(path: &'a str, status: u16) -> Exchange<'a> {
        Exchange {
            method: "GET",
            path,
            headers: &[],
            body: b"",
            status,
            error: None,
        }
    }

    pub fn failing(mut self, error: &'a str) -> Exchange<'a> {
        self.error = Some(error);
        self
    }
}

/// Sends `case` over HTTP/1.1 and HTTP/2, asserts the status (and the JSON
/// error on route `f`) on both, and returns the HTTP/1.1 response for the
/// case's own checks.
pub fn run_test(to: u16, case: &Exchange<'_>) -> Response {
    let h2 = http2(to, case.method, case.path, case.headers, case.body);
    let h1 = http1(to, case.method, case.path, case.headers, case.body);
    for (r, protocol) in [(&h1, "HTTP/1.1"), (&h2, "HTTP/2")] {
        assert_eq!(
            r.status,
            case.status,
            "{case:?} over {protocol}: {}",
            r.text()
        );
        if let Some(code) = case.error {
            assert_error(r, case.status, code, "f");
        }
    }
    h1
}

/// A running Envoy.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    pub admin_port: u16,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Envoy {
    /// Starts Envoy and waits until it is ready. `Err` carries Envoy's log
    /// when it refused the config or exited.
    pub fn start(bootstrap: &Value) -> Result<Envoy, String> {
        Envoy::start_with_workers(bootstrap, 1)
    }

    /// [`Envoy::start`] with `workers` worker threads (each has its own VM).
    pub fn start_with_workers(bootstrap: &Value, workers: u32) -> Result<Envoy, String> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("envoy-faas-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let config = dir.join("envoy.json");
        std::fs::write(&config, bootstrap.to_string()).map_err(|e| e.to_string())?;
        let admin_file = dir.join("admin-address");
        let log = std::fs::File::create(dir.join("envoy.log")).map_err(|e| e.to_string())?;
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config)
            .args([
                "--use-dynamic-base-id",
                "--concurrency",
                &workers.to_string(),
                "--log-level",
                "info",
            ])
            .arg("--admin-address-path")
            .arg(&admin_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", envoy_bin().display()))?;
        let mut envoy = Envoy {
            child,
            dir,
            port: 0,
            admin_port: 0,
        };
        envoy.wait_ready(&admin_file)?;
        Ok(envoy)
    }

    /// Envoy's resident memory now and its peak so far (`VmRSS`, `VmHWM`
    /// from /proc), in bytes.
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// Polls `probe` until it yields a value. Fails with Envoy's log when
    /// Envoy exits first or `within` passes. Polling reads Envoy's own
    /// signals (admin file, `/ready`, stats, its access log); it never
    /// stands in for them.
    pub fn poll<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut probe: impl FnMut(&Envoy) -> Option<T>,
    ) -> Result<T, String> {
        let envoy = std::cell::RefCell::new(self);
        poll_until(
            what,
            within,
            || probe(&envoy.borrow()),
            || matches!(envoy.borrow_mut().child.try_wait(), Ok(Some(_))),
        )
        .map_err(|why| format!("{why}\n--- envoy log ---\n{}", envoy.borrow().log()))
    }

    /// GET on the admin interface.
    fn admin(&self, path: &str) -> Option<Response> {
        admin_get(self.admin_port, path).ok()
    }

    fn wait_ready(&mut self, admin_file: &PathBuf) -> Result<(), String> {
        let start_up = Duration::from_secs(60);
        // 1. Envoy writes its admin address once the admin listener is bound.
        self.admin_port = self.poll("the admin address file", start_up, |_| {
            let text = std::fs::read_to_string(admin_file).ok()?;
            text.trim().rsplit(':').next()?.parse().ok()
        })?;
        // 2. `/ready` answers 200 once the listeners and the wasm VM are up.
        self.poll("/ready", start_up, |e| {
            e.admin("/ready").filter(|r| r.status == 200).map(|_| ())
        })?;
        // 3. The listener's bound port.
        let listeners = self
            .admin("/listeners?format=json")
            .ok_or("no /listeners")?;
        let v: Value = serde_json::from_slice(&listeners.body).map_err(|e| e.to_string())?;
        self.port = v["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("no listener port in /listeners")?;
        Ok(())
    }

    /// Waits until Envoy's log contains `text` (Envoy writes it
    /// asynchronously).
    pub fn wait_log(&mut self, text: &str) -> Result<(), String> {
        let what = format!("\"{text}\" in the log");
        self.poll(&what, Duration::from_secs(10), |e| {
            e.log().contains(text).then_some(())
        })
    }

    /// A counter or gauge from the admin `/stats` endpoint, by exact name.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stat_ending(name)
            .filter(|(full, _)| full == name)
            .map(|(_, v)| v)
    }

    /// The first stat whose name ends with `suffix`, as `(name, value)`.
    pub fn stat_ending(&self, suffix: &str) -> Option<(String, u64)> {
        stat_ending_at(self.admin_port, suffix)
    }

    /// Waits until a stat reaches `at_least`: Envoy applies file updates
    /// asynchronously, and the stat is its own signal that it did.
    pub fn wait_stat(&mut self, suffix: &str, at_least: u64) -> Result<(), String> {
        self.wait_stat_within(suffix, at_least, Duration::from_secs(20))
    }

    /// [`Envoy::wait_stat`] with a deadline of its own.
    pub fn wait_stat_within(
        &mut self,
        suffix: &str,
        at_least: u64,
        within: Duration,
    ) -> Result<(), String> {
        let what = format!("stat *{suffix} to reach {at_least}");
        self.poll(&what, within, |e| {
            e.stat_ending(suffix)
                .filter(|(_, v)| *v >= at_least)
                .map(|_| ())
        })
    }
}

/// GET on an Envoy admin interface (a local Envoy's or a gateway's).
pub fn admin_get(admin: impl Endpoint, path: &str) -> std::io::Result<Response> {
    let req = format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n");
    try_request(admin, req.as_bytes())
}

/// The first stat at `admin` whose name ends with `suffix`, as `(name, value)`.
pub fn stat_ending_at(admin: impl Endpoint, suffix: &str) -> Option<(String, u64)> {
    let r = admin_get(admin, &format!("/stats?filter={suffix}$")).ok()?;
    String::from_utf8_lossy(&r.body).lines().find_map(|line| {
        let (name, value) = line.split_once(": ")?;
        let value = value.trim().parse().ok()?;
        name.ends_with(suffix).then(|| (name.to_string(), value))
    })
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- envoy log ({}) ---\n{}", self.dir.display(), self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The first value of a header (names compared case-insensitively).
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers_in(headers, name).into_iter().next()
}

/// Every value of a header, in order.
pub fn headers_in<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        headers_in(&self.headers, name)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }
    /// The emulator's echo document.
    pub fn echo(&self) -> Echo {
        let v = self.json();
        Echo {
            method: v["method"].as_str().unwrap_or_default().into(),
            path: v["path"].as_str().unwrap_or_default().into(),
            query: v["query"].as_str().map(String::from),
            headers: v["headers"]
                .as_array()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            (
                                h[0].as_str().unwrap_or_default().into(),
                                h[1].as_str().unwrap_or_default().into(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: base64_decode(v["body_base64"].as_str().unwrap_or_default()),
        }
    }
}

/// What the emulator's echo function received.
#[derive(Debug, Clone)]
pub struct Echo {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Echo {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        headers_in(&self.headers, name)
    }
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = s.bytes().filter_map(val).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for c in sextets.chunks(4) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &v)| acc | (u32::from(v) << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..c.len().saturating_sub(1)]);
    }
    out
}

/// Where a request goes: a bare port is on loopback; a [`Gateway`] may be
/// another host (a compose service).
pub trait Endpoint {
    fn host_port(&self) -> (String, u16);
}

impl Endpoint for u16 {
    fn host_port(&self) -> (String, u16) {
        ("127.0.0.1".to_string(), *self)
    }
}

impl Endpoint for (&str, u16) {
    fn host_port(&self) -> (String, u16) {
        (self.0.to_string(), self.1)
    }
}

/// Sends raw bytes on a new connection and reads one response.
pub fn try_request(to: impl Endpoint, raw: &[u8]) -> std::io::Result<Response> {
    let (host, port) = to.host_port();
    let mut stream = TcpStream::connect((host.as_str(), port))?;
    // A safety net against a hung test, not a synchronisation.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(raw)?;
    read_response(&mut stream, raw.starts_with(b"HEAD "))
}

/// Reads one response; the answer to a HEAD has no body whatever its
/// framing headers say.
fn read_response(stream: &mut TcpStream, head: bool) -> std::io::Result<Response> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(n) = resp.parse(&buf).map_err(|e| bad(e.to_string()))? {
            let status = resp.code.unwrap_or(0);
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            if status == 100 {
                buf.drain(..n);
                continue;
            }
            let mut rest = buf[n..].to_vec();
            let find = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let body = if head || status == 204 || status == 304 {
                Vec::new()
            } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
                while rest.len() < len {
                    let k = stream.read(&mut chunk)?;
                    if k == 0 {
                        return Err(bad("truncated body".into()));
                    }
                    rest.extend_from_slice(&chunk[..k]);
                }
                rest.truncate(len);
                rest
            } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                loop {
                    if let Some(body) = dechunk(&rest) {
                        break body;
                    }
                    let k = stream.read(&mut chunk)?;
                    if k == 0 {
                        return Err(bad("truncated chunked body".into()));
                    }
                    rest.extend_from_slice(&chunk[..k]);
                }
            } else {
                stream.read_to_end(&mut rest)?;
                rest
            };
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        let k = stream.read(&mut chunk)?;
        if k == 0 {
            return Err(bad(format!("connection closed after {} bytes", buf.len())));
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

/// A complete chunked body, or `None` if more bytes are needed.
fn dechunk(data: &[u8]) -> Option<Vec<u8>> {
    let (body, complete) = dechunk_partial(data);
    complete.then_some(body)
}

/// An HTTP/1.1 request with the given headers and body (content-length framed).
pub fn http1(
    to: impl Endpoint,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw =
        format!("{method} {target} HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n")
            .into_bytes();
    for (n, v) in headers {
        raw.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        raw.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    try_request(to, &raw).unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

pub fn get(to: impl Endpoint, target: &str) -> Response {
    http1(to, "GET", target, &[], b"")
}

/// The same request over HTTP/2 (h2c) when `h2`, else over HTTP/1.1: for
/// the cases that must hold on both.
pub fn http_either(
    h2: bool,
    to: impl Endpoint,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    if h2 {
        http2(to, method, target, headers, body)
    } else {
        http1(to, method, target, headers, body)
    }
}

/// An HTTP/2 request over cleartext with prior knowledge (h2c).
pub fn http2(
    to: impl Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (host, port) = to.host_port();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.expect("h2 ready");
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("http://gateway.test{path}"));
        for (n, v) in headers {
            builder = builder.header(*n, *v);
        }
        let request = builder.body(()).expect("request");
        let (response, mut send) = client.send_request(request, body.is_empty()).expect("send");
        if !body.is_empty() {
            send.send_data(bytes::Bytes::copy_from_slice(body), true)
                .expect("send body");
        }
        let response = tokio::time::timeout(Duration::from_secs(30), response)
            .await
            .expect("h2 response in time")
            .expect("h2 response");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut stream = response.into_body();
        let mut body = Vec::new();
        while let Some(chunk) = stream.data().await {
            let chunk = chunk.expect("h2 data");
            let _ = stream.flow_control().release_capacity(chunk.len());
            body.extend_from_slice(&chunk);
        }
        Response {
            status,
            headers,
            body,
        }
    })
}

/// A program from the project's virtualenv (`make envoy`/`make moto` fill it).
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("FAAS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    venv.join("bin").join(name)
}

/// A moto server on loopback (a real SigV4-verifying Lambda endpoint),
/// prepared by `tests/moto/setup_moto.py` and with auth enforced.
pub struct Moto {
    child: Child,
    pub port: u16,
    /// The setup script's output: `invoker`, `nobody`, `session`, `function_arn`, `role_arn`.
    pub setup: Value,
    log: PathBuf,
}

impl Moto {
    pub fn start() -> Moto {
        let server = venv_bin("moto_server");
        assert!(
            server.exists(),
            "{} is missing: run `make moto`",
            server.display()
        );
        let port = free_port();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let log = std::env::temp_dir().join(format!("moto-{}-{n}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("moto log");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto {
            child,
            port,
            setup: Value::Null,
            log,
        };
        let ready = poll_until(
            "moto_server",
            Duration::from_secs(60),
            || {
                try_request(
                    port,
                    b"GET /moto-api/ HTTP/1.1\r\nhost: moto\r\nconnection: close\r\n\r\n",
                )
                .ok()
                .filter(|r| r.status == 200)
            },
            || matches!(moto.child.try_wait(), Ok(Some(_))),
        );
        if let Err(why) = ready {
            panic!("{why}:\n{}", moto.log());
        }
        let setup = Command::new(venv_bin("python"))
            .arg(repo_root().join("tests/moto/setup_moto.py"))
            .arg(format!("http://127.0.0.1:{port}"))
            .output()
            .expect("run setup_moto.py");
        assert!(
            setup.status.success(),
            "setup_moto.py failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        moto.setup = serde_json::from_slice(&setup.stdout).expect("setup JSON");
        moto
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- moto log ---\n{}", self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A loopback TCP server that accepts and counts connections, then closes
/// them: the route's own cluster, which a function route must never reach.
pub struct RecordingUpstream {
    pub port: u16,
    connections: std::sync::Arc<AtomicUsize>,
}

impl RecordingUpstream {
    pub fn start() -> RecordingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recording upstream");
        let port = listener.local_addr().expect("addr").port();
        let connections = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        RecordingUpstream { port, connections }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A loopback HTTP/1.1 CONNECT proxy (an egress proxy, as Kong's
/// `proxy_url` names one): records each CONNECT target, answers 200, then
/// relays bytes both ways until either side closes.
pub struct ConnectProxy {
    pub port: u16,
    targets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind connect proxy");
        let port = listener.local_addr().expect("addr").port();
        let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&targets);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = std::sync::Arc::clone(&seen);
                std::thread::spawn(move || Self::tunnel(client, &seen));
            }
        });
        ConnectProxy { port, targets }
    }

    /// The `host:port` of every CONNECT so far.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn tunnel(mut client: TcpStream, seen: &std::sync::Mutex<Vec<String>>) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match client.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let target = head
            .strip_prefix("CONNECT ")
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string);
        let Some(target) = target else {
            let _ =
                client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
            return;
        };
        if let Ok(mut t) = seen.lock() {
            t.push(target.clone());
        }
        let Ok(upstream) = TcpStream::connect(target.as_str()) else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
            return;
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_err()
        {
            return;
        }
        let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
            return;
        };
        let mut upstream = upstream;
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut upstream);
            let _ = upstream.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut u2, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Write);
        let _ = up.join();
    }
}

/// The documents of a shipped manifest (`deploy/...`), as JSON values.
pub fn manifest(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let yaml: serde_yaml::Value =
                serde::Deserialize::deserialize(doc).expect("YAML document");
            serde_json::to_value(yaml).expect("YAML as JSON")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The shipped manifest document of `kind` (the first one).
pub fn manifest_kind(path: &str, kind: &str) -> Value {
    manifest(path)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {path}"))
}

/// Where Istio's agent puts a fetched module:
/// `<data dir>/<sha256(url without tag)>/<checksum>.wasm`. The module is
/// copied there under `root` (a test directory standing in for `/`).
pub fn istio_agent_copy(root: &std::path::Path, filter: &str, url: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(wasm(&filter.replace('-', "_"))).expect("read module");
    let url_dir = hex(&Sha256::digest(url.as_bytes()));
    let dir = root.join("var/lib/istio/data").join(url_dir);
    std::fs::create_dir_all(&dir).expect("agent cache dir");
    let path = dir.join(format!("{}.wasm", hex(&Sha256::digest(&bytes))));
    std::fs::write(&path, bytes).expect("copy module");
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Wasm` filter config Istio delivers for a WasmPlugin after its agent
/// rewrote the code to a local file (istio.md §2.2): name, empty root_id,
/// the plugin config as a StringValue (an empty Any when there is none), v8,
/// no `vm_id`, FAIL_CLOSED, and no `allow_on_headers_stop_iteration`.
pub fn istio_wasm(
    config_name: &str,
    module: &std::path::Path,
    plugin_config: Option<&Value>,
    env: &[(&str, &str)],
) -> Value {
    let configuration = match plugin_config {
        Some(c) => json!({"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": c.to_string()}),
        None => json!({}),
    };
    let mut vm_config = json!({
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": module.display().to_string()}}
    });
    if !env.is_empty() {
        let key_values: serde_json::Map<String, Value> = env
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        vm_config["environment_variables"] = json!({"key_values": key_values});
    }
    json!({"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": config_name,
            "root_id": "",
            "configuration": configuration,
            "vm_config": vm_config,
            "failure_policy": "FAIL_CLOSED"
        }
    }})
}

/// What Envoy Gateway renders for the `index`-th `wasm` entry `spec` of
/// EnvoyExtensionPolicy `namespace/policy` (the module from its cache at
/// `module`): the HCM filter, inline and disabled, named
/// `envoy.filters.http.wasm/envoyextensionpolicy/<ns>/<policy>/wasm/<i>`
/// with that as `vm_id` (minus the prefix) and the entry's name as plugin
/// name, its `config` as a StringValue, no flag; and the route's
/// `typed_per_filter_config` entry (an empty `FilterConfig`) enabling it.
pub fn envoy_gateway_wasm(
    (namespace, policy, index): (&str, &str, usize),
    spec: &Value,
    module: &std::path::Path,
) -> (Value, (String, Value)) {
    let vm_id = format!("envoyextensionpolicy/{namespace}/{policy}/wasm/{index}");
    let name = format!("envoy.filters.http.wasm/{vm_id}");
    let filter = json!({
        "name": name,
        "disabled": true,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": spec["name"],
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": spec["config"].to_string()
                },
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module.display().to_string()}}
                }
            }
        }
    });
    let enable =
        json!({"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}});
    (filter, (name, enable))
}

/// The HCM entry Istio generates for a WasmPlugin: no config, only a
/// discovery reference (Wasm, or the agent's RBAC fallback); here from a
/// watched file instead of ADS. Write the resource with [`write_ecds`].
pub fn istio_ecds_filter(name: &str, dir: &std::path::Path) -> Value {
    json!({
        "name": name,
        "config_discovery": {
            "config_source": {
                "path_config_source": {
                    "path": dir.join("ecds.json").display().to_string(),
                    "watched_directory": {"path": dir.display().to_string()}
                },
                "initial_fetch_timeout": "0s",
                "resource_api_version": "V3"
            },
            "type_urls": [
                "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
            ]
        }
    })
}

/// A POST with a chunked body (`transfer-encoding: chunked`, one chunk per slice).
pub fn post_chunked(to: impl Endpoint, target: &str, chunks: &[&[u8]]) -> Response {
    let mut raw = format!(
        "POST {target} HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\
         content-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunks {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    try_request(to, &raw).unwrap_or_else(|e| panic!("chunked POST {target}: {e}"))
}

/// A temporary directory, removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> ScratchDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("envoy-faas-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback server that answers every connection with `reply`, raw bytes
/// (broken HTTP on purpose), then closes it. Returns its port.
pub fn raw_reply_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw server");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply);
        }
    });
    port
}

/// A function that streams: it answers every request with a chunked
/// answer of `content_type` made of `events` events (`data: <i>`), one
/// every `gap`, and ends after the last. Returns its port and when each
/// event of the latest answer was written.
pub fn streaming_server(
    events: usize,
    gap: Duration,
    content_type: &'static str,
) -> (u16, Arc<Mutex<Vec<Instant>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind streaming server");
    let port = listener.local_addr().expect("addr").port();
    let written = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&written);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                if let Ok(mut l) = log.lock() {
                    l.clear();
                }
                for i in 0..events {
                    let event = format!("data: {i}\n\n");
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    if stream.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push(Instant::now());
                    }
                    std::thread::sleep(gap);
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            });
        }
    });
    (port, written)
}

/// Sends `GET target` and reads the answer as it comes: when each of
/// `markers` first appeared in it (in order), and the whole answer.
pub fn arrivals(port: u16, target: &str, markers: &[String]) -> (Vec<Option<Instant>>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request =
        format!("GET {target} HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut seen = Vec::new();
    let mut at = vec![None; markers.len()];
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        let now = Instant::now();
        let text = String::from_utf8_lossy(&seen);
        for (slot, marker) in at.iter_mut().zip(markers) {
            if slot.is_none() && text.contains(marker.as_str()) {
                *slot = Some(now);
            }
        }
    }
    (at, String::from_utf8_lossy(&seen).into_owned())
}

/// A function for bulk transfers that holds nothing: `GET /bytes/<n>`
/// streams `n` bytes (content-length framed), any other request with a
/// `content-length` body is read and discarded, answered with the byte
/// count as text. One thread per connection; returns its port.
pub fn bulk_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind bulk server");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_bulk(stream));
        }
    });
    port
}

fn serve_bulk(mut stream: TcpStream) {
    let Some((head, mut extra)) = read_head(&mut stream) else {
        return;
    };
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    if let Some(n) = target
        .rsplit_once("/bytes/")
        .and_then(|(_, n)| n.parse::<u64>().ok())
    {
        let reply = format!("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n");
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
        let _ = write_pattern(&mut stream, n);
        return;
    }
    let length = header_value(&head, "content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut seen = extra.len() as u64;
    extra.clear();
    let mut buf = vec![0u8; 256 * 1024];
    while seen < length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n as u64,
        }
    }
    let body = seen.to_string();
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

/// Reads up to the end of an HTTP/1.1 head: the head as text, and the
/// bytes read past it.
fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).ok().filter(|&n| n > 0)?;
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            return Some((head, seen[end + 4..].to_vec()));
        }
        if seen.len() > 1024 * 1024 {
            return None;
        }
    }
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Writes `n` bytes of a repeating pattern in 256 KiB writes.
fn write_pattern(stream: &mut TcpStream, n: u64) -> std::io::Result<()> {
    let block: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let mut left = n;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        stream.write_all(&block[..k])?;
        left -= k as u64;
    }
    Ok(())
}

/// What a bulk exchange saw: the status, the body's size (bytes counted,
/// never held), its text when short, and how long it took.
#[derive(Debug)]
pub struct Bulk {
    pub status: u16,
    pub body_bytes: u64,
    pub text: String,
    pub elapsed: Duration,
}

/// Sends `method target` with a `body_bytes` pattern body (content-length,
/// none when 0) and reads the answer, counting its body.
pub fn bulk_exchange(port: u16, method: &str, target: &str, body_bytes: u64) -> Bulk {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n");
    if body_bytes > 0 {
        head.push_str(&format!("content-length: {body_bytes}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    if body_bytes > 0 {
        // An early answer (an error) may close the connection mid-body.
        let _ = write_pattern(&mut stream, body_bytes);
    }
    let (reply_head, extra) = read_head(&mut stream).expect("a response head");
    let status = reply_head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut kept = extra.clone();
    let mut count = extra.len() as u64;
    let mut buf = vec![0u8; 256 * 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        count += n as u64;
        if kept.len() < 4096 {
            kept.extend_from_slice(&buf[..n.min(4096)]);
        }
    }
    Bulk {
        status,
        body_bytes: count,
        text: String::from_utf8_lossy(&kept[..kept.len().min(4096)]).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// An answer read as it came (see [`gated_exchange`]): the response (its
/// body with the chunked framing removed) and how it ended.
#[derive(Debug)]
pub struct GatedAnswer {
    pub response: Response,
    /// How many markers arrived, in order, before the answer ended.
    pub markers_seen: usize,
    /// The answer ended with its final chunk (or its whole
    /// `content-length`), not with a reset or a cut connection.
    pub complete: bool,
}

impl std::ops::Deref for GatedAnswer {
    type Target = Response;
    fn deref(&self) -> &Response {
        &self.response
    }
}

/// Sends one HTTP/1.1 request and reads the answer as it comes. Each time
/// marker `i` first shows in the body, the emulator's gate `gate` is opened
/// once (`POST /_gate/<gate>`): a gated function writes its next chunk only
/// then. A gateway that held chunks back would stall the function, and the
/// read gives up after 10 s: streaming is proven without timing.
pub fn gated_exchange(
    port: u16,
    method: &str,
    target: &str,
    body: &[u8],
    gate: &str,
    markers: &[String],
) -> GatedAnswer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    let mut seen = 0;
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&raw);
        while seen < markers.len() && text.contains(markers[seen].as_str()) {
            seen += 1;
            let gate_path = format!("/_gate/{gate}");
            let _ = http1(emulator().port(), "POST", &gate_path, &[], b"");
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split..];
    let chunked = header_in(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let (body, complete) = if chunked {
        dechunk_partial(rest)
    } else {
        let length = header_in(&headers, "content-length").and_then(|v| v.parse::<usize>().ok());
        (rest.to_vec(), length.is_some_and(|n| n == rest.len()))
    };
    GatedAnswer {
        response: Response {
            status,
            headers,
            body,
        },
        markers_seen: seen,
        complete,
    }
}

/// The data of a chunked body so far, and whether its final chunk came.
pub fn dechunk_partial(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]).into_owned();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            return (body, false);
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if raw.len() < size + 2 {
            body.extend_from_slice(&raw[..raw.len().min(size)]);
            return (body, false);
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
