//! AWS front doors: Lambda Function URLs and API Gateway, chosen by Host.
//!
//! - `<id>.lambda-url.<region>.on.aws`: IAM auth (SigV4, service `lambda`).
//! - `<id>.execute-api.<region>.amazonaws.com`: the first path segment is the
//!   stage and picks the API's auth: `open`, `key` (`x-api-key`), `iam`
//!   (SigV4, service `execute-api`) or `both`.
//!
//! Signatures are recomputed with the `aws-sigv4` crate, not with the
//! filter's signer, and failures answer like AWS (403 + its error JSON).

use crate::http::{Request, Response};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Credentials the emulator accepts: (access key id, secret, session token).
pub const KEYS: &[(&str, &str, Option<&str>)] = &[
    (
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
    ),
    (
        "ASIAEXAMPLESESSION",
        "sessionSecretEXAMPLEKEY0123456789abcdef",
        Some("IQoJb3JpZ2luX2VjEXAMPLE//session+token="),
    ),
];
/// The API key of the `key` and `both` stages.
pub const API_KEY: &str = "emulator-api-key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    FunctionUrl {
        region: String,
    },
    ApiGateway {
        region: String,
    },
    /// The Lambda Invoke API, `lambda.<region>.amazonaws.com`.
    Lambda {
        region: String,
    },
}

pub fn endpoint(host: &str) -> Option<Endpoint> {
    let host = host.split(':').next().unwrap_or(host);
    if let Some((_, region)) = host
        .strip_suffix(".on.aws")
        .and_then(|r| r.split_once(".lambda-url."))
    {
        return Some(Endpoint::FunctionUrl {
            region: region.into(),
        });
    }
    if let Some(region) = host
        .strip_prefix("lambda.")
        .and_then(|r| r.strip_suffix(".amazonaws.com"))
    {
        return Some(Endpoint::Lambda {
            region: region.into(),
        });
    }
    host.strip_suffix(".amazonaws.com")
        .and_then(|r| r.split_once(".execute-api."))
        .map(|(_, region)| Endpoint::ApiGateway {
            region: region.into(),
        })
}

fn forbidden(endpoint: &Endpoint, error_type: &str, message: &str) -> Response {
    let body = match endpoint {
        Endpoint::FunctionUrl { .. } | Endpoint::Lambda { .. } => json!({"Message": message}),
        Endpoint::ApiGateway { .. } => json!({"message": message}),
    };
    Response::new(403, "application/json", body.to_string()).header("x-amzn-errortype", error_type)
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next()? == "aws4_request").then_some(auth)
}

fn parse_amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // days-from-civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3_600 + mm * 60 + ss).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// The secret, session token and expiry of an access key id: a fixed one
/// of [`KEYS`] (no expiry), or session credentials the metadata fakes issued.
fn known_key(access_key: &str) -> Option<(String, Option<String>, Option<u64>)> {
    if let Some(&(_, secret, token)) = KEYS.iter().find(|(k, _, _)| *k == access_key) {
        return Some((secret.to_string(), token.map(str::to_string), None));
    }
    crate::metadata::issued(access_key).map(|i| (i.secret, Some(i.token), Some(i.expires_at)))
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verifies SigV4 on a request for `service` in `region`.
pub fn verify_sigv4(
    req: &Request,
    endpoint: &Endpoint,
    region: &str,
    service: &str,
) -> Result<(), Response> {
    let Some(header) = req.header("authorization") else {
        return Err(forbidden(
            endpoint,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let Some(auth) = parse_authorization(&header) else {
        return Err(forbidden(endpoint, "IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters."));
    };
    let Some((secret, token, expires_at)) = known_key(auth.access_key) else {
        return Err(forbidden(
            endpoint,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    let (secret, token) = (secret.as_str(), token.as_deref());
    if expires_at.is_some_and(|e| e <= now_seconds()) {
        return Err(forbidden(
            endpoint,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ));
    }
    if auth.service != service {
        return Err(forbidden(
            endpoint,
            "InvalidSignatureException",
            &format!("Credential should be scoped to correct service: '{service}'. "),
        ));
    }
    if auth.region != region {
        return Err(forbidden(
            endpoint,
            "InvalidSignatureException",
            "Credential should be scoped to a valid region. ",
        ));
    }
    if let Some(expected) = token {
        if req.header("x-amz-security-token").as_deref() != Some(expected)
            || !auth.signed_headers.contains(&"x-amz-security-token")
        {
            return Err(forbidden(
                endpoint,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
    }
    let Some(time) = req.header("x-amz-date").and_then(|d| parse_amz_date(&d)) else {
        return Err(forbidden(
            endpoint,
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let skew = SystemTime::now()
        .duration_since(time)
        .unwrap_or_else(|e| e.duration());
    if skew > Duration::from_secs(15 * 60)
        || !req
            .header("x-amz-date")
            .unwrap_or_default()
            .starts_with(auth.date)
    {
        return Err(forbidden(
            endpoint,
            "InvalidSignatureException",
            "Signature expired or not yet valid.",
        ));
    }
    // Recompute over exactly the headers the client says it signed; the
    // crate itself adds host and x-amz-date.
    let host = req.header("host").unwrap_or_default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for name in &auth.signed_headers {
        if matches!(*name, "host" | "x-amz-date") {
            continue;
        }
        for (n, v) in &req.headers {
            if n.eq_ignore_ascii_case(name) {
                headers.push((name.to_string(), String::from_utf8_lossy(v).into_owned()));
            }
        }
    }
    headers.push(("host".into(), host.clone()));
    let identity: Identity =
        Credentials::new(auth.access_key, secret, None, None, "emulator").into();
    let computed = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .ok()
        .and_then(|params| {
            let uri = format!("http://{host}{}", req.target);
            let signable = SignableRequest::new(
                &req.method,
                &uri,
                headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                SignableBody::Bytes(&req.body),
            )
            .ok()?;
            let (_, signature) = sign(signable, &params.into()).ok()?.into_parts();
            Some(signature)
        });
    if computed.as_deref() != Some(auth.signature) {
        // Like API Gateway, quote the canonical request (session token
        // included) and the string to sign, over several lines.
        let token = req.header("x-amz-security-token").unwrap_or_default();
        let date = req.header("x-amz-date").unwrap_or_default();
        let message = format!(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n\
             The Canonical String for this request should have been\n'{}\n{}\n\nhost:{host}\nx-amz-date:{date}\n\
             x-amz-security-token:{token}\n'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n{date}\n'",
            req.method, req.target
        );
        return Err(forbidden(endpoint, "InvalidSignatureException", &message));
    }
    Ok(())
}

/// Checks the front door's auth. `Ok` carries the function path behind it.
pub fn admit(req: &Request, endpoint: &Endpoint) -> Result<String, Response> {
    match endpoint {
        Endpoint::Lambda { region } => {
            verify_sigv4(req, endpoint, region, "lambda")?;
            Ok(req.path().to_string())
        }
        Endpoint::FunctionUrl { region } => {
            verify_sigv4(req, endpoint, region, "lambda")?;
            Ok(req.path().to_string())
        }
        Endpoint::ApiGateway { region } => {
            let path = req.path().trim_start_matches('/');
            let (stage, rest) = path.split_once('/').unwrap_or((path, ""));
            let (needs_key, needs_iam) = match stage {
                "open" => (false, false),
                "key" => (true, false),
                "iam" => (false, true),
                "both" => (true, true),
                _ => {
                    return Err(forbidden(
                        endpoint,
                        "MissingAuthenticationTokenException",
                        "Missing Authentication Token",
                    ))
                }
            };
            if needs_iam {
                verify_sigv4(req, endpoint, region, "execute-api")?;
            }
            if needs_key && req.header("x-api-key").as_deref() != Some(API_KEY) {
                return Err(forbidden(endpoint, "ForbiddenException", "Forbidden"));
            }
            Ok(format!("/{rest}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_dates() {
        assert_eq!(
            endpoint("abc.lambda-url.us-east-1.on.aws"),
            Some(Endpoint::FunctionUrl {
                region: "us-east-1".into()
            })
        );
        assert_eq!(
            endpoint("x.execute-api.eu-west-1.amazonaws.com:80"),
            Some(Endpoint::ApiGateway {
                region: "eu-west-1".into()
            })
        );
        assert_eq!(
            endpoint("lambda.eu-west-1.amazonaws.com"),
            Some(Endpoint::Lambda {
                region: "eu-west-1".into()
            })
        );
        assert_eq!(endpoint("127.0.0.1:9"), None);
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert_eq!(parse_amz_date("2015-08-30"), None);
    }
}
