//! Request ids: every response carries `X-Request-Id`, and every log line written while the
//! request is served carries the same id (a `request` tracing span), so an operator can go
//! from a client's error to the server's log lines.
//!
//! A client's own `X-Request-Id` is kept when it is 1–128 characters of `[A-Za-z0-9._:-]`
//! (e.g. a proxy's UUID); anything else is replaced by a fresh UUIDv7, so a client cannot
//! inject text into logs through it.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

/// The header name.
pub const HEADER: &str = "x-request-id";

/// The request id to use for a request whose `X-Request-Id` header is `incoming`.
pub fn from_header(incoming: Option<&str>) -> String {
    match incoming {
        Some(v)
            if (1..=128).contains(&v.len())
                && v.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
                }) =>
        {
            v.to_owned()
        }
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

/// Sets `X-Request-Id` on a response.
pub fn set(headers: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(HeaderName::from_static(HEADER), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_safe_ids_and_replaces_the_rest() {
        assert_eq!(from_header(Some("req-42.a_b:c")), "req-42.a_b:c");
        for bad in ["", "a b", "x\ny", "<script>", &"a".repeat(129)] {
            let id = from_header(Some(bad));
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        let fresh = from_header(None);
        assert!(uuid::Uuid::parse_str(&fresh).is_ok());
        assert_ne!(fresh, from_header(None));
    }
}
