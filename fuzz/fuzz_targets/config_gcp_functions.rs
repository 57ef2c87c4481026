//! The operator's plugin configuration: any bytes compile to a config or
//! to an error naming a field, never a panic. The same bytes as the
//! metadata server's answer: an ID token with its expiry or an error that
//! never quotes the token.
#![no_main]

use faas_core::config::compile;
use faas_core::Integration;
use faas_core::credentials::SourceError;
use gcp_functions::identity::parse_id_token;
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
});
