#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Text to speech through `POST /v1/generate` and `hallmark generate` (issue 21): the Piper
//! voice en_US-joe-medium speaks, the clip is C2PA-signed (`c2pa.created`,
//! trainedAlgorithmicMedia, softwareAgent naming the voice, its version and its model SHA-256,
//! the text's SHA-256 recorded — not the text), watermarked (read back at p < 1e-9 after an
//! MP3 128 kbit/s transcode with LAME), and verify calls it `ai_generated`. Bad input gets a
//! 4xx with a stable code and stores nothing. A voice whose files or espeak-ng are missing is
//! listed as unavailable (503 when asked for) and does not stop the other generators.
//!
//! The voice must be installed (`make setup` fetches it; CI sets HALLMARK_REQUIRE_VOICES=1):
//! these tests FAIL, they do not skip, when it is not.

use std::path::Path;

use hallmark_tests::{repo_root, run_tool, Backend, Server};
use serde_json::json;

const VOICE: &str = "en_US-joe-medium";
const VOICE_SHA256: &str = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06";
const TEXT: &str = "Hallmark signs what it says. This sentence was spoken by a machine, \
                    and the file says so: its manifest names the voice.";

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn require_voice() {
    let v = repo_root().join("generators/models/voices/en_US-joe-medium.onnx");
    assert!(
        v.is_file(),
        "{} is missing: run `make setup` (scripts/fetch-models.sh) to fetch the voice",
        v.display()
    );
}

/// The generator list entry of `name`.
fn listed(s: &Server, name: &str) -> serde_json::Value {
    let list = s.get("/v1/generators", Some(&s.admin_key)).json();
    list["generators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} not listed: {list:#}"))
}

fn speak(s: &Server, body: serde_json::Value) -> hallmark_tests::Resp {
    s.post_json("/v1/generate", Some(&s.admin_key), &body)
}

#[test]
fn spoken_text_is_signed_marked_and_survives_mp3() {
    require_voice();
    let s = Server::start(
        Backend::Sqlite,
        &[("HALLMARK__DETECTORS__ENABLED", "false")],
    )
    .unwrap();
    let g = listed(&s, VOICE);
    assert_eq!(g["kind"], "speech", "{g:#}");
    assert_eq!(g["available"], true, "{g:#}");
    assert_eq!(g["sha256"], VOICE_SHA256);
    assert!(g["license"].as_str().unwrap().contains("CC0"), "{g:#}");
    let text_param = g["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "text")
        .cloned()
        .unwrap();
    assert_eq!(text_param["required"], true);
    assert_eq!(text_param["maximum"], 5000.0);
    // The image generator is still listed first and available.
    let list = s.get("/v1/generators", Some(&s.admin_key)).json();
    assert_eq!(list["generators"][0]["name"], "cppn-abstract");
    assert_eq!(list["generators"][0]["available"], true);

    let resp = speak(
        &s,
        json!({"generator": VOICE, "text": TEXT, "format": "wav"}),
    );
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.header("content-type"), Some("audio/wav"));
    let asset = resp.header("hallmark-asset-id").unwrap().to_owned();
    let wav = resp.body.clone();
    // Mono 22.05 kHz 16-bit, about as long as the text takes to say (≈ 8 s).
    let clip = hallmark_media::decode_audio(
        &wav,
        hallmark_media::MediaFormat::Wav,
        &hallmark_media::Limits::default(),
    )
    .unwrap();
    assert_eq!(clip.sample_rate, 22_050);
    assert_eq!(clip.channels.len(), 1);
    let secs = clip.duration_seconds();
    assert!((4.0..20.0).contains(&secs), "{secs} s");
    // The manifest records the text by hash only.
    assert!(contains(&wav, sha256_hex(TEXT.as_bytes()).as_bytes()));
    assert!(!contains(&wav, b"spoken by a machine"));

    let r = s.verify(&wav).json();
    assert_eq!(r["c2pa"]["validation_state"], "Valid", "{r:#}");
    assert!(r["c2pa"]["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("c2pa.created")));
    assert!(r["c2pa"]["digital_source_type"]
        .as_str()
        .unwrap()
        .ends_with("/trainedAlgorithmicMedia"));
    assert_eq!(
        r["c2pa"]["software_agent"],
        format!("{VOICE} 1.0.0 sha256:{VOICE_SHA256}"),
        "{r:#}"
    );
    assert!(r["c2pa"]["assertion_labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().starts_with("io.hallmark.generation")));
    assert_eq!(r["watermark"]["detected"], true, "{r:#}");
    assert_eq!(r["watermark"]["asset_id"], asset.as_str());
    assert_eq!(r["verdict"]["label"], "ai_generated", "{r:#}");

    // MP3 128 kbit/s with LAME: the manifest is gone, the mark is not.
    let dir = tempfile::tempdir().unwrap();
    let (w, m) = (dir.path().join("s.wav"), dir.path().join("s.mp3"));
    std::fs::write(&w, &wav).unwrap();
    run_tool(
        "lame",
        &[
            "--quiet",
            "-b",
            "128",
            w.to_str().unwrap(),
            m.to_str().unwrap(),
        ],
    );
    let r = s.verify(&std::fs::read(&m).unwrap()).json();
    assert_eq!(r["watermark"]["detected"], true, "{r:#}");
    assert_eq!(r["watermark"]["asset_id"], asset.as_str(), "{r:#}");
    let p = r["watermark"]["p_value"].as_f64().unwrap();
    assert!(p < 1e-9, "p = {p}");
    assert_eq!(r["verdict"]["label"], "ai_generated", "{r:#}");

    // MP3 straight from the service, at half speed: signed and marked too, and longer.
    let resp = speak(
        &s,
        json!({"generator": VOICE, "text": "Slowly now, one word at a time.", "format": "mp3", "speed": 0.5}),
    );
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.header("content-type"), Some("audio/mpeg"));
    let r = s.verify(&resp.body).json();
    assert_eq!(r["c2pa"]["validation_state"], "Valid", "{r:#}");
    assert_eq!(r["watermark"]["detected"], true, "{r:#}");
    assert_eq!(r["verdict"]["label"], "ai_generated", "{r:#}");

    // The CLI goes through the same path.
    let out = dir.path().join("cli.wav");
    let o = s.cli(&[
        "generate",
        "--generator",
        VOICE,
        "--text",
        "Signed on the command line, this sentence is long enough to carry its mark.",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = s.verify(&std::fs::read(&out).unwrap()).json();
    assert_eq!(r["c2pa"]["validation_state"], "Valid", "{r:#}");
    assert_eq!(r["watermark"]["detected"], true, "{r:#}");
}

#[test]
fn bad_speech_requests_are_refused_and_store_nothing() {
    require_voice();
    let s = Server::start(
        Backend::Sqlite,
        &[("HALLMARK__DETECTORS__ENABLED", "false")],
    )
    .unwrap();
    let (assets, manifests) = (s.count_rows("assets"), s.count_rows("manifests"));
    let cases = [
        (json!({"generator": VOICE, "text": ""}), 400, "empty_text"),
        (json!({"generator": VOICE}), 400, "empty_text"),
        (
            json!({"generator": VOICE, "text": " \n ... "}),
            400,
            "empty_text",
        ),
        (
            json!({"generator": VOICE, "text": "a".repeat(5001)}),
            413,
            "text_too_long",
        ),
        (
            json!({"generator": VOICE, "text": "word ".repeat(2000)}),
            413,
            "text_too_long",
        ),
        (
            json!({"generator": VOICE, "text": "pay \u{202e}001$"}),
            400,
            "unsupported_characters",
        ),
        (
            json!({"generator": VOICE, "text": "日本語のテキスト"}),
            400,
            "unsupported_characters",
        ),
        (
            json!({"generator": VOICE, "text": "hi \u{1f600}"}),
            400,
            "unsupported_characters",
        ),
        (
            json!({"generator": VOICE, "text": "nul\u{0}byte"}),
            400,
            "unsupported_characters",
        ),
        (
            json!({"generator": "no-such-voice", "text": "hello"}),
            404,
            "not_found",
        ),
        (
            json!({"generator": VOICE, "text": "hi", "speed": 0}),
            400,
            "invalid_speed",
        ),
        (
            json!({"generator": VOICE, "text": "hi", "speed": -1.5}),
            400,
            "invalid_speed",
        ),
        (
            json!({"generator": VOICE, "text": "hi", "speed": 1e9}),
            400,
            "invalid_speed",
        ),
        (
            json!({"generator": VOICE, "text": "hi", "format": "ogg"}),
            400,
            "invalid_request",
        ),
        (
            json!({"generator": VOICE, "text": "hi", "seed": 3}),
            400,
            "invalid_request",
        ),
        (
            json!({"generator": VOICE, "text": "hi", "speed": "fast"}),
            400,
            "invalid_request",
        ),
        (
            json!({"generator": "cppn-abstract", "text": "hi"}),
            400,
            "invalid_request",
        ),
        // Too short to carry the audio watermark: refused after synthesis, nothing stored.
        (
            json!({"generator": VOICE, "text": "Hi."}),
            422,
            "media_too_small",
        ),
    ];
    for (body, status, code) in cases {
        let r = speak(&s, body.clone());
        assert_eq!(
            r.status,
            status,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.assert_problem(status, code);
    }
    // Exactly at the limit is accepted (5,000 characters).
    let long = "Speak. ".repeat(715);
    let at_limit = &long[..5000];
    let r = speak(&s, json!({"generator": VOICE, "text": at_limit}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.count_rows("assets"), assets + 1);
    assert_eq!(s.count_rows("manifests"), manifests + 1);

    // The CLI refuses the same input with a message and a non-zero exit.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    let o = s.cli(&[
        "generate",
        "--generator",
        VOICE,
        "--text",
        "\u{202e}",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unsupported character"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists());
    assert_eq!(s.count_rows("assets"), assets + 1);
}

/// A registry directory with the shipped registry and image model, and `voices/` as given.
fn registry_copy(dir: &Path, voices: Option<&Path>, phonemizer: &str) -> std::path::PathBuf {
    let models = repo_root().join("generators/models");
    let text = std::fs::read_to_string(models.join("registry.toml"))
        .unwrap()
        .replace(
            "phonemizer = \"espeak-ng\"",
            &format!("phonemizer = \"{phonemizer}\""),
        );
    std::fs::write(dir.join("registry.toml"), text).unwrap();
    for f in ["cppn-abstract-v1.onnx", "dcgan-faces-v1.onnx"] {
        std::fs::copy(models.join(f), dir.join(f)).unwrap();
    }
    if let Some(v) = voices {
        std::os::unix::fs::symlink(v, dir.join("voices")).unwrap();
    }
    dir.join("registry.toml")
}

#[test]
fn missing_voice_files_or_espeak_make_the_voice_unavailable_not_the_service() {
    require_voice();
    let voices = repo_root().join("generators/models/voices");
    for (case, with_files, phonemizer, reason) in [
        ("no files", false, "espeak-ng", "make setup"),
        ("no espeak-ng", true, "/nonexistent/espeak-ng", "espeak-ng"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry_copy(
            dir.path(),
            with_files.then_some(voices.as_path()),
            phonemizer,
        );
        let s = Server::start(
            Backend::Sqlite,
            &[
                ("HALLMARK__DETECTORS__ENABLED", "false"),
                ("HALLMARK__GENERATORS__REGISTRY", reg.to_str().unwrap()),
            ],
        )
        .unwrap();
        let g = listed(&s, VOICE);
        assert_eq!(g["available"], false, "{case}: {g:#}");
        assert!(
            g["unavailable"].as_str().unwrap().contains(reason),
            "{case}: {g:#}"
        );
        let (assets, _) = (s.count_rows("assets"), ());
        speak(&s, json!({"generator": VOICE, "text": "hello"}))
            .assert_problem(503, "generator_unavailable");
        assert_eq!(s.count_rows("assets"), assets);
        // The image generator still works.
        let r = speak(
            &s,
            json!({"generator": "cppn-abstract", "seed": 1, "width": 128, "height": 128}),
        );
        assert_eq!(
            r.status,
            200,
            "{case}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
}
