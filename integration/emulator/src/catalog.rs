//! `GET|POST /catalog/{item_id}`: the sample function of the "function
//! backend" posture (`envoy/function-backend.yaml`). It keeps only business
//! logic: it validates its path, answers a typed JSON item, and reports what
//! it saw of the gateway's forwarding headers (correlation id, cache status,
//! who routed it, the caller's JWT claims) in the answer and in one
//! structured log line.
//!
//! Answers carry `cache-control: public, max-age=60`, `no-store` with
//! `?fresh=1`, or `max-age=120` (not public) with `?personal=1`; the
//! gateway's cache decides from that.

use crate::http::{Request, Response};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

/// Calls answered so far (every answer carries its number, so a cached
/// answer shows the call that produced it).
static CALLS: AtomicU64 = AtomicU64::new(0);

fn valid_item_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::new(
        status,
        "application/json",
        json!({"error": code, "message": message}).to_string(),
    )
}

/// `rest` is the path after `/catalog`.
pub fn handle(req: &Request, rest: &str) -> Response {
    if req.method != "GET" && req.method != "HEAD" && req.method != "POST" {
        return error(405, "method_not_allowed", "GET, HEAD or POST");
    }
    let item_id = rest.strip_prefix('/').unwrap_or(rest);
    if !valid_item_id(item_id) {
        return error(
            400,
            "invalid_item_id",
            "item_id must be 1-32 characters of [A-Za-z0-9-]",
        );
    }
    let call = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    let header = |name: &str| req.header(name);
    let gateway = json!({
        "correlation_id": header("x-correlation-id"),
        "cache_status": header("x-cache-status"),
        "routed_by": header("routed-by"),
        "client": header("x-jwt-sub"),
        "scope": header("x-jwt-scope"),
        "authorization_forwarded": header("authorization").is_some(),
    });
    // One structured line per request, as the seed's function logs it.
    println!(
        "{}",
        json!({
            "msg": "handled function backend request",
            "item_id": item_id,
            "routed_by": gateway["routed_by"],
            "correlation_id": gateway["correlation_id"],
            "cache_status": gateway["cache_status"],
        })
    );
    let fresh = req
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "fresh=1"));
    let body = json!({
        "item_id": item_id,
        "name": format!("Item {item_id}"),
        "price_cents": item_id.bytes().map(u64::from).sum::<u64>() * 10,
        "method": req.method,
        "call": call,
        "gateway": gateway,
    });
    // `?personal=1`: cacheable, but not marked public (an answer for this
    // caller only: RFC 9111 section 3.5 keeps it from other callers).
    let personal = req
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "personal=1"));
    let cache_control = if fresh {
        "no-store"
    } else if personal {
        "max-age=120"
    } else {
        "public, max-age=60"
    };
    Response::new(200, "application/json", body.to_string())
        .header("cache-control", cache_control)
        .header("date", &http_date())
}

/// Now as an HTTP date, as every function platform sends it (caches age
/// answers from it).
fn http_date() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    aws_smithy_types::DateTime::from_secs(i64::try_from(now).unwrap_or(i64::MAX))
        .fmt(aws_smithy_types::date_time::Format::HttpDate)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_are_checked() {
        assert!(valid_item_id("42") && valid_item_id("sku-9"));
        for bad in ["", "a/b", "a b", "é", &"x".repeat(33)] {
            assert!(!valid_item_id(bad), "{bad}");
        }
    }
}
