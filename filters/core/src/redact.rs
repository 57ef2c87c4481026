//! What an upstream said, made fit for a log line (plain data).
//!
//! Upstreams quote what they were sent: AWS's `SignatureDoesNotMatch`
//! message carries the canonical request, `x-amz-security-token` included.
//! Such text never reaches a client (errors carry our code and at most the
//! upstream's error type, see [`error_type`]); a log may carry it, on one
//! line, with every secret the filter knows taken out:
//! - the values it sent in credential headers ([`credential_values`], kept
//!   per request: a clone of one or two values), and the parts of an
//!   `Authorization` value (a bearer token, a SigV4 signature), split out
//!   only when a line is written ([`expand`]);
//! - anything that follows a credential's name (`x-amz-security-token:`,
//!   `Signature=`, `Bearer `, ...), whether or not the filter sent it.

/// Header names whose values are credentials (lower case).
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-amz-security-token",
    "x-functions-key",
    "x-api-key",
    "x-identity-header",
    "x-ms-token-aad-access-token",
    "x-serverless-authorization",
    "x-forwarded-authorization",
    "cookie",
];

/// Text after which a credential follows, up to a delimiter (lower case).
/// An `Authorization` header's value runs to the end of its line (a
/// scheme, then the credential; SigV4's has commas and spaces).
const WHOLE_LINE_MARKERS: &[&str] = &["authorization:"];
const CREDENTIAL_MARKERS: &[&str] = &[
    "x-amz-security-token:",
    "x-amz-security-token=",
    "x-amz-signature=",
    "signature=",
    "credential=",
    "authorization:",
    "bearer ",
    "basic ",
    "x-functions-key:",
    "x-api-key:",
    "x-identity-header:",
    "client_assertion=",
    "access_token",
    "secretaccesskey",
    "sessiontoken",
    "code=",
];

/// Shown instead of a secret.
pub const REDACTED: &str = "[redacted]";
/// Longest upstream text a log line carries (characters).
pub const MAX_LOGGED: usize = 512;
/// Shortest value treated as a secret when it is found verbatim (shorter
/// ones would blank out ordinary words).
const MIN_SECRET: usize = 8;

/// The credential header values of a request the filter sent (what a
/// stream keeps, in case an error's log line must leave them out).
pub fn credential_values(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| CREDENTIAL_HEADERS.contains(&name.as_str()))
        .map(|(_, value)| value.clone())
        .collect()
}

/// Every secret in `sent` ([`credential_values`]): each value, and the
/// token or signature inside it, longest first.
pub fn expand(sent: &[String]) -> Vec<String> {
    // Longest first, so a secret's part never leaves the rest of it
    // behind; each once. A binary-search insert rather than a sort: a
    // handful of values, and no second sort routine in the module.
    let mut out: Vec<String> = Vec::new();
    for value in sent {
        let parts = value.split([' ', ',', '=']).map(str::trim);
        for part in std::iter::once(value.as_str()).chain(parts) {
            if part.len() < MIN_SECRET {
                continue;
            }
            let order = |s: &String| part.len().cmp(&s.len()).then_with(|| s.as_str().cmp(part));
            if let Err(at) = out.binary_search_by(order) {
                out.insert(at, part.to_string());
            }
        }
    }
    out
}

/// Replaces every occurrence of each secret (compared byte for byte).
fn remove_known(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET) {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
    }
    text
}

/// Ends a credential value that follows a marker.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '&' | '"' | '\'' | ';' | '<' | '>' | '\\')
}

/// Ends a whole-line credential value.
fn ends_line(c: char) -> bool {
    matches!(c, '\r' | '\n' | '"' | '\'' | '\\')
}

/// Blanks what follows every credential marker (case-insensitive).
fn remove_marked(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let next = CREDENTIAL_MARKERS
            .iter()
            .filter_map(|m| lower.get(at..)?.find(m).map(|i| (at + i, m.len())))
            .min();
        let Some((start, len)) = next else { break };
        let value_start = start + len;
        out.push_str(text.get(at..value_start).unwrap_or_default());
        let rest = text.get(value_start..).unwrap_or_default();
        // JSON-ish `"key": "value"`: skip the quote, colon and spaces.
        let lead = rest
            .find(|c: char| !matches!(c, '"' | ':' | ' ' | '\'' | '>'))
            .unwrap_or(rest.len());
        let value = rest.get(lead..).unwrap_or_default();
        let marker = lower.get(start..value_start).unwrap_or_default();
        let ends = if WHOLE_LINE_MARKERS.contains(&marker) {
            ends_line
        } else {
            ends_value
        };
        let value_len = value.find(ends).unwrap_or(value.len());
        out.push_str(rest.get(..lead).unwrap_or_default());
        if value_len > 0 {
            out.push_str(REDACTED);
        }
        at = value_start + lead + value_len;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

/// One line: CR, LF, tabs and other controls escaped, at most
/// [`MAX_LOGGED`] characters.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LOGGED) + 8);
    for (count, c) in text.chars().enumerate() {
        if count == MAX_LOGGED {
            out.push_str("...");
            break;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let code = c as u32;
                out.push_str("\\x");
                for shift in [4, 0] {
                    let nibble = (code >> shift) & 0xf;
                    out.push(char::from_digit(nibble, 16).unwrap_or('0'));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// What an upstream said, fit for a log line: the credentials in `sent`
/// ([`credential_values`]) and every marked one out, one line.
pub fn for_log(text: &str, sent: &[String]) -> String {
    one_line(&remove_marked(&remove_known(text, &expand(sent))))
}

/// An upstream's error *type* (`SignatureDoesNotMatch`,
/// `TooManyRequestsException`), the only upstream text a client may see:
/// an identifier's characters, at most 64 of them, or nothing.
pub fn error_type(text: &str) -> Option<String> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'#'));
    ok.then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(hs: &[(&str, &str)]) -> Vec<(String, String)> {
        crate::headers::owned(hs)
    }

    const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN//////////wEaCXVzLWVhc3QtMSJH";
    const SIGNATURE: &str = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";

    /// AWS's SignatureDoesNotMatch, as the Invoke API words it.
    fn aws_message() -> String {
        format!(
            "The request signature we calculated does not match the signature you provided.\n\n\
             The Canonical String for this request should have been\n'POST\n/2015-03-31/functions/f/invocations\n\n\
             host:lambda.us-east-1.amazonaws.com\nx-amz-date:20261202T000000Z\nx-amz-security-token:{TOKEN}\n\n\
             host;x-amz-date;x-amz-security-token\nUNSIGNED'"
        )
    }

    #[test]
    fn a_quoted_session_token_and_signature_are_redacted_and_the_line_is_one() {
        let sent = owned(&[
            (":path", "/2015-03-31/functions/f/invocations"),
            ("x-amz-security-token", TOKEN),
            (
                "authorization",
                &format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature={SIGNATURE}"),
            ),
        ]);
        let sent = credential_values(&sent);
        assert_eq!(sent.len(), 2, "the two credential headers, not :path");
        let secrets = expand(&sent);
        assert!(secrets.iter().any(|s| s == TOKEN));
        assert!(secrets.iter().any(|s| s == SIGNATURE));
        let line = for_log(&format!("{} Signature={SIGNATURE}", aws_message()), &sent);
        assert!(!line.contains(TOKEN), "{line}");
        assert!(!line.contains(SIGNATURE), "{line}");
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(line.contains("x-amz-security-token:[redacted]"), "{line}");
        assert!(line.contains("\\n"), "{line}");
    }

    #[test]
    fn marked_credentials_are_redacted_even_when_the_filter_did_not_send_them() {
        for (text, kept) in [
            (
                "x-amz-security-token:abc.def/ghi+jkl=",
                "x-amz-security-token:",
            ),
            ("Authorization: Bearer eyJhbGciOi.x.y rest\nnext", "next"),
            ("a bearer eyJhbGciOi.x.y token", "token"),
            ("{\"access_token\": \"eyJ0eXAi.tok\", \"a\":1}", "\"a\":1"),
            ("X-Functions-Key: s3cr3tk3y\r\nnext", "next"),
            ("GET /f?code=funckey&x=1", "x=1"),
        ] {
            let line = for_log(text, &[]);
            assert!(line.contains(REDACTED), "{text} -> {line}");
            assert!(line.contains(kept), "{text} -> {line}");
            for secret in ["abc.def", "eyJhbGciOi", "eyJ0eXAi", "s3cr3tk3y", "funckey"] {
                assert!(!line.contains(secret), "{text} -> {line}");
            }
        }
    }

    #[test]
    fn ordinary_text_is_kept_and_long_text_cut() {
        assert_eq!(
            for_log("Rate exceeded for function f", &[]),
            "Rate exceeded for function f"
        );
        let long = "a".repeat(2000);
        assert_eq!(for_log(&long, &[]).len(), MAX_LOGGED + 3);
        assert_eq!(for_log("a\u{0}b\u{7f}", &[]), "a\\x00b\\x7f");
        // Short values are not secrets: they would blank ordinary words.
        assert!(expand(&credential_values(&owned(&[("x-api-key", "k")]))).is_empty());
    }

    #[test]
    fn error_types_are_identifiers_or_nothing() {
        assert_eq!(
            error_type("SignatureDoesNotMatch").as_deref(),
            Some("SignatureDoesNotMatch")
        );
        assert_eq!(
            error_type("com.amazon.coral.service#UnrecognizedClientException").as_deref(),
            Some("com.amazon.coral.service#UnrecognizedClientException")
        );
        assert_eq!(error_type("x-amz-security-token:abc def"), None);
        assert_eq!(error_type(&"A".repeat(65)), None);
        assert_eq!(error_type(""), None);
    }
}
