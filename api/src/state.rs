//! Start-up: everything a Hallmark instance needs, built once from [`Settings`] and shared.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hallmark_detectors::{DetectorPool, DetectorPoolConfig, ExecutionProvider};
use hallmark_generators::{GeneratorConfig, GeneratorRegistry};
use hallmark_provenance::{SigningIdentity, TrustConfig};
use hallmark_store::{AuditLog, AuditLogConfig, Cache, Store};
use hallmark_watermark::WatermarkKey;
use tokio::sync::Semaphore;

use crate::settings::Settings;
use crate::worker::{PoolConfig, WorkerPool};

/// Shared state of a running instance (HTTP server or CLI command).
#[derive(Clone)]
pub struct AppState {
    /// Settings in effect.
    pub settings: Arc<Settings>,
    /// Database.
    pub store: Store,
    /// The audit log (sequencer, proofs, verification).
    pub audit: AuditLog,
    /// Cache (Redis or in-process).
    pub cache: Cache,
    /// Signing identity (configured or development).
    pub identity: Arc<SigningIdentity>,
    /// The identity is the generated development one.
    pub identity_is_dev: bool,
    /// Watermark key.
    pub watermark_key: Arc<WatermarkKey>,
    /// Detector pool (`None` when disabled).
    pub detectors: Option<DetectorPool>,
    /// Generator models (`None` when disabled).
    pub generators: Option<GeneratorRegistry>,
    /// C2PA trust configuration.
    pub trust: Arc<TrustConfig>,
    /// Bounds concurrent sign/verify jobs.
    pub jobs: Arc<Semaphore>,
    /// Worker processes that parse untrusted bytes (decoding, C2PA validation).
    pub workers: WorkerPool,
    /// Fingerprint of the analysis configuration (models, key, trust), part of cache keys.
    pub analysis_fingerprint: String,
    /// Request rate limits (per key and route; failed authentication per address).
    pub limits: Arc<crate::ratelimit::RateLimits>,
    /// When each key's last use was last written.
    pub key_usage: Arc<crate::auth::KeyUsage>,
    /// Memory budget and limits for request bodies.
    pub uploads: Arc<crate::upload_budget::UploadBudget>,
    /// Moderator console sessions and previews.
    pub console: Arc<crate::console::ConsoleState>,
}

fn read_opt(path: &str) -> anyhow::Result<Option<String>> {
    if path.trim().is_empty() {
        return Ok(None);
    }
    std::fs::read_to_string(path)
        .map(Some)
        .with_context(|| format!("reading {path}"))
}

/// Loads the watermark key from `watermark.key`, or from (generating if needed)
/// `<data_dir>/watermark.key`. Returns the key and a digest identifying it.
///
/// # Errors
/// Unreadable or non-hex key material, or a key shorter than 16 bytes.
pub fn load_watermark_key(settings: &Settings) -> anyhow::Result<(WatermarkKey, Vec<u8>)> {
    let hex_key = if settings.watermark.key.trim().is_empty() {
        let path = settings.storage.data_dir.join("watermark.key");
        if !path.exists() {
            use ring::rand::SecureRandom;
            let mut secret = [0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut secret)
                .map_err(|_| anyhow::anyhow!("system RNG unavailable"))?;
            if crate::tools::create_private(&path, hex::encode(secret).as_bytes())? {
                tracing::warn!(path = %path.display(), "generated a new watermark key; back it up: marks made with it can only be read with it");
            }
        }
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
    } else {
        settings.watermark.key.clone()
    };
    let secret = hex::decode(hex_key.trim()).context("watermark.key must be hex")?;
    let key =
        WatermarkKey::from_secret(&secret).map_err(|e| anyhow::anyhow!("watermark key: {e}"))?;
    let id = ring::digest::digest(&ring::digest::SHA256, &secret);
    Ok((key, id.as_ref().to_vec()))
}

/// Takes an exclusive lock on `<data_dir>/.hallmark.lock` (released when the returned file is
/// dropped, or by the kernel when the process dies).
async fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join(".hallmark.lock");
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        f.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(f)
    })
    .await?
}

/// What an instance signing with its generated development identity is told.
pub const DEV_IDENTITY_WARNING: &str = "signing with a generated DEVELOPMENT certificate: its signatures validate but are untrusted outside this instance; configure signing.chain_path/key_path for production";

fn load_identity(settings: &Settings) -> anyhow::Result<(SigningIdentity, bool, Option<String>)> {
    let s = &settings.signing;
    // RFC 3161 time-stamping: Hallmark's signer posts to the TSA itself (plain HTTP, bounded
    // by signing.tsa_timeout_seconds); the validator never goes to the network.
    let tsa = Some(s.tsa_url.trim().to_owned()).filter(|u| !u.is_empty());
    let tsa_timeout = std::time::Duration::from_secs(s.tsa_timeout_seconds.clamp(1, 300));
    if !s.chain_path.trim().is_empty() || !s.key_path.trim().is_empty() {
        let id = SigningIdentity::from_pem_files(Path::new(&s.chain_path), Path::new(&s.key_path))
            .context(
                "loading the configured signing identity (signing.chain_path, signing.key_path)",
            )?;
        let id = id
            .with_time_authority(tsa, tsa_timeout)
            .context("signing.tsa_url")?;
        return Ok((id, false, None));
    }
    let dir = settings.storage.data_dir.join("signing");
    let fresh = !dir.join("signing-chain.pem").exists();
    let paths = hallmark_provenance::generate_dev_identity(&dir, &s.dev_organization)
        .context("generating the development signing identity")?;
    let id = SigningIdentity::from_pem_files(&paths.chain, &paths.key)?;
    // Warned once per data directory (when generated) and on every `serve` (server.rs); other
    // commands stay quiet about it.
    if fresh {
        tracing::warn!(ca = %paths.ca_cert.display(), "{DEV_IDENTITY_WARNING}");
    } else {
        tracing::debug!(ca = %paths.ca_cert.display(), "{DEV_IDENTITY_WARNING}");
    }
    let ca = std::fs::read_to_string(&paths.ca_cert).ok();
    let id = id
        .with_time_authority(tsa, tsa_timeout)
        .context("signing.tsa_url")?;
    Ok((id, true, ca))
}

impl AppState {
    /// Builds the state: creates the data directory, connects and migrates the database,
    /// connects the cache, loads or generates the signing identity and watermark key, and
    /// loads the detector pool.
    ///
    /// # Errors
    /// Any start-up failure, with context naming the setting involved.
    pub async fn init(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.storage.data_dir).with_context(|| {
            format!(
                "creating data dir {} (storage.data_dir: HALLMARK__STORAGE__DATA_DIR)",
                settings.storage.data_dir.display()
            )
        })?;
        tracing::info!(data_dir = %settings.storage.data_dir.display(), "instance data");
        let store = Store::connect(&settings.database_url())
            .await
            .context("connecting the database")?;
        let redis = Some(settings.storage.redis_url.as_str()).filter(|u| !u.trim().is_empty());
        let cache = Cache::connect(redis)
            .await
            .context("connecting the cache")?;
        // Key material generated on first start (development identity, watermark key, audit
        // log key) is created under an exclusive lock on the data directory: instances
        // starting together on one directory generate it once and all use the same.
        let dir_lock = lock_data_dir(&settings.storage.data_dir).await?;
        let (identity, identity_is_dev, dev_ca) = load_identity(&settings)?;
        let (watermark_key, key_id) = load_watermark_key(&settings)?;
        let log_key = crate::service::audit::load_log_key(&settings).context("audit log key")?;
        drop(dir_lock);
        // Cache entries carry an HMAC under a key derived from the watermark secret (via its
        // SHA-256, never stored or shown): instances that share Redis share the watermark key,
        // and so read each other's entries; nobody else can write one they accept.
        let cache_key = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_id),
            b"hallmark cache integrity v1",
        );
        let cache = cache.with_integrity(cache_key.as_ref());
        let audit = AuditLog::start(
            store.clone(),
            log_key,
            AuditLogConfig {
                batch_max_entries: settings.audit.batch_max_entries,
                ..AuditLogConfig::default()
            },
        )
        .await
        .context("starting the audit log")?;

        let mut anchors = read_opt(&settings.c2pa.trust_anchors)?;
        if settings.c2pa.trust_own_dev_ca {
            if let Some(ca) = dev_ca {
                anchors = Some(anchors.unwrap_or_default() + &ca);
            }
        }
        let trust = TrustConfig {
            trust_anchors_pem: anchors,
            allowed_list_pem: read_opt(&settings.c2pa.allowed_list)?,
            allowed_ekus: read_opt(&settings.c2pa.allowed_ekus)?,
            blocked_list_pem: match read_opt(&settings.c2pa.blocked_list)
                .context("c2pa.blocked_list")?
            {
                Some(pem) => {
                    let n = hallmark_provenance::check_blocked_list(&pem).with_context(|| {
                        format!("c2pa.blocked_list ({})", settings.c2pa.blocked_list)
                    })?;
                    tracing::info!(certificates = n, "blocked signer list loaded");
                    Some(pem)
                }
                None => None,
            },
        };

        settings.check_model_paths(settings.detectors.enabled, settings.generators.enabled)?;
        if settings.detectors.enabled || settings.generators.enabled {
            tracing::info!(
                detectors = %settings.detectors.registry.display(),
                generators = %settings.generators.registry.display(),
                onnxruntime = %settings.detectors.onnxruntime.display(),
                "model registries"
            );
        }
        let detectors = if settings.detectors.enabled {
            let d = &settings.detectors;
            let provider = match d.provider.as_str() {
                "cuda" => ExecutionProvider::Cuda {
                    device_id: d.cuda_device,
                },
                _ => ExecutionProvider::Cpu,
            };
            let cfg = DetectorPoolConfig {
                registry_path: d.registry.clone(),
                onnxruntime_path: d.onnxruntime.clone(),
                queue_capacity: d.queue_capacity,
                intra_threads: d.intra_threads,
                execution_provider: provider,
                timeout: Duration::from_secs(d.timeout_seconds),
                max_batch: d.max_batch,
                max_wait: Duration::from_millis(d.max_wait_ms),
            };
            let pool = tokio::task::spawn_blocking(move || DetectorPool::load(&cfg))
                .await?
                .with_context(|| {
                    format!(
                        "loading the detector pool from {} (HALLMARK__DETECTORS__REGISTRY; or set HALLMARK__DETECTORS__ENABLED=false)",
                        settings.detectors.registry.display()
                    )
                })?;
            Some(pool)
        } else {
            tracing::info!("detectors disabled: reports will carry no detector scores");
            None
        };

        let generators = if settings.generators.enabled {
            let cfg = GeneratorConfig {
                registry_path: settings.generators.registry.clone(),
                onnxruntime_path: settings.detectors.onnxruntime.clone(),
            };
            let reg = tokio::task::spawn_blocking(move || GeneratorRegistry::load(&cfg))
                .await?
                .with_context(|| {
                    format!(
                        "loading the generator registry {} (HALLMARK__GENERATORS__REGISTRY; or set HALLMARK__GENERATORS__ENABLED=false)",
                        settings.generators.registry.display()
                    )
                })?;
            Some(reg)
        } else {
            None
        };

        let mut fp = ring::digest::Context::new(&ring::digest::SHA256);
        fp.update(&key_id);
        fp.update(serde_json::to_string(&trust)?.as_bytes());
        if let Some(p) = &detectors {
            for m in p.models() {
                fp.update(m.sha256.as_bytes());
                fp.update(serde_json::to_string(&m.calibration)?.as_bytes());
            }
        }
        let analysis_fingerprint = hex::encode(&fp.finish().as_ref()[..8]);

        let trust = Arc::new(trust);
        let w = &settings.workers;
        let count = match w.count {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            n => n,
        };
        // Largest decoded reply: max_pixels × 16 bytes (4 channels × f32), or the longest
        // accepted audio at 768 kHz over every channel.
        let l = settings.media_limits();
        let max_audio =
            (l.max_audio_seconds.max(0.0) * 768_000.0) as u64 * l.max_channels as u64 * 4;
        let workers = WorkerPool::new(PoolConfig {
            exe: crate::worker::own_executable()
                .context("locating the executable for media workers")?,
            workers: count,
            queue: w.queue,
            max_jobs_per_worker: w.max_jobs.max(1),
            max_reply_bytes: l.max_pixels.saturating_mul(16).max(max_audio),
            trust: trust.clone(),
        });

        Ok(Self {
            jobs: Arc::new(Semaphore::new(settings.server.max_concurrent_jobs.max(1))),
            limits: Arc::new(crate::ratelimit::RateLimits::new(&settings.rate_limits)),
            key_usage: Arc::new(crate::auth::KeyUsage::default()),
            uploads: Arc::new(crate::upload_budget::UploadBudget::new(&settings.server)),
            console: Arc::new(crate::console::ConsoleState::new(&settings.console)),
            settings: Arc::new(settings),
            store,
            audit,
            cache,
            identity: Arc::new(identity),
            identity_is_dev,
            watermark_key: Arc::new(watermark_key),
            detectors,
            generators,
            trust,
            workers,
            analysis_fingerprint,
        })
    }
}
