//! A function's answer as the callout returns it: classified (Envoy's own
//! failures told apart), passed through and framed for Envoy's local
//! reply. Framing never lets a stale content-length through.
#![no_main]

use envoy_faas_fuzz::callout_response;
use faas_core::response::{classify, frame, passthrough, CallResult};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let response = callout_response(data);
    let status = response.status;
    if let CallResult::Function(response) = classify(response) {
        let head = status % 2 == 0;
        let framed = frame(passthrough(response), head);
        assert!(framed
            .reply
            .headers
            .iter()
            .all(|(n, _)| n != "content-length"));
        assert!(framed.reply.body.is_empty() || framed.restore.is_empty());
    }
});
