//! Hostile files against a server under a 4 GiB address-space limit: each gets an answer (no
//! 5xx; the crashers and bombs a 4xx), the server stays up, and the worker processes that
//! parse the bytes are persistent and replaced when one dies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{Backend, Server};
use image::ImageFormat;
use serde_json::json;

fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(payload);
    v
}

/// The 1.8 KB crasher's shape: an M4A whose `stsc` declares ~4 billion entries (symphonia
/// reserved 16 bytes for each before reading one).
fn m4a_huge_stsc() -> Vec<u8> {
    let mut stsc = vec![0u8; 4];
    stsc.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    stsc.extend_from_slice(&[0u8; 12]);
    let stbl = mp4_box(b"stbl", &mp4_box(b"stsc", &stsc));
    let moov = mp4_box(
        b"moov",
        &mp4_box(b"trak", &mp4_box(b"mdia", &mp4_box(b"minf", &stbl))),
    );
    let mut f = mp4_box(b"ftyp", b"M4A \0\0\0\0M4A isom");
    f.extend_from_slice(&moov);
    f.extend_from_slice(&[0u8; 1700]);
    f
}

/// A FLAC whose Vorbis comment declares a 4 GB comment.
fn flac_4gb_comment() -> Vec<u8> {
    let mut f = b"fLaC".to_vec();
    f.extend_from_slice(&[0x00, 0, 0, 34]);
    f.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
    let packed: u64 = (44_100u64 << 44) | (15 << 36);
    f.extend_from_slice(&packed.to_be_bytes());
    f.extend_from_slice(&[0u8; 16]);
    let mut c = 0u32.to_le_bytes().to_vec();
    c.extend_from_slice(&1u32.to_le_bytes());
    c.extend_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    c.extend_from_slice(&[b'A'; 64]);
    let len = c.len() as u32;
    f.extend_from_slice(&[0x84, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    f.extend_from_slice(&c);
    f.extend_from_slice(&[0xFF, 0xF8, 0x69, 0x08, 0, 0, 0]); // a frame header's start
    f
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(data);
    v.extend_from_slice(&[0, 0, 0, 0]); // CRC (decoders here don't all check it)
    v
}

/// A PNG header declaring 30000 × 30000 RGB with a few bytes of data.
fn png_30000_squared() -> Vec<u8> {
    let mut f = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = 30_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&30_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    f.extend_from_slice(&png_chunk(b"IHDR", &ihdr));
    f.extend_from_slice(&png_chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00]));
    f.extend_from_slice(&png_chunk(b"IEND", &[]));
    f
}

/// A 16-bit stereo 48 kHz WAV whose header claims 6 hours, holding 2 seconds.
fn wav_claiming_6h() -> Vec<u8> {
    let claimed: u32 = 6 * 3600 * 48_000 * 4;
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&claimed.saturating_add(36).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&48_000u32.to_le_bytes());
    v.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&claimed.to_le_bytes());
    for i in 0..96_000u32 {
        let s = ((i.wrapping_mul(2_654_435_761) >> 16) as i16) / 8;
        v.extend_from_slice(&s.to_le_bytes());
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// A real 16 × 16 JPEG (a few hundred bytes) whose SOF0 declares 8000 × 6000 (48 MP, under
/// the 50 MP pixel limit: only the declared-size check refuses it).
fn jpeg_declaring_48mp() -> Vec<u8> {
    let small = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        16,
        16,
        image::Rgb([90, 120, 150]),
    ));
    let mut j = encode(&small, ImageFormat::Jpeg);
    let sof = j.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    j[sof + 5..sof + 7].copy_from_slice(&6000u16.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&8000u16.to_be_bytes());
    j
}

/// A JPEG carrying a C2PA APP11 segment (ISO 19566-5 JUMBF in JPEG XT boxes) holding `jumbf`.
fn jpeg_with_jumbf(jumbf: &[u8]) -> Vec<u8> {
    let base = encode(&photo(256, 256, 3), ImageFormat::Jpeg);
    let mut out = base[..2].to_vec();
    for (seq, part) in jumbf.chunks(60_000).enumerate() {
        let len = 2 + 2 + 2 + 4 + part.len();
        out.extend_from_slice(&[0xFF, 0xEB]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(b"JP");
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(seq as u32 + 1).to_be_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&base[2..]);
    out
}

/// JUMBF superboxes nested 4000 deep, each with a C2PA description box.
fn nested_jumbf() -> Vec<u8> {
    let mut inner = Vec::new();
    for _ in 0..4000 {
        let mut desc = b"jumd".to_vec();
        desc.extend_from_slice(&[0x63, 0x32, 0x70, 0x61, 0, 0x11, 0, 0x10, 0x80, 0, 0, 0xAA]);
        desc.extend_from_slice(&[0, 0x38, 0x9B, 0x71, 0x03, b'c', b'2', b'p', b'a', 0]);
        let mut b = ((desc.len() + 4) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(&desc);
        b.extend_from_slice(&inner);
        inner = mp4_box(b"jumb", &b);
    }
    inner
}

/// A JUMBF superbox declaring an 8 EB extended length.
fn huge_jumbf() -> Vec<u8> {
    let mut b = 1u32.to_be_bytes().to_vec();
    b.extend_from_slice(b"jumb");
    b.extend_from_slice(&(1u64 << 63).to_be_bytes());
    b.extend_from_slice(&[0u8; 64]);
    b
}

/// Pids of the server's worker processes (`hallmark internal worker`, children of `server`).
fn worker_pids(server: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(server) && cmd.windows(16).any(|w| w == b"internal\0worker\0") {
            out.insert(pid);
        }
    }
    out
}

/// The server's workers once there are exactly `n` (spares started while a replacement was
/// on its way are stopped at once), or whatever there is after 20 s.
fn wait_for_workers(s: &Server, n: usize) -> BTreeSet<u32> {
    let t = Instant::now();
    loop {
        let pids = worker_pids(s.pid());
        if pids.len() == n || t.elapsed() > Duration::from_secs(20) {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hostile_files_get_answers_and_the_server_stays_up_under_4_gib() {
    let mut s = Server::start_with_limit(
        Backend::Sqlite,
        &[("HALLMARK__DETECTORS__ENABLED", "false")],
        Some(4 << 30),
    )
    .unwrap();
    let meta = json!({ "model": "m" });
    // (name, bytes, whether verify and sign must both answer 4xx)
    let files: Vec<(&str, Vec<u8>, bool)> = vec![
        ("m4a_huge_stsc", m4a_huge_stsc(), true),
        ("flac_4gb_comment", flac_4gb_comment(), true),
        ("png_30000_squared", png_30000_squared(), true),
        ("jpeg_declaring_48mp", jpeg_declaring_48mp(), true),
        ("wav_claiming_6h", wav_claiming_6h(), false),
        ("jpeg_nested_jumbf", jpeg_with_jumbf(&nested_jumbf()), false),
        ("jpeg_huge_jumbf", jpeg_with_jumbf(&huge_jumbf()), false),
    ];
    // Every input a fuzzer found that once crashed a target (`fuzz/seeds/*/regress-*`,
    // docs/FUZZING.md), as the files themselves: each must get an answer below 500 with the
    // server up. Their hand-built shapes above must be refused; the files themselves may also
    // get a report on what decodes (the ID3-tagged one is an MP3 whose tag is skipped).
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    let seeds = hallmark_tests::repo_root().join("fuzz/seeds");
    for target in std::fs::read_dir(&seeds).unwrap() {
        for f in std::fs::read_dir(target.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("regress-") {
                found.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    assert!(
        found.len() >= 2,
        "fuzz/seeds/*/regress-*: {} files",
        found.len()
    );
    let files: Vec<(&str, Vec<u8>, bool)> = files
        .into_iter()
        .chain(found.iter().map(|(n, b)| (n.as_str(), b.clone(), false)))
        .collect();
    for (name, bytes, must_refuse) in &files {
        for (route, r) in [("verify", s.verify(bytes)), ("sign", s.sign(bytes, &meta))] {
            let body = String::from_utf8_lossy(&r.body[..r.body.len().min(400)]).into_owned();
            assert!(r.status < 500, "{name} {route}: {} {body}", r.status);
            if *must_refuse {
                assert!(
                    (400..500).contains(&r.status),
                    "{name} {route}: {} {body}",
                    r.status
                );
            }
            eprintln!("{name} {route}: {}", r.status);
        }
        if *name == "jpeg_declaring_48mp" {
            s.verify(bytes).assert_problem(422, "corrupt_media");
        }
        assert!(s.is_running(), "the server died on {name}");
        assert_eq!(s.get("/healthz", None).status, 200, "after {name}");
    }
    // Normal requests still succeed afterwards.
    let png = encode(&photo(320, 240, 7), ImageFormat::Png);
    let v = s.verify(&png);
    assert_eq!(v.status, 201, "{}", String::from_utf8_lossy(&v.body));
    let sg = s.sign(&png, &meta);
    assert_eq!(sg.status, 200, "{}", String::from_utf8_lossy(&sg.body));
    assert!(s.is_running());
}

#[test]
fn workers_are_persistent() {
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK__WORKERS__COUNT", "2"),
        ],
    )
    .unwrap();
    let before = wait_for_workers(&s, 2);
    assert_eq!(before.len(), 2, "{before:?}");
    for seed in 0..4 {
        let jpg = encode(&photo(200, 150, seed), ImageFormat::Jpeg);
        assert_eq!(s.verify(&jpg).status, 201);
    }
    // The same two processes served every job: none was spawned per request.
    assert_eq!(worker_pids(s.pid()), before);
}

#[test]
fn a_worker_that_dies_costs_one_request_and_is_replaced() {
    // Decode jobs get 1 MiB of address space: less than the worker already maps, so every
    // decode kills its worker.
    let mut s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK__WORKERS__COUNT", "2"),
            ("HALLMARK__WORKERS__MEMORY_LIMIT_MB", "1"),
        ],
    )
    .unwrap();
    let before = wait_for_workers(&s, 2);
    let png = encode(&photo(320, 240, 1), ImageFormat::Png);
    for _ in 0..3 {
        s.verify(&png).assert_problem(422, "corrupt_media");
        s.sign(&png, &json!({ "model": "m" }))
            .assert_problem(422, "corrupt_media");
    }
    assert!(s.is_running());
    assert_eq!(s.get("/healthz", None).status, 200);
    // Dead workers were replaced by new processes.
    let after = wait_for_workers(&s, 2);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.is_disjoint(&before), "{before:?} {after:?}");
}
