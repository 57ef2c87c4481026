//! `azure-functions`: an Envoy route becomes a call to an Azure Functions
//! HTTP trigger (APISIX and Kong `azure-functions` parity).
//!
//! Two config forms, never mixed:
//! - APISIX: `function_uri` + `authorization.{apikey, clientid}`;
//! - Kong: `appname`, `functionname`, `hostdomain`, `routeprefix`, `https`,
//!   `apikey`, `clientid`, `https_verify`.
//!
//! Keys, per header (`x-functions-key`, `x-functions-clientid`): the
//! client's value wins (unless `strip_client_keys`), then the route's, then
//! the filter-wide `master_apikey` / `master_clientid`. An unset value
//! never produces a header.

use faas_core::config::read_function_uri;
use faas_core::request::forward;
use faas_core::uri::FunctionUri;
use faas_core::{
    Callout, ClientRequest, CommonConfig, ConfigError, ErrorReply, Fields, Integration,
};
use std::time::SystemTime;

pub const KEY_HEADER: &str = "x-functions-key";
pub const CLIENT_ID_HEADER: &str = "x-functions-clientid";

/// Filter-wide fallback keys (APISIX's plugin metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasterKeys {
    pub apikey: Option<String>,
    pub clientid: Option<String>,
}

#[derive(Debug)]
pub struct Route {
    pub common: CommonConfig,
    pub apikey: Option<String>,
    pub clientid: Option<String>,
    /// Remove client-sent key headers before applying ours.
    pub strip_client_keys: bool,
}

/// Fields only the Kong form has.
const KONG_FIELDS: &[&str] = &[
    "appname",
    "functionname",
    "hostdomain",
    "routeprefix",
    "https",
    "https_verify",
    "apikey",
    "clientid",
];

fn dns_label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Kong's URL: `http(s)://<appname>.<hostdomain>/<routeprefix>/<functionname>`,
/// leading and trailing slashes of prefix and function name stripped, the
/// prefix left out when empty.
pub fn kong_url(
    appname: &str,
    hostdomain: &str,
    routeprefix: &str,
    functionname: &str,
    https: bool,
) -> String {
    let scheme = if https { "https" } else { "http" };
    let prefix = routeprefix.trim_matches('/');
    let function = functionname.trim_matches('/');
    if prefix.is_empty() {
        format!("{scheme}://{appname}.{hostdomain}/{function}")
    } else {
        format!("{scheme}://{appname}.{hostdomain}/{prefix}/{function}")
    }
}

fn read_kong_form(
    fields: &mut Fields,
) -> Result<(FunctionUri, Option<String>, Option<String>), ConfigError> {
    let appname = fields.required_string("appname")?;
    let functionname = fields.required_string("functionname")?;
    let hostdomain = fields
        .non_empty_string("hostdomain")?
        .unwrap_or_else(|| "azurewebsites.net".into());
    let routeprefix = fields
        .string("routeprefix")?
        .unwrap_or_else(|| "api".into());
    let https = fields.bool("https")?.unwrap_or(true);
    // Kong's https_verify is realised on the cluster (TLS validation), like ssl_verify.
    fields.bool("https_verify")?;
    if !dns_label_ok(&appname) {
        return Err(fields.error("appname", "must be a host name label (letters, digits, -)"));
    }
    if !dns_label_ok(&hostdomain) {
        return Err(fields.error("hostdomain", "must be a domain name"));
    }
    let url = kong_url(&appname, &hostdomain, &routeprefix, &functionname, https);
    let uri = FunctionUri::parse(&url)
        .map_err(|why| fields.error("functionname", format!("gives an invalid URL: {why}")))?;
    Ok((
        uri,
        fields.header_value("apikey")?,
        fields.header_value("clientid")?,
    ))
}

fn read_apisix_form(
    fields: &mut Fields,
) -> Result<(FunctionUri, Option<String>, Option<String>), ConfigError> {
    let uri = read_function_uri(fields, "function_uri")?;
    let (apikey, clientid) = match fields.object("authorization")? {
        None => (None, None),
        Some(mut auth) => {
            let keys = (auth.header_value("apikey")?, auth.header_value("clientid")?);
            auth.finish()?;
            keys
        }
    };
    Ok((uri, apikey, clientid))
}

pub fn read_route(fields: &mut Fields) -> Result<Route, ConfigError> {
    let kong = KONG_FIELDS.iter().find(|f| fields.has(f)).copied();
    let apisix = ["function_uri", "authorization"]
        .into_iter()
        .find(|f| fields.has(f));
    let (uri, apikey, clientid) = match (kong, apisix) {
        (Some(k), Some(a)) => {
            return Err(fields.error(
                k,
                format!(
                "is a Kong-form field and cannot be mixed with the APISIX form ({a}); use one form"
            ),
            ))
        }
        (Some(_), None) => read_kong_form(fields)?,
        (None, _) => read_apisix_form(fields)?,
    };
    let strip_client_keys = fields.bool("strip_client_keys")?.unwrap_or(false);
    let common = CommonConfig::read(fields, uri)?;
    Ok(Route {
        common,
        apikey,
        clientid,
        strip_client_keys,
    })
}

pub fn read_master_keys(fields: &mut Fields) -> Result<MasterKeys, ConfigError> {
    Ok(MasterKeys {
        apikey: fields.header_value("master_apikey")?,
        clientid: fields.header_value("master_clientid")?,
    })
}

/// Applies the key precedence to one header.
fn apply_key(
    callout: &mut Callout,
    header: &str,
    strip_client: bool,
    route: &Option<String>,
    master: &Option<String>,
) {
    if strip_client {
        callout.remove_header(header);
    }
    if callout.header(header).is_some_and(|v| !v.is_empty()) {
        return; // the client's own key wins
    }
    callout.remove_header(header); // never forward an empty key
    if let Some(value) = route.as_ref().or(master.as_ref()) {
        callout.set_header(header, value.clone());
    }
}

pub fn authorize(master: &MasterKeys, route: &Route, callout: &mut Callout) {
    apply_key(
        callout,
        KEY_HEADER,
        route.strip_client_keys,
        &route.apikey,
        &master.apikey,
    );
    apply_key(
        callout,
        CLIENT_ID_HEADER,
        route.strip_client_keys,
        &route.clientid,
        &master.clientid,
    );
}

pub struct AzureFunctions;

impl Integration for AzureFunctions {
    const NAME: &'static str = "azure-functions";
    type Global = MasterKeys;
    type Route = Route;

    fn read_global(fields: &mut Fields) -> Result<MasterKeys, ConfigError> {
        read_master_keys(fields)
    }

    fn read_route(fields: &mut Fields, _master: &MasterKeys) -> Result<Route, ConfigError> {
        read_route(fields)
    }

    fn common(route: &Route) -> &CommonConfig {
        &route.common
    }

    fn build_callout(
        master: &MasterKeys,
        route: &Route,
        request: &ClientRequest,
        _now: SystemTime,
    ) -> Result<Callout, ErrorReply> {
        let mut callout = forward(&route.common, request);
        authorize(master, route, &mut callout);
        Ok(callout)
    }
}

// The module entry point exists only in the filter build: with `lib-only`
// (or on the host) several filters link into one program, the
// micro-benchmarks, without clashing entry points.
#[cfg(all(target_arch = "wasm32", not(feature = "lib-only")))]
proxy_wasm::main! {{
    faas_core::shell::install::<AzureFunctions>();
}}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::config::{compile, PluginConfig};

    fn compiled(json: &str) -> Result<PluginConfig<MasterKeys, Route>, ConfigError> {
        compile(
            json.as_bytes(),
            AzureFunctions::read_global,
            AzureFunctions::read_route,
        )
    }

    #[test]
    fn kong_urls_normalise_slashes() {
        assert_eq!(
            kong_url("app", "azurewebsites.net", "api", "hello", true),
            "https://app.azurewebsites.net/api/hello"
        );
        assert_eq!(
            kong_url("app", "azurewebsites.net", "/api/", "/hello/", true),
            "https://app.azurewebsites.net/api/hello"
        );
        assert_eq!(
            kong_url("app", "azurewebsites.net", "", "hello", false),
            "http://app.azurewebsites.net/hello"
        );
        assert_eq!(
            kong_url("app", "example.org", "//", "a/b", true),
            "https://app.example.org/a/b"
        );
    }

    #[test]
    fn both_forms_compile() {
        let c = compiled(r#"{"appname": "app", "functionname": "/hello/", "routeprefix": "/fn/", "apikey": "k", "clientid": "c", "https_verify": true}"#).unwrap();
        let r = c.routes.lookup(None).unwrap();
        assert_eq!(
            (
                r.common.function.host.as_str(),
                r.common.function.path.as_str()
            ),
            ("app.azurewebsites.net", "/fn/hello")
        );
        assert_eq!(
            (r.apikey.as_deref(), r.clientid.as_deref()),
            (Some("k"), Some("c"))
        );
        let c = compiled(r#"{"master_apikey": "m", "function_uri": "https://app.azurewebsites.net/api/f?code=abc", "authorization": {"clientid": "c"}}"#).unwrap();
        assert_eq!(c.global.apikey.as_deref(), Some("m"));
        let r = c.routes.lookup(None).unwrap();
        assert_eq!(
            (
                r.apikey.as_deref(),
                r.clientid.as_deref(),
                r.common.function.query.as_str()
            ),
            (None, Some("c"), "code=abc")
        );
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            (
                r#"{"function_uri": "https://a.azurewebsites.net/api/f", "appname": "a"}"#,
                "appname",
                "cannot be mixed with the APISIX form",
            ),
            (
                r#"{"authorization": {"apikey": "k"}, "functionname": "f"}"#,
                "functionname",
                "cannot be mixed",
            ),
            (r#"{"appname": "a"}"#, "functionname", "is required"),
            (r#"{"functionname": "f"}"#, "appname", "is required"),
            (
                r#"{"appname": "a b", "functionname": "f"}"#,
                "appname",
                "must be a host name label",
            ),
            (
                r#"{"function_uri": "https://a/f", "authorization": {"apikey": ""}}"#,
                "authorization.apikey",
                "must not be empty",
            ),
            (
                r#"{"function_uri": "https://a/f", "authorization": {"key": "x"}}"#,
                "authorization.key",
                "unknown field",
            ),
            (
                r#"{"function_uri": "https://a/f", "master_apikey": 1}"#,
                "master_apikey",
                "must be a string",
            ),
            (
                r#"{"appname": "a", "functionname": "f", "https": "yes"}"#,
                "https",
                "must be a boolean",
            ),
        ];
        for (json, field, message) in cases {
            let e = compiled(json).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(e.message.contains(message), "{json}: {e}");
        }
    }

    fn keys_sent(
        master: (&str, &str),
        route: (&str, &str),
        strip: bool,
        client: &[(&str, &str)],
    ) -> (Option<String>, Option<String>) {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let master = MasterKeys {
            apikey: opt(master.0),
            clientid: opt(master.1),
        };
        let c = compiled(r#"{"function_uri": "https://a.azurewebsites.net/api/f"}"#).unwrap();
        let common = c.routes.lookup(None).unwrap().common.clone();
        let route = Route {
            common,
            apikey: opt(route.0),
            clientid: opt(route.1),
            strip_client_keys: strip,
        };
        let mut headers = vec![(":method", "GET"), (":path", "/")];
        headers.extend_from_slice(client);
        let request = ClientRequest {
            headers: faas_core::headers::owned(&headers),
            ..Default::default()
        };
        let call = AzureFunctions::build_callout(&master, &route, &request, SystemTime::UNIX_EPOCH)
            .unwrap();
        assert!(
            call.headers
                .iter()
                .all(|(n, v)| !(n.starts_with("x-functions-") && v.is_empty())),
            "empty key sent"
        );
        assert!(call.headers.iter().filter(|(n, _)| n == KEY_HEADER).count() <= 1);
        (
            call.header(KEY_HEADER).map(String::from),
            call.header(CLIENT_ID_HEADER).map(String::from),
        )
    }

    #[test]
    fn key_precedence_matrix() {
        let s = |v: &str| Some(v.to_string());
        // (master, route, strip, client headers) -> (key, clientid)
        assert_eq!(
            keys_sent(
                ("mk", "mc"),
                ("rk", "rc"),
                false,
                &[(KEY_HEADER, "ck"), (CLIENT_ID_HEADER, "cc")]
            ),
            (s("ck"), s("cc"))
        );
        assert_eq!(
            keys_sent(("mk", "mc"), ("rk", "rc"), false, &[]),
            (s("rk"), s("rc"))
        );
        assert_eq!(
            keys_sent(("mk", "mc"), ("", ""), false, &[]),
            (s("mk"), s("mc"))
        );
        assert_eq!(keys_sent(("", ""), ("", ""), false, &[]), (None, None));
        assert_eq!(
            keys_sent(("mk", "mc"), ("rk", ""), false, &[]),
            (s("rk"), s("mc")),
            "per header"
        );
        assert_eq!(
            keys_sent(("", ""), ("rk", "rc"), false, &[(KEY_HEADER, "ck")]),
            (s("ck"), s("rc")),
            "per header"
        );
        assert_eq!(
            keys_sent(
                ("mk", ""),
                ("rk", ""),
                true,
                &[(KEY_HEADER, "ck"), (CLIENT_ID_HEADER, "cc")]
            ),
            (s("rk"), None),
            "stripped"
        );
        assert_eq!(
            keys_sent(("", ""), ("", ""), true, &[(KEY_HEADER, "ck")]),
            (None, None),
            "stripped, nothing configured"
        );
        assert_eq!(
            keys_sent(("mk", ""), ("", ""), false, &[(KEY_HEADER, "")]),
            (s("mk"), None),
            "an empty client key is no key"
        );
    }
}
