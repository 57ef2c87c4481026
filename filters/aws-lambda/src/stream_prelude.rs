//! The HTTP metadata a streaming function writes first
//! (`awslambda.HttpResponseStream.from(stream, {statusCode, headers,
//! cookies})`, content type `application/vnd.awslambda.http-integration-response`):
//! a JSON object, then 8 NUL bytes, then the body (`lambda-streaming.md`
//! §3). Through InvokeWithResponseStream it arrives raw inside the first
//! payload chunks, possibly split across them; the gateway strips it and
//! applies it. Plain Rust; [`crate::response_stream`] uses it.

use serde_json::Value;

/// The delimiter between the metadata and the body.
const DELIMITER: [u8; 8] = [0; 8];
/// The most metadata bytes held while looking for the delimiter.
pub const MAX_PRELUDE: usize = 64 * 1024;

/// The function's HTTP metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    /// Each becomes a `set-cookie` header.
    pub cookies: Vec<String>,
}

/// What a piece of the stream gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prelude {
    /// The delimiter has not come yet: nothing to send.
    NeedMore,
    /// The metadata, and the body bytes that followed it in the same piece.
    Done { metadata: Metadata, body: Vec<u8> },
    /// Not metadata this gateway can apply (the reason, never the bytes).
    Invalid(&'static str),
}

/// Collects the metadata across pieces, up to [`MAX_PRELUDE`] bytes.
#[derive(Debug, Default)]
pub struct PreludeReader {
    buffered: Vec<u8>,
}

impl PreludeReader {
    pub fn new() -> PreludeReader {
        PreludeReader::default()
    }

    /// Takes the next piece of the function's output (before the body).
    pub fn feed(&mut self, piece: &[u8]) -> Prelude {
        self.buffered.extend_from_slice(piece);
        // JSON text has no raw NUL: the first one starts the delimiter.
        let Some(at) = self.buffered.iter().position(|&b| b == 0) else {
            return self.wait();
        };
        let after = self.buffered.get(at..).unwrap_or_default();
        if after.len() < DELIMITER.len() {
            // The rest of the delimiter may follow, if only NULs came so far.
            return if after.iter().all(|&b| b == 0) {
                self.wait()
            } else {
                Prelude::Invalid("the metadata is not followed by 8 NUL bytes")
            };
        }
        if !after.starts_with(&DELIMITER) {
            return Prelude::Invalid("the metadata is not followed by 8 NUL bytes");
        }
        let json = self.buffered.get(..at).unwrap_or_default();
        let body = after.get(DELIMITER.len()..).unwrap_or_default().to_vec();
        match parse(json) {
            Ok(metadata) => Prelude::Done { metadata, body },
            Err(why) => Prelude::Invalid(why),
        }
    }

    fn wait(&self) -> Prelude {
        if self.buffered.len() > MAX_PRELUDE + DELIMITER.len() {
            Prelude::Invalid("the metadata is larger than 64 KiB")
        } else {
            Prelude::NeedMore
        }
    }
}

/// Reads `{statusCode, headers, cookies}`; each is optional, and a wrong
/// type is refused rather than guessed at.
pub fn parse(json: &[u8]) -> Result<Metadata, &'static str> {
    let value: Value = serde_json::from_slice(json).map_err(|_| "the metadata is not JSON")?;
    let object = value
        .as_object()
        .ok_or("the metadata is not a JSON object")?;
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (200..=599).contains(s))
                .ok_or("statusCode is not an HTTP status from 200 to 599")?,
        ),
    };
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = value.as_str().ok_or("a header value is not a string")?;
                headers.push((name.to_ascii_lowercase(), value.to_string()));
            }
        }
        Some(_) => return Err("headers is not an object"),
    }
    let mut cookies = Vec::new();
    match object.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for cookie in list {
                let cookie = cookie.as_str().ok_or("a cookie is not a string")?;
                cookies.push(cookie.to_string());
            }
        }
        Some(_) => return Err("cookies is not an array"),
    }
    Ok(Metadata {
        status,
        headers,
        cookies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRELUDE: &[u8] =
        br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-A":"1"},"cookies":["a=1","b=2"]}"#;

    fn whole() -> Vec<u8> {
        let mut v = PRELUDE.to_vec();
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(b"Hello world");
        v
    }

    fn expected() -> Metadata {
        Metadata {
            status: Some(201),
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("x-a".into(), "1".into()),
            ],
            cookies: vec!["a=1".into(), "b=2".into()],
        }
    }

    #[test]
    fn the_metadata_in_one_piece_with_the_first_body_bytes() {
        // As in Kong's fixture: JSON, 8 NULs and body bytes in one frame.
        assert_eq!(
            PreludeReader::new().feed(&whole()),
            Prelude::Done {
                metadata: expected(),
                body: b"Hello world".to_vec()
            }
        );
    }

    #[test]
    fn the_metadata_split_anywhere_including_inside_the_delimiter() {
        let all = whole();
        for cut in 1..all.len() {
            let mut r = PreludeReader::new();
            let (a, b) = all.split_at(cut);
            match r.feed(a) {
                Prelude::NeedMore => {}
                Prelude::Done { metadata, body } => {
                    // Only once the whole delimiter is in.
                    assert!(cut >= PRELUDE.len() + 8, "cut {cut}");
                    assert_eq!(metadata, expected());
                    assert_eq!([body.as_slice(), b].concat(), b"Hello world");
                    continue;
                }
                other => panic!("cut {cut}: {other:?}"),
            }
            match r.feed(b) {
                Prelude::Done { metadata, body } => {
                    assert_eq!(metadata, expected(), "cut {cut}");
                    assert_eq!(body, b"Hello world", "cut {cut}");
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_metadata_is_refused_with_a_reason() {
        let invalid = |json: &str| {
            let mut v = json.as_bytes().to_vec();
            v.extend_from_slice(&[0; 8]);
            PreludeReader::new().feed(&v)
        };
        assert_eq!(
            invalid("not json"),
            Prelude::Invalid("the metadata is not JSON")
        );
        assert_eq!(
            invalid("[1]"),
            Prelude::Invalid("the metadata is not a JSON object")
        );
        assert!(matches!(
            invalid(r#"{"statusCode":99}"#),
            Prelude::Invalid(_)
        ));
        assert!(matches!(
            invalid(r#"{"statusCode":"200"}"#),
            Prelude::Invalid(_)
        ));
        assert!(matches!(
            invalid(r#"{"headers":{"a":1}}"#),
            Prelude::Invalid(_)
        ));
        assert!(matches!(
            invalid(r#"{"cookies":"a=1"}"#),
            Prelude::Invalid(_)
        ));
        assert_eq!(
            invalid("{}"),
            Prelude::Done {
                metadata: Metadata::default(),
                body: vec![]
            }
        );
        // A NUL not followed by seven more.
        assert!(matches!(
            PreludeReader::new().feed(b"{}\0\0x"),
            Prelude::Invalid(_)
        ));
    }

    #[test]
    fn a_prelude_without_a_delimiter_is_not_held_forever() {
        let mut r = PreludeReader::new();
        let piece = vec![b' '; 16 * 1024];
        let mut last = Prelude::NeedMore;
        for _ in 0..5 {
            last = r.feed(&piece);
        }
        assert_eq!(last, Prelude::Invalid("the metadata is larger than 64 KiB"));
    }
}
