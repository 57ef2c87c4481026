//! From routes read out of a gateway config to what the output needs:
//! every route compiled by its filter (refused ones go to the report), the
//! routes in match order, and one cluster per function host, its TLS and
//! connection settings taken from the compiled config.

use crate::filters::{self, CredentialCluster, Filter};
use crate::model::{secret_references, EgressProxy, FunctionRoute, Migration};
use crate::report::Report;
use faas_core::config::{ClusterHints, CommonConfig};
use faas_core::uri::Scheme;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How function clusters are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterNaming {
    /// The filter's default: the function's authority as written.
    Authority,
    /// Istio's name for a ServiceEntry port: `outbound|443||host`.
    Istio,
}

/// One function host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub cluster: String,
    /// Host name or IP (no IPv6 brackets).
    pub host: String,
    pub port: u16,
    /// The `:authority` the filter writes for the function (brackets kept,
    /// the port only when not the scheme's default): in place, Envoy picks
    /// the virtual host again by it.
    pub authority: String,
    pub tls: bool,
    /// Check the certificate and its name (`ssl_verify`, `https_verify`).
    pub verify: bool,
    pub keepalive: bool,
    pub idle_timeout_ms: u64,
    /// Reached through this HTTP/1.1 CONNECT proxy (Kong's `proxy_url`).
    pub proxy: Option<EgressProxy>,
    /// The routes calling it, for the report.
    pub routes: Vec<String>,
}

/// Everything the Envoy and Istio writers need.
#[derive(Debug)]
pub struct Plan {
    /// Accepted routes, in match order.
    pub routes: Vec<FunctionRoute>,
    /// Per filter in use: its whole plugin config (checked by the filter).
    pub plugin_configs: BTreeMap<Filter, Value>,
    pub upstreams: Vec<Upstream>,
    pub credential_clusters: Vec<CredentialCluster>,
    /// The largest `max_req_body_size` of any route.
    pub max_request_body: u64,
    pub report: Report,
}

impl Plan {
    /// The cluster a route's callouts go to.
    pub fn upstream_of(&self, route: &FunctionRoute) -> Option<&Upstream> {
        self.upstreams
            .iter()
            .find(|u| u.routes.contains(&route.name))
    }

    /// The routes each virtual host serves: one group per host name a
    /// route lists (its own routes, then the routes for any host, as
    /// APISIX's and Kong's routers prefer host routes), then, under `None`,
    /// the routes for any host (when there are any).
    pub fn host_groups(&self) -> Vec<(Option<&str>, Vec<&FunctionRoute>)> {
        let mut hosts: Vec<&str> = self
            .routes
            .iter()
            .flat_map(|r| r.hosts.iter().map(String::as_str))
            .collect();
        hosts.sort_unstable();
        hosts.dedup();
        let any_host: Vec<&FunctionRoute> =
            self.routes.iter().filter(|r| r.hosts.is_empty()).collect();
        let mut groups: Vec<(Option<&str>, Vec<&FunctionRoute>)> = hosts
            .into_iter()
            .map(|host| {
                let own = self
                    .routes
                    .iter()
                    .filter(|r| r.hosts.iter().any(|h| h == host));
                (Some(host), own.chain(any_host.iter().copied()).collect())
            })
            .collect();
        if !any_host.is_empty() {
            groups.push((None, any_host));
        }
        groups
    }
}

fn upstream_of(common: &CommonConfig, naming: ClusterNaming, explicit: bool) -> Upstream {
    let f = &common.function;
    let port = f.port.unwrap_or_else(|| f.scheme.default_port());
    let host = f
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let cluster = match naming {
        ClusterNaming::Istio if !explicit => format!("outbound|{port}||{host}"),
        _ => common.cluster.clone(),
    };
    let ClusterHints {
        ssl_verify,
        keepalive,
        keepalive_timeout_ms,
        ..
    } = common.cluster_hints;
    Upstream {
        cluster,
        host,
        port,
        authority: f.authority(),
        tls: f.scheme == Scheme::Https,
        verify: ssl_verify,
        keepalive,
        idle_timeout_ms: keepalive_timeout_ms,
        proxy: None,
        routes: vec![common.route.clone()],
    }
}

/// Adds a route's upstream, or merges it into the one with its cluster name.
fn merge_upstream(upstreams: &mut Vec<Upstream>, new: Upstream, report: &mut Report, source: &str) {
    let Some(existing) = upstreams.iter_mut().find(|u| u.cluster == new.cluster) else {
        upstreams.push(new);
        return;
    };
    if existing.verify != new.verify {
        // One cluster either checks certificates or not: the safe choice,
        // and the routes that asked for no checks are told.
        let unverified = if new.verify {
            existing.routes.join("\", \"")
        } else {
            source.to_string()
        };
        existing.verify = true;
        report.changed(
            if new.verify { format!("route \"{unverified}\"") } else { unverified },
            format!(
                "ssl_verify: false is not kept: cluster \"{}\" also serves a route that verifies certificates, so it verifies for all",
                existing.cluster
            ),
        );
    }
    if (existing.keepalive, existing.idle_timeout_ms) != (new.keepalive, new.idle_timeout_ms) {
        report.changed(
            source,
            format!(
                "cluster \"{}\" keeps the keep-alive settings of route \"{}\" (one cluster has one setting)",
                existing.cluster,
                existing.routes.first().map(String::as_str).unwrap_or("")
            ),
        );
    }
    if existing.proxy != new.proxy {
        // One cluster reaches its host one way: through the proxy when any
        // of its routes asks (Kong's proxy_url is a route's egress rule).
        report.changed(
            source,
            format!(
                "cluster \"{}\" goes through the egress proxy for all its routes (one cluster has one path to its host)",
                existing.cluster
            ),
        );
        existing.proxy = existing.proxy.take().or(new.proxy);
    }
    existing.routes.extend(new.routes);
}

/// The whole plugin config of `filter` with `routes`.
fn plugin_config(globals: Option<&Map<String, Value>>, routes: &[&FunctionRoute]) -> Value {
    let mut top = globals.cloned().unwrap_or_default();
    let table: Map<String, Value> = routes
        .iter()
        .map(|r| (r.name.clone(), Value::Object(r.config.clone())))
        .collect();
    top.insert("routes".into(), Value::Object(table));
    Value::Object(top)
}

/// Compiles every route, keeps the accepted ones, derives the clusters.
pub fn plan(migration: Migration, naming: ClusterNaming) -> Result<Plan, String> {
    let Migration {
        routes,
        globals,
        mut report,
    } = migration;
    let mut accepted: Vec<FunctionRoute> = Vec::new();
    let mut upstreams: Vec<Upstream> = Vec::new();
    let mut credential_clusters: Vec<CredentialCluster> = Vec::new();
    let mut max_request_body = 0u64;
    for mut route in routes {
        let references = secret_references(&route.config);
        if !references.is_empty() {
            report.not_translated(
                route.source.clone(),
                format!(
                    "{} references a secret store ({}): the value is not in the file; put it in the plugin config or the VM environment",
                    route.filter,
                    references.join(", ")
                ),
            );
            continue;
        }
        let json = plugin_config(globals.get(&route.filter), &[&route]).to_string();
        let compiled = match filters::compile(route.filter, json.as_bytes()) {
            Ok(c) => c,
            Err(errors) => {
                for e in errors {
                    let field = if e.field.is_empty() {
                        String::new()
                    } else {
                        format!("field \"{}\": ", e.field)
                    };
                    report.not_translated(
                        route.source.clone(),
                        format!(
                            "the {} filter refuses it: {field}{}",
                            route.filter, e.message
                        ),
                    );
                }
                continue;
            }
        };
        let Some(common) = compiled.routes.first() else {
            return Err(format!("{}: compiled to no route", route.source));
        };
        let explicit = route.config.contains_key("cluster");
        let mut upstream = upstream_of(common, naming, explicit);
        upstream.proxy = route.egress_proxy.clone();
        if upstream.proxy.is_some() && naming == ClusterNaming::Istio {
            report.not_translated(
                route.source.clone(),
                "proxy_url: the Istio output does not tunnel through the proxy (route egress through an egress gateway, or patch the cluster's transport socket with an EnvoyFilter)",
            );
        }
        if naming == ClusterNaming::Istio && !explicit {
            route
                .config
                .insert("cluster".into(), Value::String(upstream.cluster.clone()));
        }
        merge_upstream(&mut upstreams, upstream, &mut report, &route.source);
        for c in compiled.credential_clusters {
            if !credential_clusters.contains(&c) {
                credential_clusters.push(c);
            }
        }
        max_request_body = max_request_body.max(common.max_req_body_size as u64);
        accepted.push(route);
    }
    for u in &upstreams {
        let routes = format!("route \"{}\"", u.routes.join("\", \""));
        if u.tls && !u.verify {
            report.note(
                routes,
                format!(
                    "TLS to \"{}\" without certificate checks (ssl_verify: false)",
                    u.host
                ),
            );
        } else if !u.tls {
            report.note(routes, format!("plain HTTP to \"{}\"", u.host));
        }
    }
    // Envoy takes the first route that matches: most specific first.
    accepted.sort_by_key(|r| r.paths.first().map(|p| p.order()));

    let mut plugin_configs = BTreeMap::new();
    for filter in Filter::ALL {
        let routes: Vec<&FunctionRoute> = accepted.iter().filter(|r| r.filter == filter).collect();
        if routes.is_empty() {
            continue;
        }
        let config = plugin_config(globals.get(&filter), &routes);
        // Each route compiled alone; together they must too.
        if let Err(errors) = filters::compile(filter, config.to_string().as_bytes()) {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(format!(
                "the generated {filter} config is refused: {}",
                lines.join("; ")
            ));
        }
        plugin_configs.insert(filter, config);
    }
    for c in &credential_clusters {
        if let CredentialCluster::FromEnvironment { source } = c {
            report.note(
                "aws-lambda",
                format!("credential source \"{source}\" needs its clusters from envoy/aws-platform-credentials.yaml"),
            );
        }
    }
    Ok(Plan {
        routes: accepted,
        plugin_configs,
        upstreams,
        credential_clusters,
        max_request_body,
        report,
    })
}
