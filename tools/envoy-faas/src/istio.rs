//! A plan as Istio manifests, the templates of `deploy/istio/` filled in:
//! a `WasmPlugin` per filter (holding-filter body layout, clusters named
//! `outbound|<port>||<host>`), a `ServiceEntry` and `DestinationRule` per
//! function host, `VirtualService` routes named as the plugin configs'
//! keys, and the holding filter (`EnvoyFilter`, Envoy's buffer filter) on
//! those routes. With `--forwarding route` the in-place layout of
//! `deploy/istio/in-place-openfunction.yaml`: each route's twin match
//! first, the function hosts served too, the route's timeout, and the
//! holding filter only where a body can still take the callout path.

use crate::model::{FunctionRoute, PathMatch};
use crate::plan::{Plan, Upstream};
use crate::yaml::{b, from_json, insert, map, n, s, seq};
use serde_yaml::Value;

#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    /// `namespace/name` of the Istio Gateway.
    pub gateway: String,
    /// The gateway workload's label, `key=value`.
    pub selector: (String, String),
    /// The OCI image version the WasmPlugins pull.
    pub version: String,
    /// `--forwarding route`: the plugin configs say `"forwarding": "route"`
    /// (set by the importer), and the VirtualServices carry the twins.
    pub in_place: bool,
}

/// Whether a route forwards in place (`"forwarding": "route"`).
fn in_place(route: &FunctionRoute) -> bool {
    route.config.get("forwarding").and_then(|v| v.as_str()) == Some("route")
}

/// Whether a request with a body on this route can still take the callout
/// path, and so needs the holding filter: callout routes, and in place the
/// routes whose credentials sign the body (SigV4: without the flag such a
/// request is called out).
fn may_call_out_with_a_body(route: &FunctionRoute) -> bool {
    !in_place(route)
        || route
            .config
            .get("authorization")
            .and_then(|a| a.get("iam"))
            .is_some()
}

fn metadata(name: &str, options: &Options) -> Value {
    map([("name", s(name)), ("namespace", s(&options.namespace))])
}

fn selector(options: &Options) -> Value {
    let mut labels = serde_yaml::Mapping::new();
    labels.insert(s(&options.selector.0), s(&options.selector.1));
    Value::Mapping(labels)
}

/// A host as a Kubernetes object name: `*.Fn.example.com` → `fn-example-com`.
fn dns_name(host: &str) -> String {
    let name: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.trim_matches('-').to_string()
}

/// `fn.example.com` + 443 → `fn-example-com-443`.
fn object_name(host: &str, port: u16) -> String {
    format!("{}-{port}", dns_name(host))
}

fn wasm_plugin(
    filter: crate::filters::Filter,
    config: &serde_json::Value,
    options: &Options,
) -> Value {
    let mut plugin_config = config.clone();
    if let Some(top) = plugin_config.as_object_mut() {
        // Istio never sets allow_on_headers_stop_iteration: the holding
        // filter below keeps the router waiting for the body.
        top.insert(
            "body_layout".into(),
            serde_json::Value::from("holding_filter"),
        );
    }
    map([
        ("apiVersion", s("extensions.istio.io/v1alpha1")),
        ("kind", s("WasmPlugin")),
        ("metadata", metadata(filter.name(), options)),
        (
            "spec",
            map([
                ("selector", map([("matchLabels", selector(options))])),
                (
                    "url",
                    s(format!(
                        "oci://${{REGISTRY}}/{}:{}",
                        filter.name(),
                        options.version
                    )),
                ),
                ("sha256", s(format!("${{{}}}", filter.digest_variable()))),
                ("imagePullPolicy", s("IfNotPresent")),
                ("phase", s("UNSPECIFIED_PHASE")),
                ("priority", n(10)),
                ("failStrategy", s("FAIL_CLOSE")),
                ("pluginConfig", from_json(&plugin_config)),
            ]),
        ),
    ])
}

fn service_entry(u: &Upstream, options: &Options) -> Value {
    let (protocol, port_name) = if u.tls {
        ("HTTPS", "https")
    } else {
        ("HTTP", "http")
    };
    map([
        ("apiVersion", s("networking.istio.io/v1")),
        ("kind", s("ServiceEntry")),
        ("metadata", metadata(&object_name(&u.host, u.port), options)),
        (
            "spec",
            map([
                ("hosts", seq(vec![s(&u.host)])),
                ("location", s("MESH_EXTERNAL")),
                ("resolution", s("DNS")),
                (
                    "ports",
                    seq(vec![map([
                        ("number", n(u64::from(u.port))),
                        ("name", s(format!("{port_name}-{}", u.port))),
                        ("protocol", s(protocol)),
                    ])]),
                ),
            ]),
        ),
    ])
}

fn destination_rule(u: &Upstream, options: &Options) -> Value {
    let mut http = map([(
        "idleTimeout",
        s(format!("{}s", u.idle_timeout_ms.div_ceil(1000))),
    )]);
    if !u.keepalive {
        insert(&mut http, "maxRequestsPerConnection", n(1));
    }
    let mut policy = map([("connectionPool", map([("http", http)]))]);
    if u.tls {
        insert(
            &mut policy,
            "tls",
            map([
                ("mode", s("SIMPLE")),
                ("sni", s(&u.host)),
                // ssl_verify: system roots, the name checked against the host.
                ("insecureSkipVerify", b(!u.verify)),
            ]),
        );
    }
    map([
        ("apiVersion", s("networking.istio.io/v1")),
        ("kind", s("DestinationRule")),
        ("metadata", metadata(&object_name(&u.host, u.port), options)),
        (
            "spec",
            map([("host", s(&u.host)), ("trafficPolicy", policy)]),
        ),
    ])
}

fn http_route(route: &FunctionRoute, upstream: Option<&Upstream>) -> Value {
    let matches: Vec<Value> = route
        .paths
        .iter()
        .map(|p| {
            let uri = match p {
                PathMatch::Exact(p) => map([("exact", s(p))]),
                PathMatch::Prefix(p) => map([("prefix", s(p))]),
                PathMatch::Regex(r) => map([("regex", s(r))]),
            };
            let mut m = map([("uri", uri)]);
            match route.methods.as_slice() {
                [] => {}
                [one] => insert(&mut m, "method", map([("exact", s(one))])),
                many => insert(
                    &mut m,
                    "method",
                    map([("regex", s(format!("^({})$", many.join("|"))))]),
                ),
            }
            m
        })
        .collect();
    // A callout route's is never contacted (the filter answers), but Istio
    // needs a destination; in place it is where the router sends.
    let destination = match upstream {
        Some(u) => map([
            ("host", s(&u.host)),
            ("port", map([("number", n(u64::from(u.port)))])),
        ]),
        None => map([("host", s("unknown"))]),
    };
    if !in_place(route) {
        return map([
            ("name", s(&route.name)),
            ("match", seq(matches)),
            ("route", seq(vec![map([("destination", destination)])])),
        ]);
    }
    // In place: the twin match first (the rewritten request, routed again
    // by the function's authority, carries the header), the header removed
    // on the way to the function, and the plugin's timeout as the route's.
    let twin = map([(
        "headers",
        map([("x-envoy-faas-route", map([("exact", s(&route.name))]))]),
    )]);
    let ms = route
        .config
        .get("timeout")
        .and_then(|v| v.as_u64())
        .unwrap_or(3000);
    map([
        ("name", s(&route.name)),
        ("match", seq(std::iter::once(twin).chain(matches).collect())),
        (
            "headers",
            map([(
                "request",
                map([("remove", seq(vec![s("x-envoy-faas-route")]))]),
            )]),
        ),
        ("route", seq(vec![map([("destination", destination)])])),
        ("timeout", s(format!("{}s", ms as f64 / 1000.0))),
    ])
}

/// VirtualServices, one per [`Plan::host_groups`] group (`*` for the
/// routes for any host): Istio's gateway picks the virtual host by name.
fn virtual_services(plan: &Plan, options: &Options) -> Vec<Value> {
    plan.host_groups()
        .into_iter()
        .map(|(host, group)| {
            let http: Vec<Value> = group
                .iter()
                .map(|r| http_route(r, plan.upstream_of(r)))
                .collect();
            let (name, host) = match host {
                Some(h) => (format!("functions-{}", dns_name(h)), h),
                None => ("functions".to_string(), "*"),
            };
            // In place the rewritten request is routed again by the
            // function's host: the VirtualService serves it too.
            let mut hosts = vec![host.to_string()];
            if host != "*" {
                for u in group
                    .iter()
                    .filter(|r| in_place(r))
                    .filter_map(|r| plan.upstream_of(r))
                {
                    if !hosts.contains(&u.host) {
                        hosts.push(u.host.clone());
                    }
                }
            }
            map([
                ("apiVersion", s("networking.istio.io/v1")),
                ("kind", s("VirtualService")),
                ("metadata", metadata(&name, options)),
                (
                    "spec",
                    map([
                        ("hosts", seq(hosts.into_iter().map(s).collect())),
                        ("gateways", seq(vec![s(&options.gateway)])),
                        ("http", seq(http)),
                    ]),
                ),
            ])
        })
        .collect()
}

/// `match` of the gateway's HTTP connection manager (`sub_filter`: one
/// of its HTTP filters).
fn hcm_match(sub_filter: Option<&str>) -> Value {
    let hcm = s("envoy.filters.network.http_connection_manager");
    let filter = match sub_filter {
        Some(name) => map([("name", hcm), ("subFilter", map([("name", s(name))]))]),
        None => map([("name", hcm)]),
    };
    map([
        ("context", s("GATEWAY")),
        (
            "listener",
            map([("filterChain", map([("filter", filter)]))]),
        ),
    ])
}

/// Path confinement (the book, "Path confinement"): normalised paths, merged
/// slashes, and %2F/%5C refused with 400, as the shipped Envoy configs.
fn path_confinement() -> Value {
    map([
        ("applyTo", s("NETWORK_FILTER")),
        ("match", hcm_match(None)),
        (
            "patch",
            map([
                ("operation", s("MERGE")),
                (
                    "value",
                    map([(
                        "typed_config",
                        map([
                            ("@type", s("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")),
                            ("normalize_path", b(true)),
                            ("merge_slashes", b(true)),
                            ("path_with_escaped_slashes_action", s("REJECT_REQUEST")),
                        ]),
                    )]),
                ),
            ]),
        ),
    ])
}

fn holding_filter(plan: &Plan, buffer_limit: u64, options: &Options) -> Value {
    let mut patches = vec![path_confinement(), map([
        ("applyTo", s("HTTP_FILTER")),
        ("match", hcm_match(Some("envoy.filters.http.router"))),
        (
            "patch",
            map([
                ("operation", s("INSERT_BEFORE")),
                (
                    "value",
                    map([
                        ("name", s("envoy.filters.http.buffer")),
                        // Off by default: other routes keep streaming.
                        ("disabled", b(true)),
                        (
                            "typed_config",
                            map([
                                ("@type", s("type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer")),
                                ("max_request_bytes", n(buffer_limit)),
                            ]),
                        ),
                    ]),
                ),
            ]),
        ),
    ])];
    // Routes forwarding in place stream their bodies: no holding filter.
    let mut names: Vec<&str> = plan
        .routes
        .iter()
        .filter(|r| may_call_out_with_a_body(r))
        .map(|r| r.name.as_str())
        .collect();
    names.dedup();
    for name in names {
        patches.push(map([
            ("applyTo", s("HTTP_ROUTE")),
            (
                "match",
                map([
                    ("context", s("GATEWAY")),
                    (
                        "routeConfiguration",
                        map([("vhost", map([("route", map([("name", s(name))]))]))]),
                    ),
                ]),
            ),
            (
                "patch",
                map([
                    ("operation", s("MERGE")),
                    (
                        "value",
                        map([(
                            "typed_per_filter_config",
                            map([(
                                "envoy.filters.http.buffer",
                                map([
                                    ("@type", s("type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute")),
                                    ("buffer", map([("max_request_bytes", n(buffer_limit))])),
                                ]),
                            )]),
                        )]),
                    ),
                ]),
            ),
        ]));
    }
    map([
        ("apiVersion", s("networking.istio.io/v1alpha3")),
        ("kind", s("EnvoyFilter")),
        ("metadata", metadata("envoy-faas-holding-filter", options)),
        (
            "spec",
            map([
                ("workloadSelector", map([("labels", selector(options))])),
                ("configPatches", seq(patches)),
            ]),
        ),
    ])
}

/// The manifests, in apply order.
pub fn manifests(plan: &Plan, options: &Options, buffer_limit: u64) -> Vec<Value> {
    let mut docs: Vec<Value> = Vec::new();
    for u in &plan.upstreams {
        docs.push(service_entry(u, options));
        docs.push(destination_rule(u, options));
    }
    for (filter, config) in &plan.plugin_configs {
        docs.push(wasm_plugin(*filter, config, options));
    }
    docs.push(holding_filter(plan, buffer_limit, options));
    docs.extend(virtual_services(plan, options));
    docs
}
