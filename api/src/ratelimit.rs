//! Request rate limits: GCRA token buckets from the `governor` crate (MIT), keyed per API key
//! and route, and per client address for failed authentication.
//!
//! * Per key and route: `rate_limits.per_second` / `burst`, overridden per route pattern in
//!   `rate_limits.routes`. Checked after authentication.
//! * Failed authentication: every unknown, revoked or expired key costs the client address one
//!   token of `rate_limits.failed_auth_per_minute` / `failed_auth_burst`; an address without
//!   tokens gets 429 *before* the key is looked up, so a flood of bad keys does not become a
//!   flood of database queries (issue 18).
//!
//! State lives in this process (several instances each enforce their own buckets).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::settings::RateLimitSettings;

type KeyRoute = (String, String);

/// A refusal: how long until a request would be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Whole seconds to wait (≥ 1), for `Retry-After`.
    pub retry_after_secs: u64,
}

fn limited(wait: Duration) -> Limited {
    // RFC 9110 §10.2.3: whole seconds; round up so that a retry at that time is admitted.
    Limited {
        retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
    }
}

/// `per_second` sustained with bucket `burst`; `None` when unlimited (rate ≤ 0).
fn quota(per_second: f64, burst: u32) -> Option<Quota> {
    if !(per_second.is_finite() && per_second > 0.0) {
        return None;
    }
    let period = Duration::from_secs_f64((1.0 / per_second).min(86_400.0));
    let q = Quota::with_period(period)?;
    Some(q.allow_burst(NonZeroU32::new(burst.max(1))?))
}

/// The instance's limiters.
pub struct RateLimits {
    clock: DefaultClock,
    default: Option<DefaultKeyedRateLimiter<KeyRoute>>,
    routes: BTreeMap<String, Option<DefaultKeyedRateLimiter<String>>>,
    failed_auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses out of failed-authentication tokens, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("default", &self.default.is_some())
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("failed_auth", &self.failed_auth.is_some())
            .finish()
    }
}

impl RateLimits {
    /// Builds the limiters from `[rate_limits]`.
    pub fn new(s: &RateLimitSettings) -> Self {
        let per_min = f64::from(s.failed_auth_per_minute) / 60.0;
        Self {
            clock: DefaultClock::default(),
            default: quota(s.per_second, s.burst).map(RateLimiter::keyed),
            routes: s
                .routes
                .iter()
                .map(|(route, l)| {
                    (
                        route.clone(),
                        quota(l.per_second, l.burst).map(RateLimiter::keyed),
                    )
                })
                .collect(),
            failed_auth: quota(per_min, s.failed_auth_burst).map(RateLimiter::keyed),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `key_id` to `route` (the route pattern), or says how long to wait.
    ///
    /// # Errors
    /// [`Limited`] when the key's bucket for this route is empty.
    pub fn check_key(&self, key_id: &str, route: &str) -> Result<(), Limited> {
        let r = match self.routes.get(route) {
            Some(Some(l)) => l.check_key(&key_id.to_owned()),
            Some(None) => Ok(()),
            None => match &self.default {
                Some(l) => l.check_key(&(key_id.to_owned(), route.to_owned())),
                None => Ok(()),
            },
        };
        r.map_err(|nu| limited(nu.wait_time_from(self.clock.now())))
    }

    /// Whether `ip` may try to authenticate now (no database lookup when not).
    ///
    /// # Errors
    /// [`Limited`] while the address is out of failed-authentication tokens.
    pub fn check_auth_allowed(&self, ip: Option<IpAddr>) -> Result<(), Limited> {
        let Some(ip) = ip else { return Ok(()) };
        let now = Instant::now();
        let mut b = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match b.get(&ip) {
            Some(until) if *until > now => Err(limited(*until - now)),
            Some(_) => {
                b.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records a failed authentication from `ip`; when that empties its bucket, the address
    /// is refused until a token is back.
    pub fn auth_failed(&self, ip: Option<IpAddr>) {
        let (Some(ip), Some(l)) = (ip, &self.failed_auth) else {
            return;
        };
        if let Err(nu) = l.check_key(&ip) {
            let wait = nu.wait_time_from(self.clock.now());
            let mut b = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if b.len() > 100_000 {
                let now = Instant::now();
                b.retain(|_, until| *until > now);
            }
            b.insert(ip, Instant::now() + wait);
        }
    }

    /// Drops buckets that are full again (bounded memory under many keys/addresses); call
    /// periodically.
    pub fn prune(&self) {
        if let Some(l) = &self.default {
            l.retain_recent();
        }
        for l in self.routes.values().flatten() {
            l.retain_recent();
        }
        if let Some(l) = &self.failed_auth {
            l.retain_recent();
        }
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::settings::RouteLimit;

    fn settings(per_second: f64, burst: u32) -> RateLimitSettings {
        RateLimitSettings {
            per_second,
            burst,
            ..RateLimitSettings::default()
        }
    }

    #[test]
    fn per_key_and_route_buckets() {
        let mut s = settings(1.0, 3);
        s.routes.insert(
            "/v1/verify".into(),
            RouteLimit {
                per_second: 0.0,
                burst: 1,
            },
        );
        let l = RateLimits::new(&s);
        for _ in 0..3 {
            l.check_key("a", "/v1/sign").unwrap();
        }
        let e = l.check_key("a", "/v1/sign").unwrap_err();
        assert!(e.retry_after_secs >= 1 && e.retry_after_secs <= 2, "{e:?}");
        // Another key, another route: their own buckets; an unlimited override stays open.
        l.check_key("b", "/v1/sign").unwrap();
        l.check_key("a", "/v1/decisions").unwrap();
        for _ in 0..100 {
            l.check_key("a", "/v1/verify").unwrap();
        }
    }

    #[test]
    fn unlimited_by_default() {
        let l = RateLimits::new(&RateLimitSettings::default());
        for _ in 0..1000 {
            l.check_key("a", "/v1/verify").unwrap();
        }
    }

    #[test]
    fn failed_auth_blocks_the_address_only() {
        let s = RateLimitSettings {
            failed_auth_per_minute: 6,
            failed_auth_burst: 2,
            ..RateLimitSettings::default()
        };
        let l = RateLimits::new(&s);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        l.check_auth_allowed(Some(a)).unwrap();
        l.auth_failed(Some(a));
        l.auth_failed(Some(a));
        l.check_auth_allowed(Some(a)).unwrap();
        l.auth_failed(Some(a));
        let e = l.check_auth_allowed(Some(a)).unwrap_err();
        assert!((1..=10).contains(&e.retry_after_secs), "{e:?}");
        l.check_auth_allowed(Some(b)).unwrap();
        l.prune();
        assert!(l.check_auth_allowed(Some(a)).is_err());
    }
}
