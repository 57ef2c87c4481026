//! The Lambda Invoke API's answer mapped to the client's response, in every
//! result mode: a reply or a deliberate error, never a panic, and a reply
//! status Envoy can send.
#![no_main]

use aws_lambda::invoke_response::{map, InvocationType, ResponseSettings, ResultFormat};
use envoy_faas_fuzz::callout_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let response = callout_response(data);
    let status = response.status;
    for result in [
        ResultFormat::Raw,
        ResultFormat::Proxy { v2: false },
        ResultFormat::Proxy { v2: true },
        ResultFormat::Envoy,
    ] {
        for invocation_type in [InvocationType::RequestResponse, InvocationType::Event] {
            let settings = ResponseSettings {
                invocation_type,
                result,
                unhandled_status: None,
                preserve_api_status: status % 2 == 0,
                forward_invoke_headers: true,
                log_tail: true,
            };
            match map(response.clone(), &settings) {
                Ok(reply) => assert!((100..=999).contains(&reply.status), "{}", reply.status),
                Err(error) => assert!((400..=599).contains(&error.status)),
            }
        }
    }
});
