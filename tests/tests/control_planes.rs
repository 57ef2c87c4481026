//! The filters in the shapes Istio and Envoy Gateway deliver them, in real
//! Envoy 1.40: the exact extension config, the filter names, no
//! `allow_on_headers_stop_iteration`, and the holding filters from the
//! shipped manifests in `deploy/` (read from those files, so what is tested
//! is what users apply). Each layout must answer GET, POST 1 KiB, POST
//! 3 MiB, chunked and HTTP/2 requests, pass a route without config through,
//! and never open a connection to the function route's own cluster.

use integration_tests::*;
use serde_json::{json, Value};

const FUNCTION_ROUTE: &str = "hello";
const ISTIO_PLUGIN_URL: &str = "oci://registry.example.com/envoy-faas/openfunction:0.1.0";
/// Istio up to 1.29: the ECDS resource and plugin names of a WasmPlugin.
const ISTIO_1_29_NAME: &str = "extensions.istio.io/wasmplugin/istio-ingress.openfunction";
const ISTIO_1_29_CONFIG_NAME: &str = "istio-ingress.openfunction";

/// The plugin config the tests deliver: the shipped WasmPlugin's layout,
/// with the function on the loopback emulator.
fn plugin_config(layout: &str) -> Value {
    json!({
        "body_layout": layout,
        "routes": {FUNCTION_ROUTE: {
            "function_uri": "http://fn.local/echo",
            "cluster": "functions",
            "strip_prefix": "/hello"
        }}
    })
}

/// Routes: the function route (its own cluster records connections, and
/// carries `per_route` filter configs), and `/plain/` to the emulator.
fn routes(recorder_cluster: &str, per_route: Value) -> Vec<Value> {
    let mut function = route(FUNCTION_ROUTE, "/hello", recorder_cluster);
    if per_route.as_object().is_some_and(|m| !m.is_empty()) {
        function["typed_per_filter_config"] = per_route;
    }
    vec![
        function,
        json!({"name": "plain", "match": {"prefix": "/plain/"},
               "route": {"cluster": "functions", "prefix_rewrite": "/echo/"}}),
    ]
}

fn clusters(recorder: &RecordingUpstream) -> Vec<Value> {
    vec![
        cluster("functions", emulator().port()),
        cluster("route-upstream", recorder.port),
    ]
}

fn with_listener_buffer_limit(mut bootstrap: Value, bytes: u64) -> Value {
    bootstrap["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"] =
        json!(bytes);
    bootstrap
}

fn body(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Starts Envoy with `filters` before the router (the listener at
/// `listener_limit` bytes of buffer) and runs [`assert_function_layout`].
fn serve_layout(
    recorder: &RecordingUpstream,
    per_route: Value,
    filters: Vec<Value>,
    listener_limit: u64,
) {
    let boot = bootstrap(
        routes("route-upstream", per_route),
        filters,
        clusters(recorder),
    );
    let boot = with_listener_buffer_limit(boot, listener_limit);
    let envoy = Envoy::start(&boot).expect("envoy starts");
    assert_function_layout(&envoy, recorder);
}

/// A POST on `target` reached the emulator's echo at `/echo/x`, body and all.
fn assert_passes_through(envoy: &Envoy, target: &str) {
    let r = http1(envoy.port, "POST", target, &[], b"through");
    assert_eq!(r.status, 200, "pass-through {target}: {}", r.text());
    let echo = r.echo();
    assert_eq!(
        (echo.path.as_str(), echo.body.as_slice()),
        ("/echo/x", &b"through"[..])
    );
}

/// What every supported layout must do.
fn assert_function_layout(envoy: &Envoy, recorder: &RecordingUpstream) {
    let get = get(envoy.port, "/hello/world?x=1");
    assert_eq!(get.status, 200, "GET: {}", get.text());
    let echo = get.echo();
    assert_eq!(
        (echo.method.as_str(), echo.path.as_str()),
        ("GET", "/echo/world")
    );

    for size in [1024, 3 * 1024 * 1024] {
        let sent = body(size);
        let r = http1(
            envoy.port,
            "POST",
            "/hello",
            &[("content-type", "application/octet-stream")],
            &sent,
        );
        assert_eq!(r.status, 200, "POST {size} bytes: {}", r.text());
        let echo = r.echo();
        assert_eq!(echo.method, "POST");
        assert!(echo.body == sent, "POST {size} bytes: body changed");
    }

    let chunks: [&[u8]; 3] = [b"first,", b"second,", b"third"];
    let r = post_chunked(envoy.port, "/hello/chunked", &chunks);
    assert_eq!(r.status, 200, "chunked: {}", r.text());
    assert_eq!(r.echo().body, b"first,second,third");

    let sent = body(64 * 1024);
    let r = http2(envoy.port, "POST", "/hello/h2", &[], &sent);
    assert_eq!(r.status, 200, "HTTP/2 POST: {}", r.text());
    assert!(r.echo().body == sent, "HTTP/2 POST: body changed");
    let r = http2(envoy.port, "GET", "/hello/h2", &[], b"");
    assert_eq!(r.status, 200, "HTTP/2 GET: {}", r.text());

    // A route without an entry goes to its own cluster, body included.
    assert_passes_through(envoy, "/plain/x");

    assert_eq!(
        recorder.connections(),
        0,
        "the function route's own cluster was contacted"
    );
}

/// What Istio delivers for the `openfunction` WasmPlugin, written as the
/// file-based ECDS resource `name` (plugin name `config_name`); returns the
/// HCM entry that discovers it. `flag` adds `allow_on_headers_stop_iteration`
/// (an EnvoyFilter-ADDed config; Istio itself never sets it).
fn istio_delivers(
    scratch: &ScratchDir,
    name: &str,
    config_name: &str,
    plugin: Option<&Value>,
    env: &[(&str, &str)],
    flag: bool,
) -> Value {
    let module = istio_agent_copy(&scratch.0, "openfunction", ISTIO_PLUGIN_URL);
    let mut resource = istio_wasm(config_name, &module, plugin, env);
    if flag {
        resource["typed_config"]["config"]["allow_on_headers_stop_iteration"] = json!(true);
    }
    write_ecds(&scratch.0, name, &resource);
    istio_ecds_filter(name, &scratch.0)
}

/// The LDS side of the shipped buffer-filter EnvoyFilter: the filter it
/// inserts before the router, and the per-route config that enables it.
fn shipped_buffer_holding_filter() -> (Value, Value) {
    let ef = manifest_kind(
        "deploy/istio/holding-filter-envoyfilter.yaml",
        "EnvoyFilter",
    );
    let patches = ef["spec"]["configPatches"].as_array().expect("patches");
    let http_filter = patches
        .iter()
        .find(|p| p["applyTo"] == "HTTP_FILTER")
        .expect("HTTP_FILTER patch");
    assert_eq!(http_filter["patch"]["operation"], "INSERT_BEFORE");
    assert_eq!(
        http_filter["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
        "envoy.filters.http.router"
    );
    let route = patches
        .iter()
        .find(|p| p["applyTo"] == "HTTP_ROUTE")
        .expect("HTTP_ROUTE patch");
    assert_eq!(
        route["match"]["routeConfiguration"]["vhost"]["route"]["name"],
        FUNCTION_ROUTE
    );
    (
        http_filter["patch"]["value"].clone(),
        route["patch"]["value"]["typed_per_filter_config"].clone(),
    )
}

/// Istio up to 1.29: `extensions.istio.io/wasmplugin/<ns>.<name>`, the
/// buffer filter from the shipped EnvoyFilter, the listener at Envoy's
/// default 1 MiB buffer limit (the buffer filter raises it per route), and
/// the `ISTIO_META_*` variables left in the environment (as when the
/// agent's conversion is off).
#[test]
fn istio_wasmplugin_with_the_shipped_buffer_holding_filter() {
    let scratch = ScratchDir::new("istio-129");
    let recorder = RecordingUpstream::start();
    let env = [
        ("ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION", "12345"),
        ("ISTIO_META_WASM_IMAGE_PULL_POLICY", "IfNotPresent"),
    ];
    let wasm = istio_delivers(
        &scratch,
        ISTIO_1_29_NAME,
        ISTIO_1_29_CONFIG_NAME,
        Some(&plugin_config("holding_filter")),
        &env,
        false,
    );
    let (buffer, per_route) = shipped_buffer_holding_filter();
    serve_layout(&recorder, per_route, vec![wasm, buffer], 1024 * 1024);
}

/// Istio 1.30 and later: the WasmPlugin arrives as a translated
/// TrafficExtension (`…~istio-translated-wasmplugin`), and the holding
/// filter is the shipped Lua TrafficExtension, inlined in LDS under its
/// own resource name after the wasm filter. The listener limit is the
/// one the manifest tells users to set.
#[test]
fn istio_traffic_extension_with_the_shipped_lua_holding_filter() {
    let scratch = ScratchDir::new("istio-130");
    let recorder = RecordingUpstream::start();
    let config_name = "istio-ingress.openfunction~istio-translated-wasmplugin";
    let name = format!("extensions.istio.io/trafficextension/{config_name}");
    let wasm = istio_delivers(
        &scratch,
        &name,
        config_name,
        Some(&plugin_config("holding_filter")),
        &[],
        false,
    );
    let te = manifest_kind(
        "deploy/istio/holding-filter-lua-trafficextension.yaml",
        "TrafficExtension",
    );
    let lua = json!({
        "name": format!(
            "extensions.istio.io/trafficextension/istio-ingress.{}",
            te["metadata"]["name"].as_str().expect("name")
        ),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": te["spec"]["lua"]["inlineCode"]}
        }
    });
    serve_layout(&recorder, json!({}), vec![wasm, lua], 8 * 1024 * 1024);
}

/// Envoy Gateway: the wasm filter inline in the HCM, disabled, named
/// `envoy.filters.http.wasm/envoyextensionpolicy/<ns>/<policy>/wasm/<i>`,
/// with that as `vm_id` and the policy's name as plugin name, enabled on
/// the route by an empty `FilterConfig`. The buffer filter is what the
/// shipped BackendTrafficPolicy `requestBuffer` renders, moved after the
/// wasm filter by the shipped EnvoyProxy `filterOrder`. Listener limit:
/// Envoy Gateway's 32 KiB.
#[test]
fn envoy_gateway_policy_with_the_shipped_request_buffer_after_wasm() {
    let recorder = RecordingUpstream::start();
    let policy = manifest_kind(
        "deploy/envoy-gateway/envoyextensionpolicy-openfunction.yaml",
        "EnvoyExtensionPolicy",
    );
    let wasm_spec = &policy["spec"]["wasm"][0];
    assert_eq!(wasm_spec["config"]["body_layout"], "holding_filter");
    let holding = manifest("deploy/envoy-gateway/holding-filter.yaml");
    let kind = |k: &str| holding.iter().find(|d| d["kind"] == k).cloned().expect(k);
    let order = &kind("EnvoyProxy")["spec"]["filterOrder"][0];
    assert_eq!(
        (order["name"].as_str(), order["after"].as_str()),
        (
            Some("envoy.filters.http.buffer"),
            Some("envoy.filters.http.wasm")
        )
    );
    assert_eq!(
        kind("BackendTrafficPolicy")["spec"]["requestBuffer"]["limit"],
        "8Mi"
    );
    let limit = 8 * 1024 * 1024;

    let mut spec = wasm_spec.clone();
    let mut plugin = plugin_config("holding_filter")["routes"][FUNCTION_ROUTE].clone();
    plugin["body_layout"] = json!("holding_filter");
    spec["config"] = plugin;
    let (wasm_filter, (filter_name, enable)) =
        envoy_gateway_wasm(("default", "openfunction", 0), &spec, &wasm("openfunction"));
    let buffer = json!({
        "name": "envoy.filters.http.buffer",
        "disabled": true,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": limit
        }
    });
    let per_route = json!({
        filter_name: enable,
        "envoy.filters.http.buffer": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "buffer": {"max_request_bytes": limit}
        }
    });
    serve_layout(&recorder, per_route, vec![wasm_filter, buffer], 32 * 1024);
}

/// Plain Envoy, or a config an EnvoyFilter ADDs with the flag: the default
/// `stop_iteration` layout, no holding filter.
#[test]
fn the_flag_without_a_holding_filter() {
    let scratch = ScratchDir::new("flag");
    let recorder = RecordingUpstream::start();
    let mut config = plugin_config("stop_iteration");
    config
        .as_object_mut()
        .expect("object")
        .remove("body_layout"); // the default
    let name = "istio-ingress.envoy-faas";
    let wasm = istio_delivers(&scratch, name, name, Some(&config), &[], true);
    serve_layout(&recorder, json!({}), vec![wasm], 8 * 1024 * 1024);
}

/// Istio's WasmPlugin (1.29 names) with no flag and no holding filter.
fn istio_alone(scratch: &ScratchDir, plugin: &Value, recorder: &RecordingUpstream) -> Envoy {
    let wasm = istio_delivers(
        scratch,
        ISTIO_1_29_NAME,
        ISTIO_1_29_CONFIG_NAME,
        Some(plugin),
        &[],
        false,
    );
    let boot = bootstrap(
        routes("route-upstream", json!({})),
        vec![wasm],
        clusters(recorder),
    );
    Envoy::start(&boot).expect("envoy starts")
}

fn assert_misconfigured(r: &Response, fix: &str) {
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["error"], "body_layout_misconfigured", "{v}");
    assert_eq!(v["route"], FUNCTION_ROUTE);
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(fix),
        "the message names the fix: {message}"
    );
}

/// Neither the flag nor a holding filter, in the default layout: Envoy
/// withholds the body from the paused filter. Instead of hanging until a
/// stream timeout, the request gets a JSON error naming the fix, and so do
/// later ones at once; header-only requests still work.
#[test]
fn neither_flag_nor_holding_filter_answers_with_the_fix_instead_of_hanging() {
    let scratch = ScratchDir::new("no-flag");
    let recorder = RecordingUpstream::start();
    let envoy = istio_alone(&scratch, &plugin_config("stop_iteration"), &recorder);
    let started = std::time::Instant::now();
    let first = http1(envoy.port, "POST", "/hello", &[], b"a body");
    assert_misconfigured(&first, "allow_on_headers_stop_iteration: true");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "answered in {:?}, not by a stream timeout",
        started.elapsed()
    );
    let second = post_chunked(envoy.port, "/hello", &[b"x"]);
    assert_misconfigured(&second, "holding_filter");
    let get = get(envoy.port, "/hello/world");
    assert_eq!(get.status, 200, "GET still works: {}", get.text());
    assert!(
        envoy
            .log()
            .contains("allow_on_headers_stop_iteration: true"),
        "the log names the fix"
    );
    assert_eq!(recorder.connections(), 0);
}

/// `holding_filter` without a holding filter: the router gets the request.
/// When the route's cluster answers first (here it accepts and closes, so
/// the router answers 503 itself), the filter replaces that answer with
/// the fix. The recorder shows the route's cluster was contacted, which is
/// what the layout tests above assert never happens.
#[test]
fn holding_filter_layout_without_a_holding_filter_is_detected() {
    let scratch = ScratchDir::new("no-holding");
    let recorder = RecordingUpstream::start();
    let mut config = plugin_config("holding_filter");
    config["routes"][FUNCTION_ROUTE]["function_uri"] = json!("http://fn.local/delay/2000");
    let envoy = istio_alone(&scratch, &config, &recorder);
    let r = http1(envoy.port, "POST", "/hello", &[], b"a body");
    assert_misconfigured(&r, "envoy.filters.http.buffer");
    assert!(envoy.log().contains("needs a holding filter"), "logged");
    assert!(
        recorder.connections() >= 1,
        "the route's cluster was contacted"
    );
    // Header-only requests never reach the router: they still work.
    let get = get(envoy.port, "/hello");
    assert_eq!(get.status, 200, "GET: {}", get.text());
}

/// What Istio sends for a WasmPlugin without `pluginConfig` (an empty Any)
/// and Envoy Gateway for a policy without `config` (an empty string): the
/// filter loads, warns, and every request passes through to its route.
#[test]
fn an_empty_plugin_configuration_passes_every_request_through() {
    let scratch = ScratchDir::new("empty");
    let wasm = istio_delivers(
        &scratch,
        ISTIO_1_29_NAME,
        ISTIO_1_29_CONFIG_NAME,
        None,
        &[],
        false,
    );
    let boot = bootstrap(
        vec![
            json!({"name": FUNCTION_ROUTE, "match": {"prefix": "/hello"},
                    "route": {"cluster": "functions", "prefix_rewrite": "/echo"}}),
        ],
        vec![wasm],
        vec![cluster("functions", emulator().port())],
    );
    let envoy = Envoy::start(&boot).expect("envoy starts");
    assert_passes_through(&envoy, "/hello/x");
    assert!(
        envoy.log().contains("the plugin configuration is empty"),
        "the empty config is logged"
    );
}

/// The virtual hosts Istio renders at a gateway for a shipped
/// VirtualService (http routes only): one per host (`api.example.com`
/// stands for the client's host, `gateway.test`), each match of an http
/// route its own Envoy route under the http route's name, with the
/// destination's `outbound|<port>||<host>` cluster, the timeout, retries
/// and header removals. `extra` routes go to the client's virtual host.
fn istio_virtual_hosts(vs: &Value, extra: Vec<Value>) -> Vec<Value> {
    let mut routes = Vec::new();
    for http in vs["spec"]["http"].as_array().expect("http routes") {
        let destination = &http["route"][0]["destination"];
        let cluster = format!(
            "outbound|{}||{}",
            destination["port"]["number"],
            destination["host"].as_str().expect("host")
        );
        let mut action = json!({"cluster": cluster});
        if let Some(t) = http["timeout"].as_str() {
            action["timeout"] = json!(t);
        }
        if http["retries"].is_object() {
            action["retry_policy"] = json!({
                "retry_on": http["retries"]["retryOn"],
                "num_retries": http["retries"]["attempts"],
                "per_try_timeout": http["retries"]["perTryTimeout"],
            });
        }
        for m in http["match"].as_array().expect("matches") {
            let mut matcher = json!({"prefix": m["uri"]["prefix"].as_str().unwrap_or("/")});
            if let Some(headers) = m["headers"].as_object() {
                let list: Vec<Value> = headers
                    .iter()
                    .map(|(name, v)| json!({"name": name, "string_match": {"exact": v["exact"]}}))
                    .collect();
                matcher["headers"] = json!(list);
            }
            let mut route = json!({"name": http["name"], "match": matcher, "route": action});
            if let Some(remove) = http["headers"]["request"]["remove"].as_array() {
                route["request_headers_to_remove"] = json!(remove);
            }
            routes.push(route);
        }
    }
    vs["spec"]["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            let host = h
                .as_str()
                .expect("host")
                .replace("api.example.com", "gateway.test");
            let mut list = routes.clone();
            if host == "gateway.test" {
                list.extend(extra.clone());
            }
            json!({"name": format!("{host}:80"), "domains": [host, format!("{host}:*")],
                   "routes": list})
        })
        .collect()
}

fn with_virtual_hosts(mut boot: Value, hosts: Vec<Value>) -> Value {
    boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["route_config"]["virtual_hosts"] = json!(hosts);
    boot
}

/// A cluster of a dead endpoint and then the emulator (round robin, one
/// worker): only the router's retries make every request succeed.
fn dead_then_emulator(name: &str) -> Value {
    cluster_of(name, &[dead_port(), emulator().port()])
}

/// Forwarding in place the way `deploy/istio/in-place-openfunction.yaml`
/// sets it up: the shipped WasmPlugin's config through Istio's ECDS shape
/// (no flag, no holding filter), the shipped VirtualService rendered as
/// Istio does (the route's twin, the function host's virtual host), at
/// Istio's default 1 MiB listener buffer limit.
#[test]
fn istio_in_place_with_the_shipped_virtualservice() {
    let path = "deploy/istio/in-place-openfunction.yaml";
    let scratch = ScratchDir::new("istio-in-place");
    let recorder = RecordingUpstream::start();
    let mut plugin = manifest_kind(path, "WasmPlugin")["spec"]["pluginConfig"].clone();
    // The function host stays; the path is the emulator's echo.
    plugin["routes"][FUNCTION_ROUTE]["function_uri"] = json!("https://fn.example.com/echo");
    let wasm = istio_delivers(
        &scratch,
        ISTIO_1_29_NAME,
        ISTIO_1_29_CONFIG_NAME,
        Some(&plugin),
        &[],
        false,
    );
    let plain = json!({"name": "plain", "match": {"prefix": "/plain/"},
        "route": {"cluster": "functions", "prefix_rewrite": "/echo/"}});
    let hosts = istio_virtual_hosts(&manifest_kind(path, "VirtualService"), vec![plain]);
    let boot = bootstrap(
        vec![],
        vec![wasm],
        vec![
            cluster("functions", emulator().port()),
            cluster("outbound|443||fn.example.com", emulator().port()),
        ],
    );
    let boot = with_listener_buffer_limit(with_virtual_hosts(boot, hosts), 1024 * 1024);
    let envoy = Envoy::start(&boot).expect("envoy starts");
    // GET, POST 1 KiB and 3 MiB (streamed past the 1 MiB limit), chunked, HTTP/2.
    assert_function_layout(&envoy, &recorder);
    // Only the in-place path checks for the twin-route header.
    let r = spoof_twin_header(envoy.port, "/hello", "hello");
    assert_error(&r, 400, "reserved_header", FUNCTION_ROUTE);
}

/// aws-lambda with IAM in place, signed bodies included, through the
/// shipped EnvoyFilter: its complete Wasm config (flag set) as the ECDS
/// resource the agent delivers (code rewritten to the local module; the
/// keys as `key_values`, where the gateway gives `host_env_keys`), and its
/// VirtualService rendered as Istio does. The emulator's Function URL
/// verifies every signature.
#[test]
fn istio_in_place_signed_bodies_with_the_shipped_envoyfilter() {
    let path = "deploy/istio/in-place-aws-lambda-envoyfilter.yaml";
    let scratch = ScratchDir::new("istio-in-place-aws");
    let ef = manifest_kind(path, "EnvoyFilter");
    let patches = ef["spec"]["configPatches"].as_array().expect("patches");
    let extension = patches
        .iter()
        .find(|p| p["applyTo"] == "EXTENSION_CONFIG")
        .expect("EXTENSION_CONFIG patch");
    let http_filter = patches
        .iter()
        .find(|p| p["applyTo"] == "HTTP_FILTER")
        .expect("HTTP_FILTER patch");
    let name = extension["patch"]["value"]["name"].as_str().expect("name");
    assert_eq!(http_filter["patch"]["value"]["name"], name);
    let mut resource = json!({"typed_config": extension["patch"]["value"]["typed_config"]});
    let config = &mut resource["typed_config"]["config"];
    assert_eq!(config["allow_on_headers_stop_iteration"], true);
    let url = config["vm_config"]["code"]["remote"]["http_uri"]["uri"]
        .as_str()
        .expect("uri")
        .to_string();
    let module = istio_agent_copy(&scratch.0, "aws-lambda", &url);
    config["vm_config"]["code"] = json!({"local": {"filename": module.display().to_string()}});
    let (key, secret, _) = faas_emulator::aws::KEYS[0];
    config["vm_config"]["environment_variables"] = json!({"key_values": {
        "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_EC2_METADATA_DISABLED": "true"}});
    let mut plugin: Value =
        serde_json::from_str(config["configuration"]["value"].as_str().expect("value"))
            .expect("plugin JSON");
    let function = &mut plugin["routes"]["orders"]["function_uri"];
    let host = function
        .as_str()
        .and_then(|u| u.strip_prefix("https://"))
        .expect("https URL")
        .trim_end_matches('/')
        .to_string();
    *function = json!(format!("https://{host}/echo"));
    config["configuration"]["value"] = json!(plugin.to_string());
    write_ecds(&scratch.0, name, &resource);
    let wasm = istio_ecds_filter(name, &scratch.0);
    let hosts = istio_virtual_hosts(&manifest_kind(path, "VirtualService"), vec![]);
    let cluster_name = format!("outbound|443||{host}");
    let boot = bootstrap(vec![], vec![wasm], vec![dead_then_emulator(&cluster_name)]);
    let boot = with_listener_buffer_limit(with_virtual_hosts(boot, hosts), 8 * 1024 * 1024);
    let envoy = Envoy::start(&boot).expect("envoy starts");
    for i in 0..3 {
        let r = get(envoy.port, "/orders/x");
        assert_eq!(r.status, 200, "GET {i}: {}", r.text());
        let sent = body(64 * 1024 + i);
        let r = http1(envoy.port, "POST", "/orders/x", &[], &sent);
        assert_eq!(r.status, 200, "POST {i}: {}", r.text());
        let echo = r.echo();
        assert_eq!(echo.path, "/echo/x");
        assert!(echo.body == sent, "POST {i}: body changed");
        let r = http2(envoy.port, "POST", "/orders/x", &[], &sent);
        assert_eq!(r.status, 200, "HTTP/2 POST {i}: {}", r.text());
    }
    assert!(
        envoy
            .stat(&format!("cluster.{cluster_name}.upstream_rq_retry"))
            .unwrap_or(0)
            >= 4
    );
}

/// Forwarding in place the way `deploy/envoy-gateway/in-place.yaml` sets it
/// up, rendered as Envoy Gateway 1.9 does: the wasm filter inline and
/// disabled, enabled on the HTTPRoute's routes; one virtual host per
/// hostname (`api.example.com` stands for the client's `gateway.test`);
/// routes named `httproute/<ns>/<name>/rule/<i>/match/<j>/<host>` in
/// Gateway API precedence (longest prefix first), each rule's own
/// `httproute/<ns>/<name>/rule/<i>` cluster; the listener at Envoy
/// Gateway's 32 KiB buffer limit. The plugin's `cluster` must be the
/// client rule's, or every request would be 500 forwarding_misconfigured.
#[test]
fn envoy_gateway_in_place_with_the_shipped_httproute() {
    let path = "deploy/envoy-gateway/in-place.yaml";
    let recorder = RecordingUpstream::start();
    let policy = manifest_kind(path, "EnvoyExtensionPolicy");
    let policy_name = policy["metadata"]["name"].as_str().expect("name");
    let filter_name =
        format!("envoy.filters.http.wasm/envoyextensionpolicy/default/{policy_name}/wasm/0");
    let mut plugin = policy["spec"]["wasm"][0]["config"].clone();
    plugin["function_uri"] = json!("https://fn.example.com/echo");
    let module = wasm("openfunction");
    let wasm_filter = json!({
        "name": filter_name,
        "disabled": true,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": policy["spec"]["wasm"][0]["name"],
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin.to_string()
                },
                "vm_config": {
                    "vm_id": format!("envoyextensionpolicy/default/{policy_name}/wasm/0"),
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module.display().to_string()}}
                }
            }
        }
    });
    let enabled = json!({&filter_name:
        {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}}});
    let retry = &manifest_kind(path, "BackendTrafficPolicy")["spec"]["retry"];
    let retry_on: Vec<&str> = retry["retryOn"]["triggers"]
        .as_array()
        .expect("triggers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let retry_policy = json!({"retry_on": retry_on.join(","), "num_retries": retry["numRetries"],
        "per_try_timeout": retry["perRetry"]["timeout"]});
    let route = manifest_kind(path, "HTTPRoute");
    let prefix = format!(
        "httproute/default/{}",
        route["metadata"]["name"].as_str().expect("name")
    );
    let mut clusters = vec![cluster("functions", emulator().port())];
    let mut hosts = Vec::new();
    for hostname in route["spec"]["hostnames"].as_array().expect("hostnames") {
        let hostname = hostname.as_str().expect("hostname");
        let mut routes = Vec::new();
        for (i, rule) in route["spec"]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .enumerate()
        {
            let cluster_name = format!("{prefix}/rule/{i}");
            if hosts.is_empty() {
                clusters.push(cluster(&cluster_name, emulator().port()));
            }
            let mut action = json!({"cluster": cluster_name, "retry_policy": retry_policy});
            if let Some(t) = rule["timeouts"]["request"].as_str() {
                action["timeout"] = json!(t);
            }
            for (j, m) in rule["matches"]
                .as_array()
                .expect("matches")
                .iter()
                .enumerate()
            {
                let value = m["path"]["value"].as_str().expect("path prefix");
                let mut matcher = if value == "/" {
                    json!({"prefix": "/"})
                } else {
                    json!({"path_separated_prefix": value})
                };
                if let Some(headers) = m["headers"].as_array() {
                    let list: Vec<Value> = headers
                        .iter()
                        .map(|h| {
                            let string_match = if h["type"] == "RegularExpression" {
                                json!({"safe_regex": {"regex": h["value"]}})
                            } else {
                                json!({"exact": h["value"]})
                            };
                            json!({"name": h["name"], "string_match": string_match})
                        })
                        .collect();
                    matcher["headers"] = json!(list);
                }
                let name = format!("{prefix}/rule/{i}/match/{j}/{}", hostname.replace('.', "_"));
                let mut r = json!({"name": name, "match": matcher, "route": action,
                                   "typed_per_filter_config": enabled});
                for f in rule["filters"].as_array().into_iter().flatten() {
                    if let Some(remove) = f["requestHeaderModifier"]["remove"].as_array() {
                        r["request_headers_to_remove"] = json!(remove);
                    }
                }
                routes.push((value.len(), r));
            }
        }
        // Gateway API precedence: the longest path prefix first.
        routes.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut list: Vec<Value> = routes.into_iter().map(|(_, r)| r).collect();
        let host = hostname.replace("api.example.com", "gateway.test");
        if host == "gateway.test" {
            list.push(json!({"name": "plain", "match": {"prefix": "/plain/"},
                "route": {"cluster": "functions", "prefix_rewrite": "/echo/"}}));
        }
        hosts.push(json!({"name": host, "domains": [host], "routes": list}));
    }
    let boot = bootstrap(vec![], vec![wasm_filter], clusters);
    let boot = with_listener_buffer_limit(with_virtual_hosts(boot, hosts), 32 * 1024);
    let envoy = Envoy::start(&boot).expect("envoy starts");
    assert_function_layout(&envoy, &recorder);
    let r = spoof_twin_header(envoy.port, "/hello", "x");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "reserved_header");
}
