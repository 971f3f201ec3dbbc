#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Opus uploads (issue 19, "what it must show" 3): a clip signed by Hallmark and converted with
//! ffmpeg to Opus at 32 kbit/s, in Ogg and in WebM (the C2PA manifest is lost on the way),
//! verifies as `ai_generated` through its watermark, naming its asset. Also: a WebM whose
//! only audio is Vorbis stays `unsupported_codec`, and a hostile WebM is a 4xx.

use hallmark_tests::fixtures::speech;
use hallmark_tests::{run_tool, Backend, Server};
use serde_json::json;

#[test]
fn signed_clip_reencoded_to_opus_verifies_as_ai_generated() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let wav = hallmark_media::encode_wav(&speech(44_100, 10.0, 19)).unwrap();
    let metadata = json!({"generator": "acme-voice", "model": "acme-tts", "title": "greeting"});
    let resp = s.sign(&wav, &metadata);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let asset = resp.header("hallmark-asset-id").unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let signed = dir.path().join("signed.wav");
    std::fs::write(&signed, &resp.body).unwrap();
    for (ext, mime) in [("ogg", "audio/ogg"), ("webm", "audio/webm")] {
        let out = dir.path().join(format!("clip.{ext}"));
        run_tool(
            "ffmpeg",
            &[
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                signed.to_str().unwrap(),
                "-c:a",
                "libopus",
                "-b:a",
                "32k",
                "-y",
                out.to_str().unwrap(),
            ],
        );
        let opus = std::fs::read(&out).unwrap();
        let r = s.post_raw("/v1/verify", Some(&s.admin_key), mime, &opus);
        assert_eq!(r.status, 201, "{ext}: {}", String::from_utf8_lossy(&r.body));
        let r = r.json();
        assert_eq!(r["c2pa"]["present"], false, "{ext}: {r:#}");
        assert_eq!(r["watermark"]["detected"], true, "{ext}: {r:#}");
        assert_eq!(r["watermark"]["asset_id"], asset.as_str(), "{ext}: {r:#}");
        assert_eq!(r["verdict"]["label"], "ai_generated", "{ext}: {r:#}");
    }

    // WebM with Vorbis audio: recognised, not decoded; the report says so.
    let vorbis = dir.path().join("clip-vorbis.webm");
    run_tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            signed.to_str().unwrap(),
            "-c:a",
            "libvorbis",
            "-y",
            vorbis.to_str().unwrap(),
        ],
    );
    let r = s.verify(&std::fs::read(&vorbis).unwrap());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = r.json();
    assert_eq!(r["watermark"]["not_checked"], "unsupported_codec", "{r:#}");

    // A WebM whose Opus block declares a lace far larger than the file: refused, server up.
    let bomb = hostile_webm();
    s.post_raw("/v1/verify", Some(&s.admin_key), "audio/webm", &bomb)
        .assert_problem(422, "corrupt_media");
    assert_eq!(s.get("/healthz", None).status, 200);
}

/// An EBML element: ID bytes, an 8-byte size, data.
fn el(id: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = id.to_vec();
    v.push(0x01);
    v.extend_from_slice(&(data.len() as u64).to_be_bytes()[1..]);
    v.extend_from_slice(data);
    v
}

/// A WebM with one Opus track and one EBML-laced block whose first lace claims 2⁵⁵ bytes.
fn hostile_webm() -> Vec<u8> {
    let mut head = b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0".to_vec();
    head.truncate(19);
    let track = el(
        &[0xAE],
        &[
            el(&[0xD7], &[1]),
            el(&[0x86], b"A_OPUS"),
            el(&[0x63, 0xA2], &head),
        ]
        .concat(),
    );
    let tracks = el(&[0x16, 0x54, 0xAE, 0x6B], &track);
    // track 1, timecode 0, flags: EBML lacing; 2 frames; first size as an 8-byte vint.
    let mut block = vec![0x81, 0, 0, 0x06, 1, 0x01, 0x80, 0, 0, 0, 0, 0, 0];
    block.extend_from_slice(&[0xF8; 20]);
    let cluster = el(&[0x1F, 0x43, 0xB6, 0x75], &el(&[0xA3], &block));
    let mut f = el(&[0x1A, 0x45, 0xDF, 0xA3], &el(&[0x42, 0x82], b"webm"));
    f.extend(el(&[0x18, 0x53, 0x80, 0x67], &[tracks, cluster].concat()));
    f
}
