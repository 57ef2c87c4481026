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

pub mod identity;

use faas_core::config::read_function_uri;
use faas_core::credentials::provider::{work, CredentialWork};
use faas_core::request::forward;
use faas_core::uri::FunctionUri;
use faas_core::{
    Callout, ClientRequest, CommonConfig, ConfigError, ErrorReply, Fields, Integration,
};
use identity::environment::Environment;
use identity::{read_managed_identity, Clusters, ManagedIdentity};
use std::cell::{Ref, RefCell};
use std::time::SystemTime;

/// The token provider of this filter's managed-identity sources.
pub type Provider = faas_core::credentials::provider::Provider<identity::chain::Source>;

/// Filter-wide settings: the master keys, and the managed-identity sources
/// (registered while routes compile, then only read).
#[derive(Debug)]
pub struct Global {
    pub master: MasterKeys,
    pub env: Environment,
    pub provider: RefCell<Provider>,
}

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
    /// The managed-identity source (provider index) whose token is sent as
    /// `Bearer <token>` in `identity_header`.
    pub identity: Option<usize>,
    /// `managed_identity.header` (`authorization` unless set).
    pub identity_header: String,
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

/// What a form yields: the URL, the keys, the managed identity.
type FormSettings = (
    FunctionUri,
    Option<String>,
    Option<String>,
    Option<ManagedIdentity>,
);

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

fn read_kong_form(fields: &mut Fields) -> Result<FormSettings, ConfigError> {
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
        read_managed_identity(fields)?,
    ))
}

fn read_apisix_form(fields: &mut Fields) -> Result<FormSettings, ConfigError> {
    let uri = read_function_uri(fields, "function_uri")?;
    let (apikey, clientid, identity) = match fields.object("authorization")? {
        None => (None, None, None),
        Some(mut auth) => {
            let keys = (
                auth.header_value("apikey")?,
                auth.header_value("clientid")?,
                read_managed_identity(&mut auth)?,
            );
            auth.finish()?;
            keys
        }
    };
    Ok((uri, apikey, clientid, identity))
}

/// Registers `identity`'s token source (chosen by the VM's environment).
fn register_identity(
    fields: &Fields,
    global: &Global,
    identity: &ManagedIdentity,
) -> Result<usize, ConfigError> {
    let (source, why) = global.env.source_for(identity).map_err(|e| {
        ConfigError::new(
            fields.route(),
            e.variable,
            format!("(environment) {}", e.message),
        )
    })?;
    // One line per route at load: which identity, and why.
    log::info!(
        "azure-functions: route \"{}\": managed identity token from {} ({why})",
        fields.route(),
        faas_core::credentials::Source::label(&source)
    );
    Ok(global.provider.borrow_mut().register(source))
}

pub fn read_route(fields: &mut Fields, global: &Global) -> Result<Route, ConfigError> {
    let kong = KONG_FIELDS.iter().find(|f| fields.has(f)).copied();
    let apisix = ["function_uri", "authorization"]
        .into_iter()
        .find(|f| fields.has(f));
    let (uri, apikey, clientid, identity) = match (kong, apisix) {
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
    let identity_header = identity
        .as_ref()
        .map_or_else(|| "authorization".to_string(), |mi| mi.header.clone());
    let identity = identity
        .map(|mi| register_identity(fields, global, &mi))
        .transpose()?;
    Ok(Route {
        common,
        apikey,
        clientid,
        strip_client_keys,
        identity,
        identity_header,
    })
}

pub fn read_master_keys(fields: &mut Fields) -> Result<MasterKeys, ConfigError> {
    Ok(MasterKeys {
        apikey: fields.header_value("master_apikey")?,
        clientid: fields.header_value("master_clientid")?,
    })
}

/// The filter-wide fields, with the VM environment `env`.
pub fn read_global(fields: &mut Fields, env: Environment) -> Result<Global, ConfigError> {
    let master = read_master_keys(fields)?;
    let clusters = Clusters::read(fields)?;
    Ok(Global {
        master,
        env,
        provider: RefCell::new(Provider::new(
            AzureFunctions::NAME,
            "Entra ID tokens",
            clusters,
        )),
    })
}

/// Sends the managed identity's token, replacing any `Authorization` the
/// client sent: the gateway's identity is what App Service authentication
/// checks, and a client token would name another audience.
fn send_token(
    global: &Global,
    route: &Route,
    callout: &mut Callout,
    now: SystemTime,
) -> Result<(), ErrorReply> {
    let Some(index) = route.identity else {
        return Ok(());
    };
    let token = global.provider.borrow().current(
        index,
        now,
        "no valid Entra ID token for the managed identity",
    )?;
    callout.set_header(&route.identity_header, format!("Bearer {}", token.0));
    Ok(())
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
    type Global = Global;
    type Route = Route;

    fn read_global(fields: &mut Fields) -> Result<Global, ConfigError> {
        // Envoy passes `vm_config.environment_variables` through WASI.
        read_global(fields, Environment::read(|name| std::env::var(name).ok()))
    }

    fn read_route(fields: &mut Fields, global: &Global) -> Result<Route, ConfigError> {
        read_route(fields, global)
    }

    fn common(route: &Route) -> &CommonConfig {
        &route.common
    }

    /// Routes with a managed identity load its shared token, and are
    /// refused (503) while there is no valid one.
    fn credentials(global: &Global) -> Option<Ref<'_, dyn CredentialWork>> {
        Some(work(&global.provider))
    }

    fn credentials_index(route: &Route) -> Option<usize> {
        route.identity
    }

    fn build_callout(
        global: &Global,
        route: &Route,
        request: &ClientRequest,
        now: SystemTime,
    ) -> Result<Callout, ErrorReply> {
        let mut callout = forward(&route.common, request);
        authorize(&global.master, route, &mut callout);
        send_token(global, route, &mut callout, now)?;
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
    use faas_core::response::Failure;
    use faas_core::CalloutResponse;
    use std::time::Duration;

    fn compiled(json: &str) -> Result<PluginConfig<Global, Route>, ConfigError> {
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
        assert_eq!(c.global.master.apikey.as_deref(), Some("m"));
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
        let c = compiled(r#"{"function_uri": "https://a.azurewebsites.net/api/f"}"#).unwrap();
        let global = Global {
            master: MasterKeys {
                apikey: opt(master.0),
                clientid: opt(master.1),
            },
            ..c.global
        };
        let common = c.routes.lookup(None).unwrap().common.clone();
        let route = Route {
            common,
            apikey: opt(route.0),
            clientid: opt(route.1),
            strip_client_keys: strip,
            identity: None,
            identity_header: "authorization".into(),
        };
        let mut headers = vec![(":method", "GET"), (":path", "/")];
        headers.extend_from_slice(client);
        let request = ClientRequest {
            headers: faas_core::headers::owned(&headers),
            ..Default::default()
        };
        let call = AzureFunctions::build_callout(&global, &route, &request, SystemTime::UNIX_EPOCH)
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
    fn a_managed_identity_route_sends_the_refreshed_token_and_is_held_without_one() {
        let call = identity_callout(
            r#""managed_identity": {"resource": "api://fn", "client_id": "uami"}"#,
        );
        assert_eq!(call.header("authorization"), Some("Bearer tok-1"));
        assert_eq!(call.header(KEY_HEADER), Some("k"), "keys are still sent");
        assert_eq!(
            call.headers
                .iter()
                .filter(|(n, _)| n == "authorization")
                .count(),
            1
        );
    }

    #[test]
    fn the_token_can_go_into_another_header_and_the_clients_authorization_stays() {
        let call = identity_callout(
            r#""managed_identity": {"resource": "api://fn", "client_id": "uami", "header": "X-Gateway-Token"}"#,
        );
        assert_eq!(call.header("x-gateway-token"), Some("Bearer tok-1"));
        assert_eq!(call.header("authorization"), Some("Bearer from-the-client"));
        for bad in [
            "host",
            ":path",
            "x-functions-key",
            "x-envoy-x",
            "a b",
            "content-length",
        ] {
            let config = format!(
                r#"{{"function_uri": "https://a.azurewebsites.net/api/f",
                    "authorization": {{"managed_identity": {{"resource": "api://fn", "header": "{bad}"}}}}}}"#
            );
            let e = compiled(&config).unwrap_err();
            assert_eq!(e.field, "authorization.managed_identity.header", "{bad}");
        }
    }

    /// Envoy's own 503/504 for a token endpoint it could not reach (or that
    /// did not answer in time) are reported as such, never as "HTTP 503".
    #[test]
    fn an_unreachable_or_silent_token_endpoint_is_named_as_such() {
        use faas_core::host::fake::{FakeHost, Shared};
        use std::rc::Rc;
        let envoy_says = |status: u16, body: &str| CalloutResponse {
            status,
            headers: faas_core::headers::owned(&[
                ("content-length", "24"),
                ("content-type", "text/plain"),
            ]),
            body: body.as_bytes().to_vec(),
        };
        for (answer, expected) in [
            (
                envoy_says(503, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"),
                "could not be reached",
            ),
            (envoy_says(504, "upstream request timeout"), "did not answer within 3 s"),
            (envoy_says(503, "busy"), "HTTP 503"),
        ] {
            let c = compiled(
                r#"{"function_uri": "https://a.azurewebsites.net/api/f",
                    "authorization": {"managed_identity": {"resource": "api://fn"}}}"#,
            )
            .unwrap();
            let route = c.routes.lookup(None).unwrap();
            let shared = Rc::new(Shared::default());
            shared.unix_seconds.set(1_800_000_000);
            let host = FakeHost::new(Rc::clone(&shared));
            AzureFunctions::on_tick(&c.global, &host);
            let calls = host.take_calls();
            let (token, _) = calls.first().unwrap();
            AzureFunctions::on_background_response(&c.global, *token, answer, &host);
            let refused = AzureFunctions::admit(&c.global, &route, &host).unwrap_err();
            assert!(refused.message.contains(expected), "{}", refused.message);
        }
    }

    /// Compiles a route with `managed_identity` (and key `k`), refuses it
    /// without a token, fetches one from IMDS over the fake host (`tok-1`),
    /// and builds the call for a client that sent its own Authorization.
    fn identity_callout(managed_identity: &str) -> Callout {
        use faas_core::host::fake::{FakeHost, Shared};
        use std::rc::Rc;
        let config = format!(
            r#"{{"function_uri": "https://a.azurewebsites.net/api/f",
                "authorization": {{"apikey": "k", {managed_identity}}}}}"#
        );
        let c = compiled(&config).unwrap();
        let route = c.routes.lookup(None).unwrap();
        assert_eq!(route.identity, Some(0));
        assert_eq!(
            AzureFunctions::background_period(&c.global),
            Some(faas_core::integration::CREDENTIALS_TICK)
        );
        let shared = Rc::new(Shared::default());
        shared.unix_seconds.set(1_800_000_000);
        let host = FakeHost::new(Rc::clone(&shared));
        let refused = AzureFunctions::admit(&c.global, &route, &host).unwrap_err();
        assert_eq!(
            (refused.failure, refused.status),
            (Failure::CredentialsUnavailable, 503)
        );
        // One tick: the IMDS call (the environment names no other source).
        AzureFunctions::on_tick(&c.global, &host);
        let calls = host.take_calls();
        let (token, call) = calls.first().unwrap();
        assert_eq!(call.cluster, "azure_imds");
        assert_eq!(call.header("metadata"), Some("true"));
        assert!(call.header(":path").unwrap().contains("&client_id=uami"));
        let answer = CalloutResponse {
            status: 200,
            headers: Vec::new(),
            body: br#"{"access_token":"tok-1","expires_on":"1800003600"}"#.to_vec(),
        };
        AzureFunctions::on_background_response(&c.global, *token, answer, &host);
        AzureFunctions::admit(&c.global, &route, &host).unwrap();
        let request = ClientRequest {
            headers: faas_core::headers::owned(&[
                (":method", "GET"),
                (":path", "/"),
                ("authorization", "Bearer from-the-client"),
            ]),
            ..Default::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_001);
        AzureFunctions::build_callout(&c.global, &route, &request, now).unwrap()
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
