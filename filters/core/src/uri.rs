//! Parsing of `function_uri` into the parts a callout needs.

/// The scheme of a function endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An absolute function URL, split and validated once at config time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUri {
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 keeps its brackets), lower-cased.
    pub host: String,
    pub port: Option<u16>,
    /// The path exactly as written, `/` when the URL has none.
    pub path: String,
    /// The query exactly as written, without `?` (empty when none).
    pub query: String,
}

impl FunctionUri {
    /// Parses `scheme://host[:port][/path][?query]`. Userinfo and fragments
    /// are refused: credentials belong in `authorization`, and a fragment is
    /// never sent to a server. The error text never repeats the input, as a
    /// URL may carry a key (`?code=` on Azure).
    pub fn parse(input: &str) -> Result<FunctionUri, String> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ci(input, "http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = strip_prefix_ci(input, "https://") {
            (Scheme::Https, rest)
        } else {
            return Err("must be an absolute http:// or https:// URL".into());
        };
        if input.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("must not contain spaces or control characters".into());
        }
        if rest.contains('#') {
            return Err("must not contain a fragment (#...)".into());
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(
                "must not contain userinfo (user@host); put credentials in authorization".into(),
            );
        }
        let (host, port) = split_host_port(authority)?;
        let (path, query) = match after.split_once('?') {
            Some((p, q)) => (p, q),
            None => (after, ""),
        };
        Ok(FunctionUri {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            query: query.to_string(),
        })
    }

    /// The `:authority` to send: the host, with the port only when it is not
    /// the scheme's default (what a browser or curl would send).
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) if p != self.scheme.default_port() => format!("{}:{}", self.host, p),
            _ => self.host.clone(),
        }
    }

    /// The authority as written in the URL (host plus any explicit port),
    /// the default name of the Envoy cluster for this function.
    pub fn written_authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    if authority.is_empty() {
        return Err("must name a host".into());
    }
    let (host, port) = if authority.starts_with('[') {
        let close = authority
            .find(']')
            .ok_or("has an unterminated IPv6 literal")?;
        let (host, rest) = authority.split_at(close + 1);
        match rest.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if rest.is_empty() => (host, None),
            None => return Err("has characters after the IPv6 literal".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    if !valid_host {
        return Err("has an invalid host".into());
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err("has an invalid port".into()),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_apisix_examples() {
        let u = FunctionUri::parse("http://localhost:3233/default/function-sample/test").unwrap();
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.host, "localhost");
        assert_eq!(u.port, Some(3233));
        assert_eq!(u.path, "/default/function-sample/test");
        assert_eq!(u.query, "");
        assert_eq!(u.authority(), "localhost:3233");
        assert_eq!(u.written_authority(), "localhost:3233");
    }

    #[test]
    fn default_ports_are_left_out_of_the_authority() {
        let u = FunctionUri::parse("https://Fn.Example.com:443/api/x?code=k%3D&a=1").unwrap();
        assert_eq!(u.authority(), "fn.example.com");
        assert_eq!(u.written_authority(), "fn.example.com:443");
        assert_eq!(u.query, "code=k%3D&a=1");
        let u = FunctionUri::parse("http://h:80").unwrap();
        assert_eq!(u.authority(), "h");
        assert_eq!(u.path, "/");
    }

    #[test]
    fn ipv6_literals() {
        let u = FunctionUri::parse("http://[::1]:8080/f").unwrap();
        assert_eq!(u.host, "[::1]");
        assert_eq!(u.authority(), "[::1]:8080");
    }

    #[test]
    fn rejects_bad_urls_without_echoing_them() {
        for bad in [
            "localhost:8080/x",
            "ftp://h/x",
            "http://",
            "http://user:secret@h/x",
            "http://h:99999/",
            "http://h:0/",
            "http://h/x#frag",
            "http://h/a b",
            "http://h\r\n/x",
            "http://[::1/x",
        ] {
            let err = FunctionUri::parse(bad).unwrap_err();
            assert!(!err.contains("secret"), "{bad}: {err}");
        }
    }
}
