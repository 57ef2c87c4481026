//! AWS as the platform that federates into Google Cloud (`credential_source`
//! with `environment_id: aws1`, `gcp-identity.md` §3): the subject token is
//! a SigV4-signed STS `GetCallerIdentity` request that Google STS replays to
//! AWS to learn who the gateway is. Nothing is sent to AWS from here.
//!
//! The region and keys come from EC2's instance metadata at the
//! configuration's URLs (IMDSv2 when `imdsv2_session_token_url` is set).
//! Google's libraries would also take them from `AWS_REGION` and
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` in the environment (a
//! Lambda's); a gateway runs on an instance, and reading the VM's
//! environment would cost the module the bytes it does not have. Pure:
//! `identity::Source` sends the calls, through the subject-token cluster.

use crate::wire::{query_encode, Endpoint};
use faas_core::credentials::{callout, SourceRequest};
use faas_core::sigv4::{amz_date_at, authorization_for, Credentials, EMPTY_SHA256};
use faas_core::uri::FunctionUri;
use faas_core::Callout;
use serde_json::Value;
use std::time::SystemTime;

/// IMDSv2 session tokens are asked for this long (as Google's libraries).
const IMDS_TOKEN_TTL: &str = "300";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSource {
    /// `region_url`: the availability zone, whose last letter is dropped.
    pub region_url: Endpoint,
    /// `url`: the instance role's name there, then its credentials.
    pub role_url: Endpoint,
    /// `regional_cred_verification_url`: before and after `{region}`.
    pub verification_url: (String, String),
    /// `imdsv2_session_token_url`.
    pub session_token_url: Option<Endpoint>,
}

/// The metadata call a fetch is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    SessionToken,
    Region,
    Role,
    Keys,
}

/// What the metadata calls have told so far. `Debug` hides the session
/// token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Progress {
    session_token: Option<String>,
    region: Option<String>,
    role: Option<String>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("region", &self.region)
            .field("role", &self.role)
            .finish()
    }
}

/// What comes next: a metadata call, or the subject token.
pub enum Next {
    Call(Stage, Progress, Callout),
    Subject(String),
}

/// Reads the AWS fields of `credential_source`; `Err((field, why))` names
/// what is wrong.
pub fn read(
    url: Option<String>,
    region_url: Option<String>,
    verification_url: Option<String>,
    session_token_url: Option<String>,
) -> Result<AwsSource, (&'static str, String)> {
    let endpoint = |field: &'static str, url: Option<String>| {
        let url = url.ok_or((field, "is required with environment_id aws1".to_string()))?;
        let uri = FunctionUri::parse(&url).map_err(|why| (field, why))?;
        Ok::<_, (&'static str, String)>(Endpoint {
            authority: uri.authority(),
            path: uri.path.clone(),
        })
    };
    let field = "regional_cred_verification_url";
    let verification = verification_url.unwrap_or_default();
    // Checked once with a region in place, so signing cannot fail on it;
    // the query must already be canonical (the one gcloud writes is).
    let uri = FunctionUri::parse(&verification.replace("{region}", "us-east-1"))
        .map_err(|why| (field, why))?;
    let Some((before, after)) = verification.split_once("{region}") else {
        return Err((
            field,
            "must name the {region} of the regional STS endpoint".into(),
        ));
    };
    let json_safe = verification
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if !json_safe || !matches!(uri.path.as_str(), "" | "/") || !canonical(&uri.query) {
        return Err((
            field,
            "must be like https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15: no path, and name=value pairs in order of unreserved characters".into(),
        ));
    }
    Ok(AwsSource {
        region_url: endpoint("region_url", region_url)?,
        role_url: endpoint("url", url)?,
        verification_url: (before.to_string(), after.to_string()),
        session_token_url: match session_token_url {
            Some(url) => Some(endpoint("imdsv2_session_token_url", Some(url))?),
            None => None,
        },
    })
}

/// Whether a query is already in SigV4's canonical form: `name=value`
/// pairs sorted by name, of unreserved characters only.
fn canonical(query: &str) -> bool {
    let unreserved = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    };
    let mut previous = "";
    query.split('&').all(|pair| {
        let Some((name, value)) = pair.split_once('=') else {
            return false;
        };
        let in_order = previous < name;
        previous = name;
        in_order && unreserved(name) && unreserved(value)
    })
}

/// The first move of a fetch.
pub fn start(source: &AwsSource, cluster: &str) -> Result<Next, String> {
    next(source, Progress::default(), cluster)
}

/// The move after `stage`'s answer.
pub fn advance(
    source: &AwsSource,
    (stage, mut progress): (Stage, Progress),
    status: u16,
    body: &[u8],
    (cluster, audience, now): (&str, &str, SystemTime),
) -> Result<Next, String> {
    if status != 200 {
        return Err(format!("AWS instance metadata ({stage:?}): HTTP {status}"));
    }
    let text = std::str::from_utf8(body).map(str::trim).unwrap_or_default();
    let printable = !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic());
    if !printable && stage != Stage::Keys {
        return Err(format!(
            "AWS instance metadata ({stage:?}): not a printable answer"
        ));
    }
    match stage {
        Stage::SessionToken => progress.session_token = Some(text.to_string()),
        Stage::Region => {
            // `us-east-1a` → `us-east-1`.
            let region = text.get(..text.len().saturating_sub(1)).unwrap_or_default();
            if region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err("AWS instance metadata (Region): not an availability zone".into());
            }
            progress.region = Some(region.to_string());
        }
        Stage::Role => progress.role = Some(text.to_string()),
        Stage::Keys => {
            let keys = parse_keys(body)?;
            let region = progress.region.unwrap_or_default();
            return subject_token(source, &region, &keys, audience, now).map(Next::Subject);
        }
    }
    next(source, progress, cluster)
}

/// The next metadata call: the session token (with IMDSv2), the zone,
/// the role's name, then its credentials.
fn next(source: &AwsSource, progress: Progress, cluster: &str) -> Result<Next, String> {
    let (stage, url, path) = match (&source.session_token_url, &progress) {
        (
            Some(url),
            Progress {
                session_token: None,
                ..
            },
        ) => {
            let mut call = callout(cluster, &url.authority, request("PUT", url.path.clone()));
            call.headers.push((
                "x-aws-ec2-metadata-token-ttl-seconds".into(),
                IMDS_TOKEN_TTL.into(),
            ));
            return Ok(Next::Call(Stage::SessionToken, progress, call));
        }
        (_, Progress { region: None, .. }) => (
            Stage::Region,
            &source.region_url,
            source.region_url.path.clone(),
        ),
        (_, Progress { role: None, .. }) => {
            (Stage::Role, &source.role_url, source.role_url.path.clone())
        }
        (
            _,
            Progress {
                role: Some(role), ..
            },
        ) => {
            let base = source.role_url.path.trim_end_matches('/');
            (Stage::Keys, &source.role_url, format!("{base}/{role}"))
        }
    };
    let mut call = callout(cluster, &url.authority, request("GET", path));
    if let Some(token) = &progress.session_token {
        call.headers
            .push(("x-aws-ec2-metadata-token".into(), token.clone()));
    }
    Ok(Next::Call(stage, progress, call))
}

fn request(method: &'static str, path: String) -> SourceRequest {
    SourceRequest {
        method,
        path,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// The instance role's credentials document (`AccessKeyId`,
/// `SecretAccessKey`, `Token`). Errors name the field, never a value.
fn parse_keys(body: &[u8]) -> Result<Credentials, String> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|_| "AWS instance metadata (Keys): not JSON".to_string())?;
    let field = |name: &str| {
        doc.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("AWS instance metadata (Keys): no {name}"))
    };
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("Token")?),
    })
}

/// The subject token: `GetCallerIdentity` at the regional STS, signed for
/// `sts` in `region`, with the pool provider (`audience`) in
/// `x-goog-cloud-target-resource` (unsigned, as Google's libraries send
/// it), serialised as Google STS reads it (keys sorted, compact) and
/// percent-encoded.
pub fn subject_token(
    source: &AwsSource,
    region: &str,
    keys: &Credentials,
    audience: &str,
    now: SystemTime,
) -> Result<String, String> {
    let (before, after) = &source.verification_url;
    let url = format!("{before}{region}{after}");
    let uri = FunctionUri::parse(&url)
        .map_err(|_| "AWS: the verification URL is not a URL with this region".to_string())?;
    let host = uri.authority();
    let date = amz_date_at(now);
    let mut headers = vec![("host", host.as_str()), ("x-amz-date", date.as_str())];
    if let Some(token) = &keys.session_token {
        headers.push(("x-amz-security-token", token));
    }
    // The canonical request: `/`, the query as configured (checked
    // canonical at load), the headers in order (already sorted), no body.
    let mut canonical = format!("POST\n/\n{}\n", uri.query);
    let mut signed = String::new();
    for (name, value) in &headers {
        canonical.push_str(&format!("{name}:{value}\n"));
        if !signed.is_empty() {
            signed.push(';');
        }
        signed.push_str(name);
    }
    canonical.push_str(&format!("\n{signed}\n{EMPTY_SHA256}"));
    let authorization = authorization_for(keys, (region, "sts"), &date, &canonical, &signed);
    // Compact JSON, keys sorted (`headers`, `method`, `url`), written by
    // hand: every value is printable without `"` or `\` (checked), so none
    // needs escaping.
    let (signed_headers, token) = headers.split_at(2);
    let mut list = vec![("Authorization", authorization.as_str())];
    list.extend_from_slice(signed_headers);
    list.push(("x-goog-cloud-target-resource", audience));
    list.extend_from_slice(token);
    let mut json = String::from("{\"headers\":[");
    for (i, (key, value)) in list.iter().enumerate() {
        if value
            .bytes()
            .any(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
        {
            return Err(format!(
                "AWS: the {key} value cannot be sent in a subject token"
            ));
        }
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!("{{\"key\":\"{key}\",\"value\":\"{value}\"}}"));
    }
    json.push_str(&format!("],\"method\":\"POST\",\"url\":\"{url}\"}}"));
    Ok(query_encode(&json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const VERIFY: &str =
        "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";
    const AUDIENCE: &str =
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws";

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000)
    }

    fn imds_source() -> AwsSource {
        read(
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials".into()),
            Some("http://169.254.169.254/latest/meta-data/placement/availability-zone".into()),
            Some(VERIFY.into()),
            Some("http://169.254.169.254/latest/api/token".into()),
        )
        .unwrap()
    }

    fn call(next: Result<Next, String>) -> (Stage, Progress, Callout) {
        match next.unwrap() {
            Next::Call(stage, progress, call) => (stage, progress, call),
            Next::Subject(_) => panic!("expected a call"),
        }
    }

    fn decoded(subject: &str) -> Value {
        let mut bytes = Vec::new();
        let mut rest = subject.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'%' {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
            } else {
                bytes.push(b);
                rest = tail;
            }
        }
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn instance_metadata_walks_token_region_role_keys_then_signs() {
        let source = imds_source();
        let ctx = ("subject", AUDIENCE, now());
        let (stage, progress, c) = call(start(&source, "subject"));
        assert_eq!(stage, Stage::SessionToken);
        assert_eq!(
            (c.header(":method"), c.header(":path")),
            (Some("PUT"), Some("/latest/api/token"))
        );
        assert_eq!(
            c.header("x-aws-ec2-metadata-token-ttl-seconds"),
            Some("300")
        );
        let (stage, progress, c) = call(advance(&source, (stage, progress), 200, b"imds-tok", ctx));
        assert_eq!(stage, Stage::Region);
        assert_eq!(c.header("x-aws-ec2-metadata-token"), Some("imds-tok"));
        assert!(!format!("{progress:?}").contains("imds-tok"));
        let (stage, progress, _) =
            call(advance(&source, (stage, progress), 200, b"eu-west-3b", ctx));
        assert_eq!(stage, Stage::Role);
        let (stage, progress, c) = call(advance(
            &source,
            (stage, progress),
            200,
            b"gateway-role\n",
            ctx,
        ));
        assert_eq!(stage, Stage::Keys);
        assert_eq!(
            c.header(":path"),
            Some("/latest/meta-data/iam/security-credentials/gateway-role")
        );
        let keys = br#"{"Code":"Success","AccessKeyId":"ASIAROLE","SecretAccessKey":"role/secret","Token":"role-token","Expiration":"2026-11-21T18:00:00Z"}"#;
        let Ok(Next::Subject(subject)) = advance(&source, (stage, progress), 200, keys, ctx) else {
            panic!("a subject token")
        };
        let doc = decoded(&subject);
        assert_eq!(doc["method"], "POST");
        assert_eq!(
            doc["url"],
            "https://sts.eu-west-3.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
        );
        let headers: Vec<(String, String)> = doc["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["key"].as_str().unwrap().into(),
                    h["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Authorization",
                "host",
                "x-amz-date",
                "x-goog-cloud-target-resource",
                "x-amz-security-token"
            ]
        );
        let authorization = &headers[0].1;
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=ASIAROLE/20261118/eu-west-3/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="
        ), "{authorization}");
        assert!(!subject.contains("role%2Fsecret") && !subject.contains("role/secret"));
        assert_eq!(headers[3].1, AUDIENCE);
    }

    #[test]
    fn without_imdsv2_the_first_call_is_the_zone_and_no_token_is_sent() {
        let mut source = imds_source();
        source.session_token_url = None;
        let (stage, progress, c) = call(start(&source, "subject"));
        assert_eq!(stage, Stage::Region);
        assert!(c.header("x-aws-ec2-metadata-token").is_none());
        let ctx = ("subject", AUDIENCE, now());
        let (stage, _, c) = call(advance(&source, (stage, progress), 200, b"us-west-2c", ctx));
        assert_eq!(stage, Stage::Role);
        assert_eq!(
            c.header(":path"),
            Some("/latest/meta-data/iam/security-credentials")
        );
    }

    #[test]
    fn missing_sources_and_bad_answers_are_named_without_values() {
        let url = || Some("http://169.254.169.254/x".to_string());
        for (args, field) in [
            ((None, url(), Some(VERIFY.to_string())), "url"),
            ((url(), None, Some(VERIFY.to_string())), "region_url"),
            ((url(), url(), None), "regional_cred_verification_url"),
            (
                (
                    url(),
                    url(),
                    Some("https://sts.{region}.amazonaws.com?Version=1&Action=x".into()),
                ),
                "regional_cred_verification_url",
            ),
            (
                (
                    url(),
                    url(),
                    Some("https://sts.us-east-1.amazonaws.com?Action=x".into()),
                ),
                "regional_cred_verification_url",
            ),
        ] {
            let e = read(args.0, args.1, args.2, None).unwrap_err();
            assert_eq!(e.0, field, "{e:?}");
        }
        let source = imds_source();
        let ctx = ("subject", AUDIENCE, now());
        let progress = Progress::default();
        let e = advance(
            &source,
            (Stage::Region, progress.clone()),
            200,
            b"two words",
            ctx,
        )
        .err()
        .unwrap();
        assert!(e.contains("not a printable answer"), "{e}");
        let e = advance(
            &source,
            (Stage::Keys, progress.clone()),
            200,
            br#"{"AccessKeyId":"A","SecretAccessKey":"leaked"}"#,
            ctx,
        )
        .err()
        .unwrap();
        assert!(e.contains("no Token") && !e.contains("leaked"), "{e}");
        let e = advance(&source, (Stage::Role, progress), 401, b"", ctx)
            .err()
            .unwrap();
        assert!(e.contains("HTTP 401"), "{e}");
    }
}
