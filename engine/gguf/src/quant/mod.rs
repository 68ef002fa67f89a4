//! Quantization formats (ggml block layouts): dequantization of every supported type and
//! quantization of the types gguf-py can produce. Scalar reference implementation, bit-exact with
//! gguf-py 0.19.0 (`gguf.quants`), itself checked bit-exact against ggml.
//!
//! Invariants:
//! - Blocks are read field by field from little-endian bytes (no alignment assumed, nothing
//!   transmuted); each block struct is `#[repr(C)]` with a compile-time size check and documents
//!   the layout the parser reads through `offset_of!`.
//! - The float32 arithmetic follows gguf-py's operation order exactly (no fused multiply-add),
//!   f16 conversions keep NaN payloads as numpy does, and the quantizers use gguf-py's rounding
//!   (`np_roundf`, truncation after an offset) and its zero-scale rule (inverse scale 0).
//! - Nothing panics on input: wrong lengths are [`QuantError::Length`], unsupported types
//!   [`QuantError::Unsupported`].
//!
//! Supported: dequantize F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K,
//! Q6_K, IQ4_NL, MXFP4; quantize F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4.

mod blocks;
mod float;
mod kquants;
mod legacy;
mod mxfp4;
mod numpy_ops;

pub use float::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
pub use kquants::{scale_min_k4, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, K_SCALE_SIZE, QK_K};
pub use legacy::{BlockIq4Nl, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, IQ4NL_VALUES};
pub use mxfp4::{e8m0_half, kvalues as mxfp4_kvalues, BlockMxfp4, KVALUES as MXFP4_KVALUES};

use crate::gguf::GgmlType;
use blocks::{dequantize_blocks, quantize_blocks};
use kquants::{Q2_K_BYTES, Q3_K_BYTES, Q4_K_BYTES, Q5_K_BYTES, Q6_K_BYTES};
use legacy::{IQ4_NL_BYTES, Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES, QK};
use mxfp4::{MXFP4_BYTES, QK_MXFP4};

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("{op} of {ty} is not supported")]
    Unsupported { ty: GgmlType, op: &'static str },
    #[error("{ty}: {what}")]
    Length { ty: GgmlType, what: String },
}

/// Whether [`dequantize`] handles `ty`.
pub fn can_dequantize(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | IQ4_NL | MXFP4
    )
}

/// Whether [`quantize`] handles `ty`.
pub fn can_quantize(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | MXFP4)
}

/// Dequantize `dst.len()` elements of type `ty` from `src` (exactly `ty.bytes_for(dst.len())` bytes).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    if !can_dequantize(ty) {
        return Err(QuantError::Unsupported { ty, op: "dequantize" });
    }
    let n = dst.len();
    let need = ty.bytes_for(n as u64).ok_or_else(|| QuantError::Length {
        ty,
        what: format!("{n} elements is not a whole number of {}-element blocks", ty.block_size()),
    })?;
    if need != src.len() as u64 {
        return Err(QuantError::Length { ty, what: format!("{n} elements need {need} bytes, got {}", src.len()) });
    }
    use GgmlType as T;
    match ty {
        T::F32 => float::dequantize_f32(src, dst),
        T::F16 => float::dequantize_f16(src, dst),
        T::BF16 => float::dequantize_bf16(src, dst),
        T::Q4_0 => dequantize_blocks::<Q4_0_BYTES, QK>(src, dst, |b, y| BlockQ4_0::from_bytes(b).dequantize(y)),
        T::Q4_1 => dequantize_blocks::<Q4_1_BYTES, QK>(src, dst, |b, y| BlockQ4_1::from_bytes(b).dequantize(y)),
        T::Q5_0 => dequantize_blocks::<Q5_0_BYTES, QK>(src, dst, |b, y| BlockQ5_0::from_bytes(b).dequantize(y)),
        T::Q5_1 => dequantize_blocks::<Q5_1_BYTES, QK>(src, dst, |b, y| BlockQ5_1::from_bytes(b).dequantize(y)),
        T::Q8_0 => dequantize_blocks::<Q8_0_BYTES, QK>(src, dst, |b, y| BlockQ8_0::from_bytes(b).dequantize(y)),
        T::IQ4_NL => dequantize_blocks::<IQ4_NL_BYTES, QK>(src, dst, |b, y| BlockIq4Nl::from_bytes(b).dequantize(y)),
        T::Q2_K => dequantize_blocks::<Q2_K_BYTES, QK_K>(src, dst, |b, y| BlockQ2K::from_bytes(b).dequantize(y)),
        T::Q3_K => dequantize_blocks::<Q3_K_BYTES, QK_K>(src, dst, |b, y| BlockQ3K::from_bytes(b).dequantize(y)),
        T::Q4_K => dequantize_blocks::<Q4_K_BYTES, QK_K>(src, dst, |b, y| BlockQ4K::from_bytes(b).dequantize(y)),
        T::Q5_K => dequantize_blocks::<Q5_K_BYTES, QK_K>(src, dst, |b, y| BlockQ5K::from_bytes(b).dequantize(y)),
        T::Q6_K => dequantize_blocks::<Q6_K_BYTES, QK_K>(src, dst, |b, y| BlockQ6K::from_bytes(b).dequantize(y)),
        T::MXFP4 => {
            dequantize_blocks::<MXFP4_BYTES, QK_MXFP4>(src, dst, |b, y| BlockMxfp4::from_bytes(b).dequantize(y))
        }
        _ => return Err(QuantError::Unsupported { ty, op: "dequantize" }),
    }
    Ok(())
}

/// Quantize `src` (a whole number of blocks) to type `ty`.
pub fn quantize(ty: GgmlType, src: &[f32]) -> Result<Vec<u8>, QuantError> {
    if !can_quantize(ty) {
        return Err(QuantError::Unsupported { ty, op: "quantize" });
    }
    let bs = ty.block_size();
    if !src.len().is_multiple_of(bs) {
        return Err(QuantError::Length {
            ty,
            what: format!("{} elements is not a whole number of {bs}-element blocks", src.len()),
        });
    }
    use GgmlType as T;
    Ok(match ty {
        T::F32 => float::quantize_f32(src),
        T::F16 => float::quantize_f16(src),
        T::BF16 => float::quantize_bf16(src),
        T::Q4_0 => quantize_blocks::<QK, Q4_0_BYTES>(src, |x| BlockQ4_0::quantize(x).to_bytes()),
        T::Q4_1 => quantize_blocks::<QK, Q4_1_BYTES>(src, |x| BlockQ4_1::quantize(x).to_bytes()),
        T::Q5_0 => quantize_blocks::<QK, Q5_0_BYTES>(src, |x| BlockQ5_0::quantize(x).to_bytes()),
        T::Q5_1 => quantize_blocks::<QK, Q5_1_BYTES>(src, |x| BlockQ5_1::quantize(x).to_bytes()),
        T::Q8_0 => quantize_blocks::<QK, Q8_0_BYTES>(src, |x| BlockQ8_0::quantize(x).to_bytes()),
        T::MXFP4 => quantize_blocks::<QK_MXFP4, MXFP4_BYTES>(src, |x| BlockMxfp4::quantize(x).to_bytes()),
        _ => return Err(QuantError::Unsupported { ty, op: "quantize" }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported_dequant() -> impl Iterator<Item = GgmlType> {
        GgmlType::all().filter(|&t| can_dequantize(t))
    }

    #[test]
    fn block_structs_match_the_type_table() {
        use std::mem::size_of;
        let sizes = [
            (GgmlType::Q4_0, size_of::<BlockQ4_0>(), QK),
            (GgmlType::Q4_1, size_of::<BlockQ4_1>(), QK),
            (GgmlType::Q5_0, size_of::<BlockQ5_0>(), QK),
            (GgmlType::Q5_1, size_of::<BlockQ5_1>(), QK),
            (GgmlType::Q8_0, size_of::<BlockQ8_0>(), QK),
            (GgmlType::IQ4_NL, size_of::<BlockIq4Nl>(), QK),
            (GgmlType::Q2_K, size_of::<BlockQ2K>(), QK_K),
            (GgmlType::Q3_K, size_of::<BlockQ3K>(), QK_K),
            (GgmlType::Q4_K, size_of::<BlockQ4K>(), QK_K),
            (GgmlType::Q5_K, size_of::<BlockQ5K>(), QK_K),
            (GgmlType::Q6_K, size_of::<BlockQ6K>(), QK_K),
            (GgmlType::MXFP4, size_of::<BlockMxfp4>(), QK_MXFP4),
        ];
        for (ty, bytes, elems) in sizes {
            assert_eq!((ty.type_size(), ty.block_size()), (bytes, elems), "{ty}");
        }
    }

    #[test]
    fn bad_lengths_are_errors() {
        for ty in supported_dequant() {
            let bs = ty.block_size();
            let ts = ty.type_size();
            let mut dst = vec![0f32; 2 * bs];
            assert!(dequantize(ty, &vec![0u8; 2 * ts], &mut dst).is_ok(), "{ty}");
            let short = dequantize(ty, &vec![0u8; 2 * ts - 1], &mut dst);
            assert!(matches!(short, Err(QuantError::Length { .. })), "{ty}: {short:?}");
            let long = dequantize(ty, &vec![0u8; 3 * ts], &mut dst);
            assert!(matches!(long, Err(QuantError::Length { .. })), "{ty}: {long:?}");
            if bs > 1 {
                let mut ragged = vec![0f32; bs + 1];
                let r = dequantize(ty, &vec![0u8; 2 * ts], &mut ragged);
                assert!(matches!(r, Err(QuantError::Length { .. })), "{ty}: {r:?}");
            }
        }
        for ty in GgmlType::all().filter(|&t| can_quantize(t) && t.block_size() > 1) {
            let r = quantize(ty, &[0.0; 33]);
            assert!(matches!(r, Err(QuantError::Length { .. })), "{ty}: {r:?}");
        }
        assert!(dequantize(GgmlType::Q4_0, &[], &mut []).is_ok());
    }

    #[test]
    fn unsupported_types_are_errors() {
        let mut dst = [0f32; 256];
        let r = dequantize(GgmlType::IQ2_XXS, &[0u8; 66], &mut dst);
        assert!(matches!(r, Err(QuantError::Unsupported { op: "dequantize", .. })), "{r:?}");
        let r = quantize(GgmlType::Q4_K, &[0.0; 256]);
        assert!(matches!(r, Err(QuantError::Unsupported { op: "quantize", .. })), "{r:?}");
    }

    #[test]
    fn quantize_dequantize_round_trip() {
        // A deterministic wavy signal; each type's error must be within its step size.
        let x: Vec<f32> = (0..1024).map(|i| ((i as f32) * 0.37).sin() * (1.0 + (i % 7) as f32)).collect();
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (ty, rel) in [
            (GgmlType::F32, 0.0),
            (GgmlType::F16, 1e-3),
            (GgmlType::BF16, 8e-3),
            (GgmlType::Q4_0, 0.15),
            (GgmlType::Q4_1, 0.15),
            (GgmlType::Q5_0, 0.07),
            (GgmlType::Q5_1, 0.07),
            (GgmlType::Q8_0, 0.01),
            (GgmlType::MXFP4, 0.35),
        ] {
            let q = quantize(ty, &x).unwrap_or_default();
            assert_eq!(Some(q.len() as u64), ty.bytes_for(x.len() as u64), "{ty}");
            let mut y = vec![0f32; x.len()];
            assert!(dequantize(ty, &q, &mut y).is_ok(), "{ty}");
            for (i, (a, b)) in x.iter().zip(&y).enumerate() {
                assert!((a - b).abs() <= rel * amax, "{ty}[{i}]: {a} vs {b}");
            }
            // Re-quantizing the dequantized values is stable for the symmetric types.
            if matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Q8_0) {
                assert_eq!(quantize(ty, &y).unwrap_or_default(), q, "{ty}");
            }
        }
    }

    #[test]
    fn unaligned_input_is_fine() {
        let x: Vec<f32> = (0..256).map(|i| i as f32 - 100.0).collect();
        let q = quantize(GgmlType::Q8_0, &x).unwrap_or_default();
        let mut shifted = vec![0u8; q.len() + 1];
        shifted[1..].copy_from_slice(&q);
        let (mut a, mut b) = (vec![0f32; 256], vec![0f32; 256]);
        assert!(dequantize(GgmlType::Q8_0, &q, &mut a).is_ok());
        assert!(dequantize(GgmlType::Q8_0, &shifted[1..], &mut b).is_ok());
        assert_eq!(a, b);
    }
}
