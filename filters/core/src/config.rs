//! The config contract shared by every filter: parse once, validate every
//! field, compile into an immutable table of per-route settings.
//!
//! Two shapes are accepted:
//! - one function config, applied to every request reaching the filter;
//! - `{"routes": {"<envoy route name>": {...}}, <defaults>...}`: the
//!   other top-level keys are defaults deep-merged under each route entry
//!   (objects merge key by key, a route's value wins, `null` unsets a
//!   default). Requests on routes without an entry pass through.

use crate::fields::{ConfigError, Fields};
use crate::layout::{BodyLayout, Forwarding, Placement};
use crate::uri::FunctionUri;
use serde_json::{Map, Value};
use std::rc::Rc;
use std::time::Duration;

pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;
pub const MIN_TIMEOUT_MS: u64 = 100;
/// Lambda's own maximum run time; no function call should outlive it.
pub const MAX_TIMEOUT_MS: u64 = 900_000;
/// 6 MiB: the synchronous payload limit of AWS Lambda, and a bound on
/// what one in-flight request may hold in the VM's memory.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 6 * 1024 * 1024;
/// Upper bound for either body limit (the VM has a 4 GiB address space and
/// every in-flight request holds its body in it).
pub const MAX_BODY_SIZE_LIMIT: u64 = 256 * 1024 * 1024;
/// Envoy 1.40's async client cuts a callout response whose body is over
/// 32 MiB (measured: 33,554,432 bytes arrive, one more does not), and the
/// filter then gets a failed call with no headers. A larger
/// `max_resp_body_size` could never take effect, so it is refused.
pub const ENVOY_CALLOUT_RESPONSE_CAP: u64 = 32 * 1024 * 1024;

/// Label used in errors and replies for the single-config form.
pub const ALL_ROUTES: &str = "*";

/// Connection settings APISIX applies in its HTTP client. In Envoy they
/// live on the function's cluster; they are validated and kept so the
/// filter can warn when the cluster is the only place they can take effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHints {
    pub ssl_verify: bool,
    pub keepalive: bool,
    pub keepalive_timeout_ms: u64,
    pub keepalive_pool: u64,
}

/// The settings every integration shares, compiled for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConfig {
    /// The route name this config was compiled for (`*` for all routes).
    pub route: String,
    pub function: FunctionUri,
    /// The Envoy cluster the callout goes to.
    pub cluster: String,
    pub timeout: Duration,
    pub max_req_body_size: usize,
    pub max_resp_body_size: usize,
    pub strip_prefix: Option<String>,
    pub cluster_hints: ClusterHints,
    /// How the request body reaches the filter in this deployment.
    pub body_layout: BodyLayout,
    /// Listener or upstream filter chain.
    pub placement: Placement,
    /// A callout, or the request rewritten in place for Envoy's router.
    pub forwarding: Forwarding,
}

/// Reads and parses a URL field.
pub fn read_function_uri(fields: &mut Fields, name: &str) -> Result<FunctionUri, ConfigError> {
    let raw = fields.required_string(name)?;
    FunctionUri::parse(&raw).map_err(|why| fields.error(name, why))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl CommonConfig {
    /// Reads the shared fields for a function reached at `function`.
    pub fn read(fields: &mut Fields, function: FunctionUri) -> Result<CommonConfig, ConfigError> {
        let cluster = match fields.non_empty_string("cluster")? {
            Some(c) => c,
            None => function.written_authority(),
        };
        let timeout = fields
            .integer("timeout", MIN_TIMEOUT_MS, MAX_TIMEOUT_MS)?
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        let max_req = fields
            .integer("max_req_body_size", 1, MAX_BODY_SIZE_LIMIT)?
            .unwrap_or(DEFAULT_MAX_BODY_SIZE);
        let max_resp = fields
            .integer("max_resp_body_size", 1, MAX_BODY_SIZE_LIMIT)?
            .unwrap_or(DEFAULT_MAX_BODY_SIZE);
        if max_resp > ENVOY_CALLOUT_RESPONSE_CAP {
            return Err(fields.error(
                "max_resp_body_size",
                format!(
                    "must be at most {ENVOY_CALLOUT_RESPONSE_CAP}: Envoy cuts function responses above 32 MiB before the filter sees them"
                ),
            ));
        }
        let strip_prefix = fields.string("strip_prefix")?;
        if let Some(p) = &strip_prefix {
            if !p.starts_with('/') || p.contains(['?', '#']) {
                return Err(fields.error(
                    "strip_prefix",
                    "must be a path starting with \"/\", without query or fragment",
                ));
            }
        }
        // APISIX: `keepalive` is a boolean; Kong: the idle timeout in ms.
        let (keepalive, kong_idle_ms) = match fields.take("keepalive") {
            None => (true, None),
            Some(serde_json::Value::Bool(b)) => (b, None),
            Some(serde_json::Value::Number(n)) => match n.as_u64() {
                Some(ms) => (true, Some(ms)),
                None => {
                    return Err(
                        fields.error("keepalive", "must be a boolean or a whole number of ms")
                    )
                }
            },
            Some(other) => {
                return Err(fields.error(
                    "keepalive",
                    format!(
                        "must be a boolean or a whole number of ms, got {}",
                        crate::fields::type_name(&other)
                    ),
                ))
            }
        };
        let body_layout = match fields.string("body_layout")? {
            None => BodyLayout::default(),
            Some(name) => BodyLayout::parse(&name).ok_or_else(|| {
                fields.error(
                    "body_layout",
                    "must be \"stop_iteration\" or \"holding_filter\"",
                )
            })?,
        };
        let forwarding = match fields.string("forwarding")? {
            None => Forwarding::default(),
            Some(name) => Forwarding::parse(&name)
                .ok_or_else(|| fields.error("forwarding", "must be \"callout\" or \"route\""))?,
        };
        let placement = match fields.string("placement")? {
            None => Placement::default(),
            Some(name) => Placement::parse(&name)
                .ok_or_else(|| fields.error("placement", "must be \"listener\" or \"upstream\""))?,
        };
        let cluster_hints = ClusterHints {
            ssl_verify: fields.bool("ssl_verify")?.unwrap_or(true),
            keepalive,
            keepalive_timeout_ms: fields
                .integer("keepalive_timeout", 1_000, u64::from(u32::MAX))?
                .or(kong_idle_ms)
                .unwrap_or(60_000),
            keepalive_pool: fields
                .integer("keepalive_pool", 1, u64::from(u32::MAX))?
                .unwrap_or(5),
        };
        Ok(CommonConfig {
            route: fields.route().to_string(),
            function,
            cluster,
            timeout: Duration::from_millis(timeout),
            max_req_body_size: to_usize(max_req),
            max_resp_body_size: to_usize(max_resp),
            strip_prefix,
            cluster_hints,
            body_layout,
            placement,
            forwarding,
        })
    }
}

/// What the plugin config turns on (top-level `metrics` and
/// `access_log_fields`, both on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observability {
    pub metrics: bool,
    pub access_log_fields: bool,
}

impl Default for Observability {
    fn default() -> Self {
        Observability {
            metrics: true,
            access_log_fields: true,
        }
    }
}

impl Observability {
    pub fn any(self) -> bool {
        self.metrics || self.access_log_fields
    }
}

/// Which requests a compiled config applies to.
#[derive(Debug)]
pub enum RouteTable<R> {
    /// One config for every request.
    All(Rc<R>),
    /// Per Envoy route name, sorted by it (looked up by binary search: a
    /// handful of routes, and no hash map code in the module for them);
    /// other routes pass through.
    ByName(Vec<(String, Rc<R>)>),
}

impl<R> RouteTable<R> {
    /// Whether lookups need the route name at all.
    pub fn needs_route_name(&self) -> bool {
        matches!(self, RouteTable::ByName(map) if !map.is_empty())
    }

    /// Whether no request can match (an empty configuration).
    pub fn is_empty(&self) -> bool {
        matches!(self, RouteTable::ByName(map) if map.is_empty())
    }

    /// The route names of a `routes` table (none for the single form).
    pub fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            RouteTable::All(_) => Box::new(std::iter::empty()),
            RouteTable::ByName(routes) => Box::new(routes.iter().map(|(name, _)| name.as_str())),
        }
    }

    /// Every compiled route.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &Rc<R>> + '_> {
        match self {
            RouteTable::All(r) => Box::new(std::iter::once(r)),
            RouteTable::ByName(routes) => Box::new(routes.iter().map(|(_, route)| route)),
        }
    }

    pub fn lookup(&self, route_name: Option<&str>) -> Option<Rc<R>> {
        match self {
            RouteTable::All(r) => Some(Rc::clone(r)),
            RouteTable::ByName(routes) => {
                let name = route_name?;
                let at = routes
                    .binary_search_by(|(n, _)| n.as_str().cmp(name))
                    .ok()?;
                routes.get(at).map(|(_, route)| Rc::clone(route))
            }
        }
    }
}

/// A whole plugin configuration, compiled.
#[derive(Debug)]
pub struct PluginConfig<G, R> {
    pub global: G,
    pub routes: RouteTable<R>,
    pub observability: Observability,
}

/// The top-level switches of metrics and access-log fields.
fn read_observability(top: &mut Fields) -> Result<Observability, ConfigError> {
    let on = Observability::default();
    Ok(Observability {
        metrics: top.bool("metrics")?.unwrap_or(on.metrics),
        access_log_fields: top
            .bool("access_log_fields")?
            .unwrap_or(on.access_log_fields),
    })
}

/// Deep-merges `overlay` onto `base`: objects merge per key, anything else
/// is replaced by the overlay's value.
pub fn deep_merge(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Parses and compiles a plugin configuration.
///
/// `read_global` takes the filter-wide fields from the top level;
/// `read_route` compiles one (merged) route object. Any field neither
/// reads is an error.
///
/// An empty configuration (no bytes, or only whitespace) compiles to a
/// table with no routes: every request passes through. Istio sends exactly
/// that for a `WasmPlugin` without `pluginConfig`, and Envoy Gateway for an
/// `EnvoyExtensionPolicy` without `config`; refusing it would NACK the
/// extension config and keep the listener from serving at all.
pub fn compile<G, R>(
    json: &[u8],
    read_global: impl FnOnce(&mut Fields) -> Result<G, ConfigError>,
    read_route: impl Fn(&mut Fields, &G) -> Result<R, ConfigError>,
) -> Result<PluginConfig<G, R>, ConfigError> {
    compile_report(json, read_global, read_route).map_err(ConfigErrors::into_first)
}

/// Every error of a refused configuration: the first of the top level, or
/// the first of each route (routes are compiled independently, so one bad
/// route does not hide another's mistake). Never empty.
#[derive(Debug)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    fn one(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }

    /// The errors, top level first, then routes in name order.
    pub fn all(&self) -> &[ConfigError] {
        &self.0
    }

    /// The first error: what [`compile`] reports.
    pub fn into_first(self) -> ConfigError {
        self.0
            .into_iter()
            .next()
            .unwrap_or_else(|| ConfigError::new(ALL_ROUTES, "", "invalid configuration"))
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors::one(error)
    }
}

/// [`compile`], reporting every route's error rather than the first one:
/// what the filter logs when Envoy refuses a config, and what
/// `envoy-faas check` prints. The verdict is the same.
pub fn compile_report<G, R>(
    json: &[u8],
    read_global: impl FnOnce(&mut Fields) -> Result<G, ConfigError>,
    read_route: impl Fn(&mut Fields, &G) -> Result<R, ConfigError>,
) -> Result<PluginConfig<G, R>, ConfigErrors> {
    if json.iter().all(u8::is_ascii_whitespace) {
        let mut none = Fields::new(ALL_ROUTES, Map::new());
        return Ok(PluginConfig {
            global: read_global(&mut none)?,
            routes: RouteTable::ByName(Vec::new()),
            observability: Observability::default(),
        });
    }
    let top = match serde_json::from_slice::<Value>(json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ConfigError::new(
                ALL_ROUTES,
                "",
                "plugin configuration must be a JSON object",
            )
            .into())
        }
        Err(e) => {
            return Err(ConfigError::new(
                ALL_ROUTES,
                "",
                format!("plugin configuration is not valid JSON: {e}"),
            )
            .into())
        }
    };
    let mut top = Fields::new(ALL_ROUTES, top);
    let observability = read_observability(&mut top)?;
    let global = read_global(&mut top)?;
    let routes = match top.take("routes") {
        None => {
            let route = read_route(&mut top, &global)?;
            top.finish()?;
            RouteTable::All(Rc::new(route))
        }
        Some(Value::Object(entries)) => {
            if entries.is_empty() {
                return Err(top.error("routes", "must name at least one route").into());
            }
            let defaults = top.into_map();
            let mut table: Vec<(String, Rc<R>)> = Vec::with_capacity(entries.len());
            let mut errors = Vec::new();
            for (name, entry) in entries {
                let Value::Object(entry) = entry else {
                    errors.push(ConfigError::new(
                        &name,
                        &format!("routes.{name}"),
                        "must be an object",
                    ));
                    continue;
                };
                let mut merged = defaults.clone();
                deep_merge(&mut merged, entry);
                let mut fields = Fields::new(&name, merged);
                match read_route(&mut fields, &global).and_then(|r| fields.finish().map(|()| r)) {
                    Ok(route) => {
                        // Kept sorted by a binary-search insert (JSON
                        // object keys are unique).
                        if let Err(at) = table.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
                            table.insert(at, (name, Rc::new(route)));
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            if !errors.is_empty() {
                return Err(ConfigErrors(errors));
            }
            RouteTable::ByName(table)
        }
        Some(other) => {
            return Err(top
                .error(
                    "routes",
                    format!(
                        "must be an object keyed by route name, got {}",
                        crate::fields::type_name(&other)
                    ),
                )
                .into())
        }
    };
    Ok(PluginConfig {
        global,
        routes,
        observability,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(f: &mut Fields, _: &()) -> Result<CommonConfig, ConfigError> {
        let uri = read_function_uri(f, "function_uri")?;
        CommonConfig::read(f, uri)
    }

    fn compile_str(s: &str) -> Result<PluginConfig<(), CommonConfig>, ConfigError> {
        compile(s.as_bytes(), |_| Ok(()), read)
    }

    #[test]
    fn single_config_gets_defaults() {
        let c = compile_str(r#"{"function_uri": "http://127.0.0.1:9000/f"}"#).unwrap();
        let r = c.routes.lookup(None).unwrap();
        assert_eq!(r.route, "*");
        assert_eq!(r.cluster, "127.0.0.1:9000");
        assert_eq!(r.timeout, Duration::from_millis(3000));
        assert_eq!(r.max_req_body_size, 6 * 1024 * 1024);
        assert!(r.cluster_hints.ssl_verify && r.cluster_hints.keepalive);
        let kong = compile_str(r#"{"function_uri": "http://h/f", "keepalive": 30000}"#).unwrap();
        let k = kong.routes.lookup(None).unwrap();
        assert_eq!(
            (
                k.cluster_hints.keepalive,
                k.cluster_hints.keepalive_timeout_ms
            ),
            (true, 30000)
        );
        assert!(!c.routes.needs_route_name());
    }

    #[test]
    fn report_names_each_bad_route_and_compile_the_first() {
        let json = br#"{"routes": {
            "a": {"function_uri": "http://h/a", "timeout": 5},
            "b": {"function_uri": "http://h/b"},
            "c": "not an object",
            "d": {"function_uri": "http://h/d", "extra": 1}}}"#;
        let errors = compile_report(json, |_| Ok(()), read).unwrap_err();
        let found: Vec<(&str, &str)> = errors
            .all()
            .iter()
            .map(|e| (e.route.as_str(), e.field.as_str()))
            .collect();
        assert_eq!(found, [("a", "timeout"), ("c", "routes.c"), ("d", "extra")]);
        let first = compile(json, |_| Ok(()), read).unwrap_err();
        assert_eq!(
            (first.route.as_str(), first.field.as_str()),
            ("a", "timeout")
        );
        // A top-level error stops there: routes are not compiled.
        let top = compile_report(br#"{"metrics": 1, "routes": {"a": {}}}"#, |_| Ok(()), read)
            .unwrap_err();
        assert_eq!(top.all().len(), 1);
        assert_eq!(top.into_first().field, "metrics");
    }

    #[test]
    fn routes_merge_defaults_deeply_and_unknown_routes_pass_through() {
        let c = compile_str(
            r#"{"cluster": "fns", "timeout": 1000,
                "routes": {"a": {"function_uri": "http://h/a"},
                           "b": {"function_uri": "http://h/b", "timeout": 200, "cluster": null}}}"#,
        )
        .unwrap();
        let a = c.routes.lookup(Some("a")).unwrap();
        assert_eq!((a.cluster.as_str(), a.timeout.as_millis()), ("fns", 1000));
        let b = c.routes.lookup(Some("b")).unwrap();
        assert_eq!((b.cluster.as_str(), b.timeout.as_millis()), ("h", 200));
        assert_eq!(b.route, "b");
        assert!(c.routes.lookup(Some("other")).is_none());
        assert!(c.routes.lookup(None).is_none());
    }

    #[test]
    fn empty_configuration_matches_no_route() {
        for empty in ["", "  \n"] {
            let c = compile_str(empty).unwrap();
            assert!(c.routes.is_empty());
            assert!(!c.routes.needs_route_name());
            assert!(c.routes.lookup(Some("any")).is_none());
            assert!(c.routes.lookup(None).is_none());
        }
        assert!(!compile_str(r#"{"function_uri": "http://h/f"}"#)
            .unwrap()
            .routes
            .is_empty());
    }

    #[test]
    fn body_layout_defaults_to_stop_iteration_and_merges_per_route() {
        let c = compile_str(
            r#"{"body_layout": "holding_filter",
                "routes": {"a": {"function_uri": "http://h/a"},
                           "b": {"function_uri": "http://h/b", "body_layout": "stop_iteration"}}}"#,
        )
        .unwrap();
        let layout = |n| c.routes.lookup(Some(n)).unwrap().body_layout;
        assert_eq!(layout("a"), BodyLayout::HoldingFilter);
        assert_eq!(layout("b"), BodyLayout::StopIteration);
        let d = compile_str(r#"{"function_uri": "http://h/f"}"#).unwrap();
        assert_eq!(
            d.routes.lookup(None).unwrap().body_layout,
            BodyLayout::StopIteration
        );
    }

    #[test]
    fn deep_merge_merges_nested_objects() {
        let mut base = serde_json::json!({"authorization": {"a": 1, "b": 2}, "x": 1});
        let overlay = serde_json::json!({"authorization": {"b": 3}, "x": {"y": 1}});
        if let (Value::Object(b), Value::Object(o)) = (&mut base, overlay) {
            deep_merge(b, o);
        }
        assert_eq!(
            base,
            serde_json::json!({"authorization": {"a": 1, "b": 3}, "x": {"y": 1}})
        );
    }

    #[test]
    fn errors_name_route_and_field() {
        let cases = [
            (r#"{"function_uri": "http://h/f", "timeout": 99}"#, "route \"*\": field \"timeout\": must be between 100 and 900000, got 99"),
            (r#"{"function_uri": 5}"#, "route \"*\": field \"function_uri\": must be a string, got number"),
            (r#"{}"#, "route \"*\": field \"function_uri\": is required"),
            (r#"{"function_uri": "h/f"}"#, "route \"*\": field \"function_uri\": must be an absolute http:// or https:// URL"),
            (r#"{"function_uri": "http://h/f", "tiemout": 1}"#, "route \"*\": field \"tiemout\": unknown field"),
            (r#"{"routes": {"r1": {"function_uri": "http://h/f", "keepalive_pool": 0}}}"#, "route \"r1\": field \"keepalive_pool\": must be between 1 and 4294967295, got 0"),
            (r#"{"routes": {"r1": {"function_uri": "http://h/f", "ssl_verify": "yes"}}}"#, "route \"r1\": field \"ssl_verify\": must be a boolean, got string"),
            (r#"{"routes": {"r1": 3}}"#, "route \"r1\": field \"routes.r1\": must be an object"),
            (r#"{"routes": {}}"#, "route \"*\": field \"routes\": must name at least one route"),
            (r#"{"routes": []}"#, "route \"*\": field \"routes\": must be an object keyed by route name, got array"),
            (r#"{"function_uri": "http://h/f", "strip_prefix": "hello"}"#, "route \"*\": field \"strip_prefix\": must be a path starting with \"/\", without query or fragment"),
            (r#"{"function_uri": "http://h/f", "max_req_body_size": 0}"#, "route \"*\": field \"max_req_body_size\": must be between 1 and 268435456, got 0"),
            (r#"{"function_uri": "http://h/f", "keepalive": "yes"}"#, "route \"*\": field \"keepalive\": must be a boolean or a whole number of ms, got string"),
            (r#"[1]"#, "route \"*\": plugin configuration must be a JSON object"),
            (r#"{"function_uri": "http://h/f", "body_layout": "buffer"}"#, "route \"*\": field \"body_layout\": must be \"stop_iteration\" or \"holding_filter\""),
            (r#"{"function_uri": "http://h/f", "placement": "router"}"#, "route \"*\": field \"placement\": must be \"listener\" or \"upstream\""),
            (r#"{"function_uri": "http://h/f", "max_resp_body_size": 33554433}"#, "route \"*\": field \"max_resp_body_size\": must be at most 33554432: Envoy cuts function responses above 32 MiB before the filter sees them"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                compile_str(input).unwrap_err().to_string(),
                expected,
                "{input}"
            );
        }
        let e = compile_str("{nope").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }
}
