//! Quantization formats (ggml block layouts): dequantization of every supported type and
//! quantization of the types gguf-py can produce. Scalar reference implementation, bit-exact with
//! gguf-py 0.19.0 (`gguf.quants`).
//!
//! (Being written: see the quant brief.)

use crate::gguf::GgmlType;

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("{op} of {ty} is not supported")]
    Unsupported { ty: GgmlType, op: &'static str },
    #[error("{ty}: {what}")]
    Length { ty: GgmlType, what: String },
}

/// Dequantize `dst.len()` elements of type `ty` from `src` (exactly `ty.bytes_for(dst.len())` bytes).
pub fn dequantize(ty: GgmlType, _src: &[u8], _dst: &mut [f32]) -> Result<(), QuantError> {
    Err(QuantError::Unsupported { ty, op: "dequantize" })
}

/// Quantize `src` (a whole number of blocks) to type `ty`.
pub fn quantize(ty: GgmlType, _src: &[f32]) -> Result<Vec<u8>, QuantError> {
    Err(QuantError::Unsupported { ty, op: "quantize" })
}
