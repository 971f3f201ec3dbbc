//! Audio decoding (symphonia; Opus in [`crate::opus`]) and encoding (WAV via hound, MP3 via LAME).

/// Decoded PCM audio, planar, samples in [-1, 1].
///
/// `channels[c][n]` is sample `n` of channel `c`; every channel has the same length.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioClip {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Planar samples, one `Vec` per channel.
    pub channels: Vec<Vec<f32>>,
}

impl AudioClip {
    /// Number of sample frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Duration in seconds.
    pub fn duration_seconds(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::{Limits, MediaError, MediaFormat};

/// Most consecutive undecodable packets tolerated before the stream is declared corrupt.
const MAX_CONSECUTIVE_DECODE_ERRORS: usize = 32;

/// Decodes the first audio track of `bytes` (a sniffed audio `format`) to planar f32 with
/// symphonia, within `limits` (duration and channel count are checked from the header when it
/// declares them, and enforced again while decoding).
///
/// # Errors
/// [`MediaError::Unsupported`] for non-audio formats or codecs symphonia lacks,
/// [`MediaError::LimitExceeded`] for too many channels or too long a stream,
/// [`MediaError::Corrupt`] when no audio can be decoded.
pub fn decode_audio(
    bytes: &[u8],
    format: MediaFormat,
    limits: &Limits,
) -> Result<AudioClip, MediaError> {
    // Third-party demuxers/decoders on hostile input: a panic inside them is a corrupt file.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_audio_inner(bytes, format, limits)
    }))
    .unwrap_or_else(|_| {
        Err(MediaError::Corrupt {
            format: format.mime(),
            detail: "the decoder rejected the stream".into(),
        })
    })
}

/// Checks the channel count and sample rate a WAV's `fmt ` chunk declares before the
/// demuxer sees them: symphonia 0.5 panics on a 0 Hz rate (time base 1/0) and on more than
/// 32 channels (channel-mask shift), and reads 0 channels as an unsupported codec.
///
/// # Errors
/// [`MediaError::Corrupt`] for 0 channels or a rate outside [`SAMPLE_RATE_RANGE`],
/// [`MediaError::LimitExceeded`] for more than `limits.max_channels` channels. A file
/// without a readable `fmt ` chunk is left to the demuxer.
fn check_wav_format_chunk(bytes: &[u8], limits: &Limits) -> Result<(), MediaError> {
    let corrupt = |detail: String| MediaError::Corrupt {
        format: MediaFormat::Wav.mime(),
        detail,
    };
    let Some(fmt) = wav_format_chunk(bytes).and_then(|f| f.get(..8)) else {
        return Ok(());
    };
    let channels = usize::from(u16::from_le_bytes([fmt[2], fmt[3]]));
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    if channels == 0 {
        return Err(corrupt("the WAV format chunk declares 0 channels".into()));
    }
    if channels > limits.max_channels {
        return Err(MediaError::LimitExceeded(format!(
            "{channels} channels > {} channel limit",
            limits.max_channels
        )));
    }
    if !SAMPLE_RATE_RANGE.contains(&rate) {
        return Err(corrupt(format!(
            "the WAV format chunk declares a sample rate of {rate} Hz (accepted: {}–{} Hz)",
            SAMPLE_RATE_RANGE.start(),
            SAMPLE_RATE_RANGE.end()
        )));
    }
    Ok(())
}

/// The body of the first `fmt ` chunk of a RIFF/WAVE file (as much of it as `bytes` holds),
/// or `None` when none is found within the first 64 chunks.
fn wav_format_chunk(bytes: &[u8]) -> Option<&[u8]> {
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // RIFF header (12 bytes), then chunks: 4-byte id, 4-byte little-endian size, data
    // padded to an even length (RIFF/WAVE, Microsoft Multimedia Programming Interface 1991).
    let mut off = 12usize;
    for _ in 0..64 {
        let (id, size) = (
            bytes.get(off..off + 4)?,
            usize::try_from(u32_at(off + 4)?).ok()?,
        );
        let body = off.checked_add(8)?;
        if id == b"fmt " {
            let end = body.saturating_add(size).min(bytes.len());
            return bytes.get(body..end);
        }
        off = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// Sample encoding of a PCM WAV file (default: 16-bit, what formats without their own
/// sample format are written as).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WavSampleFormat {
    /// 16-bit signed integer.
    #[default]
    Int16,
    /// 24-bit signed integer.
    Int24,
    /// 32-bit signed integer.
    Int32,
    /// 32-bit IEEE float.
    Float32,
}

/// The sample format a WAV file's `fmt ` chunk declares, as the format to write it back in:
/// integer PCM (format tag 1, or `WAVE_FORMAT_EXTENSIBLE` with the PCM sub-format) of ≤ 16
/// bits is [`WavSampleFormat::Int16`] (8-bit included: widening loses nothing), ≤ 24 bits
/// [`WavSampleFormat::Int24`], else [`WavSampleFormat::Int32`]; IEEE float (tag 3, or the
/// float sub-format) is [`WavSampleFormat::Float32`] (64-bit float too: the decoded samples
/// are `f32`). `None` for a file without a readable `fmt ` chunk or another encoding (A-law,
/// µ-law, ADPCM: signing writes those as 16-bit).
pub fn wav_sample_format(bytes: &[u8]) -> Option<WavSampleFormat> {
    let fmt = wav_format_chunk(bytes)?;
    let u16_at = |i: usize| fmt.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let mut tag = u16_at(0)?;
    let bits = u16_at(14)?;
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the SubFormat GUID starts with the format code.
        tag = u16_at(24)?;
    }
    match (tag, bits) {
        (1, 1..=16) => Some(WavSampleFormat::Int16),
        (1, 17..=24) => Some(WavSampleFormat::Int24),
        (1, 25..=32) => Some(WavSampleFormat::Int32),
        (3, 32 | 64) => Some(WavSampleFormat::Float32),
        _ => None,
    }
}

/// Lowest and highest sample rates accepted, Hz.
pub const SAMPLE_RATE_RANGE: std::ops::RangeInclusive<u32> = 1_000..=768_000;

fn decode_audio_inner(
    bytes: &[u8],
    format: MediaFormat,
    limits: &Limits,
) -> Result<AudioClip, MediaError> {
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::LimitExceeded(format!(
            "{} bytes > {} byte limit",
            bytes.len(),
            limits.max_bytes
        )));
    }
    if format.kind() != crate::MediaKind::Audio {
        return Err(MediaError::Unsupported {
            format: format.mime(),
            operation: "audio decoding",
        });
    }
    // The stream after leading ID3v2 tags, in the format its own magic bytes name.
    let (bytes, format) = crate::demux::audio_stream(bytes, format);
    let corrupt = |detail: String| MediaError::Corrupt {
        format: format.mime(),
        detail,
    };
    if format == MediaFormat::Wav {
        check_wav_format_chunk(bytes, limits)?;
    }
    if format == MediaFormat::Webm {
        return crate::webm::decode_webm(bytes, limits);
    }
    // Tables the demuxer would reserve memory from must fit in the bytes present.
    crate::containers::check_tables(bytes, format)?;
    let mut hint = Hint::new();
    hint.with_extension(format.extension());
    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(bytes.to_vec())),
        MediaSourceStreamOptions::default(),
    );
    let probed = crate::demux::probe_for(format)
        .format(
            &hint,
            mss,
            &FormatOptions {
                enable_gapless: true,
                ..FormatOptions::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| corrupt(e.to_string()))?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| corrupt("no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    if params.codec == CODEC_TYPE_OPUS {
        let head = params.extra_data.as_deref().unwrap_or_default();
        return crate::opus::decode_ogg(reader.as_mut(), track_id, head, bytes, limits);
    }
    // symphonia's AAC configuration parser yields 0 Hz for the 88.2/96 kHz sampling-frequency
    // indices; an MP4 track's time base (1/timescale) is then the sample rate.
    let from_time_base = params
        .time_base
        .filter(|tb| tb.numer == 1 && SAMPLE_RATE_RANGE.contains(&tb.denom))
        .map(|tb| tb.denom);
    let declared = match params.sample_rate {
        Some(0) => from_time_base,
        other => other,
    };
    let declared_rate = declared.unwrap_or(0);
    if declared.is_some() && !SAMPLE_RATE_RANGE.contains(&declared_rate) {
        return Err(MediaError::Corrupt {
            format: format.mime(),
            detail: format!("sample rate {declared_rate} Hz outside 1–768 kHz"),
        });
    }
    if let Some(ch) = params.channels {
        if ch.count() > limits.max_channels {
            return Err(MediaError::LimitExceeded(format!(
                "{} channels > {} channel limit",
                ch.count(),
                limits.max_channels
            )));
        }
    }
    // A declared length over the limit is refused before decoding, but only when the input is
    // big enough to hold it: a streamed WAV (ffmpeg to a pipe) declares 0xFFFFFFFF bytes, and a
    // header may lie; those are bounded by the check while decoding below instead.
    // PCM: frames × channels × bytes per sample; compressed: at least 8 kbit/s (1 byte/ms).
    let plausible_seconds = |seconds: f64| match (params.bits_per_sample, params.channels) {
        (Some(bits), Some(ch)) if bits > 0 => {
            seconds * f64::from(declared_rate) * ch.count() as f64 * f64::from(bits) / 8.0
                <= bytes.len() as f64
        }
        _ => seconds <= bytes.len() as f64 / 1000.0,
    };
    if let (Some(frames), true) = (params.n_frames, declared_rate > 0) {
        let seconds = frames as f64 / f64::from(declared_rate);
        if seconds > limits.max_audio_seconds && plausible_seconds(seconds) {
            return Err(MediaError::LimitExceeded(format!(
                "{seconds:.1} s > {} s duration limit",
                limits.max_audio_seconds
            )));
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => MediaError::Unsupported {
                format: format.mime(),
                operation: "audio decoding (codec)",
            },
            other => corrupt(other.to_string()),
        })?;

    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut sample_rate = declared_rate;
    let mut errors = 0usize;
    let mut sample_buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                if channels.is_empty() {
                    return Err(corrupt(e.to_string()));
                }
                break;
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymError::DecodeError(_)) | Err(SymError::IoError(_)) => {
                errors += 1;
                if errors > MAX_CONSECUTIVE_DECODE_ERRORS {
                    return Err(corrupt("too many undecodable packets".into()));
                }
                continue;
            }
            Err(e) => return Err(corrupt(e.to_string())),
        };
        errors = 0;
        let mut spec = *decoded.spec();
        // symphonia's AAC decoder reports 0 Hz for the 88.2/96 kHz sampling-frequency indices;
        // the container's rate is then the authority.
        if spec.rate == 0 && SAMPLE_RATE_RANGE.contains(&declared_rate) {
            spec.rate = declared_rate;
        }
        let n_ch = spec.channels.count();
        if n_ch == 0 || n_ch > limits.max_channels {
            return Err(MediaError::LimitExceeded(format!(
                "{n_ch} channels (limit {})",
                limits.max_channels
            )));
        }
        if channels.is_empty() {
            if !SAMPLE_RATE_RANGE.contains(&spec.rate) {
                return Err(MediaError::Corrupt {
                    format: format.mime(),
                    detail: format!("sample rate {} Hz outside 1–768 kHz", spec.rate),
                });
            }
            channels = vec![Vec::new(); n_ch];
            sample_rate = spec.rate;
        } else if channels.len() != n_ch || sample_rate != spec.rate {
            return Err(corrupt("channel layout or rate changes mid-stream".into()));
        }
        let frames = decoded.frames();
        let buf = match &mut sample_buf {
            Some(b) if b.capacity() >= frames * n_ch => b,
            _ => sample_buf.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_planar_ref(decoded);
        let samples = buf.samples();
        for (c, ch) in channels.iter_mut().enumerate() {
            ch.extend(samples[c * frames..(c + 1) * frames].iter().map(|s| {
                if s.is_finite() {
                    s.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            }));
        }
        if sample_rate > 0
            && channels[0].len() as f64 / f64::from(sample_rate) > limits.max_audio_seconds
        {
            return Err(MediaError::LimitExceeded(format!(
                "audio longer than the {} s duration limit",
                limits.max_audio_seconds
            )));
        }
    }
    if channels.is_empty() || channels[0].is_empty() || sample_rate == 0 {
        return Err(corrupt("no decodable audio".into()));
    }
    Ok(AudioClip {
        sample_rate,
        channels,
    })
}

fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Encodes `clip` as 16-bit PCM WAV (see [`encode_wav_as`]).
///
/// # Errors
/// [`MediaError::Encode`] for an empty clip or a hound failure.
pub fn encode_wav(clip: &AudioClip) -> Result<Vec<u8>, MediaError> {
    encode_wav_as(clip, WavSampleFormat::Int16)
}

/// Encodes `clip` as WAV with samples in `format`: integers scaled by 2^(bits−1) − 1 and
/// rounded to nearest, floats as they are; samples clamped to [-1, 1] either way.
///
/// # Errors
/// [`MediaError::Encode`] for an empty clip or a hound failure.
pub fn encode_wav_as(clip: &AudioClip, format: WavSampleFormat) -> Result<Vec<u8>, MediaError> {
    let err = |detail: String| MediaError::Encode {
        format: "audio/wav",
        detail,
    };
    let n_ch = u16::try_from(clip.channels.len()).map_err(|_| err("too many channels".into()))?;
    if n_ch == 0 || clip.sample_rate == 0 {
        return Err(err("empty clip".into()));
    }
    let (bits_per_sample, sample_format) = match format {
        WavSampleFormat::Int16 => (16, hound::SampleFormat::Int),
        WavSampleFormat::Int24 => (24, hound::SampleFormat::Int),
        WavSampleFormat::Int32 => (32, hound::SampleFormat::Int),
        WavSampleFormat::Float32 => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels: n_ch,
        sample_rate: clip.sample_rate,
        bits_per_sample,
        sample_format,
    };
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).map_err(|e| err(e.to_string()))?;
    let int = |s: f32, max: f64| (f64::from(s.clamp(-1.0, 1.0)) * max).round() as i32;
    for i in 0..clip.frames() {
        for ch in &clip.channels {
            let s = ch[i];
            match format {
                WavSampleFormat::Int16 => w.write_sample(to_i16(s)),
                WavSampleFormat::Int24 => w.write_sample(int(s, 8_388_607.0)),
                WavSampleFormat::Int32 => w.write_sample(int(s, 2_147_483_647.0)),
                WavSampleFormat::Float32 => w.write_sample(s.clamp(-1.0, 1.0)),
            }
            .map_err(|e| err(e.to_string()))?;
        }
    }
    w.finalize().map_err(|e| err(e.to_string()))?;
    Ok(out.into_inner())
}

/// Encodes `clip` as AAC-LC at `kbps` in an M4A (ISO BMFF, `M4A ` brand) file, with the
/// `ffmpeg` executable at `ffmpeg` (its native AAC encoder: no Rust AAC encoder is maintained).
/// PCM goes to ffmpeg's stdin as 32-bit float; the file is written to a private temporary
/// directory (the MP4 muxer needs a seekable output) and read back. ffmpeg gets
/// `20 s + the clip's duration` before it is killed (it encodes at tens of times real time).
///
/// # Errors
/// [`MediaError::Unsupported`] when the ffmpeg executable is missing; [`MediaError::Encode`]
/// when it fails or times out, or the clip is empty or has more than 8 channels.
pub fn encode_m4a(clip: &AudioClip, kbps: u32, ffmpeg: &str) -> Result<Vec<u8>, MediaError> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let err = |detail: String| MediaError::Encode {
        format: "audio/mp4",
        detail,
    };
    let n_ch = clip.channels.len();
    if n_ch == 0 || n_ch > 8 || clip.sample_rate == 0 || clip.frames() == 0 {
        return Err(err("empty clip or more than 8 channels".into()));
    }
    if !(16..=512).contains(&kbps) {
        return Err(err(format!("unsupported AAC bitrate {kbps} kbps")));
    }
    let dir = tempfile::tempdir().map_err(|e| err(format!("temporary directory: {e}")))?;
    let out_path = dir.path().join("out.m4a");
    let mut child = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar"])
        .arg(clip.sample_rate.to_string())
        .arg("-ac")
        .arg(n_ch.to_string())
        .args(["-i", "pipe:0", "-c:a", "aac", "-b:a"])
        .arg(format!("{kbps}k"))
        .args(["-movflags", "+faststart", "-f", "ipod", "-y"])
        .arg(&out_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                MediaError::Unsupported {
                    format: "audio/mp4",
                    operation: "signing on this instance (the ffmpeg executable that encodes M4A output is not installed; see signing.ffmpeg)",
                }
            }
            _ => err(format!("starting ffmpeg '{ffmpeg}': {e}")),
        })?;
    let mut pcm = Vec::with_capacity(clip.frames() * n_ch * 4);
    for i in 0..clip.frames() {
        for ch in &clip.channels {
            pcm.extend_from_slice(&ch[i].clamp(-1.0, 1.0).to_le_bytes());
        }
    }
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| err("ffmpeg stdin".into()))?;
    let writer = std::thread::spawn(move || {
        let r = stdin.write_all(&pcm);
        drop(stdin);
        r
    });
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| err("ffmpeg stderr".into()))?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.by_ref().take(64 * 1024).read_to_string(&mut text);
        text
    });
    let limit = std::time::Duration::from_secs_f64(20.0 + clip.duration_seconds());
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!("ffmpeg did not finish within {limit:?}")));
            }
            Err(e) => return Err(err(format!("waiting for ffmpeg: {e}"))),
        }
    };
    let wrote = writer
        .join()
        .map_err(|_| err("ffmpeg writer thread".into()))?;
    let message = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(err(format!("ffmpeg failed ({status}): {}", message.trim())));
    }
    wrote.map_err(|e| err(format!("writing PCM to ffmpeg: {e}")))?;
    std::fs::read(&out_path).map_err(|e| err(format!("reading ffmpeg output: {e}")))
}

/// Encodes `clip` as CBR MP3 with LAME at `kbps` (128, 160, 192, 256 or 320). More than two
/// channels are downmixed to stereo. LAME accepts sample rates of 8–48 kHz.
///
/// # Errors
/// [`MediaError::Encode`] for an unsupported rate or bitrate or a LAME failure.
pub fn encode_mp3(clip: &AudioClip, kbps: u32) -> Result<Vec<u8>, MediaError> {
    use mp3lame_encoder::{Bitrate, Builder, DualPcm, FlushGap, MonoPcm, Quality};
    let err = |detail: String| MediaError::Encode {
        format: "audio/mpeg",
        detail,
    };
    let brate = match kbps {
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        256 => Bitrate::Kbps256,
        320 => Bitrate::Kbps320,
        other => return Err(err(format!("unsupported bitrate {other} kbps"))),
    };
    if clip.channels.is_empty() {
        return Err(err("empty clip".into()));
    }
    let stereo: Option<(Vec<f32>, Vec<f32>)> = match clip.channels.len() {
        1 => None,
        2 => Some((clip.channels[0].clone(), clip.channels[1].clone())),
        n => {
            // Downmix: even channels left, odd channels right.
            let frames = clip.frames();
            let mut l = vec![0.0f32; frames];
            let mut r = vec![0.0f32; frames];
            for (c, ch) in clip.channels.iter().enumerate() {
                let dst = if c % 2 == 0 { &mut l } else { &mut r };
                for (d, s) in dst.iter_mut().zip(ch) {
                    *d += s * 2.0 / n as f32;
                }
            }
            Some((l, r))
        }
    };
    let channels_out: u8 = if stereo.is_some() { 2 } else { 1 };
    let mut b = Builder::new().ok_or_else(|| err("LAME init failed".into()))?;
    b.set_num_channels(channels_out)
        .map_err(|e| err(format!("channels: {e:?}")))?;
    b.set_sample_rate(clip.sample_rate)
        .map_err(|e| err(format!("sample rate {}: {e:?}", clip.sample_rate)))?;
    b.set_brate(brate)
        .map_err(|e| err(format!("bitrate: {e:?}")))?;
    b.set_quality(Quality::VeryNice)
        .map_err(|e| err(format!("quality: {e:?}")))?;
    let mut enc = b.build().map_err(|e| err(format!("LAME build: {e:?}")))?;
    let mut out = Vec::new();
    let frames = clip.frames();
    out.reserve(mp3lame_encoder::max_required_buffer_size(frames));
    match &stereo {
        None => enc.encode_to_vec(MonoPcm(clip.channels[0].as_slice()), &mut out),
        Some((l, r)) => enc.encode_to_vec(DualPcm { left: l, right: r }, &mut out),
    }
    .map_err(|e| err(format!("LAME encode: {e:?}")))?;
    enc.flush_to_vec::<FlushGap>(&mut out)
        .map_err(|e| err(format!("LAME flush: {e:?}")))?;
    // LAME reserved the first frame for its Info tag (encoder delay and padding, for gapless
    // decoding); write the tag now that the stream is complete.
    let mut tag = Vec::with_capacity(enc.lame_tag_size().max(2880));
    if enc.lame_tag_encode_to_vec(&mut tag).is_some() && tag.len() <= out.len() {
        out[..tag.len()].copy_from_slice(&tag);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tone(rate: u32, seconds: f32, channels: usize) -> AudioClip {
        let n = (rate as f32 * seconds) as usize;
        let ch: Vec<f32> = (0..n)
            .map(|i| 0.3 * (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin())
            .collect();
        AudioClip {
            sample_rate: rate,
            channels: vec![ch; channels],
        }
    }

    #[test]
    fn wav_and_mp3_round_trip() {
        let clip = tone(44_100, 1.0, 2);
        let wav = encode_wav(&clip).unwrap();
        assert_eq!(crate::sniff(&wav), Some(MediaFormat::Wav));
        let back = decode_audio(&wav, MediaFormat::Wav, &Limits::default()).unwrap();
        assert_eq!(back.sample_rate, 44_100);
        assert_eq!(back.channels.len(), 2);
        assert_eq!(back.frames(), clip.frames());
        let err: f32 = back.channels[0]
            .iter()
            .zip(&clip.channels[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-4, "max error {err}");

        let mp3 = encode_mp3(&clip, 128).unwrap();
        assert_eq!(crate::sniff(&mp3), Some(MediaFormat::Mp3));
        let back = decode_audio(&mp3, MediaFormat::Mp3, &Limits::default()).unwrap();
        assert_eq!(back.sample_rate, 44_100);
        assert!(back.frames() >= clip.frames());
    }

    #[test]
    fn wav_sample_formats_round_trip_and_are_recognised() {
        let clip = tone(48_000, 0.5, 2);
        for (format, tol) in [
            (WavSampleFormat::Int16, 1.0 / 32_767.0),
            (WavSampleFormat::Int24, 1.0 / 8_388_607.0),
            (WavSampleFormat::Int32, 1e-7),
            (WavSampleFormat::Float32, 0.0),
        ] {
            let wav = encode_wav_as(&clip, format).unwrap();
            assert_eq!(wav_sample_format(&wav), Some(format));
            let back = decode_audio(&wav, MediaFormat::Wav, &Limits::default()).unwrap();
            assert_eq!(back.frames(), clip.frames());
            let err: f32 = back.channels[1]
                .iter()
                .zip(&clip.channels[1])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err <= tol, "{format:?}: max error {err}");
        }
        // WAVE_FORMAT_EXTENSIBLE with the PCM sub-format, as ffmpeg and sox write
        // multichannel or > 16-bit files.
        let mut wav = encode_wav_as(&clip, WavSampleFormat::Int24).unwrap();
        // tag 0xFFFE and a 40-byte fmt chunk: splice cbSize, valid bits, mask and the GUID.
        let fmt = wav.windows(4).position(|w| w == b"fmt ").unwrap();
        let size = u32::from_le_bytes(wav[fmt + 4..fmt + 8].try_into().unwrap()) as usize;
        let mut ext = wav[fmt + 8..fmt + 8 + 16].to_vec();
        ext[0..2].copy_from_slice(&0xFFFEu16.to_le_bytes());
        ext.extend_from_slice(&22u16.to_le_bytes());
        ext.extend_from_slice(&24u16.to_le_bytes());
        ext.extend_from_slice(&3u32.to_le_bytes());
        ext.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ]);
        wav.splice(fmt + 4..fmt + 8 + size, {
            let mut v = (ext.len() as u32).to_le_bytes().to_vec();
            v.extend_from_slice(&ext);
            v
        });
        let riff = (wav.len() - 8) as u32;
        wav[4..8].copy_from_slice(&riff.to_le_bytes());
        assert_eq!(wav_sample_format(&wav), Some(WavSampleFormat::Int24));
        assert!(decode_audio(&wav, MediaFormat::Wav, &Limits::default()).is_ok());
        // Not a WAV, or no format chunk: no format.
        assert_eq!(wav_sample_format(b"RIFF\x04\0\0\0WAVE"), None);
        assert_eq!(wav_sample_format(&[]), None);
    }

    #[test]
    fn rejects_long_and_corrupt_audio() {
        let clip = tone(8_000, 3.0, 1);
        let wav = encode_wav(&clip).unwrap();
        let limits = Limits {
            max_audio_seconds: 1.0,
            ..Limits::default()
        };
        assert!(matches!(
            decode_audio(&wav, MediaFormat::Wav, &limits),
            Err(MediaError::LimitExceeded(_))
        ));
        assert!(decode_audio(&wav[..40], MediaFormat::Wav, &Limits::default()).is_err());
        // Crafted format chunks (channels at byte 22, rate at 24 of a canonical header): a
        // clear error from the header check, not the demuxer's panic caught as "rejected".
        let patched = |at: usize, v: &[u8]| {
            let mut w = wav.clone();
            w[at..at + v.len()].copy_from_slice(v);
            w
        };
        for (bad, want) in [
            (patched(24, &0u32.to_le_bytes()), "sample rate of 0 Hz"),
            (patched(22, &0u16.to_le_bytes()), "0 channels"),
        ] {
            let r = decode_audio(&bad, MediaFormat::Wav, &Limits::default());
            assert!(
                matches!(&r, Err(MediaError::Corrupt { detail, .. }) if detail.contains(want)),
                "{want}: {r:?}"
            );
        }
        assert!(matches!(
            decode_audio(
                &patched(22, &200u16.to_le_bytes()),
                MediaFormat::Wav,
                &Limits::default()
            ),
            Err(MediaError::LimitExceeded(_))
        ));
        // A WAV streamed to a pipe declares 0xFFFFFFFF bytes (≈ 268 000 s here): its header
        // can't be trusted, so it decodes to its real length and is judged on that.
        let mut streamed = wav.clone();
        let data = streamed.windows(4).position(|w| w == b"data").unwrap();
        streamed[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        streamed[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let back = decode_audio(&streamed, MediaFormat::Wav, &Limits::default()).unwrap();
        assert_eq!(back.frames(), clip.frames());
        assert!(matches!(
            decode_audio(&streamed, MediaFormat::Wav, &limits),
            Err(MediaError::LimitExceeded(_))
        ));
        assert!(decode_audio(b"ID3garbage", MediaFormat::Mp3, &Limits::default()).is_err());
    }
}
