//! Byte cache: Redis when configured, otherwise a bounded in-process map.
//!
//! All keys are namespaced with [`KEY_PREFIX`]. After a successful
//! [`Cache::connect`], cache operations never fail: Redis errors are logged
//! as warnings and treated as a miss / no-op, so a cache outage degrades
//! performance, not availability.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use crate::error::StoreError;

/// Prefix prepended to every key.
pub const KEY_PREFIX: &str = "hallmark:";

/// Default maximum number of entries of the in-process cache.
pub const DEFAULT_MEMORY_MAX_ENTRIES: usize = 10_000;
/// Default maximum total value bytes of the in-process cache (64 MiB).
pub const DEFAULT_MEMORY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Cache handle. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Redis(ConnectionManager),
    Memory(Arc<Mutex<MemoryCache>>),
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

fn namespaced(key: &str) -> String {
    format!("{KEY_PREFIX}{key}")
}

impl Cache {
    /// `Some(url)` → Redis (`redis://host:port/db`) through a
    /// [`ConnectionManager`] that reconnects automatically; the initial
    /// connection must succeed or this returns [`StoreError::Cache`].
    /// `None` → in-process cache with default limits.
    pub async fn connect(redis_url: Option<&str>) -> Result<Cache, StoreError> {
        match redis_url {
            None => Ok(Cache::memory(
                DEFAULT_MEMORY_MAX_ENTRIES,
                DEFAULT_MEMORY_MAX_BYTES,
            )),
            Some(url) => {
                let client = redis::Client::open(url).map_err(StoreError::Cache)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_secs(3))
                    .set_response_timeout(Duration::from_secs(2))
                    // Fail fast: at most ~1 s of retries (backoff capped at
                    // 500 ms) for the initial connect and each reconnect.
                    .set_number_of_retries(2)
                    .set_factor(2)
                    .set_max_delay(500);
                let mut manager = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(StoreError::Cache)?;
                let _: String = redis::cmd("PING")
                    .query_async(&mut manager)
                    .await
                    .map_err(StoreError::Cache)?;
                Ok(Cache {
                    inner: Inner::Redis(manager),
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
        }
    }

    /// `"redis"` or `"memory"`.
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Inner::Redis(_) => "redis",
            Inner::Memory(_) => "memory",
        }
    }

    /// Value for `key`, or `None` on miss, expiry or Redis error.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = namespaced(key);
        match &self.inner {
            Inner::Redis(m) => {
                let mut m = m.clone();
                match m.get::<_, Option<Vec<u8>>>(&key).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, key, "redis GET failed; treating as cache miss");
                        None
                    }
                }
            }
            Inner::Memory(c) => match c.lock() {
                Ok(mut c) => c.get(&key, Instant::now()),
                Err(_) => None,
            },
        }
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
        match &self.inner {
            Inner::Redis(m) => {
                let mut m = m.clone();
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut m)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, key, "redis SET failed; value not cached");
                }
            }
            Inner::Memory(c) => {
                if let Ok(mut c) = c.lock() {
                    let now = Instant::now();
                    let expires = now
                        .checked_add(ttl)
                        .unwrap_or(now + Duration::from_secs(86_400 * 365));
                    c.set(key, value.to_vec(), expires, now);
                }
            }
        }
    }

    /// Remove `key`. Errors are logged, not returned.
    pub async fn delete(&self, key: &str) {
        let key = namespaced(key);
        match &self.inner {
            Inner::Redis(m) => {
                let mut m = m.clone();
                if let Err(e) = m.del::<_, i64>(&key).await {
                    tracing::warn!(error = %e, key, "redis DEL failed");
                }
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
