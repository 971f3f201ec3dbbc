//! Byte cache: Redis when configured, otherwise a bounded in-process map.
//!
//! All keys are namespaced with [`KEY_PREFIX`]. After a successful
//! [`Cache::connect`], cache operations never fail: Redis errors are treated
//! as a miss / no-op, so a cache outage degrades performance, not
//! availability. A circuit breaker keeps an outage cheap: after a connection
//! failure the cache is skipped (no network call, no wait) for
//! [`BREAKER_OPEN`], then one call probes Redis again; the outage and the
//! recovery are logged once each.
//!
//! With [`Cache::with_integrity`], every value is stored as
//! `HMAC-SHA256(key, namespaced name ‖ 0x00 ‖ value) ‖ value` (RFC 2104) and a
//! value whose tag does not verify is a miss: whoever can write to Redis
//! cannot make Hallmark read anything it did not write itself, nor move an
//! entry to another name.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use ring::hmac;

use crate::error::StoreError;

/// Prefix prepended to every key.
pub const KEY_PREFIX: &str = "hallmark:";

/// Default maximum number of entries of the in-process cache.
pub const DEFAULT_MEMORY_MAX_ENTRIES: usize = 10_000;
/// Default maximum total value bytes of the in-process cache (64 MiB).
pub const DEFAULT_MEMORY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// How long the cache is skipped after a Redis connection failure.
pub const BREAKER_OPEN: Duration = Duration::from_secs(5);

/// Bytes of the integrity tag in front of each value (HMAC-SHA256).
const TAG_LEN: usize = 32;

/// Cache handle. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Inner,
    integrity: Option<Arc<hmac::Key>>,
    breaker: Arc<Breaker>,
}

#[derive(Clone)]
enum Inner {
    Redis(ConnectionManager),
    Memory(Arc<Mutex<MemoryCache>>),
}

/// Circuit breaker over the Redis connection.
struct Breaker {
    start: Instant,
    /// Milliseconds after `start` until which Redis is not called.
    open_until_ms: AtomicU64,
    tripped: AtomicBool,
}

impl Breaker {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            open_until_ms: AtomicU64::new(0),
            tripped: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether Redis may be called now (closed, or open long enough to probe).
    fn allow(&self) -> bool {
        self.now_ms() >= self.open_until_ms.load(Ordering::Relaxed)
    }

    fn record(&self, r: Result<(), &redis::RedisError>) {
        match r {
            Ok(()) => {
                if self.tripped.swap(false, Ordering::Relaxed) {
                    tracing::warn!("redis answers again; cache resumed");
                }
            }
            Err(e) if is_outage(e) => {
                let until = self
                    .now_ms()
                    .saturating_add(u64::try_from(BREAKER_OPEN.as_millis()).unwrap_or(5_000));
                self.open_until_ms.store(until, Ordering::Relaxed);
                if !self.tripped.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "redis unavailable; cache skipped until it answers (probed every {} s)", BREAKER_OPEN.as_secs());
                }
            }
            Err(e) => tracing::warn!(error = %e, "redis command failed; treated as a miss"),
        }
    }
}

/// A failure of the connection (not of one command): it opens the breaker.
fn is_outage(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("kind", &self.kind())
            .field("integrity", &self.integrity.is_some())
            .finish_non_exhaustive()
    }
}

fn namespaced(key: &str) -> String {
    format!("{KEY_PREFIX}{key}")
}

fn tag_input(key: &str, value: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(key.len() + 1 + value.len());
    m.extend_from_slice(key.as_bytes());
    m.push(0);
    m.extend_from_slice(value);
    m
}

impl Cache {
    /// `Some(url)` → Redis (`redis://host:port/db`, `rediss://` for TLS, a
    /// password in the URL) through a [`ConnectionManager`] that reconnects
    /// automatically; the initial connection must succeed or this returns
    /// [`StoreError::Cache`]. `None` → in-process cache with default limits.
    pub async fn connect(redis_url: Option<&str>) -> Result<Cache, StoreError> {
        match redis_url {
            None => Ok(Cache::memory(
                DEFAULT_MEMORY_MAX_ENTRIES,
                DEFAULT_MEMORY_MAX_BYTES,
            )),
            Some(url) => {
                let client = redis::Client::open(url).map_err(StoreError::Cache)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_millis(500))
                    .set_response_timeout(Duration::from_millis(500))
                    // Fail fast: one retry after 100 ms for each reconnect; the
                    // breaker keeps an outage from costing every call.
                    .set_number_of_retries(1)
                    .set_factor(2)
                    .set_max_delay(100);
                let mut manager = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(StoreError::Cache)?;
                let _: String = redis::cmd("PING")
                    .query_async(&mut manager)
                    .await
                    .map_err(StoreError::Cache)?;
                Ok(Cache {
                    inner: Inner::Redis(manager),
                    integrity: None,
                    breaker: Arc::new(Breaker::new()),
                })
            }
        }
    }

    /// In-process cache holding at most `max_entries` entries and
    /// `max_bytes` value bytes; when full, entries closest to expiry are
    /// evicted first (expired ones always go first).
    pub fn memory(max_entries: usize, max_bytes: usize) -> Cache {
        Cache {
            inner: Inner::Memory(Arc::new(Mutex::new(MemoryCache::new(
                max_entries.max(1),
                max_bytes,
            )))),
            integrity: None,
            breaker: Arc::new(Breaker::new()),
        }
    }

    /// Tags every value written with HMAC-SHA256 under `key` (≥ 32 bytes of
    /// secret) and treats every value read without a valid tag as a miss.
    pub fn with_integrity(mut self, key: &[u8]) -> Cache {
        self.integrity = Some(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, key)));
        self
    }

    /// `"redis"` or `"memory"`.
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Inner::Redis(_) => "redis",
            Inner::Memory(_) => "memory",
        }
    }

    /// Checks that the cache answers within `timeout` (always true for the
    /// in-process cache). A success closes the breaker.
    ///
    /// # Errors
    /// [`StoreError::Cache`] when Redis fails or does not answer in time.
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        let Inner::Redis(m) = &self.inner else {
            return Ok(());
        };
        let mut m = m.clone();
        let r = tokio::time::timeout(timeout, async move {
            let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut m).await;
            r
        })
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "PING timed out",
            )))
        });
        self.breaker.record(r.as_ref().map(|_| ()));
        r.map(|_| ()).map_err(StoreError::Cache)
    }

    fn seal(&self, key: &str, value: &[u8]) -> Vec<u8> {
        match &self.integrity {
            None => value.to_vec(),
            Some(k) => {
                let tag = hmac::sign(k, &tag_input(key, value));
                let mut v = Vec::with_capacity(TAG_LEN + value.len());
                v.extend_from_slice(tag.as_ref());
                v.extend_from_slice(value);
                v
            }
        }
    }

    fn open(&self, key: &str, stored: Vec<u8>) -> Option<Vec<u8>> {
        let Some(k) = &self.integrity else {
            return Some(stored);
        };
        if stored.len() < TAG_LEN {
            tracing::warn!(key, "cache entry without an integrity tag; ignored");
            return None;
        }
        let (tag, value) = stored.split_at(TAG_LEN);
        match hmac::verify(k, &tag_input(key, value), tag) {
            Ok(()) => Some(value.to_vec()),
            Err(_) => {
                tracing::warn!(key, "cache entry with an invalid integrity tag; ignored");
                None
            }
        }
    }

    /// Value for `key`, or `None` on miss, expiry, Redis error, an open
    /// breaker, or (with integrity) a missing or invalid tag.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = namespaced(key);
        let stored = match &self.inner {
            Inner::Redis(m) => {
                if !self.breaker.allow() {
                    return None;
                }
                let mut m = m.clone();
                let r = m.get::<_, Option<Vec<u8>>>(&key).await;
                self.breaker.record(r.as_ref().map(|_| ()));
                r.ok().flatten()
            }
            Inner::Memory(c) => match c.lock() {
                Ok(mut c) => c.get(&key, Instant::now()),
                Err(_) => None,
            },
        }?;
        self.open(&key, stored)
    }

    /// Store `value` under `key` for `ttl` (rounded down to milliseconds; a
    /// TTL under 1 ms deletes the key). Errors are logged, not returned.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            self.delete(key).await;
            return;
        }
        let key = namespaced(key);
        let value = self.seal(&key, value);
        match &self.inner {
            Inner::Redis(m) => {
                if !self.breaker.allow() {
                    return;
                }
                let mut m = m.clone();
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut m)
                    .await;
                self.breaker.record(r.as_ref().map(|_| ()));
            }
            Inner::Memory(c) => {
                if let Ok(mut c) = c.lock() {
                    let now = Instant::now();
                    let expires = now
                        .checked_add(ttl)
                        .unwrap_or(now + Duration::from_secs(86_400 * 365));
                    c.set(key, value, expires, now);
                }
            }
        }
    }

    /// Remove `key`. Errors are logged, not returned.
    pub async fn delete(&self, key: &str) {
        let key = namespaced(key);
        match &self.inner {
            Inner::Redis(m) => {
                if !self.breaker.allow() {
                    return;
                }
                let mut m = m.clone();
                let r = m.del::<_, i64>(&key).await;
                self.breaker.record(r.as_ref().map(|_| ()));
            }
            Inner::Memory(c) => {
                if let Ok(mut c) = c.lock() {
                    c.remove(&key);
                }
            }
        }
    }
}

/// Bounded map with per-entry expiry. Eviction order: earliest expiry first.
struct MemoryCache {
    map: HashMap<String, MemEntry>,
    by_expiry: BTreeMap<(Instant, u64), String>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    counter: u64,
}

struct MemEntry {
    value: Vec<u8>,
    expires: Instant,
    id: u64,
}

impl MemoryCache {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            map: HashMap::new(),
            by_expiry: BTreeMap::new(),
            max_entries,
            max_bytes,
            bytes: 0,
            counter: 0,
        }
    }

    fn get(&mut self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let expired = match self.map.get(key) {
            None => return None,
            Some(e) => e.expires <= now,
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get(key).map(|e| e.value.clone())
    }

    fn set(&mut self, key: String, value: Vec<u8>, expires: Instant, now: Instant) {
        self.remove(&key);
        if value.len() > self.max_bytes {
            return;
        }
        // Drop everything already expired, then evict soonest-to-expire
        // entries until the new value fits.
        while let Some((&(exp, _), _)) = self.by_expiry.first_key_value() {
            let over =
                self.map.len() >= self.max_entries || self.bytes + value.len() > self.max_bytes;
            if exp > now && !over {
                break;
            }
            if let Some((_, k)) = self.by_expiry.pop_first() {
                if let Some(e) = self.map.remove(&k) {
                    self.bytes -= e.value.len();
                }
            }
        }
        self.counter += 1;
        let id = self.counter;
        self.bytes += value.len();
        self.by_expiry.insert((expires, id), key.clone());
        self.map.insert(key, MemEntry { value, expires, id });
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= e.value.len();
            self.by_expiry.remove(&(e.expires, e.id));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn redis_url() -> String {
        std::env::var("HALLMARK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    async fn exercise(cache: &Cache) {
        let k = format!("test:{}", uuid::Uuid::new_v4().simple());
        assert_eq!(cache.get(&k).await, None);
        cache.set(&k, b"hello", Duration::from_secs(30)).await;
        assert_eq!(cache.get(&k).await.as_deref(), Some(&b"hello"[..]));
        cache.set(&k, b"\x00\xffbin", Duration::from_secs(30)).await;
        assert_eq!(cache.get(&k).await.as_deref(), Some(&b"\x00\xffbin"[..]));
        cache.delete(&k).await;
        assert_eq!(cache.get(&k).await, None);

        let short = format!("{k}:short");
        cache.set(&short, b"x", Duration::from_millis(150)).await;
        assert_eq!(cache.get(&short).await.as_deref(), Some(&b"x"[..]));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.get(&short).await, None, "ttl must expire");

        cache.set(&k, b"v", Duration::ZERO).await;
        assert_eq!(cache.get(&k).await, None);
    }

    #[tokio::test]
    async fn redis_cache_set_get_ttl() {
        let cache = Cache::connect(Some(&redis_url())).await.unwrap();
        assert_eq!(cache.kind(), "redis");
        exercise(&cache).await;
        // Keys are namespaced.
        let k = format!("ns:{}", uuid::Uuid::new_v4().simple());
        cache.set(&k, b"1", Duration::from_secs(10)).await;
        let client = redis::Client::open(redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let raw: Option<Vec<u8>> = conn.get(format!("hallmark:{k}")).await.unwrap();
        assert_eq!(raw.as_deref(), Some(&b"1"[..]));
        let ttl: i64 = conn.pttl(format!("hallmark:{k}")).await.unwrap();
        assert!(ttl > 0 && ttl <= 10_000, "{ttl}");
        cache.delete(&k).await;

        // A Redis error on GET (here: WRONGTYPE) degrades to a miss.
        let wrong = format!("wrongtype:{}", uuid::Uuid::new_v4().simple());
        let _: i64 = conn.lpush(format!("hallmark:{wrong}"), "x").await.unwrap();
        assert_eq!(cache.get(&wrong).await, None);
        cache.delete(&wrong).await;
    }

    #[tokio::test]
    async fn values_without_a_valid_tag_are_misses() {
        let secret = [7u8; 32];
        for plain in [
            Cache::connect(Some(&redis_url())).await.unwrap(),
            Cache::memory(100, 1 << 20),
        ] {
            let sealed = plain.clone().with_integrity(&secret);
            exercise(&sealed).await;
            let k = format!("poison:{}", uuid::Uuid::new_v4().simple());
            // An entry written without the key (a poisoned Redis) is a miss.
            plain
                .set(&k, b"{\"forged\":true}", Duration::from_secs(30))
                .await;
            assert_eq!(sealed.get(&k).await, None);
            // As is a tagged entry moved to another name, or tagged under another key.
            sealed.set(&k, b"genuine", Duration::from_secs(30)).await;
            assert_eq!(sealed.get(&k).await.as_deref(), Some(&b"genuine"[..]));
            let raw = plain.get(&k).await.unwrap();
            assert_eq!(raw.len(), TAG_LEN + 7);
            let other = format!("{k}:moved");
            plain.set(&other, &raw, Duration::from_secs(30)).await;
            assert_eq!(sealed.get(&other).await, None);
            let foreign = plain.clone().with_integrity(&[8u8; 32]);
            assert_eq!(foreign.get(&k).await, None);
            // A flipped bit in the value.
            let mut flipped = raw.clone();
            flipped[TAG_LEN] ^= 1;
            plain.set(&k, &flipped, Duration::from_secs(30)).await;
            assert_eq!(sealed.get(&k).await, None);
            plain.delete(&k).await;
            plain.delete(&other).await;
        }
    }

    #[tokio::test]
    async fn redis_connect_error() {
        let r = Cache::connect(Some("redis://127.0.0.1:1")).await;
        assert!(matches!(r, Err(StoreError::Cache(_))), "{r:?}");
        let r = Cache::connect(Some("not a url")).await;
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn memory_cache_set_get_ttl() {
        let cache = Cache::connect(None).await.unwrap();
        assert_eq!(cache.kind(), "memory");
        exercise(&cache).await;
    }

    #[tokio::test]
    async fn memory_cache_is_bounded() {
        let cache = Cache::memory(3, 1024);
        for i in 0..10u64 {
            cache
                .set(&format!("k{i}"), b"v", Duration::from_secs(100 + i))
                .await;
        }
        let mut present = 0;
        for i in 0..10u64 {
            if cache.get(&format!("k{i}")).await.is_some() {
                present += 1;
            }
        }
        assert_eq!(present, 3);
        // the longest-lived survive
        assert!(cache.get("k9").await.is_some());

        // byte cap
        let cache = Cache::memory(100, 10);
        cache.set("a", b"123456", Duration::from_secs(10)).await;
        cache.set("b", b"123456", Duration::from_secs(20)).await;
        assert!(cache.get("a").await.is_none());
        assert!(cache.get("b").await.is_some());
        cache.set("huge", &[0u8; 11], Duration::from_secs(10)).await;
        assert!(cache.get("huge").await.is_none());
        assert!(cache.get("b").await.is_some());
    }

    #[test]
    fn memory_cache_internal_accounting() {
        let mut c = MemoryCache::new(2, 100);
        let now = Instant::now();
        c.set("a".into(), vec![1; 10], now + Duration::from_secs(5), now);
        c.set("a".into(), vec![1; 20], now + Duration::from_secs(5), now);
        assert_eq!(c.bytes, 20);
        assert_eq!(c.by_expiry.len(), 1);
        c.set("b".into(), vec![1; 5], now + Duration::from_millis(1), now);
        assert_eq!(c.get("b", now + Duration::from_secs(1)), None);
        assert_eq!(c.bytes, 20);
        assert_eq!(c.map.len(), c.by_expiry.len());
    }
}
