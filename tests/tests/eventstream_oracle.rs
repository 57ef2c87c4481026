//! The eventstream codec of `aws-lambda` (`eventstream.rs`, for Lambda's
//! InvokeWithResponseStream, issue 29) against an independent reader:
//! botocore's `EventStreamBuffer` (from the project's venv) decodes what
//! our encoder writes, CRCs included, and must see exactly the headers and
//! payloads our decoder sees in the same bytes. It also reads the
//! emulator's InvokeWithResponseStream answers, and the filter's rewrite
//! must give exactly the PayloadChunk bytes botocore sees (minus the HTTP
//! metadata), or fail where botocore fails.

use aws_lambda::eventstream::{encode, Decoder, HeaderValue};
use aws_lambda::invoke_response::ResponseSettings;
use aws_lambda::response_stream::buffered;
use faas_core::CalloutResponse;
use faas_emulator::http::{Reply, Request, Step};
use integration_tests::*;
use serde_json::Value;

const BOTOCORE_DECODE: &str = r#"
import base64, json, sys
from botocore.eventstream import EventStreamBuffer
buf = EventStreamBuffer()
buf.add_data(open(sys.argv[1], "rb").read())
out = []
for m in buf:
    out.append({"headers": {k: v for k, v in m.headers.items()},
                "payload": base64.b64encode(m.payload).decode()})
print(json.dumps(out))
"#;

/// botocore's view of a stream: its messages, or the error it raised.
fn botocore(stream: &[u8]) -> Result<Vec<Value>, String> {
    let dir = ScratchDir::new("eventstream");
    let file = dir.0.join("stream.bin");
    std::fs::write(&file, stream).expect("write stream");
    let out = std::process::Command::new(venv_bin("python"))
        .args(["-c", BOTOCORE_DECODE])
        .arg(&file)
        .output()
        .expect("run the venv's python (make moto installs botocore)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("botocore's JSON"))
}

/// A message to encode: its string headers and its payload.
type Spec = (Vec<(&'static str, &'static str)>, Vec<u8>);

#[test]
fn botocore_reads_our_frames_as_our_decoder_does() {
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let messages: Vec<Spec> = vec![
        (
            vec![
                (":event-type", "PayloadChunk"),
                (":content-type", "application/octet-stream"),
                (":message-type", "event"),
            ],
            b"{\"statusCode\":201}\0\0\0\0\0\0\0\0Hello ".to_vec(),
        ),
        (
            vec![(":event-type", "PayloadChunk"), (":message-type", "event")],
            binary,
        ),
        (
            vec![(":event-type", "PayloadChunk"), (":message-type", "event")],
            Vec::new(),
        ),
        (
            vec![
                (":event-type", "InvokeComplete"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            br#"{"ErrorCode":"Unhandled","ErrorDetails":"boom"}"#.to_vec(),
        ),
    ];
    let stream: Vec<u8> = messages.iter().flat_map(|(h, p)| encode(h, p)).collect();
    let theirs = botocore(&stream).unwrap_or_else(|e| panic!("{e}"));

    // Ours, fed in uneven pieces.
    let mut decoder = Decoder::new();
    let mut ours = Vec::new();
    for piece in stream.chunks(977) {
        ours.extend(decoder.feed(piece).expect("our decoder reads it"));
    }
    decoder.finish().expect("nothing left over");

    assert_eq!(theirs.len(), messages.len());
    assert_eq!(ours.len(), messages.len());
    for ((theirs, ours), (headers, payload)) in theirs.iter().zip(&ours).zip(&messages) {
        assert_eq!(
            base64_decode(theirs["payload"].as_str().unwrap_or_default()),
            *payload
        );
        assert_eq!(ours.payload, *payload);
        assert_eq!(ours.headers.len(), headers.len());
        for (name, value) in headers {
            assert_eq!(theirs["headers"][name], *value, "botocore's {name}");
            assert_eq!(ours.header(name), Some(*value), "our {name}");
        }
        assert!(ours
            .headers
            .iter()
            .all(|(_, v)| matches!(v, HeaderValue::String(_))));
    }
}

/// What the emulator's `InvokeWithResponseStream` function `name` writes
/// for `payload`: its head's headers and every byte of its body.
fn emulator_stream(name: &str, payload: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let req = Request {
        method: "POST".into(),
        target: format!("/2021-11-15/functions/{name}/response-streaming-invocations"),
        headers: Vec::new(),
        body: payload.as_bytes().to_vec(),
    };
    let Reply::Stream(s) = faas_emulator::lambda::invoke_streaming(&req, name, "$LATEST") else {
        panic!("{name}: not a stream")
    };
    let mut bytes = Vec::new();
    for step in s.steps {
        match step {
            Step::Write(b) => bytes.extend(b),
            Step::Repeat { bytes: b, times } => (0..times).for_each(|_| bytes.extend(&b)),
            _ => {}
        }
    }
    (s.headers, bytes)
}

#[test]
fn botocore_reads_the_emulators_streams_as_the_filter_does() {
    for (name, payload) in [
        ("stream-chunks", r#"{"chunks": 4}"#),
        ("stream-http", r#"{"chunks": 3}"#),
        ("stream-echo", r#"{"some": "event"}"#),
        ("stream-bytes", r#"{"bytes": 200000, "chunk": 65536}"#),
        ("stream-error-late", "{}"),
        ("stream-bad-crc", "{}"),
        ("stream-truncated", "{}"),
    ] {
        let (headers, stream) = emulator_stream(name, payload);
        let theirs = botocore(&stream);
        let ours = buffered(
            CalloutResponse {
                status: 200,
                headers: headers.clone(),
                body: stream,
            },
            &ResponseSettings::default(),
        );
        match (name, theirs) {
            ("stream-bad-crc", Err(e)) => {
                assert!(e.contains("ChecksumMismatch"), "{e}");
                let e = ours.expect_err("a bad CRC fails the stream");
                assert_eq!((e.status, e.code()), (502, "invalid_function_response"));
            }
            ("stream-bad-crc", Ok(_)) => panic!("botocore took a bad CRC"),
            (_, Err(e)) => panic!("{name}: botocore: {e}"),
            (_, Ok(messages)) => {
                let chunks: Vec<u8> = messages
                    .iter()
                    .filter(|m| m["headers"][":event-type"] == "PayloadChunk")
                    .flat_map(|m| base64_decode(m["payload"].as_str().unwrap_or_default()))
                    .collect();
                let complete = messages
                    .iter()
                    .find(|m| m["headers"][":event-type"] == "InvokeComplete");
                match (name, ours) {
                    ("stream-error-late", Err(e)) => {
                        let details = complete
                            .map(|m| base64_decode(m["payload"].as_str().unwrap_or_default()));
                        let details =
                            String::from_utf8(details.unwrap_or_default()).unwrap_or_default();
                        assert!(details.contains("ErrorCode"), "{details}");
                        assert_eq!(e.code(), "function_error");
                    }
                    ("stream-truncated", Err(e)) => {
                        assert!(complete.is_none(), "botocore saw no InvokeComplete either");
                        assert_eq!(e.code(), "invalid_function_response");
                    }
                    (_, Ok(reply)) => {
                        assert!(complete.is_some(), "{name}");
                        let body = if name == "stream-http" {
                            // The metadata and its 8 NULs are stripped.
                            let at = chunks
                                .windows(8)
                                .position(|w| w == [0; 8])
                                .expect("delimiter");
                            chunks[at + 8..].to_vec()
                        } else {
                            chunks
                        };
                        assert_eq!(reply.body, body, "{name}");
                    }
                    (_, Err(e)) => panic!("{name}: {e:?}"),
                }
            }
        }
    }
}
