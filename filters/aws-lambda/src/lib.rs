//! `aws-lambda`: an Envoy route becomes a call to an AWS Lambda function,
//! signed with our own SigV4 signer, in one of two modes:
//! - `function_uri`: through API Gateway or a Lambda Function URL (APISIX
//!   `aws-lambda` parity): the request is forwarded as HTTP;
//! - `function_name`: the Lambda Invoke API (Kong `aws-lambda` parity): the
//!   request becomes an event ([`events`]) and the result a response
//!   ([`invoke_response`]).
//!
//! Everything but credentials is the shared forwarding behaviour of
//! `faas-core`: [`config`] compiles the route, [`signing`] adds
//! `x-api-key` and/or SigV4 to the callout, [`sigv4`] is the signer.

/// SigV4 and the digits it writes live in `faas-core`, shared with
/// `gcp-functions` (AWS subject tokens for Workload Identity Federation).
pub use faas_core::{decimal, sigv4};
pub mod clock;
pub mod config;
pub mod credentials;
pub mod events;
pub mod eventstream;
pub mod iam;
pub mod invoke;
pub mod invoke_response;
pub mod json_writer;
pub mod response_stream;
pub mod signing;
pub mod stream_prelude;

use config::{Mode, Route};
use credentials::environment::Environment;
use credentials::Credentials;
use faas_core::credentials::provider::{work, CredentialWork};
use faas_core::request::forward;
use faas_core::response::passthrough;
use faas_core::rewrite::ResponseRewrite;
use faas_core::{
    Callout, CalloutResponse, ClientRequest, CommonConfig, ConfigError, ErrorReply, Fields,
    Integration, LocalReply,
};
use iam::{CredentialSource, Global, Iam};
use response_stream::LambdaStream;
use std::borrow::Cow;
use std::cell::Ref;
use std::time::SystemTime;

/// The credentials to sign with now: static ones (borrowed: no copy per
/// request), or the platform source's current ones (loaded by `admit`).
fn credentials_for<'a>(
    global: &Global,
    iam: &'a Iam,
    now: SystemTime,
) -> Result<Cow<'a, Credentials>, ErrorReply> {
    match &iam.credentials {
        CredentialSource::Static(c) => Ok(Cow::Borrowed(c)),
        CredentialSource::Platform(i) => global
            .provider
            .borrow()
            .current(*i, now, "no valid AWS credentials to sign with")
            .map(Cow::Owned),
    }
}

pub struct AwsLambda;

impl Integration for AwsLambda {
    const NAME: &'static str = "aws-lambda";
    type Global = Global;
    type Route = Route;

    fn read_global(fields: &mut Fields) -> Result<Global, ConfigError> {
        // Envoy passes `vm_config.environment_variables` through WASI.
        let env = Environment::read(|name| std::env::var(name).ok()).map_err(|e| {
            ConfigError::new(
                fields.route(),
                e.variable,
                format!("(environment) {}", e.message),
            )
        })?;
        Global::read(fields, env)
    }

    fn read_route(fields: &mut Fields, global: &Global) -> Result<Route, ConfigError> {
        config::read_route(fields, global)
    }

    fn common(route: &Route) -> &CommonConfig {
        &route.common
    }

    /// Only API Gateway events carry the protocol (`requestContext`).
    fn uses_protocol(route: &Route) -> bool {
        matches!(&route.mode, Mode::Invoke(invoke) if invoke.payload.is_api_gateway())
    }

    /// The platform credentials' provider: routes signing with a platform
    /// source load its shared credentials, and are refused (503) while
    /// there are no valid ones (`Integration::admit`'s default).
    fn credentials(global: &Global) -> Option<Ref<'_, dyn CredentialWork>> {
        Some(work(&global.provider))
    }

    fn credentials_index(route: &Route) -> Option<usize> {
        match route.iam().map(|iam| &iam.credentials) {
            Some(CredentialSource::Platform(i)) => Some(*i),
            _ => None,
        }
    }

    /// SigV4 signs the body's hash, which the headers must carry: a signed
    /// request with a body goes in place only once the held body is here
    /// (`stop_iteration` layout), else it takes the callout path.
    fn in_place_with_body(route: &Route) -> bool {
        route.iam().is_none()
    }

    /// In place, Invoke mode's body is the event built from the client's.
    fn in_place_replaces_body(route: &Route) -> bool {
        matches!(route.mode, Mode::Invoke(_))
    }

    /// `InvokeWithResponseStream`'s eventstream becomes the client's bytes.
    fn response_rewrite(_: &Global, route: &Route) -> Option<Box<dyn ResponseRewrite>> {
        match &route.mode {
            Mode::Invoke(invoke) if invoke.streaming => {
                Some(Box::new(LambdaStream::new(&invoke.response)))
            }
            _ => None,
        }
    }

    fn streams_response(route: &Route) -> bool {
        route.streaming
    }

    fn build_callout(
        global: &Global,
        route: &Route,
        request: &ClientRequest,
        now: SystemTime,
    ) -> Result<Callout, ErrorReply> {
        let credentials = route
            .iam()
            .map(|iam| credentials_for(global, iam, now))
            .transpose()?;
        Ok(match &route.mode {
            Mode::Url(mode) => {
                let mut callout = forward(&route.common, request);
                mode.authorize(credentials.as_deref(), &mut callout, now);
                callout
            }
            Mode::Invoke(invoke) => {
                let mut callout = invoke::callout(&route.common, invoke, request, now);
                if let Some(c) = &credentials {
                    let iam = &invoke.iam;
                    signing::sign(&iam.signer, c, iam.content_sha256, &mut callout, now);
                }
                callout
            }
        })
    }

    fn map_response(
        _: &Global,
        route: &Route,
        response: CalloutResponse,
    ) -> Result<LocalReply, ErrorReply> {
        match &route.mode {
            Mode::Url(url) => match url
                .iam
                .as_ref()
                .and(invoke_response::signed_request_refused(&response))
            {
                Some(refused) => Err(refused),
                None => Ok(passthrough(response)),
            },
            Mode::Invoke(invoke) if invoke.streaming => {
                response_stream::buffered(response, &invoke.response)
            }
            Mode::Invoke(invoke) => invoke_response::map(response, &invoke.response),
        }
    }
}

// The module entry point exists only in the filter build: with `lib-only`
// (or on the host) several filters link into one program, the
// micro-benchmarks, without clashing entry points.
#[cfg(all(target_arch = "wasm32", not(feature = "lib-only")))]
proxy_wasm::main! {{
    faas_core::shell::install::<AwsLambda>();
}}
