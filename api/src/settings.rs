//! Typed settings: embedded defaults → `hallmark.toml` (or `--config`) → environment
//! (`HALLMARK__SECTION__KEY`, plus the conventional `DATABASE_URL`, `REDIS_URL`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Embedded defaults; every key is documented in README.md.
pub const DEFAULTS: &str = include_str!("../hallmark.default.toml");

/// All settings of a Hallmark instance.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// HTTP server.
    pub server: ServerSettings,
    /// Databases and cache.
    pub storage: StorageSettings,
    /// Signing identity.
    pub signing: SigningSettings,
    /// Watermark key.
    pub watermark: WatermarkSettings,
    /// C2PA validation.
    pub c2pa: C2paSettings,
    /// Worker processes for untrusted bytes.
    pub workers: WorkerSettings,
    /// ONNX detector pool.
    pub detectors: DetectorSettings,
    /// ONNX generator models.
    pub generators: GeneratorSettings,
    /// Decoding limits.
    pub limits: LimitSettings,
    /// The audit log (transparency log) and its signing key.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Per-key, per-route request rates and the failed-authentication limit.
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    /// Prometheus `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// The moderator console at `/console`.
    #[serde(default)]
    pub console: ConsoleSettings,
    /// Which of the located paths were set explicitly (for error messages).
    #[serde(skip)]
    pub explicit: ExplicitPaths,
}

/// Which file settings were given explicitly rather than located (see [`crate::paths`]).
#[derive(Debug, Clone, Default)]
pub struct ExplicitPaths {
    /// `detectors.registry` was set.
    pub detector_registry: bool,
    /// `generators.registry` was set.
    pub generator_registry: bool,
    /// `detectors.onnxruntime` (or `ORT_DYLIB_PATH`) was set.
    pub onnxruntime: bool,
}

/// `[rate_limits]`: token buckets (GCRA, the `governor` crate) per API key and route, and per
/// client address for failed authentication. A refused request gets 429 `rate_limited` with
/// `Retry-After`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Sustained requests per second each key may make to each route; 0 = no limit.
    pub per_second: f64,
    /// Requests a key may make at once to one route (bucket size).
    pub burst: u32,
    /// Per-route overrides by route pattern (e.g. `"/v1/verify"`, `"/v1/keys/{id}/revoke"`).
    pub routes: std::collections::BTreeMap<String, RouteLimit>,
    /// Failed authentications (unknown, revoked or expired key) per client address and
    /// minute before that address gets 429 without a database lookup; 0 = no limit.
    pub failed_auth_per_minute: u32,
    /// Failed authentications an address may make at once.
    pub failed_auth_burst: u32,
}

/// One route's quota.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RouteLimit {
    /// Sustained requests per second per key; 0 = no limit.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_second: 0.0,
            burst: 20,
            routes: std::collections::BTreeMap::new(),
            failed_auth_per_minute: 30,
            failed_auth_burst: 20,
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` (Prometheus text format).
    pub enabled: bool,
    /// When set, scrapes must send `Authorization: Bearer <token>`.
    pub token: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            token: String::new(),
        }
    }
}

/// `[console]`: the moderator console (`/console`, see docs/CONSOLE.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsoleSettings {
    /// Serve the console.
    pub enabled: bool,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// A session ends this many hours after sign-in, used or not.
    pub session_max_hours: u64,
    /// Media uploaded through the console is kept in memory for the report page's preview
    /// this many minutes (0 = never kept).
    pub preview_minutes: u64,
    /// Most MiB of previews held (the oldest go first).
    pub preview_max_mb: usize,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            session_idle_minutes: 30,
            session_max_hours: 12,
            preview_minutes: 60,
            preview_max_mb: 256,
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuditSettings {
    /// File holding the log's Ed25519 note signer key (`PRIVATE+KEY+…`). Empty =
    /// `<data_dir>/audit-log.key`, generated on first start. Keep it outside the database.
    pub key_path: String,
    /// Origin (and key name) of a key generated on first start; empty =
    /// `hallmark.local/audit-<8 random hex>`. Must match an existing key's name.
    pub origin: String,
    /// Most entries per batch / checkpoint (1–1000).
    pub batch_max_entries: usize,
    /// Record API key creation, revocation and rotation as log entries (`key.*`).
    pub key_events: bool,
    /// Record the running policy (trust lists, signing certificate, detector models and
    /// thresholds, generator registry) as a `settings.changed` entry when an instance starts
    /// with a policy different from the last one logged.
    pub settings_events: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            key_path: String::new(),
            origin: String::new(),
            batch_max_entries: 256,
            key_events: true,
            settings_events: true,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Bind address.
    pub host: String,
    /// Port; 0 picks a free one (the bound address is printed).
    pub port: u16,
    /// HTTP worker threads (0 = number of CPUs).
    pub workers: usize,
    /// Largest accepted upload in bytes (413 beyond).
    pub max_upload_bytes: usize,
    /// Most sign/verify jobs processed at once; more wait, then get 503 `overloaded`. With
    /// `limits.max_pixels`, this bounds memory: budget ~25 bytes per pixel per job.
    pub max_concurrent_jobs: usize,
    /// Seconds a client has to send its whole request body (408 beyond).
    pub upload_timeout_seconds: u64,
    /// Request-body bytes all requests together may hold in memory (0 = unlimited); a body
    /// that would overdraw it gets 503 `overloaded` with `Retry-After`.
    pub upload_budget_bytes: usize,
    /// Uploads (sign, verify, by-content lookups) one key may send at once (0 = unlimited);
    /// more get 429 `rate_limited`.
    pub max_uploads_per_key: usize,
    /// Slowest accepted body after the grace period, in bytes per second (0 = none); a
    /// slower body is cut off with 408 `request_timeout`.
    pub min_upload_bytes_per_second: u64,
    /// Seconds a body may take before `min_upload_bytes_per_second` applies.
    pub upload_rate_grace_seconds: u64,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
pub struct StorageSettings {
    /// Directory for the embedded database, generated keys and certificates. Empty = the
    /// per-user directory (`$XDG_DATA_HOME/hallmark` or `~/.local/share/hallmark`).
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; empty = SQLite file `hallmark.db` in `data_dir`.
    /// `DATABASE_URL` overrides it.
    pub database_url: String,
    /// `redis://…`; empty = in-process cache. `REDIS_URL` overrides it.
    pub redis_url: String,
    /// Seconds an analysed file's result stays in the cache.
    pub cache_ttl_seconds: u64,
}

/// `[signing]`
#[derive(Debug, Clone, Deserialize)]
pub struct SigningSettings {
    /// PEM certificate chain (leaf first). Empty = generated development identity.
    pub chain_path: String,
    /// PKCS#8 PEM private key matching the chain's leaf.
    pub key_path: String,
    /// Organization (O=) of a generated development identity.
    pub dev_organization: String,
    /// RFC 3161 time-stamp authority URL (`http://…`); empty = no time-stamp.
    pub tsa_url: String,
    /// How long one time-stamp request may take (seconds, 1–300).
    pub tsa_timeout_seconds: u64,
    /// JPEG quality of signed JPEG output (1–100).
    pub jpeg_quality: u8,
    /// MP3 bitrate of signed MP3 output (kbit/s).
    pub mp3_kbps: u32,
    /// AAC bitrate of signed M4A output (kbit/s).
    pub aac_kbps: u32,
    /// The ffmpeg executable that encodes signed M4A output (AAC).
    pub ffmpeg: String,
}

/// `[watermark]`
#[derive(Debug, Clone, Deserialize)]
pub struct WatermarkSettings {
    /// Hex-encoded secret (≥ 16 bytes). Empty = generated into `data_dir/watermark.key`.
    pub key: String,
}

/// `[c2pa]`
#[derive(Debug, Clone, Deserialize)]
pub struct C2paSettings {
    /// PEM bundle of trust anchors; empty = none (best state `Valid`).
    pub trust_anchors: String,
    /// PEM bundle of individually trusted signing certificates.
    pub allowed_list: String,
    /// File of allowed EKU OIDs (c2pa-rs `store.cfg` format).
    pub allowed_ekus: String,
    /// PEM bundle of blocked certificates (leaf or issuer): manifests they signed are `Invalid`.
    pub blocked_list: String,
    /// Trust this instance's own development CA (so its signatures report `Trusted` here).
    pub trust_own_dev_ca: bool,
    /// Validate uploads in a child process with time and memory limits.
    pub sandbox: bool,
    /// Wall-clock limit of one validation, seconds.
    pub timeout_seconds: u64,
    /// Address-space limit of the validation child, MiB.
    pub memory_limit_mb: u64,
}

/// `[detectors]`
/// `[workers]`: the pool of processes that parse untrusted bytes.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    /// Worker processes (0: one per CPU, at least 2).
    pub count: usize,
    /// Jobs that may wait beyond the running ones before 503 `overloaded`.
    pub queue: usize,
    /// Address-space limit of a decode job, MiB.
    pub memory_limit_mb: u64,
    /// Wall-clock deadline of a decode job, seconds.
    pub timeout_seconds: u64,
    /// Jobs a worker serves before it is replaced.
    pub max_jobs: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DetectorSettings {
    /// Run the detector pool at all.
    pub enabled: bool,
    /// Model registry file. Empty = located (see [`crate::paths`]).
    pub registry: PathBuf,
    /// Path of `libonnxruntime.so`; `ORT_DYLIB_PATH` overrides it. Empty = located.
    pub onnxruntime: PathBuf,
    /// `cpu` or `cuda`.
    pub provider: String,
    /// CUDA device id.
    pub cuda_device: i32,
    /// Bounded queue per model; full → 503 `overloaded`.
    pub queue_capacity: usize,
    /// ONNX Runtime intra-op threads per model.
    pub intra_threads: usize,
    /// Seconds before an inference request times out.
    pub timeout_seconds: u64,
    /// Most input rows (image crops, audio windows) per inference batch.
    pub max_batch: usize,
    /// Longest a batch waits for more requests after its first one, milliseconds.
    pub max_wait_ms: u64,
}

/// `[generators]`
#[derive(Debug, Clone, Deserialize)]
pub struct GeneratorSettings {
    /// Serve `POST /v1/generate` from the registered generator models.
    pub enabled: bool,
    /// Generator registry file. Empty = located (see [`crate::paths`]).
    pub registry: PathBuf,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Largest image area, pixels.
    pub max_pixels: u64,
    /// Largest image side, pixels.
    pub max_dimension: u32,
    /// Longest audio, seconds.
    pub max_audio_seconds: f64,
    /// Most audio channels.
    pub max_channels: usize,
}

impl Settings {
    /// Loads defaults, then `config_file` (or `./hallmark.toml` if present), then environment.
    ///
    /// # Errors
    /// A `config::ConfigError` naming the bad key or file.
    pub fn load(config_file: Option<&Path>) -> Result<Self, config::ConfigError> {
        let mut b = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        match config_file {
            Some(p) => b = b.add_source(config::File::from(p).required(true)),
            None => b = b.add_source(config::File::with_name("hallmark.toml").required(false)),
        }
        b = b.add_source(
            config::Environment::with_prefix("HALLMARK")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.is_empty() {
                b = b.set_override("storage.database_url", url)?;
            }
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            if !url.is_empty() {
                b = b.set_override("storage.redis_url", url)?;
            }
        }
        if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
            if !p.is_empty() {
                b = b.set_override("detectors.onnxruntime", p)?;
            }
        }
        let mut s: Self = b.build()?.try_deserialize()?;
        s.locate_paths()
            .map_err(|e| config::ConfigError::Message(e.to_string()))?;
        Ok(s)
    }

    /// Fills the empty path settings from [`crate::paths`]: never from the working directory.
    ///
    /// # Errors
    /// No per-user data directory can be determined (names `HALLMARK__STORAGE__DATA_DIR`).
    pub fn locate_paths(&mut self) -> anyhow::Result<()> {
        use crate::paths::{default_data_dir, Resource};
        if self.storage.data_dir.as_os_str().is_empty() {
            self.storage.data_dir = default_data_dir()?;
        }
        let fill = |p: &mut PathBuf, r: Resource| {
            let explicit = !p.as_os_str().is_empty();
            if !explicit {
                *p = r.locate();
            }
            explicit
        };
        self.explicit = ExplicitPaths {
            detector_registry: fill(&mut self.detectors.registry, Resource::DetectorRegistry),
            generator_registry: fill(&mut self.generators.registry, Resource::GeneratorRegistry),
            onnxruntime: fill(&mut self.detectors.onnxruntime, Resource::OnnxRuntime),
        };
        Ok(())
    }

    /// Checks that the files the enabled detectors / generators need exist, before loading
    /// them, so that the error names the setting to change.
    ///
    /// # Errors
    /// The first missing file, with its setting.
    pub fn check_model_paths(&self, detectors: bool, generators: bool) -> anyhow::Result<()> {
        use crate::paths::Resource;
        let e = &self.explicit;
        if detectors {
            Resource::DetectorRegistry.check(&self.detectors.registry, e.detector_registry)?;
        }
        if generators {
            Resource::GeneratorRegistry.check(&self.generators.registry, e.generator_registry)?;
        }
        if detectors || generators {
            Resource::OnnxRuntime.check(&self.detectors.onnxruntime, e.onnxruntime)?;
        }
        Ok(())
    }

    /// The database URL in effect (SQLite file under `data_dir` when none is configured).
    pub fn database_url(&self) -> String {
        if self.storage.database_url.trim().is_empty() {
            format!(
                "sqlite://{}",
                self.storage.data_dir.join("hallmark.db").display()
            )
        } else {
            self.storage.database_url.clone()
        }
    }

    /// Media decoding limits.
    pub fn media_limits(&self) -> hallmark_media::Limits {
        hallmark_media::Limits {
            max_bytes: self.server.max_upload_bytes,
            max_pixels: self.limits.max_pixels,
            max_dimension: self.limits.max_dimension,
            max_audio_seconds: self.limits.max_audio_seconds,
            max_channels: self.limits.max_channels,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let s: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(s.server.max_upload_bytes, 64 * 1024 * 1024);
        assert!(s.database_url().starts_with("sqlite://"));
        assert!(s.detectors.enabled);
        // Paths are located, never defaulted to the working directory.
        assert!(s.storage.data_dir.as_os_str().is_empty());
        assert!(s.detectors.registry.as_os_str().is_empty());
        assert_eq!(s.rate_limits.per_second, 0.0);
        assert!(s.rate_limits.failed_auth_per_minute > 0);
        assert!(s.metrics.enabled);
    }
}
