//! Differential: our SigV4 signer against AWS's `aws-sigv4` crate on the
//! same request must give the same `Authorization`. Inputs are restricted
//! to what Envoy forwards on the wire (a percent-encoded path and query,
//! token header names, visible header values) and to headers `aws-sigv4`
//! signs by default.
#![no_main]

use aws_credential_types::Credentials as AwsCredentials;
use aws_lambda::sigv4::{amz_date, hex_sha256, Credentials, Request, Signer};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use envoy_faas_fuzz::message;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, UNIX_EPOCH};

const HOST: &str = "abc123.lambda-url.us-east-1.on.aws";
const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// RFC 3986 characters a path or query may carry raw, plus `%XX` escapes.
fn wire_text(s: &str, extra: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |k: usize| bytes.get(k).is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@".contains(&b)
            || extra.as_bytes().contains(&b))
        {
            return false;
        }
        i += 1;
    }
    true
}

fn signable_header(name: &str, value: &str) -> bool {
    let name_ok = name == "content-type"
        || (name.starts_with("x-")
            && !name.starts_with("x-amz")
            && name.len() > 2
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    name_ok
        && !value.trim().is_empty()
        && value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) || b == b'\t')
}

fuzz_target!(|data: &[u8]| {
    let m = message(data);
    let (method, target) = m.start.split_once(' ').unwrap_or(("GET", m.start.as_str()));
    let method = match method {
        "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" => method,
        _ => return,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/')
        || !wire_text(path, "/")
        || !wire_text(query, "/?")
        || query.contains('#')
    {
        return;
    }
    let headers: Vec<(String, String)> = m
        .headers
        .into_iter()
        .filter(|(n, v)| signable_header(n, v))
        .collect();
    let seed = data
        .iter()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
    let seconds = 1_000_000_000 + seed % 3_000_000_000;
    let token = (seed % 3 == 0).then(|| format!("TOKEN{seed}"));
    let (region, service) =
        [("us-east-1", "lambda"), ("eu-west-3", "execute-api")][(seed % 2) as usize];

    let date = amz_date(seconds);
    let mut ours_headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    ours_headers.push(("host", HOST));
    ours_headers.push(("x-amz-date", &date));
    if let Some(t) = &token {
        ours_headers.push(("x-amz-security-token", t));
    }
    let hash = hex_sha256(&m.body);
    let creds = Credentials {
        access_key_id: KEY.into(),
        secret_access_key: SECRET.into(),
        session_token: token.clone(),
    };
    let request = Request {
        method,
        path,
        query,
        headers: ours_headers,
        payload_hash: &hash,
    };
    let ours = Signer::new(region, service)
        .sign_at(&creds, &request, &date)
        .authorization;

    let identity: Identity = AwsCredentials::new(KEY, SECRET, token, None, "fuzz").into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(UNIX_EPOCH + Duration::from_secs(seconds))
        .settings(SigningSettings::default())
        .build()
    else {
        return;
    };
    let uri = if query.is_empty() {
        format!("https://{HOST}{path}")
    } else {
        format!("https://{HOST}{path}?{query}")
    };
    let mut their_headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    their_headers.push(("host", HOST));
    let Ok(signable) = SignableRequest::new(
        method,
        &uri,
        their_headers.into_iter(),
        SignableBody::Bytes(&m.body),
    ) else {
        return; // aws-sigv4 refuses the URI: nothing to compare
    };
    let Ok(output) = sign(signable, &params.into()) else {
        return;
    };
    let (instructions, _) = output.into_parts();
    let theirs = instructions
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_string());
    assert_eq!(Some(ours), theirs, "{method} {uri}");
});
