//! Header filtering shared by both directions.

/// A header list in wire order; names are lower-case (Envoy lower-cases
/// them), repeated names are separate entries.
pub type HeaderList = Vec<(String, String)>;

/// An owned header list from borrowed pairs.
pub fn owned(pairs: &[(&str, &str)]) -> HeaderList {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Borrowed pairs of a header list, as the host-call API takes them.
pub fn borrowed(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy `keep-alive`,
/// `proxy-*` and `trailer` spellings). `proxy-*` is matched by prefix.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "trailers"
            | "transfer-encoding"
            | "upgrade"
    ) || name.starts_with("proxy-")
}

/// Names listed in any `connection` header: hop-by-hop for this message.
fn connection_tokens(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Removes hop-by-hop headers, the headers `connection` names, pseudo
/// headers, and every name for which `also_drop` says so.
pub fn end_to_end(headers: &[(String, String)], also_drop: impl Fn(&str) -> bool) -> HeaderList {
    let nominated = connection_tokens(headers);
    headers
        .iter()
        .filter(|(name, _)| {
            !name.starts_with(':')
                && !is_hop_by_hop(name)
                && !nominated.iter().any(|t| t == name)
                && !also_drop(name)
        })
        .cloned()
        .collect()
}

/// The first value of a header, if present.
pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// All values of a header joined with `, ` (RFC 9110 list semantics).
pub fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(", "))
    }
}

/// Replaces every value of `name` with one value (or appends it).
pub fn set(headers: &mut HeaderList, name: &str, value: String) {
    headers.retain(|(n, _)| n != name);
    headers.push((name.to_string(), value));
}

/// `(name, value)` pairs grouped by name, names in ascending order (as a
/// `BTreeMap` keeps them), each name's values in their original order.
/// A binary-search insert, not a map or a sort: a request has a handful of
/// headers, and no sort routine is compiled in for it. SigV4's canonical
/// headers and API Gateway's header and query maps are built on it.
pub fn grouped<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Vec<(K, Vec<V>)> {
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    for (name, value) in pairs {
        match groups.binary_search_by(|(n, _)| n.cmp(&name)) {
            Ok(at) => {
                if let Some((_, values)) = groups.get_mut(at) {
                    values.push(value);
                }
            }
            Err(at) => groups.insert(at, (name, vec![value])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        owned(pairs)
    }

    #[test]
    fn strips_hop_by_hop_and_nominated_headers_keeping_repeats_in_order() {
        let input = h(&[
            (":path", "/"),
            ("connection", "keep-alive, X-Hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("set-cookie", "a=1"),
            ("accept", "*/*"),
            ("set-cookie", "b=2"),
        ]);
        let out = end_to_end(&input, |n| n == "accept");
        assert_eq!(out, h(&[("set-cookie", "a=1"), ("set-cookie", "b=2")]));
    }

    #[test]
    fn joined_and_set() {
        let mut hs = h(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("a", "1"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        assert_eq!(joined(&hs, "x-forwarded-for").unwrap(), "1.1.1.1, 2.2.2.2");
        assert_eq!(joined(&hs, "nope"), None);
        set(&mut hs, "x-forwarded-for", "3.3.3.3".into());
        assert_eq!(hs, h(&[("a", "1"), ("x-forwarded-for", "3.3.3.3")]));
        assert_eq!(get(&hs, "a"), Some("1"));
    }

    #[test]
    fn grouped_sorts_names_and_keeps_each_names_values_in_order() {
        let groups = grouped([("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)]);
        assert_eq!(
            groups,
            vec![("a", vec![2, 5]), ("b", vec![1, 3]), ("c", vec![4])]
        );
        assert!(grouped(Vec::<(&str, u8)>::new()).is_empty());
    }
}
