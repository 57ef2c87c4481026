//! Adds credentials to the forwarding callout: `x-api-key` and SigV4.

use crate::config::UrlMode;
use crate::credentials::Credentials;
use crate::sigv4::{amz_date_at, hex_sha256, Request, Signer};
use faas_core::path::split_path_query;
use faas_core::Callout;
use std::time::SystemTime;

/// Client headers dropped when the filter signs: a client's own
/// `authorization` or `x-amz-*` would conflict with (or replace) ours, and
/// AWS refuses reserved `x-amzn-*` headers (Envoy issue #45609).
fn client_aws_header(name: &str) -> bool {
    name == "authorization" || name.starts_with("x-amz-") || name.starts_with("x-amzn-")
}

/// Headers covered by the signature: only those the filter controls and
/// Envoy leaves alone (Envoy adds `content-length`, `x-envoy-*` after us).
fn signed(name: &str) -> bool {
    matches!(name, ":authority" | "content-type" | "x-api-key") || name.starts_with("x-amz-")
}

/// `function_uri` mode: the API key (unless the client sent one) and SigV4
/// with `credentials` (required when the mode has IAM).
pub fn authorize(
    mode: &UrlMode,
    credentials: Option<&Credentials>,
    callout: &mut Callout,
    now: SystemTime,
) {
    if mode.strip_client_apikey {
        callout.remove_header("x-api-key");
    }
    if let Some(key) = &mode.apikey {
        // APISIX parity: a key the client sent (its own usage plan) wins,
        // unless `strip_client_apikey` removed it above.
        if callout.header("x-api-key").is_none() {
            callout.set_header("x-api-key", key.clone());
        }
    }
    if let (Some(iam), Some(credentials)) = (&mode.iam, credentials) {
        callout.headers.retain(|(n, _)| !client_aws_header(n));
        sign(&iam.signer, credentials, iam.content_sha256, callout, now);
    }
}

/// Signs a callout with SigV4. Every `x-amz-*` header already on the
/// callout is signed, so callers remove ones they did not set themselves.
/// `content_sha256` also sends (and signs) `x-amz-content-sha256`.
pub fn sign(
    signer: &Signer,
    credentials: &Credentials,
    content_sha256: bool,
    callout: &mut Callout,
    now: SystemTime,
) {
    let amz_date = amz_date_at(now);
    let payload_hash = hex_sha256(&callout.body);
    callout
        .headers
        .push(("x-amz-date".into(), amz_date.clone()));
    if let Some(token) = &credentials.session_token {
        callout
            .headers
            .push(("x-amz-security-token".into(), token.clone()));
    }
    if content_sha256 {
        callout
            .headers
            .push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    let method = callout.header(":method").unwrap_or("GET").to_string();
    let target = callout.header(":path").unwrap_or("/").to_string();
    let (path, query) = split_path_query(&target);
    let headers: Vec<(&str, &str)> = callout
        .headers
        .iter()
        .filter(|(n, _)| signed(n))
        .map(|(n, v)| {
            (
                if n == ":authority" {
                    "host"
                } else {
                    n.as_str()
                },
                v.as_str(),
            )
        })
        .collect();
    let request = Request {
        method: &method,
        path,
        query,
        headers,
        payload_hash: &payload_hash,
    };
    let signature = signer.sign_at(credentials, &request, &amz_date);
    callout
        .headers
        .push(("authorization".into(), signature.authorization));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::iam::testing::{compile_with, offline};
    use crate::iam::CredentialSource;
    use faas_core::request::forward;
    use faas_core::ClientRequest;
    use std::time::{Duration, UNIX_EPOCH};

    fn callout(config: &str, client: &[(&str, &str)], body: &[u8]) -> Callout {
        let c = compile_with(config, offline()).unwrap();
        let route = c.routes.lookup(None).unwrap();
        let request = ClientRequest {
            headers: faas_core::headers::owned(client),
            peer_address: Some("10.1.2.3:4".into()),
            protocol: None,
            body: body.to_vec(),
        };
        let mut call = forward(&route.common, &request);
        let Mode::Url(mode) = &route.mode else {
            panic!("url mode")
        };
        let credentials = match mode.iam.as_ref().map(|i| &i.credentials) {
            Some(CredentialSource::Static(c)) => Some(c),
            None => None,
            Some(CredentialSource::Platform(_)) => panic!("static keys expected"),
        };
        authorize(
            mode,
            credentials,
            &mut call,
            UNIX_EPOCH + Duration::from_secs(1_440_938_160),
        );
        call
    }

    const IAM: &str = r#"{"function_uri": "https://abc.lambda-url.us-east-1.on.aws/fn?x=1", "strip_prefix": "/", "authorization": {"apikey": "cfg-key", "iam": {"accesskey": "AKIDEXAMPLE", "secretkey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session_token": "TOKEN", "content_sha256": true}}}"#;

    #[test]
    fn signs_only_headers_the_filter_controls_and_drops_client_aws_headers() {
        let call = callout(
            IAM,
            &[
                (":method", "POST"),
                (":path", "/p?b=2"),
                (":authority", "gw"),
                ("content-type", "application/json"),
                ("authorization", "Bearer client"),
                ("x-amz-date", "19990101T000000Z"),
                ("x-amzn-trace-id", "Root=1"),
                ("x-amzn-vpce-id", "vpce-1"),
                ("user-agent", "curl"),
                ("x-api-key", "client-key"),
            ],
            b"{}",
        );
        let names: Vec<&str> = call.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            !names.contains(&"x-amzn-trace-id") && !names.contains(&"x-amzn-vpce-id"),
            "{names:?}"
        );
        assert_eq!(
            call.headers
                .iter()
                .filter(|(n, _)| n == "authorization")
                .count(),
            1
        );
        assert_eq!(call.header("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(call.header("x-amz-security-token"), Some("TOKEN"));
        assert_eq!(
            call.header("x-amz-content-sha256"),
            Some(hex_sha256(b"{}").as_str())
        );
        assert_eq!(
            call.header("x-api-key"),
            Some("client-key"),
            "the client's key wins"
        );
        let auth = call.header("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-api-key, Signature="), "{auth}");
        assert_eq!(call.header(":path"), Some("/fn/p?x=1&b=2"));
    }

    #[test]
    fn strip_client_apikey_makes_the_configured_key_the_only_one() {
        let config = r#"{"function_uri": "https://a.execute-api.us-east-1.amazonaws.com/prod",
            "strip_client_apikey": true, "authorization": {"apikey": "cfg-key"}}"#;
        let call = callout(
            config,
            &[
                (":method", "GET"),
                (":path", "/"),
                ("x-api-key", "client-key"),
            ],
            b"",
        );
        let keys: Vec<&str> = call
            .headers
            .iter()
            .filter(|(n, _)| n == "x-api-key")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(keys, vec!["cfg-key"]);
        // Without a configured key, the client's is still removed.
        let call = callout(
            r#"{"function_uri": "https://a.execute-api.us-east-1.amazonaws.com/prod", "strip_client_apikey": true}"#,
            &[
                (":method", "GET"),
                (":path", "/"),
                ("x-api-key", "client-key"),
            ],
            b"",
        );
        assert_eq!(call.header("x-api-key"), None);
    }

    #[test]
    fn apikey_only_adds_the_key_and_leaves_the_client_authorization() {
        let call = callout(
            r#"{"function_uri": "https://a.execute-api.us-east-1.amazonaws.com/prod", "authorization": {"apikey": "cfg-key"}}"#,
            &[
                (":method", "GET"),
                (":path", "/"),
                ("authorization", "Bearer jwt"),
                ("x-amzn-foo", "1"),
            ],
            b"",
        );
        assert_eq!(call.header("x-api-key"), Some("cfg-key"));
        assert_eq!(call.header("authorization"), Some("Bearer jwt"));
        assert!(call.header("x-amz-date").is_none());
    }

    #[test]
    fn a_signature_changes_with_every_signed_input() {
        let base = callout(
            IAM,
            &[
                (":method", "POST"),
                (":path", "/p"),
                ("content-type", "a/b"),
            ],
            b"body",
        );
        let sig = |c: &Callout| c.header("authorization").unwrap().to_string();
        for (client, body) in [
            (
                vec![(":method", "PUT"), (":path", "/p"), ("content-type", "a/b")],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/q"),
                    ("content-type", "a/b"),
                ],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/p?z=1"),
                    ("content-type", "a/b"),
                ],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/p"),
                    ("content-type", "a/c"),
                ],
                &b"body"[..],
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/p"),
                    ("content-type", "a/b"),
                ],
                &b"bodY"[..],
            ),
        ] {
            assert_ne!(sig(&callout(IAM, &client, body)), sig(&base), "{client:?}");
        }
        // Headers the filter does not control are not signed.
        let other = callout(
            IAM,
            &[
                (":method", "POST"),
                (":path", "/p"),
                ("content-type", "a/b"),
                ("x-custom", "1"),
            ],
            b"body",
        );
        assert_eq!(sig(&other), sig(&base));
    }
}
