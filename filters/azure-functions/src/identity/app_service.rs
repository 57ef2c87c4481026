//! The App Service / Container Apps / Functions identity endpoint
//! (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, API version 2019-08-01).

use super::token_target;
use faas_core::credentials::SourceRequest;

pub const API_VERSION: &str = "2019-08-01";

/// The token request to the endpoint's `path`, with its secret header.
pub fn request(path: &str, header: &str, resource: &str, client_id: Option<&str>) -> SourceRequest {
    SourceRequest {
        method: "GET",
        path: token_target(path, API_VERSION, resource, client_id),
        headers: vec![("x-identity-header", header.to_string())],
        body: Vec::new(),
    }
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
