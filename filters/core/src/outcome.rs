//! The one registry of how a function request ends: the `outcome` label
//! of the metrics and access log, whose fault it was, and for every error
//! the filters answer, its stable JSON `error` code and HTTP status.
//!
//! Modelled on pingora's `ErrorSource` (upstream, downstream, internal):
//! here `function`, `client` and `gateway`, where `function` means the
//! function or the platform that runs it (Lambda's Invoke API, the
//! Function App).

/// Whose fault an outcome was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request succeeded (or the function answered a 1xx–3xx).
    None,
    /// The client's request (too large, a 4xx from the function, gone).
    Client,
    /// The function or its platform.
    Function,
    /// The gateway's own configuration or state.
    Gateway,
}

impl Fault {
    pub fn label(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Client => "client",
            Fault::Function => "function",
            Fault::Gateway => "gateway",
        }
    }
}

/// How one request on a function route ended: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The function answered (after the filter's mapping) with this class.
    Function1xx,
    Function2xx,
    Function3xx,
    Function4xx,
    Function5xx,
    Timeout,
    Unreachable,
    ResponseTooLarge,
    InvalidResponse,
    /// The function ran and failed (Lambda's `X-Amz-Function-Error`).
    FunctionError,
    /// Lambda's Invoke API refused the call (other than 413/429).
    InvokeApiError,
    Throttled,
    RequestTooLarge,
    CredentialsUnavailable,
    CalloutFailed,
    BodyLayoutMisconfigured,
    /// The client went away before the function's answer.
    ClientClosed,
    /// The filter refused the client's request before calling the
    /// function (a forwarded path that would escape the base path).
    RequestRefused,
}

impl Outcome {
    /// Every outcome, in `index` order: the metrics are defined from this.
    pub const ALL: [Outcome; 18] = [
        Outcome::Function1xx,
        Outcome::Function2xx,
        Outcome::Function3xx,
        Outcome::Function4xx,
        Outcome::Function5xx,
        Outcome::Timeout,
        Outcome::Unreachable,
        Outcome::ResponseTooLarge,
        Outcome::InvalidResponse,
        Outcome::FunctionError,
        Outcome::InvokeApiError,
        Outcome::Throttled,
        Outcome::RequestTooLarge,
        Outcome::CredentialsUnavailable,
        Outcome::CalloutFailed,
        Outcome::BodyLayoutMisconfigured,
        Outcome::ClientClosed,
        Outcome::RequestRefused,
    ];

    /// Position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Function1xx => "function_1xx",
            Outcome::Function2xx => "function_2xx",
            Outcome::Function3xx => "function_3xx",
            Outcome::Function4xx => "function_4xx",
            Outcome::Function5xx => "function_5xx",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::ResponseTooLarge => "response_too_large",
            Outcome::InvalidResponse => "invalid_response",
            Outcome::FunctionError => "function_error",
            Outcome::InvokeApiError => "invoke_api_error",
            Outcome::Throttled => "throttled",
            Outcome::RequestTooLarge => "request_too_large",
            Outcome::CredentialsUnavailable => "credentials_unavailable",
            Outcome::CalloutFailed => "callout_failed",
            Outcome::BodyLayoutMisconfigured => "body_layout_misconfigured",
            Outcome::ClientClosed => "client_closed",
            Outcome::RequestRefused => "request_refused",
        }
    }

    pub fn fault(self) -> Fault {
        match self {
            Outcome::Function1xx | Outcome::Function2xx | Outcome::Function3xx => Fault::None,
            Outcome::Function4xx
            | Outcome::RequestTooLarge
            | Outcome::ClientClosed
            | Outcome::RequestRefused => Fault::Client,
            Outcome::Function5xx
            | Outcome::Timeout
            | Outcome::Unreachable
            | Outcome::ResponseTooLarge
            | Outcome::InvalidResponse
            | Outcome::FunctionError
            | Outcome::InvokeApiError
            | Outcome::Throttled => Fault::Function,
            Outcome::CredentialsUnavailable
            | Outcome::CalloutFailed
            | Outcome::BodyLayoutMisconfigured => Fault::Gateway,
        }
    }

    /// The outcome of a response the function's answer was mapped to.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            0..=199 => Outcome::Function1xx,
            200..=299 => Outcome::Function2xx,
            300..=399 => Outcome::Function3xx,
            400..=499 => Outcome::Function4xx,
            _ => Outcome::Function5xx,
        }
    }
}

/// Every error the filters answer with. The JSON `error` code is the
/// client-facing contract (stable); the outcome is the metrics class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    RequestBodyTooLarge,
    /// The forwarded path hides a dot segment behind an encoded separator
    /// (see [`crate::path::hides_dot_segment`]).
    UnsafePath,
    /// The client sent a header only the gateway may set.
    ReservedHeader,
    FunctionTimeout,
    FunctionUnreachable,
    FunctionResponseTooLarge,
    /// Envoy refused to send the call (no such cluster).
    CalloutFailed,
    /// `forwarding: route` on an Envoy route whose cluster is not the one
    /// the config names (or the request could not be rewritten).
    ForwardingMisconfigured,
    /// The deployment does not deliver request bodies the way the route's
    /// `body_layout` says (see [`crate::layout`]).
    BodyLayoutMisconfigured,
    /// The filter has no valid credentials to sign the call with (they are
    /// being fetched, or their source fails): never sent unsigned.
    CredentialsUnavailable,
    /// The function's result cannot be mapped (Lambda proxy integration).
    InvalidFunctionResponse,
    /// The function ran and failed (Lambda `X-Amz-Function-Error`).
    FunctionError,
    /// Lambda's Invoke API refused the call.
    InvokeApiFailed,
    /// ... with 429 (throttled).
    InvokeThrottled,
    /// ... with 413 (the event is over Lambda's payload limit).
    InvokeRequestTooLarge,
    /// AWS's front door (a Function URL, API Gateway) refused a request the
    /// filter signed: its message may quote the signed request, so the
    /// client gets this instead of AWS's answer.
    AwsSigningRefused,
}

impl Failure {
    /// Every failure, in declaration order (the troubleshooting table of the
    /// book's troubleshooting chapter has a row for each code, checked by `tests/tests/docs.rs`).
    pub const ALL: [Failure; 16] = [
        Failure::RequestBodyTooLarge,
        Failure::UnsafePath,
        Failure::ReservedHeader,
        Failure::FunctionTimeout,
        Failure::FunctionUnreachable,
        Failure::FunctionResponseTooLarge,
        Failure::CalloutFailed,
        Failure::ForwardingMisconfigured,
        Failure::BodyLayoutMisconfigured,
        Failure::CredentialsUnavailable,
        Failure::InvalidFunctionResponse,
        Failure::FunctionError,
        Failure::InvokeApiFailed,
        Failure::InvokeThrottled,
        Failure::InvokeRequestTooLarge,
        Failure::AwsSigningRefused,
    ];

    /// The default status of the answer (some errors may override it).
    pub fn status(self) -> u16 {
        match self {
            Failure::RequestBodyTooLarge | Failure::InvokeRequestTooLarge => 413,
            Failure::UnsafePath | Failure::ReservedHeader => 400,
            Failure::InvokeThrottled => 429,
            Failure::FunctionTimeout => 504,
            Failure::FunctionUnreachable
            | Failure::FunctionResponseTooLarge
            | Failure::InvalidFunctionResponse
            | Failure::FunctionError
            | Failure::InvokeApiFailed
            | Failure::AwsSigningRefused => 502,
            Failure::CalloutFailed
            | Failure::BodyLayoutMisconfigured
            | Failure::ForwardingMisconfigured => 500,
            Failure::CredentialsUnavailable => 503,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Failure::RequestBodyTooLarge => "request_body_too_large",
            Failure::UnsafePath => "unsafe_path",
            Failure::ReservedHeader => "reserved_header",
            Failure::FunctionTimeout => "function_timeout",
            Failure::FunctionUnreachable => "function_unreachable",
            Failure::FunctionResponseTooLarge => "function_response_too_large",
            Failure::CalloutFailed => "callout_failed",
            Failure::ForwardingMisconfigured => "forwarding_misconfigured",
            Failure::BodyLayoutMisconfigured => "body_layout_misconfigured",
            Failure::CredentialsUnavailable => "credentials_unavailable",
            Failure::InvalidFunctionResponse => "invalid_function_response",
            Failure::FunctionError => "function_error",
            Failure::InvokeApiFailed
            | Failure::InvokeThrottled
            | Failure::InvokeRequestTooLarge => "lambda_invoke_failed",
            Failure::AwsSigningRefused => "aws_signing_refused",
        }
    }

    pub fn outcome(self) -> Outcome {
        match self {
            Failure::RequestBodyTooLarge | Failure::InvokeRequestTooLarge => {
                Outcome::RequestTooLarge
            }
            Failure::UnsafePath | Failure::ReservedHeader => Outcome::RequestRefused,
            Failure::FunctionTimeout => Outcome::Timeout,
            Failure::FunctionUnreachable => Outcome::Unreachable,
            Failure::FunctionResponseTooLarge => Outcome::ResponseTooLarge,
            Failure::CalloutFailed | Failure::ForwardingMisconfigured => Outcome::CalloutFailed,
            Failure::BodyLayoutMisconfigured => Outcome::BodyLayoutMisconfigured,
            Failure::CredentialsUnavailable => Outcome::CredentialsUnavailable,
            Failure::InvalidFunctionResponse => Outcome::InvalidResponse,
            Failure::FunctionError => Outcome::FunctionError,
            Failure::InvokeApiFailed | Failure::AwsSigningRefused => Outcome::InvokeApiError,
            Failure::InvokeThrottled => Outcome::Throttled,
        }
    }

    pub fn fault(self) -> Fault {
        self.outcome().fault()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_all_lists_every_failure_once() {
        // A variant added to the enum but not to ALL fails here: the match
        // is exhaustive, so each variant has its place.
        let place = |f: Failure| match f {
            Failure::RequestBodyTooLarge => 0,
            Failure::UnsafePath => 1,
            Failure::ReservedHeader => 2,
            Failure::FunctionTimeout => 3,
            Failure::FunctionUnreachable => 4,
            Failure::FunctionResponseTooLarge => 5,
            Failure::CalloutFailed => 6,
            Failure::ForwardingMisconfigured => 7,
            Failure::BodyLayoutMisconfigured => 8,
            Failure::CredentialsUnavailable => 9,
            Failure::InvalidFunctionResponse => 10,
            Failure::FunctionError => 11,
            Failure::InvokeApiFailed => 12,
            Failure::InvokeThrottled => 13,
            Failure::InvokeRequestTooLarge => 14,
            Failure::AwsSigningRefused => 15,
        };
        for (i, f) in Failure::ALL.iter().enumerate() {
            assert_eq!(place(*f), i, "{f:?}");
        }
    }

    #[test]
    fn all_lists_every_outcome_once_in_index_order() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{o:?}");
        }
        let mut labels: Vec<_> = Outcome::ALL.iter().map(|o| o.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Outcome::ALL.len());
    }

    #[test]
    fn labels_are_prometheus_safe() {
        for o in Outcome::ALL {
            assert!(o
                .label()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }

    #[test]
    fn answered_statuses_map_to_classes_and_faults() {
        let cases = [
            (101, "function_1xx", Fault::None),
            (204, "function_2xx", Fault::None),
            (302, "function_3xx", Fault::None),
            (404, "function_4xx", Fault::Client),
            (503, "function_5xx", Fault::Function),
            (599, "function_5xx", Fault::Function),
        ];
        for (status, label, fault) in cases {
            let o = Outcome::of_status(status);
            assert_eq!((o.label(), o.fault()), (label, fault), "{status}");
        }
    }

    #[test]
    fn every_failure_has_a_code_a_status_and_a_fault() {
        let cases = [
            (Failure::RequestBodyTooLarge, 413, Fault::Client),
            (Failure::InvokeRequestTooLarge, 413, Fault::Client),
            (Failure::UnsafePath, 400, Fault::Client),
            (Failure::ReservedHeader, 400, Fault::Client),
            (Failure::InvokeThrottled, 429, Fault::Function),
            (Failure::FunctionTimeout, 504, Fault::Function),
            (Failure::FunctionUnreachable, 502, Fault::Function),
            (Failure::FunctionResponseTooLarge, 502, Fault::Function),
            (Failure::InvalidFunctionResponse, 502, Fault::Function),
            (Failure::FunctionError, 502, Fault::Function),
            (Failure::InvokeApiFailed, 502, Fault::Function),
            (Failure::AwsSigningRefused, 502, Fault::Function),
            (Failure::CalloutFailed, 500, Fault::Gateway),
            (Failure::ForwardingMisconfigured, 500, Fault::Gateway),
            (Failure::BodyLayoutMisconfigured, 500, Fault::Gateway),
            (Failure::CredentialsUnavailable, 503, Fault::Gateway),
        ];
        for (failure, status, fault) in cases {
            assert_eq!((failure.status(), failure.fault()), (status, fault));
            assert!(!failure.code().is_empty());
        }
        assert_eq!(Failure::InvokeThrottled.outcome().label(), "throttled");
        assert_eq!(Failure::InvokeThrottled.code(), "lambda_invoke_failed");
    }
}
