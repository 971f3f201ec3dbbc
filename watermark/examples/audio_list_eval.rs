//! Offline evaluation of the audio decoder's list size (an experiment, not a
//! test). Reads the `.soft` files that `audio_harness` writes with
//! `WM_SOFT_DUMP=DIR` (p-value and the two data soft-value sets at the
//! detector's best hypothesis, per clip and attack) and, per attack, counts
//! detections with the harness payload (pilot p-value × ρ(L) < 1e-6, ρ(L) = L × 2⁻¹⁶ the
//! detector's CRC factor, and the decoded payload
//! equal to it) and wrong payloads, for list sizes 1 (plain Viterbi) to 256,
//! with and without the second soft-value set. Then measures false CRC
//! matches on garbage codewords with realistic magnitudes: the soft values of
//! every failed decode with independent random signs.
//!
//! ```text
//! WM_SOFT_DUMP=/tmp/soft WM_ATTACKS=aac_64,opus_32 cargo run --release \
//!   --example audio_harness -- /tmp/wm_clips
//! cargo run --release --example audio_list_eval -- /tmp/soft [garbage draws per list size]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hallmark_watermark::audio::{decode_eval, DataSoft};

/// The harness's payload.
const PAYLOAD: u64 = 0x89AB_CDEF;
const LISTS: &[usize] = &[1, 2, 4, 8, 16, 32, 64, 256];

/// The detector's CRC factor for a list of `l` paths (twice with the second
/// soft-value set): a detection needs `p_value × ρ < 1e-6` and the CRC.
fn rho(l: usize, second: bool) -> f64 {
    (l * if second { 2 } else { 1 }) as f64 / 65536.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: audio_list_eval DIR [draws]");
    let draws: usize = args.get(2).map_or(20_000, |v| v.parse().unwrap());
    let mut by_attack: BTreeMap<String, Vec<DataSoft>> = BTreeMap::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "soft"))
        .collect();
    names.sort();
    for p in names {
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let attack = stem.split("__").nth(1).unwrap_or("?").to_string();
        let v: Vec<f64> = std::fs::read_to_string(&p)
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let n = (v.len() - 1) / 2;
        by_attack.entry(attack).or_default().push(DataSoft {
            p_value: v[0],
            noise_model: v[1..=n].to_vec(),
            sensitivity: v[n + 1..].to_vec(),
            second: false,
        });
    }
    println!("ok / wrong payload (pilot p × ρ(L) < 1e-6 and the CRC), per attack; columns: list size, `+2` = with the second soft-value set");
    let mut header = String::from("| attack | n | sync ok |");
    for &l in LISTS {
        header.push_str(&format!(" L={l} | L={l} +2 |"));
    }
    println!("{header}");
    let mut total = vec![(0usize, 0usize); LISTS.len() * 2];
    let mut failed: Vec<DataSoft> = Vec::new();
    for (attack, v) in &by_attack {
        // pilots strong enough for a detection at list size 16 with a CRC match
        let sync = v
            .iter()
            .filter(|d| d.p_value * rho(16, false) < 1e-6)
            .count();
        let mut row = format!("| {attack} | {} | {sync} |", v.len());
        for (li, &l) in LISTS.iter().enumerate() {
            for (si, second) in [false, true].into_iter().enumerate() {
                let (mut ok, mut wrong) = (0, 0);
                for d in v.iter().filter(|d| d.p_value * rho(l, second) < 1e-6) {
                    match decode_eval(d, l, second) {
                        Some(PAYLOAD) => ok += 1,
                        Some(_) => wrong += 1,
                        None => {}
                    }
                }
                let t = &mut total[li * 2 + si];
                t.0 += ok;
                t.1 += wrong;
                row.push_str(&format!(" {ok}/{wrong} |"));
            }
        }
        println!("{row}");
        failed.extend(
            v.iter()
                .filter(|d| decode_eval(d, 1, true) != Some(PAYLOAD))
                .cloned(),
        );
    }
    let mut row = String::from("| all | | |");
    for t in &total {
        row.push_str(&format!(" {}/{} |", t.0, t.1));
    }
    println!("{row}");
    if failed.is_empty() || draws == 0 {
        return;
    }
    println!(
        "\ngarbage: {draws} draws per list size from the {} failed decodes' magnitudes, random signs",
        failed.len()
    );
    println!("| list | second set | CRC matches | rate | L × 2^-16 (× 2 with the second set) |");
    for &l in &[1usize, 4, 16, 64] {
        for second in [false, true] {
            let mut s = 0x5EED_u64 ^ l as u64;
            let mut rnd = || {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) & 1 == 1
            };
            let mut hits = 0usize;
            for i in 0..draws {
                let src = &failed[i % failed.len()];
                let mut d = src.clone();
                for k in 0..d.noise_model.len() {
                    if rnd() {
                        d.noise_model[k] = -d.noise_model[k];
                        d.sensitivity[k] = -d.sensitivity[k];
                    }
                }
                if decode_eval(&d, l, second).is_some() {
                    hits += 1;
                }
            }
            let bound = l as f64 * if second { 2.0 } else { 1.0 } / 65536.0;
            println!(
                "| {l} | {second} | {hits} | {:.2e} | {bound:.2e} |",
                hits as f64 / draws as f64
            );
        }
    }
}
