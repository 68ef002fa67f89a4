//! Deterministic pseudo-random signals for tests and benches (xorshift64): inputs, never
//! expected values. One generator, so every test and bench that draws "a random vector from seed
//! s" draws the same one.

/// xorshift64 (13, 7, 17) seeded from `seed` (any value; the state is never zero).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1) on a 2⁻²⁴ grid (exact in f32).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 24) as u8
    }
}

/// `n` values uniform in [-1, 1).
pub fn signal(n: usize, seed: u64) -> Vec<f32> {
    let mut r = XorShift::new(seed);
    (0..n).map(|_| r.unit() * 2.0 - 1.0).collect()
}

/// `n` bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut r = XorShift::new(seed);
    (0..n).map(|_| r.byte()).collect()
}
