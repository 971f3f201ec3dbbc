//! Channel code: 64-bit payload + CRC-16/CCITT-FALSE, rate-1/2 K=7 convolutional
//! code (generators 171, 133 octal; the NASA/CCSDS code) with 6 zero tail bits,
//! soft-decision Viterbi decoding (Viterbi 1967).

use crate::PAYLOAD_BITS;

const K: usize = 7;
const G1: u32 = 0o171;
const G2: u32 = 0o133;
const N_STATES: usize = 1 << (K - 1);
/// Information bits: payload + CRC-16.
pub(crate) const INFO_BITS: usize = PAYLOAD_BITS + 16;
const TAIL: usize = K - 1;
/// Coded bits per mark (172).
pub(crate) const CODED_BITS: usize = 2 * (INFO_BITS + TAIL);

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the payload, big-endian bytes.
pub(crate) fn crc16(payload: u64) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for byte in payload.to_be_bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn info_bits(payload: u64) -> Vec<u8> {
    let mut bits = Vec::with_capacity(INFO_BITS + TAIL);
    for i in (0..64).rev() {
        bits.push(((payload >> i) & 1) as u8);
    }
    let c = crc16(payload);
    for i in (0..16).rev() {
        bits.push(((c >> i) & 1) as u8);
    }
    bits.extend(std::iter::repeat_n(0u8, TAIL));
    bits
}

fn parity(x: u32) -> u8 {
    (x.count_ones() & 1) as u8
}

fn conv_encode(bits: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bits.len() * 2);
    let mut reg: u32 = 0;
    for &b in bits {
        reg = ((reg << 1) | u32::from(b)) & ((1 << K) - 1);
        out.push(parity(reg & G1));
        out.push(parity(reg & G2));
    }
    out
}

/// Coded bits (0/1), length [`CODED_BITS`].
pub(crate) fn encode(payload: u64) -> Vec<u8> {
    conv_encode(&info_bits(payload))
}

/// Result of soft decoding.
pub(crate) struct Decoded {
    /// Payload, `Some` only if the CRC checks.
    pub payload: Option<u64>,
    /// The 64 decided payload bits, whatever the CRC says.
    pub bits: u64,
    /// Fraction of coded bits whose soft sign agrees with the re-encoded decision.
    pub bit_agreement: f64,
}

/// Soft-decision Viterbi. `soft[i] > 0` means coded bit i is more likely 0
/// (transmitted as +1), `< 0` means 1. Scale-free (maximises correlation).
pub(crate) fn decode(soft: &[f64]) -> Decoded {
    let steps = INFO_BITS + TAIL;
    if soft.len() != CODED_BITS {
        return Decoded {
            payload: None,
            bits: 0,
            bit_agreement: 0.0,
        };
    }
    // Branch outputs per (state, input bit).
    let mut metric = vec![f64::NEG_INFINITY; N_STATES];
    metric[0] = 0.0;
    let mut decisions: Vec<[u8; N_STATES]> = Vec::with_capacity(steps);
    let mut prev_state: Vec<[u8; N_STATES]> = Vec::with_capacity(steps);
    for t in 0..steps {
        let r1 = soft[2 * t];
        let r2 = soft[2 * t + 1];
        let mut next = vec![f64::NEG_INFINITY; N_STATES];
        let mut dec = [0u8; N_STATES];
        let mut prv = [0u8; N_STATES];
        for (s, &m) in metric.iter().enumerate() {
            if m == f64::NEG_INFINITY {
                continue;
            }
            let inputs: &[u32] = if t >= INFO_BITS { &[0] } else { &[0, 1] };
            for &b in inputs {
                let reg = ((s as u32) << 1) | b;
                let o1 = parity(reg & G1);
                let o2 = parity(reg & G2);
                let bm = if o1 == 0 { r1 } else { -r1 } + if o2 == 0 { r2 } else { -r2 };
                let ns = (reg as usize) & (N_STATES - 1);
                let cand = m + bm;
                if cand > next[ns] {
                    next[ns] = cand;
                    dec[ns] = b as u8;
                    prv[ns] = s as u8;
                }
            }
        }
        metric = next;
        decisions.push(dec);
        prev_state.push(prv);
    }
    // Terminated trellis: end in state 0.
    let mut bits = vec![0u8; steps];
    let mut s = 0usize;
    for t in (0..steps).rev() {
        bits[t] = decisions[t][s];
        s = prev_state[t][s] as usize;
    }
    let mut payload: u64 = 0;
    for &b in &bits[..64] {
        payload = (payload << 1) | u64::from(b);
    }
    let mut crc: u16 = 0;
    for &b in &bits[64..80] {
        crc = (crc << 1) | u16::from(b);
    }
    let recoded = conv_encode(&bits);
    let agree = recoded
        .iter()
        .zip(soft)
        .filter(|(&c, &r)| (c == 0 && r > 0.0) || (c == 1 && r < 0.0))
        .count();
    Decoded {
        payload: (crc == crc16(payload)).then_some(payload),
        bits: payload,
        bit_agreement: agree as f64 / CODED_BITS as f64,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_vector() {
        // CRC-16/CCITT-FALSE("123456789") = 0x29B1; check the bit loop on 8 bytes instead.
        assert_ne!(crc16(0), crc16(1));
    }

    #[test]
    fn viterbi_corrects_errors() {
        let payload = 0xDEAD_BEEF_0123_4567u64;
        let c = encode(payload);
        assert_eq!(c.len(), CODED_BITS);
        let mut soft: Vec<f64> = c.iter().map(|&b| if b == 0 { 1.0 } else { -1.0 }).collect();
        // flip 8 well-spread bits
        for i in [3usize, 25, 50, 77, 101, 130, 150, 166] {
            soft[i] = -soft[i] * 0.5;
        }
        let d = decode(&soft);
        assert_eq!(d.payload, Some(payload));
        assert!(d.bit_agreement > 0.9 && d.bit_agreement < 1.0);
    }

    #[test]
    fn garbage_fails_crc() {
        let mut s = 12345u64;
        let mut fails = 0;
        for _ in 0..50 {
            let soft: Vec<f64> = (0..CODED_BITS)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) as f64 / (1u64 << 31) as f64) - 1.0
                })
                .collect();
            if decode(&soft).payload.is_none() {
                fails += 1;
            }
        }
        assert_eq!(fails, 50);
    }
}
