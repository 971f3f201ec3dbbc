//! Console sessions: a random session id in an `HttpOnly; SameSite=Strict` cookie, the session
//! itself (API key id, CSRF token, times) held server-side in this process. The API key is
//! checked once at sign-in and never stored: each request re-reads the key record by id, so a
//! revoked or expired key ends its sessions at once (OWASP Session Management Cheat Sheet:
//! server-side state, idle and absolute timeouts, rotation at sign-in).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine as _;

use super::ConsoleError;
use crate::auth::Caller;
use crate::settings::ConsoleSettings;
use crate::state::AppState;

/// Cookie holding the session id (scoped to `/console`).
pub const SESSION_COOKIE: &str = "hm_console";
/// Cookie holding the sign-in form's CSRF token before a session exists (double submit).
pub const LOGIN_COOKIE: &str = "hm_console_login";
/// Header htmx requests carry the CSRF token in (forms carry it as the `csrf` field).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Most sessions held at once; past it the least recently used one is dropped.
const MAX_SESSIONS: usize = 10_000;

/// 256 random bits, base64url without padding (43 characters).
///
/// # Errors
/// The system RNG failing.
pub fn random_token() -> Result<String, ConsoleError> {
    use ring::rand::SecureRandom as _;
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| ConsoleError::Internal("system RNG unavailable".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// Compares two tokens in time independent of where they differ.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A value of the request's `Cookie` header (RFC 6265 §5.4 `name=value` pairs).
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` when the request came over
/// HTTPS (directly or as a proxy reports it); `max_age` 0 deletes the cookie.
pub fn set_cookie(req: &HttpRequest, name: &str, value: &str, path: &str, max_age: u64) -> String {
    let secure = if req.connection_info().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

#[derive(Debug, Clone)]
struct Session {
    key_id: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// Sessions of this process, bounded in number, with idle and absolute expiry.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
    absolute: Duration,
}

impl Sessions {
    /// An empty store with the timeouts of `s`.
    pub fn new(s: &ConsoleSettings) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(s.session_idle_minutes.max(1) * 60),
            absolute: Duration::from_secs(s.session_max_hours.max(1) * 3600),
        }
    }

    /// Absolute lifetime in seconds (the cookie's `Max-Age`).
    pub fn max_age_secs(&self) -> u64 {
        self.absolute.as_secs()
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.created) < self.absolute
    }

    /// Opens a session for `key_id`; returns its id and CSRF token.
    ///
    /// # Errors
    /// The system RNG failing.
    pub fn open(&self, key_id: &str) -> Result<(String, String), ConsoleError> {
        let (id, csrf) = (random_token()?, random_token()?);
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_SESSIONS {
            m.retain(|_, s| self.live(s, now));
        }
        if m.len() >= MAX_SESSIONS {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            id.clone(),
            Session {
                key_id: key_id.to_owned(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Ok((id, csrf))
    }

    /// The live session `id` (key id, CSRF token), marking it used; expired ones are removed.
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let s = m.get_mut(id)?;
        if !self.live(s, now) {
            m.remove(id);
            return None;
        }
        s.last_seen = now;
        Some((s.key_id.clone(), s.csrf.clone()))
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// A signed-in moderator: the session, its CSRF token and the key's current record as a
/// [`Caller`]. Extracting it fails with [`ConsoleError::SignIn`] (a redirect to the sign-in
/// page) when there is no live session or its key was revoked or has expired.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Session id (the cookie value).
    pub session_id: String,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// The key, with its scopes as stored now.
    pub caller: Caller,
}

impl Signed {
    /// Refuses (403 `csrf_failed`) unless `token` is this session's CSRF token.
    ///
    /// # Errors
    /// [`ConsoleError::Csrf`].
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), ConsoleError> {
        match token {
            Some(t) if tokens_equal(t, &self.csrf) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }

    /// [`Signed::check_csrf`] with the token of the form field or, failing that, the
    /// `X-CSRF-Token` header.
    ///
    /// # Errors
    /// [`ConsoleError::Csrf`].
    pub fn check_request(
        &self,
        req: &HttpRequest,
        field: Option<&str>,
    ) -> Result<(), ConsoleError> {
        let header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        self.check_csrf(field.or(header))
    }
}

async fn resolve(state: web::Data<AppState>, id: Option<String>) -> Result<Signed, ConsoleError> {
    let id = id.ok_or(ConsoleError::SignIn)?;
    let (key_id, csrf) = state
        .console
        .sessions
        .touch(&id)
        .ok_or(ConsoleError::SignIn)?;
    let record = state
        .store
        .get_api_key(&key_id)
        .await
        .map_err(|e| ConsoleError::Api(e.into()))?;
    let now = hallmark_store::now();
    let Some(record) =
        record.filter(|r| r.revoked_at.is_none() && r.expires_at.is_none_or(|t| t > now))
    else {
        state.console.sessions.close(&id);
        return Err(ConsoleError::SignIn);
    };
    Ok(Signed {
        session_id: id,
        csrf,
        caller: Caller {
            key_id: record.id,
            name: record.name,
            scopes: record.scopes,
        },
    })
}

impl FromRequest for Signed {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let id = cookie(req, SESSION_COOKIE);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ConsoleError::Internal("no application state".into()))?;
            Ok(resolve(state, id).await?)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(idle_minutes: u64) -> ConsoleSettings {
        ConsoleSettings {
            session_idle_minutes: idle_minutes,
            ..ConsoleSettings::default()
        }
    }

    #[test]
    fn tokens_compare_by_value() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("", "a"));
    }

    #[test]
    fn sessions_open_touch_and_close() {
        let s = Sessions::new(&settings(30));
        let (id, csrf) = s.open("key-1").unwrap();
        assert_eq!(id.len(), 43);
        assert_ne!(id, csrf);
        assert_eq!(s.touch(&id), Some(("key-1".to_owned(), csrf)));
        assert_eq!(s.touch("unknown"), None);
        s.close(&id);
        assert_eq!(s.touch(&id), None);
    }

    #[test]
    fn idle_sessions_expire() {
        let s = Sessions::new(&settings(1));
        let (id, _) = s.open("key-1").unwrap();
        {
            let mut m = s.map.lock().unwrap();
            let entry = m.get_mut(&id).unwrap();
            entry.last_seen = Instant::now() - Duration::from_secs(61);
        }
        assert_eq!(s.touch(&id), None);
        assert!(s.map.lock().unwrap().is_empty(), "expired session removed");
    }

    #[test]
    fn session_store_is_bounded() {
        let s = Sessions::new(&settings(30));
        for i in 0..MAX_SESSIONS + 5 {
            s.open(&format!("k{i}")).unwrap();
        }
        assert_eq!(s.map.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn cookies_are_read_by_name() {
        let req = actix_web::test::TestRequest::default()
            .insert_header(("Cookie", "a=1; hm_console=xyz; b=2"))
            .to_http_request();
        assert_eq!(cookie(&req, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&req, "missing"), None);
        let set = set_cookie(&req, SESSION_COOKIE, "v", "/console", 60);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure"), "plain HTTP request");
    }
}
