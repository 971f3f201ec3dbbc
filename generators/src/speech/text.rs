//! Text checks and sentence splitting for the speech generators.
//!
//! What a voice accepts: after Unicode NFC normalisation (UAX #15), at most the registry's
//! `max_text_chars` scalar values drawn from printable ASCII, tab / CR / LF, the Latin letters
//! of U+00C0–U+024F, a few Latin-1 symbols and the typographic quotes, dashes and ellipsis of
//! General Punctuation, with at least one letter or digit. Everything else (control and format
//! characters such as bidi overrides and zero-width joiners, other scripts, emoji, private use)
//! is refused with its position, rather than silently dropped or spelled out by the phonemizer.

use unicode_normalization::UnicodeNormalization;

/// Slowest accepted speaking rate (× the voice's natural rate).
pub const MIN_SPEED: f64 = 0.5;
/// Fastest accepted speaking rate (× the voice's natural rate).
pub const MAX_SPEED: f64 = 2.0;
/// Longest piece of text synthesised in one model run, in characters. Longer sentences are
/// cut at the last space (or comma) before it; bounds the model's activations per run.
pub const MAX_SENTENCE_CHARS: usize = 300;

/// Why a speech request's text or speed was refused (a caller mistake).
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum TextError {
    /// The text is empty, or holds no letter or digit to speak.
    #[error("text is empty or has nothing to speak (no letter or digit)")]
    Empty,
    /// The text is longer than the voice's limit.
    #[error("text has {chars} characters; this voice accepts at most {limit}")]
    TooLong {
        /// Characters after NFC normalisation (or before, when far over the limit).
        chars: usize,
        /// The voice's `max_text_chars`.
        limit: usize,
    },
    /// The text holds a character the voice does not speak.
    #[error("unsupported character U+{code:04X} at position {position} (0-based, in characters); the voice reads Latin-script text, digits and common punctuation")]
    UnsupportedCharacter {
        /// The character's code point.
        code: u32,
        /// Its index among the NFC-normalised text's characters.
        position: usize,
    },
    /// The speed is outside [`MIN_SPEED`]`..=`[`MAX_SPEED`] or not a finite number.
    #[error("speed must be between {MIN_SPEED} and {MAX_SPEED} (got {0})")]
    Speed(f64),
}

impl TextError {
    /// Stable snake_case code: `empty_text`, `text_too_long`, `unsupported_characters`,
    /// `invalid_speed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_text",
            Self::TooLong { .. } => "text_too_long",
            Self::UnsupportedCharacter { .. } => "unsupported_characters",
            Self::Speed(_) => "invalid_speed",
        }
    }
}

/// Checks a speaking rate.
///
/// # Errors
/// [`TextError::Speed`] outside `0.5..=2.0` or non-finite.
pub fn check_speed(speed: f64) -> Result<f64, TextError> {
    if speed.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&speed) {
        Ok(speed)
    } else {
        Err(TextError::Speed(speed))
    }
}

fn supported(c: char) -> bool {
    matches!(c, ' '..='~' | '\n' | '\r' | '\t')
        || (('\u{c0}'..='\u{24f}').contains(&c) && c.is_alphabetic())
        || "\u{a0}¡¢£¥§«°±²³´µ·¹º»¿×÷€‘’‚“”„–—…•′″".contains(c)
}

/// Normalises (NFC) and checks `text` for a voice accepting `max_chars` characters. Returns the
/// text as it will be phonemized: NFC, square brackets turned into parentheses (espeak-ng
/// reads `[[...]]` as raw phoneme input) and tabs into spaces.
///
/// # Errors
/// [`TextError::TooLong`], [`TextError::UnsupportedCharacter`] (the first one),
/// [`TextError::Empty`].
pub fn normalize(text: &str, max_chars: usize) -> Result<String, TextError> {
    // NFC never grows a text by more than 3× (UAX #15 §9); refuse what could not fit
    // before normalising it.
    let raw = text.chars().count();
    if raw > max_chars.saturating_mul(3) {
        return Err(TextError::TooLong {
            chars: raw,
            limit: max_chars,
        });
    }
    let nfc: String = text.nfc().collect();
    let chars = nfc.chars().count();
    if chars > max_chars {
        return Err(TextError::TooLong {
            chars,
            limit: max_chars,
        });
    }
    if let Some((position, c)) = nfc.chars().enumerate().find(|(_, c)| !supported(*c)) {
        return Err(TextError::UnsupportedCharacter {
            code: u32::from(c),
            position,
        });
    }
    if !nfc.chars().any(char::is_alphanumeric) {
        return Err(TextError::Empty);
    }
    Ok(nfc
        .chars()
        .map(|c| match c {
            '[' => '(',
            ']' => ')',
            '\t' | '\r' => ' ',
            c => c,
        })
        .collect())
}

/// One unit of synthesis: a sentence (or a piece of a long one) and the punctuation that ends
/// each of its clauses, in order (the last is the sentence's own: `.`, `!` or `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The sentence's text, trimmed.
    pub text: String,
    /// Clause-final punctuation, one per clause (`,` `;` `:` then the final mark).
    pub clause_ends: Vec<char>,
}

fn ends_clause(c: char) -> bool {
    matches!(c, ',' | ';' | ':')
}

fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

/// Splits normalised text into sentences: after `.` `!` `?` `…` followed by whitespace, and at
/// line breaks. Sentences longer than [`MAX_SENTENCE_CHARS`] are cut at the last comma or
/// space before the limit (or hard at the limit). Pieces without a letter or digit are
/// dropped. Clause ends are `,` `;` `:` followed by whitespace.
pub fn sentences(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next_ws = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        let boundary = c == '\n' || (ends_sentence(c) && next_ws);
        let too_long = i + 1 - start >= MAX_SENTENCE_CHARS;
        if boundary || too_long {
            let mut end = i + 1;
            if too_long && !boundary {
                // Cut after the last comma, else at the last space, in the second half.
                let piece = &chars[start..end];
                let half = piece.len() / 2;
                let cut = piece
                    .iter()
                    .rposition(|&c| ends_clause(c))
                    .filter(|&p| p >= half)
                    .or_else(|| {
                        piece
                            .iter()
                            .rposition(|c| c.is_whitespace())
                            .filter(|&p| p >= half)
                    });
                if let Some(p) = cut {
                    end = start + p + 1;
                }
            }
            push_sentence(&mut out, &chars[start..end]);
            start = end;
            i = end;
            continue;
        }
        i += 1;
    }
    push_sentence(&mut out, &chars[start..]);
    out
}

fn push_sentence(out: &mut Vec<Sentence>, piece: &[char]) {
    let text: String = piece.iter().collect::<String>().trim().to_owned();
    if !text.chars().any(char::is_alphanumeric) {
        return;
    }
    let t: Vec<char> = text.chars().collect();
    let mut clause_ends: Vec<char> = t
        .windows(2)
        .filter(|w| ends_clause(w[0]) && w[1].is_whitespace())
        .map(|w| w[0])
        .collect();
    let last = match t.last() {
        Some('!') => '!',
        Some('?') => '?',
        _ => '.',
    };
    clause_ends.push(last);
    out.push(Sentence { text, clause_ends });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_refuses_what_it_cannot_speak() {
        assert_eq!(normalize("", 10), Err(TextError::Empty));
        assert_eq!(normalize("  ...  ", 10), Err(TextError::Empty));
        assert!(matches!(
            normalize("abcdefghijk", 10),
            Err(TextError::TooLong {
                chars: 11,
                limit: 10
            })
        ));
        assert_eq!(
            normalize("ok \u{202e}evil", 100),
            Err(TextError::UnsupportedCharacter {
                code: 0x202e,
                position: 3
            })
        );
        assert_eq!(
            normalize("日本", 100),
            Err(TextError::UnsupportedCharacter {
                code: 0x65e5,
                position: 0
            })
        );
        assert!(matches!(
            normalize("a\u{0}b", 100),
            Err(TextError::UnsupportedCharacter { code: 0, .. })
        ));
        // Combining sequences are composed first: e + U+0301 is é, which is supported.
        assert_eq!(normalize("cafe\u{301}", 100).as_deref(), Ok("café"));
        assert_eq!(
            normalize("“Quoted” – [[raw]]\tend…", 100).as_deref(),
            Ok("“Quoted” – ((raw)) end…")
        );
    }

    #[test]
    fn speed_bounds() {
        assert!(check_speed(1.0).is_ok());
        for bad in [0.0, -1.0, 0.49, 2.01, f64::NAN, f64::INFINITY, 100.0] {
            assert!(check_speed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn splits_sentences_and_clauses() {
        let s = sentences("Hello, world! Is it 3.5 m? Yes: it is\nNew line... e.g. this");
        let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Hello, world!",
                "Is it 3.5 m?",
                "Yes: it is",
                "New line...",
                "e.g.",
                "this"
            ]
        );
        assert_eq!(s[0].clause_ends, [',', '!']);
        assert_eq!(s[1].clause_ends, ['?']);
        assert_eq!(s[2].clause_ends, [':', '.']);
    }

    #[test]
    fn long_sentences_are_cut_at_spaces() {
        let text = "word ".repeat(200);
        let s = sentences(&text);
        assert!(s.len() >= 4);
        for piece in &s {
            assert!(piece.text.chars().count() <= MAX_SENTENCE_CHARS);
            assert!(piece.text.split(' ').all(|w| w == "word"), "{}", piece.text);
        }
        // No space at all: cut hard at the limit, nothing lost.
        let blob = "a".repeat(1000);
        let s = sentences(&blob);
        assert_eq!(s.iter().map(|p| p.text.len()).sum::<usize>(), 1000);
    }
}
