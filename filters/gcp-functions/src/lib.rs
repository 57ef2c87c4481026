//! `gcp-functions`: an Envoy route becomes a call to a Google Cloud Run
//! service, a Cloud Run function or a first-generation Cloud Function, with
//! a Google-signed ID token for the service ([`identity`]):
//! - `function_uri`: the function's URL (`https://<service>-<hash>-<region>.a.run.app`,
//!   `https://<region>-<project>.cloudfunctions.net/<name>`, or a custom
//!   domain) through an Envoy cluster, both request paths (callout, in
//!   place);
//! - `path_translation` as Google API Gateway's `x-google-backend`:
//!   `APPEND_PATH_TO_ADDRESS` (the default: the function's path plus the
//!   forwarded remainder) or `CONSTANT_ADDRESS` (always the function's
//!   path; the client's query kept);
//! - `authorization.id_token`: the token's audience (the service URL by
//!   default) and header (`Authorization`, the client's then moving to
//!   `X-Forwarded-Authorization` as ESPv2 does, or
//!   `X-Serverless-Authorization`, leaving the client's `Authorization` to
//!   the application). Fail closed: no valid token, no call (503).

pub mod aws_subject;
pub mod federation;
pub mod identity;
pub mod pkcs8;
pub mod service_account;
pub mod wire;

use faas_core::config::read_function_uri;
use faas_core::credentials::provider::{work, CredentialWork};
use faas_core::path::split_path_query;
use faas_core::request::forward;
use faas_core::uri::FunctionUri;
use faas_core::{
    Callout, ClientRequest, CommonConfig, ConfigError, ErrorReply, Fields, Integration,
};
use identity::{Clusters, Source};
use std::cell::{Ref, RefCell};
use std::time::SystemTime;

/// The token provider of this filter's sources.
pub type Provider = faas_core::credentials::provider::Provider<Source>;

pub struct Global {
    pub provider: RefCell<Provider>,
    /// `external_account`: the Workload Identity Federation configuration.
    pub external_account: Option<federation::ExternalAccount>,
    /// `service_account_key_file`: a key file's path (read through the
    /// token-file cluster).
    pub key_file: Option<String>,
}

/// Google API Gateway's `x-google-backend` path translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathTranslation {
    /// The function's path, then the forwarded remainder and the query.
    AppendPathToAddress,
    /// Always the function's path; the query is kept.
    ConstantAddress,
}

/// Where the ID token goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenHeader {
    /// `Authorization`; the client's own moves to `X-Forwarded-Authorization`.
    Authorization,
    /// `X-Serverless-Authorization`: Cloud Run checks it and passes the
    /// client's `Authorization` to the application untouched.
    Serverless,
}

#[derive(Debug)]
pub struct Route {
    pub common: CommonConfig,
    pub path: PathTranslation,
    /// The ID token source (provider index), `None` for a public service.
    pub identity: Option<usize>,
    pub header: TokenHeader,
}

/// The token's default audience: the service URL, `scheme://host[:port]`
/// (what Cloud Run always accepts), or for a first-generation function
/// (`*.cloudfunctions.net/<name>`) the function's URL.
pub fn default_audience(uri: &FunctionUri) -> String {
    let base = format!("{}://{}", uri.scheme.as_str(), uri.authority());
    if uri.host.ends_with(".cloudfunctions.net") {
        if let Some(name) = uri
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .filter(|n| !n.is_empty())
        {
            return format!("{base}/{name}");
        }
    }
    base
}

fn read_identity(
    fields: &mut Fields,
    uri: &FunctionUri,
    global: &Global,
) -> Result<(Option<usize>, TokenHeader), ConfigError> {
    let Some(mut auth) = fields.object("authorization")? else {
        return Ok((None, TokenHeader::Authorization));
    };
    let Some(mut token) = auth.object("id_token")? else {
        auth.finish()?;
        return Ok((None, TokenHeader::Authorization));
    };
    let audience = match token.non_empty_string("audience")? {
        None => default_audience(uri),
        Some(a) if a.bytes().all(|b| b.is_ascii_graphic()) => a,
        Some(_) => return Err(token.error("audience", "must be a URL or audience without spaces")),
    };
    let header = match token
        .string("header")?
        .map(|h| h.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("authorization") => TokenHeader::Authorization,
        Some("x-serverless-authorization") => TokenHeader::Serverless,
        Some(_) => {
            return Err(token.error(
                "header",
                "must be one of authorization, x-serverless-authorization",
            ))
        }
    };
    let default = if global.external_account.is_some() {
        "external_account"
    } else if global.key_file.is_some() {
        "service_account_key"
    } else {
        "metadata_server"
    };
    let source = match token.string("source")?.as_deref().unwrap_or(default) {
        "metadata_server" => Source::MetadataServer { audience },
        "external_account" => match &global.external_account {
            Some(account) => Source::ExternalAccount {
                account: Box::new(account.clone()),
                audience,
            },
            None => {
                return Err(token.error(
                    "source",
                    "is external_account, but the config has no top-level external_account",
                ))
            }
        },
        "service_account_key" => match &global.key_file {
            Some(key_file) => Source::ServiceAccountKey {
                key_file: key_file.clone(),
                audience,
            },
            None => return Err(token.error(
                "source",
                "is service_account_key, but the config has no top-level service_account_key_file",
            )),
        },
        _ => {
            return Err(token.error(
                "source",
                "must be one of metadata_server, external_account, service_account_key",
            ))
        }
    };
    token.finish()?;
    auth.finish()?;
    Ok((Some(global.provider.borrow_mut().register(source)), header))
}

pub fn read_route(fields: &mut Fields, global: &Global) -> Result<Route, ConfigError> {
    let uri = read_function_uri(fields, "function_uri")?;
    let path = match fields.string("path_translation")?.as_deref() {
        None | Some("APPEND_PATH_TO_ADDRESS") => PathTranslation::AppendPathToAddress,
        Some("CONSTANT_ADDRESS") => PathTranslation::ConstantAddress,
        Some(_) => {
            return Err(fields.error(
                "path_translation",
                "must be one of APPEND_PATH_TO_ADDRESS, CONSTANT_ADDRESS",
            ))
        }
    };
    let (identity, header) = read_identity(fields, &uri, global)?;
    let common = CommonConfig::read(fields, uri)?;
    Ok(Route {
        common,
        path,
        identity,
        header,
    })
}

pub fn read_global(fields: &mut Fields) -> Result<Global, ConfigError> {
    let mut cluster = |field: &str, default: &str| -> Result<String, ConfigError> {
        Ok(fields
            .non_empty_string(field)?
            .unwrap_or_else(|| default.to_string()))
    };
    let clusters = Clusters {
        metadata: cluster("metadata_cluster", "gcp_metadata")?,
        sts: cluster("sts_cluster", "gcp_sts")?,
        iam_credentials: cluster("iam_credentials_cluster", "gcp_iam_credentials")?,
        token_files: cluster("token_file_cluster", "gcp_token_files")?,
        subject_token: cluster("subject_token_cluster", "gcp_subject_token")?,
        oauth2: cluster("oauth2_cluster", "gcp_oauth2")?,
    };
    let external_account = federation::read(fields)?;
    let key_file = fields.non_empty_string("service_account_key_file")?;
    if key_file.as_deref().is_some_and(|f| !f.starts_with('/')) {
        return Err(fields.error("service_account_key_file", "must be an absolute path"));
    }
    Ok(Global {
        provider: RefCell::new(Provider::new(
            GcpFunctions::NAME,
            "Google ID tokens",
            clusters,
        )),
        external_account,
        key_file,
    })
}

/// `CONSTANT_ADDRESS`: the function's own path, whatever the client asked
/// for below the route; the query (the function's, then the client's)
/// stays.
fn constant_address(route: &Route, callout: &mut Callout) {
    let target = callout.header(":path").unwrap_or("/");
    let (_, query) = split_path_query(target);
    let base = route.common.function.path.as_str();
    let mut path = if base.is_empty() {
        "/".to_string()
    } else {
        base.to_string()
    };
    if !query.is_empty() {
        path.push('?');
        path.push_str(query);
    }
    callout.set_header(":path", path);
}

/// Puts the route's ID token in its header. The client cannot choose the
/// identity Cloud Run checks: its own `X-Serverless-Authorization` (which
/// Cloud Run would check instead) never goes through.
fn send_token(
    global: &Global,
    route: &Route,
    callout: &mut Callout,
    now: SystemTime,
) -> Result<(), ErrorReply> {
    let Some(index) = route.identity else {
        return Ok(());
    };
    let token =
        global
            .provider
            .borrow()
            .current(index, now, "no valid Google ID token for the service")?;
    callout.remove_header("x-serverless-authorization");
    let bearer = format!("Bearer {}", token.0);
    match route.header {
        TokenHeader::Authorization => {
            callout.remove_header("x-forwarded-authorization");
            if let Some(client) = callout.header("authorization").map(str::to_string) {
                callout.set_header("x-forwarded-authorization", client);
            }
            callout.set_header("authorization", bearer);
        }
        TokenHeader::Serverless => callout.set_header("x-serverless-authorization", bearer),
    }
    Ok(())
}

pub struct GcpFunctions;

impl Integration for GcpFunctions {
    const NAME: &'static str = "gcp-functions";
    type Global = Global;
    type Route = Route;

    fn read_global(fields: &mut Fields) -> Result<Global, ConfigError> {
        read_global(fields)
    }

    fn read_route(fields: &mut Fields, global: &Global) -> Result<Route, ConfigError> {
        read_route(fields, global)
    }

    fn common(route: &Route) -> &CommonConfig {
        &route.common
    }

    /// Routes with an ID token load the shared token, and are refused
    /// (503) while there is no valid one.
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
        if route.path == PathTranslation::ConstantAddress {
            constant_address(route, &mut callout);
        }
        send_token(global, route, &mut callout, now)?;
        Ok(callout)
    }
}

// The module entry point exists only in the filter build (see the other
// filters): with `lib-only` several filters link into one program.
#[cfg(all(target_arch = "wasm32", not(feature = "lib-only")))]
proxy_wasm::main! {{
    faas_core::shell::install::<GcpFunctions>();
}}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::config::{compile, PluginConfig};
    use faas_core::host::fake::{FakeHost, Shared};
    use faas_core::response::Failure;
    use faas_core::CalloutResponse;
    use std::rc::Rc;
    use std::time::Duration;

    fn compiled(json: &str) -> Result<PluginConfig<Global, Route>, ConfigError> {
        compile(
            json.as_bytes(),
            GcpFunctions::read_global,
            GcpFunctions::read_route,
        )
    }

    /// A JWT whose claims are `{"exp": exp}` (signature not checked here).
    fn jwt(exp: u64) -> String {
        let claims = faas_core::base64::encode(format!(r#"{{"exp":{exp}}}"#).as_bytes());
        format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", claims.trim_end_matches('='))
    }

    /// Compiles `json`, refuses without a token, fetches one over the fake
    /// host's metadata server and builds the call for `client` headers.
    fn call(json: &str, client: &[(&str, &str)]) -> Callout {
        let c = compiled(json).unwrap();
        let route = c.routes.lookup(None).unwrap();
        let shared = Rc::new(Shared::default());
        shared.unix_seconds.set(1_800_000_000);
        let host = FakeHost::new(Rc::clone(&shared));
        if route.identity.is_some() {
            let refused = GcpFunctions::admit(&c.global, &route, &host).unwrap_err();
            assert_eq!(
                (refused.failure, refused.status),
                (Failure::CredentialsUnavailable, 503)
            );
            GcpFunctions::on_tick(&c.global, &host);
            let calls = host.take_calls();
            let (token, metadata) = calls.first().unwrap();
            assert_eq!(metadata.cluster, "gcp_metadata");
            assert_eq!(
                metadata.header(":authority"),
                Some("metadata.google.internal")
            );
            assert_eq!(metadata.header("metadata-flavor"), Some("Google"));
            let answer = CalloutResponse {
                status: 200,
                headers: Vec::new(),
                body: jwt(1_800_003_600).into_bytes(),
            };
            GcpFunctions::on_background_response(&c.global, *token, answer, &host);
            GcpFunctions::admit(&c.global, &route, &host).unwrap();
        }
        let mut headers =
            faas_core::headers::owned(&[(":method", "GET"), (":path", "/items/7?x=1")]);
        headers.extend(faas_core::headers::owned(client));
        let request = ClientRequest {
            headers,
            ..Default::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_001);
        GcpFunctions::build_callout(&c.global, &route, &request, now).unwrap()
    }

    #[test]
    fn audiences_default_to_the_service_url() {
        let uri = |u: &str| FunctionUri::parse(u).unwrap();
        assert_eq!(
            default_audience(&uri("https://svc-abc-uc.a.run.app/api")),
            "https://svc-abc-uc.a.run.app"
        );
        assert_eq!(
            default_audience(&uri("https://us-central1-proj.cloudfunctions.net/hello/x")),
            "https://us-central1-proj.cloudfunctions.net/hello"
        );
        assert_eq!(
            default_audience(&uri("http://127.0.0.1:8080/f")),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn the_token_goes_in_authorization_and_the_clients_moves_aside() {
        let c = call(
            r#"{"function_uri": "https://svc.a.run.app/api", "strip_prefix": "/", "authorization": {"id_token": {}}}"#,
            &[
                ("authorization", "Bearer client"),
                ("x-serverless-authorization", "Bearer spoof"),
            ],
        );
        assert_eq!(
            c.header("authorization"),
            Some(format!("Bearer {}", jwt(1_800_003_600)).as_str())
        );
        assert_eq!(c.header("x-forwarded-authorization"), Some("Bearer client"));
        assert_eq!(
            c.header("x-serverless-authorization"),
            None,
            "never the client's"
        );
        assert_eq!(c.header(":path"), Some("/api/items/7?x=1"));
    }

    #[test]
    fn x_serverless_authorization_leaves_the_clients_authorization_alone() {
        let c = call(
            r#"{"function_uri": "https://svc.a.run.app/", "path_translation": "CONSTANT_ADDRESS",
                "authorization": {"id_token": {"header": "X-Serverless-Authorization", "audience": "https://custom"}}}"#,
            &[("authorization", "Bearer client")],
        );
        assert!(c
            .header("x-serverless-authorization")
            .unwrap()
            .starts_with("Bearer eyJ"));
        assert_eq!(c.header("authorization"), Some("Bearer client"));
        assert_eq!(
            c.header(":path"),
            Some("/?x=1"),
            "CONSTANT_ADDRESS keeps only the query"
        );
    }

    #[test]
    fn a_public_service_gets_no_token() {
        let c = call(
            r#"{"function_uri": "https://svc.a.run.app/"}"#,
            &[("authorization", "Bearer c")],
        );
        assert_eq!(c.header("authorization"), Some("Bearer c"));
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            (
                r#"{"function_uri": "https://s.a.run.app", "path_translation": "APPEND"}"#,
                "path_translation",
            ),
            (
                r#"{"function_uri": "https://s.a.run.app", "authorization": {"id_token": {"header": "x-token"}}}"#,
                "authorization.id_token.header",
            ),
            (
                r#"{"function_uri": "https://s.a.run.app", "authorization": {"id_token": {"source": "sa_key"}}}"#,
                "authorization.id_token.source",
            ),
            (
                r#"{"function_uri": "https://s.a.run.app", "authorization": {"id_token": {"audience": "a b"}}}"#,
                "authorization.id_token.audience",
            ),
            (
                r#"{"function_uri": "https://s.a.run.app", "authorization": {"apikey": "k"}}"#,
                "authorization.apikey",
            ),
            (r#"{"authorization": {"id_token": {}}}"#, "function_uri"),
        ];
        for (json, field) in cases {
            let e = compiled(json)
                .err()
                .unwrap_or_else(|| panic!("{json}: accepted"));
            assert_eq!(e.field, field, "{json}: {e}");
        }
    }
}
