//! Plain float formats: F32, F16, BF16 — element conversions with numpy's exact semantics.
//!
//! numpy converts between f16 and f32 in software and keeps NaN payloads, the signalling bit
//! included; the `half` crate (and the F16C instructions it may use) quiet NaNs instead. So NaNs
//! take a path of their own here and every other value goes through `half`.
//!
//! BF16 rounding follows gguf-py's `BF16.quantize_blocks` (the rule of ggml's
//! `ggml_compute_fp32_to_bf16`): NaNs are made quiet keeping the top of their payload, everything
//! else is rounded to nearest, ties to even, on the bit pattern.

use std::sync::OnceLock;

/// IEEE binary16 bits → f32, as numpy's `astype(np.float32)` does it (NaN payloads kept).
#[inline]
pub fn f16_to_f32(bits: u16) -> f32 {
    if bits & 0x7c00 == 0x7c00 && bits & 0x03ff != 0 {
        let sign = u32::from(bits & 0x8000) << 16;
        let payload = u32::from(bits & 0x03ff) << 13;
        f32::from_bits(sign | 0x7f80_0000 | payload)
    } else {
        half::f16::from_bits(bits).to_f32()
    }
}

/// f32 → IEEE binary16 bits, as numpy's `astype(np.float16)` does it: round to nearest even;
/// a NaN keeps the top 10 bits of its payload and stays a NaN if those are all zero.
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    if x.is_nan() {
        let b = x.to_bits();
        let sign = ((b >> 16) & 0x8000) as u16;
        let mut h = 0x7c00 | ((b & 0x007f_ffff) >> 13) as u16;
        if h == 0x7c00 {
            h += 1;
        }
        sign | h
    } else {
        half::f16::from_f32(x).to_bits()
    }
}

/// BF16 bits → f32 (exact: the bits become the top half of the f32).
#[inline]
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// f32 → BF16 bits (gguf-py / ggml rounding, see the module comment).
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    let mut n = x.to_bits();
    if n & 0x7fff_ffff > 0x7f80_0000 {
        n = (n & 0xffff_0000) | 0x0040_0000;
    }
    // Widened so that the carry out of the top cannot wrap (it never does for non-NaN inputs).
    let rounded = (u64::from(n) + 0x7fff + u64::from((n >> 16) & 1)) >> 16;
    rounded as u16
}

/// All 65,536 f16 values as f32 (256 KiB, built on first use): the F16 dequantization table.
fn f16_table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| (0..=u16::MAX).map(f16_to_f32).collect())
}

pub(super) fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (c, y) in src.chunks_exact(4).zip(dst.iter_mut()) {
        *y = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

pub(super) fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    let table = f16_table();
    for (c, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = table.get(usize::from(u16::from_le_bytes([c[0], c[1]]))).copied().unwrap_or(f32::NAN);
    }
}

pub(super) fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (c, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

pub(super) fn quantize_f32(src: &[f32]) -> Vec<u8> {
    src.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn quantize_f16(src: &[f32]) -> Vec<u8> {
    src.iter().flat_map(|&x| f32_to_f16(x).to_le_bytes()).collect()
}

pub(super) fn quantize_bf16(src: &[f32]) -> Vec<u8> {
    src.iter().flat_map(|&x| f32_to_bf16(x).to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_nan_payloads_are_kept() {
        // Signalling NaN stays signalling, as numpy does (half would set the quiet bit).
        assert_eq!(f16_to_f32(0x7c01).to_bits(), 0x7f80_2000);
        assert_eq!(f16_to_f32(0xfd55).to_bits(), 0xffaa_a000);
        assert_eq!(f16_to_f32(0x7e00).to_bits(), 0x7fc0_0000);
        assert_eq!(f32_to_f16(f32::from_bits(0x7f80_0001)), 0x7c01);
        assert_eq!(f32_to_f16(f32::from_bits(0xff81_2345)), 0xfc09);
        assert_eq!(f32_to_f16(f32::from_bits(0x7fa0_0000)), 0x7d00);
        assert_eq!(f32_to_f16(f32::from_bits(0x7fc0_0000)), 0x7e00);
    }

    #[test]
    fn f16_round_trip_every_value() {
        for bits in 0..=u16::MAX {
            assert_eq!(f32_to_f16(f16_to_f32(bits)), bits, "{bits:#06x}");
        }
    }

    #[test]
    fn f16_rounding() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "ties to even overflow to inf");
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00, "tie to even (down)");
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3c02, "tie to even (up)");
        assert_eq!(f32_to_f16(2.0f32.powi(-25)), 0x0000, "half the smallest subnormal: tie to 0");
        assert_eq!(f32_to_f16(1.5 * 2.0f32.powi(-24)), 0x0002);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
    }

    #[test]
    fn bf16_rounding() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80, "tie to even (down)");
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82, "tie to even (up)");
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(f32_to_bf16(f32::MAX), 0x7f80, "rounds up to inf");
        assert_eq!(f32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0, "NaN made quiet");
        assert_eq!(f32_to_bf16(f32::from_bits(0xffa5_ffff)), 0xffe5, "payload top kept");
        assert_eq!(bf16_to_f32(0x7f81).to_bits(), 0x7f81_0000);
    }
}
