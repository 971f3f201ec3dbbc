//! A Piper voice's JSON config (`<voice>.onnx.json`) and the phoneme → id mapping.
//!
//! Piper (rhasspy/piper, MIT) trains VITS (Kim et al. 2021, "Conditional Variational
//! Autoencoder with Adversarial Learning for End-to-End Text-to-Speech") on espeak-ng IPA. The
//! model's input is the sequence `^ _ p₁ _ p₂ _ … pₙ _ $`: the config's ids of the begin
//! (`^`), pad (`_`) and end (`$`) symbols around every phoneme, one phoneme per Unicode code
//! point of the NFD-normalised IPA. Code points the map lacks are skipped.

use std::collections::HashMap;

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

/// What synthesis needs from a Piper voice config.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// espeak-ng voice name (e.g. `en-us`).
    pub espeak_voice: String,
    /// VITS prior noise scale (Piper's `noise_scale`).
    pub noise_scale: f32,
    /// Duration scale at speed 1 (Piper's `length_scale`; larger = slower).
    pub length_scale: f32,
    /// Stochastic duration predictor noise (Piper's `noise_w`).
    pub noise_w: f32,
    ids: HashMap<char, Vec<i64>>,
    bos: Vec<i64>,
    eos: Vec<i64>,
    pad: Vec<i64>,
}

#[derive(Deserialize)]
struct Raw {
    audio: RawAudio,
    espeak: RawEspeak,
    inference: RawInference,
    phoneme_type: String,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    num_symbols: i64,
    #[serde(default = "one")]
    num_speakers: u32,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct RawAudio {
    sample_rate: u32,
}

#[derive(Deserialize)]
struct RawEspeak {
    voice: String,
}

#[derive(Deserialize)]
struct RawInference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl VoiceConfig {
    /// Parses a Piper voice config.
    ///
    /// # Errors
    /// A message for malformed JSON, a phoneme type other than `espeak`, a multi-speaker
    /// voice, a sample rate outside 8–48 kHz, an espeak voice name outside `[a-z0-9-]`, scales
    /// outside `(0, 10]`, ids outside `0..num_symbols`, map keys that are not one code point,
    /// or a map without `^`, `_`, `$`.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let raw: Raw = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if raw.phoneme_type != "espeak" {
            return Err(format!(
                "phoneme_type `{}` is not supported (only `espeak`)",
                raw.phoneme_type
            ));
        }
        if raw.num_speakers != 1 {
            return Err(format!(
                "{} speakers: only single-speaker voices are supported",
                raw.num_speakers
            ));
        }
        if !(8_000..=48_000).contains(&raw.audio.sample_rate) {
            return Err(format!("sample rate {} Hz", raw.audio.sample_rate));
        }
        let v = &raw.espeak.voice;
        if v.is_empty()
            || v.len() > 32
            || !v
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("espeak voice `{v}` is not a voice name"));
        }
        let inf = &raw.inference;
        for (name, s) in [
            ("noise_scale", inf.noise_scale),
            ("length_scale", inf.length_scale),
            ("noise_w", inf.noise_w),
        ] {
            if !(s.is_finite() && s > 0.0 && s <= 10.0) {
                return Err(format!("inference.{name} = {s}"));
            }
        }
        let mut ids = HashMap::with_capacity(raw.phoneme_id_map.len());
        for (k, v) in raw.phoneme_id_map {
            let mut cs = k.chars();
            let (Some(c), None) = (cs.next(), cs.next()) else {
                return Err(format!("phoneme `{k}` is not one code point"));
            };
            if v.is_empty() || v.iter().any(|&i| !(0..raw.num_symbols).contains(&i)) {
                return Err(format!(
                    "phoneme `{k}` has ids {v:?} outside 0..{}",
                    raw.num_symbols
                ));
            }
            ids.insert(c, v);
        }
        let get = |c: char| {
            ids.get(&c)
                .cloned()
                .ok_or_else(|| format!("phoneme_id_map lacks `{c}`"))
        };
        Ok(Self {
            sample_rate: raw.audio.sample_rate,
            espeak_voice: raw.espeak.voice,
            noise_scale: inf.noise_scale,
            length_scale: inf.length_scale,
            noise_w: inf.noise_w,
            bos: get('^')?,
            eos: get('$')?,
            pad: get('_')?,
            ids,
        })
    }

    /// Model input ids for `ipa` (see the module documentation). Returns the ids and how many
    /// code points had no id.
    pub fn phoneme_ids(&self, ipa: &str) -> (Vec<i64>, usize) {
        let mut out = Vec::with_capacity(2 * ipa.len() + 4);
        out.extend_from_slice(&self.bos);
        out.extend_from_slice(&self.pad);
        let mut skipped = 0;
        for c in ipa.nfd() {
            match self.ids.get(&c) {
                Some(id) => {
                    out.extend_from_slice(id);
                    out.extend_from_slice(&self.pad);
                }
                None => skipped += 1,
            }
        }
        out.extend_from_slice(&self.eos);
        (out, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(map: &str) -> String {
        format!(
            r#"{{"audio":{{"sample_rate":22050}},"espeak":{{"voice":"en-us"}},
            "inference":{{"noise_scale":0.667,"length_scale":1,"noise_w":0.8}},
            "phoneme_type":"espeak","num_symbols":10,"num_speakers":1,
            "phoneme_id_map":{{{map}}}}}"#
        )
    }

    #[test]
    fn ids_are_padded_and_framed() -> Result<(), String> {
        let c = VoiceConfig::parse(
            config(r#""_":[0],"^":[1],"$":[2]," ":[3],"a":[4],"ˈ":[5],"̃":[6]"#).as_bytes(),
        )?;
        // "ã" is one code point in NFC; NFD splits it into a + U+0303.
        let (ids, skipped) = c.phoneme_ids("ˈa ãx");
        assert_eq!(ids, [1, 0, 5, 0, 4, 0, 3, 0, 4, 0, 6, 0, 2]);
        assert_eq!(skipped, 1);
        Ok(())
    }

    #[test]
    fn bad_configs_are_refused() {
        let ok = r#""_":[0],"^":[1],"$":[2]"#;
        assert!(VoiceConfig::parse(config(ok).as_bytes()).is_ok());
        for bad in [
            config(r#""_":[0],"^":[1]"#),
            config(r#""_":[0],"^":[1],"$":[2],"ab":[3]"#),
            config(r#""_":[0],"^":[1],"$":[99]"#),
            config(ok).replace("en-us", "en us;rm"),
            config(ok).replace("\"espeak\",", "\"text\","),
            config(ok).replace("\"num_speakers\":1", "\"num_speakers\":4"),
            config(ok).replace("0.667", "-1"),
            "{}".to_string(),
        ] {
            assert!(VoiceConfig::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
