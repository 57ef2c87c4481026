//! AKS workload identity: the federated service-account token (a file the
//! kubelet rotates, read through the token-file listener) exchanged at the
//! Entra ID token endpoint with the `client_assertion` grant.

use super::form_encode;
use faas_core::credentials::SourceRequest;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The scope of a v2.0 token for `resource`: `<resource>/.default`.
pub fn scope(resource: &str) -> String {
    format!("{}/.default", resource.trim_end_matches('/'))
}

/// `POST <authority path>/<tenant>/oauth2/v2.0/token` with the assertion.
pub fn request(
    authority_path: &str,
    tenant: &str,
    client_id: &str,
    assertion: &str,
    resource: &str,
) -> SourceRequest {
    let body = format!(
        "client_assertion={}&client_assertion_type={}&client_id={}&grant_type=client_credentials&scope={}",
        form_encode(assertion),
        form_encode(ASSERTION_TYPE),
        form_encode(client_id),
        form_encode(&scope(resource)),
    );
    SourceRequest {
        method: "POST",
        path: format!("{authority_path}/{tenant}/oauth2/v2.0/token"),
        headers: vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        body: body.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_posts_the_assertion_for_the_default_scope() {
        let r = request("", "tenant-1", "client-1", "eyJ.fed.sig", "api://fn-app");
        assert_eq!(
            (r.method, r.path.as_str()),
            ("POST", "/tenant-1/oauth2/v2.0/token")
        );
        let body = String::from_utf8(r.body).unwrap();
        assert_eq!(
            body,
            "client_assertion=eyJ.fed.sig&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id=client-1&grant_type=client_credentials&scope=api%3A%2F%2Ffn-app%2F.default"
        );
        assert_eq!(
            scope("https://fn.azurewebsites.net/"),
            "https://fn.azurewebsites.net/.default"
        );
    }
}
