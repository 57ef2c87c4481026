//! SigV4's canonical request for any method, path, query and headers:
//! never a panic, always the six parts AWS defines.
#![no_main]

use aws_lambda::sigv4::{canonical_request, hex_sha256, Request};
use envoy_faas_fuzz::message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let m = message(data);
    let (method, target) = m.start.split_once(' ').unwrap_or((m.start.as_str(), "/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let hash = hex_sha256(&m.body);
    let request = Request {
        method,
        path,
        query,
        headers: m
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect(),
        payload_hash: &hash,
    };
    let (creq, signed) = canonical_request(&request);
    assert!(creq.ends_with(&hash));
    assert!(creq.contains(&signed));
});
