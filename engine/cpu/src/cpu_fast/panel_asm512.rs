//! The hottest batch kernels of the AVX-512 tier in hand-scheduled assembly: 4 weight rows
//! (a panel) against 4 activation rows with the rows' group scales (`matmul::group_scales`),
//! for a Q8_0 panel stored `+ 128` (`Q8Codes::Biased`: [`q8_biased_4x4`], the Qwen-shape file's
//! prefill) and for Q4_0 / Q5_0 panels unpacked once per batch ([`unpacked_4x4`]: most of
//! gemma-3's). Each is `simd::vnni512::panel4n::<4>` / `unpacked4n::<4>` for its case, with the
//! same operations on every (weight row, activation row) pair in the same order, so the same
//! bits (tested against the row kernels in `tests.rs`, and with llama.cpp by `--bits`):
//!
//! - per block and activation row `t`, the correction `−off · Σy` per lane (`off`: the codes'
//!   offset, 128 / 8 / 16; here one `vpdpbusd` of the byte `off` with the codes instead of Σy
//!   shifted: the same integers);
//! - per pair, the lanes `vpdpbusd(correction, codes, y)`, converted, then one FMA into the
//!   pair's 8 accumulators by the scale product `d_w · d_y` (the same product `panel_core`
//!   computes; here the next block's 16 while this block's run, into a two-slot ring);
//! - at the end the same horizontal sum of each pair's 8 lanes.
//!
//! Why assembly: the compiler keeps each row's correction chain (a `vpdpbusd`, then the
//! negation) in line with the products that start from it, and the out-of-order window does not
//! hide it. Here the next block's codes, activation codes and corrections are loaded and
//! computed while this block's products run (software-pipelined by one block), the products
//! take two temporaries in turn, and all 32 vector registers are assigned by hand. One call
//! runs whole rows for up to [`MAX_GROUPS`] groups of 4 activation rows (the group loop is in
//! the assembly; the accumulators are stored per group and reduced after the call): no
//! separate pass over the scales (it took ~20% of the kernel's samples at Qwen-shape prefill),
//! no call, return or reduction between groups. A C replica of the Q8_0 loop (Zen 4 host, one
//! thread, same data): 1.95 → 2.37 G pairs/s (`docs/perf/NOTES.md`, stops 29 and 30).
//!
//! Registers: ymm0–15 the 16 pairs' accumulators (pair `(t, r)` in `4t + r`), ymm16–19 the
//! block's 4 weight rows, ymm20/28/29/30 the 4 activation rows' codes, ymm21/31/22/23 their
//! corrections, ymm24–25 the product temporaries (and, before them in each block, the next
//! block's weight scales and scale products), ymm26 the byte `off` everywhere, ymm27 zero.

#![cfg(target_arch = "x86_64")]

use std::arch::asm;
use std::arch::x86_64::*;

use super::act::Q8Block;
use crate::gguf::GgmlType;

/// One activation row's codes (`{qy}`) and correction (`{nc}`) for the block at `a` + `off`:
/// `nc = 0 − Σ off · y` per lane (ymm26: the byte `off`; ymm27: zero).
#[rustfmt::skip]
macro_rules! corr {
    ($a:literal, $off:literal, $qy:literal, $nc:literal) => {
        concat!(
            "vmovdqu64 ", $off, "({", $a, "}), %ymm", $qy, "\n",
            "vpxord %ymm", $nc, ", %ymm", $nc, ", %ymm", $nc, "\n",
            "vpdpbusd %ymm", $qy, ", %ymm26, %ymm", $nc, "\n",
            "vpsubd %ymm", $nc, ", %ymm27, %ymm", $nc, "\n",
        )
    };
}

/// The pair (activation row with codes `$qy` and correction `$nc`, weight row in `$w`): lanes
/// from the correction, converted, one FMA into accumulator `$acc` by the scale at byte `$ds` of
/// the block's scale products; `$tmp` a temporary.
#[rustfmt::skip]
macro_rules! pair {
    ($qy:literal, $nc:literal, $w:literal, $tmp:literal, $ds:literal, $acc:literal) => {
        concat!(
            "vmovdqa64 %ymm", $nc, ", %ymm", $tmp, "\n",
            "vpdpbusd %ymm", $qy, ", %ymm", $w, ", %ymm", $tmp, "\n",
            "vcvtdq2ps %ymm", $tmp, ", %ymm", $tmp, "\n",
            "vfmadd231ps ", $ds, "({ds}){{1to8}}, %ymm", $tmp, ", %ymm", $acc, "\n",
        )
    };
}

/// The 4 pairs of one activation row (codes `$qy`, correction `$nc`, scale products from byte
/// `$ds`, accumulators `$a0..$a3`) with the block's 4 weight rows.
macro_rules! row {
    ($qy:literal, $nc:literal, $ds0:literal, $ds1:literal, $ds2:literal, $ds3:literal,
     $a0:literal, $a1:literal, $a2:literal, $a3:literal) => {
        concat!(
            pair!($qy, $nc, "16", "24", $ds0, $a0),
            pair!($qy, $nc, "17", "25", $ds1, $a1),
            pair!($qy, $nc, "18", "24", $ds2, $a2),
            pair!($qy, $nc, "19", "25", $ds3, $a3),
        )
    };
}

/// One block's 16 scale products `[dw ×2] · gs` (the layout `panel_core`'s
/// `dsl` has: row pairs (0, 1) then (2, 3), each `[dw ×2] · [d_t ×4, d_t+1 ×4]`) into the ring slot at `{$slot}`, from the group scales at
/// `{gs}` (then advanced a block); `$dw` leaves the block's `[dw ×2]` in ymm24.
#[rustfmt::skip]
macro_rules! scales {
    ($dw:literal, $slot:literal) => {
        concat!(
            $dw,
            "vmulps 0({gs}), %ymm24, %ymm25\n",
            "vmovaps %ymm25, 0({", $slot, "})\n",
            "vmulps 32({gs}), %ymm24, %ymm24\n",
            "vmovaps %ymm24, 32({", $slot, "})\n",
            "add $64, {gs}\n",
        )
    };
}

/// Blocks `0..n` of a row: `{w}`, `{a0}`..`{a3}`, `{gs}`, `{pf}` at block 0, `{ds}` at a
/// 128-byte-aligned ring of two 64-byte slots for the scale products, accumulators in ymm0–15,
/// ymm26/27 set. A block is `$bs` bytes with its 4 rows' codes at `$c0`..`$c3` (the next
/// block's at `$n0`..`$n3`); `$dw0` / `$dwn` load block 0's / the next block's weight scales
/// as `[dw ×2]` into ymm24; `$pf`: the prefetch of the block `{pf}` points at (or nothing).
/// The next block's scale products are computed into the other slot (`{dn}`) while this
/// block's products run; the last block is peeled: it reads nothing past block `n − 1`.
#[rustfmt::skip]
macro_rules! run_body {
    ($bs:literal, $c0:literal, $c1:literal, $c2:literal, $c3:literal,
     $n0:literal, $n1:literal, $n2:literal, $n3:literal, $pf:literal, $dw0:literal, $dwn:literal) => {
        concat!(
            // Block 0's scale products, codes and corrections.
            scales!($dw0, "ds"),
            "mov {ds}, {dn}\n",
            "xor $64, {dn}\n",
            "vmovdqu64 ", $c0, "({w}), %ymm16\n",
            "vmovdqu64 ", $c1, "({w}), %ymm17\n",
            "vmovdqu64 ", $c2, "({w}), %ymm18\n",
            "vmovdqu64 ", $c3, "({w}), %ymm19\n",
            corr!("a0", "8", "20", "21"),
            corr!("a1", "8", "28", "31"),
            corr!("a2", "8", "29", "22"),
            corr!("a3", "8", "30", "23"),
            "dec {n}\n",
            "jz 3f\n",
            "2:\n",
            $pf,
            scales!($dwn, "dn"),
            // Each row's pairs, then that row's codes and correction for the next block
            // (its registers are free once its products are issued).
            row!("20", "21", "0", "4", "8", "12", "0", "1", "2", "3"),
            corr!("a0", "48", "20", "21"),
            row!("28", "31", "16", "20", "24", "28", "4", "5", "6", "7"),
            corr!("a1", "48", "28", "31"),
            row!("29", "22", "32", "36", "40", "44", "8", "9", "10", "11"),
            corr!("a2", "48", "29", "22"),
            row!("30", "23", "48", "52", "56", "60", "12", "13", "14", "15"),
            corr!("a3", "48", "30", "23"),
            "vmovdqu64 ", $n0, "({w}), %ymm16\n",
            "vmovdqu64 ", $n1, "({w}), %ymm17\n",
            "vmovdqu64 ", $n2, "({w}), %ymm18\n",
            "vmovdqu64 ", $n3, "({w}), %ymm19\n",
            "add $", $bs, ", {w}\n",
            "add $", $bs, ", {pf}\n",
            "add $40, {a0}\n",
            "add $40, {a1}\n",
            "add $40, {a2}\n",
            "add $40, {a3}\n",
            "xor $64, {ds}\n",
            "xor $64, {dn}\n",
            "dec {n}\n",
            "jnz 2b\n",
            "3:\n",
            $pf,
            row!("20", "21", "0", "4", "8", "12", "0", "1", "2", "3"),
            row!("28", "31", "16", "20", "24", "28", "4", "5", "6", "7"),
            row!("29", "22", "32", "36", "40", "44", "8", "9", "10", "11"),
            row!("30", "23", "48", "52", "56", "60", "12", "13", "14", "15"),
        )
    };
}

/// The 128-byte-aligned ring of two blocks' scale products [`run_body`] writes and reads.
#[repr(C, align(128))]
struct Ring([f32; 32]);

/// What the group loop of [`asm_groups`] reloads at each group's start (read by the assembly at
/// the byte offsets it names: 0, 8, 16, 24, 32, 40).
#[repr(C)]
struct GroupLoop {
    /// The weights' first block.
    w0: *const u8,
    /// Where the first prefetch points.
    pf0: *const u8,
    /// Blocks a row (≥ 1).
    nb: usize,
    /// Bytes of one activation row (`nb` blocks).
    row_bytes: usize,
    /// Groups left, counted down by the assembly.
    groups: usize,
    /// The correction byte (the codes' offset) in all 4 bytes.
    c: u32,
}

/// Groups of 4 activation rows after one another through [`run_body`] (its layout arguments
/// `$layout`): for each, the accumulators from zero, the whole row, then the 16 accumulators
/// stored at `$out` (512 bytes a group). One call for many groups: the next group's first
/// blocks start while the last one's products drain (no call, return or reduction between
/// them). `$a` is the first group's first row; rows follow at `row_bytes`, groups at 4 rows;
/// `$gs` the first group's group scales (the next group's follow them, where
/// [`run_body`] leaves `{gs}`); `$ring` a [`Ring`].
macro_rules! asm_groups {
    ($gl:expr, $ring:expr, $a:expr, $gs:expr, $out:expr, $($layout:tt)*) => {
        asm!(
            "vpbroadcastd 40({gl}), %ymm26",
            "vpxord %ymm27, %ymm27, %ymm27",
            // A group: its rows from {a0}, the weights' pointers and block count reloaded.
            "1:",
            "mov {a0}, {a1}",
            "add 24({gl}), {a1}",
            "mov {a1}, {a2}",
            "add 24({gl}), {a2}",
            "mov {a2}, {a3}",
            "add 24({gl}), {a3}",
            "mov 0({gl}), {w}",
            "mov 8({gl}), {pf}",
            "mov 16({gl}), {n}",
            "vpxord %ymm0, %ymm0, %ymm0",
            "vpxord %ymm1, %ymm1, %ymm1",
            "vpxord %ymm2, %ymm2, %ymm2",
            "vpxord %ymm3, %ymm3, %ymm3",
            "vpxord %ymm4, %ymm4, %ymm4",
            "vpxord %ymm5, %ymm5, %ymm5",
            "vpxord %ymm6, %ymm6, %ymm6",
            "vpxord %ymm7, %ymm7, %ymm7",
            "vpxord %ymm8, %ymm8, %ymm8",
            "vpxord %ymm9, %ymm9, %ymm9",
            "vpxord %ymm10, %ymm10, %ymm10",
            "vpxord %ymm11, %ymm11, %ymm11",
            "vpxord %ymm12, %ymm12, %ymm12",
            "vpxord %ymm13, %ymm13, %ymm13",
            "vpxord %ymm14, %ymm14, %ymm14",
            "vpxord %ymm15, %ymm15, %ymm15",
            run_body!($($layout)*),
            "vmovups %ymm0, 0({out})",
            "vmovups %ymm1, 32({out})",
            "vmovups %ymm2, 64({out})",
            "vmovups %ymm3, 96({out})",
            "vmovups %ymm4, 128({out})",
            "vmovups %ymm5, 160({out})",
            "vmovups %ymm6, 192({out})",
            "vmovups %ymm7, 224({out})",
            "vmovups %ymm8, 256({out})",
            "vmovups %ymm9, 288({out})",
            "vmovups %ymm10, 320({out})",
            "vmovups %ymm11, 352({out})",
            "vmovups %ymm12, 384({out})",
            "vmovups %ymm13, 416({out})",
            "vmovups %ymm14, 448({out})",
            "vmovups %ymm15, 480({out})",
            "add $512, {out}",
            // The next group: its first row starts where this group's last row ended (each
            // row pointer advanced a row's blocks, except the peeled last block's 40 bytes).
            "lea 40({a3}), {a0}",
            "decq 32({gl})",
            "jnz 1b",
            gl = in(reg) $gl,
            w = out(reg) _,
            pf = out(reg) _,
            n = out(reg) _,
            a0 = inout(reg) $a => _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            gs = inout(reg) $gs => _,
            ds = inout(reg) $ring => _,
            dn = out(reg) _,
            out = inout(reg) $out => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            options(att_syntax, nostack),
        )
    };
}

/// Groups of 4 activation rows one call of the kernels below takes at most (their
/// accumulators pass through a 16 KB stack buffer).
pub const MAX_GROUPS: usize = 32;

/// The driver both kernels share: `out.len()` (≤ [`MAX_GROUPS`]) groups of 4 rows of `a`
/// (`nb` blocks a row, group after group) against the weights at `w0` (first prefetch at
/// `pf0`, correction byte `c` in all 4 bytes) through `body(gl, ring, a, acc)` (the assembly),
/// then each pair's horizontal sum: `out[g][t][r]` for row `4g + t` and weight row `r`.
///
/// # Safety
/// `a` holds `4 · out.len() · nb` blocks, `nb` ≥ 1; `body` runs the assembly over `gl.groups`
/// groups and stores their accumulators at `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
unsafe fn drive(
    (w0, pf0, nb, c): (*const u8, *const u8, usize, u32),
    a: &[Q8Block],
    out: &mut [[[f32; 4]; 4]],
    body: impl Fn(&mut GroupLoop, *mut Ring, *const u8, *mut __m256),
) {
    let groups = out.len();
    assert!(
        groups <= MAX_GROUPS && nb >= 1 && a.len() >= 4 * groups * nb,
        "panel_asm512: {groups} groups of {nb} blocks over {} blocks",
        a.len()
    );
    if groups == 0 {
        return;
    }
    let mut gl = GroupLoop { w0, pf0, nb, row_bytes: nb * std::mem::size_of::<Q8Block>(), groups, c };
    // Written by the assembly (the first `groups`) before they are read; the ring likewise.
    let mut acc = std::mem::MaybeUninit::<[[__m256; 16]; MAX_GROUPS]>::uninit();
    let mut ring = std::mem::MaybeUninit::<Ring>::uninit();
    body(&mut gl, ring.as_mut_ptr(), a.as_ptr() as *const u8, acc.as_mut_ptr() as *mut __m256);
    let acc = acc.as_ptr() as *const [__m256; 16];
    for (g, o) in out.iter_mut().enumerate() {
        // SAFETY: group g < groups was stored by the assembly.
        let v = unsafe { &*acc.add(g) };
        // The panel kernels' own reduction, so the same sums in the same order.
        *o = std::array::from_fn(|t| std::array::from_fn(|r| super::simd::vnni512::hsum_ps(v[4 * t + r])));
    }
}

/// `simd::vnni512::panel4n::<4>` for a Q8_0 panel stored `+ 128` with group scales, for
/// `out.len()` groups of 4 activation rows: `out[g][t]` the panel's 4 outputs for row `4g + t`
/// of `a` (bit-identical).
///
/// # Safety
/// The CPU has AVX-512 F/VL/BW and VNNI; `p` points at a whole Q8_0 panel (`Q8Codes::Biased`)
/// of `nb` ≥ 1 blocks; `a` holds `4 · out.len() · nb` blocks (rows of `nb`); `gs` at the rows'
/// group scales, `out.len() · 16 · nb` floats (`matmul::group_scales` with groups of 4);
/// `out.len()` ≤ [`MAX_GROUPS`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
pub unsafe fn q8_biased_4x4(p: *const u8, a: &[Q8Block], nb: usize, gs: *const f32, out: &mut [[[f32; 4]; 4]]) {
    let pf0 = p.wrapping_add(super::simd::prefetch_distance());
    // SAFETY: the caller's contract: the panel's and every row's nb ≥ 1 blocks, the group
    // scales (the peeled last block reads nothing past block nb − 1, the next block is read
    // only inside the loop; prefetches do not fault). Every vector register the assembly
    // writes is declared clobbered; it writes memory only at the ring, `acc` and `gl`.
    let body = |gl: &mut GroupLoop, ring: *mut Ring, a: *const u8, acc: *mut __m256| unsafe {
        let gl: *mut GroupLoop = gl;
        #[rustfmt::skip]
        asm_groups!(
            gl, ring, a, gs, acc,
            "136", "8", "40", "72", "104", "144", "176", "208", "240",
            "prefetcht0 ({pf})\nprefetcht0 64({pf})\nprefetcht0 128({pf})\n",
            // The f16 scales (8 bytes at the block's start) twice, converted.
            "vpbroadcastq 0({w}), %xmm24\nvcvtph2ps %xmm24, %ymm24\n",
            "vpbroadcastq 136({w}), %xmm24\nvcvtph2ps %xmm24, %ymm24\n"
        );
    };
    // SAFETY: forwarded (the caller's contract).
    unsafe { drive((p, pf0, nb, 0x8080_8080), a, out, body) }
}

/// `simd::vnni512::unpacked4n::<4>` for a Q4_0 or Q5_0 panel unpacked by
/// `simd::vnni512::unpack4` (160 bytes a block: 4 f32 scales, 4 mins, then 4 rows × 32 codes
/// `0..16` / `0..32`), with group scales, for `out.len()` groups of 4 activation rows (as
/// [`q8_biased_4x4`]; bit-identical). The correction is `−8 · Σy` (Q4_0) or `−16 · Σy` (Q5_0)
/// per lane.
///
/// # Safety
/// As [`q8_biased_4x4`], with `ty` Q4_0 or Q5_0 and `u` at `nb` unpacked blocks of `ty`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
pub unsafe fn unpacked_4x4(
    ty: GgmlType,
    u: *const u8,
    a: &[Q8Block],
    nb: usize,
    gs: *const f32,
    out: &mut [[[f32; 4]; 4]],
) {
    // The codes' offset (`panel_block`'s `off`) in every byte: Σ off · y per lane.
    let c: u32 = if ty == GgmlType::Q4_0 { 0x0808_0808 } else { 0x1010_1010 };
    // SAFETY: as in q8_biased_4x4 (unpacked blocks of UNPACKED_BLOCK bytes, in L1: no
    // prefetch).
    let body = |gl: &mut GroupLoop, ring: *mut Ring, a: *const u8, acc: *mut __m256| unsafe {
        let gl: *mut GroupLoop = gl;
        #[rustfmt::skip]
        asm_groups!(
            gl, ring, a, gs, acc,
            "160", "32", "64", "96", "128", "192", "224", "256", "288", "",
            // The f32 scales (16 bytes at the block's start) twice.
            "vbroadcastf32x4 0({w}), %ymm24\n",
            "vbroadcastf32x4 160({w}), %ymm24\n"
        );
    };
    // SAFETY: forwarded (the caller's contract).
    unsafe { drive((u, u, nb, c), a, out, body) }
}
