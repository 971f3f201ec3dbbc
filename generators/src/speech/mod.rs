//! Text to speech with Piper VITS voices (`kind = "speech"` registry entries).
//!
//! Pipeline per request: [`text::normalize`] (NFC, character set, length) →
//! [`text::sentences`] → per sentence, IPA from espeak-ng ([`espeak`], a separate process) →
//! phoneme ids ([`voice::VoiceConfig::phoneme_ids`]) → one ONNX Runtime run of the VITS graph
//! (inputs `input` int64 `[1, N]`, `input_lengths` int64 `[1]`, `scales` float32 `[3]` =
//! noise scale, length scale ÷ speed, noise width; output float32 `[1, 1, 1, T]`) → the
//! sentence's samples, peak-normalised to [`PEAK`], appended to the output with
//! [`SENTENCE_GAP_SECONDS`] of silence. A sentence whose IPA is longer than
//! [`MAX_RUN_PHONEMES`] (÷ speed) is run in pieces cut at word boundaries. Memory is the output
//! clip plus one run's activations, whatever the text's length.
//!
//! VITS samples its prior and durations from noise inside the graph, so two runs of the same
//! text differ in detail (not in words).

pub mod espeak;
pub mod text;
pub mod voice;

use std::sync::Mutex;

use ort::session::Session;
use ort::value::TensorRef;

use crate::registry::{read_pinned, GeneratorEntry, SpeechSpec};
use crate::GeneratorError;
use espeak::Espeak;
pub use text::TextError;
use voice::VoiceConfig;

/// Most IPA code points in one model run at speed 1 (scaled by the speed: a slower voice makes
/// more audio, and more activations, per phoneme). About 10–15 s of speech; bounds the VITS
/// decoder's activations (its last stages hold 64–128 channels × output samples) whatever the
/// text expands to (digits and spelled-out letters grow several-fold in IPA).
pub const MAX_RUN_PHONEMES: usize = 200;
/// Peak amplitude each sentence is normalised to (−0.9 dBFS).
pub const PEAK: f32 = 0.9;
/// Silence between sentences, seconds.
pub const SENTENCE_GAP_SECONDS: f32 = 0.2;

/// A request to speak `text` (the speech part of `POST /v1/generate`).
#[derive(Debug, Clone)]
pub struct SpeechRequest {
    /// Registry name of the voice.
    pub generator: String,
    /// The text, as the client sent it (checked by [`text::normalize`]).
    pub text: String,
    /// Speaking rate, `0.5..=2.0` (1 = the voice's natural rate).
    pub speed: f64,
}

/// Synthesised speech and the voice that made it.
#[derive(Debug, Clone)]
pub struct Speech {
    /// Mono samples in `[-1, 1]`.
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Registry name of the voice.
    pub model: String,
    /// Registry version of the voice.
    pub version: String,
    /// Lower-case hex SHA-256 of the voice's model file.
    pub model_sha256: String,
    /// Lower-case hex SHA-256 of the request's text (UTF-8, exactly as sent).
    pub text_sha256: String,
}

/// A loaded voice.
pub(crate) struct Voice {
    pub(crate) entry: GeneratorEntry,
    pub(crate) max_text_chars: usize,
    config: VoiceConfig,
    espeak: Espeak,
    session: Mutex<Session>,
}

/// A voice whose files were read and checked, before its session exists.
pub(crate) struct Prepared {
    entry: GeneratorEntry,
    spec: SpeechSpec,
    config: VoiceConfig,
    model: Vec<u8>,
}

/// Outcome of [`prepare`].
pub(crate) enum Preparation {
    Ready(Box<Prepared>),
    /// Files or phonemizer absent: the reason, for `GET /v1/generators` and 503 answers.
    Unavailable(String),
}

/// Reads and checks a voice's files and phonemizer. Absent files or an absent / broken
/// espeak-ng make the voice unavailable; files that are present but do not match their pinned
/// SHA-256, or a config that does not parse, are errors (a tampered or corrupt install).
///
/// # Errors
/// [`GeneratorError::ModelHash`], [`GeneratorError::Registry`].
pub(crate) fn prepare(
    entry: &GeneratorEntry,
    spec: &SpeechSpec,
    registry: &std::path::Path,
) -> Result<Preparation, GeneratorError> {
    for f in [&entry.file, &spec.config] {
        if !f.is_file() {
            return Ok(Preparation::Unavailable(format!(
                "voice file {} is not installed (run `make setup`, i.e. scripts/fetch-models.sh)",
                f.display()
            )));
        }
    }
    let json = read_pinned(registry, &entry.name, &spec.config, &spec.config_sha256)?;
    let config = VoiceConfig::parse(&json).map_err(|m| GeneratorError::Registry {
        path: registry.to_path_buf(),
        message: format!(
            "generator `{}`: voice config {}: {m}",
            entry.name,
            spec.config.display()
        ),
    })?;
    let espeak = Espeak {
        program: spec.phonemizer.clone(),
        voice: config.espeak_voice.clone(),
        timeout: espeak::TIMEOUT,
    };
    match espeak.phonemize("test") {
        Ok(lines) if !lines.is_empty() => {}
        Ok(_) => {
            return Ok(Preparation::Unavailable(format!(
                "phonemizer `{}` printed nothing for voice `{}` (install espeak-ng and its data: apt-get install espeak-ng)",
                spec.phonemizer, config.espeak_voice
            )))
        }
        Err(m) => {
            return Ok(Preparation::Unavailable(format!(
                "phonemizer unavailable: {m} (install espeak-ng: apt-get install espeak-ng)"
            )))
        }
    }
    let model = read_pinned(registry, &entry.name, &entry.file, &entry.sha256)?;
    Ok(Preparation::Ready(Box::new(Prepared {
        entry: entry.clone(),
        spec: spec.clone(),
        config,
        model,
    })))
}

impl Prepared {
    /// Builds the voice's session and checks its graph's inputs and output.
    ///
    /// # Errors
    /// [`GeneratorError::Runtime`].
    pub(crate) fn into_voice(
        self,
        env: &ort::environment::Environment,
        threads: usize,
    ) -> Result<Voice, GeneratorError> {
        let session = crate::build_session(env, &self.entry.name, &self.model, threads)?;
        let has = |n: &str| session.inputs().iter().any(|i| i.name() == n);
        if !has("input") || !has("input_lengths") || !has("scales") || session.outputs().is_empty()
        {
            return Err(GeneratorError::Runtime(format!(
                "voice `{}` lacks the Piper inputs input/input_lengths/scales or an output",
                self.entry.name
            )));
        }
        Ok(Voice {
            max_text_chars: self.spec.max_text_chars,
            espeak: Espeak {
                program: self.spec.phonemizer,
                voice: self.config.espeak_voice.clone(),
                timeout: espeak::TIMEOUT,
            },
            config: self.config,
            entry: self.entry,
            session: Mutex::new(session),
        })
    }
}

impl Voice {
    /// Speaks `req` (see the module documentation). Blocking.
    ///
    /// # Errors
    /// [`GeneratorError::Text`] for refused text or speed; [`GeneratorError::Inference`] when
    /// espeak-ng or ONNX Runtime fails.
    pub(crate) fn synthesize(&self, req: &SpeechRequest) -> Result<Speech, GeneratorError> {
        let speed = text::check_speed(req.speed)?;
        let normalized = text::normalize(&req.text, self.max_text_chars)?;
        let fail = |message: String| GeneratorError::Inference {
            model: self.entry.name.clone(),
            message,
        };
        let sr = self.config.sample_rate;
        let gap = (SENTENCE_GAP_SECONDS * sr as f32) as usize;
        let mut samples = Vec::new();
        for sentence in text::sentences(&normalized) {
            let lines = self.espeak.phonemize(&sentence.text).map_err(fail)?;
            let ipa = clause_ipa(&lines, &sentence.clause_ends);
            let max_run = ((MAX_RUN_PHONEMES as f64 * speed) as usize).max(16);
            let mut audio = Vec::new();
            for piece in split_ipa(&ipa, max_run) {
                let (ids, skipped) = self.config.phoneme_ids(&piece);
                if skipped > 0 {
                    tracing::debug!(voice = %self.entry.name, skipped, "phonemes without an id skipped");
                }
                if ids.len() > 4 {
                    audio.extend(self.run(&ids, speed).map_err(fail)?);
                }
            }
            if audio.is_empty() {
                continue;
            }
            let peak = audio.iter().fold(0f32, |m, v| m.max(v.abs())).max(0.01);
            if !samples.is_empty() {
                samples.resize(samples.len() + gap, 0.0);
            }
            samples.extend(audio.iter().map(|v| (v * PEAK / peak).clamp(-1.0, 1.0)));
        }
        if samples.is_empty() {
            return Err(GeneratorError::Text(TextError::Empty));
        }
        Ok(Speech {
            samples,
            sample_rate: sr,
            model: self.entry.name.clone(),
            version: self.entry.version.clone(),
            model_sha256: self.entry.sha256.clone(),
            text_sha256: hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                req.text.as_bytes(),
            )),
        })
    }

    /// One VITS run over `ids`; returns the finite samples.
    fn run(&self, ids: &[i64], speed: f64) -> Result<Vec<f32>, String> {
        let c = &self.config;
        let scales = [c.noise_scale, c.length_scale / speed as f32, c.noise_w];
        let lengths = [ids.len() as i64];
        let input =
            TensorRef::from_array_view((vec![1, ids.len()], ids)).map_err(|e| e.to_string())?;
        let lengths =
            TensorRef::from_array_view((vec![1], &lengths[..])).map_err(|e| e.to_string())?;
        let scales =
            TensorRef::from_array_view((vec![3], &scales[..])).map_err(|e| e.to_string())?;
        let mut session = crate::lock(&self.session);
        let outputs = session
            .run(ort::inputs![
                "input" => input,
                "input_lengths" => lengths,
                "scales" => scales,
            ])
            .map_err(|e| e.to_string())?;
        let (_, values) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(format!("non-finite output sample {v}"));
        }
        Ok(values.to_vec())
    }
}

/// Cuts `ipa` into pieces of at most `max` code points, at spaces where it can (a word longer
/// than `max` is cut inside). Nothing is dropped but the spaces cut at.
pub fn split_ipa(ipa: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for word in ipa.split(' ').filter(|w| !w.is_empty()) {
        let n = word.chars().count();
        if cur_len > 0 && cur_len + 1 + n > max {
            out.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        if n > max {
            let chars: Vec<char> = word.chars().collect();
            for part in chars.chunks(max) {
                out.push(part.iter().collect());
            }
            continue;
        }
        if cur_len > 0 {
            cur.push(' ');
            cur_len += 1;
        }
        cur.push_str(word);
        cur_len += n;
    }
    if cur_len > 0 {
        out.push(cur);
    }
    out
}

/// Joins espeak-ng's clause lines into one IPA string with Piper's clause punctuation: when
/// espeak-ng found as many clauses as the text splitter, each line gets its clause's mark;
/// otherwise lines are joined with commas and the sentence's final mark ends them.
pub fn clause_ipa(lines: &[String], clause_ends: &[char]) -> String {
    let mut out = String::new();
    let last = clause_ends.last().copied().unwrap_or('.');
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(line);
        let mark = if lines.len() == clause_ends.len() {
            clause_ends[i]
        } else if i + 1 == lines.len() {
            last
        } else {
            ','
        };
        out.push(mark);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_marks() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(clause_ipa(&l(&["a", "b"]), &[';', '?']), "a; b?");
        assert_eq!(clause_ipa(&l(&["a", "b", "c"]), &['!']), "a, b, c!");
        assert_eq!(clause_ipa(&l(&["a"]), &[]), "a.");
    }

    #[test]
    fn ipa_pieces_are_bounded_and_lose_nothing() {
        assert_eq!(split_ipa("ab cd ef", 5), ["ab cd", "ef"]);
        assert_eq!(split_ipa("abcdefgh ij", 3), ["abc", "def", "gh", "ij"]);
        assert!(split_ipa("  ", 3).is_empty());
        let long = "wˈɜːd ".repeat(100);
        let pieces = split_ipa(&long, 40);
        assert!(pieces.iter().all(|p| p.chars().count() <= 40));
        assert_eq!(pieces.join(" "), long.trim_end());
    }
}
