//! The benchmark endpoint: answers every request with [`FIXED_BODY`].
//!
//! It must never be what limits a benchmark, so it does the least an
//! HTTP/1.1 server can: parse the head, read and discard the body
//! (content-length or chunked) through one reusable buffer without keeping
//! it, and write one pre-encoded response. No routing, no verification.

use crate::FIXED_BODY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{FIXED_BODY}",
        FIXED_BODY.len()
    )
    .into_bytes()
}

pub async fn serve(listener: TcpListener) {
    let answer: &'static [u8] = response().leak();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = connection(stream, answer).await;
        });
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

/// What the head says about the body that follows it.
enum Body {
    Length(usize),
    Chunked,
}

fn parse_head(buf: &[u8]) -> std::io::Result<Option<(usize, Body)>> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(head) =
        request.parse(buf).map_err(|e| invalid(&e.to_string()))?
    else {
        return Ok(None);
    };
    let mut body = Body::Length(0);
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| invalid("bad content-length"))?;
            body = Body::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            body = Body::Chunked;
        }
    }
    Ok(Some((head, body)))
}

async fn connection(mut stream: TcpStream, answer: &[u8]) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    loop {
        // Head.
        let (head, body) = loop {
            if let Some(parsed) = parse_head(&buf[..filled])? {
                break parsed;
            }
            if filled == buf.len() {
                return Err(invalid("request head too large"));
            }
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Ok(());
            }
            filled += n;
        };
        buf.copy_within(head..filled, 0);
        filled -= head;
        match body {
            Body::Length(length) => discard(&mut stream, &mut buf, &mut filled, length).await?,
            Body::Chunked => skip_chunked(&mut stream, &mut buf, &mut filled).await?,
        }
        stream.write_all(answer).await?;
    }
}

/// Skips a chunked body and its trailers (rare here: Envoy sends
/// content-length for buffered callouts; kept for completeness).
async fn skip_chunked(
    stream: &mut TcpStream,
    buf: &mut [u8],
    filled: &mut usize,
) -> std::io::Result<()> {
    loop {
        let line_end = loop {
            if let Some(i) = buf[..*filled].windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if *filled == buf.len() {
                return Err(invalid("chunk line too long"));
            }
            let n = stream.read(&mut buf[*filled..]).await?;
            if n == 0 {
                return Err(invalid("truncated chunk"));
            }
            *filled += n;
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).to_string();
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("bad chunk size"))?;
        buf.copy_within(line_end + 2..*filled, 0);
        *filled -= line_end + 2;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                if let Some(i) = buf[..*filled].windows(2).position(|w| w == b"\r\n") {
                    buf.copy_within(i + 2..*filled, 0);
                    *filled -= i + 2;
                    if i == 0 {
                        return Ok(());
                    }
                } else {
                    let n = stream.read(&mut buf[*filled..]).await?;
                    if n == 0 {
                        return Err(invalid("truncated trailers"));
                    }
                    *filled += n;
                }
            }
        }
        discard(stream, buf, filled, size + 2).await?; // data and its CRLF
    }
}

/// Drops the next `count` bytes of the stream: first what `buf` already
/// holds (keeping anything after them), then reads of the rest, in place.
async fn discard(
    stream: &mut TcpStream,
    buf: &mut [u8],
    filled: &mut usize,
    count: usize,
) -> std::io::Result<()> {
    let here = count.min(*filled);
    buf.copy_within(here..*filled, 0);
    *filled -= here;
    let mut remaining = count - here;
    while remaining > 0 {
        let want = remaining.min(buf.len());
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(invalid("truncated body"));
        }
        remaining -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Keep-alive with content-length and chunked bodies, pipelined.
    #[test]
    fn answers_every_request_and_discards_bodies() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { serve(TcpListener::from_std(listener).unwrap()).await });
        });
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        let big = vec![b'x'; 300_000];
        let mut requests = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n".to_vec();
        requests.extend_from_slice(
            format!(
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: {}\r\n\r\n",
                big.len()
            )
            .as_bytes(),
        );
        requests.extend_from_slice(&big);
        requests.extend_from_slice(
            b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n",
        );
        conn.write_all(&requests).unwrap();
        let one = response();
        let mut got = vec![0u8; one.len() * 3];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(got, [one.clone(), one.clone(), one].concat());
    }
}
