//! The API Gateway (1.0, 2.0), Kong and Envoy-native events built from a client request:
//! always a JSON object, whatever the path, query, headers and body; and
//! the written 1.0 and 2.0 events are byte for byte the serde_json
//! rendering they replaced (`events::reference`).
#![no_main]

use aws_lambda::events::{
    apigw_v1, apigw_v2, envoy_native, kong_forward, reference, EventContext, Forward,
};
use envoy_faas_fuzz::client_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let request = client_request(data);
    for (strip_prefix, base64_encode_body) in [(None, true), (Some("/api"), false)] {
        let ctx = EventContext {
            request_id: "fuzz",
            now_ms: 1_700_000_000_000,
            strip_prefix,
            base64_encode_body,
        };
        let written = [apigw_v1(&request, &ctx), apigw_v2(&request, &ctx)];
        let references = [
            reference::apigw_v1(&request, &ctx),
            reference::apigw_v2(&request, &ctx),
        ];
        for (bytes, reference) in written.iter().zip(references) {
            let parsed: serde_json::Value = serde_json::from_slice(bytes).expect("valid JSON");
            assert!(parsed.is_object());
            assert_eq!(*bytes, serde_json::to_vec(&reference).expect("renders"));
        }
    }
    let all = Forward {
        method: true,
        uri: true,
        headers: true,
        body: true,
    };
    assert!(kong_forward(&request, all, true).is_object());
    // Envoy's native format, with protobuf's escapes: valid JSON whose
    // strings decode to the request's.
    let native: serde_json::Value =
        serde_json::from_slice(&envoy_native(&request)).expect("valid JSON");
    assert_eq!(native["method"].as_str(), Some(request.method()));
    assert_eq!(native["raw_path"].as_str(), Some(request.target()));
});
