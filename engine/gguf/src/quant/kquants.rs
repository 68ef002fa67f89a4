//! The 256-element k-quant super-blocks Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (dequantize only: gguf-py
//! has no quantizer for them).
//!
//! Each super-block holds one or two f16 super-scales and 6- or 8-bit sub-block scales. The
//! arithmetic is gguf-py's, in float32: sub-block scale = `d * sc` (and min = `dmin * m`), then
//! `scale * q - min` — two roundings, no fused multiply-add.

use std::mem::{offset_of, size_of};

use half::f16;

use super::blocks::{bytes, i8s, u16_at};
use super::float::f16_to_f32;

/// Elements per super-block.
pub const QK_K: usize = 256;
/// Bytes of the packed 6-bit scales and mins of Q4_K / Q5_K.
pub const K_SCALE_SIZE: usize = 12;

/// Q2_K: 16 sub-blocks of 16; `w = d * (scales[s] & 15) * q - dmin * (scales[s] >> 4)`, q 2-bit.
/// Element `j`: half `c = j / 128`, shift `2 * (j % 128 / 32)`, byte `qs[32 c + j % 32]`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ2K {
    pub scales: [u8; QK_K / 16],
    pub qs: [u8; QK_K / 4],
    pub d: f16,
    pub dmin: f16,
}
const _: () = assert!(size_of::<BlockQ2K>() == 84);

/// Q3_K: 16 sub-blocks of 16 with signed 6-bit scales (`sc - 32`); `w = d * sc * q`,
/// q = low 2 bits (as Q2_K) minus 4 where the `hmask` bit is clear. The `hmask` bit of element
/// `j` is bit `j / 32` of `hmask[j % 32]`. Scale `s`: low nibble of `scales[s % 8]` (shifted by
/// `4 * (s / 8)`), high 2 bits from `scales[8 + s % 4]` (shifted by `2 * (s / 4)`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ3K {
    pub hmask: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 4],
    pub scales: [u8; 12],
    pub d: f16,
}
const _: () = assert!(size_of::<BlockQ3K>() == 110);

/// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins (packed, see [`scale_min_k4`]);
/// `w = d * sc * q - dmin * m`, q 4-bit: sub-block `s` uses the nibbles `4 * (s % 2)` of
/// `qs[32 * (s / 2)..][..32]`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ4K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(size_of::<BlockQ4K>() == 144);

/// Q5_K: Q4_K plus a fifth bit per element: bit `s` of `qh[j % 32]` for sub-block `s`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ5K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(size_of::<BlockQ5K>() == 176);

/// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales; `w = d * scales[s] * (q - 32)`, q 6-bit.
/// Element `j` (`c = j / 128`, `r = j % 128`): low nibble `4 * (r / 64)` of `ql[64 c + r % 64]`,
/// high 2 bits `2 * (r / 32)` of `qh[32 c + r % 32]`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: f16,
}
const _: () = assert!(size_of::<BlockQ6K>() == 210);

pub(super) const Q2_K_BYTES: usize = size_of::<BlockQ2K>();
pub(super) const Q3_K_BYTES: usize = size_of::<BlockQ3K>();
pub(super) const Q4_K_BYTES: usize = size_of::<BlockQ4K>();
pub(super) const Q5_K_BYTES: usize = size_of::<BlockQ5K>();
pub(super) const Q6_K_BYTES: usize = size_of::<BlockQ6K>();

/// The 2-bit field of element `j` in a 64-byte array of 2-bit codes (Q2_K, Q3_K, Q6_K high bits):
/// two halves of 128 elements, each four shifted passes over 32 bytes.
#[inline]
fn crumb(qs: &[u8], j: usize) -> u8 {
    let (c, r) = (j / 128, j % 128);
    (qs[32 * c + r % 32] >> (2 * (r / 32))) & 3
}

/// Unpack the 8 six-bit scales and 8 six-bit mins of Q4_K / Q5_K. Bytes 0..4 hold scales 0..4
/// (low 6 bits) and the top 2 bits of scales 4..8; bytes 4..8 the same for mins; bytes 8..12 the
/// low nibbles of scales 4..8 (low half) and of mins 4..8 (high half).
pub fn scale_min_k4(s: &[u8; K_SCALE_SIZE]) -> ([u8; 8], [u8; 8]) {
    let sc = std::array::from_fn(|i| if i < 4 { s[i] & 0x3f } else { (s[i + 4] & 0x0f) | ((s[i - 4] >> 2) & 0x30) });
    let m = std::array::from_fn(|i| if i < 4 { s[i + 4] & 0x3f } else { (s[i + 4] >> 4) | ((s[i] >> 2) & 0x30) });
    (sc, m)
}

impl BlockQ2K {
    pub fn from_bytes(b: &[u8; Q2_K_BYTES]) -> Self {
        Self {
            scales: bytes(b, offset_of!(Self, scales)),
            qs: bytes(b, offset_of!(Self, qs)),
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
            dmin: f16::from_bits(u16_at(b, offset_of!(Self, dmin))),
        }
    }

    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let d = f16_to_f32(self.d.to_bits());
        let dmin = f16_to_f32(self.dmin.to_bits());
        for (s, ys) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(self.scales[s] & 0x0f);
            let ml = dmin * f32::from(self.scales[s] >> 4);
            for (i, y) in ys.iter_mut().enumerate() {
                *y = dl * f32::from(crumb(&self.qs, 16 * s + i)) - ml;
            }
        }
    }
}

impl BlockQ3K {
    pub fn from_bytes(b: &[u8; Q3_K_BYTES]) -> Self {
        Self {
            hmask: bytes(b, offset_of!(Self, hmask)),
            qs: bytes(b, offset_of!(Self, qs)),
            scales: bytes(b, offset_of!(Self, scales)),
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
        }
    }

    /// The 16 signed sub-block scales.
    pub fn scales(&self) -> [i8; 16] {
        let s = &self.scales;
        std::array::from_fn(|i| {
            let lo = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
            let hi = (s[8 + i % 4] >> (2 * (i / 4))) & 0x03;
            (lo | (hi << 4)) as i8 - 32
        })
    }

    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let d = f16_to_f32(self.d.to_bits());
        let scales = self.scales();
        for (s, ys) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(scales[s]);
            for (i, y) in ys.iter_mut().enumerate() {
                let j = 16 * s + i;
                let high_clear = ((self.hmask[j % 32] >> (j / 32)) & 1) ^ 1;
                let q = crumb(&self.qs, j) as i8 - ((high_clear << 2) as i8);
                *y = dl * f32::from(q);
            }
        }
    }
}

/// Sub-block scales and mins of Q4_K / Q5_K as float32 (`d * sc`, `dmin * m`).
#[inline]
fn k4_scales(d: f16, dmin: f16, scales: &[u8; K_SCALE_SIZE]) -> ([f32; 8], [f32; 8]) {
    let (sc, m) = scale_min_k4(scales);
    let (d, dmin) = (f16_to_f32(d.to_bits()), f16_to_f32(dmin.to_bits()));
    (sc.map(|v| d * f32::from(v)), m.map(|v| dmin * f32::from(v)))
}

impl BlockQ4K {
    pub fn from_bytes(b: &[u8; Q4_K_BYTES]) -> Self {
        Self {
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
            dmin: f16::from_bits(u16_at(b, offset_of!(Self, dmin))),
            scales: bytes(b, offset_of!(Self, scales)),
            qs: bytes(b, offset_of!(Self, qs)),
        }
    }

    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let (dl, ml) = k4_scales(self.d, self.dmin, &self.scales);
        for (s, ys) in y.chunks_exact_mut(32).enumerate() {
            let qs = &self.qs[32 * (s / 2)..32 * (s / 2) + 32];
            let shift = 4 * (s % 2);
            for (y, &q) in ys.iter_mut().zip(qs) {
                *y = dl[s] * f32::from((q >> shift) & 0x0f) - ml[s];
            }
        }
    }
}

impl BlockQ5K {
    pub fn from_bytes(b: &[u8; Q5_K_BYTES]) -> Self {
        Self {
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
            dmin: f16::from_bits(u16_at(b, offset_of!(Self, dmin))),
            scales: bytes(b, offset_of!(Self, scales)),
            qh: bytes(b, offset_of!(Self, qh)),
            qs: bytes(b, offset_of!(Self, qs)),
        }
    }

    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let (dl, ml) = k4_scales(self.d, self.dmin, &self.scales);
        for (s, ys) in y.chunks_exact_mut(32).enumerate() {
            let qs = &self.qs[32 * (s / 2)..32 * (s / 2) + 32];
            let shift = 4 * (s % 2);
            for ((y, &q), &h) in ys.iter_mut().zip(qs).zip(&self.qh) {
                let q = ((q >> shift) & 0x0f) | (((h >> s) & 1) << 4);
                *y = dl[s] * f32::from(q) - ml[s];
            }
        }
    }
}

impl BlockQ6K {
    pub fn from_bytes(b: &[u8; Q6_K_BYTES]) -> Self {
        Self {
            ql: bytes(b, offset_of!(Self, ql)),
            qh: bytes(b, offset_of!(Self, qh)),
            scales: i8s(b, offset_of!(Self, scales)),
            d: f16::from_bits(u16_at(b, offset_of!(Self, d))),
        }
    }

    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let d = f16_to_f32(self.d.to_bits());
        for (s, ys) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(self.scales[s]);
            for (i, y) in ys.iter_mut().enumerate() {
                let j = 16 * s + i;
                let (c, r) = (j / 128, j % 128);
                let lo = (self.ql[64 * c + r % 64] >> (4 * (r / 64))) & 0x0f;
                let q = (lo | (crumb(&self.qh, j) << 4)) as i8 - 32;
                *y = dl * f32::from(q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_unpacking() {
        // Scales 0..8 = 1, 2, ..., 8 + 56 (top bits set for the last four); mins = 63 - scale.
        let sc: [u8; 8] = [1, 2, 3, 4, 61, 62, 63, 60];
        let m: [u8; 8] = sc.map(|v| 63 - v);
        let mut s = [0u8; K_SCALE_SIZE];
        for i in 0..4 {
            s[i] = sc[i] | ((sc[i + 4] >> 4) << 6);
            s[i + 4] = m[i] | ((m[i + 4] >> 4) << 6);
            s[i + 8] = (sc[i + 4] & 0x0f) | ((m[i + 4] & 0x0f) << 4);
        }
        assert_eq!(scale_min_k4(&s), (sc, m));
    }

    #[test]
    fn q4_k_hand_worked_block() {
        // d = 1, dmin = 0.5, every scale 2 and min 3, all codes 5 → 1*2*5 - 0.5*3 = 8.5.
        let mut b = [0u8; Q4_K_BYTES];
        b[0..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        b[2..4].copy_from_slice(&0x3800u16.to_le_bytes());
        b[4..8].fill(2);
        b[8..12].fill(3);
        b[12..16].fill(0x32);
        b[16..].fill(0x55);
        let mut y = [0f32; QK_K];
        BlockQ4K::from_bytes(&b).dequantize(&mut y);
        assert!(y.iter().all(|&v| v == 8.5), "{y:?}");
    }

    #[test]
    fn q6_k_hand_worked_block() {
        // d = 0.25, scale s = s + 1, codes 0 everywhere except element 200 (q = 63): (q - 32) * ...
        let mut b = [0u8; Q6_K_BYTES];
        for s in 0..16 {
            b[192 + s] = (s + 1) as u8;
        }
        b[208..210].copy_from_slice(&0x3400u16.to_le_bytes());
        // element 200: c = 1, r = 72 → ql[64 + 8] high nibble, qh[32 + 8] bits 4..6
        b[64 + 8] = 0xf0;
        b[128 + 32 + 8] = 0x3 << 4;
        let mut y = [0f32; QK_K];
        BlockQ6K::from_bytes(&b).dequantize(&mut y);
        for (j, v) in y.iter().enumerate() {
            let scale = (j / 16 + 1) as f32 * 0.25;
            let q = if j == 200 { 31.0 } else { -32.0 };
            assert_eq!(*v, scale * q, "{j}");
        }
    }

    #[test]
    fn q3_k_high_bit_is_inverted() {
        // d = 1, all scales 33 (→ +1), codes 3 with hmask set → 3; hmask clear → -1.
        let mut b = [0u8; Q3_K_BYTES];
        b[0..32].fill(0xff);
        b[0] = 0xfe; // element 0 (bit 0 of hmask[0]) has its high bit clear
        b[32..96].fill(0xff);
        b[96..104].fill(0x11);
        b[104..108].fill(0b1010_1010);
        b[108..110].copy_from_slice(&0x3c00u16.to_le_bytes());
        let blk = BlockQ3K::from_bytes(&b);
        assert_eq!(blk.scales(), [1; 16]);
        let mut y = [0f32; QK_K];
        blk.dequantize(&mut y);
        assert_eq!(y[0], -1.0);
        assert!(y[1..].iter().all(|&v| v == 3.0));
    }

    #[test]
    fn q2_k_and_q5_k_hand_worked() {
        let mut b = [0u8; Q2_K_BYTES];
        b[..16].fill(0x21); // scale 1, min 2
        b[16..80].fill(0b1110_0100); // codes 0,1,2,3 across the four shifts
        b[80..82].copy_from_slice(&0x4000u16.to_le_bytes()); // d = 2
        b[82..84].copy_from_slice(&0x3800u16.to_le_bytes()); // dmin = 0.5
        let mut y = [0f32; QK_K];
        BlockQ2K::from_bytes(&b).dequantize(&mut y);
        for (j, v) in y.iter().enumerate() {
            assert_eq!(*v, 2.0 * ((j % 128) / 32) as f32 - 1.0, "{j}");
        }

        let mut b = [0u8; Q5_K_BYTES];
        b[0..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        b[4..8].fill(1); // scales 0..4 = 1, mins 0
        b[12..16].fill(0x01); // scales 4..8 = 1
        b[16..48].fill(0b0000_0100); // fifth bit set for sub-block 2 only
        b[48..].fill(0x21);
        let mut y = [0f32; QK_K];
        BlockQ5K::from_bytes(&b).dequantize(&mut y);
        for (j, v) in y.iter().enumerate() {
            let s = j / 32;
            let q = if s % 2 == 0 { 1.0 } else { 2.0 } + if s == 2 { 16.0 } else { 0.0 };
            assert_eq!(*v, q, "{j}");
        }
    }
}
