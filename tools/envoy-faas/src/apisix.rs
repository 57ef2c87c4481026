//! APISIX standalone config (`conf/apisix.yaml`, or its JSON form) to
//! function routes.
//!
//! Read: `routes` (`uri`/`uris`, `methods`, `host`/`hosts`, `plugins`,
//! `service_id`, `plugin_config_id`, `status`), `services` and
//! `plugin_configs` (their plugins apply under the route's), and
//! `plugin_metadata` (azure-functions' `master_apikey`/`master_clientid`).
//! Everything else is listed in the report.

use crate::filters::Filter;
use crate::model::{
    dedupe_names, route_name, text, text_list, FunctionRoute, Migration, PathMatch,
};
use crate::report::Report;
use serde_json::{Map, Value};

/// The FaaS plugins in APISIX's priority order: when several sit on one
/// route, the first one answers and the others never run.
const BY_PRIORITY: [Filter; 3] = [
    Filter::AwsLambda,
    Filter::AzureFunctions,
    Filter::OpenFunction,
];

/// Route fields that narrow which requests match (or, for scripts, replace
/// the plugins): without them the route would answer requests it did not,
/// so a route that has one is left out.
const UNTRANSLATED_MATCH_FIELDS: [&str; 6] = [
    "vars",
    "filter_func",
    "remote_addr",
    "remote_addrs",
    "script",
    "script_id",
];

/// Route fields with no translation that do not change which requests match.
const UNTRANSLATED_ROUTE_FIELDS: [&str; 2] = ["enable_websocket", "timeout"];

/// Route fields that need nothing (the function plugin answers; the
/// route's upstream is never contacted).
const IGNORED_ROUTE_FIELDS: [&str; 12] = [
    "id",
    "name",
    "desc",
    "labels",
    "uri",
    "uris",
    "methods",
    "host",
    "hosts",
    "plugins",
    "upstream",
    "upstream_id",
];

/// A list, or one value where APISIX takes either (`host`, `uri`).
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(_)) => text_list(value),
        Some(v) => text(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// `id → plugins` of a `services` or `plugin_configs` list.
fn plugins_by_id(doc: &Map<String, Value>, section: &str) -> Vec<(String, Map<String, Value>)> {
    let Some(Value::Array(items)) = doc.get(section) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let id = item.get("id").and_then(text)?;
            let plugins = item.get("plugins")?.as_object()?.clone();
            Some((id, plugins))
        })
        .collect()
}

fn escape_regex(literal: &str) -> String {
    let mut out = String::new();
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An APISIX `uri` as an Envoy path match, and the `strip_prefix` that
/// forwards what a bare trailing `*` matched (APISIX's `:ext`).
pub fn path_match(uri: &str) -> (PathMatch, Option<String>) {
    if let Some(base) = uri.strip_suffix('*').filter(|b| b.ends_with('/')) {
        if !base.contains([':', '*']) {
            return (PathMatch::Prefix(base.to_string()), Some(base.to_string()));
        }
    }
    if !uri.contains([':', '*']) {
        return (PathMatch::Exact(uri.to_string()), None);
    }
    if let Some(base) = uri.strip_suffix('*').filter(|b| !b.contains([':', '*'])) {
        // `/p*`: a plain prefix; APISIX forwards nothing for it.
        return (PathMatch::Prefix(base.to_string()), None);
    }
    // Parameters (`/user/:id`) and named wildcards (`/files/*path`).
    let regex: Vec<String> = uri
        .split('/')
        .map(|segment| {
            if segment.starts_with(':') {
                "[^/]+".to_string()
            } else if segment.starts_with('*') {
                ".*".to_string()
            } else {
                escape_regex(segment)
            }
        })
        .collect();
    (PathMatch::Regex(regex.join("/")), None)
}

/// A hint for a plugin that has no translation.
pub fn equivalent(plugin: &str) -> &'static str {
    match plugin {
        "key-auth" | "jwt-auth" | "basic-auth" | "openid-connect" | "jwt" | "oauth2" | "hmac-auth"
        | "ldap-auth" | "forward-auth" => {
            "authentication is Envoy's (jwt_authn, basic_auth, ext_authz) in front of the function filter; envoy/function-backend.yaml has a jwt_authn example"
        }
        "limit-count" | "limit-req" | "limit-conn" | "rate-limiting" | "rate-limiting-advanced" => {
            "rate limits are Envoy's local_ratelimit (or ratelimit) filter, placed before the function filter"
        }
        "cors" => "CORS is Envoy's cors filter",
        "proxy-cache" => "caching is Envoy's cache filter (envoy/function-backend.yaml)",
        "prometheus" => "the filters export their own Prometheus metrics (the book, \"Observability\")",
        "ip-restriction" => "Envoy's rbac filter",
        _ => "no envoy-faas equivalent; add the Envoy filter that does the same",
    }
}

/// Reads an APISIX standalone config.
pub fn read(input: &str) -> Result<Migration, String> {
    let doc: Value = serde_yaml::from_str(input)
        .map_err(|e| format!("not an APISIX YAML or JSON config: {e}"))?;
    let Value::Object(doc) = doc else {
        return Err("not an APISIX standalone config: the top level must be a mapping".into());
    };
    let mut report = Report::default();
    let mut migration = Migration::default();

    for (section, value) in &doc {
        let count = value.as_array().map_or(0, Vec::len);
        match section.as_str() {
            "routes" | "services" | "plugin_configs" | "plugin_metadata" => {}
            "upstreams" => report.note(
                "upstreams",
                "not needed: function routes never contact their upstream",
            ),
            _ if count == 0 && !value.is_object() => {}
            _ => report.not_translated(
                section.clone(),
                format!("section not translated ({count} entries)"),
            ),
        }
    }

    read_metadata(&doc, &mut migration, &mut report);
    let services = plugins_by_id(&doc, "services");
    let plugin_configs = plugins_by_id(&doc, "plugin_configs");
    let routes = match doc.get("routes") {
        Some(Value::Array(routes)) => routes.as_slice(),
        Some(_) => return Err("`routes` must be a list".into()),
        None => &[],
    };
    for (index, route) in routes.iter().enumerate() {
        let Value::Object(route) = route else {
            report.not_translated(format!("routes[{index}]"), "not a mapping");
            continue;
        };
        let id = route
            .get("id")
            .and_then(text)
            .unwrap_or_else(|| (index + 1).to_string());
        let source = format!("APISIX route \"{id}\"");
        let mut plugins = Map::new();
        let lookup = |list: &[(String, Map<String, Value>)], key: &str| {
            route.get(key).and_then(text).map(|wanted| {
                list.iter()
                    .find(|(id, _)| *id == wanted)
                    .map(|(_, p)| p.clone())
            })
        };
        for (list, key, what) in [
            (&services, "service_id", "service"),
            (&plugin_configs, "plugin_config_id", "plugin config"),
        ] {
            match lookup(list, key) {
                Some(Some(p)) => plugins.extend(p),
                Some(None) => report.not_translated(
                    source.clone(),
                    format!("its {what} ({key}) is not in the file"),
                ),
                None => {}
            }
        }
        if let Some(Value::Object(own)) = route.get("plugins") {
            plugins.extend(own.clone());
        }
        if route.get("status").and_then(Value::as_u64) == Some(0) {
            report.note(source, "disabled (status: 0): left out");
            continue;
        }
        read_route(
            route,
            &id,
            &source,
            plugins,
            &mut migration.routes,
            &mut report,
        );
    }
    dedupe_names(&mut migration.routes, &mut report);
    migration.report = report;
    Ok(migration)
}

fn read_metadata(doc: &Map<String, Value>, migration: &mut Migration, report: &mut Report) {
    let Some(Value::Array(entries)) = doc.get("plugin_metadata") else {
        return;
    };
    for entry in entries {
        let Some(id) = entry.get("id").and_then(text) else {
            continue;
        };
        let source = format!("plugin_metadata \"{id}\"");
        if Filter::parse(&id) != Some(Filter::AzureFunctions) {
            report.not_translated(source, "plugin metadata not translated");
            continue;
        }
        let mut globals = Map::new();
        for (key, value) in entry.as_object().into_iter().flatten() {
            match key.as_str() {
                "id" => {}
                // APISIX's default is "", which it sends as an empty header;
                // envoy-faas sends nothing for an unset key.
                "master_apikey" | "master_clientid" if value.as_str() == Some("") => {}
                "master_apikey" | "master_clientid" => {
                    globals.insert(key.clone(), value.clone());
                }
                other => report.not_translated(source.clone(), format!("field \"{other}\"")),
            }
        }
        if !globals.is_empty() {
            migration.globals.insert(Filter::AzureFunctions, globals);
        }
    }
}

fn read_route(
    route: &Map<String, Value>,
    id: &str,
    source: &str,
    mut plugins: Map<String, Value>,
    out: &mut Vec<FunctionRoute>,
    report: &mut Report,
) {
    // The FaaS plugin that answers, after `_meta.disable`.
    let mut chosen: Option<(Filter, Map<String, Value>)> = None;
    for filter in BY_PRIORITY {
        let Some(Value::Object(mut config)) = plugins.remove(filter.name()) else {
            continue;
        };
        if let Some(Value::Object(meta)) = config.remove("_meta") {
            if meta.get("disable").and_then(Value::as_bool) == Some(true) {
                report.note(
                    source,
                    format!("plugin {filter} is disabled (_meta.disable): left out"),
                );
                continue;
            }
            for key in meta.keys().filter(|k| k.as_str() != "disable") {
                report.not_translated(source, format!("plugin {filter}: _meta.{key}"));
            }
        }
        if chosen.is_some() {
            report.not_translated(
                source,
                format!("plugin {filter}: a higher-priority function plugin answers this route first, in APISIX too"),
            );
            continue;
        }
        chosen = Some((filter, config));
    }
    for (name, _) in &plugins {
        let message = format!("plugin {name}: {}", equivalent(name));
        if chosen.is_some() {
            report.not_translated(source, message);
        }
    }
    let Some((filter, config)) = chosen else {
        report.not_translated(
            source,
            "no function plugin: an ordinary proxy route, not migrated",
        );
        return;
    };
    let narrowing: Vec<&str> = UNTRANSLATED_MATCH_FIELDS
        .into_iter()
        .filter(|f| route.contains_key(*f))
        .collect();
    if !narrowing.is_empty() {
        report.not_translated(
            source,
            format!(
                "route left out: it matches on {} (not translated), and without it would answer more requests",
                narrowing.join(", ")
            ),
        );
        return;
    }
    for field in UNTRANSLATED_ROUTE_FIELDS {
        if route.contains_key(field) {
            report.not_translated(source, format!("route field \"{field}\""));
        }
    }
    if route.contains_key("priority") {
        report.changed(
            source,
            "priority: routes are ordered exact, regex, then longest prefix first",
        );
    }
    for key in route.keys() {
        let known = IGNORED_ROUTE_FIELDS.contains(&key.as_str())
            || UNTRANSLATED_ROUTE_FIELDS.contains(&key.as_str())
            || UNTRANSLATED_MATCH_FIELDS.contains(&key.as_str())
            || ["priority", "status", "service_id", "plugin_config_id"].contains(&key.as_str());
        if !known {
            report.not_translated(source, format!("route field \"{key}\""));
        }
    }
    let mut uris = strings(route.get("uris"));
    uris.extend(strings(route.get("uri")));
    if uris.is_empty() {
        report.not_translated(source, "no uri");
        return;
    }
    let base = route
        .get("name")
        .and_then(text)
        .map(|n| route_name(&n))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| route_name(&format!("apisix-{id}")));
    let mut methods: Vec<String> = strings(route.get("methods"))
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    methods.dedup();
    let mut hosts = strings(route.get("hosts"));
    hosts.extend(strings(route.get("host")));
    // One function route per uri: each may forward a different prefix.
    for uri in uris {
        let (path, strip_prefix) = path_match(&uri);
        if matches!(path, PathMatch::Regex(_)) {
            report.changed(
                source,
                format!("uri \"{uri}\": matched by an RE2 regex; its parameters are not forwarded"),
            );
        }
        let mut config = config.clone();
        if let Some(prefix) = strip_prefix {
            config
                .entry("strip_prefix")
                .or_insert(Value::String(prefix));
        }
        out.push(FunctionRoute {
            name: base.clone(),
            source: source.to_string(),
            filter,
            paths: vec![path],
            methods: methods.clone(),
            hosts: hosts.clone(),
            config,
            egress_proxy: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_become_envoy_matches() {
        let cases = [
            ("/aws", PathMatch::Exact("/aws".into()), None),
            (
                "/azure/*",
                PathMatch::Prefix("/azure/".into()),
                Some("/azure/"),
            ),
            ("/*", PathMatch::Prefix("/".into()), Some("/")),
            ("/p*", PathMatch::Prefix("/p".into()), None),
            ("/user/:id", PathMatch::Regex("/user/[^/]+".into()), None),
            ("/files/*path", PathMatch::Regex("/files/.*".into()), None),
            (
                "/a.b/:x/*",
                PathMatch::Regex("/a\\.b/[^/]+/.*".into()),
                None,
            ),
        ];
        for (uri, want, strip) in cases {
            let (got, s) = path_match(uri);
            assert_eq!(got, want, "{uri}");
            assert_eq!(s.as_deref(), strip, "{uri}");
        }
    }
}
