//! AWS STS: `AssumeRoleWithWebIdentity` (IRSA: the service account token
//! for a role, unsigned) and `AssumeRole` (role chaining, Kong's
//! `aws_assume_role_arn`: signed with the credentials it chains from). Query
//! API over POST, answers in XML.

use super::{expiring_from, short_code, Expiring, SourceError, SourceRequest};
use crate::sigv4::uri_encode;

const VERSION: &str = "2011-06-15";
/// What the SDKs ask for by default; STS's minimum is 900.
pub const DEFAULT_DURATION_SECONDS: u32 = 3_600;

/// An `AssumeRole` call. `external_id` is the third-party guard the role's
/// trust policy may require.
pub struct AssumeRole<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub external_id: Option<&'a str>,
    pub duration_seconds: u32,
}

/// The `AssumeRole` request; the shell signs it (service `sts`) with the
/// credentials being chained from.
pub fn assume_role(call: &AssumeRole<'_>) -> SourceRequest {
    let mut params = vec![
        ("Action", "AssumeRole"),
        ("Version", VERSION),
        ("RoleArn", call.role_arn),
        ("RoleSessionName", call.session_name),
    ];
    if let Some(id) = call.external_id {
        params.push(("ExternalId", id));
    }
    let duration = call.duration_seconds.to_string();
    params.push(("DurationSeconds", &duration));
    post(&params)
}

/// The `AssumeRoleWithWebIdentity` request: the token is the credential, so
/// the call is not signed.
pub fn assume_role_with_web_identity(
    role_arn: &str,
    session_name: &str,
    web_identity_token: &str,
    duration_seconds: u32,
) -> SourceRequest {
    let duration = duration_seconds.to_string();
    post(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", VERSION),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", web_identity_token.trim()),
        ("DurationSeconds", &duration),
    ])
}

fn post(params: &[(&str, &str)]) -> SourceRequest {
    let mut body = String::new();
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            body.push('&');
        }
        body.push_str(name);
        body.push('=');
        uri_encode(value.as_bytes(), false, &mut body);
    }
    SourceRequest {
        method: "POST",
        path: "/".into(),
        headers: vec![(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: body.into_bytes(),
    }
}

/// Either call's answer: the `<Credentials>` of a 200, or the `<Code>` of
/// STS's `<ErrorResponse>`.
pub fn parse(status: u32, body: &[u8]) -> Result<Expiring, SourceError> {
    let xml = std::str::from_utf8(body).unwrap_or_default();
    if status != 200 {
        return Err(match element(xml, "Code") {
            Some(code) => SourceError::Refused(short_code(&code)),
            None => SourceError::Status(status),
        });
    }
    let credentials = element(xml, "Credentials")
        .ok_or_else(|| SourceError::Malformed("no <Credentials>".into()))?;
    let field = |name: &str| {
        element(&credentials, name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SourceError::Malformed(format!("no <{name}>")))
    };
    expiring_from(field, "SessionToken", "<Expiration>")
}

/// The text of the first `<name>…</name>` (no attributes: STS writes none
/// on these), entities decoded. Enough for STS's fixed documents; not a
/// general XML parser.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&close)?;
    xml.get(start..start + len).map(decode_entities)
}

fn decode_entities(text: &str) -> String {
    text.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#xA;", "\n")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/gateway</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:gateway</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2Vj&amp;token</SessionToken>
      <Expiration>2026-11-21T18:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

    #[test]
    fn assume_role_is_a_form_post_with_every_parameter() {
        let r = assume_role(&AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/demo",
            session_name: "envoy faas",
            external_id: Some("ext/1"),
            duration_seconds: 900,
        });
        assert_eq!((r.method, r.path.as_str()), ("POST", "/"));
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo\
             &RoleSessionName=envoy%20faas&ExternalId=ext%2F1&DurationSeconds=900"
        );
    }

    #[test]
    fn web_identity_carries_the_token_in_the_body() {
        let r = assume_role_with_web_identity("arn:aws:iam::1:role/r", "s", "eyJ.a-b_c\n", 3600);
        let body = String::from_utf8(r.body).unwrap();
        assert!(
            body.starts_with("Action=AssumeRoleWithWebIdentity&"),
            "{body}"
        );
        assert!(body.contains("&WebIdentityToken=eyJ.a-b_c&"), "{body}");
    }

    #[test]
    fn credentials_and_errors_come_out_of_the_xml() {
        let e = parse(200, OK.as_bytes()).unwrap();
        assert_eq!(e.credentials.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(
            e.credentials.session_token.as_deref(),
            Some("IQoJb3JpZ2luX2Vj&token")
        );
        assert_eq!(e.expires_at, 1_795_284_000);
        let denied = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>
            <Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>"#;
        assert_eq!(
            parse(403, denied.as_bytes()),
            Err(SourceError::Refused("AccessDenied".into()))
        );
        assert_eq!(parse(503, b"<html>"), Err(SourceError::Status(503)));
        assert_eq!(
            parse(200, OK.replace("<SessionToken>", "<X>").as_bytes()),
            Err(SourceError::Malformed("no <SessionToken>".into()))
        );
        assert!(parse(200, b"").is_err());
    }
}
