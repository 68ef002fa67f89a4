//! MXFP4 (OCP microscaling FP4): 32 E2M1 values sharing one E8M0 scale.
//!
//! Values are stored doubled as integers (`KVALUES`), so the scale used is *half* the E8M0 value:
//! `e8m0_half(e) = 2^(e - 128)` (`e` = 0 and 1 give the f32 subnormals 2^-128 and 2^-127). This is
//! gguf-py 0.19.0's `e8m0_to_fp32_half` (ggml's `ggml_e8m0_to_fp32_half`); no E8M0 value is NaN.
//!
//! Quantization (gguf-py): `e = floor(log2(amax)) - 2 + 127` computed in float32 and cast to u8
//! (0 when amax is 0 or NaN), then each element takes the first code whose value `d * k` is nearest.

use std::mem::{offset_of, size_of};

use super::blocks::{bytes, put};
use super::numpy_ops::{argmin, cast_u8, max_abs};

pub const QK_MXFP4: usize = 32;

/// E2M1 values times two, indexed by the 4-bit code (bit 3 is the sign).
pub const KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// MXFP4: `w = e8m0_half(e) * KVALUES[q]`; nibble halves as Q4_0 (low: elements 0..16).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockMxfp4 {
    pub e: u8,
    pub qs: [u8; QK_MXFP4 / 2],
}
const _: () = assert!(size_of::<BlockMxfp4>() == 17);

pub(super) const MXFP4_BYTES: usize = size_of::<BlockMxfp4>();

/// The value table in use: [`KVALUES`], or — only with the `faults` feature and the
/// `Mxfp4Table` fault planted — the codes read as plain sign-magnitude integers (0..7), a wrong
/// table that the model goldens must catch.
#[inline]
pub fn kvalues() -> &'static [i8; 16] {
    const WRONG: [i8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 0, -1, -2, -3, -4, -5, -6, -7];
    if crate::faults::active(crate::faults::Fault::Mxfp4Table) {
        &WRONG
    } else {
        &KVALUES
    }
}

/// Half the value of the E8M0 scale `e`: 2^(e - 128), exact.
#[inline]
pub fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 { 0x0020_0000u32 << e } else { u32::from(e - 1) << 23 };
    f32::from_bits(bits)
}

/// `floor(log2(x))` as numpy computes it for a positive float32: log2 rounded to float32 first,
/// so values just below a power of two can land on the integer above. (Checked against numpy's
/// float32 log2 for every positive finite float32.)
#[inline]
fn floor_log2_f32(x: f32) -> f32 {
    ((f64::from(x)).log2() as f32).floor()
}

impl BlockMxfp4 {
    pub fn from_bytes(b: &[u8; MXFP4_BYTES]) -> Self {
        Self { e: b[offset_of!(Self, e)], qs: bytes(b, offset_of!(Self, qs)) }
    }

    pub fn to_bytes(&self) -> [u8; MXFP4_BYTES] {
        let mut out = [0u8; MXFP4_BYTES];
        out[offset_of!(Self, e)] = self.e;
        put(&mut out, offset_of!(Self, qs), &self.qs);
        out
    }

    pub fn dequantize(&self, y: &mut [f32; QK_MXFP4]) {
        let d = e8m0_half(self.e);
        let kv = kvalues();
        for (j, y) in y.iter_mut().enumerate() {
            let q = (self.qs[j % 16] >> (4 * (j / 16))) & 0x0f;
            *y = d * f32::from(kv[usize::from(q)]);
        }
    }

    pub fn quantize(x: &[f32; QK_MXFP4]) -> Self {
        let amax = max_abs(x);
        let e = if amax > 0.0 { cast_u8(floor_log2_f32(amax) - 2.0 + 127.0) } else { 0 };
        let d = e8m0_half(e);
        let values = KVALUES.map(|k| d * f32::from(k));
        let q: [u8; QK_MXFP4] = x.map(|v| {
            let errs = values.map(|dk| (dk - v).abs());
            argmin(&errs) as u8
        });
        Self { e, qs: std::array::from_fn(|j| q[j] | (q[j + 16] << 4)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e8m0_half_values() {
        assert_eq!(e8m0_half(127), 0.5);
        assert_eq!(e8m0_half(128), 1.0);
        assert_eq!(e8m0_half(0), 2f32.powi(-128));
        assert_eq!(e8m0_half(1), 2f32.powi(-127));
        assert_eq!(e8m0_half(2), 2f32.powi(-126));
        assert_eq!(e8m0_half(255), 2f32.powi(127));
    }

    #[test]
    fn hand_worked_block() {
        // amax = 6 → floor(log2 6) = 2 → e = 127 → d = 0.5; 6 = 0.5 * 12 → code 7.
        let mut x = [0f32; QK_MXFP4];
        x[0] = 6.0;
        x[1] = -1.0; // 0.5 * -2 → code 10
        x[16] = 0.75; // between 0.5 (code 1) and 1.0 (code 2), tie → first (code 1)
        x[17] = -0.2; // nearest 0 → code 0 (first zero)
        let b = BlockMxfp4::quantize(&x);
        assert_eq!(b.e, 127);
        assert_eq!(b.qs[0], 7 | (1 << 4));
        assert_eq!(b.qs[1], 10);
        let mut y = [0f32; QK_MXFP4];
        b.dequantize(&mut y);
        assert_eq!((y[0], y[1], y[16], y[17]), (6.0, -1.0, 0.5, 0.0));
        assert_eq!(BlockMxfp4::from_bytes(&b.to_bytes()), b);
    }

    #[test]
    fn zero_and_nan_blocks() {
        let b = BlockMxfp4::quantize(&[0.0; QK_MXFP4]);
        assert_eq!((b.e, b.qs), (0, [0; 16]));
        let mut x = [1.0f32; QK_MXFP4];
        x[5] = f32::NAN;
        let b = BlockMxfp4::quantize(&x);
        assert_eq!(b.e, 0, "NaN amax: d > 0 is false");
    }

    #[test]
    fn log2_rounds_in_f32_first() {
        // Just below 8: log2 rounds to 3.0 in f32, so the exponent is 3, not 2.
        let x = f32::from_bits(8f32.to_bits() - 1);
        assert_eq!(floor_log2_f32(x), 3.0);
        // Just below 1: log2 ≈ -8.6e-8 stays negative.
        let x = f32::from_bits(1f32.to_bits() - 1);
        assert_eq!(floor_log2_f32(x), -1.0);
    }
}
