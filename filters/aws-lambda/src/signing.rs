//! SigV4 on a callout: which headers are signed, and the client's AWS
//! headers a signed call must not carry. `config::UrlMode::authorize`
//! decides when (and adds the API key).

use crate::sigv4::{amz_date_at, hex_sha256, Credentials, Request, Signer};
use faas_core::path::split_path_query;
use faas_core::Callout;
use std::time::SystemTime;

/// Client headers dropped when the filter signs: a client's own
/// `authorization` or `x-amz-*` would conflict with (or replace) ours, and
/// AWS refuses reserved `x-amzn-*` headers (Envoy issue #45609).
pub fn client_aws_header(name: &str) -> bool {
    name == "authorization" || name.starts_with("x-amz-") || name.starts_with("x-amzn-")
}

/// Headers covered by the signature: only those the filter controls and
/// Envoy leaves alone (Envoy adds `content-length`, `x-envoy-*` after us).
fn signed(name: &str) -> bool {
    matches!(name, ":authority" | "content-type" | "x-api-key") || name.starts_with("x-amz-")
}

/// Signs a callout with SigV4. Every `x-amz-*` header already on the
/// callout is signed, so callers remove ones they did not set themselves.
/// `content_sha256` also sends (and signs) `x-amz-content-sha256`.
pub fn sign(
    signer: &Signer,
    credentials: &Credentials,
    content_sha256: bool,
    callout: &mut Callout,
    now: SystemTime,
) {
    let amz_date = amz_date_at(now);
    let payload_hash = hex_sha256(&callout.body);
    callout
        .headers
        .push(("x-amz-date".into(), amz_date.clone()));
    if let Some(token) = &credentials.session_token {
        callout
            .headers
            .push(("x-amz-security-token".into(), token.clone()));
    }
    if content_sha256 {
        callout
            .headers
            .push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    let method = callout.header(":method").unwrap_or("GET").to_string();
    let target = callout.header(":path").unwrap_or("/").to_string();
    let (path, query) = split_path_query(&target);
    let headers: Vec<(&str, &str)> = callout
        .headers
        .iter()
        .filter(|(n, _)| signed(n))
        .map(|(n, v)| {
            (
                if n == ":authority" {
                    "host"
                } else {
                    n.as_str()
                },
                v.as_str(),
            )
        })
        .collect();
    let request = Request {
        method: &method,
        path,
        query,
        headers,
        payload_hash: &payload_hash,
    };
    let signature = signer.sign_at(credentials, &request, &amz_date);
    callout
        .headers
        .push(("authorization".into(), signature.authorization));
}
