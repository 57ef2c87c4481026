//! A minimal HTTP/1.1 server loop: keep-alive, content-length and chunked
//! request bodies, raw access to the request line and header order.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const MAX_HEAD: usize = 64 * 1024;

/// A request exactly as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The raw request-target (path and query, undecoded).
    pub target: String,
    /// Header names as sent, in order, repeats kept.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// What a handler answers.
pub enum Reply {
    Response(Response),
    /// A chunked answer written step by step (a streaming function).
    Stream(Streamed),
    /// Drop the connection without answering.
    Close,
}

/// A streamed answer: its head, then steps in order.
pub struct Streamed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub steps: Vec<Step>,
}

pub enum Step {
    /// One chunk, flushed at once.
    Write(Vec<u8>),
    /// `total` bytes in chunks of `size` (produced as they go).
    Fill {
        total: usize,
        size: usize,
    },
    /// The same chunk `times` times (a long stream made of one block).
    Repeat {
        bytes: Vec<u8>,
        times: usize,
    },
    Sleep(Duration),
    /// Waits until gate `id` was opened `times` times ([`open_gate`]).
    Gate {
        id: String,
        times: u64,
    },
    /// Drops the connection mid-answer (no final chunk).
    Abort,
}

/// Gates: a test opens one (`POST /_gate/<id>` on the emulator) each time
/// it received a chunk, so a function writes its next chunk only after
/// the client saw the last: streaming is proven without timing.
/// How often each gate was opened, and a signal on every opening.
type Gates = (Mutex<HashMap<String, u64>>, watch::Sender<u64>);

fn gates() -> &'static Gates {
    static GATES: OnceLock<Gates> = OnceLock::new();
    GATES.get_or_init(|| (Mutex::new(HashMap::new()), watch::channel(0).0))
}

/// Opens gate `id` once more.
pub fn open_gate(id: &str) {
    let (counts, changed) = gates();
    if let Ok(mut counts) = counts.lock() {
        *counts.entry(id.to_string()).or_default() += 1;
    }
    changed.send_modify(|v| *v += 1);
}

async fn wait_gate(id: &str, times: u64) {
    let (counts, changed) = gates();
    let mut seen = changed.subscribe();
    loop {
        let opened = counts
            .lock()
            .map(|c| c.get(id).copied().unwrap_or(0))
            .unwrap_or(0);
        if opened >= times || seen.changed().await.is_err() {
            return;
        }
    }
}

async fn write_stream(stream: &mut TcpStream, s: Streamed) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", s.status, reason(s.status));
    for (n, v) in &s.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("transfer-encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;
    async fn chunk(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        stream
            .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
            .await?;
        stream.write_all(bytes).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await
    }
    for step in s.steps {
        match step {
            Step::Write(bytes) => chunk(stream, &bytes).await?,
            Step::Fill { total, size } => {
                let block = vec![b's'; size.max(1)];
                let mut left = total;
                while left > 0 {
                    let n = left.min(block.len());
                    chunk(stream, &block[..n]).await?;
                    left -= n;
                }
            }
            Step::Repeat { bytes, times } => {
                for _ in 0..times {
                    chunk(stream, &bytes).await?;
                }
            }
            Step::Sleep(d) => tokio::time::sleep(d).await,
            Step::Gate { id, times } => wait_gate(&id, times).await,
            Step::Abort => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "aborted mid-stream",
                ))
            }
        }
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.flush().await
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

pub async fn serve(listener: TcpListener, handler: Handler) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let _ = connection(stream, handler).await;
        });
    }
}

async fn connection(mut stream: TcpStream, handler: Handler) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await? else {
            return Ok(());
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match handler(request).await {
            Reply::Close => return Ok(()),
            Reply::Response(r) => stream.write_all(&encode(&r)).await?,
            Reply::Stream(s) => write_stream(&mut stream, s).await?,
        }
        if close {
            return Ok(());
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn encode(r: &Response) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + 256);
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status)).as_bytes());
    for (n, v) in &r.headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    let bodyless = r.status == 204 || r.status == 304 || (100..200).contains(&r.status);
    if !bodyless {
        out.extend_from_slice(format!("content-length: {}\r\n", r.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !bodyless {
        out.extend_from_slice(&r.body);
    }
    out
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// Reads one request; `None` on a clean close between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let (head_len, method, target, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(buf).map_err(|e| bad(&e.to_string()))? {
            httparse::Status::Complete(n) => {
                let headers = req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), h.value.to_vec()))
                    .collect::<Vec<_>>();
                break (
                    n,
                    req.method.unwrap_or("GET").to_string(),
                    req.path.unwrap_or("/").to_string(),
                    headers,
                );
            }
            httparse::Status::Partial => {
                if buf.len() > MAX_HEAD {
                    return Err(bad("request head too large"));
                }
                if !fill(stream, buf).await? {
                    return if buf.is_empty() {
                        Ok(None)
                    } else {
                        Err(bad("truncated request"))
                    };
                }
            }
        }
    };
    buf.drain(..head_len);
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(stream, buf).await?
    } else {
        let len: usize = find("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < len {
            if !fill(stream, buf).await? {
                return Err(bad("truncated body"));
            }
        }
        buf.drain(..len).collect()
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if !fill(stream, buf).await? {
                return Err(bad("truncated chunk"));
            }
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).to_string();
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers until an empty line.
            loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    buf.drain(..i + 2);
                    if i == 0 {
                        return Ok(body);
                    }
                } else if !fill(stream, buf).await? {
                    return Err(bad("truncated trailers"));
                }
            }
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf).await? {
                return Err(bad("truncated chunk data"));
            }
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}
