//! The operator's plugin configuration: any bytes compile to a config or
//! to an error naming a field, never a panic. The same bytes as the
//! metadata server's answer: an ID token with its expiry or an error that
//! never quotes the token; as a service-account key's PKCS#8 DER: a key or
//! `None`; as each answer of EC2's instance metadata to an AWS subject: the
//! next call, the subject token or an error.
#![no_main]

use faas_core::config::compile;
use faas_core::Integration;
use faas_core::credentials::SourceError;
use gcp_functions::aws_subject::{self, Stage};
use gcp_functions::identity::parse_id_token;
use gcp_functions::pkcs8::rsa_private_key;
use std::time::{Duration, SystemTime};
use gcp_functions::GcpFunctions as Filter;
use libfuzzer_sys::fuzz_target;

const KNOWN: [&str; 5] = [
    "the token is not text",
    "the answer is not a JWT",
    "the token is not printable",
    "the token's claims are not JSON",
    "the token has no numeric exp",
];

fuzz_target!(|data: &[u8]| {
    if let Err(e) = compile(data, Filter::read_global, Filter::read_route) {
        assert!(!e.to_string().is_empty());
    }
    // Its errors are fixed sentences: nothing of the answer is quoted.
    if let Err(SourceError::Malformed(why)) = parse_id_token(200, data) {
        assert!(KNOWN.contains(&why.as_str()), "{why}");
    }
    let _ = rsa_private_key(data);
    let imds = |path: &str| Some(format!("http://169.254.169.254{path}"));
    let Ok(source) = aws_subject::read(
        imds("/latest/meta-data/iam/security-credentials"),
        imds("/latest/meta-data/placement/availability-zone"),
        Some("https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15".into()),
        imds("/latest/api/token"),
    ) else {
        panic!("the gcloud AWS configuration is valid");
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for stage in [Stage::SessionToken, Stage::Region, Stage::Role, Stage::Keys] {
        let progress = Default::default();
        let _ = aws_subject::advance(&source, (stage, progress), 200, data, ("c", "aud", now));
    }
});
