//! Reading block fields from byte slices and walking whole tensors block by block.
//!
//! Blocks are parsed field by field from little-endian bytes at the offsets of their `#[repr(C)]`
//! structs (`offset_of!`), so the structs document the layout and nothing is ever transmuted:
//! tensor data in a GGUF file has no alignment guarantee.

/// The `N` bytes at `at` (`at + N` must lie inside `b`; callers pass constant offsets of a
/// fixed-size block).
#[inline]
pub(super) fn bytes<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// The little-endian u16 at `at` (an f16 field is kept as its bits).
#[inline]
pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes(b, at))
}

/// `N` signed bytes at `at`.
#[inline]
pub(super) fn i8s<const N: usize>(b: &[u8], at: usize) -> [i8; N] {
    bytes::<N>(b, at).map(|v| v as i8)
}

/// Write `v` at `at` of a block being assembled.
#[inline]
pub(super) fn put(out: &mut [u8], at: usize, v: &[u8]) {
    out[at..at + v.len()].copy_from_slice(v);
}

/// Dequantize a tensor of `TS`-byte blocks of `BS` elements; `src` and `dst` hold the same number
/// of blocks (checked by the caller).
#[inline]
pub(super) fn dequantize_blocks<const TS: usize, const BS: usize>(
    src: &[u8],
    dst: &mut [f32],
    mut f: impl FnMut(&[u8; TS], &mut [f32; BS]),
) {
    for (b, y) in src.chunks_exact(TS).zip(dst.chunks_exact_mut(BS)) {
        if let (Ok(b), Ok(y)) = (<&[u8; TS]>::try_from(b), <&mut [f32; BS]>::try_from(y)) {
            f(b, y);
        }
    }
}

/// Quantize a whole number of `BS`-element blocks (checked by the caller) to `TS` bytes each.
pub(super) fn quantize_blocks<const BS: usize, const TS: usize>(
    src: &[f32],
    mut f: impl FnMut(&[f32; BS]) -> [u8; TS],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / BS * TS);
    for x in src.chunks_exact(BS) {
        if let Ok(x) = <&[f32; BS]>::try_from(x) {
            out.extend_from_slice(&f(x));
        }
    }
    out
}
