//! What an importer reads out of a gateway config: function routes with
//! their match and their plugin config, in the filters' own terms.

use crate::filters::Filter;
use crate::report::Report;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How a route matches the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    /// A string prefix, as Envoy's `prefix` (and Kong's paths) match.
    Prefix(String),
    /// An RE2 regex over the whole path (Envoy's `safe_regex`).
    Regex(String),
}

impl PathMatch {
    /// Match order: exact paths, then regexes, then longer prefixes first
    /// (what APISIX's radixtree and Kong's router do; Envoy takes the first
    /// route that matches).
    pub fn order(&self) -> (u8, std::cmp::Reverse<usize>) {
        match self {
            PathMatch::Exact(_) => (0, std::cmp::Reverse(0)),
            PathMatch::Regex(_) => (1, std::cmp::Reverse(0)),
            PathMatch::Prefix(p) => (2, std::cmp::Reverse(p.len())),
        }
    }
}

/// One route a function filter answers.
#[derive(Debug, Clone)]
pub struct FunctionRoute {
    /// The Envoy route name: the key of the plugin config's `routes`.
    pub name: String,
    /// Where it came from, for the report (`APISIX route "1"`).
    pub source: String,
    pub filter: Filter,
    /// One Envoy route per path (Kong routes may list several).
    pub paths: Vec<PathMatch>,
    /// Upper-case methods; empty means any.
    pub methods: Vec<String>,
    /// Host names (wildcards as `*.example.com`); empty means any.
    pub hosts: Vec<String>,
    /// The route's plugin config, as the filter reads it.
    pub config: Map<String, Value>,
    /// An HTTP CONNECT proxy the function's calls go through (Kong's
    /// `proxy_url`): the cluster's transport socket, not the filter's job.
    pub egress_proxy: Option<EgressProxy>,
}

/// An egress HTTP/1.1 CONNECT proxy, as Envoy's `http_11_proxy` transport
/// socket takes it: an IP address and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressProxy {
    pub ip: String,
    pub port: u16,
}

impl EgressProxy {
    /// Kong's `proxy_url` (`http://<ip>:<port>`), or why it cannot be one.
    /// The reasons never quote the value (it may carry credentials).
    pub fn parse(url: &str) -> Result<EgressProxy, &'static str> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("proxy_url must be an http:// URL (Kong's rule too)")?;
        let authority = rest.trim_end_matches('/');
        if authority.contains(['/', '@', '?', '#']) {
            return Err("proxy_url must be http://<ip>:<port>, without a path or credentials");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| "proxy_url has an invalid port")?,
            ),
            _ => (authority, 80),
        };
        let ip = host.trim_start_matches('[').trim_end_matches(']');
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(
                "proxy_url names a host: Envoy's CONNECT transport (http_11_proxy) needs the proxy's IP address",
            );
        }
        Ok(EgressProxy {
            ip: ip.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod egress_proxy_tests {
    use super::EgressProxy;

    #[test]
    fn proxy_urls_are_ip_and_port_or_refused() {
        assert_eq!(
            EgressProxy::parse("http://10.0.0.5:3128"),
            Ok(EgressProxy {
                ip: "10.0.0.5".into(),
                port: 3128
            })
        );
        assert_eq!(
            EgressProxy::parse("http://[::1]:8080/"),
            Ok(EgressProxy {
                ip: "::1".into(),
                port: 8080
            })
        );
        assert_eq!(
            EgressProxy::parse("http://10.0.0.5").map(|p| p.port),
            Ok(80)
        );
        for bad in [
            "https://10.0.0.5:3128",
            "http://proxy.corp:3128",
            "http://user:pw@10.0.0.5:3128",
            "http://10.0.0.5:3128/x",
            "http://10.0.0.5:99999",
        ] {
            assert!(EgressProxy::parse(bad).is_err(), "{bad}");
        }
    }
}

/// A gateway config, read.
#[derive(Debug, Default)]
pub struct Migration {
    pub routes: Vec<FunctionRoute>,
    /// Filter-wide fields (APISIX plugin metadata: azure's master keys).
    pub globals: BTreeMap<Filter, Map<String, Value>>,
    pub report: Report,
}

/// A scalar as text (ids and names may be written as numbers).
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The scalars of a list (`paths`, `methods`, `hosts`); nothing otherwise.
pub fn text_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

/// Route names Envoy, Istio and the plugin config all take as they are.
pub fn route_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches('-').to_string()
}

/// Makes every route name unique (`name`, `name-2`, ...), in input order.
pub fn dedupe_names(routes: &mut [FunctionRoute], report: &mut Report) {
    let mut seen = std::collections::HashSet::new();
    for route in routes.iter_mut() {
        if seen.insert(route.name.clone()) {
            continue;
        }
        let mut n = 2;
        while !seen.insert(format!("{}-{n}", route.name)) {
            n += 1;
        }
        let renamed = format!("{}-{n}", route.name);
        report.changed(
            route.source.clone(),
            format!("route name already taken: named \"{renamed}\""),
        );
        route.name = renamed;
    }
}

/// Whether a string is a Kong vault reference (`{vault://...}`) or an
/// APISIX secret reference (`$secret://...`, `$env://...`): the value is
/// not in the file, so it cannot be carried over.
pub fn is_secret_reference(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("{vault://") || v.starts_with("$secret://") || v.starts_with("$env://")
}

/// Dotted paths of every string field holding a secret reference.
pub fn secret_references(config: &Map<String, Value>) -> Vec<String> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) if is_secret_reference(s) => out.push(prefix.to_string()),
            Value::Object(o) => {
                for (k, v) in o {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in config {
        walk(k, v, &mut out);
    }
    out
}
