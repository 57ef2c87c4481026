//! Building the function's request-target from the client's.

/// Splits a `:path` into path and query (without `?`), byte-exact.
pub fn split_path_query(target: &str) -> (&str, &str) {
    match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    }
}

/// The part of `client_path` after `strip_prefix`, if the prefix matches on
/// a segment boundary (`/hello` matches `/hello` and `/hello/x`, not
/// `/helloworld`; a prefix ending in `/` matches anything below it).
pub fn forwarded_remainder<'a>(client_path: &'a str, strip_prefix: &str) -> Option<&'a str> {
    let rest = client_path.strip_prefix(strip_prefix)?;
    if strip_prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// Is this segment `.` or `..`, also when written with `%2E`? RFC 3986
/// makes `%2E` equivalent to `.`, and functions' servers decode it.
fn dot_segment(segment: &str) -> Option<bool> {
    let mut dots = 0;
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i..i + 3) {
            Some([b'%', b'2', b'e' | b'E']) => i += 3,
            _ if bytes.get(i) == Some(&b'.') => i += 1,
            _ => return None,
        }
        dots += 1;
    }
    match dots {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    }
}

/// The separators a server may decode inside one segment: `%2F` and `%5C`
/// (Go's `r.URL.Path`, IIS and most frameworks decode once before routing)
/// and a raw backslash (IIS and Windows servers split on it).
fn split_hidden_separators(segment: &str) -> impl Iterator<Item = &str> {
    let bytes = segment.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let width = match bytes.get(i..i + 3) {
            Some([b'%', b'2', b'f' | b'F']) | Some([b'%', b'5', b'c' | b'C']) => 3,
            _ if bytes.get(i) == Some(&b'\\') => 1,
            _ => 0,
        };
        if width == 0 {
            i += 1;
            continue;
        }
        pieces.push(segment.get(start..i).unwrap_or_default());
        i += width;
        start = i;
    }
    pieces.push(segment.get(start..).unwrap_or_default());
    pieces.into_iter()
}

/// Does this remainder hide a dot segment behind an encoded separator
/// (`..%2F..%2Fadmin`, `..%5C..%5Cadmin`, `..\..\admin`)? The filter keeps
/// the remainder's bytes (a function may want `a%2Fb` as one segment) and
/// resolves plain dot segments itself, but a server that decodes once would
/// resolve these ones *outside* the function's base path. Such requests
/// are refused ([`crate::outcome::Failure::UnsafePath`]).
pub fn hides_dot_segment(remainder: &str) -> bool {
    // Nearly every path has no hidden separator at all: one scan, no
    // allocation, decides.
    let bytes = remainder.as_bytes();
    let hidden = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'\\'
            || (b == b'%'
                && matches!(
                    bytes.get(i + 1..i + 3),
                    Some([b'2', b'f' | b'F']) | Some([b'5', b'c' | b'C'])
                ))
    });
    hidden
        && remainder.split('/').any(|segment| {
            let mut pieces = split_hidden_separators(segment);
            let first = pieces.next();
            let rest: Vec<&str> = pieces.collect();
            // A segment without a hidden separator is one piece: the
            // normalisation handles its dots.
            !rest.is_empty()
                && first
                    .into_iter()
                    .chain(rest)
                    .any(|p| dot_segment(p).is_some())
        })
}

/// Would forwarding this client request-target (under `strip_prefix`)
/// hand the function a path that escapes its base once decoded?
pub fn forwarded_path_escapes(strip_prefix: Option<&str>, client_target: &str) -> bool {
    let (client_path, _) = split_path_query(client_target);
    strip_prefix
        .and_then(|prefix| forwarded_remainder(client_path, prefix))
        .is_some_and(hides_dot_segment)
}

/// Normalises a forwarded remainder so it stays *below* the function's
/// base path: empty segments (repeated slashes) are merged, `.` segments
/// dropped and `..` segments pop only what the remainder itself added. The
/// segments are otherwise kept byte for byte: nothing is decoded, so `%2F`
/// never becomes a new segment. A trailing slash is kept.
pub fn normalise_remainder(remainder: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in remainder.split('/') {
        trailing_slash = false;
        match dot_segment(segment) {
            Some(true) => {
                segments.pop();
                trailing_slash = true;
            }
            Some(false) => trailing_slash = true,
            None if segment.is_empty() => trailing_slash = true,
            None => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(remainder.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash && !remainder.is_empty() {
        out.push('/');
    }
    out
}

/// Joins the function's base path and a normalised remainder with exactly
/// one slash between them. Never returns an empty path.
pub fn join(base: &str, remainder: &str) -> String {
    let base = if base.is_empty() { "/" } else { base };
    if remainder.is_empty() || remainder == "/" && base.ends_with('/') {
        return base.to_string();
    }
    let mut out = String::with_capacity(base.len() + remainder.len());
    out.push_str(base.trim_end_matches('/'));
    out.push_str(remainder);
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Joins two raw query strings with `&`, skipping empty ones.
pub fn join_query(first: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (true, _) => second.to_string(),
        (_, true) => first.to_string(),
        _ => format!("{first}&{second}"),
    }
}

/// The request-target for the function: base path (+ forwarded part when
/// the client path is under `strip_prefix`), then the function URL's own
/// query followed by the client's query, both byte for byte.
pub fn function_target(
    base_path: &str,
    base_query: &str,
    strip_prefix: Option<&str>,
    client_target: &str,
) -> String {
    let (client_path, client_query) = split_path_query(client_target);
    let remainder = strip_prefix
        .and_then(|prefix| forwarded_remainder(client_path, prefix))
        .map(normalise_remainder)
        .unwrap_or_default();
    let mut target = join(base_path, &remainder);
    let query = join_query(base_query, client_query);
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query);
    }
    target
}

/// `application/x-www-form-urlencoded` decoding of one query component:
/// `+` is a space, `%XX` a byte, a malformed escape stays literal, and
/// invalid UTF-8 becomes U+FFFD (what AWS's SDKs do).
pub fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (other, _) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(base: &str, prefix: Option<&str>, client: &str) -> String {
        function_target(base, "", prefix, client)
    }

    #[test]
    fn apisix_forwarding_examples() {
        let base = "/default/function-sample";
        assert_eq!(
            t(base, Some("/hello"), "/hello/123"),
            "/default/function-sample/123"
        );
        assert_eq!(
            t("/api", Some("/azure"), "/azure/httptrigger"),
            "/api/httptrigger"
        );
        assert_eq!(
            t("/api", Some("/azure"), "/azure/http/trigger?x=1"),
            "/api/http/trigger?x=1"
        );
        assert_eq!(
            t("/api", Some("/azure"), "/azure///http////trigger"),
            "/api/http/trigger"
        );
        assert_eq!(t("/api", Some("/azure"), "/azure/"), "/api/");
        assert_eq!(t("/api/", Some("/azure"), "/azure/x"), "/api/x");
        assert_eq!(
            t("/", Some("/hello"), "/hello/openfunction"),
            "/openfunction"
        );
        assert_eq!(t("/", None, "/hello"), "/");
    }

    #[test]
    fn empty_remainder_keeps_the_base_path() {
        assert_eq!(
            t("/default/function-sample", Some("/hello"), "/hello"),
            "/default/function-sample"
        );
        assert_eq!(t("/f", Some("/hello/"), "/hello/"), "/f");
        assert_eq!(t("/f/", Some("/hello"), "/hello/"), "/f/");
    }

    #[test]
    fn prefix_matches_only_on_segment_boundaries() {
        assert_eq!(t("/f", Some("/hello"), "/helloworld"), "/f");
        assert_eq!(t("/f", Some("/hello/"), "/hello/a"), "/f/a");
        assert_eq!(t("/f", Some("/hello"), "/other/a"), "/f");
    }

    #[test]
    fn encoded_characters_are_never_decoded() {
        assert_eq!(t("/f", Some("/h"), "/h/a%2Fb/%20c%3F"), "/f/a%2Fb/%20c%3F");
        assert_eq!(t("/f", Some("/h"), "/h/caf%C3%A9"), "/f/caf%C3%A9");
    }

    #[test]
    fn dot_segments_cannot_escape_the_base_path() {
        assert_eq!(t("/fn/a", Some("/h"), "/h/../../secret"), "/fn/a/secret");
        assert_eq!(t("/fn/a", Some("/h"), "/h/x/../y"), "/fn/a/y");
        assert_eq!(t("/fn/a", Some("/h"), "/h/%2e%2E/etc"), "/fn/a/etc");
        assert_eq!(t("/fn/a", Some("/h"), "/h/./x/."), "/fn/a/x/");
        assert_eq!(t("/fn/a", Some("/h"), "/h/x/.."), "/fn/a/");
        assert_eq!(t("/fn/a", Some("/h"), "/h/..."), "/fn/a/...");
    }

    #[test]
    fn dot_segments_behind_encoded_separators_are_found() {
        for escape in [
            "/..%2F..%2Fadmin",
            "/..%2f..%2fadmin",
            "/..%5C..%5Cadmin",
            "/..%5c..%5cadmin",
            "/..\\..\\admin",
            "/x/%2e%2e%2Fadmin",
            "/a%2F..%2F..%2Fadmin",
            "/a/..%2F",
            "/.%2Fx",
        ] {
            assert!(hides_dot_segment(escape), "{escape}");
        }
        for fine in [
            "",
            "/",
            "/a%2Fb",
            "/a%5Cb/c",
            "/a\\b",
            "/../x",
            "/%2e%2e/x",
            "/...%2Fx",
            "/..%252F..%252Fadmin",
            "/caf%C3%A9",
            "/%2",
            "/%",
        ] {
            assert!(!hides_dot_segment(fine), "{fine}");
        }
        assert!(forwarded_path_escapes(Some("/h"), "/h/..%2Fadmin?x=1"));
        assert!(!forwarded_path_escapes(Some("/h"), "/h/a?q=..%2F"));
        assert!(!forwarded_path_escapes(None, "/h/..%2Fadmin"));
        assert!(!forwarded_path_escapes(Some("/h"), "/other/..%2Fadmin"));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%2F%zz%4"), "a b c/%zz%4");
        assert_eq!(form_decode("%E2%9c%93"), "✓");
        assert_eq!(form_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn queries_are_kept_byte_for_byte_and_merged() {
        let q = "b=2&a=1&a=0&flag&sp=x+y&e=&pct=%2B%26&u=%e2%9c%93";
        assert_eq!(t("/f", None, &format!("/x?{q}")), format!("/f?{q}"));
        assert_eq!(
            function_target("/f", "code=k", None, "/x?a=1"),
            "/f?code=k&a=1"
        );
        assert_eq!(function_target("/f", "code=k", None, "/x"), "/f?code=k");
        assert_eq!(t("/f", None, "/x?"), "/f");
    }
}
