//! The 32-element "legacy" formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (dequantize and quantize) and
//! IQ4_NL (dequantize).
//!
//! Quantization follows gguf-py's float32 arithmetic step by step (which is ggml's reference
//! `quantize_row_*_ref`): the scale comes from the block's largest magnitude (signed, for the
//! symmetric types) or its min/max, its inverse is 0 when the scale is 0 (an all-zero block
//! quantizes to the middle code with a zero scale), codes are truncations of `x * id + offset`
//! clipped to the code range (Q8_0: round half away from zero).

use std::mem::{offset_of, size_of};

use half::f16;

use super::blocks::{bytes, i8s, put, u16_at};
use super::float::{f16_to_f32, f32_to_f16};
use super::numpy_ops::{argmax_abs, cast_u8, inv_or_zero, max, max_abs, min, roundf};

/// Elements per block of every type in this file.
pub const QK: usize = 32;

/// Q4_0: `w = d * (q - 8)`, q in 0..16. Nibble `j` of the low halves holds element `j`, the high
/// halves element `j + 16`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ4_0>() == 18);

/// Q4_1: `w = d * q + m`, q in 0..16 (nibbles as Q4_0).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ4_1>() == 20);

/// Q5_0: `w = d * (q - 16)`, q in 0..32: low 4 bits as Q4_0's nibbles, bit 4 of element `j` is
/// bit `j` of the little-endian u32 `qh`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ5_0 {
    pub d: f16,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ5_0>() == 22);

/// Q5_1: `w = d * q + m`, q in 0..32 (bits as Q5_0).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ5_1 {
    pub d: f16,
    pub m: f16,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ5_1>() == 24);

/// Q8_0: `w = q * d`, q in -128..128.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK],
}
const _: () = assert!(size_of::<BlockQ8_0>() == 34);

/// IQ4_NL: `w = d * IQ4NL_VALUES[q]`, 4-bit indices packed as Q4_0's nibbles.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockIq4Nl {
    pub d: f16,
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockIq4Nl>() == 18);

/// The non-linear 4-bit grid of IQ4_NL (and IQ4_XS).
pub const IQ4NL_VALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

pub(super) const Q4_0_BYTES: usize = size_of::<BlockQ4_0>();
pub(super) const Q4_1_BYTES: usize = size_of::<BlockQ4_1>();
pub(super) const Q5_0_BYTES: usize = size_of::<BlockQ5_0>();
pub(super) const Q5_1_BYTES: usize = size_of::<BlockQ5_1>();
pub(super) const Q8_0_BYTES: usize = size_of::<BlockQ8_0>();
pub(super) const IQ4_NL_BYTES: usize = size_of::<BlockIq4Nl>();

/// Element `j` of 32 packed as two nibble halves (low: 0..16, high: 16..32).
#[inline]
fn nibble(qs: &[u8; QK / 2], j: usize) -> u8 {
    (qs[j % 16] >> (4 * (j / 16))) & 0x0f
}

/// Pack 32 codes (< 16 after masking) into nibble halves.
#[inline]
fn pack_nibbles(q: &[u8; QK]) -> [u8; QK / 2] {
    std::array::from_fn(|j| (q[j] & 0x0f) | (q[j + 16] << 4))
}

/// Bit 4 of each of 32 codes, element `j` at bit `j`.
#[inline]
fn pack_high_bits(q: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= u32::from((v >> 4) & 1) << j;
    }
    qh.to_le_bytes()
}

impl BlockQ4_0 {
    pub fn from_bytes(b: &[u8; Q4_0_BYTES]) -> Self {
        Self { d: f16::from_bits(u16_at(b, offset_of!(Self, d))), qs: bytes(b, offset_of!(Self, qs)) }
    }

    pub fn to_bytes(&self) -> [u8; Q4_0_BYTES] {
        let mut out = [0u8; Q4_0_BYTES];
        put(&mut out, offset_of!(Self, d), &self.d.to_bits().to_le_bytes());
        put(&mut out, offset_of!(Self, qs), &self.qs);
        out
    }

    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = f16_to_f32(self.d.to_bits());
        for (j, y) in y.iter_mut().enumerate() {
            *y = d * f32::from(nibble(&self.qs, j) as i8 - 8);
        }
    }

    pub fn quantize(x: &[f32; QK]) -> Self {
        let max = x[argmax_abs(x)];
        let d = max / -8.0;
        let id = inv_or_zero(d);
        let q: [u8; QK] = std::array::from_fn(|j| cast_u8((x[j] * id + 8.5).trunc()).min(15));
        Self { d: f16::from_bits(f32_to_f16(d)), qs: pack_nibbles(&q) }
    }
}

impl BlockQ4_1 {
    pub fn from_bytes(b: &[u8; Q4_1_BYTES]) -> Self {
        Self {
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
            m: f16::from_bits(u16_at(b, offset_of!(Self, m))),
            qs: bytes(b, offset_of!(Self, qs)),
        }
    }

    pub fn to_bytes(&self) -> [u8; Q4_1_BYTES] {
        let mut out = [0u8; Q4_1_BYTES];
        put(&mut out, offset_of!(Self, d), &self.d.to_bits().to_le_bytes());
        put(&mut out, offset_of!(Self, m), &self.m.to_bits().to_le_bytes());
        put(&mut out, offset_of!(Self, qs), &self.qs);
        out
    }

    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = f16_to_f32(self.d.to_bits());
        let m = f16_to_f32(self.m.to_bits());
        for (j, y) in y.iter_mut().enumerate() {
            *y = d * f32::from(nibble(&self.qs, j)) + m;
        }
    }

    pub fn quantize(x: &[f32; QK]) -> Self {
        let (max, min) = (max(x), min(x));
        let d = (max - min) / 15.0;
        let id = inv_or_zero(d);
        let q: [u8; QK] = std::array::from_fn(|j| cast_u8(((x[j] - min) * id + 0.5).trunc()).min(15));
        Self { d: f16::from_bits(f32_to_f16(d)), m: f16::from_bits(f32_to_f16(min)), qs: pack_nibbles(&q) }
    }
}

impl BlockQ5_0 {
    pub fn from_bytes(b: &[u8; Q5_0_BYTES]) -> Self {
        Self {
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
            qh: bytes(b, offset_of!(Self, qh)),
            qs: bytes(b, offset_of!(Self, qs)),
        }
    }

    pub fn to_bytes(&self) -> [u8; Q5_0_BYTES] {
        let mut out = [0u8; Q5_0_BYTES];
        put(&mut out, offset_of!(Self, d), &self.d.to_bits().to_le_bytes());
        put(&mut out, offset_of!(Self, qh), &self.qh);
        put(&mut out, offset_of!(Self, qs), &self.qs);
        out
    }

    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = f16_to_f32(self.d.to_bits());
        let qh = u32::from_le_bytes(self.qh);
        for (j, y) in y.iter_mut().enumerate() {
            let q = nibble(&self.qs, j) | ((((qh >> j) & 1) as u8) << 4);
            *y = d * f32::from(q as i8 - 16);
        }
    }

    pub fn quantize(x: &[f32; QK]) -> Self {
        let max = x[argmax_abs(x)];
        let d = max / -16.0;
        let id = inv_or_zero(d);
        let q: [u8; QK] = std::array::from_fn(|j| cast_u8((x[j] * id + 16.5).trunc()).min(31));
        Self { d: f16::from_bits(f32_to_f16(d)), qh: pack_high_bits(&q), qs: pack_nibbles(&q) }
    }
}

impl BlockQ5_1 {
    pub fn from_bytes(b: &[u8; Q5_1_BYTES]) -> Self {
        Self {
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
            m: f16::from_bits(u16_at(b, offset_of!(Self, m))),
            qh: bytes(b, offset_of!(Self, qh)),
            qs: bytes(b, offset_of!(Self, qs)),
        }
    }

    pub fn to_bytes(&self) -> [u8; Q5_1_BYTES] {
        let mut out = [0u8; Q5_1_BYTES];
        put(&mut out, offset_of!(Self, d), &self.d.to_bits().to_le_bytes());
        put(&mut out, offset_of!(Self, m), &self.m.to_bits().to_le_bytes());
        put(&mut out, offset_of!(Self, qh), &self.qh);
        put(&mut out, offset_of!(Self, qs), &self.qs);
        out
    }

    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = f16_to_f32(self.d.to_bits());
        let m = f16_to_f32(self.m.to_bits());
        let qh = u32::from_le_bytes(self.qh);
        for (j, y) in y.iter_mut().enumerate() {
            let q = nibble(&self.qs, j) | ((((qh >> j) & 1) as u8) << 4);
            *y = d * f32::from(q) + m;
        }
    }

    pub fn quantize(x: &[f32; QK]) -> Self {
        let (max, min) = (max(x), min(x));
        let d = (max - min) / 31.0;
        let id = inv_or_zero(d);
        let q: [u8; QK] = std::array::from_fn(|j| cast_u8(((x[j] - min) * id + 0.5).trunc()).min(31));
        Self {
            d: f16::from_bits(f32_to_f16(d)),
            m: f16::from_bits(f32_to_f16(min)),
            qh: pack_high_bits(&q),
            qs: pack_nibbles(&q),
        }
    }
}

impl BlockQ8_0 {
    pub fn from_bytes(b: &[u8; Q8_0_BYTES]) -> Self {
        Self { d: f16::from_bits(u16_at(b, offset_of!(Self, d))), qs: i8s(b, offset_of!(Self, qs)) }
    }

    pub fn to_bytes(&self) -> [u8; Q8_0_BYTES] {
        let mut out = [0u8; Q8_0_BYTES];
        put(&mut out, offset_of!(Self, d), &self.d.to_bits().to_le_bytes());
        put(&mut out, offset_of!(Self, qs), &self.qs.map(|v| v as u8));
        out
    }

    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = f16_to_f32(self.d.to_bits());
        for (y, &q) in y.iter_mut().zip(&self.qs) {
            *y = f32::from(q) * d;
        }
    }

    pub fn quantize(x: &[f32; QK]) -> Self {
        let d = max_abs(x) / 127.0;
        let id = inv_or_zero(d);
        Self { d: f16::from_bits(f32_to_f16(d)), qs: x.map(|v| cast_u8(roundf(v * id)) as i8) }
    }
}

impl BlockIq4Nl {
    pub fn from_bytes(b: &[u8; IQ4_NL_BYTES]) -> Self {
        Self { d: f16::from_bits(u16_at(b, offset_of!(Self, d))), qs: bytes(b, offset_of!(Self, qs)) }
    }

    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = f16_to_f32(self.d.to_bits());
        for (j, y) in y.iter_mut().enumerate() {
            *y = d * f32::from(IQ4NL_VALUES[usize::from(nibble(&self.qs, j))]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(scale: f32) -> [f32; QK] {
        std::array::from_fn(|j| (j as f32 - 15.5) * scale)
    }

    #[test]
    fn q4_0_hand_worked_block() {
        // d = 0.5 (0x3800); element j has code j % 16 → (j % 16 - 8) * 0.5.
        let mut b = [0u8; Q4_0_BYTES];
        b[0..2].copy_from_slice(&0x3800u16.to_le_bytes());
        for j in 0..16 {
            b[2 + j] = (j as u8) | ((j as u8) << 4);
        }
        let mut y = [0f32; QK];
        BlockQ4_0::from_bytes(&b).dequantize(&mut y);
        for (j, v) in y.iter().enumerate() {
            assert_eq!(*v, ((j % 16) as f32 - 8.0) * 0.5);
        }
        assert_eq!(BlockQ4_0::from_bytes(&b).to_bytes(), b);
    }

    #[test]
    fn q4_0_quantize_max_maps_to_minus_8() {
        let mut x = [0f32; QK];
        x[3] = 4.0;
        x[7] = -2.0;
        let blk = BlockQ4_0::quantize(&x);
        assert_eq!(f16_to_f32(blk.d.to_bits()), -0.5);
        assert_eq!(nibble(&blk.qs, 3), 0); // 4 / -0.5 = -8 → code 0
        assert_eq!(nibble(&blk.qs, 7), 12); // -2 / -0.5 = 4 → code 12
        assert_eq!(nibble(&blk.qs, 0), 8);
    }

    #[test]
    fn zero_blocks_quantize_with_zero_scale() {
        let x = [0f32; QK];
        let b = BlockQ4_0::quantize(&x);
        assert_eq!(b.d.to_bits(), 0x8000, "0 / -8 = -0");
        assert_eq!(b.qs, [0x88; 16]);
        assert_eq!(BlockQ8_0::quantize(&x).qs, [0; QK]);
        let b = BlockQ5_1::quantize(&x);
        assert_eq!((b.d.to_bits(), b.m.to_bits(), b.qh, b.qs), (0, 0, [0; 4], [0; 16]));
    }

    #[test]
    fn q8_0_rounds_half_away() {
        let mut x = [0f32; QK];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        x[3] = -127.0;
        let b = BlockQ8_0::quantize(&x);
        assert_eq!(f16_to_f32(b.d.to_bits()), 1.0);
        assert_eq!(&b.qs[..4], &[127, 3, -3, -127]);
    }

    #[test]
    fn round_trips_are_close() {
        let x = ramp(0.1);
        let mut y = [0f32; QK];
        let tol = |bits: u32| 1.6 * 2.0 / (1u32 << bits) as f32 + 1e-3;
        BlockQ4_0::quantize(&x).dequantize(&mut y);
        x.iter().zip(&y).for_each(|(a, b)| assert!((a - b).abs() <= tol(4), "q4_0 {a} {b}"));
        BlockQ4_1::quantize(&x).dequantize(&mut y);
        x.iter().zip(&y).for_each(|(a, b)| assert!((a - b).abs() <= tol(4), "q4_1 {a} {b}"));
        BlockQ5_0::quantize(&x).dequantize(&mut y);
        x.iter().zip(&y).for_each(|(a, b)| assert!((a - b).abs() <= tol(5), "q5_0 {a} {b}"));
        BlockQ5_1::quantize(&x).dequantize(&mut y);
        x.iter().zip(&y).for_each(|(a, b)| assert!((a - b).abs() <= tol(5), "q5_1 {a} {b}"));
        BlockQ8_0::quantize(&x).dequantize(&mut y);
        x.iter().zip(&y).for_each(|(a, b)| assert!((a - b).abs() <= tol(8), "q8_0 {a} {b}"));
    }

    #[test]
    fn q5_high_bits_round_trip_through_bytes() {
        let x = ramp(-0.37);
        let b = BlockQ5_0::quantize(&x);
        assert_eq!(BlockQ5_0::from_bytes(&b.to_bytes()), b);
        let b = BlockQ5_1::quantize(&x);
        assert_eq!(BlockQ5_1::from_bytes(&b.to_bytes()), b);
        // Codes are monotone in x for Q5_1 (codes 0 and 31 at the ends).
        let qh = u32::from_le_bytes(b.qh);
        let code = |j: usize| nibble(&b.qs, j) | (((qh >> j) & 1) as u8) << 4;
        assert_eq!(code(0), 31);
        assert_eq!(code(31), 0);
    }

    #[test]
    fn iq4_nl_uses_the_grid() {
        let mut b = [0u8; IQ4_NL_BYTES];
        b[0..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        b[2] = 0xf0;
        let mut y = [0f32; QK];
        BlockIq4Nl::from_bytes(&b).dequantize(&mut y);
        assert_eq!((y[0], y[16], y[1]), (-127.0, 113.0, -127.0));
    }
}
