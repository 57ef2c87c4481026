//! From the client's request to the function call (plain data, no host).

use crate::config::CommonConfig;
use crate::headers::{self, HeaderList};
use crate::path;
use std::time::Duration;

/// What the filter knows about the client's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientRequest {
    /// Every header Envoy holds, pseudo headers included, in order.
    pub headers: HeaderList,
    /// The downstream peer, `ip:port` or `[ip6]:port` (Envoy's `source.address`).
    pub peer_address: Option<String>,
    /// The downstream protocol (`HTTP/1.1`, `HTTP/2`, ...; Envoy's `request.protocol`).
    pub protocol: Option<String>,
    pub body: Vec<u8>,
}

impl ClientRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.headers, name)
    }
    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or("GET")
    }
    /// The request-target as sent (`:path`, path plus raw query).
    pub fn target(&self) -> &str {
        self.header(":path").unwrap_or("/")
    }
    pub fn authority(&self) -> &str {
        self.header(":authority")
            .or_else(|| self.header("host"))
            .unwrap_or("")
    }
}

/// An HTTP call to a function's cluster, ready to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub cluster: String,
    /// Pseudo headers first (`:method`, `:path`, `:authority`, `:scheme`).
    pub headers: HeaderList,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl Callout {
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.headers, name)
    }
    pub fn set_header(&mut self, name: &str, value: String) {
        headers::set(&mut self.headers, name, value)
    }
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| n != name)
    }
}

/// Headers never copied from the client to the function:
/// - `host`/`content-length`/`expect`: Envoy sets the host from
///   `:authority` and frames the buffered body itself; the body is already
///   complete so `expect: 100-continue` would only stall the function.
/// - `x-envoy-*`: the callout is an *internal* request, so Envoy's router
///   would honour a client's `x-envoy-upstream-rq-timeout-ms`,
///   `x-envoy-retry-on`, ... and let it override the configured timeout.
/// - `x-forwarded-*` and `forwarded`: `-for`, `-proto` and `-host` are
///   rebuilt below from what Envoy knows; every other one (`-port`,
///   `-prefix`, `-server`, RFC 7239's `forwarded`) is the client's word
///   alone, and frameworks that honour it would build links from it.
fn not_forwarded(name: &str) -> bool {
    matches!(name, "host" | "content-length" | "expect" | "forwarded")
        || name.starts_with("x-envoy-")
        || name.starts_with("x-forwarded-")
}

/// The IP of an `ip:port` / `[ip6]:port` peer address.
pub fn peer_ip(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => address,
    }
}

/// `x-forwarded-for` with the peer appended, unless Envoy already appended
/// it (HCM `use_remote_address: true` does).
fn forwarded_for(client: &ClientRequest) -> Option<String> {
    let existing = headers::joined(&client.headers, "x-forwarded-for");
    let ip = client.peer_address.as_deref().map(peer_ip);
    match (existing, ip) {
        (Some(chain), Some(ip)) => {
            let last = chain.rsplit(',').next().map(str::trim);
            if last == Some(ip) {
                Some(chain)
            } else {
                Some(format!("{chain}, {ip}"))
            }
        }
        (Some(chain), None) => Some(chain),
        (None, Some(ip)) => Some(ip.to_string()),
        (None, None) => None,
    }
}

/// The generic forwarding callout every integration starts from: the
/// client's method, target under the function's path, end-to-end headers,
/// forwarding headers and body.
pub fn forward(config: &CommonConfig, client: &ClientRequest) -> Callout {
    let uri = &config.function;
    let target = path::function_target(
        &uri.path,
        &uri.query,
        config.strip_prefix.as_deref(),
        client.target(),
    );
    let mut out: HeaderList = Vec::with_capacity(client.headers.len() + 8);
    out.push((":method".into(), client.method().to_string()));
    out.push((":path".into(), target));
    out.push((":authority".into(), uri.authority()));
    out.push((":scheme".into(), uri.scheme.as_str().into()));
    out.extend(headers::end_to_end(&client.headers, not_forwarded));
    if let Some(xff) = forwarded_for(client) {
        out.push(("x-forwarded-for".into(), xff));
    }
    let proto = client
        .header("x-forwarded-proto")
        .or_else(|| client.header(":scheme"))
        .unwrap_or("http");
    out.push(("x-forwarded-proto".into(), proto.to_string()));
    if !client.authority().is_empty() {
        out.push(("x-forwarded-host".into(), client.authority().to_string()));
    }
    Callout {
        cluster: config.cluster.clone(),
        headers: out,
        body: client.body.clone(),
        timeout: config.timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CommonConfig;
    use crate::fields::Fields;
    use crate::uri::FunctionUri;
    use serde_json::json;

    fn config(v: serde_json::Value) -> CommonConfig {
        let serde_json::Value::Object(m) = v else {
            unreachable!()
        };
        let mut f = Fields::new("r", m);
        let uri = FunctionUri::parse(&f.required_string("function_uri").unwrap()).unwrap();
        CommonConfig::read(&mut f, uri).unwrap()
    }

    fn req(pairs: &[(&str, &str)]) -> ClientRequest {
        ClientRequest {
            headers: crate::headers::owned(pairs),
            peer_address: Some("10.0.0.7:5555".into()),
            protocol: None,
            body: b"payload".to_vec(),
        }
    }

    #[test]
    fn client_forwarding_headers_the_filter_does_not_set_are_dropped() {
        let c = config(json!({"function_uri": "http://fn.test/f"}));
        let r = req(&[
            (":path", "/"),
            ("x-forwarded-port", "8443"),
            ("x-forwarded-prefix", "/evil"),
            ("x-forwarded-server", "attacker"),
            ("forwarded", "for=1.2.3.4;host=evil.test"),
            ("x-keep", "1"),
        ]);
        let call = forward(&c, &r);
        for gone in [
            "x-forwarded-port",
            "x-forwarded-prefix",
            "x-forwarded-server",
            "forwarded",
        ] {
            assert_eq!(call.header(gone), None, "{gone}");
        }
        assert_eq!(call.header("x-keep"), Some("1"));
        assert_eq!(call.header("x-forwarded-proto"), Some("http"));
    }

    #[test]
    fn builds_the_forwarding_callout() {
        let c = config(
            json!({"function_uri": "http://fn.local:8080/default/function-sample?k=v", "strip_prefix": "/hello", "timeout": 500}),
        );
        let r = req(&[
            (":method", "POST"),
            (":path", "/hello/123?b=2&a=1"),
            (":authority", "gw.example.com"),
            (":scheme", "https"),
            ("x-forwarded-proto", "https"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("host", "gw.example.com"),
            ("content-length", "7"),
            ("x-envoy-upstream-rq-timeout-ms", "999999"),
            ("x-request-id", "rid-1"),
            ("traceparent", "00-abc-def-01"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ]);
        let call = forward(&c, &r);
        assert_eq!(call.cluster, "fn.local:8080");
        assert_eq!(call.timeout, Duration::from_millis(500));
        assert_eq!(call.body, b"payload");
        let expected: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", "/default/function-sample/123?k=v&b=2&a=1"),
            (":authority", "fn.local:8080"),
            (":scheme", "http"),
            ("x-request-id", "rid-1"),
            ("traceparent", "00-abc-def-01"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-forwarded-for", "10.0.0.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "gw.example.com"),
        ];
        let got: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn xff_appends_the_peer_once() {
        let c = config(json!({"function_uri": "http://h/f"}));
        let mut r = req(&[(":path", "/"), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            forward(&c, &r).header("x-forwarded-for"),
            Some("1.2.3.4, 10.0.0.7")
        );
        r.headers = vec![("x-forwarded-for".into(), "1.2.3.4, 10.0.0.7".into())];
        assert_eq!(
            forward(&c, &r).header("x-forwarded-for"),
            Some("1.2.3.4, 10.0.0.7")
        );
        r.peer_address = Some("[2001:db8::1]:443".into());
        r.headers.clear();
        assert_eq!(
            forward(&c, &r).header("x-forwarded-for"),
            Some("2001:db8::1")
        );
        assert_eq!(forward(&c, &r).header("x-forwarded-proto"), Some("http"));
    }

    #[test]
    fn peer_ip_forms() {
        assert_eq!(peer_ip("127.0.0.1:80"), "127.0.0.1");
        assert_eq!(peer_ip("[::1]:80"), "::1");
        assert_eq!(peer_ip("::1"), "::1");
        assert_eq!(peer_ip("10.0.0.1"), "10.0.0.1");
    }
}
