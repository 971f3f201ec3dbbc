//! JSON Canonicalization Scheme (JCS), [RFC 8785].
//!
//! The canonical form is what gets hashed into the audit chain, so it must be
//! byte-for-byte reproducible by any independent verifier:
//!
//! * **Whitespace**: none between tokens (RFC 8785 §3.2.1).
//! * **Literals**: `null`, `true`, `false` as-is.
//! * **Strings** (§3.2.2.2): `"` and `\` are escaped as `\"` and `\\`; the
//!   control characters U+0008, U+0009, U+000A, U+000C, U+000D use the short
//!   forms `\b \t \n \f \r`; every other code point below U+0020 is written as
//!   `\u00xx` with **lowercase** hex; everything else (including U+007F,
//!   U+2028/U+2029 and all non-ASCII) is emitted literally as UTF-8.
//! * **Object members** (§3.2.3) are sorted by their names compared as arrays
//!   of **UTF-16 code units** (not UTF-8 bytes, not code points). This matters
//!   for characters outside the BMP, which sort *before* e.g. U+FB33 in UTF-16.
//! * **Numbers** (§3.2.2.3) are serialised like ECMAScript's
//!   `Number.prototype.toString` (ECMA-262 §7.1.12.1, "Number::toString"):
//!   - integers that `serde_json` holds as `u64`/`i64` are written exactly as
//!     their decimal digits ("as-is"). For magnitudes up to 2^53 this is
//!     identical to the ES6 rendering; beyond that JCS would first round to an
//!     IEEE-754 double, which we deliberately do **not** do so that no integer
//!     is silently altered. Audit bodies never contain such integers; keep
//!     integers within ±(2^53 − 1) (I-JSON, RFC 7493) for interoperability.
//!   - non-integer (binary64) numbers use the shortest round-trip decimal
//!     digits (Rust's `{:e}` formatting yields exactly those digits), then the
//!     ES6 layout rules: plain notation for decimal exponents in `[-6, 21)`,
//!     otherwise `d[.ddd]e±n`. `-0` is written `0`. NaN/Infinity cannot occur
//!     because `serde_json::Value` cannot represent them.
//!
//! Because every `serde_json::Value` is representable, canonicalisation is
//! infallible.
//!
//! [RFC 8785]: https://www.rfc-editor.org/rfc/rfc8785

use serde_json::{Map, Number, Value};

/// Serialise `value` in RFC 8785 (JCS) canonical form.
///
/// See the [module documentation](self) for the exact rules.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    canonical_json_string(value).into_bytes()
}

/// Same as [`canonical_json`] but returns a `String` (the output is always UTF-8).
pub fn canonical_json_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value_str(&mut out, value);
    out
}

/// Returns true if `text` is byte-identical to the canonical form of the JSON
/// value it encodes. Returns false for text that is not valid JSON.
pub fn is_canonical(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => canonical_json_string(&v) == text,
        Err(_) => false,
    }
}

fn write_value_str(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value_str(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // RFC 8785 §3.2.3: sort by UTF-16 code units.
    members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        write_value_str(out, v);
    }
    out.push('}');
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0C}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push_str(&es6_number_to_string(f));
    } else {
        // Unreachable with serde_json's number model; fall back to its own
        // rendering rather than panicking.
        out.push_str(&n.to_string());
    }
}

/// ECMAScript `Number::toString(x)` for finite `x` (ECMA-262 §7.1.12.1), as
/// required by RFC 8785 §3.2.2.3.
///
/// Non-finite input yields `"null"` (as `JSON.stringify` would); it cannot
/// arise from a `serde_json::Value`.
pub fn es6_number_to_string(x: f64) -> String {
    if !x.is_finite() {
        return "null".to_string();
    }
    if x == 0.0 {
        return "0".to_string(); // also covers -0
    }
    let negative = x < 0.0;
    // `{:e}` gives the shortest digits that round-trip, e.g. "1.2345e-7".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some(parts) => parts,
        None => (sci.as_str(), "0"),
    };
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sci_exp: i64 = exp.parse().unwrap_or(0);
    let (digits, sci_exp) = break_tie_to_even(x.abs(), digits, sci_exp);
    let digits = digits.as_str();
    // ECMA-262 notation: x = 0.d1d2...dk × 10^n  →  n = sci_exp + 1.
    let k = digits.len() as i64;
    let n = sci_exp + 1;

    let mut s = String::new();
    if negative {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(digits);
        for _ in 0..(n - k) {
            s.push('0');
        }
    } else if 0 < n && n <= 21 {
        let (int_part, frac_part) = digits.split_at(n as usize);
        s.push_str(int_part);
        s.push('.');
        s.push_str(frac_part);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        for _ in 0..(-n) {
            s.push('0');
        }
        s.push_str(digits);
    } else {
        let e = n - 1;
        let (first, rest) = digits.split_at(1);
        s.push_str(first);
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        s.push('e');
        s.push(if e < 0 { '-' } else { '+' });
        s.push_str(&e.abs().to_string());
    }
    s
}

/// ECMA-262 §7.1.12.1 step 5: if two shortest digit strings are equally close
/// to `x`, choose the one whose last digit is even. Rust's shortest formatting
/// does not specify the tie rule, so detect exact ties from the exact decimal
/// expansion of `x` (at most 767 significant digits for a binary64) and fix
/// them up.
fn break_tie_to_even(x: f64, digits: &str, sci_exp: i64) -> (String, i64) {
    let k = digits.len();
    let exact = format!("{:.800e}", x);
    let (m, e) = match exact.split_once('e') {
        Some(p) => p,
        None => return (digits.to_string(), sci_exp),
    };
    let exact_exp: i64 = e.parse().unwrap_or(sci_exp);
    let exact_digits: String = m.chars().filter(|c| c.is_ascii_digit()).collect();
    let exact_digits = exact_digits.trim_end_matches('0');
    if exact_digits.len() != k + 1 || !exact_digits.ends_with('5') {
        return (digits.to_string(), sci_exp);
    }
    let low = &exact_digits[..k];
    let low_even = low
        .bytes()
        .last()
        .is_some_and(|b| (b - b'0').is_multiple_of(2));
    if low_even {
        let t = low.trim_end_matches('0');
        return (if t.is_empty() { "0" } else { t }.to_string(), exact_exp);
    }
    // High candidate: decimal increment of `low`, with carry.
    let mut bytes = low.as_bytes().to_vec();
    let mut i = bytes.len();
    let mut carry = true;
    while carry && i > 0 {
        i -= 1;
        if bytes[i] == b'9' {
            bytes[i] = b'0';
        } else {
            bytes[i] += 1;
            carry = false;
        }
    }
    let mut exp = exact_exp;
    if carry {
        bytes.insert(0, b'1');
        exp += 1;
    }
    let high = String::from_utf8_lossy(&bytes).into_owned();
    let t = high.trim_end_matches('0');
    (if t.is_empty() { "0" } else { t }.to_string(), exp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(canonical_json(v)).unwrap()
    }

    #[test]
    fn rfc8785_section_3_2_2_example() {
        // RFC 8785 §3.2.2 (input has whitespace and un-sorted members; the
        // number values are given there in their parsed form).
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(canon(&v), expected);
    }

    #[test]
    fn rfc8785_section_3_2_3_sorting() {
        // RFC 8785 §3.2.3: sorting by UTF-16 code units.
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let out = canon(&v);
        let values: Vec<&str> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh",
        ]
        .to_vec();
        let mut last = 0;
        for name in values {
            let pos = out.find(name).unwrap();
            assert!(pos >= last, "{name} out of order in {out}");
            last = pos;
        }
        // The exact expected output.
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1F600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(out, expected);
    }

    #[test]
    fn string_escaping() {
        let v = json!("a\u{0}b\u{1f}c\u{7f}d\u{2028}e\u{8}\u{c}\"\\/");
        assert_eq!(
            canon(&v),
            "\"a\\u0000b\\u001fc\u{7f}d\u{2028}e\\b\\f\\\"\\\\/\""
        );
    }

    #[test]
    fn nested_and_no_whitespace() {
        let v = json!({"b": [1, {"z": null, "a": true}], "a": {"y": "x", "x": -5}});
        assert_eq!(
            canon(&v),
            r#"{"a":{"x":-5,"y":"x"},"b":[1,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn rfc8785_appendix_b_numbers() {
        // IEEE-754 bit patterns and expected outputs from RFC 8785 Appendix B.
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in cases {
            let f = f64::from_bits(*bits);
            assert_eq!(es6_number_to_string(f), *expected, "bits {bits:#x}");
        }
    }

    #[test]
    fn integers_as_is() {
        assert_eq!(canon(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(canon(&json!(i64::MIN)), "-9223372036854775808");
        assert_eq!(canon(&json!(1.0)), "1");
        assert_eq!(canon(&json!(-2.5)), "-2.5");
    }

    #[test]
    fn is_canonical_detects_edits() {
        assert!(is_canonical(r#"{"a":1,"b":"x"}"#));
        assert!(!is_canonical(r#"{"b":"x","a":1}"#));
        assert!(!is_canonical(r#"{"a": 1,"b":"x"}"#));
        assert!(!is_canonical(r#"{"a":1,"a":1,"b":"x"}"#));
        assert!(!is_canonical(r#"{"a":1.0}"#));
        assert!(!is_canonical(r#"{"a":"\u0041"}"#));
        assert!(!is_canonical("not json"));
    }
}
