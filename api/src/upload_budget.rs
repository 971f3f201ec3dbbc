//! Memory budget for request bodies: a global in-flight byte budget shared by every request,
//! a per-key limit on concurrent uploads, and a minimum upload rate (slow-loris bodies are cut).
//!
//! Request bodies are buffered in memory (media is analysed whole), so without a budget 50
//! slow uploads of 64 MiB hold 3.2 GiB. Here every buffered byte is charged to one semaphore
//! (counted in KiB) before it is kept: a body that would overdraw the budget is refused at
//! once with 503 `overloaded` and `Retry-After` (its `Content-Length` is charged up front, so
//! a declared-large body is refused before any of it is read). The charge is returned when the
//! request's [`BodyCharge`] is dropped, i.e. when the handler has finished with the body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::settings::ServerSettings;

/// Bytes per budget unit (the semaphore counts KiB, so a single charge can exceed 4 GiB).
const UNIT: u64 = 1024;

/// The instance's upload budget and limits (one per process, in [`crate::state::AppState`]).
#[derive(Debug)]
pub struct UploadBudget {
    units: Arc<Semaphore>,
    total_units: u64,
    per_key: Arc<Mutex<HashMap<String, usize>>>,
    max_per_key: usize,
    /// Minimum sustained body rate in bytes per second after the grace period (0 = none).
    pub min_bytes_per_second: u64,
    /// Seconds a body may take before the minimum rate applies.
    pub grace: Duration,
}

impl UploadBudget {
    /// A budget from `[server]`: `upload_budget_bytes` (global, 0 = unlimited),
    /// `max_uploads_per_key` (0 = unlimited), `min_upload_bytes_per_second`,
    /// `upload_rate_grace_seconds`.
    pub fn new(s: &ServerSettings) -> Self {
        let total_units = if s.upload_budget_bytes == 0 {
            (Semaphore::MAX_PERMITS as u64).min(u64::from(u32::MAX))
        } else {
            (s.upload_budget_bytes as u64).div_ceil(UNIT).max(1)
        };
        Self {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            per_key: Arc::default(),
            max_per_key: s.max_uploads_per_key,
            min_bytes_per_second: s.min_upload_bytes_per_second,
            grace: Duration::from_secs(s.upload_rate_grace_seconds),
        }
    }

    /// Bytes of the budget not charged to any request now.
    pub fn available_bytes(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }

    /// Starts a body's charge. With `key`, the body also takes one of that key's concurrent
    /// upload slots for as long as the charge lives.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] (429, `Retry-After: 1`) when the key already has
    /// `max_uploads_per_key` uploads in flight.
    pub fn start(&self, key: Option<&str>) -> Result<BodyCharge, ApiError> {
        let slot = match key {
            Some(k) if self.max_per_key > 0 => {
                let mut m = self.per_key.lock().unwrap_or_else(|p| p.into_inner());
                let n = m.entry(k.to_owned()).or_insert(0);
                if *n >= self.max_per_key {
                    crate::metrics::rate_limited("uploads_per_key");
                    return Err(ApiError::RateLimited {
                        retry_after_secs: 1,
                    });
                }
                *n += 1;
                Some(KeySlot {
                    key: k.to_owned(),
                    map: self.per_key.clone(),
                })
            }
            _ => None,
        };
        Ok(BodyCharge {
            units: self.units.clone(),
            total_units: self.total_units,
            permit: None,
            charged_bytes: 0,
            _slot: slot,
        })
    }
}

/// One key's upload slot, returned on drop.
#[derive(Debug)]
struct KeySlot {
    key: String,
    map: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// The part of the budget one request body holds; everything returns to the budget on drop.
#[derive(Debug)]
pub struct BodyCharge {
    units: Arc<Semaphore>,
    total_units: u64,
    permit: Option<OwnedSemaphorePermit>,
    charged_bytes: u64,
    _slot: Option<KeySlot>,
}

impl BodyCharge {
    /// Makes sure at least `bytes` in all are charged to this body (never waits).
    ///
    /// # Errors
    /// [`ApiError::Overloaded`] (503 with `Retry-After`) when the budget has no room.
    pub fn reserve_total(&mut self, bytes: u64) -> Result<(), ApiError> {
        if bytes <= self.charged_bytes {
            return Ok(());
        }
        let have = self.charged_bytes.div_ceil(UNIT);
        let want = bytes.div_ceil(UNIT).max(have);
        let more = want - have;
        if more == 0 {
            self.charged_bytes = bytes;
            return Ok(());
        }
        if want > self.total_units {
            // More than the whole budget: it could never fit.
            return Err(ApiError::Overloaded);
        }
        let more = u32::try_from(more).map_err(|_| ApiError::Overloaded)?;
        let p = self
            .units
            .clone()
            .try_acquire_many_owned(more)
            .map_err(|_| {
                crate::metrics::rate_limited("upload_budget");
                ApiError::Overloaded
            })?;
        match &mut self.permit {
            Some(held) => held.merge(p),
            None => self.permit = Some(p),
        }
        self.charged_bytes = want * UNIT;
        Ok(())
    }
}

/// Tracks a body's arrival against the minimum rate: after `grace`, the bytes received must
/// keep up with `min_bytes_per_second × (elapsed − grace)`.
#[derive(Debug, Clone, Copy)]
pub struct RateFloor {
    start: Instant,
    grace: Duration,
    min_bytes_per_second: u64,
}

impl RateFloor {
    /// Starts the clock now.
    pub fn new(budget: &UploadBudget) -> Self {
        Self {
            start: Instant::now(),
            grace: budget.grace,
            min_bytes_per_second: budget.min_bytes_per_second,
        }
    }

    /// Whole seconds since the body started.
    pub fn elapsed_secs(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// The instant by which more data must arrive, with `received` bytes so far; `None` when
    /// no minimum rate applies.
    pub fn deadline(&self, received: u64) -> Option<Instant> {
        if self.min_bytes_per_second == 0 {
            return None;
        }
        let secs = received as f64 / self.min_bytes_per_second as f64;
        Some(self.start + self.grace + Duration::from_secs_f64(secs.min(1e9)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn settings(budget: usize, per_key: usize) -> ServerSettings {
        ServerSettings {
            host: String::new(),
            port: 0,
            workers: 1,
            max_upload_bytes: 1 << 20,
            max_concurrent_jobs: 1,
            upload_timeout_seconds: 10,
            upload_budget_bytes: budget,
            max_uploads_per_key: per_key,
            min_upload_bytes_per_second: 1000,
            upload_rate_grace_seconds: 2,
        }
    }

    #[test]
    fn charges_are_bounded_and_returned() {
        let b = UploadBudget::new(&settings(10 * 1024, 0));
        let mut a = b.start(None).unwrap();
        a.reserve_total(6 * 1024).unwrap();
        let mut c = b.start(None).unwrap();
        assert!(matches!(
            c.reserve_total(6 * 1024),
            Err(ApiError::Overloaded)
        ));
        c.reserve_total(4 * 1024).unwrap();
        assert_eq!(b.available_bytes(), 0);
        // Growing a charge only takes the difference.
        drop(c);
        a.reserve_total(10 * 1024).unwrap();
        assert_eq!(b.available_bytes(), 0);
        drop(a);
        assert_eq!(b.available_bytes(), 10 * 1024);
        // More than the whole budget never fits.
        let mut d = b.start(None).unwrap();
        assert!(d.reserve_total(11 * 1024).is_err());
    }

    #[test]
    fn per_key_slots() {
        let b = UploadBudget::new(&settings(0, 2));
        let one = b.start(Some("k")).unwrap();
        let _two = b.start(Some("k")).unwrap();
        assert!(matches!(
            b.start(Some("k")),
            Err(ApiError::RateLimited { .. })
        ));
        let _other = b.start(Some("j")).unwrap();
        drop(one);
        let _three = b.start(Some("k")).unwrap();
    }

    #[test]
    fn rate_floor_deadline_grows_with_data() {
        let b = UploadBudget::new(&settings(0, 0));
        let f = RateFloor::new(&b);
        let d0 = f.deadline(0).unwrap();
        let d1 = f.deadline(2000).unwrap();
        assert_eq!(d1 - d0, Duration::from_secs(2));
        assert_eq!(d0 - f.start, Duration::from_secs(2));
    }
}
