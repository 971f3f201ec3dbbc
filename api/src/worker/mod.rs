//! A pool of persistent worker processes that parse every untrusted byte the service receives.
//!
//! Each worker is this executable run as `hallmark internal worker`, speaking the
//! length-prefixed protocol of [`protocol`] over its stdin/stdout. It runs container checks,
//! image and audio decoding ([`Job::Decode`]) and C2PA validation ([`Job::C2pa`]) under a
//! per-job address-space and CPU limit it sets on itself ([`child`]); the server adds a
//! wall-clock deadline per job. A worker that dies, overruns, or answers nonsense costs that one
//! job (the caller turns it into 422 `corrupt_media` or a `resource_limit` C2PA read error) and
//! is replaced; the server process never parses the upload.
//!
//! Admission is bounded: at most `workers + queue` jobs are running or waiting; the next one is
//! refused at once with [`JobError::Overloaded`] (503 `overloaded` with `Retry-After`).

pub mod child;
pub mod protocol;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hallmark_media::{AudioClip, MediaFormat};
use hallmark_provenance::{C2paReport, TrustConfig};
use image::DynamicImage;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Semaphore;

use protocol::{encode_frame, read_frame_async, Job, Reply, Request};
pub use protocol::{FailureKind, JobLimits};

/// Pool configuration.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Executable to run as a worker (this binary).
    pub exe: PathBuf,
    /// Worker processes.
    pub workers: usize,
    /// Jobs that may wait for a worker beyond those running.
    pub queue: usize,
    /// Jobs a worker serves before it is replaced (bounds heap fragmentation).
    pub max_jobs_per_worker: u32,
    /// Largest reply blob accepted from a worker (decoded pixels or PCM), bytes.
    pub max_reply_bytes: u64,
    /// C2PA trust configuration handed to every worker at start.
    pub trust: Arc<TrustConfig>,
}

/// Why a job produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Every worker is busy and the queue is full.
    #[error("all media workers are busy")]
    Overloaded,
    /// The worker died, overran its deadline or limits, or broke the protocol.
    #[error("the media worker failed: {0}")]
    WorkerFailed(String),
    /// No worker could be started (a server fault).
    #[error("starting a media worker: {0}")]
    Spawn(String),
}

/// A decoded upload, as the worker returns it.
#[derive(Debug, Clone)]
pub enum DecodedMedia {
    /// Pixels (upright) and whether EXIF orientation was applied.
    Image(DynamicImage, bool),
    /// PCM audio.
    Audio(AudioClip),
}

/// A decode job's answer: the media, or why it was refused.
pub type DecodeResult = Result<DecodedMedia, (FailureKind, String)>;

struct Worker {
    /// The process (`kill_on_drop`: dropping a worker kills it).
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    jobs: u32,
}

impl Worker {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn exchange(
        &mut self,
        req: &Request,
        blobs: &[&[u8]],
        max_reply: u64,
    ) -> std::io::Result<(Reply, Vec<Vec<u8>>)> {
        let frame = encode_frame(req, blobs)?;
        self.stdin.write_all(&frame).await?;
        self.stdin.flush().await?;
        drop(frame);
        let (header, blobs) = read_frame_async(&mut self.stdout, max_reply).await?;
        let reply = serde_json::from_slice(&header)?;
        Ok((reply, blobs))
    }
}

struct Inner {
    cfg: PoolConfig,
    idle: Mutex<Vec<Worker>>,
    running: Semaphore,
    admitted: Arc<Semaphore>,
}

/// The worker pool (cheap to clone).
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

/// How long a new worker may take to start and accept its trust configuration.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);

impl WorkerPool {
    /// Creates the pool and starts its workers in the background.
    pub fn new(cfg: PoolConfig) -> Self {
        let workers = cfg.workers.max(1);
        let pool = Self {
            inner: Arc::new(Inner {
                running: Semaphore::new(workers),
                admitted: Arc::new(Semaphore::new(workers + cfg.queue)),
                idle: Mutex::new(Vec::with_capacity(workers)),
                cfg,
            }),
        };
        for _ in 0..workers {
            pool.replenish();
        }
        pool
    }

    /// Worker processes configured.
    pub fn size(&self) -> usize {
        self.inner.cfg.workers.max(1)
    }

    /// Jobs admitted now (running and waiting for a worker), and the most that can be.
    pub fn load(&self) -> (usize, usize) {
        let capacity = self.size() + self.inner.cfg.queue;
        let free = self.inner.admitted.available_permits();
        (capacity.saturating_sub(free), capacity)
    }

    /// Starts one worker in the background and parks it idle (a failure is logged; the next
    /// job starts one itself).
    fn replenish(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.clone();
        handle.spawn(async move {
            let full = pool
                .inner
                .idle
                .lock()
                .map_or(true, |idle| idle.len() >= pool.size());
            if full {
                return;
            }
            match pool.spawn_worker().await {
                Ok(w) => pool.park(w),
                Err(e) => tracing::warn!(error = %e, "could not start a media worker"),
            }
        });
    }

    fn park(&self, w: Worker) {
        if let Ok(mut idle) = self.inner.idle.lock() {
            if idle.len() < self.size() {
                idle.push(w);
            }
        }
    }

    async fn spawn_worker(&self) -> Result<Worker, JobError> {
        let mut child = tokio::process::Command::new(&self.inner.cfg.exe)
            .args(["internal", "worker"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| JobError::Spawn(e.to_string()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(JobError::Spawn("worker pipes unavailable".into()));
        };
        let mut w = Worker {
            child,
            stdin,
            stdout: BufReader::with_capacity(1 << 20, stdout),
            jobs: 0,
        };
        let hello = Request {
            job: Job::Hello {
                trust: (*self.inner.cfg.trust).clone(),
            },
            limits: JobLimits {
                memory_bytes: u64::MAX,
                cpu_seconds: SPAWN_TIMEOUT.as_secs(),
            },
        };
        match tokio::time::timeout(SPAWN_TIMEOUT, w.exchange(&hello, &[], 0)).await {
            Ok(Ok((Reply::Ready, _))) => Ok(w),
            Ok(Ok(_)) => Err(JobError::Spawn("unexpected reply to hello".into())),
            Ok(Err(e)) => Err(JobError::Spawn(e.to_string())),
            Err(_) => Err(JobError::Spawn("worker did not start in time".into())),
        }
    }

    async fn take_worker(&self) -> Result<Worker, JobError> {
        loop {
            let w = self.inner.idle.lock().ok().and_then(|mut v| v.pop());
            match w {
                Some(mut w) => {
                    if w.alive() {
                        return Ok(w);
                    }
                }
                None => return self.spawn_worker().await,
            }
        }
    }

    /// Runs one job with a wall-clock `deadline`.
    async fn run(
        &self,
        job: Job,
        blobs: &[&[u8]],
        limits: JobLimits,
        deadline: Duration,
    ) -> Result<(Reply, Vec<Vec<u8>>), JobError> {
        let _admitted = self
            .inner
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| JobError::Overloaded)?;
        let _running = self
            .inner
            .running
            .acquire()
            .await
            .map_err(|_| JobError::Overloaded)?;
        let mut w = self.take_worker().await?;
        let req = Request { job, limits };
        let max_reply = self.inner.cfg.max_reply_bytes;
        match tokio::time::timeout(deadline, w.exchange(&req, blobs, max_reply)).await {
            Ok(Ok(answer)) => {
                w.jobs += 1;
                if w.jobs < self.inner.cfg.max_jobs_per_worker {
                    self.park(w);
                } else {
                    drop(w);
                    self.replenish();
                }
                Ok(answer)
            }
            Ok(Err(e)) => {
                drop(w);
                self.replenish();
                tracing::info!(error = %e, "media worker died on a job; replaced");
                Err(JobError::WorkerFailed(format!(
                    "the worker exceeded its memory or CPU limit or crashed ({e})"
                )))
            }
            Err(_) => {
                drop(w);
                self.replenish();
                tracing::info!(
                    deadline_s = deadline.as_secs_f64(),
                    "media worker overran its deadline; replaced"
                );
                Err(JobError::WorkerFailed(format!(
                    "the job exceeded its {} s time limit",
                    deadline.as_secs_f64()
                )))
            }
        }
    }

    /// Validates the C2PA manifest of `file` (or `manifest_store` against `file`) in a worker.
    ///
    /// # Errors
    /// [`JobError`]: the caller reports a failed worker as a `resource_limit` read error.
    pub async fn c2pa(
        &self,
        file: &[u8],
        manifest_store: Option<&[u8]>,
        format: MediaFormat,
        limits: JobLimits,
        deadline: Duration,
    ) -> Result<Result<C2paReport, String>, JobError> {
        let mut blobs = vec![file];
        blobs.extend(manifest_store);
        match self
            .run(Job::C2pa { format }, &blobs, limits, deadline)
            .await?
        {
            (Reply::C2pa { result }, _) => Ok(result.map(|r| *r)),
            _ => Err(JobError::WorkerFailed("unexpected reply".into())),
        }
    }

    /// Checks and decodes `file` in a worker.
    ///
    /// # Errors
    /// [`JobError`]: the caller reports a failed worker as corrupt media.
    pub async fn decode(
        &self,
        file: &[u8],
        format: MediaFormat,
        media_limits: hallmark_media::Limits,
        limits: JobLimits,
        deadline: Duration,
    ) -> Result<DecodeResult, JobError> {
        let job = Job::Decode {
            format,
            limits: media_limits,
        };
        let (reply, mut blobs) = self.run(job, &[file], limits, deadline).await?;
        let data = blobs.pop().unwrap_or_default();
        let bad = |what: &str| JobError::WorkerFailed(format!("malformed {what} reply"));
        match reply {
            Reply::Failed { kind, message } => Ok(Err((kind, message))),
            Reply::Image {
                color,
                width,
                height,
                reoriented,
            } => {
                let img =
                    image_from_raw(&color, width, height, data).ok_or_else(|| bad("image"))?;
                Ok(Ok(DecodedMedia::Image(img, reoriented)))
            }
            Reply::Audio {
                sample_rate,
                channels,
                frames,
            } => {
                if channels > media_limits.max_channels
                    || channels.checked_mul(frames).and_then(|n| n.checked_mul(4))
                        != Some(data.len())
                {
                    return Err(bad("audio"));
                }
                let samples: Vec<f32> = data
                    .chunks_exact(4)
                    .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let channels = if frames == 0 {
                    vec![Vec::new(); channels]
                } else {
                    samples.chunks(frames).map(<[f32]>::to_vec).collect()
                };
                Ok(Ok(DecodedMedia::Audio(AudioClip {
                    sample_rate,
                    channels,
                })))
            }
            _ => Err(bad("decode")),
        }
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_ne_bytes([c[0], c[1]]))
        .collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Rebuilds a `DynamicImage` from a worker's reply; `None` when the sizes disagree.
fn image_from_raw(color: &str, w: u32, h: u32, data: Vec<u8>) -> Option<DynamicImage> {
    use image::{ImageBuffer, Luma, LumaA, Rgb, Rgba};
    Some(match color {
        "L8" => DynamicImage::ImageLuma8(ImageBuffer::<Luma<u8>, _>::from_raw(w, h, data)?),
        "La8" => DynamicImage::ImageLumaA8(ImageBuffer::<LumaA<u8>, _>::from_raw(w, h, data)?),
        "Rgb8" => DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, data)?),
        "Rgba8" => DynamicImage::ImageRgba8(ImageBuffer::<Rgba<u8>, _>::from_raw(w, h, data)?),
        "L16" => DynamicImage::ImageLuma16(ImageBuffer::from_raw(w, h, u16s(&data))?),
        "La16" => DynamicImage::ImageLumaA16(ImageBuffer::from_raw(w, h, u16s(&data))?),
        "Rgb16" => DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, u16s(&data))?),
        "Rgba16" => DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, u16s(&data))?),
        "Rgb32F" => DynamicImage::ImageRgb32F(ImageBuffer::from_raw(w, h, f32s(&data))?),
        "Rgba32F" => DynamicImage::ImageRgba32F(ImageBuffer::from_raw(w, h, f32s(&data))?),
        _ => return None,
    })
}

/// The executable to run as a worker: `/proc/self/exe`, which still runs this very binary
/// after the file on disk was replaced or deleted (an in-place upgrade).
///
/// # Errors
/// When neither `/proc/self/exe` nor `current_exe()` is available.
pub fn own_executable() -> std::io::Result<PathBuf> {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    if proc_exe.exists() {
        Ok(proc_exe.to_path_buf())
    } else {
        std::env::current_exe()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn images_cross_the_pipe_in_every_color_type() {
        let rgb = DynamicImage::ImageRgb8(image::RgbImage::from_fn(5, 3, |x, y| {
            image::Rgb([x as u8, y as u8, 7])
        }));
        for img in [
            rgb.clone(),
            DynamicImage::ImageLuma8(rgb.to_luma8()),
            DynamicImage::ImageRgba16(rgb.to_rgba16()),
            DynamicImage::ImageRgb32F(rgb.to_rgb32f()),
        ] {
            let color = format!("{:?}", img.color());
            let back = image_from_raw(&color, 5, 3, img.as_bytes().to_vec()).unwrap();
            assert_eq!(back, img);
        }
        // A reply whose pixel data doesn't match its dimensions is refused.
        assert!(image_from_raw("Rgb8", 5, 4, rgb.as_bytes().to_vec()).is_none());
        assert!(image_from_raw("Bogus", 5, 3, rgb.as_bytes().to_vec()).is_none());
    }
}
