//! Signed-note and checkpoint parsing (audit crate): verifier and signer key strings, a note
//! opened with the fixed log key, checkpoint bodies, and signed checkpoints.
#![no_main]

use hallmark_audit::{Checkpoint, NoteSigner, NoteVerifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let v = hallmark_fuzz::log_verifier();
    if let Ok(k) = NoteVerifier::parse(text) {
        assert_eq!(NoteVerifier::parse(&k.to_vkey()).ok(), Some(k));
    }
    let _ = NoteSigner::from_skey(text);
    let _ = v.open(text);
    if let Ok(cp) = Checkpoint::parse(text) {
        // A parsed checkpoint re-serialises to the text it came from.
        assert_eq!(cp.to_text(), text);
    }
    let _ = Checkpoint::open(text, &v);
});
