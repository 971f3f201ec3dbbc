//! The Piper voice through the generator registry. Needs ONNX Runtime
//! (`scripts/fetch-onnxruntime.sh`), the voice files (`scripts/fetch-models.sh`) and espeak-ng;
//! without them these tests FAIL with the command to run, they do not skip.

use std::path::{Path, PathBuf};

use hallmark_generators::speech::text::MAX_SENTENCE_CHARS;
use hallmark_generators::speech::PEAK;
use hallmark_generators::{
    GenerateRequest, GeneratorConfig, GeneratorError, GeneratorRegistry, SpeechRequest, TextError,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const VOICE: &str = "en_US-joe-medium";

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn ort_lib() -> Result<PathBuf, String> {
    let p = models().join("../../.runtime/onnxruntime/libonnxruntime.so.1.31.1");
    p.is_file()
        .then_some(p)
        .ok_or_else(|| "ONNX Runtime not found: run scripts/fetch-onnxruntime.sh first".to_string())
}

fn load(registry: &Path) -> Result<GeneratorRegistry, Box<dyn std::error::Error>> {
    Ok(GeneratorRegistry::load(&GeneratorConfig {
        registry_path: registry.to_path_buf(),
        onnxruntime_path: ort_lib()?,
    })?)
}

fn shipped() -> Result<GeneratorRegistry, Box<dyn std::error::Error>> {
    if !models().join("voices/en_US-joe-medium.onnx").is_file() {
        return Err("voice en_US-joe-medium not installed: run scripts/fetch-models.sh".into());
    }
    let reg = load(&models().join("registry.toml"))?;
    let info = reg.list();
    let v = info
        .iter()
        .find(|g| g.name == VOICE)
        .ok_or("voice not listed")?;
    if !v.available {
        return Err(format!("voice unavailable: {:?}", v.unavailable).into());
    }
    Ok(reg)
}

fn say(text: &str, speed: f64) -> SpeechRequest {
    SpeechRequest {
        generator: VOICE.into(),
        text: text.into(),
        speed,
    }
}

#[test]
fn speaks_sentence_by_sentence() -> TestResult {
    let reg = shipped()?;
    let s = reg.synthesize(&say("Good morning. How are you today? Fine, thanks!", 1.0))?;
    assert_eq!(s.sample_rate, 22_050);
    assert_eq!(s.model, VOICE);
    assert_eq!(s.model_sha256.len(), 64);
    let secs = s.samples.len() as f64 / 22_050.0;
    assert!((1.5..8.0).contains(&secs), "{secs} s");
    let peak = s.samples.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(peak <= PEAK + 1e-6 && peak > 0.5, "peak {peak}");
    // Three sentences: at least two runs of ≥ 0.15 s of exact silence between them.
    let gaps = s
        .samples
        .split(|v| *v != 0.0)
        .filter(|run| run.len() as f64 >= 0.15 * 22_050.0)
        .count();
    assert!(gaps >= 2, "{gaps} sentence gaps");
    // Speech energy (not just silence): RMS of the clip.
    let rms = (s.samples.iter().map(|v| v * v).sum::<f32>() / s.samples.len() as f32).sqrt();
    assert!(rms > 0.03, "rms {rms}");
    Ok(())
}

#[test]
fn speed_changes_duration() -> TestResult {
    let reg = shipped()?;
    let text = "The quick brown fox jumps over the lazy dog.";
    let slow = reg.synthesize(&say(text, 0.5))?.samples.len() as f64;
    let fast = reg.synthesize(&say(text, 2.0))?.samples.len() as f64;
    assert!(slow / fast > 2.5, "slow/fast = {}", slow / fast);
    Ok(())
}

#[test]
fn long_unpunctuated_text_is_cut_into_bounded_runs() -> TestResult {
    let reg = shipped()?;
    // 1,200 characters without a full stop: several model runs, one clip.
    let text = "and then it went on ".repeat(60);
    assert!(text.len() > 3 * MAX_SENTENCE_CHARS);
    let s = reg.synthesize(&say(&text, 1.0))?;
    let secs = s.samples.len() as f64 / 22_050.0;
    assert!(secs > 40.0, "{secs} s for 1,200 characters");
    Ok(())
}

/// What a refused request's error must match.
type Expect = fn(&TextError) -> bool;

#[test]
fn bad_text_is_refused_before_work() -> TestResult {
    let reg = shipped()?;
    let cases: [(&str, f64, Expect); 5] = [
        ("", 1.0, |e| matches!(e, TextError::Empty)),
        ("!!!", 1.0, |e| matches!(e, TextError::Empty)),
        ("hi \u{200b}", 1.0, |e| {
            matches!(
                e,
                TextError::UnsupportedCharacter {
                    code: 0x200b,
                    position: 3
                }
            )
        }),
        ("hi", 9.0, |e| matches!(e, TextError::Speed(_))),
        ("hi", f64::NAN, |e| matches!(e, TextError::Speed(_))),
    ];
    for (text, speed, ok) in cases {
        for r in [
            reg.check_speech(&say(text, speed)).err(),
            reg.synthesize(&say(text, speed)).err(),
        ] {
            match r {
                Some(GeneratorError::Text(e)) if ok(&e) => {}
                other => return Err(format!("{text:?} @ {speed}: got {other:?}").into()),
            }
        }
    }
    let long = "a".repeat(5001);
    assert!(matches!(
        reg.check_speech(&say(&long, 1.0)),
        Err(GeneratorError::Text(TextError::TooLong {
            chars: 5001,
            limit: 5000
        }))
    ));
    // A voice is not an image generator and vice versa.
    let img = GenerateRequest {
        generator: VOICE.into(),
        seed: 1,
        width: 64,
        height: 64,
    };
    assert!(matches!(
        reg.generate_image(&img),
        Err(GeneratorError::InvalidRequest(_))
    ));
    let mut wrong = say("hello", 1.0);
    wrong.generator = "cppn-abstract".into();
    assert!(matches!(
        reg.synthesize(&wrong),
        Err(GeneratorError::InvalidRequest(_))
    ));
    Ok(())
}

/// The shipped registry and image model in `dir`, with `voices` linked in when given.
fn copy(
    dir: &Path,
    voices: bool,
    edit: impl Fn(String) -> String,
) -> Result<PathBuf, std::io::Error> {
    let reg = dir.join("registry.toml");
    std::fs::write(
        &reg,
        edit(std::fs::read_to_string(models().join("registry.toml"))?),
    )?;
    for f in ["cppn-abstract-v1.onnx", "dcgan-faces-v1.onnx"] {
        std::fs::copy(models().join(f), dir.join(f))?;
    }
    if voices {
        std::os::unix::fs::symlink(models().join("voices"), dir.join("voices"))?;
    }
    Ok(reg)
}

#[test]
fn missing_files_or_phonemizer_make_only_the_voice_unavailable() -> TestResult {
    shipped()?;
    for (voices, phonemizer, reason) in [
        (false, "espeak-ng", "make setup"),
        (true, "/nonexistent/espeak-ng", "espeak-ng"),
    ] {
        let dir = tempfile::tempdir()?;
        let reg = load(&copy(dir.path(), voices, |t| {
            t.replace(
                "phonemizer = \"espeak-ng\"",
                &format!("phonemizer = \"{phonemizer}\""),
            )
        })?)?;
        let list = reg.list();
        let v = list
            .iter()
            .find(|g| g.name == VOICE)
            .ok_or("voice not listed")?;
        assert!(!v.available);
        assert!(
            v.unavailable.as_deref().is_some_and(|r| r.contains(reason)),
            "{v:?}"
        );
        assert!(matches!(
            reg.synthesize(&say("hello", 1.0)),
            Err(GeneratorError::Unavailable { .. })
        ));
        assert!(list[0].available);
        reg.generate_image(&GenerateRequest {
            generator: "cppn-abstract".into(),
            seed: 1,
            width: 32,
            height: 32,
        })?;
    }
    Ok(())
}

#[test]
fn a_tampered_voice_config_is_an_error() -> TestResult {
    shipped()?;
    let dir = tempfile::tempdir()?;
    let reg = copy(dir.path(), false, |t| t)?;
    std::fs::create_dir(dir.path().join("voices"))?;
    std::fs::copy(
        models().join("voices/en_US-joe-medium.onnx"),
        dir.path().join("voices/en_US-joe-medium.onnx"),
    )?;
    let json = std::fs::read_to_string(models().join("voices/en_US-joe-medium.onnx.json"))?;
    std::fs::write(
        dir.path().join("voices/en_US-joe-medium.onnx.json"),
        json.replace("\"noise_scale\": 0.667", "\"noise_scale\": 5"),
    )?;
    match load(&reg) {
        Err(e) => match e.downcast_ref::<GeneratorError>() {
            Some(GeneratorError::ModelHash { model, .. }) => assert_eq!(model, VOICE),
            _ => return Err(format!("expected ModelHash, got {e}").into()),
        },
        Ok(_) => return Err("a tampered config loaded".into()),
    }
    Ok(())
}
