//! `invoke_mode: RESPONSE_STREAM` in Invoke API mode: Lambda's
//! `InvokeWithResponseStream` answer (an eventstream, [`crate::eventstream`])
//! becomes the client's response as it arrives (`lambda-streaming.md` §2–3).
//!
//! - At the head: an Invoke API error (any status but 200, or 204 for
//!   `DryRun`) is the same JSON error Invoke mode gives; otherwise the
//!   eventstream framing headers go and the function's content type
//!   (`X-Amzn-Remapped-Content-Type`) comes.
//! - Each `PayloadChunk`'s bytes go to the client as they come. A function
//!   that wrote HTTP metadata (`awslambda.HttpResponseStream.from`) has it
//!   stripped from the first bytes ([`crate::stream_prelude`]) and applied
//!   as status, headers and cookies when the head may still change.
//! - `InvokeComplete` with an `ErrorCode`, an exception message, a bad CRC,
//!   a message over the limits or an answer that ends mid-message or
//!   without `InvokeComplete` fail the stream: a JSON 502 before the first
//!   byte, a reset after it. The function's text goes only to the log.
//!
//! [`buffered`] runs the same rewrite over a whole answer: the callout
//! path's mapping (a deployment whose layout cannot stream).

use crate::eventstream::{event_of, Decoder, FrameError, StreamEvent};
use crate::invoke_response::{self, ResponseSettings};
use crate::stream_prelude::{Metadata, Prelude, PreludeReader};
use faas_core::headers::{self, HeaderList};
use faas_core::outcome::Failure;
use faas_core::redact;
use faas_core::rewrite::{Head, Piece, ResponseRewrite, Start};
use faas_core::{CalloutResponse, ErrorReply, LocalReply};

/// The content type of a stream that begins with HTTP metadata.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// The content type the client gets when the function names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// One streamed answer's decoding state.
pub struct LambdaStream {
    settings: ResponseSettings,
    decoder: Decoder,
    /// Reading the function's HTTP metadata, before its body.
    prelude: Option<PreludeReader>,
    /// Whether the metadata's status and headers can still be applied
    /// (the head is held); without, it is stripped and dropped.
    apply_prelude: bool,
    /// `InvokeComplete` arrived (nothing may follow it).
    complete: bool,
    /// The answer is not an eventstream (`DryRun`'s 204): passed as is.
    passthrough: bool,
}

impl LambdaStream {
    pub fn new(settings: &ResponseSettings) -> LambdaStream {
        LambdaStream {
            settings: settings.clone(),
            decoder: Decoder::new(),
            prelude: None,
            apply_prelude: false,
            complete: false,
            passthrough: false,
        }
    }

    /// The Invoke API's headers the client does not get (unless
    /// `forward_invoke_headers`; the log tail only with `log_type: Tail`).
    fn hidden(&self, name: &str) -> bool {
        match name {
            "content-length" | "content-type" | "x-amzn-remapped-content-type" => true,
            "x-amz-log-result" => !self.settings.log_tail,
            n if n.starts_with("x-amzn-") || n.starts_with("x-amz-") => {
                !self.settings.forward_invoke_headers
            }
            _ => false,
        }
    }

    /// Takes one decoded event; `out` collects the client's bytes.
    fn take(&mut self, event: StreamEvent, piece: &mut Piece) -> Result<(), ErrorReply> {
        match event {
            StreamEvent::Chunk(_) | StreamEvent::Complete { .. } if self.complete => Err(invalid(
                "the stream went on after InvokeComplete".to_string(),
            )),
            StreamEvent::Chunk(bytes) => self.payload(bytes, piece),
            StreamEvent::Complete { error: None, .. } => {
                self.complete = true;
                Ok(())
            }
            StreamEvent::Complete {
                error: Some(code),
                details,
            } => Err(stream_function_error(
                &code,
                details,
                self.settings.unhandled_status,
            )),
            StreamEvent::Failed(kind) => {
                let kind = redact::error_type(&kind).unwrap_or_else(|| "Unknown".into());
                Err(ErrorReply::new(
                    Failure::FunctionError,
                    format!("the function failed while streaming ({kind})"),
                )
                .with("error_type", kind))
            }
            StreamEvent::Other => Ok(()),
        }
    }

    /// A `PayloadChunk`'s bytes: through the metadata reader first, if the
    /// function announced metadata.
    fn payload(&mut self, bytes: Vec<u8>, piece: &mut Piece) -> Result<(), ErrorReply> {
        let Some(reader) = self.prelude.as_mut() else {
            // Moved, not copied, when it is the piece's first chunk.
            if piece.bytes.is_empty() {
                piece.bytes = bytes;
            } else {
                piece.bytes.extend_from_slice(&bytes);
            }
            return Ok(());
        };
        match reader.feed(&bytes) {
            Prelude::NeedMore => Ok(()),
            Prelude::Invalid(why) => Err(invalid(format!("HTTP metadata: {why}"))),
            Prelude::Done { metadata, body } => {
                self.prelude = None;
                if self.apply_prelude {
                    piece.head = Some(head_of(metadata)?);
                }
                piece.bytes.extend_from_slice(&body);
                Ok(())
            }
        }
    }

    fn decode(&mut self, bytes: &[u8], end: bool, piece: &mut Piece) -> Result<(), ErrorReply> {
        for message in self.decoder.feed(bytes).map_err(frame_error)? {
            self.take(event_of(message), piece)?;
        }
        if end {
            self.finish()?;
        }
        Ok(())
    }

    /// The stream ended: it must end between messages, after
    /// `InvokeComplete`, with any metadata read.
    fn finish(&self) -> Result<(), ErrorReply> {
        self.decoder.finish().map_err(frame_error)?;
        if !self.complete {
            return Err(invalid(
                "the stream ended without InvokeComplete".to_string(),
            ));
        }
        if self.prelude.is_some() {
            return Err(invalid(
                "the stream ended inside the HTTP metadata".to_string(),
            ));
        }
        Ok(())
    }
}

impl ResponseRewrite for LambdaStream {
    fn start(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        can_hold: bool,
    ) -> Result<Start, ErrorReply> {
        let refused = || CalloutResponse {
            status,
            headers: headers.to_vec(),
            body: Vec::new(),
        };
        if let Some(kind) = headers::get(headers, "x-amz-function-error") {
            let kind = redact::error_type(kind).unwrap_or_else(|| "Unhandled".into());
            return Err(stream_function_error(
                &kind,
                None,
                self.settings.unhandled_status,
            ));
        }
        let dry_run = status == 204
            && self.settings.invocation_type == invoke_response::InvocationType::DryRun;
        if status != 200 && !dry_run {
            return Err(invoke_response::invoke_api_error(
                &refused(),
                self.settings.preserve_api_status,
            ));
        }
        let remove = headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.hidden(n))
            .map(str::to_string)
            .collect();
        if dry_run {
            self.passthrough = true;
            return Ok(Start::Pass(Head {
                status: None,
                remove,
                add: Vec::new(),
            }));
        }
        let function_type = headers::get(headers, "x-amzn-remapped-content-type");
        let mut head = Head {
            status: None,
            remove,
            add: Vec::new(),
        };
        if function_type == Some(HTTP_INTEGRATION) {
            self.prelude = Some(PreludeReader::new());
            self.apply_prelude = can_hold;
            if can_hold {
                // The metadata names the content type.
                return Ok(Start::Hold(head));
            }
        }
        let content_type = function_type
            .filter(|t| *t != HTTP_INTEGRATION)
            .unwrap_or(DEFAULT_CONTENT_TYPE);
        head.add
            .push(("content-type".into(), content_type.to_string()));
        Ok(if can_hold {
            Start::Hold(head)
        } else {
            Start::Pass(head)
        })
    }

    fn piece(&mut self, bytes: &[u8], end: bool) -> Piece {
        let mut piece = Piece::default();
        if self.passthrough {
            piece.bytes = bytes.to_vec();
            return piece;
        }
        if let Err(error) = self.decode(bytes, end, &mut piece) {
            piece.failure = Some(error);
            piece.bytes.clear();
        }
        piece
    }
}

/// The function's metadata as head changes: its status, its headers
/// (checked, hop-by-hop and framing dropped), `set-cookie` per cookie, and
/// a content type when it names none.
fn head_of(metadata: Metadata) -> Result<Head, ErrorReply> {
    let named = headers::end_to_end(&metadata.headers, |n| {
        matches!(n, "content-length" | "set-cookie")
    });
    let mut add = HeaderList::new();
    for (name, value) in named {
        if !is_token(&name) {
            return Err(invalid("HTTP metadata: an invalid header name".into()));
        }
        if !clean(&value) {
            return Err(invalid(
                "HTTP metadata: a header value with a line break or NUL".into(),
            ));
        }
        add.push((name, value));
    }
    if headers::get(&add, "content-type").is_none() {
        add.push(("content-type".into(), DEFAULT_CONTENT_TYPE.into()));
    }
    for cookie in metadata.cookies {
        if !clean(&cookie) {
            return Err(invalid(
                "HTTP metadata: a cookie with a line break or NUL".into(),
            ));
        }
        add.push(("set-cookie".into(), cookie));
    }
    let remove = add.iter().map(|(n, _)| n.clone()).collect();
    Ok(Head {
        status: metadata.status,
        remove,
        add,
    })
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn clean(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

fn invalid(message: String) -> ErrorReply {
    ErrorReply::new(Failure::InvalidFunctionResponse, message)
}

fn frame_error(e: FrameError) -> ErrorReply {
    let why = match e {
        FrameError::PreludeCrc | FrameError::MessageCrc => "a CRC does not match",
        FrameError::BadLength { .. } => "invalid message lengths",
        FrameError::BadHeader(_) => "an invalid message header",
        FrameError::Truncated { .. } => "it ended inside a message",
    };
    invalid(format!("corrupt event stream: {why}"))
}

/// `InvokeComplete`'s `ErrorCode` (or the head's `X-Amz-Function-Error`):
/// the code's type for the client, `ErrorDetails` for the log only.
fn stream_function_error(code: &str, details: Option<String>, status: Option<u16>) -> ErrorReply {
    let kind = redact::error_type(code).unwrap_or_else(|| "Unhandled".into());
    let mut e = ErrorReply::new(
        Failure::FunctionError,
        format!("the function failed while streaming ({kind})"),
    )
    .with("error_type", kind);
    if let Some(status) = status {
        e = e.with_status(status);
    }
    if let Some(details) = details {
        e = e.with_upstream_text(details);
    }
    e
}

/// The callout path's mapping of a whole `InvokeWithResponseStream`
/// answer: the same rewrite, with the head free to change.
pub fn buffered(r: CalloutResponse, settings: &ResponseSettings) -> Result<LocalReply, ErrorReply> {
    let mut stream = LambdaStream::new(settings);
    let mut headers = r.headers.clone();
    let mut status = r.status;
    let apply = |headers: &mut HeaderList, status: &mut u16, head: Head| {
        if let Some(s) = head.status {
            *status = s;
        }
        headers.retain(|(n, _)| !head.remove.iter().any(|r| r.eq_ignore_ascii_case(n)));
        headers.extend(head.add);
    };
    match stream.start(r.status, &r.headers, true)? {
        Start::Pass(head) | Start::Hold(head) => apply(&mut headers, &mut status, head),
    }
    let piece = stream.piece(&r.body, true);
    if let Some(error) = piece.failure {
        return Err(error);
    }
    if let Some(head) = piece.head {
        apply(&mut headers, &mut status, head);
    }
    Ok(LocalReply {
        status,
        headers,
        body: piece.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::encode;
    use faas_core::headers::owned;

    fn chunk(bytes: &[u8]) -> Vec<u8> {
        encode(
            &[
                (":event-type", "PayloadChunk"),
                (":content-type", "application/octet-stream"),
                (":message-type", "event"),
            ],
            bytes,
        )
    }

    fn complete(payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", "InvokeComplete"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    fn lambda_headers(function_type: &str) -> HeaderList {
        owned(&[
            ("content-type", "application/vnd.amazon.eventstream"),
            ("x-amzn-remapped-content-type", function_type),
            ("x-amzn-requestid", "r-1"),
            ("x-amz-executed-version", "$LATEST"),
            ("content-length", "999"),
        ])
    }

    /// Feeds `stream` in pieces of `size` bytes; the client's bytes, the
    /// heads learnt and the first failure.
    fn run(
        stream: &mut LambdaStream,
        wire: &[u8],
        size: usize,
    ) -> (Vec<u8>, Vec<Head>, Option<ErrorReply>) {
        let (mut out, mut heads) = (Vec::new(), Vec::new());
        let pieces: Vec<&[u8]> = wire.chunks(size).collect();
        for (i, p) in pieces.iter().enumerate() {
            let piece = stream.piece(p, i + 1 == pieces.len());
            if piece.failure.is_some() {
                return (out, heads, piece.failure);
            }
            heads.extend(piece.head);
            out.extend(piece.bytes);
        }
        (out, heads, None)
    }

    #[test]
    fn chunks_pass_in_order_whatever_the_split_and_the_head_loses_the_framing() {
        let mut wire = chunk(b"Hello ");
        wire.extend(chunk(b"streaming "));
        wire.extend(chunk(b"world"));
        wire.extend(complete("{}"));
        for size in [1, 3, 7, 16, 64, wire.len()] {
            let mut s = LambdaStream::new(&ResponseSettings::default());
            let start = s.start(200, &lambda_headers("text/plain"), true).unwrap();
            let Start::Hold(head) = start else {
                panic!("held")
            };
            assert_eq!(head.add, owned(&[("content-type", "text/plain")]));
            for gone in [
                "content-type",
                "x-amzn-remapped-content-type",
                "x-amzn-requestid",
                "content-length",
            ] {
                assert!(head.remove.iter().any(|r| r == gone), "{gone}");
            }
            let (out, heads, failure) = run(&mut s, &wire, size);
            assert_eq!(
                (out.as_slice(), heads.len(), failure),
                (&b"Hello streaming world"[..], 0, None),
                "{size}"
            );
        }
    }

    #[test]
    fn without_holding_the_head_passes_and_the_metadata_is_stripped() {
        let mut s = LambdaStream::new(&ResponseSettings::default());
        let Start::Pass(head) = s
            .start(200, &lambda_headers(HTTP_INTEGRATION), false)
            .unwrap()
        else {
            panic!("passed")
        };
        assert_eq!(head.add, owned(&[("content-type", DEFAULT_CONTENT_TYPE)]));
        let mut wire = chunk(br#"{"statusCode":201,"headers":{"x-a":"1"}}"#);
        wire.extend(chunk(&[0; 8]));
        wire.extend(chunk(b"body"));
        wire.extend(complete("{}"));
        let (out, heads, failure) = run(&mut s, &wire, 5);
        assert_eq!(
            (out.as_slice(), heads.len(), failure),
            (&b"body"[..], 0, None)
        );
    }

    #[test]
    fn held_metadata_becomes_status_headers_and_cookies() {
        let mut s = LambdaStream::new(&ResponseSettings::default());
        let Start::Hold(head) = s
            .start(200, &lambda_headers(HTTP_INTEGRATION), true)
            .unwrap()
        else {
            panic!("held")
        };
        assert!(head.add.is_empty(), "the metadata names the content type");
        // Metadata split inside its delimiter, body bytes in the same chunk.
        let mut wire = chunk(br#"{"statusCode":201,"headers":{"Content-Type":"text/event-stream","Connection":"close","X-A":"1"},"cookies":["a=1","b=2"]}"#);
        wire.extend(chunk(&[0; 3]));
        wire.extend(chunk(b"\0\0\0\0\0data: 1\n\n"));
        wire.extend(complete("{}"));
        let (out, heads, failure) = run(&mut s, &wire, wire.len());
        assert_eq!((out.as_slice(), failure), (&b"data: 1\n\n"[..], None));
        let head = heads.first().unwrap();
        assert_eq!(head.status, Some(201));
        assert_eq!(
            head.add,
            owned(&[
                ("content-type", "text/event-stream"),
                ("x-a", "1"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2")
            ])
        );
        assert!(!head.add.iter().any(|(n, _)| n == "connection"));
    }

    #[test]
    fn function_errors_exceptions_and_corruption_fail_the_stream_without_the_functions_text() {
        let error =
            complete(r#"{"ErrorCode":"Unhandled","ErrorDetails":"secret stack /var/task/x.py"}"#);
        let exception = encode(
            &[
                (":message-type", "exception"),
                (":exception-type", "ServiceException"),
            ],
            br#"{"message":"m"}"#,
        );
        let mut corrupt = chunk(b"abc");
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let cases: Vec<(Vec<u8>, Failure, &str)> = vec![
            (error, Failure::FunctionError, "Unhandled"),
            (exception, Failure::FunctionError, "ServiceException"),
            (corrupt, Failure::InvalidFunctionResponse, "CRC"),
            (
                chunk(b"abc")[..10].to_vec(),
                Failure::InvalidFunctionResponse,
                "inside a message",
            ),
            (
                chunk(b"abc"),
                Failure::InvalidFunctionResponse,
                "without InvokeComplete",
            ),
            (
                [complete("{}"), chunk(b"late")].concat(),
                Failure::InvalidFunctionResponse,
                "after InvokeComplete",
            ),
        ];
        for (wire, failure, says) in cases {
            let mut s = LambdaStream::new(&ResponseSettings::default());
            s.start(200, &lambda_headers("text/plain"), true).unwrap();
            let mut wire_with_first = chunk(b"first ");
            wire_with_first.extend(wire);
            let (out, _, error) = run(&mut s, &wire_with_first, 4);
            let error = error.expect("failed");
            assert_eq!(error.failure, failure, "{says}");
            let rendered = String::from_utf8(error.render("r", None).body).unwrap();
            assert!(
                rendered.contains(says)
                    || error.upstream_text.is_some()
                    || rendered.contains("ServiceException"),
                "{rendered}"
            );
            assert!(!rendered.contains("secret stack"), "{rendered}");
            assert!(out.len() <= 6);
        }
    }

    #[test]
    fn invoke_api_refusals_and_function_errors_at_the_head_are_json_errors() {
        let mut s = LambdaStream::new(&ResponseSettings::default());
        let e = s
            .start(
                404,
                &owned(&[("x-amzn-errortype", "ResourceNotFoundException")]),
                true,
            )
            .unwrap_err();
        assert_eq!((e.failure, e.status), (Failure::InvokeApiFailed, 502));
        let e = s.start(429, &owned(&[]), true).unwrap_err();
        assert_eq!(e.status, 429);
        let e = s
            .start(200, &owned(&[("x-amz-function-error", "Unhandled")]), true)
            .unwrap_err();
        assert_eq!(e.failure, Failure::FunctionError);
    }

    #[test]
    fn the_callout_path_maps_a_whole_stream() {
        let mut wire = chunk(br#"{"statusCode":202,"headers":{"x-b":"2"}}"#);
        wire.extend(chunk(&[0; 8]));
        wire.extend(chunk(b"whole"));
        wire.extend(complete("{}"));
        let reply = buffered(
            CalloutResponse {
                status: 200,
                headers: lambda_headers(HTTP_INTEGRATION),
                body: wire,
            },
            &ResponseSettings::default(),
        )
        .unwrap();
        assert_eq!(reply.status, 202);
        assert_eq!(reply.body, b"whole");
        assert_eq!(headers::get(&reply.headers, "x-b"), Some("2"));
        assert_eq!(
            headers::get(&reply.headers, "content-type"),
            Some(DEFAULT_CONTENT_TYPE)
        );
        assert_eq!(headers::get(&reply.headers, "x-amzn-requestid"), None);
    }
}
