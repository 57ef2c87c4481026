//! Azure Instance Metadata Service's managed-identity token endpoint
//! (VMs, scale sets, AKS node identities): one `GET` with `Metadata: true`.

use super::token_target;
use faas_core::credentials::SourceRequest;

/// The link-local address IMDS answers on (the cluster decides where the
/// call goes; the name is what IMDS expects).
pub const AUTHORITY: &str = "169.254.169.254";
pub const API_VERSION: &str = "2018-02-01";

/// The token request for `resource`, for a user-assigned identity when
/// `client_id` is given.
pub fn request(resource: &str, client_id: Option<&str>) -> SourceRequest {
    SourceRequest {
        method: "GET",
        path: token_target(
            "/metadata/identity/oauth2/token",
            API_VERSION,
            resource,
            client_id,
        ),
        headers: vec![("metadata", "true".into())],
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_resource_and_the_identity() {
        let r = request("api://fn-app", Some("0000-1111"));
        assert_eq!(
            r.path,
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2Ffn-app&client_id=0000-1111"
        );
        assert_eq!(r.headers, vec![("metadata", "true".to_string())]);
        assert!(!request("https://x", None).path.contains("client_id"));
    }
}
