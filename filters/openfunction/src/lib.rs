//! `openfunction`: an Envoy route becomes a call to an OpenFunction
//! function (APISIX `openfunction` plugin parity).
//!
//! Everything but authorization is the shared forwarding behaviour of
//! `faas-core`. `authorization.service_token` (`user:password`) is sent as
//! `Authorization: Basic base64(token)` and replaces any client
//! `Authorization`; without it the client's header passes through.

use faas_core::config::read_function_uri;
use faas_core::request::forward;
use faas_core::{
    base64, Callout, ClientRequest, CommonConfig, ConfigError, ErrorReply, Fields, Integration,
};
use std::time::SystemTime;

pub struct OpenFunction;

/// One route's compiled settings.
#[derive(Debug)]
pub struct Route {
    pub common: CommonConfig,
    /// The precomputed `Authorization` value, when a token is configured.
    pub authorization: Option<String>,
}

/// Reads `authorization`. Unlike APISIX (whose schema for it is malformed
/// and accepts anything), a wrong shape is refused at load.
fn read_authorization(fields: &mut Fields) -> Result<Option<String>, ConfigError> {
    let Some(mut auth) = fields.object("authorization")? else {
        return Ok(None);
    };
    let token = auth.header_value("service_token")?;
    if token.as_deref().is_some_and(|t| !t.contains(':')) {
        return Err(auth.error("service_token", "must have the form \"user:password\""));
    }
    auth.finish()?;
    Ok(token.map(|t| format!("Basic {}", base64::encode(t.as_bytes()))))
}

impl Integration for OpenFunction {
    const NAME: &'static str = "openfunction";
    type Global = ();
    type Route = Route;

    fn read_global(_fields: &mut Fields) -> Result<(), ConfigError> {
        Ok(())
    }

    fn read_route(fields: &mut Fields, _global: &()) -> Result<Route, ConfigError> {
        let uri = read_function_uri(fields, "function_uri")?;
        let authorization = read_authorization(fields)?;
        let common = CommonConfig::read(fields, uri)?;
        Ok(Route {
            common,
            authorization,
        })
    }

    fn common(route: &Route) -> &CommonConfig {
        &route.common
    }

    fn build_callout(
        _: &(),
        route: &Route,
        request: &ClientRequest,
        _now: SystemTime,
    ) -> Result<Callout, ErrorReply> {
        let mut callout = forward(&route.common, request);
        if let Some(value) = &route.authorization {
            callout.set_header("authorization", value.clone());
        }
        Ok(callout)
    }
}

// The module entry point exists only in the filter build: with `lib-only`
// (or on the host) several filters link into one program, the
// micro-benchmarks, without clashing entry points.
#[cfg(all(target_arch = "wasm32", not(feature = "lib-only")))]
proxy_wasm::main! {{
    faas_core::shell::install::<OpenFunction>();
}}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::config::{compile, PluginConfig};

    fn compiled(json: &str) -> Result<PluginConfig<(), Route>, ConfigError> {
        compile(
            json.as_bytes(),
            OpenFunction::read_global,
            OpenFunction::read_route,
        )
    }

    fn request(auth: Option<&str>) -> ClientRequest {
        let mut headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".into(), "/hello/x".into()),
        ];
        if let Some(a) = auth {
            headers.push(("authorization".into(), a.into()));
        }
        ClientRequest {
            headers,
            ..Default::default()
        }
    }

    fn authorization_sent(json: &str, client: Option<&str>) -> Vec<String> {
        let c = compiled(json).unwrap();
        let route = c.routes.lookup(None).unwrap();
        let call =
            OpenFunction::build_callout(&(), &route, &request(client), SystemTime::UNIX_EPOCH)
                .unwrap();
        call.headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.clone())
            .collect()
    }

    #[test]
    fn service_token_replaces_the_clients_authorization() {
        let cfg =
            r#"{"function_uri": "http://h/f", "authorization": {"service_token": "test:test"}}"#;
        assert_eq!(
            authorization_sent(cfg, Some("Bearer client")),
            vec!["Basic dGVzdDp0ZXN0"]
        );
        assert_eq!(authorization_sent(cfg, None), vec!["Basic dGVzdDp0ZXN0"]);
    }

    #[test]
    fn without_a_token_the_clients_authorization_passes() {
        let cfg = r#"{"function_uri": "http://h/f"}"#;
        assert_eq!(
            authorization_sent(cfg, Some("Bearer client")),
            vec!["Bearer client"]
        );
        assert!(authorization_sent(cfg, None).is_empty());
        let cfg = r#"{"function_uri": "http://h/f", "authorization": {}}"#;
        assert_eq!(
            authorization_sent(cfg, Some("Bearer client")),
            vec!["Bearer client"]
        );
    }

    #[test]
    fn malformed_authorization_is_refused_naming_the_field() {
        let cases = [
            (
                r#""test:test""#,
                "authorization",
                "must be an object, got string",
            ),
            (
                r#"{"service_token": 1}"#,
                "authorization.service_token",
                "must be a string, got number",
            ),
            (
                r#"{"service_token": "nocolon"}"#,
                "authorization.service_token",
                "must have the form \"user:password\"",
            ),
            (
                r#"{"service_token": "a:b\n"}"#,
                "authorization.service_token",
                "must not contain control characters",
            ),
            (
                r#"{"service_token": ""}"#,
                "authorization.service_token",
                "must not be empty",
            ),
            (
                r#"{"token": "a:b"}"#,
                "authorization.token",
                "unknown field",
            ),
        ];
        for (auth, field, message) in cases {
            let json = format!(r#"{{"function_uri": "http://h/f", "authorization": {auth}}}"#);
            let e = compiled(&json).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.message.as_str()),
                (field, message),
                "{auth}"
            );
            assert!(!e.to_string().contains("nocolon"));
        }
    }

    #[test]
    fn function_uri_is_required() {
        let e = compiled(r#"{"authorization": {"service_token": "a:b"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "route \"*\": field \"function_uri\": is required"
        );
    }
}
