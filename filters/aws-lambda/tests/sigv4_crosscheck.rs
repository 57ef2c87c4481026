//! Property test: thousands of random requests signed by our signer and by
//! the `aws-sigv4` crate (an independent implementation by AWS) must give
//! the identical `Authorization` header.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use aws_credential_types::Credentials as AwsCredentials;
use aws_lambda::sigv4::{amz_date, hex_sha256, Credentials, Request, Signer};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use proptest::prelude::*;
use std::time::{Duration, UNIX_EPOCH};

/// Characters a path segment or query part may carry raw on the wire.
const RAW_OK: &str = "abcXYZ019-._~!$&'()*+,;=:@";
/// Characters that must be percent-encoded on the wire (the filter forwards
/// what the client sent, so these arrive encoded).
const ENCODED: &[&str] = &[
    " ", "/", "?", "#", "%", "é", "ሴ", "\"", "<", ">", "[", "]", "^", "`", "{", "}", "|", "\\",
    "\u{0}", "+", "=", "&",
];

fn wire_text(decoded: Vec<(bool, usize)>) -> String {
    let mut out = String::new();
    for (raw, i) in decoded {
        if raw {
            out.push(RAW_OK.as_bytes()[i % RAW_OK.len()] as char);
        } else {
            for b in ENCODED[i % ENCODED.len()].as_bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec((prop::bool::weighted(0.7), 0usize..64), 0..max).prop_map(wire_text)
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![8 => text(8), 1 => Just(".".to_string()), 1 => Just("..".to_string()), 1 => Just(String::new())]
}

fn query_text() -> impl Strategy<Value = String> {
    // The wire query must not carry a raw `&`, `=` or `#` inside a part.
    text(6).prop_map(|s| s.replace(['&', '=', '#'], "%2A"))
}

fn query() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        (query_text(), query_text()).prop_map(|(k, v)| format!("{k}={v}")),
        query_text(),              // valueless key
        Just("dup=1".to_string()), // repeated keys
        Just("dup=0".to_string()),
        Just("sp=a+b".to_string()),
        Just("eq=a=b".to_string()),
    ];
    prop::collection::vec(pair, 0..6).prop_map(|pairs| pairs.join("&"))
}

fn header_value() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-zA-Z0-9\"';:,./]{1,6}",
        Just(" ".to_string()),
        Just("   ".to_string()),
        Just("\t".to_string()),
    ];
    prop::collection::vec(pieces, 1..6)
        .prop_map(|p| p.concat())
        .prop_filter("non-blank", |v| !v.trim().is_empty())
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("content-type".to_string()),
        Just("X-Api-Key".to_string()),
        Just("x-custom".to_string()),
        Just("X-Custom".to_string()),
        "x-[a-z]{1,8}",
    ];
    prop::collection::vec((name, header_value()), 0..5)
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    token: Option<String>,
    seconds: u64,
    region: &'static str,
    service: &'static str,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
        ]),
        prop::collection::vec(segment(), 0..5),
        prop::bool::ANY,
        query(),
        headers(),
        prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..300)],
        prop::option::of("[A-Za-z0-9/+=]{16,64}"),
        1_000_000_000u64..4_000_000_000,
        prop::sample::select(vec!["us-east-1", "eu-west-3", "ap-southeast-2"]),
        prop::sample::select(vec!["lambda", "execute-api"]),
    )
        .prop_map(
            |(
                method,
                segments,
                trailing,
                query,
                headers,
                body,
                token,
                seconds,
                region,
                service,
            )| {
                let mut path = String::new();
                for s in &segments {
                    path.push('/');
                    path.push_str(s);
                }
                if path.is_empty() || trailing {
                    path.push('/');
                }
                Case {
                    method,
                    path,
                    query,
                    headers,
                    body,
                    token,
                    seconds,
                    region,
                    service,
                }
            },
        )
}

const HOST: &str = "abc123.lambda-url.us-east-1.on.aws";

fn ours(c: &Case) -> String {
    let date = amz_date(c.seconds);
    let mut headers: Vec<(&str, &str)> = c
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    headers.push(("host", HOST));
    headers.push(("x-amz-date", &date));
    if let Some(t) = &c.token {
        headers.push(("x-amz-security-token", t));
    }
    let hash = hex_sha256(&c.body);
    let creds = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: c.token.clone(),
    };
    let request = Request {
        method: c.method,
        path: &c.path,
        query: &c.query,
        headers,
        payload_hash: &hash,
    };
    Signer::new(c.region, c.service)
        .sign_at(&creds, &request, &date)
        .authorization
}

fn theirs(c: &Case) -> String {
    let identity: Identity = AwsCredentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        c.token.clone(),
        None,
        "crosscheck",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(c.region)
        .name(c.service)
        .time(UNIX_EPOCH + Duration::from_secs(c.seconds))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri = if c.query.is_empty() {
        format!("https://{HOST}{}", c.path)
    } else {
        format!("https://{HOST}{}?{}", c.path, c.query)
    };
    let mut headers: Vec<(&str, &str)> = c
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    headers.push(("host", HOST));
    let request = SignableRequest::new(
        c.method,
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(&c.body),
    )
    .unwrap_or_else(|e| panic!("aws-sigv4 refused {uri}: {e}"));
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let authorization = instructions
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_string());
    authorization.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn our_signature_equals_aws_sigv4(c in case()) {
        prop_assert_eq!(ours(&c), theirs(&c), "case: {:?}", c);
    }
}

#[test]
fn known_tricky_requests_agree() {
    let base = Case {
        method: "POST",
        path: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations"
            .into(),
        query: "Qualifier=%24LATEST&a=%2F&a=*&flag&sp=x+y".into(),
        headers: vec![
            (
                "Content-Type".into(),
                "  application/json;   charset=utf-8 ".into(),
            ),
            ("x-custom".into(), "a".into()),
            ("X-Custom".into(), "b".into()),
        ],
        body: vec![0, 159, 146, 150, 255],
        token: Some("FQoGZXIvYXdzEJr//////////wEaDOEXAMPLE".into()),
        seconds: 1_440_938_160,
        region: "us-east-1",
        service: "lambda",
    };
    assert_eq!(ours(&base), theirs(&base));
    let unicode = Case {
        path: "/caf%C3%A9/%E1%88%B4/a%20b/%25".into(),
        query: String::new(),
        token: None,
        ..base
    };
    assert_eq!(ours(&unicode), theirs(&unicode));
}
