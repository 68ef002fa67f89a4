//! Device layouts of weights: how a weight's bytes sit in device memory when that is not its GGUF
//! encoding, and the compile-time defines that tell the kernels so.
//!
//! One layout so far, the default since it was timed (issue 13, item 3: weights repacked at load
//! for wider loads; docs/perf/GPU.md, fifteenth block: batch-1 decode +6.3% fast, +3.3% exact,
//! 16 sequences +4.1%, H200): **Q8_0 grouped** (`ORCD_CUDA_Q8_GROUPED=0` keeps the GGUF layout,
//! the A/B). Each row's 34-byte blocks are
//! regrouped by four: the four blocks' f16 scales (8 bytes), then their 4 × 32 codes, 136 bytes a
//! group; a row's last group may hold fewer blocks and keeps its 8-byte header. Every group starts
//! on 8 bytes, so a mat-vec part's 8 codes are one 8-byte load instead of four 2-byte ones, and a
//! GEMM pair's two scales one 4-byte word (kernels/ABI.md "Q8_0 grouped"). The values are the GGUF
//! values: only the addresses change (kernels/emu/mmq_check.cpp built with `-DQ8_GROUPED` holds the
//! kernels to formulas written from the GGUF bytes, bit for bit).
//!
//! Invariant: the switch is read once per process and the same answer goes to the weight upload
//! ([`q8_0_device_bytes`]), the memory estimate and the kernel build ([`kernel_defines`], part of
//! the cubin and emulator cache keys), so a process never mixes layouts.

use std::sync::OnceLock;

use orcd_engine::gguf::GgmlType;

/// Whether Q8_0 weights take the grouped layout (the default; `ORCD_CUDA_Q8_GROUPED=0` keeps the
/// GGUF layout, for the A/B and as the way back).
pub fn q8_grouped() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_CUDA_Q8_GROUPED").is_none_or(|v| v != "0"))
}

/// The `-D` names the kernels are built with for the layouts in use.
pub fn kernel_defines() -> Vec<&'static str> {
    if q8_grouped() {
        vec!["Q8_GROUPED"]
    } else {
        Vec::new()
    }
}

/// Bytes of a row of `k` elements (`k` a multiple of 32) in the grouped Q8_0 layout: the codes
/// and an 8-byte header per group of four blocks (the GGUF row's size when its block count is a
/// multiple of 4; up to 6 bytes more otherwise).
pub fn q8_0_grouped_row_bytes(k: usize) -> usize {
    k + 8 * (k / 32).div_ceil(4)
}

/// A weight's row size on the device: the grouped Q8_0 row where that layout is on, else the
/// GGUF row (`None` for a `k` the type cannot hold).
pub fn device_row_bytes(ty: GgmlType, k: usize) -> Option<usize> {
    if ty == GgmlType::Q8_0 && q8_grouped() {
        k.is_multiple_of(32).then(|| q8_0_grouped_row_bytes(k))
    } else {
        ty.row_bytes(k as u64).map(|b| b as usize)
    }
}

/// `rows` GGUF Q8_0 rows of `k` elements regrouped into the grouped layout (`None` when the bytes
/// are not `rows` whole rows).
pub fn group_q8_0(src: &[u8], rows: usize, k: usize) -> Option<Vec<u8>> {
    if !k.is_multiple_of(32) || src.len() != rows.checked_mul(34 * (k / 32))? {
        return None;
    }
    let nb = k / 32;
    let rb = q8_0_grouped_row_bytes(k);
    let mut out = vec![0u8; rows.checked_mul(rb)?];
    for (dst, row) in out.chunks_exact_mut(rb).zip(src.chunks_exact(34 * nb)) {
        for (c, blk) in row.chunks_exact(34).enumerate() {
            let g = (c / 4) * 136;
            let i = c % 4;
            dst[g + 2 * i..g + 2 * i + 2].copy_from_slice(&blk[..2]);
            dst[g + 8 + 32 * i..g + 8 + 32 * i + 32].copy_from_slice(&blk[2..]);
        }
    }
    Some(out)
}

/// A weight's bytes as the device holds them: Q8_0 regrouped where that layout is on, else the
/// GGUF bytes as they are (borrowed).
pub fn q8_0_device_bytes(ty: GgmlType, host: &[u8], rows: usize, k: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
    if ty == GgmlType::Q8_0 && q8_grouped() {
        group_q8_0(host, rows, k).map(std::borrow::Cow::Owned)
    } else {
        Some(std::borrow::Cow::Borrowed(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF Q8_0 row whose scale bytes and codes name their block and position.
    fn row(nb: usize) -> Vec<u8> {
        let mut r = Vec::new();
        for b in 0..nb {
            r.extend_from_slice(&[0xa0 + b as u8, 0xb0 + b as u8]);
            r.extend((0..32).map(|i| (b * 32 + i) as u8));
        }
        r
    }

    #[test]
    fn the_grouped_layout_is_the_abis() {
        // 6 blocks: one whole group, then a short one of two blocks (its header still 8 bytes).
        let src = row(6);
        let g = group_q8_0(&src, 1, 192).expect("whole rows");
        assert_eq!(g.len(), q8_0_grouped_row_bytes(192));
        assert_eq!(g.len(), 136 + 8 + 64);
        // Group 0: scales of blocks 0..3, then their codes.
        assert_eq!(&g[0..8], &[0xa0, 0xb0, 0xa1, 0xb1, 0xa2, 0xb2, 0xa3, 0xb3]);
        for b in 0..4 {
            assert_eq!(g[8 + 32 * b], (b * 32) as u8, "block {b}'s first code");
            assert_eq!(g[8 + 32 * b + 31], (b * 32 + 31) as u8, "block {b}'s last code");
        }
        // Group 1: blocks 4, 5; the two unused scale slots are zero.
        assert_eq!(&g[136..144], &[0xa4, 0xb4, 0xa5, 0xb5, 0, 0, 0, 0]);
        assert_eq!(g[144], (4 * 32) as u8);
        assert_eq!(g[144 + 32 + 31], (5 * 32 + 31) as u8);
    }

    #[test]
    fn rows_keep_their_order_and_sizes() {
        // Two rows of 28 blocks (the Qwen2.5-0.5B width, 896): the GGUF row's size exactly.
        let mut src = row(28);
        let mut second = row(28);
        second[0] = 0x55;
        src.extend_from_slice(&second);
        let g = group_q8_0(&src, 2, 896).expect("whole rows");
        assert_eq!(q8_0_grouped_row_bytes(896), 952);
        assert_eq!(g.len(), 2 * 952);
        assert_eq!(g[952], 0x55, "row 1 starts a row later");
        // SmolLM2's width: 18 blocks, 612 GGUF bytes, 616 grouped.
        assert_eq!(q8_0_grouped_row_bytes(576), 616);
        // Not whole rows: refused, never a partial copy.
        assert!(group_q8_0(&src[..src.len() - 1], 2, 896).is_none());
        assert!(group_q8_0(&src, 2, 900).is_none());
    }
}
