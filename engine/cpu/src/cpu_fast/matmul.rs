//! `x · wᵀ` with the weight kept in its GGUF type: the activation rows are quantized once
//! (Q8_0/Q8_1 for the 32-element types, Q8_K for the k-quants, F16/BF16 for half weights), then
//! every output is a block dot product ([`super::dot`] scalar reference, [`super::simd`] AVX2).
//!
//! Threading: the team of `pool.rs` over blocks of weight rows. A task owns consecutive weight
//! rows (`task_rows`) and computes them for every input row (a group of 4 weight rows stays in
//! L1 while the input rows stream past), so the result does not depend on the thread count. For
//! batch-1 decode the matmul is memory-bound: one contiguous block a thread. A batch is
//! compute-bound: guided tasks (shrinking toward the end) so neither thread waits long for the
//! other. Several matrices of one input (q, k, v; gate, up) share one parallel loop
//! (`matmul_q_multi`).

use std::sync::Mutex;

use super::pool::{par_for, threads};

use super::act::{quantize_q8_fast, quantize_q8k_fast, Q8Block, Q8KBlock, QK8, QK_K};
use super::dot;
use super::ktile;
use super::panel::{Panels, PR};
use crate::gguf::GgmlType;
use crate::quant::{f32_to_bf16, f32_to_f16};

/// What the activations of a weight type are converted to before the dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActKind {
    /// Q8_0 (or Q8_1: the same blocks carry `s`).
    Q8,
    Q8K,
    F16,
    BF16,
    F32,
}

/// The activation kind for a weight type, or `None` if this backend has no dot kernel for it.
pub fn act_kind(ty: GgmlType) -> Option<ActKind> {
    use GgmlType as T;
    match ty {
        T::Q4_0 | T::Q4_1 | T::Q5_0 | T::Q5_1 | T::Q8_0 | T::MXFP4 => Some(ActKind::Q8),
        T::Q2_K | T::Q3_K | T::Q4_K | T::Q5_K | T::Q6_K => Some(ActKind::Q8K),
        T::F16 => Some(ActKind::F16),
        T::BF16 => Some(ActKind::BF16),
        T::F32 => Some(ActKind::F32),
        _ => None,
    }
}

/// Quantized activation rows.
#[derive(Debug)]
pub enum Acts {
    Q8(Vec<Q8Block>),
    Q8K(Vec<Q8KBlock>),
    Half(Vec<u16>),
    F32(Vec<f32>),
}

/// Rows of this many elements or more are converted in parallel.
const PAR_QUANT_ELEMS: usize = 1 << 15;

/// Convert `n` rows of `k` values (`k` a multiple of the block size, checked by the caller).
pub fn quantize_acts(kind: ActKind, x: &[f32], k: usize) -> Acts {
    let n = x.len().checked_div(k).unwrap_or(0);
    let par = x.len() >= PAR_QUANT_ELEMS && n > 1;
    match kind {
        ActKind::Q8 => {
            let nb = k / QK8;
            let mut out = vec![Q8Block::default(); n * nb];
            if par {
                let rows: Vec<Mutex<&mut [Q8Block]>> = out.chunks_mut(nb).map(Mutex::new).collect();
                par_for(n, &|i| {
                    if let Ok(mut o) = rows[i].lock() {
                        quantize_q8_fast(&x[i * k..(i + 1) * k], &mut o);
                    }
                });
            } else {
                quantize_q8_fast(x, &mut out);
            }
            Acts::Q8(out)
        }
        ActKind::Q8K => {
            let nb = k / QK_K;
            let mut out = vec![Q8KBlock::default(); n * nb];
            if par {
                let rows: Vec<Mutex<&mut [Q8KBlock]>> = out.chunks_mut(nb).map(Mutex::new).collect();
                par_for(n, &|i| {
                    if let Ok(mut o) = rows[i].lock() {
                        quantize_q8k_fast(&x[i * k..(i + 1) * k], &mut o);
                    }
                });
            } else {
                quantize_q8k_fast(x, &mut out);
            }
            Acts::Q8K(out)
        }
        ActKind::F16 => Acts::Half(x.iter().map(|&v| f32_to_f16(v)).collect()),
        ActKind::BF16 => Acts::Half(x.iter().map(|&v| f32_to_bf16(v)).collect()),
        ActKind::F32 => Acts::F32(x.to_vec()),
    }
}

/// Which implementation the dot products use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    Avx2,
    Vnni,
    /// AVX-512 VNNI (`simd::vnni512`): the VNNI kernels with 32 registers, and the panels
    /// against [`PANEL_NA_512`] activation rows at once.
    Vnni512,
}

impl Isa {
    /// The best this CPU supports.
    pub fn detect() -> Isa {
        if super::simd::has_vnni512() {
            Isa::Vnni512
        } else if super::simd::has_avxvnni() {
            Isa::Vnni
        } else if super::simd::has_avx2() {
            Isa::Avx2
        } else {
            Isa::Scalar
        }
    }
}

/// `out[i] = dot(rows[i], a)` for every row (rows of the weight type `ty`, blocks matching `a`).
pub fn dot_rows_q8(isa: Isa, ty: GgmlType, rows: &[&[u8]], a: &[Q8Block], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::{avx2, vnni, vnni512};
        macro_rules! run {
            ($m:ident, $f:ident) => {{
                let mut i = 0;
                while i + 4 <= rows.len() {
                    let r = [rows[i], rows[i + 1], rows[i + 2], rows[i + 3]];
                    // SAFETY: the CPU has the module's features (Isa::detect), every row holds
                    // a.len() blocks of `ty` (checked by the caller).
                    let v = unsafe { $m::$f::<4>(&r, a) };
                    out[i..i + 4].copy_from_slice(&v);
                    i += 4;
                }
                while i < rows.len() {
                    // SAFETY: as above.
                    out[i] = unsafe { $m::$f::<1>(&[rows[i]], a) }[0];
                    i += 1;
                }
                return;
            }};
        }
        use GgmlType as T;
        match (isa, ty) {
            (Isa::Vnni512, T::Q4_0) => run!(vnni512, q4_0),
            (Isa::Vnni512, T::Q4_1) => run!(vnni512, q4_1),
            (Isa::Vnni512, T::Q5_0) => run!(vnni512, q5_0),
            (Isa::Vnni512, T::Q5_1) => run!(vnni512, q5_1),
            (Isa::Vnni512, T::Q8_0) => run!(vnni512, q8_0),
            (Isa::Vnni512, T::MXFP4) => run!(vnni512, mxfp4),
            (Isa::Vnni, T::Q4_0) => run!(vnni, q4_0),
            (Isa::Vnni, T::Q4_1) => run!(vnni, q4_1),
            (Isa::Vnni, T::Q5_0) => run!(vnni, q5_0),
            (Isa::Vnni, T::Q5_1) => run!(vnni, q5_1),
            (Isa::Vnni, T::Q8_0) => run!(vnni, q8_0),
            (Isa::Vnni, T::MXFP4) => run!(vnni, mxfp4),
            (Isa::Avx2, T::Q4_0) => run!(avx2, q4_0),
            (Isa::Avx2, T::Q4_1) => run!(avx2, q4_1),
            (Isa::Avx2, T::Q5_0) => run!(avx2, q5_0),
            (Isa::Avx2, T::Q5_1) => run!(avx2, q5_1),
            (Isa::Avx2, T::Q8_0) => run!(avx2, q8_0),
            (Isa::Avx2, T::MXFP4) => run!(avx2, mxfp4),
            _ => {}
        }
    }
    let f = match ty {
        GgmlType::Q4_0 => dot::dot_q4_0,
        GgmlType::Q4_1 => dot::dot_q4_1,
        GgmlType::Q5_0 => dot::dot_q5_0,
        GgmlType::Q5_1 => dot::dot_q5_1,
        GgmlType::MXFP4 => dot::dot_mxfp4,
        _ => dot::dot_q8_0,
    };
    for (o, r) in out.iter_mut().zip(rows) {
        *o = f(r, a);
    }
}

/// llama.cpp multiplies k-quant weights with its tiled kernel (a different f32 formula) when the
/// activation has at least this many rows (`ggml_tiled_min_batch`).
pub const TILED_MIN_ROWS: usize = 8;

/// As [`dot_rows_q8`] for the k-quants (Q8_K activations); `tiled`: llama.cpp's tiled formula
/// (batches of [`TILED_MIN_ROWS`] or more) instead of its vec_dot one.
pub fn dot_rows_q8k(isa: Isa, ty: GgmlType, rows: &[&[u8]], a: &[Q8KBlock], out: &mut [f32], tiled: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::avx2;
        macro_rules! run {
            ($f:ident) => {{
                let mut i = 0;
                while i + 4 <= rows.len() {
                    let r = [rows[i], rows[i + 1], rows[i + 2], rows[i + 3]];
                    // SAFETY: the CPU has AVX2 (Isa::detect), every row holds a.len() blocks.
                    let v = unsafe {
                        if tiled {
                            avx2::$f::<4, true>(&r, a)
                        } else {
                            avx2::$f::<4, false>(&r, a)
                        }
                    };
                    out[i..i + 4].copy_from_slice(&v);
                    i += 4;
                }
                while i < rows.len() {
                    // SAFETY: as above.
                    let r = [rows[i]];
                    out[i] = unsafe {
                        if tiled {
                            avx2::$f::<1, true>(&r, a)
                        } else {
                            avx2::$f::<1, false>(&r, a)
                        }
                    }[0];
                    i += 1;
                }
                return;
            }};
        }
        if isa != Isa::Scalar {
            match ty {
                GgmlType::Q2_K => run!(q2_k),
                GgmlType::Q3_K => run!(q3_k),
                GgmlType::Q4_K => run!(q4_k),
                GgmlType::Q5_K => run!(q5_k),
                GgmlType::Q6_K => run!(q6_k),
                _ => {}
            }
        }
    }
    if tiled {
        for (o, r) in out.iter_mut().zip(rows) {
            *o = dot::dot_k_tiled(ty, r, a);
        }
        return;
    }
    let f = match ty {
        GgmlType::Q2_K => dot::dot_q2_k,
        GgmlType::Q3_K => dot::dot_q3_k,
        GgmlType::Q4_K => dot::dot_q4_k,
        GgmlType::Q5_K => dot::dot_q5_k,
        _ => dot::dot_q6_k,
    };
    for (o, r) in out.iter_mut().zip(rows) {
        *o = f(r, a);
    }
}

/// A weight matrix in its GGUF type: `m` rows of `k` elements, `row_bytes` bytes each, in the
/// GGUF layout (`data`) or repacked (`panels`).
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    pub ty: GgmlType,
    pub k: usize,
    pub m: usize,
    pub row_bytes: usize,
    pub data: &'a [u8],
    pub panels: Option<&'a Panels>,
}

/// The group scales of the `na` activation rows from row `t` (`group_scales`' layout), or null
/// where there are none.
fn group_at(gs: &[f32], t: usize, nb: usize, na: usize) -> *const f32 {
    match gs.get(t * nb * 4..(t + na) * nb * 4) {
        Some(g) if !g.is_empty() => g.as_ptr(),
        _ => std::ptr::null(),
    }
}

/// The activations' scales laid out for the panel kernels' scale products, in `buf`: rows
/// taken in groups as the kernels take them (`first` rows while whole groups remain, then pairs,
/// then one), per group and block each row's `y.d` 4 times (`NA · 4` floats a block), so that
/// one multiply gives two rows' products. A group starting at row `t` starts at float
/// `t · nb · 4`.
fn group_scales<'b>(a: &[Q8Block], nb: usize, n: usize, first: usize, buf: &'b mut Vec<f32>) -> &'b [f32] {
    buf.clear();
    buf.resize(n * nb * 4, 0.0);
    let mut t = 0;
    while t < n {
        let na = [first, 2, 1].into_iter().find(|&g| t + g <= n).unwrap_or(1);
        let out = &mut buf[t * nb * 4..(t + na) * nb * 4];
        for ib in 0..nb {
            for u in 0..na {
                out[(ib * na + u) * 4..][..4].fill(a[(t + u) * nb + ib].d);
            }
        }
        t += na;
    }
    buf
}

/// Activation rows `*t..` of `a` (rows of `nb` blocks) in whole groups of 4 through
/// `panel_asm512`'s group kernels (`kernel(rows, group scales, out)`, at most `MAX_GROUPS`
/// groups a call), written to `y[t][r..r + 4]`; `*t` ends at the first row not done. Nothing
/// where the rows have no group scales (`gs` too short).
#[cfg(target_arch = "x86_64")]
fn asm_groups(
    a: &[Q8Block],
    nb: usize,
    gs: &[f32],
    t: &mut usize,
    (y, r): (&RowsOut, usize),
    kernel: impl Fn(&[Q8Block], *const f32, &mut [[[f32; 4]; 4]]),
) {
    use super::panel_asm512::MAX_GROUPS;
    let n = a.len() / nb.max(1);
    if *t + 4 > n {
        // Not one group (a decode step: every panel passes here; no 2 KB buffer to clear).
        return;
    }
    let mut out = [[[0f32; 4]; 4]; MAX_GROUPS];
    while *t + 4 <= n {
        let groups = ((n - *t) / 4).min(MAX_GROUPS);
        let (Some(g), Some(ag)) =
            (gs.get(*t * nb * 4..(*t + 4 * groups) * nb * 4), a.get(*t * nb..(*t + 4 * groups) * nb))
        else {
            return;
        };
        kernel(ag, g.as_ptr(), &mut out[..groups]);
        for (gi, o) in out[..groups].iter().enumerate() {
            for (u, v) in o.iter().enumerate() {
                y.set_run(*t + 4 * gi + u, r, v);
            }
        }
        *t += 4 * groups;
    }
}

/// The 4 outputs of panel `p` for one activation row.
fn panel_dot(isa: Isa, pn: &Panels, p: usize, a: &[Q8Block], out: &mut [f32]) {
    let [v] = panel_dot_n(isa, pn, p, &[a], std::ptr::null());
    out[..PR].copy_from_slice(&v);
}

/// Activation rows a panel is multiplied with at once (`panel4n`): two in 16 vector registers,
/// four with AVX-512's 32 (16 accumulators).
const PANEL_NA: usize = 2;
const PANEL_NA_512: usize = 4;

/// Panel `p` against activation rows `*t..` in groups of `NA` while whole groups remain,
/// written to `y[t][r..r + 4]`; `*t` ends at the first row not done.
#[allow(clippy::too_many_arguments)]
fn panel_rows<const NA: usize>(
    isa: Isa,
    pn: &Panels,
    p: usize,
    a: &[Q8Block],
    gs: &[f32],
    nb: usize,
    n: usize,
    t: &mut usize,
    y: &RowsOut,
    r: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if NA == 4 && isa == Isa::Vnni512 && pn.ty == GgmlType::Q8_0 && pn.biased {
        // The batch case that dominates Q8_0 prefill, in assembly (the same bits), as many
        // groups of 4 rows a call as it takes.
        let bytes = pn.panel(p);
        asm_groups(a, nb, gs, t, (y, r), |ag, g, out| {
            // SAFETY: the CPU has AVX-512 VNNI (Isa::Vnni512); the panel holds nb blocks, `ag`
            // 4 · out.len() rows of them, `g` their group scales (asm_groups' contract).
            unsafe { super::panel_asm512::q8_biased_4x4(bytes.as_ptr(), ag, nb, g, out) }
        });
    }
    while *t + NA <= n {
        let rows: [&[Q8Block]; NA] = std::array::from_fn(|j| &a[(*t + j) * nb..(*t + j + 1) * nb]);
        let v = panel_dot_n(isa, pn, p, &rows, group_at(gs, *t, nb, NA));
        for (j, vj) in v.iter().enumerate() {
            y.set_run(*t + j, r, vj);
        }
        *t += NA;
    }
}

/// The 4 outputs of panel `p` for each of `NA` activation rows (each `a[t]` the panel's blocks):
/// `out[t]` does not depend on `NA`.
fn panel_dot_n<const NA: usize>(
    isa: Isa,
    pn: &Panels,
    p: usize,
    a: &[&[Q8Block]; NA],
    gs: *const f32,
) -> [[f32; PR]; NA] {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = pn.panel(p);
        // SAFETY: the CPU has the module's features (Isa::detect); the panel holds the blocks of
        // every a[t] (checked when the weight was loaded; the caller slices the rows so).
        let v = match isa {
            Isa::Vnni512 => Some(unsafe { super::simd::vnni512::panel4n(pn.ty, pn.q8_codes(), bytes.as_ptr(), a, gs) }),
            Isa::Vnni => Some(unsafe { super::simd::vnni::panel4n(pn.ty, pn.q8_codes(), bytes.as_ptr(), a, gs) }),
            Isa::Avx2 if !pn.biased => {
                Some(unsafe { super::simd::avx2::panel4n(pn.ty, pn.q8_codes(), bytes.as_ptr(), a, gs) })
            }
            _ => None,
        };
        if let Some(v) = v {
            return v;
        }
    }
    // Other ISAs: back to the GGUF layout, row by row.
    let rb = pn.nb * pn.ty.type_size();
    let mut row = vec![0u8; rb];
    let mut out = [[0f32; PR]; NA];
    for i in 0..PR {
        pn.row(p * PR + i, &mut row);
        for (t, ot) in out.iter_mut().enumerate() {
            dot_rows_q8(isa, pn.ty, &[&row], a[t], std::slice::from_mut(&mut ot[i]));
        }
    }
    out
}

/// Activation rows a k-quant tile is multiplied with at once (`ktile`: 4 accumulators a row):
/// two in 16 vector registers, four with AVX-512's 32 (pp128 on gemma-3-270m, AMD EPYC Zen 4,
/// 2 threads, 3 alternating runs: one row 418, two 450, four 511 tok/s).
const KTILE_NA: usize = 2;
const KTILE_NA_512: usize = 4;

/// Activation rows from which a panel is unpacked once per matmul (`unpack_panel`) rather than
/// once per group of rows.
const UNPACK_MIN_ROWS: usize = 8;

/// A cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// Bytes of an unpacked panel, cache-line aligned: the kernels' 32-byte loads never straddle
/// two lines (a `Vec<u8>` is only 16-byte aligned; Q8_0 widened to i16 on AVX2, 4864 × 896 ×
/// 128, one thread: see docs/perf/NOTES.md stop 27).
#[derive(Default)]
struct UnpackBuf(Vec<Line>);

impl UnpackBuf {
    /// The first `n` bytes (grown as needed; contents unspecified until written).
    fn bytes_mut(&mut self, n: usize) -> &mut [u8] {
        self.0.resize(n.div_ceil(64), Line([0; 64]));
        // SAFETY: the Vec holds at least n initialized bytes (whole lines of u8).
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr() as *mut u8, n) }
    }

    /// All bytes held.
    fn bytes(&self) -> &[u8] {
        // SAFETY: the Vec's lines are initialized u8s.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr() as *const u8, self.0.len() * 64) }
    }
}

/// Unpack panel `p` into `buf` for [`unpacked_rows`]; false where this ISA has no such kernel,
/// or where unpacking gains nothing: Q8_0 panels already hold the codes as the VNNI kernels
/// take them (unpacking would only convert 4 scales a block, and cost a pass over the weights);
/// AVX2 widens them instead ([`w16_panels`]).
fn unpack_panel(isa: Isa, pn: &Panels, p: usize, buf: &mut UnpackBuf) -> bool {
    if pn.ty == GgmlType::Q8_0 {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::{avx2, vnni, vnni512};
        let out = buf.bytes_mut(pn.nb * vnni512::UNPACKED_BLOCK).as_mut_ptr();
        let src = pn.panel(p).as_ptr();
        // SAFETY: the CPU has the module's features (Isa::detect); the panel holds pn.nb
        // blocks, buf nb · UNPACKED_BLOCK bytes (the same constant in every module).
        match isa {
            Isa::Vnni512 => unsafe { vnni512::unpack4(pn.ty, pn.q8_codes(), src, pn.nb, out) },
            Isa::Vnni => unsafe { vnni::unpack4(pn.ty, pn.q8_codes(), src, pn.nb, out) },
            Isa::Avx2 if !pn.biased => unsafe { avx2::unpack4(pn.ty, pn.q8_codes(), src, pn.nb, out) },
            _ => return false,
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, pn, p, buf);
        false
    }
}

/// Blocks of a Q8_0 panel widened at a time by [`w16_panels`]: 32 × 288 bytes (9 KB), which stay
/// in L1 while every activation row goes past them (ffn_down of the Qwen2.5-0.5B shape has 152
/// blocks a row: 44 KB widened, past a 32 KB L1).
#[cfg(target_arch = "x86_64")]
const W16_CHUNK: usize = 32;

/// Weight types the AVX2 batch path takes widened to i16 ([`w16_panels`]): those whose ggml
/// sums are of signed codes times the activation, scaled by one product a block (Q4_1 and Q5_1
/// add a min term; they keep the u8 × i8 kernels).
#[cfg(target_arch = "x86_64")]
const W16_TYPES: [GgmlType; 3] = [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0];

/// Accumulators of [`w16_panels`] for one group of `NA` activation rows.
#[cfg(target_arch = "x86_64")]
type W16State<const NA: usize> = [[[f32; 8]; 4]; NA];

/// Per-thread buffers of the AVX2 batch path of [`W16_TYPES`], kept from call to call: fresh megabytes
/// each matmul would be page faults.
#[cfg(target_arch = "x86_64")]
#[derive(Default)]
struct W16Bufs {
    /// One chunk of one panel widened.
    chunk: UnpackBuf,
    /// Accumulators: [panel of the task][pair of activation rows].
    pairs: Vec<W16State<PANEL_NA>>,
    /// Accumulators of the odd last activation row: [panel of the task].
    odd: Vec<W16State<1>>,
    /// One panel's outputs, a pair of activation rows each.
    fin: Vec<[[f32; 4]; PANEL_NA]>,
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    static W16_BUFS: std::cell::RefCell<W16Bufs> = std::cell::RefCell::new(W16Bufs::default());
    /// The activations widened by `widen_acts`, on the thread that calls the matmul.
    static ACT_W16: std::cell::Cell<UnpackBuf> = std::cell::Cell::new(UnpackBuf::default());
}

thread_local! {
    /// The activations' `group_scales`, on the thread that calls the matmul.
    static GROUP_SCALES: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The activations of an AVX2 batch matmul as [`w16_panels`] reads them.
#[cfg(target_arch = "x86_64")]
struct W16Acts<'a> {
    /// Per block `simd::avx2::W16_ACT` bytes of codes (row-major, `nb` blocks a row).
    codes: &'a [u8],
    /// [`group_scales`] in pairs of rows (then the odd last row): `w16_blocks`' group scales.
    scales: &'a [f32],
    nb: usize,
}

/// One task of [`widen_acts`]: a run of activation blocks and their widened codes.
#[cfg(target_arch = "x86_64")]
type WidenPart<'a> = Mutex<(&'a [Q8Block], &'a mut [u8])>;

/// Activation blocks widened per task of [`widen_acts`].
#[cfg(target_arch = "x86_64")]
const WIDEN_BLOCKS: usize = 1024;

/// `a`'s codes widened to i16 (`simd::avx2::widen_acts_w16`), in `buf`: once per matmul, in
/// parallel.
#[cfg(target_arch = "x86_64")]
fn widen_acts<'b>(a: &[Q8Block], buf: &'b mut UnpackBuf) -> &'b [u8] {
    use super::simd::avx2;
    let cb = a.len() * avx2::W16_ACT;
    let codes = buf.bytes_mut(cb);
    let parts: Vec<WidenPart<'_>> =
        a.chunks(WIDEN_BLOCKS).zip(codes.chunks_mut(WIDEN_BLOCKS * avx2::W16_ACT)).map(Mutex::new).collect();
    par_for(parts.len(), &|i| {
        if let Ok(mut part) = parts[i].lock() {
            let (src, c) = &mut *part;
            // SAFETY: the caller runs this on AVX2 (Isa::Avx2); c holds src.len() · W16_ACT bytes.
            unsafe { avx2::widen_acts_w16(src, c.as_mut_ptr()) };
        }
    });
    drop(parts);
    &buf.bytes()[..cb]
}

/// Panels `p0..p1` of a matrix of one of [`W16_TYPES`] against all `n` activation rows on AVX2
/// (`simd::avx2::w16_blocks`; the same results as the panel kernels), written to
/// `y[t][4p..4p + 4]`. In groups of [`W16_GROUP`] panels, chunk by chunk of blocks, each chunk
/// through every panel of the group: the activations' chunk (widened, 64 bytes a block) stays
/// in L2 from panel to panel where whole rows would not (ffn_down of the Qwen2.5-0.5B shape:
/// 128 rows × 152 blocks = 1.2 MB); each panel's chunk is widened once into L1 for all the rows.
#[cfg(target_arch = "x86_64")]
fn w16_panels(pn: &Panels, p0: usize, p1: usize, aw: &W16Acts<'_>, n: usize, y: &RowsOut, bufs: &mut W16Bufs) {
    let mut g0 = p0;
    while g0 < p1 {
        let g1 = (g0 + W16_GROUP).min(p1);
        w16_group(pn, g0, g1, aw, n, y, bufs);
        g0 = g1;
    }
}

/// Panels [`w16_panels`] takes through a chunk together: their accumulators (16 KB a panel
/// for 128 activation rows) stay in L2 beside the activations' chunk.
#[cfg(target_arch = "x86_64")]
const W16_GROUP: usize = 8;

/// [`w16_panels`] for one group of at most [`W16_GROUP`] panels.
#[cfg(target_arch = "x86_64")]
fn w16_group(pn: &Panels, p0: usize, p1: usize, aw: &W16Acts<'_>, n: usize, y: &RowsOut, bufs: &mut W16Bufs) {
    use super::simd::avx2;
    let (nb, pbs) = (aw.nb, pn.pbs());
    let (np, pairs) = (p1 - p0, n / PANEL_NA);
    let odd = n % PANEL_NA == 1;
    // Not cleared: `w16_blocks` starts from zero at block 0.
    bufs.pairs.resize(np * pairs, [[[0f32; 8]; 4]; PANEL_NA]);
    bufs.odd.resize(np, [[[0f32; 8]; 4]; 1]);
    bufs.fin.resize(pairs, [[0f32; 4]; PANEL_NA]);
    let wrow = |t: usize| aw.codes[t * nb * avx2::W16_ACT..].as_ptr();
    // Row t's group scales (t even: its pair's; the odd last row: its own).
    let srow = |t: usize| aw.scales[t * nb * 4..].as_ptr();
    let mut c0 = 0;
    while c0 < nb {
        let c1 = (c0 + W16_CHUNK).min(nb);
        for p in p0..p1 {
            let panel = pn.panel(p);
            let u = bufs.chunk.bytes_mut((c1 - c0) * avx2::W16_BLOCK).as_mut_ptr();
            let st = &mut bufs.pairs[(p - p0) * pairs..(p - p0 + 1) * pairs];
            // SAFETY: the CPU has AVX2 (the caller checked Isa::Avx2); the panel holds nb blocks
            // of pbs bytes (Q8_0: signed codes, not biased), u (c1 − c0) · W16_BLOCK bytes; every
            // activation row has nb ≥ c1 widened blocks and scales.
            unsafe {
                avx2::unpack_w16(pn.ty, panel.as_ptr().add(c0 * pbs), c1 - c0, u);
                // The next panel's chunk (else the next chunk's first panel) toward L2 while
                // this one runs: its widening then does not wait on DRAM.
                let next = if p + 1 < p1 {
                    Some(&pn.panel(p + 1)[c0 * pbs..c1 * pbs])
                } else if c1 < nb {
                    Some(&pn.panel(p0)[c1 * pbs..(c1 + W16_CHUNK).min(nb) * pbs])
                } else {
                    None
                };
                for line in next.unwrap_or_default().chunks(64) {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(line.as_ptr() as *const i8);
                }
                // The last chunk reduces the pairs' accumulators into `fin` at once.
                let fin = if c1 == nb { bufs.fin.as_mut_ptr() } else { std::ptr::null_mut() };
                let row = nb * avx2::W16_ACT;
                avx2::w16_pairs(u, wrow(0), row, srow(0), nb, pairs, c0, c1, st.as_mut_ptr(), fin);
                if odd {
                    avx2::w16_blocks(u, &[wrow(n - 1)], srow(n - 1), c0, c1, &mut bufs.odd[p - p0]);
                }
            }
            if c1 == nb {
                let r = p * PR;
                for (g, v) in bufs.fin[..pairs].iter().enumerate() {
                    for (j, vj) in v.iter().enumerate() {
                        y.set_run(g * PANEL_NA + j, r, vj);
                    }
                }
                if odd {
                    // SAFETY: as above (AVX2).
                    let [v] = unsafe { avx2::w16_finish(&bufs.odd[p - p0]) };
                    y.set_run(n - 1, r, &v);
                }
            }
        }
        c0 = c1;
    }
}

/// [`panel_rows`] on the panel [`unpack_panel`] left in `u` (the same results).
#[allow(clippy::too_many_arguments)]
fn unpacked_rows<const NA: usize>(
    isa: Isa,
    pn: &Panels,
    u: &[u8],
    a: &[Q8Block],
    gs: &[f32],
    nb: usize,
    n: usize,
    t: &mut usize,
    y: &RowsOut,
    r: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if NA == 4 && isa == Isa::Vnni512 && matches!(pn.ty, GgmlType::Q4_0 | GgmlType::Q5_0) {
        // The batch case that dominates Q4_0 / Q5_0 prefill, in assembly (the same bits).
        asm_groups(a, nb, gs, t, (y, r), |ag, g, out| {
            // SAFETY: the CPU has AVX-512 VNNI (Isa::Vnni512); `u` holds the panel's nb blocks
            // unpacked by this ISA's `unpack4` (the caller checked), `ag` 4 · out.len() rows
            // of nb blocks, `g` their group scales (asm_groups' contract).
            unsafe { super::panel_asm512::unpacked_4x4(pn.ty, u.as_ptr(), ag, nb, g, out) }
        });
    }
    #[cfg(target_arch = "x86_64")]
    while *t + NA <= n {
        use super::simd::{avx2, vnni, vnni512};
        let rows: [&[Q8Block]; NA] = std::array::from_fn(|j| &a[(*t + j) * nb..(*t + j + 1) * nb]);
        let g = group_at(gs, *t, nb, NA);
        // SAFETY: `u` holds the panel's nb blocks unpacked by this ISA's `unpack4` (the caller
        // checked `unpack_panel` returned true); every row has nb blocks.
        let v = unsafe {
            match isa {
                Isa::Vnni512 => vnni512::unpacked4n(pn.ty, pn.q8_codes(), u.as_ptr(), &rows, g),
                Isa::Vnni => vnni::unpacked4n(pn.ty, pn.q8_codes(), u.as_ptr(), &rows, g),
                _ => avx2::unpacked4n(pn.ty, pn.q8_codes(), u.as_ptr(), &rows, g),
            }
        };
        for (j, vj) in v.iter().enumerate() {
            y.set_run(*t + j, r, vj);
        }
        *t += NA;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (isa, pn, u, a, gs, nb, n, t, y, r);
}

/// Weight rows per task: at least `MIN_TASK_MACS` multiply-adds, one task per thread.
const MIN_TASK_MACS: usize = 1 << 17;

fn rows_per_task(m: usize, k: usize, n: usize) -> usize {
    // One contiguous block of rows per thread streams best (hardware prefetch); the atomic
    // hand-out still balances when a thread starts late. A batch of many rows is compute-bound
    // (its weights are reused from cache): smaller tasks there, so that a thread slowed by
    // the host does not leave the other waiting at the end.
    let per_thread = if n >= 8 { 8 } else { 1 };
    let by_threads = m.div_ceil(threads() * per_thread);
    let by_work = MIN_TASK_MACS.div_ceil((k * n).max(1));
    by_threads.max(by_work).next_multiple_of(4).max(4)
}

/// The weight-row ranges `(first, count)` of a quantized matmul's tasks, in the order they are
/// handed out. A decode step (`n < 8`): [`rows_per_task`] rows each. A batch: guided, each task
/// a `1 / (2 · threads)` share of the rows still left (at least [`rows_per_task`]'s floor of
/// work, whole panels), so that the last tasks are small and neither thread waits long for the
/// other at the end (a batch is compute-bound; one thread of this VM can run slower than the
/// other for a while).
pub(crate) fn task_rows(m: usize, k: usize, n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if n < 8 {
        let rpt = rows_per_task(m, k, n);
        let mut r = 0;
        while r < m {
            out.push((r, rpt.min(m - r)));
            r += rpt;
        }
        return out;
    }
    let floor = MIN_TASK_MACS.div_ceil((k * n).max(1)).next_multiple_of(PR);
    let share = 2 * threads();
    let mut r = 0;
    while r < m {
        let left = m - r;
        let nr = (left / share).next_multiple_of(PR).max(floor).min(left);
        out.push((r, nr));
        r += nr;
    }
    out
}

/// `y[t][j] = Σ_i x[t][i] w[j][i]` for `n = seq_rows.len()` input rows (`acts`, converted for
/// `w.ty`), row-major `[n, m]`. `seq_rows[t]` is the number of rows of row `t`'s sequence: the
/// k-quants use llama.cpp's tiled formula for rows of sequences of [`TILED_MIN_ROWS`]+ rows, as
/// llama.cpp does for that sequence alone. `isa` picks the kernels (results of the SIMD kernels
/// are tested against the scalar ones; the thread count never changes a result).
pub fn matmul_q(isa: Isa, w: &QMatrix<'_>, acts: &Acts, seq_rows: &[u32]) -> Vec<f32> {
    let mut y = matmul_q_exact_bits(isa, w, acts, seq_rows);
    if crate::faults::active(crate::faults::Fault::FastMatmulUlp) {
        y.iter_mut().for_each(|v| *v = f32::from_bits(v.to_bits() ^ 1));
    }
    y
}

/// [`matmul_q`] without the test-only one-ulp perturbation.
fn matmul_q_exact_bits(isa: Isa, w: &QMatrix<'_>, acts: &Acts, seq_rows: &[u32]) -> Vec<f32> {
    let mut outs = matmul_q_multi_exact_bits(isa, &[w], acts, seq_rows);
    outs.pop().unwrap_or_default()
}

/// [`matmul_q`] of one input by several matrices (`ws`, each `k` = the activations' row
/// length: q, k and v; gate and up), in one parallel loop: the activations are converted (and
/// widened) once, and the tasks of all the matrices are handed out together, largest first,
/// so that the threads meet once at the end rather than once per matrix. Each output is
/// [`matmul_q`]'s, bit for bit.
pub fn matmul_q_multi(isa: Isa, ws: &[&QMatrix<'_>], acts: &Acts, seq_rows: &[u32]) -> Vec<Vec<f32>> {
    let mut outs = matmul_q_multi_exact_bits(isa, ws, acts, seq_rows);
    if crate::faults::active(crate::faults::Fault::FastMatmulUlp) {
        outs.iter_mut().flatten().for_each(|v| *v = f32::from_bits(v.to_bits() ^ 1));
    }
    outs
}

/// [`matmul_q_multi`] without the test-only one-ulp perturbation.
fn matmul_q_multi_exact_bits(isa: Isa, ws: &[&QMatrix<'_>], acts: &Acts, seq_rows: &[u32]) -> Vec<Vec<f32>> {
    let n = seq_rows.len();
    // Every element is written below (each task its rows, for every input row).
    let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| crate::arena::take_for_overwrite(w.m * n)).collect();
    if n == 0 {
        return outs;
    }
    // (matrix, first row, rows), the largest (most multiply-adds) first.
    let mut tasks: Vec<(usize, usize, usize)> = Vec::new();
    for (wi, w) in ws.iter().enumerate() {
        tasks.extend(task_rows(w.m, w.k, n).into_iter().map(|(r0, nr)| (wi, r0, nr)));
    }
    tasks.sort_by_key(|&(wi, _, nr)| std::cmp::Reverse(nr * ws[wi].k));
    let ys: Vec<RowsOut> = outs.iter_mut().zip(ws).map(|(o, w)| RowsOut::new(o, w.m)).collect();
    #[cfg(target_arch = "x86_64")]
    let w16 = |w: &QMatrix<'_>| {
        n >= UNPACK_MIN_ROWS
            && isa == Isa::Avx2
            && matches!((w.panels, acts), (Some(pn), Acts::Q8(_)) if W16_TYPES.contains(&pn.ty) && !pn.biased)
    };
    // The activations' group scales and (AVX2) widened codes, once for every panel of every
    // matrix (buffers lent by this thread's cache; the matrices share the activations, so k).
    let k = ws.first().map_or(0, |w| w.k);
    let shared = ws.iter().all(|w| w.k == k) && ws.iter().any(|w| w.panels.is_some());
    let mut gs_buf = GROUP_SCALES.with(|b| b.take());
    let first = if isa == Isa::Vnni512 { PANEL_NA_512 } else { PANEL_NA };
    let gs: &[f32] = match acts {
        // Only the SIMD panel kernels read them.
        Acts::Q8(a) if shared && n >= 2 && isa != Isa::Scalar => group_scales(a, k / QK8, n, first, &mut gs_buf),
        _ => &[],
    };
    #[cfg(target_arch = "x86_64")]
    let mut act_buf = ACT_W16.with(|b| b.take());
    #[cfg(target_arch = "x86_64")]
    let aw = match acts {
        Acts::Q8(a) if shared && ws.iter().any(|w| w16(w)) => {
            Some(W16Acts { codes: widen_acts(a, &mut act_buf), scales: gs, nb: k / QK8 })
        }
        _ => None,
    };
    par_for(tasks.len(), &|ci| {
        let (wi, r0, nr) = tasks[ci];
        let w = ws[wi];
        #[cfg(target_arch = "x86_64")]
        let aw = aw.as_ref().filter(|_| w16(w));
        #[cfg(not(target_arch = "x86_64"))]
        let aw = None;
        run_task(isa, w, acts, gs, seq_rows, aw, &ys[wi], r0, nr);
    });
    #[cfg(target_arch = "x86_64")]
    ACT_W16.with(|b| b.replace(act_buf));
    GROUP_SCALES.with(|b| b.replace(gs_buf));
    outs
}

/// Weight rows `r0..r0 + nr` of `w` against every activation row, into `y` (one task of
/// [`matmul_q_multi`]); `gs`: the activations' [`group_scales`] (empty: none); `aw`: the
/// activations widened for [`w16_panels`] where `w` takes it.
#[allow(clippy::too_many_arguments)]
fn run_task(
    isa: Isa,
    w: &QMatrix<'_>,
    acts: &Acts,
    gs: &[f32],
    seq_rows: &[u32],
    #[cfg(target_arch = "x86_64")] aw: Option<&W16Acts<'_>>,
    #[cfg(not(target_arch = "x86_64"))] aw: Option<&()>,
    y: &RowsOut,
    r0: usize,
    nr: usize,
) {
    let n = seq_rows.len();
    let k = w.k;
    let mut tmp = [0f32; 4];
    let mut g = 0;
    if let (Some(pn), Acts::Q8(a)) = (w.panels, acts) {
        let nb = k / QK8;
        let mut ubuf = UnpackBuf::default();
        #[cfg(target_arch = "x86_64")]
        if let Some(aw) = aw {
            // The task's whole panels at once; its rows past the last panel below.
            let p0 = r0 / PR;
            let p1 = ((r0 + nr) / PR).min(pn.n_panels).max(p0);
            W16_BUFS.with(|b| match b.try_borrow_mut() {
                Ok(mut b) => w16_panels(pn, p0, p1, aw, n, y, &mut b),
                Err(_) => w16_panels(pn, p0, p1, aw, n, y, &mut W16Bufs::default()),
            });
            g = (p1 - p0) * PR;
        }
        let mut stage = Stage::take(n);
        while g < nr {
            let r = r0 + g;
            let p = r / PR;
            if p < pn.n_panels {
                // A batch's outputs are staged (see `Stage`); a decode row's go straight out.
                let staged = n >= UNPACK_MIN_ROWS;
                let so;
                let (out, j) = if staged {
                    let (o, j) = stage.at(r);
                    so = o;
                    (&so, j)
                } else {
                    (y, r)
                };
                if staged && unpack_panel(isa, pn, p, &mut ubuf) {
                    // Many activation rows: the panel unpacked once for all of them.
                    let mut t = 0;
                    if isa == Isa::Vnni512 {
                        unpacked_rows::<PANEL_NA_512>(isa, pn, ubuf.bytes(), a, gs, nb, n, &mut t, out, j);
                    }
                    unpacked_rows::<PANEL_NA>(isa, pn, ubuf.bytes(), a, gs, nb, n, &mut t, out, j);
                    unpacked_rows::<1>(isa, pn, ubuf.bytes(), a, gs, nb, n, &mut t, out, j);
                } else {
                    // Activation rows several at a time: the panel's blocks are unpacked once
                    // for all of them (the same values as one at a time).
                    let mut t = 0;
                    if isa == Isa::Vnni512 {
                        panel_rows::<PANEL_NA_512>(isa, pn, p, a, gs, nb, n, &mut t, out, j);
                    }
                    panel_rows::<PANEL_NA>(isa, pn, p, a, gs, nb, n, &mut t, out, j);
                    for t in t..n {
                        panel_dot(isa, pn, p, &a[t * nb..(t + 1) * nb], &mut tmp);
                        out.set_run(t, j, &tmp);
                    }
                }
                g += PR;
                let next = r0 + g;
                if g >= nr || next / PR >= pn.n_panels || stage.full(next) {
                    stage.flush(y, next);
                }
            } else {
                stage.flush(y, r);
                let row = pn.tail_row(r - pn.n_panels * PR);
                for t in 0..n {
                    dot_rows_q8(isa, w.ty, &[row], &a[t * nb..(t + 1) * nb], &mut tmp[..1]);
                    y.set(t, r, tmp[0]);
                }
                g += 1;
            }
        }
        stage.flush(y, r0 + nr);
        stage.give_back();
        return;
    }
    if let Acts::Q8K(a) = acts {
        if ktile::supports(w.ty) && seq_rows.iter().any(|&s| s as usize >= TILED_MIN_ROWS) {
            let nb = k / QK_K;
            let mut tile = ktile::Tile::default();
            let tiled: Vec<usize> = (0..n).filter(|&t| seq_rows[t] as usize >= TILED_MIN_ROWS).collect();
            let row = |t: usize| &a[t * nb..(t + 1) * nb];
            let mut stage = Stage::take(n);
            while g < nr {
                let cnt = (nr - g).min(ktile::ROWS);
                let rows: [&[u8]; ktile::ROWS] = std::array::from_fn(|i| {
                    let r = r0 + g + i.min(cnt - 1);
                    &w.data[r * w.row_bytes..(r + 1) * w.row_bytes]
                });
                // Unpacked once for the batch's rows (the tiled formula's rows); the rest
                // of the batch (sequences of < 8 rows) takes vec_dot's kernels.
                tile.unpack(w.ty, &rows);
                // The outputs staged (see `Stage`).
                let (so, sr) = stage.at(r0 + g);
                let put = |t: usize, v: &[f32; 4]| so.set_run(t, sr, &v[..cnt]);
                let mut rest = &tiled[..];
                if isa == Isa::Vnni512 {
                    let mut groups = rest.chunks_exact(KTILE_NA_512);
                    for ts in &mut groups {
                        let v = tile.dot_n::<KTILE_NA_512>(isa, std::array::from_fn(|u| row(ts[u])));
                        ts.iter().zip(&v).for_each(|(&t, v)| put(t, v));
                    }
                    rest = groups.remainder();
                }
                let mut groups = rest.chunks_exact(KTILE_NA);
                for ts in &mut groups {
                    let v = tile.dot_n::<KTILE_NA>(isa, std::array::from_fn(|u| row(ts[u])));
                    ts.iter().zip(&v).for_each(|(&t, v)| put(t, v));
                }
                for &t in groups.remainder() {
                    put(t, &tile.dot(isa, row(t)));
                }
                for t in (0..n).filter(|&t| (seq_rows[t] as usize) < TILED_MIN_ROWS) {
                    dot_rows_q8k(isa, w.ty, &rows[..cnt], row(t), &mut tmp[..cnt], false);
                    put(t, &tmp);
                }
                g += cnt;
                if g >= nr || stage.full(r0 + g) {
                    stage.flush(y, r0 + g);
                }
            }
            stage.give_back();
            return;
        }
    }
    while g < nr {
        let cnt = (nr - g).min(4);
        let rows: [&[u8]; 4] = std::array::from_fn(|i| {
            let r = r0 + g + i.min(cnt - 1);
            &w.data[r * w.row_bytes..(r + 1) * w.row_bytes]
        });
        for t in 0..n {
            match acts {
                Acts::Q8(a) => {
                    let nb = k / QK8;
                    dot_rows_q8(isa, w.ty, &rows[..cnt], &a[t * nb..(t + 1) * nb], &mut tmp[..cnt]);
                }
                Acts::Q8K(a) => {
                    let nb = k / QK_K;
                    let tiled = seq_rows[t] as usize >= TILED_MIN_ROWS;
                    dot_rows_q8k(isa, w.ty, &rows[..cnt], &a[t * nb..(t + 1) * nb], &mut tmp[..cnt], tiled);
                }
                Acts::Half(a) => {
                    let f = if w.ty == GgmlType::BF16 { dot::dot_bf16 } else { dot::dot_f16 };
                    for i in 0..cnt {
                        tmp[i] = f(rows[i], &a[t * k..(t + 1) * k]);
                    }
                }
                Acts::F32(_) => {}
            }
            for (i, &v) in tmp[..cnt].iter().enumerate() {
                y.set(t, r0 + g + i, v);
            }
        }
        g += cnt;
    }
}

/// Columns staged before they go to the matmul's output: up to [`STAGE_COLS`] output columns
/// (4 panels) of every activation row, in a dense `[n][STAGE_COLS]` block, then copied to `y` one
/// 64-byte run a row. Written directly, a panel's 4 columns of consecutive activation rows lie
/// `m` floats apart — a multiple of 512 bytes for every model here (640, 896, 1024, 2048,
/// 4864 × 4 bytes) — so a batch's 128 rows fall into at most 8 of L1's 64 sets and each line is
/// evicted before the next panel writes its next 16 bytes; staged, the 128 lines spread over
/// every set and each output line is written once.
struct Stage {
    buf: Vec<f32>,
    n: usize,
    /// The first staged column (`usize::MAX`: none staged).
    j0: usize,
}

const STAGE_COLS: usize = 16;

thread_local! {
    static STAGE: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Stage {
    /// This thread's staging buffer for `n` activation rows.
    fn take(n: usize) -> Stage {
        let mut buf = STAGE.with(|b| b.take());
        // Every element a kernel writes is written before it is read (`flush` copies only the
        // staged columns).
        if buf.len() < n * STAGE_COLS {
            buf.resize(n * STAGE_COLS, 0.0);
        }
        Stage { buf, n, j0: usize::MAX }
    }

    /// Where output column `j` goes: the staging block and its column there (staging from `j`
    /// when nothing is staged).
    fn at(&mut self, j: usize) -> (RowsOut, usize) {
        if self.j0 == usize::MAX {
            self.j0 = j;
        }
        (RowsOut::new(&mut self.buf[..self.n * STAGE_COLS], STAGE_COLS), j - self.j0)
    }

    /// Whether column `j` no longer fits after the staged ones.
    fn full(&self, j: usize) -> bool {
        self.j0 != usize::MAX && j + PR > self.j0 + STAGE_COLS
    }

    /// The staged columns `j0..j` to `y`, every activation row.
    fn flush(&mut self, y: &RowsOut, j: usize) {
        if self.j0 == usize::MAX || j <= self.j0 {
            return;
        }
        let cols = j - self.j0;
        if cols == STAGE_COLS {
            // Whole runs: one fixed-size copy a row.
            for (t, run) in self.buf.chunks_exact(STAGE_COLS).take(self.n).enumerate() {
                y.set_array::<STAGE_COLS>(t, self.j0, run);
            }
        } else {
            for t in 0..self.n {
                y.set_run(t, self.j0, &self.buf[t * STAGE_COLS..t * STAGE_COLS + cols]);
            }
        }
        self.j0 = usize::MAX;
    }

    fn give_back(self) {
        STAGE.with(|b| b.set(self.buf));
    }
}

/// The `[n, m]` output of a matmul, written by the tasks that own its columns (weight rows):
/// each task writes only `y[t][j]` for its own `j`, so no two tasks touch one element, and
/// the values land where they belong (no transpose after).
struct RowsOut {
    p: *mut f32,
    m: usize,
    len: usize,
}

// SAFETY: tasks write disjoint elements (each its own weight rows), and `matmul_q_exact_bits`
// reads the buffer only after `par_for` has returned (every task done).
unsafe impl Sync for RowsOut {}

impl RowsOut {
    fn new(out: &mut [f32], m: usize) -> Self {
        RowsOut { p: out.as_mut_ptr(), m, len: out.len() }
    }

    /// `y[t][j0..j0 + v.len()] = v` (one bounds check for the run).
    #[inline]
    fn set_run(&self, t: usize, j0: usize, v: &[f32]) {
        let i = t * self.m + j0;
        assert!(j0 + v.len() <= self.m && i + v.len() <= self.len, "matmul output index out of range");
        // SAFETY: in bounds (checked); no other task writes these elements (see the type).
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), self.p.add(i), v.len()) }
    }

    /// `y[t][j0..j0 + N] = v[..N]`, as one fixed-size copy (`N` known to the compiler: inline
    /// moves, not a `memmove` call).
    #[inline]
    fn set_array<const N: usize>(&self, t: usize, j0: usize, v: &[f32]) {
        let i = t * self.m + j0;
        assert!(v.len() >= N && j0 + N <= self.m && i + N <= self.len, "matmul output index out of range");
        // SAFETY: in bounds (checked); no other task writes these elements (see the type).
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), self.p.add(i), N) }
    }

    /// `y[t][j] = v`.
    #[inline]
    fn set(&self, t: usize, j: usize, v: f32) {
        let i = t * self.m + j;
        assert!(j < self.m && i < self.len, "matmul output index out of range");
        // SAFETY: in bounds (checked); no other task writes element `i` (see the type).
        unsafe { *self.p.add(i) = v }
    }
}

/// f32 weights (`m` rows of `k`): plain f32 dot products.
pub fn matmul_f32(wd: &[f32], k: usize, m: usize, x: &[f32], n: usize) -> Vec<f32> {
    let mut out_t = crate::arena::take(m * n);
    if m == 0 || n == 0 {
        return out_t;
    }
    let rpt = rows_per_task(m, k, n);
    let chunks: Vec<Mutex<&mut [f32]>> = out_t.chunks_mut(rpt * n).map(Mutex::new).collect();
    par_for(chunks.len(), &|ci| {
        let Ok(mut o) = chunks[ci].lock() else { return };
        let r0 = ci * rpt;
        for (i, orow) in o.chunks_mut(n).enumerate() {
            let wr = &wd[(r0 + i) * k..(r0 + i + 1) * k];
            for (t, v) in orow.iter_mut().enumerate() {
                *v = crate::cpu::dot(&x[t * k..(t + 1) * k], wr);
            }
        }
    });
    drop(chunks);
    transpose(out_t, m, n)
}

fn transpose(a: Vec<f32>, m: usize, n: usize) -> Vec<f32> {
    if n == 1 {
        return a;
    }
    let mut out = crate::arena::take(m * n);
    for j in 0..m {
        for t in 0..n {
            out[t * m + j] = a[j * n + t];
        }
    }
    crate::arena::give(a);
    out
}
