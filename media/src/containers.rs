//! Container tables checked against the bytes actually present, before a demuxer or decoder
//! reserves memory from them.
//!
//! symphonia 0.5 sizes vectors from counts it reads in the file: `Vec::with_capacity(count)`
//! for MP4 `stsc`/`stco`/`co64`/`stsz`/`stts` entry counts, `vec![0; len]` for Vorbis comment
//! and FLAC picture field lengths. A 2 KB file declaring 2³² entries asks for tens of GB and the
//! allocation failure aborts the process. Every such count here must fit in the bytes of its
//! box or block, and every box or block in its parent and the file, so no reservation can
//! exceed the input's size. The `image` decoders allocate the whole canvas from the declared
//! dimensions; [`check_declared_pixels`] requires the data a JPEG, PNG, WebP, GIF or TIFF of
//! that size needs at the very least.

use crate::{MediaError, MediaFormat};

/// Deepest box nesting followed in an ISO BMFF file.
const MAX_BOX_DEPTH: usize = 16;

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// Checks the container tables of `bytes` (sniffed as `format`): MP4/M4A/MOV sample tables,
/// FLAC metadata blocks, Ogg Vorbis/Opus comment headers. Other formats pass.
///
/// # Errors
/// [`MediaError::Corrupt`] naming the table whose declared size exceeds the data present.
pub fn check_tables(bytes: &[u8], format: MediaFormat) -> Result<(), MediaError> {
    let res = match format {
        MediaFormat::M4a | MediaFormat::Mp4 | MediaFormat::Mov => {
            check_boxes(bytes, 0, bytes.len(), 0, None)
        }
        MediaFormat::Flac => check_flac(bytes),
        MediaFormat::Ogg => check_ogg_comments(bytes),
        _ => Ok(()),
    };
    res.map_err(|detail| MediaError::Corrupt {
        format: format.mime(),
        detail,
    })
}

/// ISO/IEC 14496-12 boxes whose payload is a sequence of boxes (`meta` is a full box first).
fn is_container(kind: &[u8]) -> bool {
    matches!(
        kind,
        b"moov"
            | b"trak"
            | b"mdia"
            | b"minf"
            | b"stbl"
            | b"edts"
            | b"dinf"
            | b"mvex"
            | b"moof"
            | b"traf"
            | b"udta"
            | b"meta"
            | b"ilst"
    )
}

/// Full boxes holding a table: (entry-count offset in the payload, bytes per entry).
/// `stsz` counts samples only when its constant `sample_size` (offset 4) is 0.
fn table_layout(kind: &[u8], payload: &[u8]) -> Option<(usize, u64)> {
    Some(match kind {
        b"stsc" => (4, 12),
        b"stco" | b"stss" => (4, 4),
        b"co64" | b"stts" | b"ctts" => (4, 8),
        b"stsz" if u32_be(payload, 4) == Some(0) => (8, 4),
        b"elst" => (4, if payload.first() == Some(&1) { 20 } else { 12 }),
        _ => return None,
    })
}

/// Walks the boxes in `b[start..end]`, the payload of a `parent` box (`None`: the file). At the
/// top level a box other than `moov`/`moof` may run past the end (a truncated `mdat`: the
/// demuxer reads what is there). Children of `ilst` (metadata items) hold `data` boxes that
/// symphonia reads whole, so they are walked too.
fn check_boxes(
    b: &[u8],
    start: usize,
    end: usize,
    depth: usize,
    parent: Option<&[u8]>,
) -> Result<(), String> {
    let top = parent.is_none();
    if depth > MAX_BOX_DEPTH {
        return Err(format!("boxes nested deeper than {MAX_BOX_DEPTH} levels"));
    }
    let mut at = start;
    while at + 8 <= end {
        let size32 = u32_be(b, at).unwrap_or(0);
        let kind = &b[at + 4..at + 8];
        let name = String::from_utf8_lossy(kind).into_owned();
        let (header, size) = match size32 {
            0 => (8, (end - at) as u64),
            1 => {
                let Some(x) = b.get(at + 8..at + 16) else {
                    return Err(format!("'{name}' box header cut short"));
                };
                let mut n = [0u8; 8];
                n.copy_from_slice(x);
                (16, u64::from_be_bytes(n))
            }
            n => (8, u64::from(n)),
        };
        if size < header as u64 {
            return Err(format!("'{name}' box declares {size} bytes"));
        }
        let fits = size <= (end - at) as u64;
        if !fits {
            if top && kind != b"moov" && kind != b"moof" {
                return Ok(());
            }
            return Err(format!(
                "'{name}' box declares {size} bytes but only {} remain",
                end - at
            ));
        }
        let box_end = at + size as usize;
        let payload = &b[at + header..box_end];
        check_sample_sizes(kind, payload, b.len())
            .map_err(|detail| format!("'{name}' {detail}"))?;
        if let Some((count_at, entry)) = table_layout(kind, payload) {
            let count = u32_be(payload, count_at)
                .ok_or_else(|| format!("'{name}' box too short for its entry count"))?;
            let need = u64::from(count) * entry;
            let have = payload.len().saturating_sub(count_at + 4) as u64;
            if need > have {
                return Err(format!(
                    "'{name}' table declares {count} entries ({need} bytes) in a {have}-byte box"
                ));
            }
        } else if is_container(kind) || parent == Some(&b"ilst"[..]) {
            // `meta` is a full box in ISO BMFF (version + flags first), a plain container in
            // QuickTime; a zero first word tells them apart.
            let skip = if kind == b"meta" && u32_be(payload, 0) == Some(0) {
                4
            } else {
                0
            };
            check_boxes(b, at + header + skip, box_end, depth + 1, Some(kind))?;
        }
        at = box_end;
    }
    Ok(())
}

/// Sample sizes an MP4 box declares (ISO/IEC 14496-12 `stsz` §8.7.3, `trex` §8.8.3, `tfhd`
/// §8.8.7, `trun` §8.8.8): symphonia reads every sample into a buffer of its declared size
/// (`read_boxed_slice_exact`), so no sample may be larger than the file (fuzzer find: a 1.4 KB
/// M4A whose `stsz` declared a 4 GB sample). A `trun`'s per-sample fields must fit its box.
fn check_sample_sizes(kind: &[u8], p: &[u8], file_len: usize) -> Result<(), String> {
    let flags = u32_be(p, 0).unwrap_or(0) & 0x00FF_FFFF;
    let fits = |size: Option<u32>| match size {
        Some(n) if n as usize > file_len => Err(format!(
            "declares a sample of {n} bytes in a {file_len}-byte file"
        )),
        _ => Ok(()),
    };
    match kind {
        b"stsz" => {
            fits(u32_be(p, 4))?;
            if u32_be(p, 4) == Some(0) {
                let count = u32_be(p, 8).unwrap_or(0) as usize;
                (0..count.min(p.len() / 4)).try_for_each(|i| fits(u32_be(p, 12 + 4 * i)))?;
            }
        }
        b"trex" => fits(u32_be(p, 16))?,
        b"tfhd" if flags & 0x10 != 0 => {
            // track_ID, then the optional fields flagged 0x01 (8 bytes), 0x02 and 0x08 (4 each).
            let at = 8 + [(0x01, 8), (0x02, 4), (0x08, 4)]
                .iter()
                .filter(|(f, _)| flags & f != 0)
                .map(|(_, n)| n)
                .sum::<usize>();
            fits(u32_be(p, at))?;
        }
        b"trun" => {
            let count = u64::from(u32_be(p, 4).unwrap_or(0));
            let first = 8 + 4 * (flags & 0x01 != 0) as usize + 4 * (flags & 0x04 != 0) as usize;
            let stride = 4 * (flags & 0xF00).count_ones() as usize;
            if count * stride as u64 > p.len().saturating_sub(first) as u64 {
                return Err(format!(
                    "declares {count} samples of {stride} bytes in a {}-byte box",
                    p.len()
                ));
            }
            if flags & 0x200 != 0 {
                let size_at = first + 4 * (flags & 0x100 != 0) as usize;
                (0..count as usize).try_for_each(|i| fits(u32_be(p, size_at + stride * i)))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// FLAC (RFC 9639 §8): every metadata block fits in the file; inside `VORBIS_COMMENT` (type 4)
/// and `PICTURE` (type 6) every length fits in the block.
fn check_flac(b: &[u8]) -> Result<(), String> {
    let mut at = 4; // "fLaC"
    for _ in 0..1024 {
        let Some(h) = b.get(at..at + 4) else {
            return Err("metadata block header cut short".into());
        };
        let last = h[0] & 0x80 != 0;
        let kind = h[0] & 0x7F;
        let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let body_start = at + 4;
        let Some(body) = b.get(body_start..body_start + len) else {
            return Err(format!(
                "metadata block of type {kind} declares {len} bytes but only {} remain",
                b.len().saturating_sub(body_start)
            ));
        };
        match kind {
            4 => check_vorbis_comment(body, body.len())?,
            6 => check_flac_picture(body)?,
            _ => {}
        }
        if last {
            return Ok(());
        }
        at = body_start + len;
    }
    Err("more than 1024 metadata blocks".into())
}

/// A Vorbis comment header (Vorbis I §5.2.1, little-endian lengths) in `c`: the vendor string,
/// the comment count and every comment length fit in `room` bytes.
fn check_vorbis_comment(c: &[u8], room: usize) -> Result<(), String> {
    let vendor = u32_le(c, 0).ok_or("comment header cut short")? as usize;
    if vendor > room {
        return Err(format!(
            "vendor string of {vendor} bytes in a {room}-byte comment header"
        ));
    }
    let mut at = 4 + vendor;
    let Some(count) = u32_le(c, at) else {
        return Ok(()); // cut short: the reader stops there
    };
    if u64::from(count) * 4 > room as u64 {
        return Err(format!("{count} comments in a {room}-byte comment header"));
    }
    at += 4;
    for _ in 0..count {
        let Some(len) = u32_le(c, at) else {
            return Ok(());
        };
        if len as usize > room {
            return Err(format!("a comment of {len} bytes in a {room}-byte header"));
        }
        at = at.saturating_add(4 + len as usize);
    }
    Ok(())
}

/// FLAC `PICTURE` block (RFC 9639 §8.8, big-endian): media type, description and picture data
/// lengths fit in the block.
fn check_flac_picture(p: &[u8]) -> Result<(), String> {
    let room = p.len();
    let mut at = 4;
    for field in ["media type", "description"] {
        let len = u32_be(p, at).ok_or("picture block cut short")? as usize;
        if len > room {
            return Err(format!(
                "picture {field} of {len} bytes in a {room}-byte block"
            ));
        }
        at = at.saturating_add(4 + len);
    }
    at = at.saturating_add(16); // width, height, depth, colours
    if let Some(len) = u32_be(p, at) {
        if len as usize > room {
            return Err(format!(
                "picture data of {len} bytes in a {room}-byte block"
            ));
        }
    }
    Ok(())
}

/// Ogg Vorbis (`\x03vorbis`) and Opus (`OpusTags`) comment headers: every length fits in the
/// rest of the file (a packet can span pages, so the file is the bound).
fn check_ogg_comments(b: &[u8]) -> Result<(), String> {
    for magic in [&b"\x03vorbis"[..], b"OpusTags"] {
        if let Some(pos) = b.windows(magic.len()).position(|w| w == magic) {
            let start = pos + magic.len();
            check_vorbis_comment(&b[start..], b.len() - start)?;
        }
    }
    Ok(())
}

/// Most pixels one byte of a PNG can expand to: DEFLATE expands at most 1032:1 (RFC 1951),
/// over at least one bit per pixel. Also the density cap for codings without a hard bound.
const PNG_PIXELS_PER_BYTE: u64 = 8 * 1032;
/// Most bytes one byte of LZW data can expand to (GIF89a Appendix F, TIFF 6.0 §13): a code of
/// at least 12 bits once the table is full (GIF may keep coding without a clear code) stands
/// for a string of at most 4096 symbols.
const LZW_BYTES_PER_BYTE: u64 = 4096 * 8 / 12;

/// Checks that `bytes` can hold a `width` × `height` image of `format` at all, before the
/// decoder allocates its canvas.
///
/// Lower bounds on the coded data ([`MediaError::Corrupt`] below them):
/// - JPEG (ITU-T T.81): a Huffman-coded scan spends at least one bit per 8×8 luma block in
///   its DC coefficients (one bit per block per scan, every block coded);
/// - PNG: the zlib stream (RFC 1951) expands at most 1032:1, over at least one bit per pixel;
/// - lossy WebP (VP8 key frame, RFC 6386 §11.2–11.4): every 16×16 macroblock codes its luma
///   and chroma modes with fixed probabilities, the first decision of each at 145/256 and
///   142/256, so at least 0.8 + 0.8 bits per macroblock (one bit is the bound used);
/// - TIFF (TIFF 6.0 §3, §9, §13, Adobe Deflate): the first image's raw size (width × height ×
///   bits per sample × samples per pixel) divided by its compression's largest expansion —
///   1 uncompressed, 64 PackBits (2 bytes → 128), 1032 Deflate, 2730 LZW (and any other).
///
/// Codings with no hard bound — a GIF's canvas (its frames need not cover it) and lossless or
/// animated WebP (a flat VP8L image costs 0 bits per pixel) — are held to a density cap
/// instead ([`MediaError::LimitExceeded`]): 2730 pixels per byte for GIF (LZW's largest
/// expansion) and 8256 for WebP (PNG's bound). An image past it is a nearly empty canvas with
/// nothing to analyse. Other formats pass.
///
/// # Errors
/// [`MediaError::Corrupt`] when the file is smaller than the least data such an image needs,
/// [`MediaError::LimitExceeded`] past the density caps.
pub fn check_declared_pixels(
    bytes: &[u8],
    format: MediaFormat,
    width: u32,
    height: u32,
) -> Result<(), MediaError> {
    let (w, h) = (u64::from(width), u64::from(height));
    let len = bytes.len() as u64;
    let (need, capped) = match format {
        MediaFormat::Jpeg => (w.div_ceil(8) * h.div_ceil(8) / 8, false),
        MediaFormat::Png => (w * h / PNG_PIXELS_PER_BYTE, false),
        MediaFormat::Webp if webp_is_simple_lossy(bytes) => {
            (w.div_ceil(16) * h.div_ceil(16) / 8, false)
        }
        MediaFormat::Webp => (w * h / PNG_PIXELS_PER_BYTE, true),
        MediaFormat::Gif => (w * h / LZW_BYTES_PER_BYTE, true),
        MediaFormat::Tiff => (tiff_min_bytes(bytes, w * h), false),
        _ => (0, false),
    };
    if len >= need {
        return Ok(());
    }
    let detail = format!(
        "declares {width}x{height} pixels but holds {len} bytes; such an image needs at least {need}"
    );
    Err(if capped {
        MediaError::LimitExceeded(format!("{} {detail}", format.mime()))
    } else {
        MediaError::Corrupt {
            format: format.mime(),
            detail,
        }
    })
}

/// Whether a WebP (RIFF, "WebP Container Specification") holds one lossy `VP8 ` bitstream and
/// no animation: the chunks are walked from offset 12 until the first image chunk.
fn webp_is_simple_lossy(b: &[u8]) -> bool {
    let mut at = 12usize;
    for _ in 0..64 {
        let Some(id) = b.get(at..at + 4) else {
            return false;
        };
        match id {
            b"VP8 " => return true,
            b"VP8L" | b"ANMF" | b"ANIM" => return false,
            _ => {}
        }
        let Some(size) = u32_le(b, at + 4) else {
            return false;
        };
        let size = u64::from(size) + u64::from(size & 1);
        at = match usize::try_from(8 + size)
            .ok()
            .and_then(|s| at.checked_add(s))
        {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// The least bytes a TIFF's first image of `pixels` pixels needs (see
/// [`check_declared_pixels`]); 0 when its first IFD can't be read (the decoder then fails on
/// it anyway).
fn tiff_min_bytes(b: &[u8], pixels: u64) -> u64 {
    let le = b.starts_with(b"II");
    let u16_at = |at: usize| {
        b.get(at..at + 2).map(|x| {
            let x = [x[0], x[1]];
            if le {
                u16::from_le_bytes(x)
            } else {
                u16::from_be_bytes(x)
            }
        })
    };
    let u32_at = |at: usize| {
        b.get(at..at + 4).map(|x| {
            let x = [x[0], x[1], x[2], x[3]];
            if le {
                u32::from_le_bytes(x)
            } else {
                u32::from_be_bytes(x)
            }
        })
    };
    let Some(ifd) = u32_at(4).map(|o| o as usize) else {
        return 0;
    };
    let (mut bits, mut samples, mut compression) = (1u64, 1u64, 1u16);
    for i in 0..usize::from(u16_at(ifd).unwrap_or(0)).min(512) {
        let e = ifd + 2 + 12 * i;
        let (Some(tag), Some(kind), Some(count)) = (u16_at(e), u16_at(e + 2), u32_at(e + 4)) else {
            break;
        };
        // A SHORT value: in the entry when it fits (≤ 2 of them), else at the offset there.
        let short = || match (kind, count) {
            (3, 1 | 2) => u16_at(e + 8),
            (3, _) => u32_at(e + 8).and_then(|o| u16_at(o as usize)),
            (4, 1) => u32_at(e + 8).and_then(|v| u16::try_from(v).ok()),
            _ => None,
        };
        match tag {
            258 => bits = short().map_or(bits, u64::from),
            259 => compression = short().unwrap_or(compression),
            277 => samples = short().map_or(samples, u64::from),
            _ => {}
        }
    }
    let ratio = match compression {
        1 => 1,
        32773 => 64,
        8 | 32946 => 1032,
        _ => LZW_BYTES_PER_BYTE,
    };
    (pixels
        .saturating_mul(bits.max(1))
        .saturating_mul(samples.max(1))
        / 8)
        / ratio
}

#[cfg(test)]
#[path = "containers_tests.rs"]
mod tests;
