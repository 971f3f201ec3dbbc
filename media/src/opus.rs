//! Opus decoding (RFC 6716) with the system libopus through `opusic-c`, for Opus in Ogg
//! (RFC 7845; packets from symphonia's Ogg demuxer) and in WebM/Matroska (packets from
//! [`crate::webm`]).
//!
//! Output is always 48 kHz (the rate every Opus stream decodes to; RFC 7845 §5.1: the
//! "input sample rate" field is informational only), planar f32. The identification header
//! (`OpusHead`, RFC 7845 §5.1, also a WebM track's `CodecPrivate`) gives the channel count,
//! the pre-skip (samples at 48 kHz dropped from the start, §4.2), the output gain and the
//! channel mapping (families 0, 1, 2 and 255, §5.1.1; family 3's demixing matrix is not
//! supported). End trimming (§4.5) comes from the container: the final Ogg granule position or
//! WebM's `DiscardPadding`.

use opusic_c::multistream::{Config, Decoder};
use opusic_c::SampleRate;

use crate::{AudioClip, Limits, MediaError, MediaFormat};

/// The rate every Opus stream decodes to, Hz.
pub(crate) const OPUS_RATE: u32 = 48_000;
/// Longest Opus packet: 120 ms at 48 kHz (RFC 6716 §3.2.5).
const MAX_PACKET_FRAMES: usize = 5_760;
/// Most consecutive undecodable packets tolerated before the stream is declared corrupt.
const MAX_CONSECUTIVE_BAD_PACKETS: usize = 32;
/// Most channels a multistream decoder is built for (the const-generic arms below).
const MAX_OPUS_CHANNELS: usize = 8;

/// The fields of an `OpusHead` identification header (RFC 7845 §5.1) the decoder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpusHead {
    /// Output channel count (1–255).
    pub channels: usize,
    /// Samples per channel at 48 kHz to drop from the start of the decoded stream.
    pub pre_skip: usize,
    /// Output gain, Q7.8 dB.
    pub gain_q8: i16,
    /// Number of Opus streams in each packet.
    pub streams: u8,
    /// How many of them are coupled (stereo).
    pub coupled: u8,
    /// For each output channel, the decoded channel it takes (255: silence).
    pub mapping: Vec<u8>,
}

/// Parses an `OpusHead` packet of a stream in `format`.
///
/// # Errors
/// [`MediaError::Corrupt`] for a short or malformed header (wrong magic, major version ≠ 0,
/// 0 channels, a family-0 header with more than 2 channels, stream counts that don't add
/// up), [`MediaError::Unsupported`] for mapping families other than 0, 1, 2 and 255.
pub(crate) fn parse_head(b: &[u8], format: MediaFormat) -> Result<OpusHead, MediaError> {
    let corrupt = |detail: &str| MediaError::Corrupt {
        format: format.mime(),
        detail: format!("Opus identification header: {detail}"),
    };
    if b.len() < 19 || !b.starts_with(b"OpusHead") {
        return Err(corrupt("missing or shorter than 19 bytes"));
    }
    if b[8] & 0xF0 != 0 {
        return Err(corrupt("unsupported major version"));
    }
    let channels = usize::from(b[9]);
    let pre_skip = usize::from(u16::from_le_bytes([b[10], b[11]]));
    let gain_q8 = i16::from_le_bytes([b[16], b[17]]);
    let family = b[18];
    if channels == 0 {
        return Err(corrupt("0 channels"));
    }
    let (streams, coupled, mapping) = match family {
        0 if channels <= 2 => (1, (channels - 1) as u8, (0..channels as u8).collect()),
        0 => return Err(corrupt("mapping family 0 with more than 2 channels")),
        1 | 2 | 255 => {
            let table = b
                .get(19..21 + channels)
                .ok_or_else(|| corrupt("channel mapping table cut short"))?;
            let (streams, coupled) = (table[0], table[1]);
            if streams == 0
                || coupled > streams
                || usize::from(streams) + usize::from(coupled) > 255
            {
                return Err(corrupt("invalid stream counts"));
            }
            let decoded = u16::from(streams) + u16::from(coupled);
            if table[2..]
                .iter()
                .any(|&m| m != 255 && u16::from(m) >= decoded)
            {
                return Err(corrupt(
                    "channel mapping names a stream that does not exist",
                ));
            }
            (streams, coupled, table[2..].to_vec())
        }
        _ => {
            return Err(MediaError::Unsupported {
                format: format.mime(),
                operation: "audio decoding (Opus channel mapping family other than 0, 1, 2, 255)",
            })
        }
    };
    Ok(OpusHead {
        channels,
        pre_skip,
        gain_q8,
        streams,
        coupled,
        mapping,
    })
}

/// A libopus multistream decoder for `head`'s layout (families 0–2 and 255 all decode as a
/// multistream with a mapping table; family 0 is one stream, coupled when stereo).
fn make_decoder(head: &OpusHead) -> Result<Decoder, String> {
    fn build<const CH: usize>(head: &OpusHead) -> Result<Decoder, String> {
        let mapping: [u8; CH] = head
            .mapping
            .as_slice()
            .try_into()
            .map_err(|_| "mapping table length".to_string())?;
        let config = Config::<CH>::try_new(head.streams, head.coupled, mapping)
            .ok_or_else(|| "invalid stream layout".to_string())?;
        Decoder::new(config, SampleRate::Hz48000).map_err(|e| e.message().to_string())
    }
    match head.channels {
        1 => build::<1>(head),
        2 => build::<2>(head),
        3 => build::<3>(head),
        4 => build::<4>(head),
        5 => build::<5>(head),
        6 => build::<6>(head),
        7 => build::<7>(head),
        8 => build::<8>(head),
        n => Err(format!("{n} channels")),
    }
}

/// Decodes Opus packets one at a time into planar samples, within `limits`.
pub(crate) struct OpusStream {
    decoder: Decoder,
    format: MediaFormat,
    channels: Vec<Vec<f32>>,
    buf: Vec<f32>,
    skip: usize,
    bad_run: usize,
    max_frames: usize,
}

impl OpusStream {
    /// A decoder for the stream `head` describes.
    ///
    /// # Errors
    /// [`MediaError::LimitExceeded`] for more channels than `limits.max_channels` (or 8),
    /// [`MediaError::Corrupt`] when libopus refuses the layout.
    pub(crate) fn new(
        head: &OpusHead,
        format: MediaFormat,
        limits: &Limits,
    ) -> Result<Self, MediaError> {
        let max_ch = limits.max_channels.min(MAX_OPUS_CHANNELS);
        if head.channels > max_ch {
            return Err(MediaError::LimitExceeded(format!(
                "{} channels > {max_ch} channel limit",
                head.channels
            )));
        }
        let mut decoder = make_decoder(head).map_err(|detail| MediaError::Corrupt {
            format: format.mime(),
            detail: format!("Opus decoder setup: {detail}"),
        })?;
        // RFC 7845 §5.1: players SHOULD apply the output gain; libopus does it (Q7.8 dB).
        decoder
            .set_gain(i32::from(head.gain_q8))
            .map_err(|e| MediaError::Corrupt {
                format: format.mime(),
                detail: format!("Opus output gain: {}", e.message()),
            })?;
        Ok(Self {
            decoder,
            format,
            channels: vec![Vec::new(); head.channels],
            buf: vec![0.0; MAX_PACKET_FRAMES * head.channels],
            skip: head.pre_skip,
            bad_run: 0,
            max_frames: (limits.max_audio_seconds.max(0.0) * f64::from(OPUS_RATE)) as usize,
        })
    }

    /// Decodes one packet and appends its samples (less what remains of the pre-skip).
    ///
    /// # Errors
    /// [`MediaError::Corrupt`] after more than 32 consecutive packets libopus rejects,
    /// [`MediaError::LimitExceeded`] once the decoded audio is longer than the limit.
    pub(crate) fn push(&mut self, packet: &[u8]) -> Result<(), MediaError> {
        if packet.is_empty() {
            return Ok(()); // RFC 7845 §3: a zero-length packet carries nothing to decode
        }
        let frames = match self
            .decoder
            .decode_float_to_slice(packet, &mut self.buf, false)
        {
            Ok(n) => n,
            Err(e) => {
                self.bad_run += 1;
                if self.bad_run > MAX_CONSECUTIVE_BAD_PACKETS {
                    return Err(MediaError::Corrupt {
                        format: self.format.mime(),
                        detail: format!("too many undecodable Opus packets ({})", e.message()),
                    });
                }
                return Ok(());
            }
        };
        self.bad_run = 0;
        let n_ch = self.channels.len();
        let start = self.skip.min(frames);
        self.skip -= start;
        for (c, ch) in self.channels.iter_mut().enumerate() {
            ch.extend(
                self.buf[start * n_ch..frames * n_ch]
                    .iter()
                    .skip(c)
                    .step_by(n_ch)
                    .map(|s| {
                        if s.is_finite() {
                            s.clamp(-1.0, 1.0)
                        } else {
                            0.0
                        }
                    }),
            );
        }
        if self.channels[0].len() > self.max_frames {
            return Err(MediaError::LimitExceeded(format!(
                "audio longer than the {} s duration limit",
                self.max_frames / OPUS_RATE as usize
            )));
        }
        Ok(())
    }

    /// Samples per channel decoded so far (after the pre-skip).
    pub(crate) fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// The decoded clip, cut to `total_frames` (after pre-skip) when the container says how
    /// long the stream is.
    ///
    /// # Errors
    /// [`MediaError::Corrupt`] when nothing decoded.
    pub(crate) fn finish(mut self, total_frames: Option<u64>) -> Result<AudioClip, MediaError> {
        if let Some(total) = total_frames.and_then(|t| usize::try_from(t).ok()) {
            for ch in &mut self.channels {
                ch.truncate(total);
            }
        }
        if self.channels[0].is_empty() {
            return Err(MediaError::Corrupt {
                format: self.format.mime(),
                detail: "no decodable Opus audio".into(),
            });
        }
        Ok(AudioClip {
            sample_rate: OPUS_RATE,
            channels: self.channels,
        })
    }
}

/// Decodes the Opus track `track_id` of an Ogg file that symphonia's reader has opened;
/// `head` is the track's `OpusHead` (symphonia's `extra_data`), `bytes` the whole file (for
/// the final granule position).
///
/// # Errors
/// As [`parse_head`], [`OpusStream::new`] and [`OpusStream::push`]; a demuxer error before
/// any packet is [`MediaError::Corrupt`].
pub(crate) fn decode_ogg(
    reader: &mut dyn symphonia::core::formats::FormatReader,
    track_id: u32,
    head: &[u8],
    bytes: &[u8],
    limits: &Limits,
) -> Result<AudioClip, MediaError> {
    use symphonia::core::errors::Error as SymError;
    let format = MediaFormat::Ogg;
    let head = parse_head(head, format)?;
    let mut stream = OpusStream::new(&head, format, limits)?;
    let mut packets = 0usize;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if packets == 0 => {
                return Err(MediaError::Corrupt {
                    format: format.mime(),
                    detail: e.to_string(),
                })
            }
            Err(_) => break, // a damaged tail: keep what decoded
        };
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        stream.push(&packet.data)?;
    }
    let total = ogg_final_granule(bytes).and_then(|g| g.checked_sub(head.pre_skip as u64));
    stream.finish(total)
}

/// The granule position of the last Ogg page (RFC 3533 §6) when it is flagged end-of-stream:
/// for Opus, pre-skip plus the number of samples the stream holds (RFC 7845 §4.5). `None`
/// when the file does not end with such a page (e.g. truncated) or the position is −1.
fn ogg_final_granule(bytes: &[u8]) -> Option<u64> {
    // A page is at most 27 + 255 + 255 × 255 bytes.
    let tail_start = bytes.len().saturating_sub(27 + 255 + 255 * 255);
    let tail = &bytes[tail_start..];
    let at = tail.windows(4).rposition(|w| w == b"OggS")?;
    let page = tail.get(at..at + 27)?;
    if page[4] != 0 || page[5] & 0x04 == 0 {
        return None;
    }
    let mut g = [0u8; 8];
    g.copy_from_slice(&page[6..14]);
    let granule = u64::from_le_bytes(g);
    (granule != u64::MAX).then_some(granule)
}

#[cfg(test)]
#[path = "opus_tests.rs"]
mod tests;
