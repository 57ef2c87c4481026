//! `envoy-faas import envoy`: an Envoy config that uses Envoy's native
//! `envoy.filters.http.aws_lambda` (filter-wide and per route) and
//! `envoy.filters.http.aws_request_signing` (Function URLs), rewritten with
//! `aws_lambda.wasm` in their place. Listeners, routes and clusters stay as
//! they are; each route the native filters acted on gets an entry in the
//! wasm filter's `routes` (and a name, when it had none), in native's
//! payload format, so its function works unchanged.
//!
//! Which routes native acts on, as Envoy 1.40 does it (`envoy-wasm.md` A1):
//! a route with a per-route `invoke_config`, or any route whose cluster
//! carries `com.amazonaws.lambda` `egress_gateway: true`; `aws_request_signing`
//! signs every route of its listener that does not disable it.

use crate::envoy;
use crate::filters::{self, Filter};
use crate::report::Report;
use crate::yaml::{map, s};
use serde_json::{json, Map, Value as Json};
use serde_yaml::Value;

const LAMBDA: &str = "envoy.filters.http.aws_lambda";
const SIGNING: &str = "envoy.filters.http.aws_request_signing";
const LAMBDA_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.aws_lambda.v3.Config";
const SIGNING_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning";

#[derive(Debug, Clone)]
pub struct Options {
    /// Where the `.wasm` modules are.
    pub wasm_dir: String,
    /// `--forwarding route`: Function URL routes forward in place (each
    /// gets its twin route); Invoke routes stay callouts.
    pub in_place: bool,
}

/// What an import of a native config made.
#[derive(Debug)]
pub struct Imported {
    pub output: String,
    pub report: Report,
    pub routes: usize,
}

fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_mapping()?.get(key)
}

fn get_mut<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    value.as_mapping_mut()?.get_mut(key)
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    get(value, key).and_then(Value::as_str)
}

/// The filter an `http_filters` entry is: by its `@type`, else its name.
fn kind(filter: &Value) -> Option<&'static str> {
    let type_url = get(filter, "typed_config").and_then(|t| text(t, "@type"));
    match (type_url, text(filter, "name")) {
        (Some(LAMBDA_TYPE), _) | (None, Some(LAMBDA)) => Some(LAMBDA),
        (Some(SIGNING_TYPE), _) | (None, Some(SIGNING)) => Some(SIGNING),
        _ => None,
    }
}

/// The clusters marked as Lambda egress gateways.
fn lambda_clusters(doc: &Value) -> Vec<String> {
    let clusters = get(doc, "static_resources")
        .and_then(|r| get(r, "clusters"))
        .and_then(Value::as_sequence);
    clusters
        .into_iter()
        .flatten()
        .filter(|c| {
            get(c, "metadata")
                .and_then(|m| get(m, "filter_metadata"))
                .and_then(|m| get(m, "com.amazonaws.lambda"))
                .and_then(|m| get(m, "egress_gateway"))
                .and_then(Value::as_bool)
                == Some(true)
        })
        .filter_map(|c| text(c, "name").map(str::to_string))
        .collect()
}

/// Our route entry for a native `aws_lambda` `Config` (filter-wide or a
/// route's `invoke_config`), for a route to `cluster`.
fn invoke_entry(config: &Value, cluster: &str, source: &str, report: &mut Report) -> Option<Json> {
    let Some(arn) = text(config, "arn") else {
        report.not_translated(source, "aws_lambda has no arn");
        return None;
    };
    let parts: Vec<&str> = arn.split(':').collect();
    let Some(region) = parts.get(3).filter(|_| parts.len() >= 7) else {
        report.not_translated(source, "aws_lambda's arn is not a function ARN");
        return None;
    };
    let host = text(config, "host_rewrite")
        .map(str::to_string)
        .unwrap_or_else(|| format!("lambda.{region}.amazonaws.com"));
    let mut entry = json!({
        "cluster": cluster,
        "function_name": arn,
        "endpoint": format!("https://{host}"),
        "payload_format": if get(config, "payload_passthrough").and_then(Value::as_bool) == Some(true) { "raw" } else { "envoy" },
    });
    if text(config, "invocation_mode") == Some("ASYNCHRONOUS") {
        entry["invocation_type"] = json!("Event");
        entry["payload_format"] = json!("raw");
        report.changed(
            source,
            "invocation_mode ASYNCHRONOUS: Invoke type Event; the event is the request body as native sends it only with payload_passthrough (native transforms it; set payload_format envoy to keep that)",
        );
    }
    credentials(config, &mut entry, source, report);
    Some(entry)
}

/// Native's inline `credentials`, or its default chain (ours: the same
/// sources, failing closed).
fn credentials(config: &Value, entry: &mut Json, source: &str, report: &mut Report) {
    if let Some(c) = get(config, "credentials") {
        entry["aws_key"] = json!(text(c, "access_key_id").unwrap_or_default());
        entry["aws_secret"] = json!(text(c, "secret_access_key").unwrap_or_default());
        if let Some(token) = text(c, "session_token") {
            entry["authorization"] = json!({"iam": {
                "accesskey": entry["aws_key"].take(), "secretkey": entry["aws_secret"].take(),
                "session_token": token}});
            if let Some(o) = entry.as_object_mut() {
                o.remove("aws_key");
                o.remove("aws_secret");
            }
        }
        report.note(source, "inline credentials carried over (as native's docs say: not for production; prefer a platform source)");
    } else if let Some(profile) = text(config, "credentials_profile") {
        report.changed(
            source,
            format!("credentials_profile \"{profile}\": set credential_source profile with AWS_PROFILE={profile} and AWS_SHARED_CREDENTIALS_FILE in the VM's environment (one profile per filter)"),
        );
    } else {
        report.note(
            source,
            "no inline credentials: the platform chain signs (environment, shared files, web identity, container, instance metadata); where native sends a request unsigned when the chain is empty, ours answers 503",
        );
    }
}

/// Our route entry for an `aws_request_signing` config (a Function URL).
fn signing_entry(config: &Value, cluster: &str, source: &str, report: &mut Report) -> Option<Json> {
    let service = text(config, "service_name").unwrap_or("lambda");
    let region = text(config, "region").unwrap_or("us-east-1");
    let Some(host) = text(config, "host_rewrite") else {
        report.not_translated(
            source,
            "aws_request_signing without host_rewrite: the function URL's host is the client's Host, which the filter must know; set host_rewrite",
        );
        return None;
    };
    let mut iam = json!({"aws_region": region, "service": service});
    if get(config, "use_unsigned_payload").and_then(Value::as_bool) != Some(true) {
        iam["content_sha256"] = json!(true);
    }
    for (field, why) in [
        (
            "match_excluded_headers",
            "the filter signs its own fixed set of headers",
        ),
        (
            "match_included_headers",
            "the filter signs its own fixed set of headers",
        ),
        ("signing_algorithm", "SigV4A is not supported; SigV4 signs"),
        (
            "query_string",
            "query-string signing is not supported; the Authorization header carries the signature",
        ),
    ] {
        if get(config, field).is_some() {
            report.not_translated(source, format!("aws_request_signing.{field}: {why}"));
        }
    }
    if let Some(c) = get(config, "credential_provider") {
        if let Some(inline) = get(c, "inline_credential") {
            iam["accesskey"] = json!(text(inline, "access_key_id").unwrap_or_default());
            iam["secretkey"] = json!(text(inline, "secret_access_key").unwrap_or_default());
            if let Some(token) = text(inline, "session_token") {
                iam["session_token"] = json!(token);
            }
        } else {
            report.changed(source, "credential_provider: the platform chain signs (credential_source and the VM's environment choose the source)");
        }
    }
    Some(json!({
        "cluster": cluster,
        "function_uri": format!("https://{host}/"),
        "strip_prefix": "/",
        "authorization": {"iam": iam},
    }))
}

/// Rewrites one HTTP connection manager: native filters out, ours in, the
/// routes they acted on named and configured. Returns the routes made.
fn rewrite_hcm(
    hcm: &mut Value,
    egress: &[String],
    where_: &str,
    options: &Options,
    report: &mut Report,
) -> usize {
    let Some(filters) = get_mut(hcm, "http_filters").and_then(Value::as_sequence_mut) else {
        return 0;
    };
    let lambda = filters
        .iter()
        .find(|f| kind(f) == Some(LAMBDA))
        .map(|f| get(f, "typed_config").cloned().unwrap_or(Value::Null));
    let signing = filters
        .iter()
        .find(|f| kind(f) == Some(SIGNING))
        .map(|f| get(f, "typed_config").cloned().unwrap_or(Value::Null));
    let Some(position) = filters.iter().position(|f| kind(f).is_some()) else {
        return 0;
    };
    let original = filters.clone();
    filters.retain(|f| kind(f).is_none());
    let mut routes = Map::new();
    let mut anonymous = 0;
    let (mut twins, mut authorities) = (Vec::new(), Vec::new());
    if get(hcm, "rds").is_some() {
        report.not_translated(where_, "routes from RDS: the wasm filter's per-route config needs the route names; add a routes entry per Lambda route by hand");
    }
    let vhosts = get_mut(hcm, "route_config")
        .and_then(|rc| get_mut(rc, "virtual_hosts"))
        .and_then(Value::as_sequence_mut);
    for vhost in vhosts.into_iter().flatten() {
        let vhost_name = text(vhost, "name").unwrap_or("vhost").to_string();
        let Some(list) = get_mut(vhost, "routes").and_then(Value::as_sequence_mut) else {
            continue;
        };
        for route in list.iter_mut() {
            let Some(cluster) = get(route, "route")
                .and_then(|r| text(r, "cluster"))
                .map(str::to_string)
            else {
                continue;
            };
            let per_route = get(route, "typed_per_filter_config");
            let invoke = per_route
                .and_then(|p| get(p, LAMBDA))
                .and_then(|p| get(p, "invoke_config"))
                .cloned();
            let signing_disabled = per_route
                .and_then(|p| get(p, SIGNING))
                .is_some_and(|p| get(p, "disabled").and_then(Value::as_bool) == Some(true));
            let name = match text(route, "name") {
                Some(n) => n.to_string(),
                None => {
                    anonymous += 1;
                    format!("{vhost_name}-lambda-{anonymous}")
                }
            };
            let source = format!("route \"{name}\"");
            let entry = match (&invoke, &lambda, &signing) {
                (Some(config), _, _) => invoke_entry(config, &cluster, &source, report),
                (None, Some(config), _) if egress.contains(&cluster) => {
                    invoke_entry(config, &cluster, &source, report)
                }
                (None, _, Some(config)) if !signing_disabled => {
                    signing_entry(config, &cluster, &source, report)
                }
                _ => None,
            };
            let Some(entry) = entry else { continue };
            if let Some(m) = route.as_mapping_mut() {
                m.insert(s("name"), s(name.clone()));
                if let Some(p) = m
                    .get_mut("typed_per_filter_config")
                    .and_then(Value::as_mapping_mut)
                {
                    p.remove(LAMBDA);
                    p.remove(SIGNING);
                }
            }
            let mut entry = entry;
            if options.in_place && entry.get("function_uri").is_some() {
                entry["forwarding"] = json!("route");
                twins.push(envoy::twin(&name, map([("cluster", s(cluster.as_str()))])));
                if let Some(host) = signing.as_ref().and_then(|c| text(c, "host_rewrite")) {
                    authorities.push(host.to_string());
                }
            } else if options.in_place {
                report.changed(
                    &source,
                    "stays a callout: Invoke mode forwards in place only when it streams",
                );
            }
            routes.insert(name, entry);
        }
    }
    add_twins(hcm, twins, authorities);
    let made = routes.len();
    if made == 0 {
        // Nothing translated here: the native filters stay, as they were.
        if let Some(filters) = get_mut(hcm, "http_filters") {
            *filters = Value::Sequence(original);
        }
        report.not_translated(
            where_,
            "the native filters stay: none of their routes could be translated",
        );
        return 0;
    }
    let config = json!({"routes": routes});
    let compiled = serde_json::to_vec(&config).unwrap_or_default();
    if let Err(errors) = filters::compile(Filter::AwsLambda, &compiled) {
        for e in errors {
            report.not_translated(where_, format!("the translated config was refused: {e}"));
        }
    }
    if let Some(filters) = get_mut(hcm, "http_filters").and_then(Value::as_sequence_mut) {
        let at = position.min(filters.len());
        filters.insert(
            at,
            envoy::wasm_filter(Filter::AwsLambda, &config, &options.wasm_dir),
        );
    }
    made
}

/// Puts the twins first in every virtual host; when none answers every
/// domain, a virtual host of the functions' authorities carries them (the
/// rewritten request is routed again by the function's authority).
fn add_twins(hcm: &mut Value, twins: Vec<Value>, authorities: Vec<String>) {
    if twins.is_empty() {
        return;
    }
    let Some(vhosts) = get_mut(hcm, "route_config")
        .and_then(|rc| get_mut(rc, "virtual_hosts"))
        .and_then(Value::as_sequence_mut)
    else {
        return;
    };
    let mut wildcard = false;
    for vhost in vhosts.iter_mut() {
        wildcard |= get(vhost, "domains")
            .and_then(Value::as_sequence)
            .is_some_and(|d| d.iter().any(|d| d.as_str() == Some("*")));
        if let Some(list) = get_mut(vhost, "routes").and_then(Value::as_sequence_mut) {
            for (i, twin) in twins.iter().enumerate() {
                list.insert(i, twin.clone());
            }
        }
    }
    if !wildcard {
        let domains: Vec<Value> = authorities.into_iter().map(s).collect();
        let mut vhost = serde_yaml::Mapping::new();
        vhost.insert(s("name"), s("envoy-faas-in-place"));
        vhost.insert(s("domains"), Value::Sequence(domains));
        vhost.insert(s("routes"), Value::Sequence(twins));
        vhosts.push(Value::Mapping(vhost));
    }
}

/// Reads a native config (YAML or JSON) and writes it with our filter.
pub fn import(input: &str, input_name: &str, options: &Options) -> Result<Imported, String> {
    let mut doc: Value = serde_yaml::from_str(input).map_err(|e| format!("{input_name}: {e}"))?;
    let egress = lambda_clusters(&doc);
    let mut report = Report::default();
    let mut routes = 0;
    let listeners = get_mut(&mut doc, "static_resources")
        .and_then(|r| get_mut(r, "listeners"))
        .and_then(Value::as_sequence_mut);
    for listener in listeners.into_iter().flatten() {
        let listener_name = text(listener, "name").unwrap_or("listener").to_string();
        let chains = get_mut(listener, "filter_chains").and_then(Value::as_sequence_mut);
        for chain in chains.into_iter().flatten() {
            let filters = get_mut(chain, "filters").and_then(Value::as_sequence_mut);
            for filter in filters.into_iter().flatten() {
                if let Some(hcm) = get_mut(filter, "typed_config") {
                    let where_ = format!("listener \"{listener_name}\"");
                    routes += rewrite_hcm(hcm, &egress, &where_, options, &mut report);
                }
            }
        }
    }
    let upstream = get(&doc, "static_resources")
        .and_then(|r| get(r, "clusters"))
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter(|c| {
            // Upstream HTTP filters: HttpProtocolOptions' `http_filters`.
            get(c, "typed_extension_protocol_options")
                .and_then(Value::as_mapping)
                .into_iter()
                .flat_map(|o| o.values())
                .filter_map(|o| get(o, "http_filters").and_then(Value::as_sequence))
                .flatten()
                .any(|f| kind(f) == Some(LAMBDA))
        })
        .filter_map(|c| text(c, "name"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    for cluster in upstream {
        report.not_translated(
            format!("cluster \"{cluster}\""),
            "aws_lambda as an upstream filter of the cluster: move it to the listener's routes (the wasm filter runs downstream)",
        );
    }
    if routes == 0 {
        report.note(
            input_name,
            "no route used the native aws_lambda or aws_request_signing filters",
        );
    }
    let header = format!(
        "# Generated by `envoy-faas import envoy {input_name}` (envoy-faas {}): Envoy's native\n# aws_lambda / aws_request_signing replaced by aws_lambda.wasm; the rest as it was.\n",
        env!("CARGO_PKG_VERSION")
    );
    let body = serde_yaml::to_string(&doc).map_err(|e| e.to_string())?;
    Ok(Imported {
        output: format!("{header}{body}"),
        report,
        routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hcm(filters: &str, routes: &str) -> String {
        format!(
            r#"
static_resources:
  listeners:
  - name: edge
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: edge
          route_config:
            virtual_hosts:
            - name: fns
              domains: ["*"]
              routes: {routes}
          http_filters: {filters}
  clusters:
  - name: url
    type: STRICT_DNS
"#
        )
    }

    fn options() -> Options {
        Options {
            wasm_dir: "/opt/wasm".into(),
            in_place: false,
        }
    }

    /// The plugin config the import put into the wasm filter.
    fn plugin(output: &str) -> Json {
        let doc: Json = serde_yaml::from_str(output).unwrap();
        let filters = &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"];
        let value = filters[0]["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap();
        serde_json::from_str(value).unwrap()
    }

    #[test]
    fn request_signing_becomes_a_signed_function_url_and_the_rest_is_reported() {
        let filters = r#"[{name: envoy.filters.http.aws_request_signing, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning, service_name: lambda, region: eu-west-1, host_rewrite: abc.lambda-url.eu-west-1.on.aws, use_unsigned_payload: true, match_excluded_headers: [{prefix: x-envoy}]}}, {name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]"#;
        let routes = r#"[{match: {prefix: /}, route: {cluster: url}}, {match: {prefix: /skip}, route: {cluster: url}, typed_per_filter_config: {envoy.filters.http.aws_request_signing: {disabled: true}}}]"#;
        let out = import(&hcm(filters, routes), "in.yaml", &options()).unwrap();
        assert_eq!(
            out.routes, 1,
            "the route that disabled signing is left alone"
        );
        let config = plugin(&out.output);
        assert_eq!(
            config["routes"]["fns-lambda-1"],
            json!({"cluster": "url", "function_uri": "https://abc.lambda-url.eu-west-1.on.aws/",
                   "strip_prefix": "/", "authorization": {"iam": {"aws_region": "eu-west-1", "service": "lambda"}}})
        );
        let report = out.report.to_string();
        assert!(report.contains("match_excluded_headers"), "{report}");
        assert!(
            out.output.contains("name: fns-lambda-1"),
            "the route got its name"
        );
        assert!(out.output.contains("/opt/wasm/aws_lambda.wasm"));
        assert!(!out.output.contains("aws_request_signing.v3"));
    }

    #[test]
    fn aws_lambda_as_a_clusters_upstream_filter_is_reported() {
        let text = hcm("[]", "[]").replace(
            "    type: STRICT_DNS",
            "    type: STRICT_DNS\n    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        http_filters: [{name: envoy.filters.http.aws_lambda}, {name: envoy.filters.http.upstream_codec}]",
        );
        let report = import(&text, "in.yaml", &options())
            .unwrap()
            .report
            .to_string();
        assert!(
            report.contains("cluster \"url\": aws_lambda as an upstream filter"),
            "{report}"
        );
        let plain = import(&hcm("[]", "[]"), "in.yaml", &options())
            .unwrap()
            .report
            .to_string();
        assert!(!plain.contains("upstream filter"), "{plain}");
    }

    #[test]
    fn rds_and_bad_arns_are_reported_not_guessed() {
        let filters = r#"[{name: envoy.filters.http.aws_lambda, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.aws_lambda.v3.Config, arn: "arn:aws:lambda:us-east-1"}}]"#;
        let routes = r#"[{match: {prefix: /}, route: {cluster: url}, typed_per_filter_config: {envoy.filters.http.aws_lambda: {invoke_config: {arn: not-an-arn}}}}]"#;
        let text = hcm(filters, routes).replace(
            "stat_prefix: edge",
            "stat_prefix: edge\n          rds: {route_config_name: r}",
        );
        let out = import(&text, "in.yaml", &options()).unwrap();
        let report = out.report.to_string();
        assert!(report.contains("routes from RDS"), "{report}");
        assert!(report.contains("not a function ARN"), "{report}");
        assert_eq!(out.routes, 0);
        assert!(import("{", "bad.yaml", &options()).is_err());
    }
}
