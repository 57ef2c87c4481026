//! An Azure Functions host, selected by a `*.azurewebsites.net` Host header.
//!
//! - Functions live under `/api/<function>`; anything else is 404.
//! - Function keys come from `x-functions-key` or the `code` query parameter,
//!   as Azure accepts them; a missing or wrong key gets Azure's 401 with an
//!   empty body. `/api/public/...` is an anonymous function.
//! - `/api/protected` is a function behind App Service authentication: it
//!   takes no key, only a bearer token the metadata fakes issued for the
//!   audience [`PROTECTED_AUDIENCE`], unexpired (401 otherwise, as Azure).
//! - `/api/greet` is the seed's greeting (`Hello, <name>` from the `name`
//!   query parameter or the body); other functions are the emulator's
//!   generic ones (`/api/echo`, `/api/status/<code>`, ...).

use crate::http::{Request, Response};

/// The application ID URI of the protected function's app registration.
pub const PROTECTED_AUDIENCE: &str = "api://envoy-faas-protected";

/// The protected function: App Service authentication in front of it
/// checks the bearer token's issuer (the fakes), audience and expiry.
pub fn protected(req: &Request) -> Response {
    let token = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string));
    match token.as_deref().and_then(crate::metadata::bearer_audience) {
        Some(audience) if audience == PROTECTED_AUDIENCE => Response::new(
            200,
            "application/json",
            serde_json::json!({"authenticated": true, "audience": audience}).to_string(),
        ),
        _ => Response {
            status: 401,
            headers: vec![("www-authenticate".into(), "Bearer".into())],
            body: Vec::new(),
        },
    }
}

/// Keys the host accepts: a function key and the host (master) key.
pub const KEYS: &[&str] = &["azure-function-key", "azure-host-key"];

pub fn is_azure_host(host: &str) -> bool {
    host.split(':')
        .next()
        .unwrap_or(host)
        .ends_with(".azurewebsites.net")
}

fn key_of(req: &Request) -> Option<String> {
    req.header("x-functions-key").or_else(|| {
        req.query()?.split('&').find_map(|p| {
            p.strip_prefix("code=")
                .map(|v| crate::percent_decode(v, true))
        })
    })
}

/// `Ok(function path)` behind `/api`, or Azure's refusal.
pub fn admit(req: &Request) -> Result<String, Response> {
    let Some(rest) = req.path().strip_prefix("/api/") else {
        return Err(Response {
            status: 404,
            headers: Vec::new(),
            body: Vec::new(),
        });
    };
    let public = rest == "public" || rest.starts_with("public/");
    if !public && !key_of(req).is_some_and(|k| KEYS.contains(&k.as_str())) {
        return Err(Response {
            status: 401,
            headers: Vec::new(),
            body: Vec::new(),
        });
    }
    let function = rest
        .strip_prefix("public")
        .unwrap_or(rest)
        .trim_start_matches('/');
    Ok(format!("/{function}"))
}

/// The seed's JavaScript greeting function.
pub fn greet(req: &Request) -> Response {
    let from_query = req.query().and_then(|q| {
        q.split('&').find_map(|p| {
            p.strip_prefix("name=")
                .map(|v| crate::percent_decode(v, true))
        })
    });
    let from_body = || {
        let body = String::from_utf8_lossy(&req.body).trim().to_string();
        match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(v) => v.get("name").and_then(|n| n.as_str()).map(String::from),
            Err(_) => (!body.is_empty()).then_some(body),
        }
    };
    let text = match from_query.filter(|n| !n.is_empty()).or_else(from_body) {
        Some(name) => format!("Hello, {name}"),
        None => "This HTTP triggered function executed successfully. Pass a name in the query string or in the request body to generate a personalized response.".into(),
    };
    Response::new(200, "text/plain; charset=utf-8", text)
        .header("request-context", "appId=cid-v1:emulated")
}
