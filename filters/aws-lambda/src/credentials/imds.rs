//! EC2 instance role through IMDSv2: a session token (`PUT
//! /latest/api/token`), the role name, then the role's credentials, each GET
//! carrying the token. Skipped when `AWS_EC2_METADATA_DISABLED=true`, as in
//! the AWS SDKs.

use super::{parse_json_credentials, short_code, Expiring, SourceError, SourceRequest};

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
/// Asked for in the token PUT; IMDS caps it at 21600 s.
pub const TOKEN_TTL_SECONDS: u32 = 21_600;
const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";

/// `AWS_EC2_METADATA_DISABLED`: `true` in any case turns the source off.
pub fn disabled(env_value: Option<&str>) -> bool {
    env_value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Step 1: the session token.
pub fn token_request() -> SourceRequest {
    SourceRequest {
        method: "PUT",
        path: TOKEN_PATH.into(),
        headers: vec![(TOKEN_TTL_HEADER, TOKEN_TTL_SECONDS.to_string())],
        body: Vec::new(),
    }
}

/// The token from step 1's answer.
pub fn parse_token(status: u32, body: &[u8]) -> Result<String, SourceError> {
    if status != 200 {
        return Err(SourceError::Status(status));
    }
    let token = std::str::from_utf8(body)
        .map(str::trim)
        .map_err(|_| SourceError::Malformed("the token is not text".into()))?;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SourceError::Malformed(
            "the token is empty or not printable".into(),
        ));
    }
    Ok(token.to_string())
}

/// Step 2: the instance profile's role name. `None`: IMDSv1, allowed only
/// by `aws_imds_protocol_version: v1` when the token step is refused.
pub fn role_request(token: Option<&str>) -> SourceRequest {
    get(ROLE_PATH.to_string(), token)
}

/// The role name: the first line of step 2's answer.
pub fn parse_role(status: u32, body: &[u8]) -> Result<String, SourceError> {
    if status != 200 {
        return Err(SourceError::Status(status));
    }
    let role = std::str::from_utf8(body)
        .ok()
        .and_then(|text| text.lines().next())
        .map(str::trim)
        .unwrap_or_default();
    // A role name is IAM's `[\w+=,.@-]+`; anything else would change the path.
    let valid = !role.is_empty()
        && role.len() <= 64
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !valid {
        return Err(SourceError::Malformed("no valid role name".into()));
    }
    Ok(role.to_string())
}

/// Step 3: the role's credentials.
pub fn credentials_request(token: Option<&str>, role: &str) -> SourceRequest {
    get(format!("{ROLE_PATH}{role}"), token)
}

/// Step 3's answer. A 401 means the session token expired: start again at step 1.
pub fn parse_credentials(status: u32, body: &[u8]) -> Result<Expiring, SourceError> {
    match status {
        200 => parse_json_credentials(body),
        401 => Err(SourceError::Refused(short_code("TokenExpired"))),
        other => Err(SourceError::Status(other)),
    }
}

/// Whether a refused token step may fall back to IMDSv1 (an instance with
/// v2 optional answers the PUT with 403/404/405 behind some proxies).
pub fn v1_fallback_allowed(token_status: u32) -> bool {
    (403..=405).contains(&token_status)
}

fn get(path: String, token: Option<&str>) -> SourceRequest {
    SourceRequest {
        method: "GET",
        path,
        headers: token
            .map(|t| vec![(TOKEN_HEADER, t.to_string())])
            .unwrap_or_default(),
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_steps_carry_the_ttl_then_the_token() {
        let put = token_request();
        assert_eq!(
            (put.method, put.path.as_str()),
            ("PUT", "/latest/api/token")
        );
        assert_eq!(put.headers, vec![(TOKEN_TTL_HEADER, "21600".to_string())]);
        let token = parse_token(200, b"AQAEAtoken==\n").unwrap();
        assert_eq!(token, "AQAEAtoken==");
        let role = role_request(Some(&token));
        assert_eq!((role.method, role.path.as_str()), ("GET", ROLE_PATH));
        assert_eq!(role.headers, vec![(TOKEN_HEADER, token.clone())]);
        let name = parse_role(200, b"gateway-role\nsecond-line").unwrap();
        let creds = credentials_request(Some(&token), &name);
        assert!(role_request(None).headers.is_empty(), "v1: no token header");
        assert_eq!(
            creds.path,
            "/latest/meta-data/iam/security-credentials/gateway-role"
        );
        assert_eq!(creds.headers, vec![(TOKEN_HEADER, token)]);
    }

    #[test]
    fn bad_answers_are_errors() {
        assert_eq!(parse_token(403, b"x"), Err(SourceError::Status(403)));
        assert!(parse_token(200, b"").is_err());
        assert!(parse_token(200, b"has space").is_err());
        assert_eq!(parse_role(404, b""), Err(SourceError::Status(404)));
        for bad in [&b""[..], b"../../latest/user-data", b"role?x=1", b"a/b"] {
            assert!(parse_role(200, bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse_credentials(401, b""),
            Err(SourceError::Refused(_))
        ));
        assert_eq!(parse_credentials(500, b""), Err(SourceError::Status(500)));
    }

    #[test]
    fn the_disable_switch_reads_like_the_sdks() {
        assert!(disabled(Some("true")) && disabled(Some("TRUE ")));
        assert!(!disabled(None) && !disabled(Some("false")) && !disabled(Some("1")));
    }
}
