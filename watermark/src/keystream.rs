//! Keyed pseudo-random stream: HMAC-SHA256(master, label ‖ 0x00 ‖ counter_be64)
//! in counter mode (each block yields 32 bytes).

use ring::hmac;

pub(crate) struct KeyStream {
    key: hmac::Key,
    label: Vec<u8>,
    counter: u64,
    buf: [u8; 32],
    pos: usize,
}

impl KeyStream {
    pub(crate) fn new(master: &[u8; 32], label: &str) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, master),
            label: label.as_bytes().to_vec(),
            counter: 0,
            buf: [0u8; 32],
            pos: 32,
        }
    }

    fn refill(&mut self) {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&self.label);
        ctx.update(&[0u8]);
        ctx.update(&self.counter.to_be_bytes());
        let tag = ctx.sign();
        self.buf.copy_from_slice(tag.as_ref());
        self.counter = self.counter.wrapping_add(1);
        self.pos = 0;
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        if self.pos + 8 > 32 {
            self.refill();
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        u64::from_le_bytes(b)
    }

    /// `n` random signs (±1.0).
    pub(crate) fn signs(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut w = self.next_u64();
            for _ in 0..64 {
                if out.len() == n {
                    break;
                }
                out.push(if w & 1 == 1 { 1.0 } else { -1.0 });
                w >>= 1;
            }
        }
        out
    }

    /// Uniform integer in `0..n` (n > 0), by rejection sampling.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Keyed random permutation of `0..n` (Fisher–Yates).
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}
