//! Seeded inputs of the `ops` suite: a small deterministic PRNG, host tensors, and weights written
//! as a tiny in-memory GGUF file (each backend loads them with `Ops::load_weight`, as from a model).
//!
//! Value ranges follow llama.cpp's tests/test-backend-ops.cpp (`init_tensor_uniform`: uniform in
//! [-1, 1] unless a test asks otherwise); weights of the types `orcd_engine::quant` can quantize
//! are quantizations of such values (as test-backend-ops quantizes its uniform data); the k-quants
//! and IQ4_NL, which have no quantizer here, are random valid blocks with sane scales.

use orcd_engine::gguf::{GgmlType, GgufFile, GgufWriter};
use orcd_engine::quant;

/// SplitMix64: small, deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A seed from a case name (FNV-1a), so every case has its own inputs, stable across runs.
    pub fn for_case(name: &str) -> Self {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)` (24 random bits).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n.max(1) as u64) as usize
    }

    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// A random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }
}

/// A row-major `[rows, cols]` host tensor.
#[derive(Debug, Clone)]
pub struct Host {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Host {
    pub fn uniform(rng: &mut Rng, rows: usize, cols: usize, lo: f32, hi: f32) -> Self {
        Host { rows, cols, data: rng.vec(rows * cols, lo, hi) }
    }
}

/// Builds the in-memory GGUF file holding a case's weights.
#[derive(Debug, Default)]
pub struct Weights {
    w: GgufWriter,
}

impl Weights {
    /// Add tensor `name` of type `ty` and GGUF dims `dims` (ne0 first) with seeded contents.
    pub fn add(&mut self, rng: &mut Rng, name: &str, ty: GgmlType, dims: &[u64]) -> Result<(), String> {
        let n: u64 = dims.iter().product();
        let data = weight_bytes(rng, ty, n as usize)?;
        self.w.add_tensor(name, ty, dims, data).map_err(|e| format!("weight {name}: {e}"))?;
        Ok(())
    }

    /// Add an F32 tensor with the given values.
    pub fn add_f32(&mut self, name: &str, dims: &[u64], values: &[f32]) -> Result<(), String> {
        self.w.add_f32(name, dims, values).map_err(|e| format!("weight {name}: {e}"))?;
        Ok(())
    }

    pub fn finish(self) -> Result<GgufFile, String> {
        GgufFile::from_bytes(self.w.to_bytes().0).map_err(|e| format!("reading back the weights file: {e}"))
    }
}

fn f16_le(x: f32) -> [u8; 2] {
    quant::f32_to_f16(x).to_le_bytes()
}

/// `n` elements of type `ty`: quantized uniform [-1, 1] values where `orcd_engine::quant` can
/// quantize the type, else random valid blocks (random codes and sub-block scales, finite F16
/// super-scales chosen so the values stay within about [-1, 1]).
pub fn weight_bytes(rng: &mut Rng, ty: GgmlType, n: usize) -> Result<Vec<u8>, String> {
    if quant::can_quantize(ty) {
        return quant::quantize(ty, &rng.vec(n, -1.0, 1.0)).map_err(|e| e.to_string());
    }
    let (bs, ts) = (ty.block_size(), ty.type_size());
    if !n.is_multiple_of(bs) {
        return Err(format!("{n} elements of {ty} is not a whole number of {bs}-element blocks"));
    }
    let mut out = Vec::with_capacity(n / bs * ts);
    for _ in 0..n / bs {
        let mut b: Vec<u8> = (0..ts).map(|_| rng.next_u64() as u8).collect();
        let mut jitter = || rng.uniform(0.5, 1.5);
        // Offsets of the F16 scales in each block (engine/gguf/src/quant/kquants.rs, legacy.rs).
        let mut put = |at: usize, v: f32| b[at..at + 2].copy_from_slice(&f16_le(v));
        match ty {
            // w = d·sc·q − dmin·m, sc and m 4-bit, q 2-bit; d at 80, dmin at 82.
            GgmlType::Q2_K => {
                put(80, jitter() / 45.0);
                put(82, jitter() / 30.0);
            }
            // w = d·(sc − 32)·q, q in −4..3; d at 108.
            GgmlType::Q3_K => put(108, jitter() / 128.0),
            // w = d·sc·q − dmin·m, sc and m 6-bit, q 4-bit; d at 0, dmin at 2.
            GgmlType::Q4_K => {
                put(0, jitter() / 945.0);
                put(2, jitter() / 126.0);
            }
            // As Q4_K with q 5-bit.
            GgmlType::Q5_K => {
                put(0, jitter() / 1953.0);
                put(2, jitter() / 126.0);
            }
            // w = d·sc·(q − 32), sc i8, q 6-bit; d at 208.
            GgmlType::Q6_K => put(208, jitter() / 4096.0),
            // w = d·IQ4NL_VALUES[q] (values in −127..113); d at 0.
            GgmlType::IQ4_NL => put(0, jitter() / 127.0),
            other => return Err(format!("no generator for weights of type {other}")),
        }
        out.extend_from_slice(&b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_blocks_are_finite_and_in_range() {
        let mut rng = Rng::new(7);
        for ty in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL] {
            let n = 4096;
            let bytes = weight_bytes(&mut rng, ty, n).unwrap_or_default();
            let mut y = vec![0f32; n];
            assert!(quant::dequantize(ty, &bytes, &mut y).is_ok(), "{ty}");
            let amax = y.iter().fold(0f32, |m, v| m.max(v.abs()));
            let rms = (y.iter().map(|v| v * v).sum::<f32>() / n as f32).sqrt();
            assert!(y.iter().all(|v| v.is_finite()) && amax < 3.0 && rms > 0.01, "{ty}: amax {amax}, rms {rms}");
        }
    }

    #[test]
    fn the_prng_is_deterministic_and_uniform() {
        let (mut a, mut b) = (Rng::for_case("x"), Rng::for_case("x"));
        assert_eq!(a.vec(8, -1.0, 1.0), b.vec(8, -1.0, 1.0));
        let v = Rng::new(1).vec(100_000, -1.0, 1.0);
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01 && v.iter().all(|x| (-1.0..1.0).contains(x)), "mean {mean}");
        let mut p = Rng::new(3).permutation(10);
        p.sort_unstable();
        assert_eq!(p, (0..10).collect::<Vec<_>>());
    }
}
