//! Scalar reference dot products of one weight row (raw GGUF block bytes) with one quantized
//! activation row — the `_unopt` twins of the SIMD kernels in `simd.rs`.
//!
//! Each is ggml's `ggml_vec_dot_<type>_q8_<x>` as its x86 AVX2 kernel computes it (llama.cpp's
//! CPU build on this machine), written out lane by lane so that the SIMD twins are bit-identical
//! and so is llama.cpp: integer sums (exact) split into the 8 lanes the AVX2 code forms, one f32
//! FMA per lane and block with the block's combined scale, then ggml's horizontal sum:
//! - Q4_0, Q5_0, Q8_0 (with Q8_0 activations): `acc[t] = fma(dx * dy, lane_t, acc[t])`;
//! - Q4_1, Q5_1 (with Q8_1 activations): the same plus `Σ mx * sy` kept apart and added last;
//! - Q4_K, Q5_K, Q6_K (with Q8_K activations): super-block lanes with the sub-block scales
//!   applied in integers, `fma(dy * dx, lane, acc)`, mins apart (see each function);
//! - Q2_K, Q3_K: one integer sum per super-block, sequential f32 FMAs (not ggml's vec_dot order:
//!   these types have no SIMD kernel here);
//! - [`dot_k_tiled`]: every k-quant as llama.cpp's tiled matmul computes it for batches of 8
//!   activation rows or more (prompt processing) — a different f32 formula, same integers.
//! - F16 / BF16 weights meet activations rounded to F16 / BF16; F32 meets f32 (f32 sums).
//!
//! The weight element codes come from the block layouts documented in [`crate::quant`];
//! `tests` checks every decoder here against [`crate::quant::dequantize`].

use super::act::{Q8Block, Q8KBlock, QK8, QK_K};
use crate::quant::{bf16_to_f32, f16_to_f32, scale_min_k4};

/// The f16 at byte `at` of a block, as f32.
#[inline]
pub fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

#[inline]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

// ----- element codes of one block (integers; the scales are applied by the callers) -----

/// Q4_0 / Q4_1 nibbles: element `j` is the low nibble of byte `j`, element `j + 16` the high one.
pub fn nibbles(qs: &[u8]) -> [i32; QK8] {
    std::array::from_fn(|j| i32::from(if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 }))
}

/// Q5_0 / Q5_1 five-bit codes (`qh`: the fifth bit of element `j` is bit `j` of the LE u32).
pub fn five_bits(qh: &[u8], qs: &[u8]) -> [i32; QK8] {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let lo = nibbles(qs);
    std::array::from_fn(|j| lo[j] | (((h >> j) & 1) as i32) << 4)
}

/// Q2_K / Q3_K two-bit field of element `j` (two halves of 128, four shifted passes over 32 bytes).
#[inline]
fn crumb(qs: &[u8], j: usize) -> i32 {
    let (c, r) = (j / 128, j % 128);
    i32::from((qs[32 * c + r % 32] >> (2 * (r / 32))) & 3)
}

/// Q2_K codes 0..4.
pub fn q2k_codes(b: &[u8]) -> [i32; QK_K] {
    std::array::from_fn(|j| crumb(&b[16..80], j))
}

/// Q3_K codes -4..4 (low two bits, minus 4 where the `hmask` bit is clear) and the 16 scales.
pub fn q3k_codes(b: &[u8]) -> ([i32; QK_K], [i32; 16]) {
    let (hm, qs, s) = (&b[0..32], &b[32..96], &b[96..108]);
    let q = std::array::from_fn(|j| crumb(qs, j) - if (hm[j % 32] >> (j / 32)) & 1 == 0 { 4 } else { 0 });
    let sc = std::array::from_fn(|i| {
        let lo = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
        let hi = (s[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        i32::from(lo | (hi << 4)) - 32
    });
    (q, sc)
}

/// Q4_K / Q5_K low four bits: sub-block `s` uses nibble `4 * (s % 2)` of `qs[32 * (s / 2)..][..32]`.
fn k4_low(qs: &[u8], j: usize) -> i32 {
    let (c, r) = (j / 64, j % 64);
    i32::from(if r < 32 { qs[32 * c + r] & 15 } else { qs[32 * c + r - 32] >> 4 })
}

/// Q4_K codes 0..16, scales and mins.
pub fn q4k_codes(b: &[u8]) -> ([i32; QK_K], [u8; 8], [u8; 8]) {
    let mut s = [0u8; 12];
    s.copy_from_slice(&b[4..16]);
    let (sc, m) = scale_min_k4(&s);
    (std::array::from_fn(|j| k4_low(&b[16..144], j)), sc, m)
}

/// Q5_K codes 0..32 (fifth bit: bit `j / 32` of `qh[j % 32]`), scales and mins.
pub fn q5k_codes(b: &[u8]) -> ([i32; QK_K], [u8; 8], [u8; 8]) {
    let mut s = [0u8; 12];
    s.copy_from_slice(&b[4..16]);
    let (sc, m) = scale_min_k4(&s);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    (std::array::from_fn(|j| k4_low(qs, j) | i32::from((qh[j % 32] >> (j / 32)) & 1) << 4), sc, m)
}

/// Q6_K codes -32..32 and the 16 signed scales.
pub fn q6k_codes(b: &[u8]) -> ([i32; QK_K], [i32; 16]) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let q = std::array::from_fn(|j| {
        let (c, r) = (j / 128, j % 128);
        let lo = (ql[64 * c + r % 64] >> (4 * (r / 64))) & 15;
        let hi = (qh[32 * c + r % 32] >> (2 * (r / 32))) & 3;
        i32::from(lo | (hi << 4)) - 32
    });
    (q, std::array::from_fn(|i| i32::from(sc[i] as i8)))
}

#[inline]
fn idot(q: &[i32], y: &[i8]) -> i32 {
    q.iter().zip(y).map(|(&a, &b)| a * i32::from(b)).sum()
}

// ----- the reference dot products -----

/// The 8 lane sums ggml's AVX2 kernels form from 32 products: lane `t` = Σ of elements
/// `4t..4t + 4` (`maddubs` pairs then `madd`, or one `vpdpbusd`).
#[inline]
pub fn lanes8(q: &[i32], y: &[i8]) -> [i32; 8] {
    std::array::from_fn(|t| (4 * t..4 * t + 4).map(|e| q[e] * i32::from(y[e])).sum())
}

/// ggml's `hsum_float_8`: (lanes 0..4 + lanes 4..8), then (0 + 2, 1 + 3), then their sum.
#[inline]
pub fn hsum8(a: &[f32; 8]) -> f32 {
    let h: [f32; 4] = std::array::from_fn(|i| a[i + 4] + a[i]);
    (h[0] + h[2]) + (h[1] + h[3])
}

/// `acc[t] = fma(d, lane[t], acc[t])` for the 8 lanes.
#[inline]
fn fma8(acc: &mut [f32; 8], d: f32, lanes: &[i32; 8]) {
    for (a, &l) in acc.iter_mut().zip(lanes) {
        *a = fma(d, l as f32, *a);
    }
}

pub fn dot_q4_0(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.chunks_exact(18).zip(a) {
        let q = nibbles(&b[2..18]).map(|v| v - 8);
        fma8(&mut acc, f16_at(b, 0) * y.d, &lanes8(&q, &y.qs));
    }
    hsum8(&acc)
}

pub fn dot_q4_1(w: &[u8], a: &[Q8Block]) -> f32 {
    let (mut acc, mut summs) = ([0f32; 8], 0f32);
    for (b, y) in w.chunks_exact(20).zip(a) {
        summs += f16_at(b, 2) * y.s;
        fma8(&mut acc, f16_at(b, 0) * y.d, &lanes8(&nibbles(&b[4..20]), &y.qs));
    }
    hsum8(&acc) + summs
}

pub fn dot_q5_0(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.chunks_exact(22).zip(a) {
        let q = five_bits(&b[2..6], &b[6..22]).map(|v| v - 16);
        fma8(&mut acc, f16_at(b, 0) * y.d, &lanes8(&q, &y.qs));
    }
    hsum8(&acc)
}

pub fn dot_q5_1(w: &[u8], a: &[Q8Block]) -> f32 {
    let (mut acc, mut summs) = ([0f32; 8], 0f32);
    for (b, y) in w.chunks_exact(24).zip(a) {
        summs += f16_at(b, 2) * y.s;
        fma8(&mut acc, f16_at(b, 0) * y.d, &lanes8(&five_bits(&b[4..8], &b[8..24]), &y.qs));
    }
    hsum8(&acc) + summs
}

pub fn dot_q8_0(w: &[u8], a: &[Q8Block]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.chunks_exact(34).zip(a) {
        let q: [i32; QK8] = std::array::from_fn(|j| i32::from(b[2 + j] as i8));
        fma8(&mut acc, f16_at(b, 0) * y.d, &lanes8(&q, &y.qs));
    }
    hsum8(&acc)
}

/// MXFP4 · Q8_0 as ggml's AVX2 `ggml_vec_dot_mxfp4_q8_0`: blocks in pairs, the even block of a
/// pair into one 8-lane accumulator and the odd one into another (`fma(f16(dy) · e8m0_half(e),
/// lane, acc)`), the two added lane-wise and `hsum_float_8`-ed; an odd last block is added as
/// `sumf += d · Σ` (an FMA, as GCC contracts it). Element codes map through
/// [`crate::quant::mxfp4_kvalues`] (E2M1 values times two, hence the *half* scale).
pub fn dot_mxfp4(w: &[u8], a: &[Q8Block]) -> f32 {
    let kv = crate::quant::mxfp4_kvalues();
    let nb = a.len().min(w.len() / 17);
    let block = |ib: usize| -> (f32, [i32; QK8]) {
        let b = &w[ib * 17..(ib + 1) * 17];
        let q = nibbles(&b[1..17]).map(|c| i32::from(kv[c as usize]));
        (crate::quant::e8m0_half(b[0]) * a[ib].d, q)
    };
    let (mut acc1, mut acc2) = ([0f32; 8], [0f32; 8]);
    let mut ib = 0;
    while ib + 1 < nb {
        let (d0, q0) = block(ib);
        let (d1, q1) = block(ib + 1);
        // ggml multiplies f16(dy) · e8m0_half(e) in that order; f32 multiplication commutes.
        fma8(&mut acc1, d0, &lanes8(&q0, &a[ib].qs));
        fma8(&mut acc2, d1, &lanes8(&q1, &a[ib + 1].qs));
        ib += 2;
    }
    let sum: [f32; 8] = std::array::from_fn(|t| acc1[t] + acc2[t]);
    let mut sumf = hsum8(&sum);
    for (i, y) in a.iter().enumerate().take(nb).skip(ib) {
        let (d, q) = block(i);
        sumf = fma(d, idot(&q, &y.qs) as f32, sumf);
    }
    sumf
}

/// Q2_K as ggml's AVX2 kernel (`ggml_vec_dot_q2_K_q8_K`): one 8-lane accumulator; per
/// super-block first the mins, lane `t` = `m_{2t}·bsum_{2t} + m_{2t+1}·bsum_{2t+1}` FMA'd with
/// `-dy·dmin`, then the scales, lane `t` = Σ over the 8 chunks `c` of 32 of `sc_{2c + t/4}` × the
/// products of elements `32 c + 4t..+4`, FMA'd with `dy·d`; `hsum_float_8` at the end.
pub fn dot_q2_k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.chunks_exact(84).zip(a) {
        let q = q2k_codes(b);
        let prod: [i32; 8] = std::array::from_fn(|t| {
            i32::from(b[2 * t] >> 4) * i32::from(y.bsums[2 * t])
                + i32::from(b[2 * t + 1] >> 4) * i32::from(y.bsums[2 * t + 1])
        });
        fma8(&mut acc, -y.d * f16_at(b, 82), &prod);
        let mut sumi = [0i32; 8];
        for c in 0..8 {
            let l = lanes8(&q[32 * c..32 * c + 32], &y.qs[32 * c..32 * c + 32]);
            for t in 0..8 {
                sumi[t] += i32::from(b[2 * c + t / 4] & 15) * l[t];
            }
        }
        fma8(&mut acc, y.d * f16_at(b, 80), &sumi);
    }
    hsum8(&acc)
}

/// Q3_K as ggml's AVX2 kernel (`ggml_vec_dot_q3_K_q8_K`): lane `t` of a super-block = Σ over
/// the 8 chunks `c` of 32 of `sc_{2c + t/4}` × the products of elements `32 c + 4t..+4` (codes
/// -4..3), FMA'd lane-wise with `dy·d`; `hsum_float_8` at the end.
pub fn dot_q3_k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.chunks_exact(110).zip(a) {
        let (q, sc) = q3k_codes(b);
        let mut sumi = [0i32; 8];
        for c in 0..8 {
            let l = lanes8(&q[32 * c..32 * c + 32], &y.qs[32 * c..32 * c + 32]);
            for t in 0..8 {
                sumi[t] += sc[2 * c + t / 4] * l[t];
            }
        }
        fma8(&mut acc, y.d * f16_at(b, 108), &sumi);
    }
    hsum8(&acc)
}

/// Q4_K as ggml's AVX2 kernel: per super-block 8 integer lanes (lane `t`: Σ over the 8
/// sub-blocks `s` of `sc_s` × the products of elements `32 s + 4t..+4`), FMA'd lane-wise with
/// `dy·dx`; the mins as `m_{2u}·(bsum_{4u}+bsum_{4u+1}) + m_{2u+1}·(bsum_{4u+2}+bsum_{4u+3})` in 4
/// lanes FMA'd with `-dy·dmin`.
fn k4_lanes(
    b: &[u8],
    y: &Q8KBlock,
    q: &[i32; QK_K],
    sc: &[u8; 8],
    m: &[u8; 8],
    acc: &mut [f32; 8],
    accm: &mut [f32; 4],
) {
    let mut sumi = [0i32; 8];
    for s in 0..8 {
        let l = lanes8(&q[32 * s..32 * s + 32], &y.qs[32 * s..32 * s + 32]);
        for t in 0..8 {
            sumi[t] += i32::from(sc[s]) * l[t];
        }
    }
    fma8(acc, y.d * f16_at(b, 0), &sumi);
    let q8s: [i32; 8] = std::array::from_fn(|v| i32::from(y.bsums[2 * v]) + i32::from(y.bsums[2 * v + 1]));
    let dmin = -y.d * f16_at(b, 2);
    for u in 0..4 {
        let prod = i32::from(m[2 * u]) * q8s[2 * u] + i32::from(m[2 * u + 1]) * q8s[2 * u + 1];
        accm[u] = fma(dmin, prod as f32, accm[u]);
    }
}

pub fn dot_q4_k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    let (mut acc, mut accm) = ([0f32; 8], [0f32; 4]);
    for (b, y) in w.chunks_exact(144).zip(a) {
        let (q, sc, m) = q4k_codes(b);
        k4_lanes(b, y, &q, &sc, &m, &mut acc, &mut accm);
    }
    hsum8(&acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]))
}

/// Q5_K as ggml's AVX2 kernel: the scale lanes as Q4_K; the mins as one integer total per
/// super-block, `summs = fma(-dy·dmin, total, summs)` (GCC contracts ggml's `summs += dmin * x`).
pub fn dot_q5_k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    let (mut acc, mut summs) = ([0f32; 8], 0f32);
    for (b, y) in w.chunks_exact(176).zip(a) {
        let (q, sc, m) = q5k_codes(b);
        let mut sumi = [0i32; 8];
        for s in 0..8 {
            let l = lanes8(&q[32 * s..32 * s + 32], &y.qs[32 * s..32 * s + 32]);
            for t in 0..8 {
                sumi[t] += i32::from(sc[s]) * l[t];
            }
        }
        fma8(&mut acc, y.d * f16_at(b, 0), &sumi);
        let total: i32 =
            (0..8).map(|s| i32::from(m[s]) * (i32::from(y.bsums[2 * s]) + i32::from(y.bsums[2 * s + 1]))).sum();
        summs = fma(-y.d * f16_at(b, 2), total as f32, summs);
    }
    hsum8(&acc) + summs
}

/// Q6_K as ggml's AVX2 kernel: lane `t` of a super-block = Σ over the 8 chunks `c` of 32 of
/// `sc_{2c + t/4}` × the products of elements `32 c + 4t..+4`, minus
/// `32·(bsum_{2t}·sc_{2t} + bsum_{2t+1}·sc_{2t+1})` (the code offset), FMA'd lane-wise with `dy·dx`.
pub fn dot_q6_k(w: &[u8], a: &[Q8KBlock]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.chunks_exact(210).zip(a) {
        let (q, sc) = q6k_codes(b);
        let q = q.map(|v| v + 32);
        let mut sumi = [0i32; 8];
        for c in 0..8 {
            let l = lanes8(&q[32 * c..32 * c + 32], &y.qs[32 * c..32 * c + 32]);
            for t in 0..8 {
                sumi[t] += sc[2 * c + t / 4] * l[t];
            }
        }
        for t in 0..8 {
            sumi[t] -= 32 * (i32::from(y.bsums[2 * t]) * sc[2 * t] + i32::from(y.bsums[2 * t + 1]) * sc[2 * t + 1]);
        }
        fma8(&mut acc, y.d * f16_at(b, 208), &sumi);
    }
    hsum8(&acc)
}

/// F16 weights with activations already rounded to F16 (as ggml's `vec_dot_type` F16).
pub fn dot_f16(w: &[u8], a: &[u16]) -> f32 {
    w.chunks_exact(2).zip(a).map(|(b, &y)| f16_at(b, 0) * f16_to_f32(y)).sum()
}

/// BF16 weights with activations rounded to BF16.
pub fn dot_bf16(w: &[u8], a: &[u16]) -> f32 {
    w.chunks_exact(2).zip(a).map(|(b, &y)| bf16_to_f32(u16::from_le_bytes([b[0], b[1]])) * bf16_to_f32(y)).sum()
}

/// The k-quant product of llama.cpp's tiled CPU matmul (`ggml-cpu/tiled`), which it uses instead
/// of `vec_dot` when at least 8 activation rows are multiplied at once (prompt processing): per
/// super-block the integer sums `s1 = Σ_s sc_s·(raw_s - bias·bsum_s)` and `s2 = Σ_s m_s·bsum_s`,
/// then `r = fma(-dmin, s2, d·s1)` and `acc = fma(r, dy, acc)` (GCC contracts the accumulation),
/// super-blocks in order.
pub fn dot_k_tiled(ty: crate::gguf::GgmlType, w: &[u8], a: &[Q8KBlock]) -> f32 {
    use crate::gguf::GgmlType as T;
    let ts = ty.type_size();
    let mut acc = 0f32;
    for (b, y) in w.chunks_exact(ts).zip(a) {
        let (mut s1, mut s2) = (0i32, 0i32);
        let (d, dmin) = match ty {
            T::Q4_K | T::Q5_K => {
                let (q, sc, m) = if ty == T::Q4_K { q4k_codes(b) } else { q5k_codes(b) };
                for s in 0..8 {
                    let raw = idot(&q[32 * s..32 * s + 32], &y.qs[32 * s..32 * s + 32]);
                    s1 = s1.wrapping_add(i32::from(sc[s]).wrapping_mul(raw));
                    let bs = i32::from(y.bsums[2 * s]) + i32::from(y.bsums[2 * s + 1]);
                    s2 = s2.wrapping_add(i32::from(m[s]) * bs);
                }
                (f16_at(b, 0), f16_at(b, 2))
            }
            T::Q6_K => {
                let (q, sc) = q6k_codes(b);
                for s in 0..16 {
                    s1 = s1.wrapping_add(sc[s].wrapping_mul(idot(&q[16 * s..16 * s + 16], &y.qs[16 * s..16 * s + 16])));
                }
                (f16_at(b, 208), 0.0)
            }
            T::Q3_K => {
                let (q, sc) = q3k_codes(b);
                for s in 0..16 {
                    s1 = s1.wrapping_add(sc[s].wrapping_mul(idot(&q[16 * s..16 * s + 16], &y.qs[16 * s..16 * s + 16])));
                }
                (f16_at(b, 108), 0.0)
            }
            _ => {
                let q = q2k_codes(b);
                for s in 0..16 {
                    s1 = s1
                        .wrapping_add(i32::from(b[s] & 15) * idot(&q[16 * s..16 * s + 16], &y.qs[16 * s..16 * s + 16]));
                    s2 = s2.wrapping_add(i32::from(b[s] >> 4) * i32::from(y.bsums[s]));
                }
                (f16_at(b, 80), f16_at(b, 82))
            }
        };
        let r = (-dmin).mul_add(s2 as f32, s1 as f32 * d);
        acc = r.mul_add(y.d, acc);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgmlType;
    use crate::quant::dequantize;
    use rstest::rstest;

    use orcd_engine::testing::bytes;

    /// Random blocks with sane f16 scales (small positive normals) at the given offsets.
    fn blocks(ty: GgmlType, nb: usize, seed: u64, scales: &[usize]) -> Vec<u8> {
        let ts = ty.type_size();
        let mut b = bytes(nb * ts, seed);
        for blk in b.chunks_exact_mut(ts) {
            for &at in scales {
                let v = half::f16::from_f32(0.01 + f32::from(blk[at]) / 2000.0).to_bits().to_le_bytes();
                blk[at..at + 2].copy_from_slice(&v);
            }
        }
        b
    }

    fn deq(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
        let mut y = vec![0f32; n];
        assert!(dequantize(ty, b, &mut y).is_ok());
        y
    }

    /// Rebuilding the weights from the codes here with ggml's formulas gives the dequantizer's
    /// values (the dequantizer is bit-exact with gguf-py): the code decoders read the right bits.
    #[rstest]
    #[case::q4_0(GgmlType::Q4_0)]
    #[case::q5_1(GgmlType::Q5_1)]
    #[case::q5_0(GgmlType::Q5_0)]
    #[case::q2_k(GgmlType::Q2_K)]
    #[case::q3_k(GgmlType::Q3_K)]
    #[case::q4_k(GgmlType::Q4_K)]
    #[case::q5_k(GgmlType::Q5_K)]
    #[case::q6_k(GgmlType::Q6_K)]
    fn codes_match_dequantize(#[case] ty: GgmlType, #[values(0, 1, 2, 3)] seed: u64) {
        let f = |b: &[u8], at| f16_at(b, at);
        match ty {
            GgmlType::Q4_0 => {
                let b = blocks(GgmlType::Q4_0, 1, seed, &[0]);
                let q = nibbles(&b[2..18]);
                let want = deq(GgmlType::Q4_0, &b, 32);
                for j in 0..32 {
                    assert_eq!(want[j], (q[j] - 8) as f32 * f(&b, 0));
                }
            }
            GgmlType::Q5_1 => {
                let b = blocks(GgmlType::Q5_1, 1, seed, &[0, 2]);
                let q = five_bits(&b[4..8], &b[8..24]);
                let want = deq(GgmlType::Q5_1, &b, 32);
                for j in 0..32 {
                    assert_eq!(want[j], q[j] as f32 * f(&b, 0) + f(&b, 2));
                }
            }
            GgmlType::Q5_0 => {
                let b = blocks(GgmlType::Q5_0, 1, seed, &[0]);
                let q = five_bits(&b[2..6], &b[6..22]);
                let want = deq(GgmlType::Q5_0, &b, 32);
                for j in 0..32 {
                    assert_eq!(want[j], (q[j] - 16) as f32 * f(&b, 0));
                }
            }
            GgmlType::Q2_K => {
                let b = blocks(GgmlType::Q2_K, 1, seed, &[80, 82]);
                let q = q2k_codes(&b);
                let want = deq(GgmlType::Q2_K, &b, 256);
                for j in 0..256 {
                    let s = b[j / 16];
                    let v = f(&b, 80) * f32::from(s & 15) * q[j] as f32 - f(&b, 82) * f32::from(s >> 4);
                    assert_eq!(want[j], v, "q2_k {j}");
                }
            }
            GgmlType::Q3_K => {
                let b = blocks(GgmlType::Q3_K, 1, seed, &[108]);
                let (q, sc) = q3k_codes(&b);
                let want = deq(GgmlType::Q3_K, &b, 256);
                for j in 0..256 {
                    assert_eq!(want[j], f(&b, 108) * sc[j / 16] as f32 * q[j] as f32, "q3_k {j}");
                }
            }
            GgmlType::Q4_K | GgmlType::Q5_K => {
                let b = blocks(ty, 1, seed, &[0, 2]);
                let (q, sc, m) = if ty == GgmlType::Q4_K { q4k_codes(&b) } else { q5k_codes(&b) };
                let want = deq(ty, &b, 256);
                for j in 0..256 {
                    let s = j / 32;
                    let v = f(&b, 0) * f32::from(sc[s]) * q[j] as f32 - f(&b, 2) * f32::from(m[s]);
                    assert_eq!(want[j], v, "{ty} {j}");
                }
            }
            GgmlType::Q6_K => {
                let b = blocks(GgmlType::Q6_K, 1, seed, &[208]);
                let (q, sc) = q6k_codes(&b);
                let want = deq(GgmlType::Q6_K, &b, 256);
                for j in 0..256 {
                    assert_eq!(want[j], f(&b, 208) * sc[j / 16] as f32 * q[j] as f32, "q6_k {j}");
                }
            }
            _ => panic!("no code decoder for {ty}"),
        }
    }
}
