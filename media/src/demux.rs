//! Which demuxer reads an audio upload: the one for the format Hallmark sniffed, never one
//! symphonia finds further into the bytes.
//!
//! symphonia 0.5's default probe (`symphonia::default::get_probe`) scans up to 1 MiB for the
//! marker of *any* registered container and skips ID3v2 tags on the way, so a file sniffed as
//! MP3 (it starts with `ID3`) was demuxed as the FLAC, Ogg, WAV or MP4 stream that followed
//! its tag, and the container-table checks ([`crate::check_tables`]), which ran for MP3, never
//! saw that stream's tables (fuzzer find: an ID3 tag followed by a FLAC comment declaring
//! 4 GB; docs/FUZZING.md). Here leading ID3v2 tags are stripped, what follows is sniffed
//! again, and the probe only knows that format's reader.

use symphonia::core::probe::Probe;
use symphonia::default::formats::{
    AdtsReader, FlacReader, IsoMp4Reader, MpaReader, OggReader, WavReader,
};

use crate::{sniff, MediaFormat};

/// Most ID3v2 tags skipped in front of the audio stream.
const MAX_ID3_TAGS: usize = 16;

/// The audio stream of `bytes` (sniffed as `format`) after any leading ID3v2 tags, and its
/// format: the sniffed format of what follows the tags when that is another audio container
/// (WAV, FLAC, Ogg, M4A), else MP3 (MPEG audio or ADTS frames). A tag whose declared size
/// (ID3v2.4 §3.1: 28-bit syncsafe, plus a 10-byte footer when flagged) runs past the end
/// leaves an empty stream.
pub(crate) fn audio_stream(bytes: &[u8], format: MediaFormat) -> (&[u8], MediaFormat) {
    if format != MediaFormat::Mp3 {
        return (bytes, format);
    }
    let mut rest = bytes;
    for _ in 0..MAX_ID3_TAGS {
        let Some(h) = rest.get(..10).filter(|h| h.starts_with(b"ID3")) else {
            break;
        };
        if h[6..10].iter().any(|b| b & 0x80 != 0) {
            break; // not a syncsafe size: not a tag symphonia would skip either
        }
        let size = h[6..10]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(*b));
        let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
        rest = rest.get(10 + size + footer..).unwrap_or_default();
    }
    let inner = match sniff(rest) {
        Some(f @ (MediaFormat::Wav | MediaFormat::Flac | MediaFormat::Ogg | MediaFormat::M4a)) => f,
        _ => MediaFormat::Mp3,
    };
    (rest, inner)
}

/// A probe that only recognises `format`'s container (MP3: MPEG audio and ADTS frames).
pub(crate) fn probe_for(format: MediaFormat) -> Probe {
    let mut probe = Probe::default();
    match format {
        MediaFormat::Wav => probe.register_all::<WavReader>(),
        MediaFormat::Flac => probe.register_all::<FlacReader>(),
        MediaFormat::Ogg => probe.register_all::<OggReader>(),
        MediaFormat::M4a | MediaFormat::Mp4 | MediaFormat::Mov => {
            probe.register_all::<IsoMp4Reader>()
        }
        _ => {
            probe.register_all::<MpaReader>();
            probe.register_all::<AdtsReader>();
        }
    }
    probe
}
