//! The App Service / Container Apps / Functions identity endpoint
//! (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, API version 2019-08-01).

use super::{form_encode, parse_token_answer, Expiring};
use faas_core::credentials::{SourceError, SourceRequest};

pub const API_VERSION: &str = "2019-08-01";

/// The token request to the endpoint's `path`, with its secret header.
pub fn request(path: &str, header: &str, resource: &str, client_id: Option<&str>) -> SourceRequest {
    let mut target = format!(
        "{path}?api-version={API_VERSION}&resource={}",
        form_encode(resource)
    );
    if let Some(id) = client_id {
        target.push_str("&client_id=");
        target.push_str(&form_encode(id));
    }
    SourceRequest {
        method: "GET",
        path: target,
        headers: vec![("x-identity-header", header.to_string())],
        body: Vec::new(),
    }
}

pub fn parse(status: u32, body: &[u8], now: u64) -> Result<Expiring, SourceError> {
    parse_token_answer(status, body, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_identity_header() {
        let r = request("/msi/token", "secret-header", "api://fn", None);
        assert_eq!(
            r.path,
            "/msi/token?api-version=2019-08-01&resource=api%3A%2F%2Ffn"
        );
        assert_eq!(
            r.headers,
            vec![("x-identity-header", "secret-header".to_string())]
        );
        assert!(
            !format!("{r:?}").contains("secret-header"),
            "Debug hides header values"
        );
    }
}
