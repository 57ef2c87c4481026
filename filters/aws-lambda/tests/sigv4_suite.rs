#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code, not filter code
//! Our signer against the AWS SigV4 test suite (vendored from botocore, see
//! tests/data/sigv4/SOURCE.md) and the botocore-generated Lambda vectors.

use aws_lambda::sigv4::{hex_sha256, Credentials, Request, Signer};
use std::path::{Path, PathBuf};

const DATE: &str = "20150830T123600Z";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigv4")
}

fn find_cases(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_cases(&path, out);
        } else if path.extension().is_some_and(|e| e == "req") {
            out.push(path);
        }
    }
}

struct Parsed {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses a `.req`: request line, `Name:value` headers with obs-fold
/// continuation lines unfolded, blank line, body.
fn parse_req(text: &str) -> Parsed {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text, ""),
    };
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let target = rest.rsplit_once(" HTTP/").expect("version").0;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (n, v) = line.split_once(':').expect("header");
            headers.push((n.to_string(), v.to_string()));
        }
    }
    Parsed {
        method: method.into(),
        target: target.into(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn suite_credentials(creq: &str) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: creq
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-security-token:"))
            .map(String::from),
    }
}

#[test]
fn every_aws_suite_case_matches_creq_sts_and_authz() {
    let mut cases = Vec::new();
    find_cases(&data(), &mut cases);
    cases.sort();
    assert_eq!(cases.len(), 34, "the suite has 34 cases");
    let mut failures = Vec::new();
    for req_path in &cases {
        let read = |ext: &str| std::fs::read_to_string(req_path.with_extension(ext)).expect(ext);
        let parsed = parse_req(&read("req"));
        let (creq, sts, authz) = (read("creq"), read("sts"), read("authz"));
        let creds = suite_credentials(&creq);
        let token = creds.session_token.clone();
        let (path, query) = parsed
            .target
            .split_once('?')
            .unwrap_or((&parsed.target, ""));
        let mut headers: Vec<(&str, &str)> = parsed
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // The token is signed when the expected canonical request lists it
        // (post-sts-header-after adds it only after signing).
        if let Some(token) = &token {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
            {
                headers.push(("x-amz-security-token", token));
            }
        }
        let payload_hash = hex_sha256(&parsed.body);
        let request = Request {
            method: &parsed.method,
            path,
            query,
            headers,
            payload_hash: &payload_hash,
        };
        let signer = Signer::new("us-east-1", "service");
        let signed = signer.sign_at(&creds, &request, DATE);
        let name = req_path.file_stem().unwrap().to_string_lossy().to_string();
        if signed.canonical_request != creq {
            failures.push(format!(
                "{name}: canonical request\n got: {:?}\nwant: {:?}",
                signed.canonical_request, creq
            ));
        } else if signed.string_to_sign != sts {
            failures.push(format!("{name}: string to sign"));
        } else if signed.authorization != authz {
            failures.push(format!(
                "{name}: authorization\n got: {}\nwant: {authz}",
                signed.authorization
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 34 cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_lambda_invoke_vector_matches() {
    let text = std::fs::read_to_string(data().join("lambda-invoke-vectors.json")).expect("vectors");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert_eq!(vectors.len(), 6);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let url = v["url"].as_str().unwrap();
        let after_scheme = url.split_once("://").unwrap().1;
        let target = &after_scheme[after_scheme.find('/').unwrap()..];
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let creds = Credentials {
            access_key_id: v["access_key_id"].as_str().unwrap().into(),
            secret_access_key: v["secret_access_key"].as_str().unwrap().into(),
            session_token: v["session_token"].as_str().map(String::from),
        };
        let amz_date = v["amz_date"].as_str().unwrap();
        let mut headers: Vec<(String, String)> = v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        headers.push(("X-Amz-Date".into(), amz_date.into()));
        if let Some(t) = creds.session_token.clone() {
            headers.push(("X-Amz-Security-Token".into(), t));
        }
        let payload_hash = hex_sha256(v["body"].as_str().unwrap().as_bytes());
        let request = Request {
            method: v["method"].as_str().unwrap(),
            path,
            query,
            headers: headers
                .iter()
                .map(|(n, x)| (n.as_str(), x.as_str()))
                .collect(),
            payload_hash: &payload_hash,
        };
        let signer = Signer::new(
            v["region"].as_str().unwrap(),
            v["service"].as_str().unwrap(),
        );
        let signed = signer.sign_at(&creds, &request, amz_date);
        let expected = &v["expected"];
        assert_eq!(
            signed.canonical_request,
            expected["canonical_request"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            signed.string_to_sign,
            expected["string_to_sign"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            signed.signature,
            expected["signature"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            signed.authorization,
            expected["authorization"].as_str().unwrap(),
            "{name}"
        );
    }
}
