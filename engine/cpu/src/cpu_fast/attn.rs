//! Attention over an F16 KV cache, as llama.cpp's CPU graph computes it without flash attention
//! (llama-cpp-python's default), operation for operation:
//! - `kq = K·q`: q rounded to F16 (ggml converts it to K's F16 `vec_dot_type`), products summed
//!   in f32 lanes — for a batch (≥ 2 query rows) as llamafile's `tinyBLAS<16>` (16 lanes stepping
//!   through the head dimension), for one row as `ggml_vec_dot_f16` (4 × 16 lanes stepping by 64,
//!   reduced 0+2, 1+3, then the 16 lanes), ggml's 16-lane reduction tree in both;
//! - scaled, soft-capped, masked (causal, sliding window), softmax as `ggml_vec_soft_max_f32`:
//!   `ggml_v_expf` (ggml's AVX-512 exp, ported exactly: [`ggml_expf`]), sums of 16 in f32 then
//!   an f64 total, `(float)(1 / total)` times each;
//! - `V·p`: the probabilities rounded to F16 (the F16 `vec_dot_type` of the transposed V cache)
//!   and summed in the same lane structures over the cache positions.
//!
//! The lane counts and the exp are those of the build llama.cpp makes on the host
//! ([`super::simd::f32_lanes`]): 16 where it compiles its AVX-512 paths (`__AVX512F__` and
//! `__AVX512DQ__`), 8 on an AVX2-only host — `tinyBLAS<8>`, `ggml_vec_dot_f16` with 4 × 8 lanes
//! and `GGML_F32x8_REDUCE`'s `hadd` tree, softmax in chunks of 8 with `hsum`, and the AVX2
//! `ggml_v_expf` ([`ggml_expf_avx2`], another formula: `k + j·k` instead of `scalef`).
//!
//! The SIMD helpers in `simd::half` (both tiers) are bit-identical to the scalar code here
//! (tested).

use std::sync::Mutex;

use crate::ops::AttnParams;
use crate::quant::{f16_to_f32, f32_to_f16};

#[inline]
fn c(bits: u32) -> f32 {
    f32::from_bits(bits)
}

/// ggml's `ggml_v_expf` (the AVX-512 variant llama.cpp's build uses) for one value: `2^n · p(b)`
/// with `n = round(x·log2 e)`, `b = x - n·ln 2` (two FMAs), a degree-5 polynomial, then
/// `scalef`; 0 / ∞ when `|n| > 192`.
#[inline(always)]
pub fn ggml_expf(x: f32) -> f32 {
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(c(0x3fb8_aa3b), r); // 0x1.715476p+0
    let n = z - r;
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x)); // 0x1.7f7d1cp-20, 0x1.62e4p-1
    let u = b * b;
    let j = c(0x3c07_2010).mul_add(b, c(0x3d2b_9f17)).mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)));
    let j = j.mul_add(u, c(0x3f7f_fff6).mul_add(b, 1.0));
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    // scalef: j · 2^n rounded once (exact in f64, then one rounding to f32); |n| <= 192.
    let p2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (f64::from(j) * p2) as f32
}

/// ggml's `ggml_v_expf` as its AVX2 + FMA build computes it, for one value: the same `n`, `b`
/// and polynomial as [`ggml_expf`] but `j` without its constant term, then `k + j·k` with
/// `k = 2^n` built in the exponent bits; for `|n| > 126` the two-factor scaling, and
/// `2^-125 · 2^-125` (0) or `2^127 · 2^127` (∞) beyond 192. Lane by lane as the vector code.
#[inline(always)]
pub fn ggml_expf_avx2(x: f32) -> f32 {
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(c(0x3fb8_aa3b), r);
    let n = z - r;
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1f32.to_bits()));
    let u = b * b;
    let j = c(0x3c07_2010).mul_add(b, c(0x3d2b_9f17)).mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)));
    let j = j.mul_add(u, c(0x3f7f_fff6) * b);
    if n.abs().partial_cmp(&126.0) != Some(std::cmp::Ordering::Greater) {
        return j.mul_add(k, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}

/// The exp of the tier with `lanes` f32 lanes (16: AVX-512, 8: AVX2).
#[inline(always)]
pub fn expf_tier(lanes: usize, x: f32) -> f32 {
    if lanes == 16 {
        ggml_expf(x)
    } else {
        ggml_expf_avx2(x)
    }
}

/// `GGML_F32x8_REDUCE`'s last step (AVX2): low + high half, then two `hadd`s:
/// `(t0 + t1) + (t2 + t3)`.
#[inline]
pub fn reduce8_hadd(v: &[f32; 8]) -> f32 {
    let t: [f32; 4] = std::array::from_fn(|i| v[i] + v[i + 4]);
    (t[0] + t[1]) + (t[2] + t[3])
}

/// The horizontal sum of `lanes` lanes of a tinyBLAS accumulator or a softmax chunk: 16 as
/// `_mm512_reduce_add_ps`, 8 as sgemm's / softmax's `hsum` (`hsum_float_8`'s order).
#[inline]
fn hsum_lanes(v: &[f32]) -> f32 {
    if v.len() == 16 {
        let mut a = [0f32; 16];
        a.copy_from_slice(v);
        reduce16(&a)
    } else {
        let mut a = [0f32; 8];
        a.copy_from_slice(v);
        super::dot::hsum8(&a)
    }
}

/// ggml's 16-lane reduction (`_mm512_reduce_add_ps` as GCC writes it).
#[inline]
pub fn reduce16(v: &[f32; 16]) -> f32 {
    let t: [f32; 8] = std::array::from_fn(|i| v[i + 8] + v[i]);
    super::dot::hsum8(&t)
}

/// `Σ k·q` as llamafile's `tinyBLAS<L>` (`L = lanes`, 16 or 8; n % L == 0): lane l sums
/// elements l, l+L, ..., then the lanes' `hsum`.
pub fn dot_tiny_ref(k: &[u16], q: &[f32], lanes: usize) -> f32 {
    let mut acc = [0f32; 16];
    let acc = &mut acc[..lanes];
    for (kc, qc) in k.chunks_exact(lanes).zip(q.chunks_exact(lanes)) {
        for ((a, &kv), &qv) in acc.iter_mut().zip(kc).zip(qc) {
            *a = f16_to_f32(kv).mul_add(qv, *a);
        }
    }
    hsum_lanes(acc)
}

/// `Σ k·q` as `ggml_vec_dot_f16`: 4 accumulators of `lanes` lanes over steps of `4 · lanes`,
/// reduced (0+2, 1+3, then 0+1, then the lanes: `_mm512_reduce_add_ps`, or AVX2's `hadd`
/// tree) to an f64, leftovers added in f64.
pub fn dot_vec_ref(k: &[u16], q: &[f32], lanes: usize) -> f32 {
    let n = k.len().min(q.len());
    let step = 4 * lanes;
    let np = n - n % step;
    let mut s = [[0f32; 16]; 4];
    for i in (0..np).step_by(step) {
        for (j, sj) in s.iter_mut().enumerate() {
            for (l, a) in sj[..lanes].iter_mut().enumerate() {
                let e = i + lanes * j + l;
                *a = f16_to_f32(k[e]).mul_add(q[e], *a);
            }
        }
    }
    let x: [f32; 16] = std::array::from_fn(|l| (s[0][l] + s[2][l]) + (s[1][l] + s[3][l]));
    let mut sum = if lanes == 16 {
        f64::from(reduce16(&x))
    } else {
        let mut h = [0f32; 8];
        h.copy_from_slice(&x[..8]);
        f64::from(reduce8_hadd(&h))
    };
    for e in np..n {
        sum += f64::from(f16_to_f32(k[e]) * q[e]);
    }
    sum as f32
}

#[inline]
fn dot_tiny(simd: bool, k: &[u16], q: &[f32], lanes: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only true when the CPU has AVX2, FMA and F16C.
        return unsafe {
            if lanes == 16 {
                super::simd::half::dot_tiny(k, q)
            } else {
                super::simd::half::dot_tiny8(k, q)
            }
        };
    }
    let _ = simd;
    dot_tiny_ref(k, q, lanes)
}

#[inline]
fn dot_vec(simd: bool, k: &[u16], q: &[f32], lanes: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd && k.len().is_multiple_of(4 * lanes) {
        // SAFETY: as in `dot_tiny`.
        return unsafe {
            if lanes == 16 {
                super::simd::half::dot_vec(k, q)
            } else {
                super::simd::half::dot_vec8(k, q)
            }
        };
    }
    let _ = simd;
    dot_vec_ref(k, q, lanes)
}

/// `y[i] = fma(a, f16(v[i]), y[i])` — the scalar reference.
pub fn axpy_f16_ref(y: &mut [f32], a: f32, v: &[u16]) {
    for (y, &x) in y.iter_mut().zip(v) {
        *y = a.mul_add(f16_to_f32(x), *y);
    }
}

#[inline]
fn axpy_f16(simd: bool, y: &mut [f32], a: f32, v: &[u16]) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: as in `dot_tiny`.
        return unsafe { super::simd::half::axpy_f16(y, a, v) };
    }
    let _ = simd;
    axpy_f16_ref(y, a, v)
}

/// ggml's `ggml_vec_soft_max_f32` on `w` (masked entries `-inf`) in place; returns nothing, `w`
/// becomes the probabilities. Chunks of `lanes` (16 or 8) from index 0 (the cache cell index, as
/// in llama.cpp's padded rows; a last partial chunk sums as if padded with zeros).
pub fn softmax_ref(w: &mut [f32], lanes: usize) {
    let max = w.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0f64;
    for ch in w.chunks_mut(lanes) {
        let mut e = [0f32; 16];
        for (x, o) in ch.iter_mut().zip(e.iter_mut()) {
            *x = if *x == f32::NEG_INFINITY { 0.0 } else { expf_tier(lanes, *x - max) };
            *o = *x;
        }
        sum += f64::from(hsum_lanes(&e[..lanes]));
    }
    let inv = (1.0 / sum) as f32;
    for x in w.iter_mut() {
        *x *= inv;
    }
}

/// ggml's `soft_max` with a sink (`ggml_compute_forward_soft_max_f32`): the max includes the
/// sink, the row's exponentials are summed as [`softmax_ref`], then `expf(sink - max)` (libm) is
/// added to the f64 total; the sink itself takes no output slot.
pub fn softmax_sink_ref(w: &mut [f32], sink: f32, lanes: usize) {
    let max = w.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)).max(sink);
    let mut sum = 0f64;
    for ch in w.chunks_mut(lanes) {
        let mut e = [0f32; 16];
        for (x, o) in ch.iter_mut().zip(e.iter_mut()) {
            *x = if *x == f32::NEG_INFINITY { 0.0 } else { expf_tier(lanes, *x - max) };
            *o = *x;
        }
        sum += f64::from(hsum_lanes(&e[..lanes]));
    }
    sum += f64::from((sink - max).exp());
    let inv = (1.0 / sum) as f32;
    for x in w.iter_mut() {
        *x *= inv;
    }
}

/// Every value rounded through F16 (SIMD where `simd`, the same bits).
fn round_f16(simd: bool, x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only true when the CPU has AVX2, FMA and F16C.
        return unsafe { super::simd::half::round_f16(x) };
    }
    let _ = simd;
    x.iter_mut().for_each(|v| *v = f16_to_f32(f32_to_f16(*v)));
}

fn softmax(simd: bool, w: &mut [f32], lanes: usize) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only true when the CPU has AVX2, FMA and F16C.
        return unsafe {
            if lanes == 16 {
                super::simd::half::softmax::<true>(w)
            } else {
                super::simd::half::softmax::<false>(w)
            }
        };
    }
    let _ = simd;
    softmax_ref(w, lanes)
}

/// `out[d]` = the lane tree of `lanes` (`[lane][d]`, all `n_lanes` lanes; unused ones zero):
/// for a batch the 16 lanes reduced as `reduce16`; for one row the 64 lanes first folded as
/// `ggml_vec_dot_f16`'s 4 accumulators (`(0+2) + (1+3)`). Element-wise over `d` (vectorizes).
fn reduce_lanes(lanes: &[f32], vd: usize, batch: bool, w: usize, red: &mut [f32], out: &mut [f32]) {
    let l = |i: usize| &lanes[i * vd..(i + 1) * vd];
    for (i, x) in red.chunks_exact_mut(vd).enumerate().take(w) {
        if batch {
            x.copy_from_slice(l(i));
        } else {
            let (s0, s1, s2, s3) = (l(i), l(w + i), l(2 * w + i), l(3 * w + i));
            for d in 0..vd {
                x[d] = (s0[d] + s2[d]) + (s1[d] + s3[d]);
            }
        }
    }
    if w == 8 {
        // 8 lanes -> 4 (lane i + lane i + 4), then tinyBLAS's hsum (0 + 2) + (1 + 3) for a
        // batch, `GGML_F32x8_REDUCE`'s hadds (0 + 1) + (2 + 3) for one row.
        let r = |i: usize| &red[i * vd..(i + 1) * vd];
        for (d, o) in out.iter_mut().enumerate() {
            let t: [f32; 4] = std::array::from_fn(|i| r(i)[d] + r(i + 4)[d]);
            *o = if batch { (t[0] + t[2]) + (t[1] + t[3]) } else { (t[0] + t[1]) + (t[2] + t[3]) };
        }
        return;
    }
    // 16 -> 8 -> 4 lanes, then (0 + 2) + (1 + 3).
    for step in [8usize, 4] {
        for i in 0..step {
            let (lo, hi) = red.split_at_mut((i + step) * vd);
            let (a, b) = (&mut lo[i * vd..(i + 1) * vd], &hi[..vd]);
            for (x, &y) in a.iter_mut().zip(b) {
                *x += y; // y + x: addition commutes exactly
            }
        }
    }
    let r = |i: usize| &red[i * vd..(i + 1) * vd];
    let (h0, h1, h2, h3) = (r(0), r(1), r(2), r(3));
    for (d, o) in out.iter_mut().enumerate() {
        *o = (h0[d] + h2[d]) + (h1[d] + h3[d]);
    }
}

/// Total multiply-adds above which heads run in parallel.
const PAR_MACS: usize = 1 << 16;

/// Shapes are checked by the caller: `q` is `[n_q, n_head * hd]`, `k` `[n_kv, n_head_kv * hd]`,
/// `v` `[n_kv, n_head_kv * vd]`, both F16 bits. Returns `[n_q, n_head * vd]`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    simd: bool,
    q: &[f32],
    n_q: usize,
    k: &[u16],
    v: &[u16],
    n_kv: usize,
    q_pos: &[u32],
    kv_pos: &[u32],
    p: &AttnParams,
) -> Vec<f32> {
    attention_sinks(simd, q, n_q, k, v, n_kv, q_pos, kv_pos, p, None)
}

/// [`attention`] with optional per-head sink logits in the softmax ([`softmax_sink_ref`]).
#[allow(clippy::too_many_arguments)]
pub fn attention_sinks(
    simd: bool,
    q: &[f32],
    n_q: usize,
    k: &[u16],
    v: &[u16],
    n_kv: usize,
    q_pos: &[u32],
    kv_pos: &[u32],
    p: &AttnParams,
    sinks: Option<&[f32]>,
) -> Vec<f32> {
    let (hd, vd) = (p.head_dim, p.v_head_dim);
    let (q_cols, k_cols, v_cols) = (p.n_head * hd, p.n_head_kv * hd, p.n_head_kv * vd);
    let group = p.n_head / p.n_head_kv;
    // llama.cpp multiplies a batch through llamafile (tinyBLAS), a single row through vec_dot,
    // with the host's f32 lane count (16 or 8).
    let w16 = super::simd::f32_lanes();
    let batch = n_q >= 2;
    let kq_tiny = batch && hd % w16 == 0;
    // V·p lanes: w16 (tinyBLAS) or 4 · w16 (vec_dot: 4 accumulators).
    let n_lanes = if batch { w16 } else { 4 * w16 };
    // V·p with its lanes in registers (`simd::half::pv_tiny`, the same bits), where the CPU
    // has the registers for them; else the lanes in memory (`axpy_f16`, `reduce_lanes`).
    let pv_regs =
        simd && vd.is_multiple_of(8) && cfg!(target_arch = "x86_64") && (w16 == 8 || super::simd::has_avx512vl());
    let kq4 = simd && kq_tiny && cfg!(target_arch = "x86_64");
    let head = |h: usize| -> Vec<f32> {
        let kh = h / group;
        let mut out = vec![0f32; n_q * vd];
        // Scores of up to 4 queries at once (`kq4`: each K row converted once for them).
        let mut ws = vec![0f32; 4 * n_kv];
        let mut qhs = vec![0f32; 4 * hd];
        // Lanes at or past n_kv are never written: they stay zero.
        let mut lanes = if pv_regs { Vec::new() } else { vec![0f32; n_lanes * vd] };
        let used = n_lanes.min(n_kv);
        let mut red = if pv_regs { Vec::new() } else { vec![0f32; 16 * vd] };
        let visible = |i: usize, j: usize| {
            kv_pos[j] <= q_pos[i] && p.window.is_none_or(|win| ((q_pos[i] - kv_pos[j]) as usize) < win)
        };
        let finish = |x: f32| {
            let x = x * p.scale;
            match p.softcap {
                Some(cap) => (x * (1.0 / cap)).tanh() * cap,
                None => x,
            }
        };
        for i in 0..n_q {
            let u = if kq4 { i % 4 } else { 0 };
            if u == 0 {
                let g = if kq4 { 4.min(n_q - i) } else { 1 };
                for u in 0..g {
                    let qh = &mut qhs[u * hd..(u + 1) * hd];
                    qh.copy_from_slice(&q[(i + u) * q_cols + h * hd..(i + u) * q_cols + (h + 1) * hd]);
                    round_f16(simd, qh);
                }
                for j in 0..n_kv {
                    let kr = &k[j * k_cols + kh * hd..j * k_cols + (kh + 1) * hd];
                    let vis: [bool; 4] = std::array::from_fn(|u| u < g && visible(i + u, j));
                    #[cfg(target_arch = "x86_64")]
                    if g == 4 && vis.iter().any(|&b| b) {
                        let qs: [&[f32]; 4] = std::array::from_fn(|u| &qhs[u * hd..(u + 1) * hd]);
                        // SAFETY: `kq4` is only set where the CPU has AVX2, FMA and F16C.
                        let d = unsafe {
                            if w16 == 16 {
                                super::simd::half::dot_tiny4::<true>(kr, qs)
                            } else {
                                super::simd::half::dot_tiny4::<false>(kr, qs)
                            }
                        };
                        for u in 0..4 {
                            ws[u * n_kv + j] = if vis[u] { finish(d[u]) } else { f32::NEG_INFINITY };
                        }
                        continue;
                    }
                    for u in 0..g {
                        ws[u * n_kv + j] = if vis[u] {
                            let qh = &qhs[u * hd..(u + 1) * hd];
                            finish(if kq_tiny { dot_tiny(simd, kr, qh, w16) } else { dot_vec(simd, kr, qh, w16) })
                        } else {
                            f32::NEG_INFINITY
                        };
                    }
                }
            }
            // Query i's scores (only the first row when queries are scored one at a time).
            let w = &mut ws[u * n_kv..(u + 1) * n_kv];
            match sinks {
                Some(sk) => softmax_sink_ref(w, sk[h], w16),
                None => softmax(simd, w, w16),
            }
            // ggml stores the probabilities as F16 before V·p (0 stays 0).
            round_f16(simd, w);
            let o = &mut out[i * vd..(i + 1) * vd];
            if pv_regs {
                // SAFETY: `pv_regs` checked the CPU features and vd % 8; V is [n_kv, v_cols],
                // head kh's rows start at kh · vd.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    use super::simd::half::pv_tiny;
                    let vh = &v[kh * vd..];
                    match (w16 == 16, batch) {
                        (true, true) => pv_tiny::<true, false>(w, vh, v_cols, o),
                        (true, false) => pv_tiny::<true, true>(w, vh, v_cols, o),
                        (false, true) => pv_tiny::<false, false>(w, vh, v_cols, o),
                        (false, false) => pv_tiny::<false, true>(w, vh, v_cols, o),
                    }
                }
                continue;
            }
            lanes[..used * vd].iter_mut().for_each(|x| *x = 0.0);
            for (j, &pj) in w.iter().enumerate() {
                if pj == 0.0 {
                    continue;
                }
                let lane = j % n_lanes;
                axpy_f16(
                    simd,
                    &mut lanes[lane * vd..(lane + 1) * vd],
                    pj,
                    &v[j * v_cols + kh * vd..j * v_cols + (kh + 1) * vd],
                );
            }
            reduce_lanes(&lanes, vd, batch, w16, &mut red, o);
        }
        out
    };
    let heads: Vec<Vec<f32>> = if n_q * n_kv * p.n_head * (hd + vd) >= PAR_MACS {
        let slots: Vec<Mutex<Vec<f32>>> = (0..p.n_head).map(|_| Mutex::new(Vec::new())).collect();
        super::pool::par_for(p.n_head, &|h| {
            let r = head(h);
            if let Ok(mut s) = slots[h].lock() {
                *s = r;
            }
        });
        slots.into_iter().map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner())).collect()
    } else {
        (0..p.n_head).map(head).collect()
    };
    let cols = p.n_head * vd;
    // Every element is written below (each head its columns of every row).
    let mut data = crate::arena::take_for_overwrite(n_q * cols);
    for (h, hv) in heads.iter().enumerate() {
        for i in 0..n_q {
            data[i * cols + h * vd..i * cols + (h + 1) * vd].copy_from_slice(&hv[i * vd..(i + 1) * vd]);
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_expf_is_close_to_exp() {
        let mut worst = 0f64;
        let mut x = -104.0f32;
        while x < 89.0 {
            let got = f64::from(ggml_expf(x));
            let want = f64::from(x).exp();
            if want > 1e-37 && want < 1e38 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.0137;
        }
        // ggml documents ~1.5 ulp; f32 ulp ≈ 1.2e-7 relative.
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(ggml_expf(0.0), 1.0);
        assert_eq!(ggml_expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(ggml_expf(-200.0), 0.0);
        assert_eq!(ggml_expf(200.0), f32::INFINITY);
        assert!(ggml_expf(-100.0) > 0.0 && ggml_expf(-100.0) < 1e-43);
    }
}
