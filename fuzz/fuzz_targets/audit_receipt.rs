//! Receipt JSON (what `hallmark audit verify-receipt` reads), its hex hashes and inclusion
//! proof, verified offline with the fixed log key; the C2SP tlog-proof rendering; and the
//! JSON Lines export verifier (`hallmark audit verify`).
#![no_main]

use hallmark_audit::{parse_hex_hash, verify_json_lines, Receipt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<Receipt>(data) {
        let _ = r.verify(&hallmark_fuzz::log_verifier());
        let _ = r.tlog_proof();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_hex_hash(s);
    }
    let _ = verify_json_lines(data);
});
