//! The eventstream codec of `aws-lambda` (`eventstream.rs`, for Lambda's
//! InvokeWithResponseStream, issue 29) against an independent reader:
//! botocore's `EventStreamBuffer` (from the project's venv) decodes what
//! our encoder writes, CRCs included, and must see exactly the headers and
//! payloads our decoder sees in the same bytes.

use aws_lambda::eventstream::{encode, Decoder, HeaderValue};
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
    let dir = ScratchDir::new("eventstream");
    let file = dir.0.join("stream.bin");
    std::fs::write(&file, &stream).expect("write stream");
    let out = std::process::Command::new(venv_bin("python"))
        .args(["-c", BOTOCORE_DECODE])
        .arg(&file)
        .output()
        .expect("run the venv's python (make moto installs botocore)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("botocore's JSON");

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
