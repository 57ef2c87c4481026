//! `application/vnd.amazon.eventstream`, the framing of Lambda's
//! `InvokeWithResponseStream` answers (issue 29; `lambda-streaming.md` §2),
//! decoded incrementally: bytes arrive in whatever pieces Envoy's body
//! callbacks hand over, a message may span pieces and a piece may hold
//! several messages. Plain Rust over plain bytes; [`crate::response_stream`]
//! uses it.
//!
//! A message (all integers big-endian): total length (u32, the whole
//! message), headers length (u32), prelude CRC (u32, over the first 8
//! bytes), the headers, the payload, and the message CRC (u32, over
//! everything before it). CRC-32 is IEEE's (zlib's), not CRC32C.

/// The largest message accepted: the eventstream limits (payload ≤ 24 MiB,
/// headers ≤ 128 KiB) plus the 16 bytes of prelude and CRC. A length above
/// it is refused before any of it is buffered.
pub const MAX_MESSAGE: usize = 25_165_824 + 131_072 + 16;
/// The most header bytes a message may carry.
pub const MAX_HEADERS: usize = 131_072;
/// Prelude (12) plus message CRC (4): the smallest valid message.
const OVERHEAD: usize = 16;

/// Why the stream cannot be decoded any further. Each is final: a decoder
/// that returned one has nothing more to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The prelude's CRC does not match its first 8 bytes.
    PreludeCrc,
    /// The message CRC does not match the message.
    MessageCrc,
    /// A total length below 16 or above [`MAX_MESSAGE`], or headers that
    /// do not fit in it or exceed [`MAX_HEADERS`].
    BadLength { total: u32, headers: u32 },
    /// A header that cannot be read (its name, type or value), or a name
    /// given twice.
    BadHeader(&'static str),
    /// The stream ended inside a message (`buffered` bytes of it).
    Truncated { buffered: usize },
}

/// A header's value, by the eventstream's type tags 0–9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// What a message means for the client's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// `PayloadChunk`: the function's bytes, to pass on.
    Chunk(Vec<u8>),
    /// `InvokeComplete`: the stream's end; `error` is the function's
    /// `ErrorCode` when it failed (its `ErrorDetails` stay in the log).
    Complete {
        error: Option<String>,
        details: Option<String>,
    },
    /// An `exception` or `error` message: Lambda failed the invocation;
    /// the type or code names it.
    Failed(String),
    /// An event type this decoder does not know: skipped, as botocore does.
    Other,
}

/// Classifies a message by its `:message-type` and `:event-type`.
pub fn event_of(message: Message) -> StreamEvent {
    match message.header(":message-type") {
        Some("exception") => {
            let kind = message.header(":exception-type").unwrap_or("exception");
            StreamEvent::Failed(kind.to_string())
        }
        Some("error") => {
            let code = message.header(":error-code").unwrap_or("error");
            StreamEvent::Failed(code.to_string())
        }
        _ => match message.header(":event-type") {
            Some("PayloadChunk") => StreamEvent::Chunk(message.payload),
            Some("InvokeComplete") => {
                let fields: serde_json::Value =
                    serde_json::from_slice(&message.payload).unwrap_or_default();
                let text = |name: &str| {
                    fields
                        .get(name)
                        .and_then(|v| v.as_str())
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                StreamEvent::Complete {
                    error: text("ErrorCode"),
                    details: text("ErrorDetails"),
                }
            }
            _ => StreamEvent::Other,
        },
    }
}

/// Decodes a stream fed in pieces. It keeps at most one message's bytes.
#[derive(Debug, Default)]
pub struct Decoder {
    buffered: Vec<u8>,
    failed: bool,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Takes the next piece of the stream and returns the messages it
    /// completes, in order. After an error the decoder stays failed.
    pub fn feed(&mut self, piece: &[u8]) -> Result<Vec<Message>, FrameError> {
        if self.failed {
            return Err(FrameError::BadHeader("the stream already failed"));
        }
        if self.buffered.is_empty() {
            // The common case: the piece starts a message. Whole messages
            // are read from it in place; only a partial one is copied.
            let mut messages = Vec::new();
            let used = self.take_messages(piece, &mut messages)?;
            self.buffered
                .extend_from_slice(piece.get(used..).unwrap_or_default());
            return Ok(messages);
        }
        self.buffered.extend_from_slice(piece);
        let mut messages = Vec::new();
        let buffered = std::mem::take(&mut self.buffered);
        let used = self.take_messages(&buffered, &mut messages)?;
        self.buffered = buffered;
        self.buffered.drain(..used);
        Ok(messages)
    }

    /// Reads the whole messages at the start of `bytes` into `messages`;
    /// the bytes they used.
    fn take_messages(
        &mut self,
        bytes: &[u8],
        messages: &mut Vec<Message>,
    ) -> Result<usize, FrameError> {
        let mut start = 0;
        loop {
            let rest = bytes.get(start..).unwrap_or_default();
            match next_message(rest) {
                Ok(Some((message, used))) => {
                    messages.push(message);
                    start += used;
                }
                Ok(None) => return Ok(start),
                Err(e) => {
                    self.failed = true;
                    self.buffered.clear();
                    return Err(e);
                }
            }
        }
    }

    /// Bytes held for a message not yet complete (at most one message).
    pub fn pending(&self) -> usize {
        self.buffered.len()
    }

    /// The stream ended: an error when it ended inside a message.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buffered.len() {
            0 => Ok(()),
            buffered => Err(FrameError::Truncated { buffered }),
        }
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// The first whole message of `bytes` and the bytes it used; `None` when
/// `bytes` holds only part of it. Lengths are checked as soon as the
/// prelude is in, so a huge length is refused before it is buffered.
fn next_message(bytes: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
    let (Some(total), Some(headers_len), Some(prelude_crc)) =
        (be_u32(bytes, 0), be_u32(bytes, 4), be_u32(bytes, 8))
    else {
        return Ok(None);
    };
    if crc32(bytes.get(..8).unwrap_or_default()) != prelude_crc {
        return Err(FrameError::PreludeCrc);
    }
    let (t, h) = (total as usize, headers_len as usize);
    if !(OVERHEAD..=MAX_MESSAGE).contains(&t) || h > MAX_HEADERS || h > t - OVERHEAD {
        return Err(FrameError::BadLength {
            total,
            headers: headers_len,
        });
    }
    let Some(message) = bytes.get(..t) else {
        return Ok(None);
    };
    let (body, crc) = message.split_at(t - 4);
    if be_u32(crc, 0) != Some(crc32(body)) {
        return Err(FrameError::MessageCrc);
    }
    let headers = parse_headers(body.get(12..12 + h).unwrap_or_default())?;
    let payload = body.get(12 + h..).unwrap_or_default().to_vec();
    Ok(Some((Message { headers, payload }, t)))
}

/// Reads `n` bytes at `*at`, advancing it.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], FrameError> {
    let out = bytes
        .get(*at..*at + n)
        .ok_or(FrameError::BadHeader("a header runs past the headers"))?;
    *at += n;
    Ok(out)
}

fn fixed<const N: usize>(bytes: &[u8], at: &mut usize) -> Result<[u8; N], FrameError> {
    take(bytes, at, N)?
        .try_into()
        .map_err(|_| FrameError::BadHeader("a header runs past the headers"))
}

fn parse_headers(bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut headers: Vec<(String, HeaderValue)> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let [name_len] = fixed::<1>(bytes, &mut at)?;
        if name_len == 0 {
            return Err(FrameError::BadHeader("an empty header name"));
        }
        let name = std::str::from_utf8(take(bytes, &mut at, usize::from(name_len))?)
            .map_err(|_| FrameError::BadHeader("a header name that is not UTF-8"))?
            .to_string();
        let [kind] = fixed::<1>(bytes, &mut at)?;
        let value =
            match kind {
                0 => HeaderValue::Bool(true),
                1 => HeaderValue::Bool(false),
                2 => HeaderValue::Byte(i8::from_be_bytes(fixed::<1>(bytes, &mut at)?)),
                3 => HeaderValue::Short(i16::from_be_bytes(fixed::<2>(bytes, &mut at)?)),
                4 => HeaderValue::Int(i32::from_be_bytes(fixed::<4>(bytes, &mut at)?)),
                5 => HeaderValue::Long(i64::from_be_bytes(fixed::<8>(bytes, &mut at)?)),
                6 | 7 => {
                    let len = u16::from_be_bytes(fixed::<2>(bytes, &mut at)?);
                    let raw = take(bytes, &mut at, usize::from(len))?.to_vec();
                    if kind == 6 {
                        HeaderValue::Bytes(raw)
                    } else {
                        HeaderValue::String(String::from_utf8(raw).map_err(|_| {
                            FrameError::BadHeader("a string header that is not UTF-8")
                        })?)
                    }
                }
                8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed::<8>(bytes, &mut at)?)),
                9 => HeaderValue::Uuid(fixed::<16>(bytes, &mut at)?),
                _ => return Err(FrameError::BadHeader("an unknown header type")),
            };
        if headers.iter().any(|(n, _)| *n == name) {
            return Err(FrameError::BadHeader("a header given twice"));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib computes
/// it, eight bytes a step ("slicing-by-8"): every streamed byte goes through
/// it, and byte at a time it was the decoder's main cost.
pub fn crc32(bytes: &[u8]) -> u32 {
    let [t0, t1, t2, t3, t4, t5, t6, t7] = tables();
    let mut crc = !0u32;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let lo = (word as u32) ^ crc;
        let hi = (word >> 32) as u32;
        crc = at(t7, lo)
            ^ at(t6, lo >> 8)
            ^ at(t5, lo >> 16)
            ^ at(t4, lo >> 24)
            ^ at(t3, hi)
            ^ at(t2, hi >> 8)
            ^ at(t1, hi >> 16)
            ^ at(t0, hi >> 24);
    }
    for &b in words.remainder() {
        crc = at(t0, crc ^ u32::from(b)) ^ (crc >> 8);
    }
    !crc
}

/// `table[i & 0xff]`: the mask keeps it in bounds, so no check is made.
fn at(table: &[u32; 256], i: u32) -> u32 {
    table.get((i & 0xff) as usize).copied().unwrap_or(0)
}

type Tables = [[u32; 256]; 8];

/// The eight tables, built on first use: 8 KiB of memory rather than of
/// module (the module has a size budget).
fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Box<Tables>> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        // Row 0: the byte-at-a-time table; row k: a byte followed by k
        // zero bytes.
        let mut first = [0u32; 256];
        for (i, slot) in (0u32..).zip(first.iter_mut()) {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        let mut t = Box::new([first; 8]);
        let mut previous = first;
        for row in t.iter_mut().skip(1) {
            for (slot, p) in row.iter_mut().zip(previous) {
                *slot = (p >> 8) ^ at(&first, p);
            }
            previous = *row;
        }
        t
    })
}

/// Encodes a message (string headers only): what the tests, the fuzz
/// target and the emulator need to produce streams.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        header_bytes.push(name.len() as u8);
        header_bytes.extend_from_slice(name.as_bytes());
        header_bytes.push(7);
        header_bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        header_bytes.extend_from_slice(value.as_bytes());
    }
    let total = (OVERHEAD + header_bytes.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(payload: &[u8]) -> Vec<u8> {
        encode(
            &[
                (":event-type", "PayloadChunk"),
                (":content-type", "application/octet-stream"),
                (":message-type", "event"),
            ],
            payload,
        )
    }

    fn complete(json: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", "InvokeComplete"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            json.as_bytes(),
        )
    }

    fn events(stream: &[u8], piece: usize) -> Result<Vec<StreamEvent>, FrameError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for p in stream.chunks(piece.max(1)) {
            out.extend(d.feed(p)?.into_iter().map(event_of));
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn crc32_is_zlibs() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn an_empty_message_is_the_documented_16_bytes() {
        // total 16, headers 0, prelude CRC of 00000010 00000000.
        let m = encode(&[], b"");
        assert_eq!(m.len(), 16);
        assert_eq!(&m[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(&m[8..12], &0x05c2_48ebu32.to_be_bytes());
        assert_eq!(&m[12..16], &0x7d98_c8ffu32.to_be_bytes());
        let mut d = Decoder::new();
        let got = d.feed(&m).expect("decodes");
        assert_eq!(
            got,
            vec![Message {
                headers: vec![],
                payload: vec![]
            }]
        );
    }

    #[test]
    fn messages_split_anywhere_or_packed_together_decode_the_same() {
        let mut stream = chunk(b"Hello ");
        stream.extend(chunk(b"world"));
        stream.extend(complete("{}"));
        let expected = vec![
            StreamEvent::Chunk(b"Hello ".to_vec()),
            StreamEvent::Chunk(b"world".to_vec()),
            StreamEvent::Complete {
                error: None,
                details: None,
            },
        ];
        for piece in [1, 2, 3, 7, 13, 64, stream.len()] {
            assert_eq!(
                events(&stream, piece),
                Ok(expected.clone()),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_function_error_arrives_in_invoke_complete() {
        let stream = complete(r#"{"ErrorCode":"Unhandled","ErrorDetails":"boom","LogResult":""}"#);
        assert_eq!(
            events(&stream, 5),
            Ok(vec![StreamEvent::Complete {
                error: Some("Unhandled".into()),
                details: Some("boom".into())
            }])
        );
    }

    #[test]
    fn exceptions_and_errors_name_their_type() {
        let e = encode(
            &[
                (":message-type", "exception"),
                (":exception-type", "ServiceException"),
            ],
            br#"{"message":"x"}"#,
        );
        assert_eq!(
            events(&e, 4),
            Ok(vec![StreamEvent::Failed("ServiceException".into())])
        );
        let e = encode(
            &[
                (":message-type", "error"),
                (":error-code", "Throttled"),
                (":error-message", "m"),
            ],
            b"",
        );
        assert_eq!(
            events(&e, 4),
            Ok(vec![StreamEvent::Failed("Throttled".into())])
        );
        let other = encode(
            &[(":event-type", "Something"), (":message-type", "event")],
            b"x",
        );
        assert_eq!(events(&other, 4), Ok(vec![StreamEvent::Other]));
    }

    #[test]
    fn corruption_is_refused_and_final() {
        let good = chunk(b"payload");
        let mut bad_prelude = good.clone();
        bad_prelude[9] ^= 1;
        assert_eq!(events(&bad_prelude, 3), Err(FrameError::PreludeCrc));
        let mut bad_body = good.clone();
        let last = bad_body.len() - 6;
        bad_body[last] ^= 0x40;
        assert_eq!(events(&bad_body, 3), Err(FrameError::MessageCrc));
        // After an error nothing more comes out.
        let mut d = Decoder::new();
        assert!(d.feed(&bad_body).is_err());
        assert!(d.feed(&good).is_err());
    }

    #[test]
    fn huge_lengths_are_refused_from_the_prelude_alone() {
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&u32::MAX.to_be_bytes());
        prelude.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());
        let mut d = Decoder::new();
        assert_eq!(
            d.feed(&prelude),
            Err(FrameError::BadLength {
                total: u32::MAX,
                headers: 0
            })
        );
        // Headers longer than the message.
        let mut p = Vec::new();
        p.extend_from_slice(&20u32.to_be_bytes());
        p.extend_from_slice(&8u32.to_be_bytes());
        let crc = crc32(&p);
        p.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            Decoder::new().feed(&p),
            Err(FrameError::BadLength { .. })
        ));
    }

    #[test]
    fn a_stream_that_ends_mid_message_is_truncated() {
        let m = chunk(b"abc");
        let mut d = Decoder::new();
        assert_eq!(d.feed(&m[..m.len() - 1]), Ok(vec![]));
        assert_eq!(
            d.finish(),
            Err(FrameError::Truncated {
                buffered: m.len() - 1
            })
        );
    }

    #[test]
    fn every_header_type_reads_and_duplicates_are_refused() {
        let mut h = Vec::new();
        let mut add = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        add("t", 0, &[]);
        add("f", 1, &[]);
        add("b", 2, &[0xff]);
        add("s", 3, &[0, 2]);
        add("i", 4, &[0, 0, 0, 3]);
        add("l", 5, &[0, 0, 0, 0, 0, 0, 0, 4]);
        add("y", 6, &[0, 2, 9, 9]);
        add("z", 7, &[0, 1, b'q']);
        add("m", 8, &[0, 0, 0, 0, 0, 0, 0, 5]);
        add("u", 9, &[7; 16]);
        let parsed = parse_headers(&h).expect("headers");
        assert_eq!(parsed.len(), 10);
        assert_eq!(parsed[2].1, HeaderValue::Byte(-1));
        assert_eq!(parsed[7].1, HeaderValue::String("q".into()));
        assert_eq!(parsed[9].1, HeaderValue::Uuid([7; 16]));
        let mut twice = h.clone();
        twice.extend_from_slice(&[1, b't', 0]);
        assert_eq!(
            parse_headers(&twice),
            Err(FrameError::BadHeader("a header given twice"))
        );
        assert_eq!(
            parse_headers(&[1, b'x', 42]),
            Err(FrameError::BadHeader("an unknown header type"))
        );
        assert!(
            parse_headers(&[1, b'x', 7, 0, 9, b'a']).is_err(),
            "string past the end"
        );
    }
}
