#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::{decode_audio, decode_image, Limits};

fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(payload);
    v
}

/// ftyp + moov/trak/mdia/minf/stbl holding one table box `kind` whose entry count is `count`
/// and which carries `entries` bytes of entries.
fn m4a_with_table(kind: &[u8; 4], count: u32, entries: usize) -> Vec<u8> {
    let mut table = vec![0u8; 4]; // version + flags
    if kind == b"stsz" {
        table.extend_from_slice(&0u32.to_be_bytes()); // variable sample sizes
    }
    table.extend_from_slice(&count.to_be_bytes());
    table.extend(std::iter::repeat_n(0u8, entries));
    let stbl = mp4_box(b"stbl", &mp4_box(kind, &table));
    let moov = mp4_box(
        b"moov",
        &mp4_box(b"trak", &mp4_box(b"mdia", &mp4_box(b"minf", &stbl))),
    );
    let mut f = mp4_box(b"ftyp", b"M4A \0\0\0\0M4A isom");
    f.extend_from_slice(&moov);
    f
}

#[test]
fn mp4_tables_must_fit_their_boxes() {
    for (kind, entry) in [
        (b"stsc", 12),
        (b"stco", 4),
        (b"co64", 8),
        (b"stts", 8),
        (b"stsz", 4),
    ] {
        // As many entries as the box holds: fine.
        let ok = m4a_with_table(kind, 3, 3 * entry);
        assert!(check_tables(&ok, MediaFormat::M4a).is_ok(), "{kind:?}");
        // The 1.8 KB crash: a count in the billions in a box of a few bytes.
        let bomb = m4a_with_table(kind, 0xFFFF_FFF0, 16);
        let err = check_tables(&bomb, MediaFormat::M4a)
            .unwrap_err()
            .to_string();
        assert!(err.contains("entries"), "{err}");
        // And the decoder refuses it without reserving anything.
        assert!(matches!(
            decode_audio(&bomb, MediaFormat::M4a, &Limits::default()),
            Err(MediaError::Corrupt { .. })
        ));
    }
}

#[test]
fn mp4_boxes_must_fit_their_parents() {
    let mut f = m4a_with_table(b"stco", 1, 4);
    // Grow the declared size of `trak` (after ftyp (24 bytes) and the moov header) past moov.
    let trak = 24 + 8;
    assert_eq!(&f[trak + 4..trak + 8], b"trak");
    f[trak..trak + 4].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    assert!(check_tables(&f, MediaFormat::M4a).is_err());
    // A truncated mdat at the end of the file is left to the demuxer.
    let mut g = m4a_with_table(b"stco", 1, 4);
    g.extend_from_slice(&1_000_000u32.to_be_bytes());
    g.extend_from_slice(b"mdat\0\0");
    assert!(check_tables(&g, MediaFormat::M4a).is_ok());
    // Self-nesting boxes stop at the depth limit.
    let mut deep = mp4_box(b"stbl", &[]);
    for _ in 0..40 {
        deep = mp4_box(b"trak", &deep);
    }
    let mut h = mp4_box(b"ftyp", b"M4A \0\0\0\0");
    h.extend_from_slice(&mp4_box(b"moov", &deep));
    assert!(check_tables(&h, MediaFormat::M4a)
        .unwrap_err()
        .to_string()
        .contains("nested"));
}

/// fLaC + a valid STREAMINFO + a VORBIS_COMMENT block holding `comment`.
fn flac_with_comment(comment: &[u8]) -> Vec<u8> {
    let mut f = b"fLaC".to_vec();
    f.extend_from_slice(&[0x00, 0, 0, 34]);
    let mut si = vec![0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0];
    // 44100 Hz, 1 channel, 16 bits, 0 samples: 20 + 3 + 5 + 36 bits.
    let packed: u64 = (44_100u64 << 44) | (15 << 36);
    si.extend_from_slice(&packed.to_be_bytes());
    si.extend_from_slice(&[0u8; 16]);
    f.extend_from_slice(&si);
    let len = comment.len() as u32;
    f.extend_from_slice(&[0x84, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    f.extend_from_slice(comment);
    f
}

#[test]
fn flac_comment_and_picture_lengths_must_fit_their_block() {
    let mut ok = 0u32.to_le_bytes().to_vec(); // vendor ""
    ok.extend_from_slice(&1u32.to_le_bytes());
    ok.extend_from_slice(&5u32.to_le_bytes());
    ok.extend_from_slice(b"A=bcd");
    assert!(check_tables(&flac_with_comment(&ok), MediaFormat::Flac).is_ok());
    // The 17 KB crash: a 4 GB comment length.
    let mut bomb = 0u32.to_le_bytes().to_vec();
    bomb.extend_from_slice(&1u32.to_le_bytes());
    bomb.extend_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    bomb.extend_from_slice(b"A=b");
    let f = flac_with_comment(&bomb);
    assert!(check_tables(&f, MediaFormat::Flac).is_err());
    assert!(matches!(
        decode_audio(&f, MediaFormat::Flac, &Limits::default()),
        Err(MediaError::Corrupt { .. })
    ));
    // A block longer than the file.
    let mut cut = flac_with_comment(&ok);
    cut.truncate(cut.len() - 2);
    assert!(check_tables(&cut, MediaFormat::Flac).is_err());
    // A picture block whose data length runs past the block.
    let mut pic = 3u32.to_be_bytes().to_vec();
    pic.extend_from_slice(&0u32.to_be_bytes());
    pic.extend_from_slice(&0u32.to_be_bytes());
    pic.extend_from_slice(&[0u8; 16]);
    pic.extend_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    assert!(check_flac_picture(&pic).is_err());
}

#[test]
fn ogg_comment_lengths_are_bounded_by_the_file() {
    let mut f = b"OggS....\x03vorbis".to_vec();
    f.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    assert!(check_tables(&f, MediaFormat::Ogg).is_err());
}

/// A baseline JPEG header (SOI, SOF0, then EOI) declaring `w` × `h`, no scan data.
fn tiny_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8];
    j.extend_from_slice(&h.to_be_bytes());
    j.extend_from_slice(&w.to_be_bytes());
    j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

#[test]
fn declared_pixels_need_the_data_present() {
    // A 50-MP JPEG of a few hundred bytes (grey 50-MP canvas before) and a 30000² PNG header.
    assert!(check_declared_pixels(&tiny_jpeg(8660, 5774), MediaFormat::Jpeg, 8660, 5774).is_err());
    assert!(check_declared_pixels(&[0u8; 300], MediaFormat::Png, 30_000, 30_000).is_err());
    // Real images are far above the bounds: a flat 1024² JPEG and PNG.
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        1024,
        1024,
        image::Rgb([128, 128, 128]),
    ));
    for f in [MediaFormat::Jpeg, MediaFormat::Png] {
        let bytes = crate::encode_image(&img, f, 50).unwrap();
        assert!(
            check_declared_pixels(&bytes, f, 1024, 1024).is_ok(),
            "{f:?}"
        );
        assert!(decode_image(&bytes, f, &Limits::default()).is_ok());
    }
    // Through the decoder: a real 16×16 JPEG whose SOF0 is patched to declare 8000×6000 (the
    // decoder would fill a grey 48-MP canvas) is refused as corrupt, before any allocation.
    let small = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        16,
        16,
        image::Rgb([90, 120, 150]),
    ));
    let mut j = crate::encode_image(&small, MediaFormat::Jpeg, 90).unwrap();
    let sof = j.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    j[sof + 5..sof + 7].copy_from_slice(&6000u16.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&8000u16.to_be_bytes());
    let err = decode_image(&j, MediaFormat::Jpeg, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("declares 8000x6000"), "{err}");
}

/// A GIF whose logical screen is `w`×`h` holding one 1×1 frame.
fn tiny_gif(w: u16, h: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]); // 2-colour global table
    g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // 1×1 frame at 0,0
    g.extend_from_slice(&[2, 2, 0x44, 0x01, 0, 0x3B]); // LZW data, trailer
    g
}

/// A RIFF WebP with one chunk `id` holding `payload`.
fn webp(id: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&((payload.len() + 12) as u32).to_le_bytes());
    w.extend_from_slice(b"WEBP");
    w.extend_from_slice(id);
    w.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    w.extend_from_slice(payload);
    w
}

/// A little-endian 8-bit greyscale TIFF declaring `w`×`h` with `compression` and 16 bytes
/// of strip data.
fn tiny_tiff(w: u32, h: u32, compression: u16) -> Vec<u8> {
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, 8),
        (259, 3, u32::from(compression)),
        (262, 3, 1),
        (273, 4, 8 + 2 + 9 * 12 + 4),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, 16),
    ];
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&[0x55; 16]);
    t
}

#[test]
fn gif_webp_and_tiff_declared_sizes_need_the_data_present() {
    // Each bomb is within the pixel and side limits (≤ 50 MP, ≤ 20 000 px): only the check of
    // the data present stops it, before the decoder allocates the canvas.
    let vp8l = |w: u32, h: u32| {
        let bits = (w - 1) | ((h - 1) << 14);
        let mut p = vec![0x2F];
        p.extend_from_slice(&bits.to_le_bytes());
        p.extend_from_slice(&[0; 8]);
        webp(b"VP8L", &p)
    };
    let vp8 = |w: u16, h: u16| {
        let mut p = vec![0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A];
        p.extend_from_slice(&w.to_le_bytes());
        p.extend_from_slice(&h.to_le_bytes());
        p.extend_from_slice(&[0; 16]);
        webp(b"VP8 ", &p)
    };
    for (bytes, format, w, h, capped) in [
        (
            tiny_gif(20_000, 2_500),
            MediaFormat::Gif,
            20_000,
            2_500,
            true,
        ),
        (vp8l(16_383, 3_000), MediaFormat::Webp, 16_383, 3_000, true),
        (vp8(16_383, 3_000), MediaFormat::Webp, 16_383, 3_000, false),
        (
            tiny_tiff(20_000, 2_500, 1),
            MediaFormat::Tiff,
            20_000,
            2_500,
            false,
        ),
        (
            tiny_tiff(20_000, 2_500, 5),
            MediaFormat::Tiff,
            20_000,
            2_500,
            false,
        ),
        (
            tiny_tiff(20_000, 2_500, 8),
            MediaFormat::Tiff,
            20_000,
            2_500,
            false,
        ),
    ] {
        let r = check_declared_pixels(&bytes, format, w, h);
        match (&r, capped) {
            (Err(MediaError::LimitExceeded(_)), true)
            | (Err(MediaError::Corrupt { .. }), false) => {}
            _ => panic!("{format:?} {w}x{h} ({} bytes): {r:?}", bytes.len()),
        }
        // The decoder refuses it too (by this check, or its own parser), without a canvas.
        let d = decode_image(&bytes, format, &Limits::default());
        assert!(
            matches!(
                d,
                Err(MediaError::LimitExceeded(_) | MediaError::Corrupt { .. })
            ),
            "{format:?}: {d:?}"
        );
    }
    // Through the decoder, the refusal names the declared size.
    for (bytes, format) in [
        (tiny_gif(20_000, 2_500), MediaFormat::Gif),
        (tiny_tiff(20_000, 2_500, 1), MediaFormat::Tiff),
    ] {
        let err = decode_image(&bytes, format, &Limits::default()).unwrap_err();
        assert!(
            err.to_string().contains("declares 20000x2500"),
            "{format:?}: {err}"
        );
    }
    // The same headers at honest sizes pass, and real images of every format decode.
    assert!(check_declared_pixels(&tiny_gif(16, 16), MediaFormat::Gif, 16, 16).is_ok());
    assert!(check_declared_pixels(&tiny_tiff(4, 4, 1), MediaFormat::Tiff, 4, 4).is_ok());
    assert!(check_declared_pixels(&vp8(160, 120), MediaFormat::Webp, 160, 120).is_ok());
    let photo = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(512, 384, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
    }));
    for (f, fmt) in [
        (MediaFormat::Gif, image::ImageFormat::Gif),
        (MediaFormat::Webp, image::ImageFormat::WebP),
        (MediaFormat::Tiff, image::ImageFormat::Tiff),
    ] {
        let mut out = std::io::Cursor::new(Vec::new());
        photo.write_to(&mut out, fmt).unwrap();
        let bytes = out.into_inner();
        assert!(check_declared_pixels(&bytes, f, 512, 384).is_ok(), "{f:?}");
        assert!(decode_image(&bytes, f, &Limits::default()).is_ok(), "{f:?}");
    }
}

/// An ID3v2.4 tag header declaring `size` bytes of frames (syncsafe), `flags` as given.
fn id3_header(size: u32, flags: u8) -> Vec<u8> {
    let mut h = b"ID3\x04\x00".to_vec();
    h.push(flags);
    h.extend((0..4).rev().map(|i| ((size >> (7 * i)) & 0x7F) as u8));
    h
}

#[test]
fn an_id3_tag_does_not_hide_another_container_from_the_table_checks() {
    // Fuzzer find (fuzz/seeds/media_audio/regress-id3-flac-comment): sniffed as MP3 for its
    // `ID3`, demuxed by symphonia as the FLAC after the tag, whose comment asked for 4 GB.
    let mut bomb = 0u32.to_le_bytes().to_vec();
    bomb.extend_from_slice(&1u32.to_le_bytes());
    bomb.extend_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    bomb.extend_from_slice(b"A=b");
    let mut f = id3_header(4, 0);
    f.extend_from_slice(&[0u8; 4]);
    f.extend_from_slice(&flac_with_comment(&bomb));
    assert_eq!(crate::sniff(&f), Some(MediaFormat::Mp3));
    match decode_audio(&f, MediaFormat::Mp3, &Limits::default()) {
        Err(MediaError::Corrupt { format, detail }) => {
            assert_eq!(format, "audio/flac");
            assert!(detail.contains("4294967040 bytes"), "{detail}");
        }
        other => panic!("expected the FLAC table check to refuse it, got {other:?}"),
    }
    // Nor does junk between the tag and a stream that symphonia would find by scanning.
    let mut g = id3_header(0, 0);
    g.extend_from_slice(b"junk before the stream");
    g.extend_from_slice(&flac_with_comment(&bomb));
    assert!(decode_audio(&g, MediaFormat::Mp3, &Limits::default()).is_err());
}

#[test]
fn id3_tags_are_skipped_by_their_declared_size() {
    use crate::demux::audio_stream;
    let flac = flac_with_comment(&[0u8; 8]);
    // Two tags, the second with a footer (flag 0x10: 10 more bytes).
    let mut f = id3_header(3, 0);
    f.extend_from_slice(b"abc");
    f.extend_from_slice(&id3_header(1, 0x10));
    f.extend_from_slice(&[0u8; 11]);
    f.extend_from_slice(&flac);
    assert_eq!(
        audio_stream(&f, MediaFormat::Mp3),
        (&flac[..], MediaFormat::Flac)
    );
    // A tag longer than the file leaves nothing; other formats are left as they are.
    let cut = id3_header(1000, 0);
    assert_eq!(audio_stream(&cut, MediaFormat::Mp3).0.len(), 0);
    assert_eq!(
        audio_stream(&flac, MediaFormat::Flac),
        (&flac[..], MediaFormat::Flac)
    );
}

#[test]
fn no_mp4_sample_may_be_larger_than_the_file() {
    // Fuzzer find (fuzz/seeds/media_audio/regress-m4a-stsz-sample-size): an `stsz` entry of
    // 4 GB, read by symphonia into a buffer of that size.
    let mut f = m4a_with_table(b"stsz", 1, 4);
    let n = f.len();
    f[n - 4..].copy_from_slice(&0xFFE3_00EFu32.to_be_bytes());
    let err = check_tables(&f, MediaFormat::M4a).unwrap_err().to_string();
    assert!(err.contains("sample of 4293066991 bytes"), "{err}");
    assert!(matches!(
        decode_audio(&f, MediaFormat::M4a, &Limits::default()),
        Err(MediaError::Corrupt { .. })
    ));
    // The same with a constant sample size, and a plausible size passes.
    let mut c = m4a_with_table(b"stsz", 0, 0);
    let n = c.len();
    c[n - 8..n - 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(check_tables(&c, MediaFormat::M4a).is_err());
    let n = f.len();
    f[n - 4..].copy_from_slice(&16u32.to_be_bytes());
    assert!(check_tables(&f, MediaFormat::M4a).is_ok());
    // Fragments: `trun` sample sizes (flag 0x200) and `tfhd` default sizes (flag 0x10).
    let fragment = |kind: &[u8; 4], payload: &[u8]| {
        let traf = mp4_box(b"traf", &mp4_box(kind, payload));
        let mut f = mp4_box(b"ftyp", b"M4A \0\0\0\0M4A isom");
        f.extend_from_slice(&mp4_box(b"moof", &traf));
        f
    };
    let trun = |size: u32| {
        [
            &0x200u32.to_be_bytes()[..],
            &1u32.to_be_bytes(),
            &size.to_be_bytes(),
        ]
        .concat()
    };
    assert!(check_tables(&fragment(b"trun", &trun(8)), MediaFormat::M4a).is_ok());
    assert!(check_tables(&fragment(b"trun", &trun(u32::MAX)), MediaFormat::M4a).is_err());
    let mut many = trun(8);
    many[4..8].copy_from_slice(&1000u32.to_be_bytes()); // 1000 samples, data for one
    assert!(check_tables(&fragment(b"trun", &many), MediaFormat::M4a).is_err());
    let tfhd = [
        &0x10u32.to_be_bytes()[..],
        &1u32.to_be_bytes(),
        &u32::MAX.to_be_bytes(),
    ]
    .concat();
    assert!(check_tables(&fragment(b"tfhd", &tfhd), MediaFormat::M4a).is_err());
}

#[test]
fn id3_tagged_streams_still_decode() {
    // ffmpeg writes an ID3v2 tag in front of MP3; some taggers put one in front of FLAC.
    let mp3 = include_bytes!("../../fuzz/seeds/media_audio/cbr.mp3");
    assert!(mp3.starts_with(b"ID3"));
    let c = decode_audio(mp3, MediaFormat::Mp3, &Limits::default()).unwrap();
    assert!(c.frames() > 1000, "{}", c.frames());
    let mut f = id3_header(0, 0);
    f.extend_from_slice(include_bytes!("../../fuzz/seeds/media_audio/mono.flac"));
    assert_eq!(crate::sniff(&f), Some(MediaFormat::Mp3));
    let d = decode_audio(&f, MediaFormat::Mp3, &Limits::default()).unwrap();
    assert_eq!((d.sample_rate, d.frames()), (8000, 800)); // 0.1 s at 8 kHz
}
