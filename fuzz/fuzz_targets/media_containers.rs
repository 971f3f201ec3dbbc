//! Container-table checks (media/src/containers.rs) on any bytes, whatever they sniff as:
//! MP4/M4A/MOV box trees, FLAC metadata blocks, Ogg comment headers, and the declared-pixel
//! check for JPEG/PNG/GIF/WebP/TIFF with dimensions taken from the input's first 8 bytes.
#![no_main]

use hallmark_media::{check_declared_pixels, check_tables, sniff, MediaFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data);
    for f in [MediaFormat::M4a, MediaFormat::Flac, MediaFormat::Ogg] {
        let _ = check_tables(data, f);
    }
    if let Some(d) = data.get(..8) {
        let w = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        let h = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
        for f in [
            MediaFormat::Jpeg,
            MediaFormat::Png,
            MediaFormat::Gif,
            MediaFormat::Webp,
            MediaFormat::Tiff,
        ] {
            let _ = check_declared_pixels(data, f, w, h);
        }
    }
});
