//! LongRoPE (phi3's `rope_factors_*`): both CPU backends against ggml's rope with frequency
//! factors written out in f64 — pair `i`'s angle `p · base^(-2i/n_rot) / ff[i]`, then ggml's
//! rope_yarn (the YaRN blend when `ext_factor` ≠ 0) and cos/sin times mscale. Each test takes
//! the backend as an `rstest` case (`exact`: `Cpu`, `fast`: `CpuFast`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::cpu::Cpu;
use super::cpu_fast::CpuFast;
use crate::kv::CpuBatch;
use crate::ops::{Ops, RopeParams, RopeStyle, Yarn};
use orcd_engine::testing::signal;
use rstest::rstest;

/// A CPU batch of sequence 0 at `pos` (op tests).
#[allow(dead_code)]
fn b_at(pos: &[u32]) -> crate::kv::CpuBatch {
    crate::kv::CpuBatch::new(&crate::ops::rows_at(pos)).unwrap()
}

fn nmse(a: &[f32], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - y).powi(2)).sum();
    num / b.iter().map(|y| y * y).sum::<f64>()
}

/// ggml's rope with freq_factors, NeoX pairing, n_rot = head_dim, f64.
fn formula(x: &[f32], n_head: usize, hd: usize, pos: &[u32], p: &RopeParams) -> Vec<f64> {
    let half = hd / 2;
    let base = f64::from(p.freq_base);
    let fs = f64::from(p.freq_scale);
    let mut out: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for (r, &ps) in pos.iter().enumerate() {
        for h in 0..n_head {
            for i in 0..half {
                let ff = p.freq_factors.as_ref().map_or(1.0, |f| f64::from(f[i]));
                let extrap = f64::from(ps) * base.powf(-2.0 * i as f64 / hd as f64) / ff;
                let (theta, ms) = match p.yarn {
                    Some(y) if y.ext_factor != 0.0 => {
                        let c = y.corr_dims(hd, p.freq_base);
                        let (lo, hi) = (f64::from(c[0]), f64::from(c[1]));
                        let ramp =
                            (1.0 - ((i as f64 - lo) / (hi - lo).max(0.001)).clamp(0.0, 1.0)) * f64::from(y.ext_factor);
                        let ms = f64::from(y.attn_factor) * (1.0 + 0.1 * (1.0 / fs).ln());
                        (fs * extrap * (1.0 - ramp) + extrap * ramp, ms)
                    }
                    Some(y) => (fs * extrap, f64::from(y.attn_factor)),
                    None => (fs * extrap, 1.0),
                };
                let (a, b) = (r * n_head * hd + h * hd + i, r * n_head * hd + h * hd + i + half);
                let (x0, x1) = (f64::from(x[a]), f64::from(x[b]));
                out[a] = (x0 * theta.cos() - x1 * theta.sin()) * ms;
                out[b] = (x0 * theta.sin() + x1 * theta.cos()) * ms;
            }
        }
    }
    out
}

fn factors(n: usize, lo: f32, hi: f32) -> Arc<[f32]> {
    signal(n, 11).iter().map(|v| lo + (v + 1.0) * 0.5 * (hi - lo)).collect()
}

fn plain() -> RopeParams {
    RopeParams {
        style: RopeStyle::Neox,
        n_rot: 32,
        freq_base: 10_000.0,
        freq_scale: 1.0,
        yarn: None,
        freq_factors: Some(factors(16, 1.0, 4.0)),
    }
}

/// phi3: rope.scaling.attn_factor as ggml's mscale with ext_factor 0.
fn attn_factor() -> RopeParams {
    let af = Yarn { ext_factor: 0.0, attn_factor: 1.19, beta_fast: 32.0, beta_slow: 1.0, n_ctx_orig: 4096 };
    RopeParams { yarn: Some(af), ..plain() }
}

fn attn_factor_large_factors() -> RopeParams {
    RopeParams { freq_factors: Some(factors(16, 1.0, 40.0)), ..attn_factor() }
}

/// Factors under YaRN's blend and a linear scale (ggml divides before rope_yarn).
fn yarn_linear() -> RopeParams {
    let af = attn_factor().yarn.unwrap();
    RopeParams { yarn: Some(Yarn { ext_factor: 1.0, ..af }), freq_scale: 0.25, ..plain() }
}

#[rstest]
#[case::exact(Cpu, 1e-12)]
#[case::fast(CpuFast, 1e-7)]
fn longrope_factors_and_attn_factor_match_ggml_formula<B: Ops<Batch = CpuBatch>>(
    #[case] b: B,
    #[case] tol: f64,
    #[values(plain(), attn_factor(), attn_factor_large_factors(), yarn_linear())] p: RopeParams,
) {
    let (n_head, hd) = (3, 32);
    let pos = [0u32, 1, 7, 300, 4000, 70_000];
    let x = signal(pos.len() * n_head * hd, 5);
    let want = formula(&x, n_head, hd, &pos, &p);
    let e = b.rope(&b.tensor_from_host(pos.len(), n_head * hd, &x).unwrap(), n_head, hd, &b_at(&pos), &p).unwrap();
    let n = nmse(&b.to_host(&e).unwrap(), &want);
    assert!(n <= tol, "{} NMSE {n:.2e} for {p:?}", b.name());
}

/// Factors of 1 change nothing, bit for bit.
#[rstest]
#[case::exact(Cpu)]
#[case::fast(CpuFast)]
fn longrope_unit_factors_change_nothing<B: Ops<Batch = CpuBatch>>(#[case] b: B) {
    let x = signal(4 * 32, 3);
    let pos = [0u32, 3, 90, 2000];
    let ones = RopeParams { freq_factors: Some(vec![1.0; 16].into()), ..plain() };
    let none = RopeParams { freq_factors: None, ..plain() };
    let run = |p: &RopeParams| {
        let t = b.tensor_from_host(4, 32, &x).unwrap();
        b.to_host(&b.rope(&t, 1, 32, &b_at(&pos), p).unwrap()).unwrap()
    };
    assert_eq!(run(&ones), run(&none));
}

#[rstest]
#[case::exact(Cpu)]
#[case::fast(CpuFast)]
fn longrope_factor_count_is_checked<B: Ops<Batch = CpuBatch>>(#[case] b: B) {
    let p = RopeParams {
        style: RopeStyle::Neox,
        n_rot: 32,
        freq_base: 10_000.0,
        freq_scale: 1.0,
        yarn: None,
        freq_factors: Some(vec![1.0; 15].into()),
    };
    let x = signal(32, 1);
    assert!(b.rope(&b.tensor_from_host(1, 32, &x).unwrap(), 1, 32, &b_at(&[0]), &p).is_err());
}
