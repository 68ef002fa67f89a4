//! Kernel tests: every SIMD kernel against its scalar twin, activation quantization, matmul
//! against the dequantized f32 product, attention helpers, F16 KV cache. The case tables are
//! `rstest` cases (block types) and values (shapes, seeds); the ISAs stay a loop over those this
//! CPU has.

use super::act::{quantize_q8, quantize_q8k, Q8Block, Q8KBlock};
use super::matmul::{self, dot_rows_q8, dot_rows_q8k, Isa};
use super::*;
use crate::gguf::GgmlType;
use crate::ops::Ops;
use rstest::rstest;

/// A CPU batch of sequence 0 at `pos` (op tests).
#[allow(dead_code)]
fn b_at(pos: &[u32]) -> crate::kv::CpuBatch {
    crate::kv::CpuBatch::new(&crate::ops::rows_at(pos)).unwrap()
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut r = orcd_engine::testing::XorShift::new(seed);
    move || r.next_u64()
}

fn signal(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).map(|i| ((r() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * (1.0 + (i % 5) as f32)).collect()
}

/// Offsets of the f16 scale fields of each block type.
fn scale_fields(ty: GgmlType) -> &'static [usize] {
    use GgmlType as T;
    match ty {
        T::Q4_0 | T::Q5_0 | T::Q8_0 => &[0],
        T::Q4_1 | T::Q5_1 | T::Q4_K | T::Q5_K => &[0, 2],
        T::Q2_K => &[80, 82],
        T::Q3_K => &[108],
        T::Q6_K => &[208],
        _ => &[],
    }
}

/// `rows` rows of `nb` random blocks with sane f16 scales (or exactly `unit` when given).
fn weight_rows(ty: GgmlType, rows: usize, nb: usize, seed: u64, unit: Option<(u16, u16)>) -> Vec<u8> {
    let ts = ty.type_size();
    let mut r = rng(seed);
    let mut b: Vec<u8> = (0..rows * nb * ts).map(|_| (r() >> 32) as u8).collect();
    for blk in b.chunks_exact_mut(ts) {
        for (i, &at) in scale_fields(ty).iter().enumerate() {
            let bits = match unit {
                Some((d, m)) => {
                    if i == 0 {
                        d
                    } else {
                        m
                    }
                }
                None => half::f16::from_f32((0.002 + f32::from(blk[at]) / 4000.0) * if i == 1 { -1.0 } else { 1.0 })
                    .to_bits(),
            };
            blk[at..at + 2].copy_from_slice(&bits.to_le_bytes());
        }
    }
    b
}

fn isas() -> Vec<Isa> {
    let mut v = vec![];
    if super::simd::has_avx2() {
        v.push(Isa::Avx2);
    }
    if super::simd::has_avxvnni() {
        v.push(Isa::Vnni);
    }
    if super::simd::has_vnni512() {
        v.push(Isa::Vnni512);
    }
    if v.is_empty() {
        eprintln!("NOT RUN: no AVX2 on this CPU, the SIMD kernels have nothing to be compared on");
    }
    v
}

/// The 32-element kernels: bit-identical to the lane-by-lane reference, with unit scales (every
/// term an exact integer) and with random scales.
#[rstest]
#[case::q4_0(GgmlType::Q4_0)]
#[case::q4_1(GgmlType::Q4_1)]
#[case::q5_0(GgmlType::Q5_0)]
#[case::q5_1(GgmlType::Q5_1)]
#[case::q8_0(GgmlType::Q8_0)]
fn legacy_simd_matches_scalar(#[case] ty: GgmlType, #[values(1, 2, 7, 18)] nb: usize, #[values(0, 1, 2)] seed: u64) {
    for isa in isas() {
        let k = nb * 32;
        let rows_n = 9;
        // Exact: unit scales, activations with d = 1 and s = Σq.
        let w = weight_rows(ty, rows_n, nb, seed, Some((0x3c00, 0x3c00)));
        let mut r = rng(seed + 100);
        let a: Vec<Q8Block> = (0..nb)
            .map(|_| {
                let qs: [i8; 32] = std::array::from_fn(|_| (((r() >> 40) % 255) as i32 - 127) as i8);
                let qs = qs.map(|q| q.max(-127));
                let s = qs.iter().map(|&q| i32::from(q)).sum::<i32>() as f32;
                Q8Block { d: 1.0, s, qs }
            })
            .collect();
        let rb = ty.type_size() * nb;
        let rows: Vec<&[u8]> = w.chunks_exact(rb).collect();
        let (mut got, mut want) = (vec![0f32; rows_n], vec![0f32; rows_n]);
        dot_rows_q8(isa, ty, &rows, &a, &mut got);
        dot_rows_q8(Isa::Scalar, ty, &rows, &a, &mut want);
        assert_eq!(got, want, "{isa:?} {ty} nb {nb} seed {seed} (unit scales)");
        // Random scales and real activations.
        let w = weight_rows(ty, rows_n, nb, seed + 7, None);
        let mut a = vec![Q8Block::default(); nb];
        quantize_q8(&signal(k, seed), &mut a);
        let rows: Vec<&[u8]> = w.chunks_exact(rb).collect();
        dot_rows_q8(isa, ty, &rows, &a, &mut got);
        dot_rows_q8(Isa::Scalar, ty, &rows, &a, &mut want);
        assert_eq!(got, want, "{isa:?} {ty} nb {nb} seed {seed}");
    }
}

/// MXFP4: the SIMD kernels bit-identical to the lane-by-lane reference (`dot::dot_mxfp4`), odd
/// block counts (the scalar tail) included; exponents spread over 2^-9..2^6 so the two
/// accumulators' sums round.
#[rstest]
fn mxfp4_simd_matches_scalar(#[values(1, 2, 3, 7, 18)] nb: usize, #[values(0, 1, 2)] seed: u64) {
    for isa in isas() {
        let rows_n = 9;
        let mut w = weight_rows(GgmlType::MXFP4, rows_n, nb, seed, None);
        for blk in w.chunks_exact_mut(17) {
            blk[0] = 118 + blk[0] % 16;
        }
        let mut a = vec![Q8Block::default(); nb];
        quantize_q8(&signal(nb * 32, seed + 3), &mut a);
        let rows: Vec<&[u8]> = w.chunks_exact(17 * nb).collect();
        let (mut got, mut want) = (vec![0f32; rows_n], vec![0f32; rows_n]);
        dot_rows_q8(isa, GgmlType::MXFP4, &rows, &a, &mut got);
        dot_rows_q8(Isa::Scalar, GgmlType::MXFP4, &rows, &a, &mut want);
        assert_eq!(got, want, "{isa:?} nb {nb} seed {seed}");
        assert!(want.iter().all(|v| v.is_finite() && *v != 0.0), "{want:?}");
    }
}

/// The k-quant kernels: bit-identical to the lane-by-lane reference.
#[rstest]
#[case::q2_k(GgmlType::Q2_K)]
#[case::q3_k(GgmlType::Q3_K)]
#[case::q4_k(GgmlType::Q4_K)]
#[case::q5_k(GgmlType::Q5_K)]
#[case::q6_k(GgmlType::Q6_K)]
fn kquant_simd_matches_scalar_exactly(
    #[case] ty: GgmlType,
    #[values(1, 3, 8)] nb: usize,
    #[values(0, 1, 2, 3)] seed: u64,
    #[values(false, true)] tiled: bool,
) {
    for isa in isas() {
        let rows_n = 6;
        let w = weight_rows(ty, rows_n, nb, seed, None);
        let mut a = vec![Q8KBlock::default(); nb];
        quantize_q8k(&signal(nb * 256, seed + 50), &mut a);
        let rb = ty.type_size() * nb;
        let rows: Vec<&[u8]> = w.chunks_exact(rb).collect();
        let (mut got, mut want) = (vec![0f32; rows_n], vec![0f32; rows_n]);
        dot_rows_q8k(isa, ty, &rows, &a, &mut got, tiled);
        dot_rows_q8k(Isa::Scalar, ty, &rows, &a, &mut want, tiled);
        assert_eq!(got, want, "{isa:?} {ty} nb {nb} seed {seed} tiled {tiled}");
    }
}

/// The reference kernels compute Σ w·x of the dequantized weights and the dequantized
/// activations (checked in f64 within the f32 rounding of the block sums).
#[rstest]
#[case::q4_0(GgmlType::Q4_0, 16)]
#[case::q4_1(GgmlType::Q4_1, 16)]
#[case::q5_0(GgmlType::Q5_0, 16)]
#[case::q5_1(GgmlType::Q5_1, 16)]
#[case::q8_0(GgmlType::Q8_0, 16)]
#[case::q2_k(GgmlType::Q2_K, 2)]
#[case::q3_k(GgmlType::Q3_K, 2)]
#[case::q4_k(GgmlType::Q4_K, 2)]
#[case::q5_k(GgmlType::Q5_K, 2)]
#[case::q6_k(GgmlType::Q6_K, 2)]
fn scalar_dot_is_the_dequantized_dot(#[case] ty: GgmlType, #[case] nb: usize) {
    let k = nb * ty.block_size();
    let w = weight_rows(ty, 1, nb, 3, None);
    let mut wf = vec![0f32; k];
    assert!(crate::quant::dequantize(ty, &w, &mut wf).is_ok());
    let x = signal(k, 9);
    let acts = matmul::quantize_acts(matmul::act_kind(ty).unwrap_or(matmul::ActKind::F32), &x, k);
    let (got, xq): (f32, Vec<f32>) = match &acts {
        matmul::Acts::Q8(a) => {
            let mut o = [0f32];
            dot_rows_q8(Isa::Scalar, ty, &[&w], a, &mut o);
            (o[0], a.iter().flat_map(|b| b.qs.map(|q| b.d * f32::from(q))).collect())
        }
        matmul::Acts::Q8K(a) => {
            let mut o = [0f32];
            dot_rows_q8k(Isa::Scalar, ty, &[&w], a, &mut o, false);
            let mut t = [0f32];
            dot_rows_q8k(Isa::Scalar, ty, &[&w], a, &mut t, true);
            let rel = ((t[0] - o[0]) / o[0].abs().max(1e-3)).abs();
            assert!(rel < 1e-4, "{ty}: tiled {} vs vec_dot {}", t[0], o[0]);
            (o[0], a.iter().flat_map(|b| b.qs.map(|q| b.d * f32::from(q))).collect())
        }
        _ => (0.0, vec![]),
    };
    let want: f64 = wf.iter().zip(&xq).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
    let scale: f64 = wf.iter().zip(&xq).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
    // Q4_1/Q5_1 use s = f16(d Σq) (rounded), K-quants dmin·Σ m·bsum: allow 1e-3 relative.
    assert!((f64::from(got) - want).abs() <= 1e-3 * scale + 1e-6, "{ty}: {got} vs {want} (scale {scale})");
}

/// The 8-row rms_norm sums equal each row's sequential f64 sum bit for bit, for lengths with
/// and without a tail, on values spread over many binades (where f64 rounding order shows).
#[rstest]
fn rms_norm_sums_of_8_rows_match_one_at_a_time(#[values(0, 1, 3, 4, 5, 256, 641)] n: usize) {
    if !crate::cpu_fast::simd::has_avx2() {
        return;
    }
    let rows: Vec<Vec<f32>> = (0..8)
        .map(|r| signal(n, 40 + r).iter().enumerate().map(|(i, &v)| v * 2f32.powi((i % 61) as i32 - 30)).collect())
        .collect();
    // ggml's loop: `ggml_float sum = 0.0; sum += (ggml_float)(x[i] * x[i])`.
    let want: Vec<f64> = rows.iter().map(|r| r.iter().fold(0.0, |s, &v| s + f64::from(v * v))).collect();
    // SAFETY: AVX2, FMA and F16C checked above.
    let got = unsafe { crate::cpu_fast::simd::half::sumsq8(std::array::from_fn(|r| rows[r].as_slice())) };
    for (r, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "row {r} of {n}");
    }
}

#[rstest]
fn attention_helpers_match_reference(#[values(16, 64, 128, 256, 512)] n: usize) {
    if !super::simd::has_avx2() {
        eprintln!("NOT RUN: no AVX2");
        return;
    }
    let q = signal(n, 1);
    let k: Vec<u16> = signal(n, 2).iter().map(|&v| crate::quant::f32_to_f16(v)).collect();
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: AVX2/FMA/F16C checked above.
        let got = unsafe { super::simd::half::dot_tiny(&k, &q) };
        assert_eq!(got, attn::dot_tiny_ref(&k, &q, 16), "tiny {n}");
        if n.is_multiple_of(64) {
            // SAFETY: as above.
            let got = unsafe { super::simd::half::dot_vec(&k, &q) };
            assert_eq!(got, attn::dot_vec_ref(&k, &q, 16), "vec {n}");
        }
        let (mut y1, mut y2) = (signal(n + 3, 3), signal(n + 3, 3));
        let k3: Vec<u16> = signal(n + 3, 4).iter().map(|&v| crate::quant::f32_to_f16(v)).collect();
        // SAFETY: as above.
        unsafe { super::simd::half::axpy_f16(&mut y1, 0.37, &k3) };
        attn::axpy_f16_ref(&mut y2, 0.37, &k3);
        assert_eq!(y1, y2, "axpy {n}");
    }
}

/// The rows of [`attention_simd_is_bit_identical`]'s keys and values.
const ATTN_N: usize = 37;

/// Attention with SIMD on and off gives the same bits (batch and single-row orders), over
/// caches shorter and longer than the lanes (64 for one row: some lanes sum several rows).
#[rstest]
#[case::single_row(1, ATTN_N, Some(20))]
#[case::batch(ATTN_N, ATTN_N, Some(20))]
#[case::single_row_long(1, 150, None)]
#[case::batch_long(150, 150, Some(130))]
fn attention_simd_is_bit_identical(#[case] rows: usize, #[case] n: usize, #[case] window: Option<usize>) {
    let (n_head, n_kv_h, hd) = (4, 2, 64);
    let q = signal(n * n_head * hd, 7);
    let k: Vec<u16> = signal(n * n_kv_h * hd, 8).iter().map(|&v| crate::quant::f32_to_f16(v)).collect();
    let v: Vec<u16> = signal(n * n_kv_h * hd, 9).iter().map(|&v| crate::quant::f32_to_f16(v)).collect();
    let pos: Vec<u32> = (0..n as u32).collect();
    let p = AttnParams { n_head, n_head_kv: n_kv_h, head_dim: hd, v_head_dim: hd, scale: 0.125, window, softcap: None };
    let qs = &q[(n - rows) * n_head * hd..];
    let a = attn::attention(true, qs, rows, &k, &v, n, &pos[n - rows..], &pos, &p);
    let b = attn::attention(false, qs, rows, &k, &v, n, &pos[n - rows..], &pos, &p);
    assert_eq!(a, b, "{rows} rows");
}

fn weight(ty: GgmlType, k: usize, m: usize, raw: Vec<u8>) -> FastWeight {
    FastWeight {
        name: "w".into(),
        dims: vec![k as u64, m as u64],
        ty,
        ne0: k,
        rows: m,
        raw: raw.into(),
        f32: vec![],
        panels: None,
    }
}

/// matmul of several rows: every output equals the single-row kernel's (no dependence on the
/// batch or the task split) and is close to the f32 product of the dequantized weight.
#[rstest]
#[case::q4_0(GgmlType::Q4_0, 96)]
#[case::q4_1(GgmlType::Q4_1, 96)]
#[case::q5_0(GgmlType::Q5_0, 96)]
#[case::q5_1(GgmlType::Q5_1, 96)]
#[case::q8_0(GgmlType::Q8_0, 96)]
#[case::q2_k(GgmlType::Q2_K, 512)]
#[case::q3_k(GgmlType::Q3_K, 512)]
#[case::q4_k(GgmlType::Q4_K, 512)]
#[case::q5_k(GgmlType::Q5_K, 512)]
#[case::q6_k(GgmlType::Q6_K, 512)]
#[case::f16(GgmlType::F16, 96)]
#[case::bf16(GgmlType::BF16, 96)]
fn matmul_batches_and_matches_dequantized_product(#[case] ty: GgmlType, #[case] k: usize) {
    let m = 37;
    let raw = if matches!(ty, GgmlType::F16 | GgmlType::BF16) {
        let v = signal(k * m, 5);
        match crate::quant::quantize(ty, &v) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    } else {
        weight_rows(ty, m, k / ty.block_size(), 11, None)
    };
    let mut wf = vec![0f32; k * m];
    assert!(crate::quant::dequantize(ty, &raw, &mut wf).is_ok());
    let w = weight(ty, k, m, raw);
    let n = 5;
    let x = signal(n * k, 21);
    let be = CpuFast;
    let y = match be.matmul(&FastTensor::new(n, k, x.clone()), &w, &RowGroups::single(n)) {
        Ok(y) => be.to_host(&y).unwrap(),
        Err(e) => panic!("{e}"),
    };
    for t in 0..n {
        let one = match be.matmul(&FastTensor::new(1, k, x[t * k..(t + 1) * k].to_vec()), &w, &RowGroups::single(1)) {
            Ok(y) => be.to_host(&y).unwrap(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(&y[t * m..(t + 1) * m], &one[..], "{ty} row {t}: batch vs single");
        for j in 0..m {
            let xr = &x[t * k..(t + 1) * k];
            let wr = &wf[j * k..(j + 1) * k];
            let exact: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
            let scale: f32 = xr.iter().zip(wr).map(|(a, b)| (a * b).abs()).sum();
            // 8-bit activations: relative error ~1/127 of the terms.
            assert!((y[t * m + j] - exact).abs() <= 0.02 * scale + 1e-5, "{ty} [{t},{j}]: {} vs {exact}", y[t * m + j]);
        }
    }
}

#[test]
fn kv_cache_is_f16() {
    let be = CpuFast;
    let a = FastTensor::new(1, 2, vec![1.0 / 3.0, 65536.0]);
    let b = FastTensor::new(1, 2, vec![0.1, -2.0]);
    // Written in place at positions 0 and 1, read back through attention's F16 view.
    let spec = KvSpec { n_layer: 1, n_seq: 1, n_ctx: 2, k_cols: 2, v_cols: 2, ty: KvType::F16 };
    let mut kv = be.kv_alloc(&spec).unwrap();
    be.kv_write(&mut kv, 0, &a, &a, &b_at(&[0])).unwrap();
    be.kv_write(&mut kv, 0, &b, &b, &b_at(&[1])).unwrap();
    let (k, _) = kv.f16s(0, 0, 2);
    let h: Vec<f32> = k.iter().map(|&x| f16_to_f32(x)).collect();
    assert_eq!(h, vec![0.333_251_95, f32::INFINITY, 0.099_975_586, -2.0]);
    // A row of the wrong width, a position past the context, an F32 cache: typed errors.
    assert!(be.kv_write(&mut kv, 0, &FastTensor::new(1, 3, vec![0.0; 3]), &b, &b_at(&[0])).is_err());
    assert!(be.kv_write(&mut kv, 0, &a, &a, &b_at(&[2])).is_err());
    assert!(be.kv_alloc(&KvSpec { ty: KvType::F32, ..spec }).is_err());
}

/// The SIMD GELU·up row equals the scalar table lookup bit for bit: both sides of ±10, the F16
/// rounding ties, subnormals, infinities and NaN, a length that is not a multiple of 8.
#[test]
fn simd_gelu_mul_matches_scalar() {
    if !super::simd::has_avx2() {
        eprintln!("NOT RUN: no AVX2");
        return;
    }
    let t = gelu_table();
    let mut g: Vec<f32> = signal(1003, 8).iter().map(|v| v * 12.0).collect();
    let special = [
        -10.0,
        10.0,
        -10.000001,
        9.999999,
        0.0,
        -0.0,
        1e-8,
        -6e-8,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        65520.0,
        1.0009766,
        f32::from_bits(1),
    ];
    g[..special.len()].copy_from_slice(&special);
    let u = signal(1003, 9);
    let mut o = vec![0f32; g.len()];
    // SAFETY: AVX2 checked above; gelu_table is padded.
    unsafe { super::simd::half::gelu_mul_row(&g, &u, t, &mut o) };
    for i in 0..g.len() {
        let want = gelu(g[i], t) * u[i];
        assert_eq!(o[i].to_bits(), want.to_bits(), "x {} u {}: {} vs {want}", g[i], u[i], o[i]);
    }
}

#[test]
fn gelu_uses_the_f16_table() {
    let t = gelu_table();
    // ggml: x rounded to f16, table value rounded to f16; identity above 10, 0 below -10.
    assert_eq!(gelu(12.0, t), 12.0);
    assert_eq!(gelu(-12.0, t), 0.0);
    let x = 0.7f32;
    let want = f16_to_f32(f32_to_f16(gelu_f32(f16_to_f32(f32_to_f16(x)))));
    assert_eq!(gelu(x, t), want);
    assert!((gelu(1.0, t) - 0.841_192).abs() < 1e-3);
}

#[rstest]
// The probabilities are rounded to F16 (as ggml's V·p): 1/3 -> 0.33325195.
#[case::causal(None, vec![0.0, 0.5, 3.0 * f16_to_f32(f32_to_f16(1.0 / 3.0))])]
#[case::window_1(Some(1), vec![0.0, 1.0, 2.0])]
fn attention_is_causal_and_windowed(#[case] window: Option<usize>, #[case] want: Vec<f32>) {
    let be = CpuFast;
    let q = FastTensor::new(3, 1, vec![0.0; 3]);
    let k = FastTensor::new(3, 1, vec![0.0; 3]);
    let v = FastTensor::new(3, 1, vec![0.0, 1.0, 2.0]);
    let p = AttnParams { n_head: 1, n_head_kv: 1, head_dim: 1, v_head_dim: 1, scale: 1.0, window, softcap: None };
    let o = crate::ops::attend_explicit(&be, &q, &k, &v, &[0, 1, 2], &p, None).map(|t| be.to_host(&t).unwrap());
    assert_eq!(o.ok(), Some(want));
}

/// `rotated` is the dim that dim 0 rotates into, `still` one that stays 0.
#[rstest]
#[case::normal(RopeStyle::Normal, 1, 2)]
#[case::neox(RopeStyle::Neox, 2, 1)]
fn rope_pairing_normal_vs_neox(#[case] style: RopeStyle, #[case] rotated: usize, #[case] still: usize) {
    let be = CpuFast;
    let x = FastTensor::new(1, 4, vec![1.0, 0.0, 0.0, 0.0]);
    let p = RopeParams { style, n_rot: 4, freq_base: 10000.0, freq_scale: 1.0, yarn: None, freq_factors: None };
    let n = be.rope(&x, 1, 4, &b_at(&[1]), &p).map(|t| be.to_host(&t).unwrap()).unwrap_or_default();
    assert!((n[rotated] - 1f32.sin()).abs() < 1e-6 && n[still] == 0.0);
}

/// Repacked panels: the rows come back unchanged, and the panel kernels give the row kernels'
/// bits (both ISAs, signed and + 128 Q8_0 codes, tail rows, batches of activation rows taken
/// one and two at a time). `no_min`: no Q8_0 code is −128, so signed panels take the kernel
/// with the sign trick on the activation (`Q8Codes::SignedNoMin`); otherwise random codes,
/// −128 among them (the weight-side trick).
#[rstest]
#[case::q4_0(GgmlType::Q4_0, false)]
#[case::q4_1(GgmlType::Q4_1, false)]
#[case::q5_0(GgmlType::Q5_0, false)]
#[case::q5_1(GgmlType::Q5_1, false)]
#[case::q8_0(GgmlType::Q8_0, false)]
#[case::q8_0_no_min(GgmlType::Q8_0, true)]
fn panels_match_row_kernels(
    #[case] ty: GgmlType,
    #[case] no_min: bool,
    // (8, 70): blocks past `panel_core`'s runs of precomputed scales (32, 32, then 6).
    #[values((4, 1), (9, 3), (18, 18), (8, 70))] shape: (usize, usize),
    #[values(false, true)] biased: bool,
) {
    use super::panel::{Panels, Q8Codes};
    let (m, nb) = shape;
    let mut raw = weight_rows(ty, m, nb, 5, None);
    let ts = ty.type_size();
    if ty == GgmlType::Q8_0 {
        for blk in raw.chunks_exact_mut(ts) {
            // Codes at the ends of i8 either way: ±127 (and −128 where allowed) in every block.
            blk[2] = 0x7f;
            blk[3] = 0x81;
            blk[4] = if no_min { 0x81 } else { 0x80 };
            if no_min {
                blk[5..].iter_mut().filter(|q| **q == 0x80).for_each(|q| *q = 0x81);
            }
        }
    }
    let rb = nb * ts;
    let Some(pn) = Panels::new(ty, &raw, nb, m, biased) else { panic!("{ty}") };
    if ty == GgmlType::Q8_0 {
        let want = match (biased, no_min) {
            (true, _) => Q8Codes::Biased,
            (false, true) => Q8Codes::SignedNoMin,
            (false, false) => Q8Codes::Signed,
        };
        assert_eq!(pn.q8_codes(), want);
    }
    let mut row = vec![0u8; rb];
    for r in 0..m {
        pn.row(r, &mut row);
        assert_eq!(row, &raw[r * rb..(r + 1) * rb], "{ty} row {r}");
    }
    for isa in isas() {
        if biased && !matches!(isa, Isa::Vnni | Isa::Vnni512) {
            continue;
        }
        // Activation rows one, two (a pair: panel4n), five (pairs and a single), eight and eleven
        // (the panel unpacked once for all rows; with AVX-512 groups of four — + 128 Q8_0,
        // Q4_0 and Q5_0 in `panel_asm512`'s assembly, many groups a call — then a pair and a
        // single) at a time; 133: more groups than one assembly call takes (`MAX_GROUPS`).
        for n in [1, 2, 5, 8, 11, 133] {
            let x = signal(n * nb * 32, 77);
            let acts = matmul::quantize_acts(matmul::ActKind::Q8, &x, nb * 32);
            let qm = matmul::QMatrix { ty, k: nb * 32, m, row_bytes: rb, data: &[], panels: Some(&pn) };
            // The output buffer comes from the arena with stale values (`take_for_overwrite`):
            // NaN there, so an element the kernels do not write fails the comparison.
            crate::arena::give(vec![f32::NAN; m * n]);
            let got = matmul::matmul_q(isa, &qm, &acts, &vec![n as u32; n]);
            let qr = matmul::QMatrix { ty, k: nb * 32, m, row_bytes: rb, data: &raw, panels: None };
            crate::arena::give(vec![f32::NAN; m * n]);
            let want = matmul::matmul_q(isa, &qr, &acts, &vec![n as u32; n]);
            assert_eq!(got, want, "{isa:?} {ty} m {m} nb {nb} biased {biased} rows {n}");
        }
    }
}

/// A k-quant matmul over a batch of two sequences, one of 9 rows (llama.cpp's tiled formula:
/// `ktile`, each weight row unpacked once) and one of 3 (its vec_dot kernels): every output
/// equals the per-row scalar reference of its formula, on every ISA and weight-row count.
#[rstest]
#[case::q2_k(GgmlType::Q2_K)]
#[case::q4_k(GgmlType::Q4_K)]
#[case::q5_k(GgmlType::Q5_K)]
#[case::q6_k(GgmlType::Q6_K)]
fn kquant_batch_takes_each_sequences_formula(#[case] ty: GgmlType, #[values(5, 8)] m: usize) {
    let nb = 3;
    let k = nb * 256;
    let raw = weight_rows(ty, m, nb, 9, None);
    let rb = nb * ty.type_size();
    let seq_rows: Vec<u32> = [vec![9u32; 9], vec![3u32; 3]].concat();
    let n = seq_rows.len();
    let x = signal(n * k, 31);
    let acts = matmul::quantize_acts(matmul::ActKind::Q8K, &x, k);
    let matmul::Acts::Q8K(a) = &acts else { panic!("Q8_K activations expected") };
    let qm = matmul::QMatrix { ty, k, m, row_bytes: rb, data: &raw, panels: None };
    let mut list = isas();
    list.push(Isa::Scalar);
    for isa in list {
        let got = matmul::matmul_q(isa, &qm, &acts, &seq_rows);
        for t in 0..n {
            for j in 0..m {
                let (row, at) = (&raw[j * rb..(j + 1) * rb], &a[t * nb..(t + 1) * nb]);
                let mut want = [0f32];
                matmul::dot_rows_q8k(Isa::Scalar, ty, &[row], at, &mut want, seq_rows[t] >= 8);
                assert_eq!(got[t * m + j].to_bits(), want[0].to_bits(), "{isa:?} {ty} m {m} [{t},{j}]");
            }
        }
    }
}

/// The SIMD softmax and SwiGLU (ggml's vector exp) are bit-identical to the scalar references,
/// extremes and masked entries included.
#[rstest]
fn simd_softmax_and_swiglu_match_reference(#[values(1, 7, 16, 33, 200, 256)] n: usize) {
    if !super::simd::has_avx2() {
        eprintln!("NOT RUN: no AVX2");
        return;
    }
    let mut w: Vec<f32> = signal(n, 3).iter().map(|v| v * 30.0).collect();
    for i in (0..n).step_by(5) {
        w[i] = f32::NEG_INFINITY;
    }
    w[0] = 1.0;
    if n > 3 {
        w[3] = -150.0;
    }
    let mut a = w.clone();
    attn::softmax_ref(&mut a, 16);
    #[cfg(target_arch = "x86_64")]
    {
        let mut b = w.clone();
        // SAFETY: AVX2/FMA/F16C checked above.
        unsafe { super::simd::half::softmax::<true>(&mut b) };
        assert_eq!(a, b, "softmax {n}");
        let g: Vec<f32> = signal(n, 4).iter().map(|v| v * 40.0).collect();
        let u = signal(n, 5);
        let (mut o1, mut o2) = (vec![0f32; n], vec![0f32; n]);
        swiglu_row_ref(&g, &u, &mut o1, 16);
        // SAFETY: as above.
        unsafe { super::simd::half::swiglu_row::<true>(&g, &u, &mut o2) };
        assert_eq!(o1, o2, "swiglu {n}");
    }
}

/// The AVX2 build's exp: close to `exp` over the range where ggml documents ~1.5 ulp, the same
/// as the AVX-512 variant wherever neither scaling path is taken and both round alike (they
/// differ in the last step: `k + j·k` against `scalef(j + 1)`), and its edges: 0 and ∞ beyond
/// `|n| > 192`, subnormals through the two-factor path.
#[test]
fn avx2_expf_edges_and_accuracy() {
    let mut worst = 0f64;
    let mut x = -104.0f32;
    while x < 88.5 {
        let got = f64::from(attn::ggml_expf_avx2(x));
        let want = f64::from(x).exp();
        if want > 1e-37 && want < 1e38 {
            worst = worst.max(((got - want) / want).abs());
        }
        x += 0.0173;
    }
    assert!(worst < 3e-7, "worst relative error {worst:e}");
    assert_eq!(attn::ggml_expf_avx2(0.0), 1.0);
    assert_eq!(attn::ggml_expf_avx2(f32::NEG_INFINITY), 0.0);
    assert_eq!(attn::ggml_expf_avx2(-200.0), 0.0);
    assert_eq!(attn::ggml_expf_avx2(200.0), f32::INFINITY);
    let sub = attn::ggml_expf_avx2(-100.0);
    assert!(sub > 0.0 && sub < 1e-43, "{sub:e}");
    // The two formulas are different functions: some inputs round differently.
    let differ = (0..20_000)
        .map(|i| -20.0 + i as f32 * 0.002)
        .filter(|&x| attn::ggml_expf(x) != attn::ggml_expf_avx2(x))
        .count();
    assert!(differ > 0, "the AVX2 exp should not be the AVX-512 one");
}

/// The 8-lane tier's SIMD helpers equal its scalar references bit for bit (dot products over
/// lengths with and without tails, softmax with masked entries, a partial last chunk and
/// subnormal exponentials, SwiGLU over both sides of the exp's scaling ranges), and the vector
/// AVX2 exp equals the scalar port on values that take each of its paths.
#[rstest]
fn eight_lane_simd_matches_reference(#[values(8, 24, 64, 100, 256)] n: usize) {
    if !super::simd::has_avx2() {
        eprintln!("NOT RUN: no AVX2");
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::half;
        let q = signal(n, 1);
        let k: Vec<u16> = signal(n, 2).iter().map(|&v| crate::quant::f32_to_f16(v)).collect();
        if n.is_multiple_of(8) {
            // SAFETY: AVX2/FMA/F16C checked above.
            assert_eq!(
                unsafe { half::dot_tiny8(&k, &q) }.to_bits(),
                attn::dot_tiny_ref(&k, &q, 8).to_bits(),
                "tiny8 {n}"
            );
        }
        if n.is_multiple_of(32) {
            // SAFETY: as above.
            assert_eq!(unsafe { half::dot_vec8(&k, &q) }.to_bits(), attn::dot_vec_ref(&k, &q, 8).to_bits(), "vec8 {n}");
        }
        let mut w: Vec<f32> = signal(n, 3).iter().map(|v| v * 60.0).collect();
        for i in (0..n).step_by(5) {
            w[i] = f32::NEG_INFINITY;
        }
        w[1] = 40.0;
        if n > 3 {
            w[3] = -95.0; // exp(-135): a subnormal through the two-factor path
        }
        let (mut a, mut b) = (w.clone(), w.clone());
        attn::softmax_ref(&mut a, 8);
        // SAFETY: as above.
        unsafe { half::softmax::<false>(&mut b) };
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "softmax::<false> {n}"
        );
        let g: Vec<f32> = signal(n, 4).iter().map(|v| v * 140.0).collect();
        let u = signal(n, 5);
        let (mut o1, mut o2) = (vec![0f32; n], vec![0f32; n]);
        swiglu_row_ref(&g, &u, &mut o1, 8);
        // SAFETY: as above.
        unsafe { half::swiglu_row::<false>(&g, &u, &mut o2) };
        assert_eq!(
            o1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            o2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "swiglu8 {n}"
        );
        for base in [-200.0f32, -120.0, -100.0, -88.0, -10.0, 0.0, 10.0, 85.0, 88.5, 120.0, 200.0] {
            let xs: [f32; 8] = std::array::from_fn(|l| base + l as f32 * 0.731);
            // SAFETY: as above.
            let got = unsafe {
                use std::arch::x86_64::*;
                let mut o = [0f32; 8];
                _mm256_storeu_ps(o.as_mut_ptr(), half::expf8_avx2(_mm256_loadu_ps(xs.as_ptr())));
                o
            };
            assert_eq!(got.map(f32::to_bits), xs.map(attn::ggml_expf_avx2).map(f32::to_bits), "expf8_avx2 {base}");
        }
    }
}

/// The 8-lane tier's reductions: `tinyBLAS<8>` and softmax take `hsum` ((0+2)+(1+3) after
/// folding the halves), `ggml_vec_dot_f16` takes `GGML_F32x8_REDUCE`'s hadds ((0+1)+(2+3)).
#[test]
fn eight_lane_tier_orders() {
    // Values whose sum depends on the order of additions.
    let v = [1e8f32, 1.0, -1e8, 1.0, 3.0, 0.5, 7.0, 0.25];
    let t: [f32; 4] = std::array::from_fn(|i| v[i] + v[i + 4]);
    assert_eq!(attn::reduce8_hadd(&v), (t[0] + t[1]) + (t[2] + t[3]));
    assert_eq!(super::dot::hsum8(&v), (t[0] + t[2]) + (t[1] + t[3]));
    // dot_tiny_ref with 8 lanes: lane l sums l, l + 8, ...
    let n = 32;
    let q = signal(n, 1);
    let k: Vec<u16> = signal(n, 2).iter().map(|&v| crate::quant::f32_to_f16(v)).collect();
    let mut acc = [0f32; 8];
    for (e, (&kv, &qv)) in k.iter().zip(&q).enumerate() {
        acc[e % 8] = f16_to_f32(kv).mul_add(qv, acc[e % 8]);
    }
    assert_eq!(attn::dot_tiny_ref(&k, &q, 8).to_bits(), super::dot::hsum8(&acc).to_bits());
    // dot_vec_ref with 8 lanes: 4 accumulators stepping by 32, (0+2)+(1+3), then the hadds.
    let mut s = [[0f32; 8]; 4];
    for (e, (&kv, &qv)) in k.iter().zip(&q).enumerate() {
        let (j, l) = ((e % 32) / 8, e % 8);
        s[j][l] = f16_to_f32(kv).mul_add(qv, s[j][l]);
    }
    let x: [f32; 8] = std::array::from_fn(|l| (s[0][l] + s[2][l]) + (s[1][l] + s[3][l]));
    assert_eq!(attn::dot_vec_ref(&k, &q, 8).to_bits(), (attn::reduce8_hadd(&x) as f64 as f32).to_bits());
    // Softmax in chunks of 8 with the AVX2 exp.
    let mut w = signal(20, 3);
    let max = w.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let e: Vec<f32> = w.iter().map(|&x| attn::ggml_expf_avx2(x - max)).collect();
    let mut sum = 0f64;
    for ch in e.chunks(8) {
        let mut a = [0f32; 8];
        a[..ch.len()].copy_from_slice(ch);
        sum += f64::from(super::dot::hsum8(&a));
    }
    let inv = (1.0 / sum) as f32;
    attn::softmax_ref(&mut w, 8);
    for (got, want) in w.iter().zip(&e) {
        assert_eq!(got.to_bits(), (want * inv).to_bits());
    }
}

/// The SIMD exp itself (the vector exp of the softmax and SwiGLU above) over a range, with the
/// slow lanes: bit-identical to the scalar `ggml_expf`.
#[cfg(target_arch = "x86_64")]
#[rstest]
fn simd_expf_matches_reference(#[values(-120.0, -90.0, -10.0, 0.0, 10.0, 85.0, 120.0)] base: f32) {
    if !super::simd::has_avx2() {
        eprintln!("NOT RUN: no AVX2");
        return;
    }
    let xs: [f32; 8] = std::array::from_fn(|l| base + l as f32 * 0.731);
    // SAFETY: AVX2/FMA/F16C checked above.
    let got = unsafe {
        use std::arch::x86_64::*;
        let mut o = [0f32; 8];
        _mm256_storeu_ps(o.as_mut_ptr(), super::simd::half::expf8(_mm256_loadu_ps(xs.as_ptr())));
        o
    };
    let want = xs.map(attn::ggml_expf);
    assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{base}");
}

/// The SIMD F16 rounding of the attention (query rows, probabilities) equals `half`'s scalar
/// round trip bit for bit: ties to even, subnormal and overflowing values, ±0, ±∞, NaN, and a
/// tail shorter than a vector.
#[test]
fn round_f16_simd_matches_scalar() {
    if !super::simd::has_avx2() {
        eprintln!("NOT RUN: no AVX2");
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut x: Vec<f32> = vec![
            0.0,
            -0.0,
            1.0 + 1.0 / 2048.0, // a tie between two F16 values: to even
            1.0 + 3.0 / 2048.0, // a tie: to even (up)
            6.0e-8,             // F16 subnormal range
            1.0e-9,             // below it: 0
            65504.0,            // F16 max
            65520.0,            // rounds to ∞
            -1.0e6,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.1,
        ];
        x.extend((0..37).map(|i| (i as f32 * 0.37).sin() * 10f32.powi(i % 9 - 4)));
        let want: Vec<u32> =
            x.iter().map(|&v| crate::quant::f16_to_f32(crate::quant::f32_to_f16(v)).to_bits()).collect();
        let mut got = x.clone();
        // SAFETY: has_avx2() covers AVX2, FMA and F16C (checked above).
        unsafe { super::simd::half::round_f16(&mut got) };
        assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
    }
}

/// A matmul's tasks cover its weight rows once, in order, each starting on a whole panel; a
/// batch's tasks shrink toward the end (guided), a decode step's are equal.
#[rstest]
fn matmul_tasks_cover_the_rows_once(
    #[values(1, 3, 4, 18, 128, 896, 4866, 151936)] m: usize,
    #[values(896, 4864)] k: usize,
    #[values(1, 8, 128)] n: usize,
) {
    let tasks = matmul::task_rows(m, k, n);
    let mut next = 0;
    for &(r0, nr) in &tasks {
        assert_eq!(r0, next, "m {m} k {k} n {n}: {tasks:?}");
        assert!(nr > 0 && r0 % super::panel::PR == 0, "m {m} k {k} n {n}: {tasks:?}");
        next = r0 + nr;
    }
    assert_eq!(next, m, "m {m} k {k} n {n}: {tasks:?}");
    let sizes: Vec<usize> = tasks.iter().map(|t| t.1).collect();
    let body = &sizes[..sizes.len() - 1];
    if n >= 8 {
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "not shrinking: {sizes:?}");
    } else {
        assert!(body.windows(2).all(|w| w[0] == w[1]), "not equal: {sizes:?}");
    }
}

/// Several matrices of one input in one parallel loop (`matmul_q_multi`: q, k, v; gate, up)
/// give each matrix's own `matmul_q`, bit for bit: mixed 32-element types, panels with tail
/// rows and a matrix without panels, a decode row and batches, on every ISA.
#[rstest]
fn multi_matmul_matches_one_at_a_time(#[values(1, 8, 11)] n: usize) {
    use super::panel::Panels;
    let nb = 40;
    let k = nb * 32;
    let specs =
        [(GgmlType::Q8_0, 9, true), (GgmlType::Q5_0, 18, true), (GgmlType::Q4_0, 4, true), (GgmlType::Q8_0, 6, false)];
    let raws: Vec<Vec<u8>> =
        specs.iter().enumerate().map(|(i, &(ty, m, _))| weight_rows(ty, m, nb, 40 + i as u64, None)).collect();
    let panels: Vec<Option<Panels>> = specs
        .iter()
        .zip(&raws)
        .map(|(&(ty, m, p), raw)| if p { Panels::new(ty, raw, nb, m, false) } else { None })
        .collect();
    let qms: Vec<matmul::QMatrix<'_>> = specs
        .iter()
        .zip(&raws)
        .zip(&panels)
        .map(|((&(ty, m, _), raw), pn)| matmul::QMatrix {
            ty,
            k,
            m,
            row_bytes: nb * ty.type_size(),
            data: raw,
            panels: pn.as_ref(),
        })
        .collect();
    let refs: Vec<&matmul::QMatrix<'_>> = qms.iter().collect();
    let x = signal(n * k, 5);
    let acts = matmul::quantize_acts(matmul::ActKind::Q8, &x, k);
    let seq = vec![n as u32; n];
    for isa in isas() {
        // Stale NaN in the arena: an output element left unwritten fails the comparison.
        for q in &qms {
            crate::arena::give(vec![f32::NAN; q.m * n]);
        }
        let got = matmul::matmul_q_multi(isa, &refs, &acts, &seq);
        for (q, g) in qms.iter().zip(&got) {
            let want = matmul::matmul_q(isa, q, &acts, &seq);
            let same = g.len() == want.len() && g.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{isa:?} {} m {} rows {n}", q.ty, q.m);
        }
    }
}
