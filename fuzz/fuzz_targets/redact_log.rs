//! What an upstream said, made fit for a log line (`faas_core::redact`):
//! whatever the text, the line is one line, bounded, and holds none of the
//! credentials the filter sent when the text quoted them.
//! Input: credential header lines (`name: value`), a blank line, the text.
#![no_main]

use envoy_faas_fuzz::message;
use faas_core::redact::{credential_values, expand, for_log, MAX_LOGGED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let m = message(data);
    let text = String::from_utf8_lossy(&m.body);
    let sent = credential_values(&m.headers);
    let line = for_log(&text, &sent);
    let secrets = expand(&sent);
    assert!(!line.contains(['\r', '\n']), "{line:?}");
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(line.chars().count() <= MAX_LOGGED * 4 + 3, "{}", line.len());
    // A secret quoted by the upstream never survives. (Escapes write
    // `\xNN`, so secrets with `x` or a backslash could be spelled by one.)
    for secret in &secrets {
        if text.contains(secret.as_str()) && !secret.contains(['x', '\\']) && !secret.contains("redacted") {
            assert!(!line.contains(secret.as_str()), "{secret:?} in {line:?}");
        }
    }
});
