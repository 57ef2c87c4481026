//! A plan as a complete Envoy bootstrap: one listener, the function routes
//! (named: the plugin configs' keys), one wasm filter per filter in use,
//! one cluster per function host, and the credential clusters aws-lambda
//! needs. The same shape as the hand-written `envoy/*.yaml`.

use crate::filters::{CredentialCluster, Filter};
use crate::model::{EgressProxy, FunctionRoute, PathMatch};
use crate::plan::{Plan, Upstream};
use crate::yaml::{b, insert, map, n, s, seq};
use serde_yaml::Value;
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct Options {
    /// `address:port` of the listener.
    pub listen: (String, u16),
    /// `address:port` of the admin interface.
    pub admin: (String, u16),
    /// Where the `.wasm` modules are (`dist` by default).
    pub wasm_dir: String,
    /// The CA bundle verified TLS uses.
    pub trusted_ca: String,
    /// Testing: every function cluster goes to this address over plain
    /// HTTP instead of the function host (the Host header stays).
    pub upstream_override: Option<(String, u16)>,
    /// `--forwarding route`: the routes forward in place (the plugin
    /// configs say `"forwarding": "route"`, each route gets its twin).
    pub in_place: bool,
}

const MIB: u64 = 1024 * 1024;

fn address(host: &str, port: u16) -> Value {
    map([(
        "socket_address",
        map([("address", s(host)), ("port_value", n(u64::from(port)))]),
    )])
}

fn endpoint_cluster(name: &str, host: &str, port: u16, connect_timeout: &str) -> Value {
    let kind = if host.parse::<IpAddr>().is_ok() {
        "STATIC"
    } else {
        "LOGICAL_DNS"
    };
    let mut cluster = map([
        ("name", s(name)),
        ("type", s(kind)),
        ("connect_timeout", s(connect_timeout)),
    ]);
    if kind == "LOGICAL_DNS" {
        insert(&mut cluster, "dns_lookup_family", s("V4_PREFERRED"));
    }
    insert(
        &mut cluster,
        "load_assignment",
        map([
            ("cluster_name", s(name)),
            (
                "endpoints",
                seq(vec![map([(
                    "lb_endpoints",
                    seq(vec![map([(
                        "endpoint",
                        map([("address", address(host, port))]),
                    )])]),
                )])]),
            ),
        ]),
    );
    cluster
}

fn tls_socket(verify: bool, trusted_ca: &str) -> Value {
    let context = if verify {
        map([(
            "validation_context",
            map([("trusted_ca", map([("filename", s(trusted_ca))]))]),
        )])
    } else {
        map([])
    };
    map([
        ("name", s("envoy.transport_sockets.tls")),
        (
            "typed_config",
            map([
                (
                    "@type",
                    s("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"),
                ),
                ("common_tls_context", context),
            ]),
        ),
    ])
}

fn protocol_options(tls: bool, verify: bool, common: Value) -> Value {
    let mut options = map([(
        "@type",
        s("type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
    )]);
    if tls {
        // SNI from the callout's :authority, and its name checked against
        // the certificate: what ssl_verify means (the book, "How it fits").
        let upstream = if verify {
            map([("auto_sni", b(true)), ("auto_san_validation", b(true))])
        } else {
            map([("auto_sni", b(true))])
        };
        insert(&mut options, "upstream_http_protocol_options", upstream);
    }
    insert(&mut options, "common_http_protocol_options", common);
    insert(
        &mut options,
        "explicit_http_config",
        map([("http_protocol_options", map([]))]),
    );
    map([(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        options,
    )])
}

fn function_cluster(u: &Upstream, options: &Options) -> Value {
    let mut common = map([(
        "idle_timeout",
        s(format!("{}s", u.idle_timeout_ms.div_ceil(1000))),
    )]);
    if !u.keepalive {
        insert(&mut common, "max_requests_per_connection", n(1));
    }
    if let Some((host, port)) = &options.upstream_override {
        let mut cluster = endpoint_cluster(&u.cluster, host, *port, "2s");
        insert(
            &mut cluster,
            "typed_extension_protocol_options",
            protocol_options(false, false, common),
        );
        if let Some(proxy) = &u.proxy {
            insert(
                &mut cluster,
                "transport_socket",
                through_proxy(proxy, raw_socket()),
            );
        }
        return cluster;
    }
    let mut cluster = endpoint_cluster(&u.cluster, &u.host, u.port, "2s");
    insert(
        &mut cluster,
        "typed_extension_protocol_options",
        protocol_options(u.tls, u.verify, common),
    );
    let inner = if u.tls {
        Some(tls_socket(u.verify, &options.trusted_ca))
    } else {
        u.proxy.as_ref().map(|_| raw_socket())
    };
    if let Some(inner) = inner {
        let socket = match &u.proxy {
            Some(proxy) => through_proxy(proxy, inner),
            None => inner,
        };
        insert(&mut cluster, "transport_socket", socket);
    }
    cluster
}

fn raw_socket() -> Value {
    map([
        ("name", s("envoy.transport_sockets.raw_buffer")),
        (
            "typed_config",
            map([(
                "@type",
                s("type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"),
            )]),
        ),
    ])
}

/// `inner` (TLS to the function, or plain) through an HTTP/1.1 CONNECT
/// tunnel opened at `proxy` (Kong's `proxy_url`).
fn through_proxy(proxy: &EgressProxy, inner: Value) -> Value {
    map([
        ("name", s("envoy.transport_sockets.http_11_proxy")),
        (
            "typed_config",
            map([
                (
                    "@type",
                    s("type.googleapis.com/envoy.extensions.transport_sockets.http_11_proxy.v3.Http11ProxyUpstreamTransport"),
                ),
                ("default_proxy_address", address(&proxy.ip, proxy.port)),
                ("transport_socket", inner),
            ]),
        ),
    ])
}

fn credential_cluster(c: &CredentialCluster, options: &Options) -> Option<Value> {
    match c {
        CredentialCluster::Imds { cluster } => {
            Some(endpoint_cluster(cluster, "169.254.169.254", 80, "1s"))
        }
        CredentialCluster::Sts { cluster, authority } => {
            let (host, port) = authority
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .unwrap_or((authority.as_str(), 443));
            let mut sts = endpoint_cluster(cluster, host, port, "2s");
            insert(
                &mut sts,
                "typed_extension_protocol_options",
                protocol_options(true, true, map([("idle_timeout", s("60s"))])),
            );
            insert(
                &mut sts,
                "transport_socket",
                tls_socket(true, &options.trusted_ca),
            );
            Some(sts)
        }
        CredentialCluster::FromEnvironment { .. } => None,
    }
}

fn path_match(path: &PathMatch) -> (&'static str, Value) {
    match path {
        PathMatch::Exact(p) => ("path", s(p)),
        PathMatch::Prefix(p) => ("prefix", s(p)),
        PathMatch::Regex(r) => ("safe_regex", map([("regex", s(r))])),
    }
}

/// The Envoy routes of one function route (one per path).
/// Whether a route forwards in place (`"forwarding": "route"`).
fn in_place(route: &FunctionRoute) -> bool {
    route.config.get("forwarding").and_then(|v| v.as_str()) == Some("route")
}

/// The route action: the function's cluster; in place also the plugin's
/// `timeout` (the router's deadline then, default 3000 ms as the filter's).
fn route_action(route: &FunctionRoute, cluster: &str) -> Value {
    let mut action = map([("cluster", s(cluster))]);
    if in_place(route) {
        let ms = route
            .config
            .get("timeout")
            .and_then(|v| v.as_u64())
            .unwrap_or(3000);
        insert(
            &mut action,
            "timeout",
            s(format!("{}s", ms as f64 / 1000.0)),
        );
    }
    action
}

/// The in-place twin of a route (the book, "Forwarding in place"): first in
/// its virtual host, it catches the rewritten request by the header the
/// filter adds when Envoy routes it again, and removes that header.
fn twin_route(route: &FunctionRoute, cluster: &str) -> Value {
    twin(&route.name, route_action(route, cluster))
}

/// The twin of route `name`, with `action` as its route action.
pub fn twin(name: &str, action: Value) -> Value {
    map([
        ("name", s(name)),
        (
            "match",
            map([
                ("prefix", s("/")),
                (
                    "headers",
                    seq(vec![map([
                        ("name", s("x-envoy-faas-route")),
                        ("string_match", map([("exact", s(name))])),
                    ])]),
                ),
            ]),
        ),
        ("route", action),
        (
            "request_headers_to_remove",
            seq(vec![s("x-envoy-faas-route")]),
        ),
    ])
}

pub fn routes(route: &FunctionRoute, cluster: &str) -> Vec<Value> {
    route
        .paths
        .iter()
        .map(|path| {
            let (kind, value) = path_match(path);
            let mut matcher = map([(kind, value)]);
            if !route.methods.is_empty() {
                let regex = format!("^({})$", route.methods.join("|"));
                insert(
                    &mut matcher,
                    "headers",
                    seq(vec![map([
                        ("name", s(":method")),
                        (
                            "string_match",
                            map([("safe_regex", map([("regex", s(regex))]))]),
                        ),
                    ])]),
                );
            }
            map([
                ("name", s(&route.name)),
                ("match", matcher),
                ("route", route_action(route, cluster)),
            ])
        })
        .collect()
}

/// Virtual hosts, one per [`Plan::host_groups`] group (`*` for the routes
/// for any host). In place, Envoy routes the rewritten request again by
/// the function's authority: every virtual host carries every twin route
/// first, and when no `*` host would catch the function's authority, a
/// virtual host of the function authorities carries them.
pub fn virtual_hosts(plan: &Plan) -> Vec<Value> {
    // The function's own cluster: never contacted on a callout route (the
    // filter answers), the router's target in place.
    let cluster_of = |r: &FunctionRoute| {
        plan.upstream_of(r)
            .map(|u| u.cluster.clone())
            .unwrap_or_default()
    };
    let in_place_routes: Vec<&FunctionRoute> = plan.routes.iter().filter(|r| in_place(r)).collect();
    let twins = || -> Vec<Value> {
        in_place_routes
            .iter()
            .map(|r| twin_route(r, &cluster_of(r)))
            .collect()
    };
    let groups = plan.host_groups();
    let mut hosts: Vec<Value> = groups
        .iter()
        .map(|(host, group)| {
            let mut list = twins();
            list.extend(group.iter().flat_map(|r| routes(r, &cluster_of(r))));
            let (name, domain) = match host {
                Some(h) => (h.replace('*', "wildcard"), *h),
                None => ("functions".to_string(), "*"),
            };
            map([
                ("name", s(name)),
                ("domains", seq(vec![s(domain)])),
                ("routes", seq(list)),
            ])
        })
        .collect();
    if !groups.iter().any(|(host, _)| host.is_none()) {
        let mut authorities: Vec<String> = in_place_routes
            .iter()
            .filter_map(|r| plan.upstream_of(r).map(|u| u.authority.clone()))
            .filter(|a| !groups.iter().any(|(host, _)| *host == Some(a.as_str())))
            .collect();
        authorities.sort_unstable();
        authorities.dedup();
        if !authorities.is_empty() {
            hosts.push(map([
                ("name", s("envoy-faas-in-place")),
                ("domains", seq(authorities.into_iter().map(s).collect())),
                ("routes", seq(twins())),
            ]));
        }
    }
    hosts
}

/// The wasm filter entry for `filter` with its plugin `config`.
pub fn wasm_filter(filter: Filter, config: &serde_json::Value, wasm_dir: &str) -> Value {
    let json = serde_json::to_string_pretty(config).unwrap_or_default();
    map([
        ("name", s("envoy.filters.http.wasm")),
        (
            "typed_config",
            map([
                (
                    "@type",
                    s("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"),
                ),
                (
                    "config",
                    map([
                        ("name", s(filter.name())),
                        ("root_id", s(filter.name())),
                        ("allow_on_headers_stop_iteration", b(true)),
                        ("failure_policy", s("FAIL_RELOAD")),
                        (
                            "configuration",
                            map([
                                (
                                    "@type",
                                    s("type.googleapis.com/google.protobuf.StringValue"),
                                ),
                                ("value", s(json)),
                            ]),
                        ),
                        (
                            "vm_config",
                            map([
                                ("vm_id", s("envoy-faas")),
                                ("runtime", s("envoy.wasm.runtime.v8")),
                                (
                                    "code",
                                    map([(
                                        "local",
                                        map([(
                                            "filename",
                                            s(format!(
                                                "{}/{}",
                                                wasm_dir.trim_end_matches('/'),
                                                filter.wasm_file()
                                            )),
                                        )]),
                                    )]),
                                ),
                            ]),
                        ),
                    ]),
                ),
            ]),
        ),
    ])
}

fn stats_config() -> Value {
    let tag = |name: &str| {
        map([
            ("tag_name", s(name)),
            ("regex", s(format!("({name}=\\.=(.*?);\\.;)"))),
        ])
    };
    let buckets: Vec<Value> = [
        64u64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 8388608, 33554432,
    ]
    .into_iter()
    .map(n)
    .collect();
    let bucket = |prefix: &str| {
        map([
            ("match", map([("prefix", s(prefix))])),
            ("buckets", seq(buckets.clone())),
        ])
    };
    map([
        (
            "stats_tags",
            seq([
                "filter", "route", "outcome", "fault", "source", "version", "commit",
            ]
            .into_iter()
            .map(tag)
            .collect()),
        ),
        (
            "histogram_bucket_settings",
            seq(vec![
                bucket("wasmcustom.envoy_faas_request_body_bytes."),
                bucket("wasmcustom.envoy_faas_response_body_bytes."),
            ]),
        ),
    ])
}

fn access_log() -> Value {
    let fields = [
        ("start_time", "%START_TIME%"),
        ("request_id", "%REQ(X-REQUEST-ID)%"),
        ("method", "%REQ(:METHOD)%"),
        ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
        ("status", "%RESPONSE_CODE%"),
        ("duration_ms", "%DURATION%"),
        ("route", "%ROUTE_NAME%"),
        (
            "function_host",
            "%FILTER_STATE(wasm.faas.function_host:PLAIN)%",
        ),
        ("outcome", "%FILTER_STATE(wasm.faas.outcome:PLAIN)%"),
        ("error", "%FILTER_STATE(wasm.faas.error:PLAIN)%"),
        (
            "function_status",
            "%FILTER_STATE(wasm.faas.function_status:PLAIN)%",
        ),
        (
            "function_latency_ms",
            "%FILTER_STATE(wasm.faas.function_latency_ms:PLAIN)%",
        ),
    ];
    let mut format = serde_yaml::Mapping::new();
    for (k, v) in fields {
        format.insert(s(k), s(v));
    }
    map([
        ("name", s("envoy.access_loggers.stdout")),
        (
            "typed_config",
            map([
                (
                    "@type",
                    s("type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
                ),
                ("log_format", map([("json_format", Value::Mapping(format))])),
            ]),
        ),
    ])
}

/// The listener's buffer limit: above every route's `max_req_body_size`,
/// or Envoy answers a plain 413 before the filter sees the body.
pub fn buffer_limit(plan: &Plan) -> u64 {
    (plan.max_request_body.div_ceil(MIB) + 2) * MIB
}

/// The bootstrap, as YAML.
pub fn bootstrap(plan: &Plan, options: &Options) -> Value {
    let mut http_filters: Vec<Value> = plan
        .plugin_configs
        .iter()
        .map(|(filter, config)| wasm_filter(*filter, config, &options.wasm_dir))
        .collect();
    http_filters.push(map([
        ("name", s("envoy.filters.http.router")),
        (
            "typed_config",
            map([(
                "@type",
                s("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"),
            )]),
        ),
    ]));
    let hcm = map([
        (
            "@type",
            s("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
        ),
        ("stat_prefix", s("gateway")),
        ("access_log", seq(vec![access_log()])),
        ("codec_type", s("AUTO")),
        ("use_remote_address", b(true)),
        ("normalize_path", b(true)),
        ("merge_slashes", b(true)),
        // No %2F/%5C reaches a function (the book, "Path confinement").
        ("path_with_escaped_slashes_action", s("REJECT_REQUEST")),
        (
            "route_config",
            map([("virtual_hosts", seq(virtual_hosts(plan)))]),
        ),
        ("http_filters", seq(http_filters)),
    ]);
    let listener = map([
        ("name", s("gateway")),
        ("address", address(&options.listen.0, options.listen.1)),
        ("per_connection_buffer_limit_bytes", n(buffer_limit(plan))),
        (
            "filter_chains",
            seq(vec![map([(
                "filters",
                seq(vec![map([
                    ("name", s("envoy.filters.network.http_connection_manager")),
                    ("typed_config", hcm),
                ])]),
            )])]),
        ),
    ]);
    let mut clusters: Vec<Value> = plan
        .upstreams
        .iter()
        .map(|u| function_cluster(u, options))
        .collect();
    clusters.extend(
        plan.credential_clusters
            .iter()
            .filter_map(|c| credential_cluster(c, options)),
    );
    map([
        (
            "admin",
            map([("address", address(&options.admin.0, options.admin.1))]),
        ),
        ("stats_config", stats_config()),
        (
            "static_resources",
            map([
                ("listeners", seq(vec![listener])),
                ("clusters", seq(clusters)),
            ]),
        ),
    ])
}
