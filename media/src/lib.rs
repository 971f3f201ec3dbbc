//! Sniffing, bounded decoding and encoding of untrusted media bytes.
//!
//! Every decoder here checks size, pixel, duration and channel limits before it does real work
//! (see [`Limits`]); callers never decode uploads through `image::open` or symphonia directly.

mod audio;
mod containers;
mod demux;
mod error;
mod image_io;
mod opus;
mod sniff;
mod webm;

pub use audio::{
    decode_audio, encode_m4a, encode_mp3, encode_wav, encode_wav_as, wav_sample_format, AudioClip,
    WavSampleFormat, SAMPLE_RATE_RANGE,
};
pub use containers::{check_declared_pixels, check_tables};
pub use error::MediaError;
pub use image_io::{
    decode_image, encode_image, encode_image_like, encode_webp_lossy, webp_is_lossy, DecodedImage,
};
pub use sniff::{sniff, MediaFormat, MediaKind};

/// Resource limits applied before and while decoding untrusted media.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest accepted input in bytes.
    pub max_bytes: usize,
    /// Largest accepted image area in pixels (width × height).
    pub max_pixels: u64,
    /// Largest accepted image side in pixels.
    pub max_dimension: u32,
    /// Longest accepted audio duration in seconds.
    pub max_audio_seconds: f64,
    /// Most audio channels accepted.
    pub max_channels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_dimension: 20_000,
            max_audio_seconds: 600.0,
            max_channels: 8,
        }
    }
}
