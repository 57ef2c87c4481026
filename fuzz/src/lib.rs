//! Shared input shapes of the fuzz targets. Inputs are HTTP-like text so
//! that the seed corpora (`fuzz/seeds/<target>/`, taken from the unit
//! tests) stay readable: a start line, `name: value` header lines, a blank
//! line, then the body bytes.

use faas_core::headers::HeaderList;
use faas_core::{CalloutResponse, ClientRequest};

/// A message split leniently: never fails, whatever the bytes.
pub struct Message {
    pub start: String,
    pub headers: HeaderList,
    pub body: Vec<u8>,
}

pub fn message(data: &[u8]) -> Message {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], data[i + 2..].to_vec()),
        None => (data, Vec::new()),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let start = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Message {
        start,
        headers,
        body,
    }
}

/// Whether Envoy's HTTP/1 and HTTP/2 codecs let a header through to a
/// filter: a token name and a value without CR, LF or NUL (RFC 9110 §5.5;
/// Envoy refuses the request otherwise).
fn envoy_accepts(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !value.contains(['\r', '\n', '\0'])
}

/// A client request as Envoy hands it to the filter: `METHOD target` on
/// the start line, then headers and body. Headers Envoy would refuse are
/// dropped: the filter never sees them.
pub fn client_request(data: &[u8]) -> ClientRequest {
    let mut m = message(data);
    m.headers.retain(|(n, v)| envoy_accepts(n, v));
    // Envoy's codecs refuse a request line with control characters; keep
    // what remains.
    m.start.retain(|c| !c.is_control());
    let (method, target) = m.start.split_once(' ').unwrap_or((m.start.as_str(), "/"));
    let authority = m
        .headers
        .iter()
        .find(|(n, _)| n == "host")
        .map_or("gateway.test".to_string(), |(_, v)| v.clone());
    let mut headers = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), target.to_string()),
        (":authority".to_string(), authority),
        (":scheme".to_string(), "http".to_string()),
    ];
    headers.extend(m.headers.into_iter().filter(|(n, _)| n != "host"));
    ClientRequest {
        headers,
        body: m.body,
        peer_address: Some("127.0.0.1:50000".into()),
        protocol: Some("HTTP/1.1".into()),
    }
}

/// A callout's answer: the status on the start line (200 if it is not a
/// number), then headers and body.
pub fn callout_response(data: &[u8]) -> CalloutResponse {
    let m = message(data);
    CalloutResponse {
        status: m.start.trim().parse::<u16>().unwrap_or(200),
        headers: m.headers,
        body: m.body,
    }
}
