//! A bounded WebM/Matroska demuxer for the Opus track (RFC 8794 EBML, RFC 9559 Matroska,
//! the Matroska Opus codec mapping).
//!
//! Written here rather than taken from symphonia 0.5's MKV reader: that reader allocates every
//! element, Xiph/EBML lace and Vorbis `CodecPrivate` packet at its declared size before reading
//! it (`read_boxed_slice_exact`), so a few bytes declaring 2⁵⁶ would abort the process, and
//! every one of those sizes would need a check here anyway. This one never allocates from a
//! declared size: packets are slices of the input, every size is checked against the bytes
//! present, and the scan advances at least two bytes per element.

use crate::opus::{parse_head, OpusStream, OPUS_RATE};
use crate::{AudioClip, Limits, MediaError, MediaFormat};

const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CONTENT_ENCODINGS: u32 = 0x6D80;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const SIMPLE_BLOCK: u32 = 0xA3;
const DISCARD_PADDING: u32 = 0x75A2;

fn corrupt(detail: impl Into<String>) -> MediaError {
    MediaError::Corrupt {
        format: MediaFormat::Webm.mime(),
        detail: detail.into(),
    }
}

/// An EBML variable-size integer at `b[at..]` (RFC 8794 §4): (value without the length
/// marker, its length in bytes, whether every value bit is 1, the "unknown size" marker).
fn vint(b: &[u8], at: usize, max_len: u32) -> Option<(u64, usize, bool)> {
    let first = *b.get(at)?;
    let len = first.leading_zeros() + 1;
    if len > max_len {
        return None;
    }
    let bytes = b.get(at..at + len as usize)?;
    let value_bits = 7 * len;
    let raw = bytes.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let value = raw & ((1u64 << value_bits) - 1);
    Some((value, len as usize, value == (1u64 << value_bits) - 1))
}

/// An element header at `at`: (ID with its marker bits, data start, data size or `None` for
/// an unknown size).
fn header(b: &[u8], at: usize) -> Option<(u32, usize, Option<u64>)> {
    let (_, id_len, _) = vint(b, at, 4)?;
    let id = b[at..at + id_len]
        .iter()
        .fold(0u32, |acc, x| (acc << 8) | u32::from(*x));
    let (size, size_len, unknown) = vint(b, at + id_len, 8)?;
    Some((id, at + id_len + size_len, (!unknown).then_some(size)))
}

fn uint(d: &[u8]) -> Option<u64> {
    (d.len() <= 8).then(|| d.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
}

fn int(d: &[u8]) -> Option<i64> {
    let u = uint(d)?;
    let bits = 8 * d.len() as u32;
    Some(if bits == 0 || bits == 64 {
        u as i64
    } else {
        ((u << (64 - bits)) as i64) >> (64 - bits)
    })
}

#[derive(Default)]
struct Track<'a> {
    number: Option<u64>,
    codec: &'a [u8],
    private: Option<&'a [u8]>,
    encoded: bool,
}

/// What the scan found: tracks, every block (track number + frames still laced), and the
/// `DiscardPadding` (ns) of the last block group that had one, with that block's index.
struct Scan<'a> {
    tracks: Vec<Track<'a>>,
    blocks: Vec<&'a [u8]>,
    discard: Option<(usize, i64)>,
}

/// Walks the file's elements in order, entering the masters that lead to tracks and blocks and
/// skipping all others whole. A truncated last element ends the scan (what is complete is
/// kept); an element of unknown size other than a Segment or Cluster is corrupt.
fn scan(b: &[u8]) -> Result<Scan<'_>, MediaError> {
    let (id, start, size) = header(b, 0).ok_or_else(|| corrupt("EBML header cut short"))?;
    if id != EBML {
        return Err(corrupt("not an EBML file"));
    }
    let end = size
        .and_then(|s| usize::try_from(s).ok())
        .and_then(|s| start.checked_add(s))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| corrupt("EBML header size"))?;
    let mut at = start;
    let mut doc_type = None;
    while let Some((id, data, Some(size))) = header(b, at).filter(|h| h.1 < end) {
        let data_end = data.saturating_add(size as usize).min(end);
        if id == DOC_TYPE {
            doc_type = Some(&b[data..data_end]);
        }
        at = data_end;
    }
    match doc_type.map(|d| d.split(|c| *c == 0).next().unwrap_or_default()) {
        Some(b"webm" | b"matroska") => {}
        _ => return Err(corrupt("EBML document type is neither webm nor matroska")),
    }
    let mut found = Scan {
        tracks: Vec::new(),
        blocks: Vec::new(),
        discard: None,
    };
    let mut at = end;
    while let Some((id, data, size)) = header(b, at) {
        if matches!(id, SEGMENT | CLUSTER | TRACKS | TRACK_ENTRY | BLOCK_GROUP) {
            if id == TRACK_ENTRY {
                found.tracks.push(Track::default());
            }
            at = data;
            continue;
        }
        let size = size.ok_or_else(|| corrupt(format!("element {id:#x} of unknown size")))?;
        let Some(data_end) = usize::try_from(size)
            .ok()
            .and_then(|s| data.checked_add(s))
            .filter(|&e| e <= b.len())
        else {
            break; // runs past the end: a truncated file
        };
        let d = &b[data..data_end];
        match (id, found.tracks.last_mut()) {
            (TRACK_NUMBER, Some(t)) => t.number = uint(d),
            (CODEC_ID, Some(t)) => t.codec = d,
            (CODEC_PRIVATE, Some(t)) => t.private = Some(d),
            (CONTENT_ENCODINGS, Some(t)) => t.encoded = true,
            (SIMPLE_BLOCK | BLOCK, _) => found.blocks.push(d),
            (DISCARD_PADDING, _) if !found.blocks.is_empty() => {
                found.discard = int(d).map(|ns| (found.blocks.len() - 1, ns));
            }
            _ => {}
        }
        at = data_end;
    }
    Ok(found)
}

/// The track number of a block and its frames (RFC 9559 §10.3 lacing: none, Xiph, fixed-size,
/// EBML), every size checked against the block.
fn block_frames(block: &[u8]) -> Result<(u64, Vec<&[u8]>), MediaError> {
    let (track, len, _) = vint(block, 0, 8).ok_or_else(|| corrupt("block header"))?;
    let flags = *block
        .get(len + 2)
        .ok_or_else(|| corrupt("block header cut short"))?;
    let mut at = len + 3;
    let lacing = (flags >> 1) & 0b11;
    if lacing == 0 {
        return Ok((track, vec![&block[at..]]));
    }
    let count = usize::from(*block.get(at).ok_or_else(|| corrupt("lace count"))?) + 1;
    at += 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        0b01 => {
            for _ in 1..count {
                let mut size = 0usize;
                loop {
                    let x = *block.get(at).ok_or_else(|| corrupt("Xiph lace sizes"))?;
                    at += 1;
                    size += usize::from(x);
                    if x != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        0b11 => {
            let mut prev = 0i64;
            for i in 1..count {
                let (v, l, _) = vint(block, at, 8).ok_or_else(|| corrupt("EBML lace sizes"))?;
                at += l;
                // Later sizes are signed differences: the value less 2^(7·len − 1) − 1.
                let size = if i == 1 {
                    i64::try_from(v).map_err(|_| corrupt("EBML lace size"))?
                } else {
                    let bias = (1i64 << (7 * l - 1)) - 1;
                    prev.checked_add(v as i64 - bias)
                        .ok_or_else(|| corrupt("EBML lace size"))?
                };
                prev = size;
                sizes.push(usize::try_from(size).map_err(|_| corrupt("negative lace size"))?);
            }
        }
        _ => {
            let rest = block.len().saturating_sub(at);
            if rest % count != 0 {
                return Err(corrupt("fixed-size lacing does not divide the block"));
            }
            sizes = vec![rest / count; count - 1];
        }
    }
    let mut frames = Vec::with_capacity(count);
    for size in sizes {
        let frame = block
            .get(at..at.saturating_add(size))
            .ok_or_else(|| corrupt("laced frame runs past its block"))?;
        frames.push(frame);
        at += size;
    }
    frames.push(block.get(at..).unwrap_or_default());
    Ok((track, frames))
}

/// Decodes the first Opus track (`A_OPUS`) of a WebM or Matroska file to 48 kHz planar f32,
/// within `limits`, trimming the pre-skip and the last block's `DiscardPadding`.
///
/// # Errors
/// [`MediaError::Corrupt`] for malformed EBML, an Opus track without its `OpusHead`, or sizes
/// that run past their element; [`MediaError::Unsupported`] when the file has no Opus track
/// (video only, or another audio codec) or its track is compressed or encrypted
/// (`ContentEncodings`); the errors of [`OpusStream`].
pub(crate) fn decode_webm(bytes: &[u8], limits: &Limits) -> Result<AudioClip, MediaError> {
    let found = scan(bytes)?;
    let unsupported = |operation| MediaError::Unsupported {
        format: MediaFormat::Webm.mime(),
        operation,
    };
    let track = found
        .tracks
        .iter()
        .find(|t| t.codec.starts_with(b"A_OPUS"))
        .ok_or_else(|| {
            unsupported("audio decoding (WebM without an Opus track: only Opus is decoded in WebM)")
        })?;
    if track.encoded {
        return Err(unsupported(
            "audio decoding (compressed or encrypted WebM track)",
        ));
    }
    let number = track
        .number
        .ok_or_else(|| corrupt("Opus track without a track number"))?;
    let head = parse_head(
        track
            .private
            .ok_or_else(|| corrupt("Opus track without CodecPrivate"))?,
        MediaFormat::Webm,
    )?;
    let mut stream = OpusStream::new(&head, MediaFormat::Webm, limits)?;
    let mut trim_end = 0usize;
    for (i, block) in found.blocks.iter().enumerate() {
        let (track, frames) = block_frames(block)?;
        if track != number {
            continue;
        }
        for frame in frames {
            stream.push(frame)?;
        }
        trim_end = match found.discard {
            // ns → samples at 48 kHz
            Some((j, ns)) if j == i && ns > 0 => {
                usize::try_from(ns.saturating_mul(i64::from(OPUS_RATE)) / 1_000_000_000)
                    .unwrap_or(0)
            }
            _ => 0,
        };
    }
    let total = stream.frames().saturating_sub(trim_end) as u64;
    stream.finish(Some(total))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lacing_is_parsed_and_bounded() {
        // Track 1, timecode 0, then flags, lace count − 1 and the sizes.
        let block = |flags: u8, laces: &[u8], data: &[u8]| {
            let mut b = vec![0x81, 0, 0, flags];
            b.extend_from_slice(laces);
            b.extend_from_slice(data);
            b
        };
        let data: Vec<u8> = (0..10).collect();
        let plain = block(0, &[], &data);
        let (track, frames) = block_frames(&plain).unwrap();
        assert_eq!((track, frames), (1, vec![&data[..]]));
        // Xiph: 3 frames of 2, 3 and the rest (5).
        let b = block(0x02, &[2, 2, 3], &data);
        assert_eq!(
            block_frames(&b).unwrap().1,
            vec![&data[..2], &data[2..5], &data[5..]]
        );
        // EBML: first size 4 (0x84), then a delta of −1 (0xBE: 62 − 63) → 3, rest 3.
        let b = block(0x06, &[2, 0x84, 0xBE], &data);
        assert_eq!(
            block_frames(&b).unwrap().1,
            vec![&data[..4], &data[4..7], &data[7..]]
        );
        // Fixed: 2 frames of 5.
        let b = block(0x04, &[1], &data);
        assert_eq!(block_frames(&b).unwrap().1, vec![&data[..5], &data[5..]]);
        // Sizes past the block, a negative EBML size, an uneven fixed lacing: corrupt.
        for bad in [
            block(0x02, &[1, 255, 255, 0], &data),
            block(0x06, &[1, 0x01, 0x80, 0, 0, 0, 0, 0, 0], &data),
            block(0x06, &[2, 0x81, 0x80], &data),
            block(0x04, &[2], &data),
            vec![0x81, 0],
        ] {
            assert!(
                matches!(block_frames(&bad), Err(MediaError::Corrupt { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn vints_and_headers() {
        assert_eq!(vint(&[0x81], 0, 8), Some((1, 1, false)));
        assert_eq!(vint(&[0x40, 0x02], 0, 8), Some((2, 2, false)));
        assert_eq!(vint(&[0xFF], 0, 8), Some((127, 1, true)));
        assert_eq!(vint(&[0x00], 0, 8), None);
        assert_eq!(vint(&[0x10, 0, 0], 0, 8), None, "cut short");
        assert_eq!(
            vint(&[0x08, 0, 0, 0, 0], 0, 4),
            None,
            "ID longer than 4 bytes"
        );
        assert_eq!(
            header(&[0x1A, 0x45, 0xDF, 0xA3, 0x84], 0),
            Some((EBML, 5, Some(4)))
        );
        assert_eq!(
            header(&[0x1F, 0x43, 0xB6, 0x75, 0xFF], 0),
            Some((CLUSTER, 5, None))
        );
        assert_eq!(int(&[0xFF, 0xFE]), Some(-2));
        assert_eq!(int(&[0x7F]), Some(127));
    }
}
