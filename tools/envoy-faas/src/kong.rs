//! Kong declarative config (`kong.yml`, `_format_version` 3.x, as `deck`
//! writes it) to function routes.
//!
//! Read: `services` with their nested `routes` and `plugins`, top-level
//! `routes` (with `service`) and `plugins` (global, or scoped by `route` or
//! `service`). A route gets the function plugin scoped to it, else its
//! service's, else a global one, as Kong resolves them.

use crate::apisix::equivalent;
use crate::filters::Filter;
use crate::model::{
    dedupe_names, route_name, text, text_list, EgressProxy, FunctionRoute, Migration, PathMatch,
};
use crate::report::Report;
use serde_json::{Map, Value};

/// Kong's plugin priorities: aws-lambda (750) runs before azure-functions
/// (749) and ends the request.
const BY_PRIORITY: [Filter; 2] = [Filter::AwsLambda, Filter::AzureFunctions];

/// Route fields that narrow which requests match and have no translation
/// here: without them the route would answer more, so it is left out.
const UNTRANSLATED_MATCH_FIELDS: [&str; 5] =
    ["headers", "snis", "sources", "destinations", "expression"];

/// Kong's timeouts where envoy-faas's default differs (ms): written into
/// the route when the block leaves them out, so the function keeps the
/// time Kong gave it.
fn kong_default_timeout(filter: Filter) -> Option<u64> {
    match filter {
        Filter::AwsLambda => Some(60_000),
        Filter::AzureFunctions => Some(600_000),
        // Kong has no Google Cloud plugin: nothing to keep.
        Filter::GcpFunctions | Filter::OpenFunction => None,
    }
}

/// A reference (`service: name`, `route: {name: x}` or `{id: x}`).
fn reference(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Object(o) => o.get("name").or_else(|| o.get("id")).and_then(text),
        other => text(other),
    }
}

#[derive(Debug, Clone)]
struct Plugin {
    name: String,
    config: Map<String, Value>,
    enabled: bool,
    consumer: bool,
}

fn plugin(value: &Value) -> Option<Plugin> {
    let o = value.as_object()?;
    Some(Plugin {
        name: o.get("name").and_then(text)?,
        config: o
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        enabled: o.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        consumer: o.get("consumer").is_some_and(|c| !c.is_null()),
    })
}

fn plugins(value: Option<&Value>) -> Vec<Plugin> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(plugin).collect(),
        _ => Vec::new(),
    }
}

struct KongRoute {
    route: Map<String, Value>,
    service: Option<String>,
    own_plugins: Vec<Plugin>,
}

/// Kong's path (`/p` is a string prefix, `~/re` a regex from the start of
/// the path) as an Envoy match.
pub fn path_match(path: &str) -> PathMatch {
    match path.strip_prefix('~') {
        Some(regex) if regex.ends_with('$') => {
            PathMatch::Regex(regex.trim_end_matches('$').to_string())
        }
        Some(regex) => PathMatch::Regex(format!("{regex}.*")),
        None => PathMatch::Prefix(path.to_string()),
    }
}

/// Reads a Kong declarative config.
pub fn read(input: &str) -> Result<Migration, String> {
    let doc: Value =
        serde_yaml::from_str(input).map_err(|e| format!("not a Kong YAML or JSON config: {e}"))?;
    let Value::Object(doc) = doc else {
        return Err("not a Kong declarative config: the top level must be a mapping".into());
    };
    let mut report = Report::default();
    for (section, value) in &doc {
        match section.as_str() {
            "_format_version" | "_transform" | "_info" | "_workspace" | "services" | "routes"
            | "plugins" => {}
            _ if value.as_array().is_some_and(Vec::is_empty) => {}
            _ => report.not_translated(section.clone(), "section not translated"),
        }
    }

    let mut routes: Vec<KongRoute> = Vec::new();
    let mut service_plugins: Vec<(String, Vec<Plugin>)> = Vec::new();
    if let Some(Value::Array(services)) = doc.get("services") {
        for service in services {
            let name = service
                .get("name")
                .or_else(|| service.get("id"))
                .and_then(text);
            if let Some(name) = &name {
                service_plugins.push((name.clone(), plugins(service.get("plugins"))));
            }
            if let Some(Value::Array(nested)) = service.get("routes") {
                for r in nested.iter().filter_map(Value::as_object) {
                    routes.push(KongRoute {
                        route: r.clone(),
                        service: name.clone(),
                        own_plugins: plugins(r.get("plugins")),
                    });
                }
            }
        }
    }
    if let Some(Value::Array(top)) = doc.get("routes") {
        for r in top.iter().filter_map(Value::as_object) {
            routes.push(KongRoute {
                route: r.clone(),
                service: reference(r.get("service")),
                own_plugins: plugins(r.get("plugins")),
            });
        }
    }
    // Top-level plugins: scoped to a route, a service, or global.
    let mut global_plugins = Vec::new();
    let mut scoped_route: Vec<(String, Plugin)> = Vec::new();
    if let Some(Value::Array(top)) = doc.get("plugins") {
        for value in top {
            let Some(p) = plugin(value) else { continue };
            if let Some(route) = reference(value.get("route")) {
                scoped_route.push((route, p));
            } else if let Some(service) = reference(value.get("service")) {
                match service_plugins.iter_mut().find(|(n, _)| *n == service) {
                    Some((_, list)) => list.push(p),
                    None => service_plugins.push((service, vec![p])),
                }
            } else {
                global_plugins.push(p);
            }
        }
    }

    let mut migration = Migration::default();
    for (index, kong) in routes.into_iter().enumerate() {
        let name = kong.route.get("name").and_then(text);
        let id = kong.route.get("id").and_then(text);
        let label = name
            .clone()
            .or(id.clone())
            .unwrap_or_else(|| (index + 1).to_string());
        let source = format!("Kong route \"{label}\"");
        let mut route_plugins = kong.own_plugins.clone();
        route_plugins.extend(
            scoped_route
                .iter()
                .filter(|(r, _)| Some(r) == name.as_ref() || Some(r) == id.as_ref())
                .map(|(_, p)| p.clone()),
        );
        let from_service = kong
            .service
            .as_ref()
            .and_then(|s| service_plugins.iter().find(|(n, _)| n == s))
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        // Kong's precedence: the route's plugin, then the service's, then a global one.
        let mut effective: Vec<Plugin> = Vec::new();
        for layer in [&route_plugins, &from_service, &global_plugins] {
            for p in layer.iter() {
                if p.consumer {
                    report.not_translated(
                        source.clone(),
                        format!(
                            "plugin {} scoped to a consumer: envoy-faas has no consumers",
                            p.name
                        ),
                    );
                    continue;
                }
                if !effective.iter().any(|e| e.name == p.name) {
                    effective.push(p.clone());
                }
            }
        }
        let mut chosen: Option<(Filter, Map<String, Value>)> = None;
        for filter in BY_PRIORITY {
            let Some(p) = effective.iter().find(|p| p.name == filter.name()) else {
                continue;
            };
            if !p.enabled {
                report.note(
                    source.clone(),
                    format!("plugin {filter} is disabled: left out"),
                );
                continue;
            }
            if chosen.is_some() {
                report.not_translated(
                    source.clone(),
                    format!("plugin {filter}: aws-lambda answers this route first, in Kong too"),
                );
                continue;
            }
            chosen = Some((filter, p.config.clone()));
        }
        let Some((filter, mut config)) = chosen else {
            report.not_translated(
                source,
                "no function plugin: an ordinary proxy route, not migrated",
            );
            continue;
        };
        for p in effective
            .iter()
            .filter(|p| p.enabled && Filter::parse(&p.name).is_none())
        {
            report.not_translated(
                source.clone(),
                format!("plugin {}: {}", p.name, equivalent(&p.name)),
            );
        }
        let narrowing: Vec<&str> = UNTRANSLATED_MATCH_FIELDS
            .into_iter()
            .filter(|f| {
                kong.route
                    .get(*f)
                    .is_some_and(|v| !v.is_null() && v != &Value::Array(vec![]))
            })
            .collect();
        if !narrowing.is_empty() {
            report.not_translated(
                source.clone(),
                format!(
                    "route left out: it matches on {} (not translated), and without it would answer more requests",
                    narrowing.join(", ")
                ),
            );
            continue;
        }
        kong_defaults(filter, &mut config, &source, &mut report);
        // proxy_url is the cluster's business in Envoy (an HTTP/1.1 CONNECT
        // transport socket), so it leaves the plugin config here.
        let egress_proxy = match config.remove("proxy_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) if filter == Filter::AwsLambda => {
                match EgressProxy::parse(&url) {
                    Ok(proxy) => Some(proxy),
                    Err(why) => {
                        report.not_translated(source.clone(), format!("route left out: {why}"));
                        continue;
                    }
                }
            }
            Some(other) => {
                config.insert("proxy_url".into(), other); // the filter names it
                None
            }
        };
        let mut paths: Vec<PathMatch> = text_list(kong.route.get("paths"))
            .iter()
            .map(|p| path_match(p))
            .collect();
        if paths.iter().any(|p| matches!(p, PathMatch::Regex(_))) {
            report.changed(
                source.clone(),
                "regex path: matched as RE2 (Kong uses PCRE); check it",
            );
        }
        if paths.is_empty() {
            paths.push(PathMatch::Prefix("/".into()));
        }
        let base = name
            .map(|n| route_name(&n))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| route_name(&format!("kong-{label}")));
        migration.routes.push(FunctionRoute {
            name: base,
            source,
            filter,
            paths,
            methods: text_list(kong.route.get("methods"))
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            hosts: text_list(kong.route.get("hosts")),
            config,
            egress_proxy,
        });
    }
    dedupe_names(&mut migration.routes, &mut report);
    migration.report = report;
    Ok(migration)
}

/// Where Kong's defaults and envoy-faas's differ, for a block that leaves
/// the field out: keep Kong's timeout, and say where envoy-faas is safer.
fn kong_defaults(
    filter: Filter,
    config: &mut Map<String, Value>,
    source: &str,
    report: &mut Report,
) {
    let unset = |config: &Map<String, Value>, key: &str| config.get(key).is_none_or(Value::is_null);
    if let Some(ms) = kong_default_timeout(filter) {
        if unset(config, "timeout") {
            config.insert("timeout".into(), Value::from(ms));
            report.note(
                source,
                format!("timeout: Kong's default {ms} ms written out (envoy-faas's is 3000)"),
            );
        }
    }
    match filter {
        Filter::AwsLambda => {
            report.changed(
                source,
                "Kong does not verify the Lambda endpoint's certificate; the generated cluster does",
            );
            if unset(config, "log_type") {
                report.changed(
                    source,
                    "log_type: Kong's default Tail hands the function's log to clients; envoy-faas's default is None",
                );
            }
            if config.get("invoke_mode").and_then(Value::as_str) == Some("RESPONSE_STREAM") {
                report.note(
                    source,
                    "invoke_mode RESPONSE_STREAM: the answer streams only in place (--forwarding route, with allow_on_headers_stop_iteration); on the callout path it arrives whole, decoded",
                );
            }
            if unset(config, "unhandled_status") {
                report.changed(
                    source,
                    "unhandled_status: a function error is 502 function_error (Kong answers AWS's 200)",
                );
            }
        }
        Filter::AzureFunctions => {
            if unset(config, "https_verify") {
                report.changed(
                    source,
                    "https_verify: Kong's default is false; the generated cluster verifies certificates",
                );
            }
        }
        Filter::GcpFunctions | Filter::OpenFunction => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streaming_block_says_where_it_streams() {
        let mut config = Map::new();
        config.insert("invoke_mode".into(), Value::from("RESPONSE_STREAM"));
        let mut report = Report::default();
        kong_defaults(Filter::AwsLambda, &mut config, "plugin p", &mut report);
        assert!(report.items().iter().any(|i| i
            .message
            .starts_with("invoke_mode RESPONSE_STREAM: the answer streams only in place")));
    }

    #[test]
    fn paths_become_envoy_matches() {
        assert_eq!(path_match("/lambda"), PathMatch::Prefix("/lambda".into()));
        assert_eq!(
            path_match("~/users/\\d+"),
            PathMatch::Regex("/users/\\d+.*".into())
        );
        assert_eq!(path_match("~/exact$"), PathMatch::Regex("/exact".into()));
    }
}
