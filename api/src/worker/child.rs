//! The worker process (`hallmark internal worker`): reads jobs from stdin, answers on stdout,
//! one at a time, until stdin closes.
//!
//! Before each job (before reading its input) it lowers its own soft `RLIMIT_AS` to the job's
//! memory limit (the worker's whole address space, input included) and sets its
//! soft `RLIMIT_CPU` to the CPU time it has used so far plus the job's CPU seconds; after the
//! job it raises both back. An allocation over the limit aborts the process, a CPU overrun
//! kills it with `SIGXCPU`: either way the server sees a dead worker, answers that one request
//! with a verdict or a 4xx, and starts a replacement.

use std::io::{BufReader, BufWriter};

use hallmark_media::{AudioClip, DecodedImage, MediaError};
use hallmark_provenance::TrustConfig;
use rlimit::Resource;

use super::protocol::{
    read_blobs, read_header, write_frame, FailureKind, Job, JobLimits, Reply, Request,
};

/// Largest blob a worker accepts (the file, a manifest store).
const MAX_INPUT_BLOB: u64 = 4 << 30;

/// CPU seconds this process has used (user + system), from `/proc/self/stat` (fields 14 and
/// 15, in `USER_HZ` = 100 ticks per second on Linux; proc(5)). 0 when unreadable.
fn cpu_seconds_used() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14 → index 11, stime 15 → 12.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) / 100
}

/// Soft and hard limits in force when the worker started (restored between jobs).
struct Baseline {
    as_soft: u64,
    as_hard: u64,
    cpu_soft: u64,
    cpu_hard: u64,
}

impl Baseline {
    fn read() -> std::io::Result<Self> {
        let (as_soft, as_hard) = rlimit::getrlimit(Resource::AS)?;
        let (cpu_soft, cpu_hard) = rlimit::getrlimit(Resource::CPU)?;
        Ok(Self {
            as_soft,
            as_hard,
            cpu_soft,
            cpu_hard,
        })
    }

    fn apply(&self, l: &JobLimits) -> std::io::Result<()> {
        let cpu = cpu_seconds_used()
            .saturating_add(l.cpu_seconds.max(1))
            .min(self.cpu_hard);
        rlimit::setrlimit(Resource::CPU, cpu, self.cpu_hard)?;
        rlimit::setrlimit(
            Resource::AS,
            l.memory_bytes.min(self.as_soft).min(self.as_hard),
            self.as_hard,
        )
    }

    fn restore(&self) -> std::io::Result<()> {
        rlimit::setrlimit(Resource::AS, self.as_soft, self.as_hard)?;
        rlimit::setrlimit(Resource::CPU, self.cpu_soft, self.cpu_hard)
    }
}

fn failure(e: MediaError) -> Reply {
    let kind = match e {
        MediaError::UnknownFormat | MediaError::Unsupported { .. } => FailureKind::Unsupported,
        MediaError::LimitExceeded(_) => FailureKind::Limit,
        MediaError::Corrupt { .. } | MediaError::Encode { .. } => FailureKind::Corrupt,
    };
    Reply::Failed {
        kind,
        message: e.to_string(),
    }
}

fn image_reply(d: DecodedImage) -> (Reply, Vec<u8>) {
    let reply = Reply::Image {
        color: format!("{:?}", d.image.color()),
        width: d.image.width(),
        height: d.image.height(),
        reoriented: d.reoriented,
    };
    (reply, d.image.into_bytes())
}

fn audio_reply(c: AudioClip) -> (Reply, Vec<u8>) {
    let frames = c.frames();
    let mut pcm = Vec::with_capacity(c.channels.len() * frames * 4);
    for ch in &c.channels {
        for s in ch {
            pcm.extend_from_slice(&s.to_ne_bytes());
        }
    }
    let reply = Reply::Audio {
        sample_rate: c.sample_rate,
        channels: c.channels.len(),
        frames,
    };
    (reply, pcm)
}

fn handle(job: Job, blobs: &[Vec<u8>], trust: &mut Option<TrustConfig>) -> (Reply, Vec<u8>) {
    let file = blobs.first().map(Vec::as_slice).unwrap_or_default();
    match job {
        Job::Hello { trust: t } => {
            *trust = Some(t);
            (Reply::Ready, Vec::new())
        }
        Job::C2pa { format } => {
            let default_trust = TrustConfig::default();
            let trust = trust.as_ref().unwrap_or(&default_trust);
            let result = match blobs.get(1) {
                Some(store) => {
                    hallmark_provenance::verify_manifest_store(store, file, format.mime(), trust)
                }
                None => hallmark_provenance::verify_media(file, format.mime(), trust),
            };
            (
                Reply::C2pa {
                    result: result.map(Box::new).map_err(|e| e.to_string()),
                },
                Vec::new(),
            )
        }
        Job::Decode { format, limits } => match format.kind() {
            hallmark_media::MediaKind::Image => {
                match hallmark_media::decode_image(file, format, &limits) {
                    Ok(d) => image_reply(d),
                    Err(e) => (failure(e), Vec::new()),
                }
            }
            _ => match hallmark_media::decode_audio(file, format, &limits) {
                Ok(c) => audio_reply(c),
                Err(e) => (failure(e), Vec::new()),
            },
        },
    }
}

/// Body of `hallmark internal worker`: serves jobs until stdin closes.
///
/// # Errors
/// I/O errors on the pipes and malformed frames (the server then starts a new worker).
pub fn worker_main() -> anyhow::Result<()> {
    let baseline = Baseline::read()?;
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let mut output = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut trust = None;
    while let Some(header) = read_header(&mut input)? {
        let req: Request = serde_json::from_slice(&header)?;
        // The limits cover the job's input too: it is read after they are applied.
        baseline.apply(&req.limits)?;
        let blobs = read_blobs(&mut input, MAX_INPUT_BLOB)?;
        let (reply, blob) = handle(req.job, &blobs, &mut trust);
        drop(blobs);
        let blobs: Vec<&[u8]> = if blob.is_empty() {
            Vec::new()
        } else {
            vec![blob.as_slice()]
        };
        write_frame(&mut output, &reply, &blobs)?;
        drop(blob);
        baseline.restore()?;
    }
    Ok(())
}
