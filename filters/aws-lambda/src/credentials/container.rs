//! Container credentials: the ECS task role (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//! on 169.254.170.2) and full URIs (`AWS_CONTAINER_CREDENTIALS_FULL_URI`),
//! which EKS Pod Identity uses with a token from
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (the shell fetches the file
//! through the token-serving cluster) or `AWS_CONTAINER_AUTHORIZATION_TOKEN`.

use super::{parse_json_credentials, Expiring, SourceError, SourceRequest};

/// The ECS agent's address for relative URIs.
pub const ECS_AUTHORITY: &str = "169.254.170.2";

/// Where the credentials are, from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` the request names (the cluster decides where it goes).
    pub authority: String,
    /// Path and query.
    pub path: String,
}

/// The endpoint from `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (preferred,
/// as in the SDKs) or `AWS_CONTAINER_CREDENTIALS_FULL_URI`. `Ok(None)` when
/// neither is set. Full URIs must be `https`, or `http` to loopback or the
/// ECS / EKS Pod Identity link-local addresses, as the SDKs require: a
/// credential token must not leave the host in clear text.
pub fn endpoint(relative: Option<&str>, full: Option<&str>) -> Result<Option<Endpoint>, String> {
    if let Some(rel) = relative.filter(|r| !r.is_empty()) {
        if !rel.starts_with('/')
            || rel
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path starting with '/'".into(),
            );
        }
        return Ok(Some(Endpoint {
            authority: ECS_AUTHORITY.into(),
            path: rel.into(),
        }));
    }
    let Some(full) = full.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to loopback, 169.254.170.2 or 169.254.170.23".to_string()
    };
    let (scheme, rest) = full.split_once("://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let host = host_of(authority);
    let allowed = match scheme {
        "https" => !host.is_empty(),
        "http" => matches!(
            host,
            "127.0.0.1"
                | "localhost"
                | "[::1]"
                | "169.254.170.2"
                | "169.254.170.23"
                | "[fd00:ec2::23]"
        ),
        _ => false,
    };
    if !allowed
        || path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad());
    }
    Ok(Some(Endpoint {
        authority: authority.into(),
        path: path.into(),
    }))
}

fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .and_then(|i| authority.get(..=i))
            .unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// The credentials GET, with the authorization token when there is one.
pub fn request(endpoint: &Endpoint, token: Option<&str>) -> SourceRequest {
    let headers = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| vec![("authorization", t.to_string())])
        .unwrap_or_default();
    SourceRequest {
        method: "GET",
        path: endpoint.path.clone(),
        headers,
        body: Vec::new(),
    }
}

pub fn parse(status: u32, body: &[u8]) -> Result<Expiring, SourceError> {
    match status {
        200 => parse_json_credentials(body),
        other => Err(SourceError::Status(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uris_go_to_the_ecs_agent_and_win_over_full_ones() {
        let e = endpoint(Some("/v2/credentials/abc?x=1"), Some("http://127.0.0.1/x"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.authority.as_str(), e.path.as_str()),
            (ECS_AUTHORITY, "/v2/credentials/abc?x=1")
        );
        assert_eq!(endpoint(None, None), Ok(None));
        assert_eq!(endpoint(Some(""), Some("")), Ok(None));
        assert!(endpoint(Some("v2/creds"), None).is_err());
    }

    #[test]
    fn full_uris_must_not_send_a_token_in_clear_text_off_the_host() {
        let pod_identity = endpoint(None, Some("http://169.254.170.23/v1/credentials"))
            .unwrap()
            .unwrap();
        assert_eq!(pod_identity.authority, "169.254.170.23");
        assert_eq!(pod_identity.path, "/v1/credentials");
        let local = endpoint(None, Some("http://127.0.0.1:8080"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (local.authority.as_str(), local.path.as_str()),
            ("127.0.0.1:8080", "/")
        );
        assert!(endpoint(None, Some("http://[fd00:ec2::23]/v1/credentials"))
            .unwrap()
            .is_some());
        assert!(endpoint(None, Some("https://creds.example.com/c"))
            .unwrap()
            .is_some());
        for bad in [
            "http://creds.example.com/c",
            "ftp://127.0.0.1/",
            "127.0.0.1/c",
            "http://127.0.0.1.evil.com/",
        ] {
            assert!(endpoint(None, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_is_the_authorization_header_verbatim() {
        let e = endpoint(None, Some("http://169.254.170.23/v1/credentials"))
            .unwrap()
            .unwrap();
        assert_eq!(
            request(&e, Some("eyJtoken\n")).headers,
            vec![("authorization", "eyJtoken".to_string())]
        );
        assert!(request(&e, Some("  ")).headers.is_empty());
        assert!(request(&e, None).headers.is_empty());
        assert_eq!(parse(403, b""), Err(SourceError::Status(403)));
    }
}
