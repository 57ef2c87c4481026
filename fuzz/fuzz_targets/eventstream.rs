//! The eventstream decoder (Lambda's InvokeWithResponseStream framing):
//! arbitrary bytes, fed in pieces of a size the input picks, give messages
//! or a final error, never a panic, and the decoder never holds more than
//! one message's worth; the HTTP metadata prelude reader takes the same
//! bytes without panicking. And messages built from the input, encoded and
//! fed in pieces, come back exactly. The filter's stream rewrite
//! (`response_stream`) takes both too: no panic, and a well-formed stream's
//! chunks come out whole.
#![no_main]

use aws_lambda::eventstream::{encode, event_of, Decoder, MAX_MESSAGE};
use aws_lambda::invoke_response::ResponseSettings;
use aws_lambda::response_stream::{LambdaStream, HTTP_INTEGRATION};
use aws_lambda::stream_prelude::{Prelude, PreludeReader};
use faas_core::rewrite::ResponseRewrite;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let piece = 1 + usize::from(first % 64);

    // Arbitrary bytes.
    let mut decoder = Decoder::new();
    for chunk in rest.chunks(piece) {
        match decoder.feed(chunk) {
            Ok(messages) => {
                for m in messages {
                    let _ = event_of(m);
                }
            }
            Err(_) => break,
        }
        assert!(decoder.pending() <= MAX_MESSAGE + piece);
    }
    let _ = decoder.finish();

    // The same bytes through the filter's rewrite, metadata announced.
    let headers = vec![(
        "x-amzn-remapped-content-type".to_string(),
        HTTP_INTEGRATION.to_string(),
    )];
    let mut rewrite = LambdaStream::new(&ResponseSettings::default());
    let _ = rewrite.start(200, &headers, first % 2 == 0);
    let pieces: Vec<&[u8]> = rest.chunks(piece).collect();
    for (i, chunk) in pieces.iter().enumerate() {
        let out = rewrite.piece(chunk, i + 1 == pieces.len());
        assert!(out.bytes.len() <= rest.len());
        if out.failure.is_some() {
            break;
        }
    }

    // The same bytes as a function's HTTP metadata prelude, in pieces.
    let mut prelude = PreludeReader::new();
    for chunk in rest.chunks(piece) {
        if !matches!(prelude.feed(chunk), Prelude::NeedMore) {
            break;
        }
    }

    // Round trip: the input cut into payloads at its 0xff bytes.
    let payloads: Vec<&[u8]> = rest.split(|&b| b == 0xff).collect();
    let stream: Vec<u8> = payloads
        .iter()
        .flat_map(|p| encode(&[(":event-type", "PayloadChunk"), (":message-type", "event")], p))
        .collect();
    let mut decoder = Decoder::new();
    let mut back = Vec::new();
    for chunk in stream.chunks(piece) {
        back.extend(decoder.feed(chunk).expect("our own frames decode"));
    }
    decoder.finish().expect("nothing left over");
    assert_eq!(back.len(), payloads.len());
    for (m, p) in back.iter().zip(&payloads) {
        assert_eq!(m.payload.as_slice(), *p);
    }

    // The rewrite passes a well-formed stream's chunks on whole.
    let mut whole = stream;
    whole.extend(encode(&[(":event-type", "InvokeComplete"), (":message-type", "event")], b"{}"));
    let mut rewrite = LambdaStream::new(&ResponseSettings::default());
    let _ = rewrite.start(200, &[], true);
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = whole.chunks(piece).collect();
    for (i, chunk) in pieces.iter().enumerate() {
        let p = rewrite.piece(chunk, i + 1 == pieces.len());
        assert!(p.failure.is_none(), "a well-formed stream fails: {:?}", p.failure);
        out.extend(p.bytes);
    }
    assert_eq!(out, payloads.concat());
});

