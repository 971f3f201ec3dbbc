//! The length-prefixed protocol between the server and its worker processes.
//!
//! One frame, in either direction:
//!
//! ```text
//! u32 LE  header length H (≤ MAX_HEADER_BYTES)
//! H bytes header, JSON (a `Request` or a `Reply`)
//! u32 LE  blob count N (≤ MAX_BLOBS)
//! N ×     u64 LE blob length L, then L raw bytes
//! ```
//!
//! Blobs carry what would be wasteful as JSON: the uploaded file and a stored manifest store
//! (server → worker), decoded pixels in the decoder's native layout and planar `f32` PCM
//! (worker → server; both processes run on the same machine, so native byte order).

use std::io::{Read, Write};

use hallmark_media::MediaFormat;
use hallmark_provenance::{C2paReport, TrustConfig};
use serde::{Deserialize, Serialize};

/// Largest JSON header accepted in either direction.
pub const MAX_HEADER_BYTES: usize = 16 * 1024 * 1024;
/// Most blobs in one frame.
pub const MAX_BLOBS: usize = 4;

/// Resource limits a worker applies to itself for one job.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct JobLimits {
    /// Address-space limit (`RLIMIT_AS`) in bytes while the job runs.
    pub memory_bytes: u64,
    /// CPU seconds (`RLIMIT_CPU`) the job may use on top of what the worker used before it.
    pub cpu_seconds: u64,
}

/// Server → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// First frame after start: the trust configuration for C2PA jobs. Answered by
    /// [`Reply::Ready`].
    Hello {
        /// C2PA trust configuration.
        trust: TrustConfig,
    },
    /// C2PA validation. Blobs: `[file]`, or `[file, manifest_store]` to validate a stored
    /// manifest store against the file. Answered by [`Reply::C2pa`].
    C2pa {
        /// Sniffed format of the file.
        format: MediaFormat,
    },
    /// Container checks and decoding. Blobs: `[file]`. Answered by [`Reply::Image`],
    /// [`Reply::Audio`] or [`Reply::Failed`].
    Decode {
        /// Sniffed format of the file.
        format: MediaFormat,
        /// Decoding limits.
        limits: hallmark_media::Limits,
    },
}

/// A server → worker frame header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The work.
    pub job: Job,
    /// Limits for it.
    pub limits: JobLimits,
}

/// Why a decode job refused the media (mirrors [`hallmark_media::MediaError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Unsupported format or codec.
    Unsupported,
    /// Over a decoding limit.
    Limit,
    /// Corrupt or truncated.
    Corrupt,
}

/// Worker → server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The worker accepted [`Job::Hello`].
    Ready,
    /// C2PA result; `Err` holds a validator error (not a verdict: c2pa-rs refused to run).
    C2pa {
        /// The report or the validator's error message.
        result: Result<Box<C2paReport>, String>,
    },
    /// A decoded image; blob 0 holds its samples (`DynamicImage::as_bytes`).
    Image {
        /// `image::ColorType` name, e.g. `Rgb8`.
        color: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// EXIF orientation was applied.
        reoriented: bool,
    },
    /// Decoded audio; blob 0 holds `channels × frames` native-endian `f32`, channel after
    /// channel.
    Audio {
        /// Sample rate in Hz.
        sample_rate: u32,
        /// Channel count.
        channels: usize,
        /// Samples per channel.
        frames: usize,
    },
    /// The media was refused.
    Failed {
        /// Category.
        kind: FailureKind,
        /// The decoder's message.
        message: String,
    },
}

fn too_large(what: &str, n: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{what} of {n} bytes exceeds the frame limit"),
    )
}

/// A frame as read: the JSON header and the blobs.
pub type Frame = (Vec<u8>, Vec<Vec<u8>>);

/// Serialises a frame into one buffer (header, blob count, blobs).
///
/// # Errors
/// JSON serialisation failures.
pub fn encode_frame<T: Serialize>(header: &T, blobs: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let h = serde_json::to_vec(header)?;
    let total = 8 + h.len() + blobs.iter().map(|b| 8 + b.len()).sum::<usize>();
    let mut v = Vec::with_capacity(total);
    v.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_le_bytes());
    v.extend_from_slice(&h);
    v.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
    for b in blobs {
        v.extend_from_slice(&(b.len() as u64).to_le_bytes());
        v.extend_from_slice(b);
    }
    Ok(v)
}

/// Writes one frame.
///
/// # Errors
/// I/O errors.
pub fn write_frame<W: Write, T: Serialize>(
    w: &mut W,
    header: &T,
    blobs: &[&[u8]],
) -> std::io::Result<()> {
    let h = serde_json::to_vec(header)?;
    w.write_all(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_le_bytes())?;
    w.write_all(&h)?;
    w.write_all(&(blobs.len() as u32).to_le_bytes())?;
    for b in blobs {
        w.write_all(&(b.len() as u64).to_le_bytes())?;
        w.write_all(b)?;
    }
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream (before the first byte).
///
/// # Errors
/// I/O errors, a truncated frame, or a length over the limits (`max_blob` per blob).
pub fn read_frame<R: Read>(r: &mut R, max_blob: u64) -> std::io::Result<Option<Frame>> {
    match read_header(r)? {
        None => Ok(None),
        Some(h) => Ok(Some((h, read_blobs(r, max_blob)?))),
    }
}

/// Reads a frame's header; `Ok(None)` at a clean end of stream. [`read_blobs`] reads the
/// rest (a worker applies the job's limits in between, so they cover its input too).
///
/// # Errors
/// I/O errors, a truncated header, or one over [`MAX_HEADER_BYTES`].
pub fn read_header<R: Read>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut n4 = [0u8; 4];
    match r.read_exact(&mut n4) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let h = u32::from_le_bytes(n4) as usize;
    if h > MAX_HEADER_BYTES {
        return Err(too_large("header", h as u64));
    }
    let mut header = vec![0u8; h];
    r.read_exact(&mut header)?;
    Ok(Some(header))
}

/// Reads a frame's blobs (after [`read_header`]).
///
/// # Errors
/// I/O errors, truncated blobs, more than [`MAX_BLOBS`], or a blob over `max_blob` bytes.
pub fn read_blobs<R: Read>(r: &mut R, max_blob: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let mut n4 = [0u8; 4];
    r.read_exact(&mut n4)?;
    let n = u32::from_le_bytes(n4) as usize;
    if n > MAX_BLOBS {
        return Err(too_large("blob count", n as u64));
    }
    let mut blobs = Vec::with_capacity(n);
    for _ in 0..n {
        let mut n8 = [0u8; 8];
        r.read_exact(&mut n8)?;
        let len = u64::from_le_bytes(n8);
        if len > max_blob {
            return Err(too_large("blob", len));
        }
        let mut b = Vec::with_capacity(len.min(1 << 26) as usize);
        r.by_ref().take(len).read_to_end(&mut b)?;
        if b.len() as u64 != len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        blobs.push(b);
    }
    Ok(blobs)
}

/// Async [`read_frame`] for the server side; end of stream is an error here (the worker died).
///
/// # Errors
/// See [`read_frame`].
pub async fn read_frame_async<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    max_blob: u64,
) -> std::io::Result<Frame> {
    use tokio::io::AsyncReadExt;
    let h = r.read_u32_le().await? as usize;
    if h > MAX_HEADER_BYTES {
        return Err(too_large("header", h as u64));
    }
    let mut header = vec![0u8; h];
    r.read_exact(&mut header).await?;
    let n = r.read_u32_le().await? as usize;
    if n > MAX_BLOBS {
        return Err(too_large("blob count", n as u64));
    }
    let mut blobs = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.read_u64_le().await?;
        if len > max_blob {
            return Err(too_large("blob", len));
        }
        let mut b = Vec::with_capacity(len.min(1 << 26) as usize);
        (&mut *r).take(len).read_to_end(&mut b).await?;
        if b.len() as u64 != len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        blobs.push(b);
    }
    Ok((header, blobs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bound_lengths() {
        let req = Request {
            job: Job::Decode {
                format: MediaFormat::Png,
                limits: hallmark_media::Limits::default(),
            },
            limits: JobLimits {
                memory_bytes: 1 << 30,
                cpu_seconds: 10,
            },
        };
        let bytes = encode_frame(&req, &[b"abc", b""]).unwrap();
        let (h, blobs) = read_frame(&mut bytes.as_slice(), 16).unwrap().unwrap();
        let back: Request = serde_json::from_slice(&h).unwrap();
        assert!(matches!(
            back.job,
            Job::Decode {
                format: MediaFormat::Png,
                ..
            }
        ));
        assert_eq!(blobs, vec![b"abc".to_vec(), Vec::new()]);
        // A blob over the reader's limit, a truncated frame, and a clean end of stream.
        assert!(read_frame(&mut bytes.as_slice(), 2).is_err());
        assert!(read_frame(&mut &bytes[..bytes.len() - 4], 16).is_err());
        assert!(read_frame(&mut &b""[..], 16).unwrap().is_none());
    }
}
