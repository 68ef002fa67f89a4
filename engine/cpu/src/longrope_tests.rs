//! LongRoPE (phi3's `rope_factors_*`): both CPU backends against ggml's rope with frequency
//! factors written out in f64 — pair `i`'s angle `p · base^(-2i/n_rot) / ff[i]`, then ggml's
//! rope_yarn (the YaRN blend when `ext_factor` ≠ 0) and cos/sin times mscale.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::cpu::Cpu;
use super::cpu_fast::CpuFast;
use crate::ops::{Ops, RopeParams, RopeStyle, Yarn};

/// A CPU batch of sequence 0 at `pos` (op tests).
#[allow(dead_code)]
fn b_at(pos: &[u32]) -> crate::kv::CpuBatch {
    crate::kv::CpuBatch::new(&crate::ops::rows_at(pos)).unwrap()
}

fn signal(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
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

fn check(p: &RopeParams) {
    let (n_head, hd) = (3, 32);
    let pos = [0u32, 1, 7, 300, 4000, 70_000];
    let x = signal(pos.len() * n_head * hd, 5);
    let want = formula(&x, n_head, hd, &pos, p);
    let e = Cpu.rope(&Cpu.tensor_from_host(pos.len(), n_head * hd, &x).unwrap(), n_head, hd, &b_at(&pos), p).unwrap();
    let f = CpuFast
        .rope(&CpuFast.tensor_from_host(pos.len(), n_head * hd, &x).unwrap(), n_head, hd, &b_at(&pos), p)
        .unwrap();
    let (ne, nf) = (nmse(&Cpu.to_host(&e).unwrap(), &want), nmse(&CpuFast.to_host(&f).unwrap(), &want));
    assert!(ne <= 1e-12, "exact NMSE {ne:.2e} for {p:?}");
    assert!(nf <= 1e-7, "fast NMSE {nf:.2e} for {p:?}");
}

fn factors(n: usize, lo: f32, hi: f32) -> Arc<[f32]> {
    signal(n, 11).iter().map(|v| lo + (v + 1.0) * 0.5 * (hi - lo)).collect()
}

#[test]
fn longrope_factors_and_attn_factor_match_ggml_formula() {
    let plain = RopeParams {
        style: RopeStyle::Neox,
        n_rot: 32,
        freq_base: 10_000.0,
        freq_scale: 1.0,
        yarn: None,
        freq_factors: Some(factors(16, 1.0, 4.0)),
    };
    check(&plain);
    // phi3: rope.scaling.attn_factor as ggml's mscale with ext_factor 0.
    let af = Yarn { ext_factor: 0.0, attn_factor: 1.19, beta_fast: 32.0, beta_slow: 1.0, n_ctx_orig: 4096 };
    check(&RopeParams { yarn: Some(af), ..plain.clone() });
    check(&RopeParams { yarn: Some(af), freq_factors: Some(factors(16, 1.0, 40.0)), ..plain.clone() });
    // Factors under YaRN's blend and a linear scale (ggml divides before rope_yarn).
    let y = Yarn { ext_factor: 1.0, ..af };
    check(&RopeParams { yarn: Some(y), freq_scale: 0.25, ..plain.clone() });
    // Factors of 1 change nothing, bit for bit.
    let x = signal(4 * 32, 3);
    let pos = [0u32, 3, 90, 2000];
    let ones = RopeParams { freq_factors: Some(vec![1.0; 16].into()), ..plain.clone() };
    let none = RopeParams { freq_factors: None, ..plain.clone() };
    let run = |p: &RopeParams| {
        let t = CpuFast.tensor_from_host(4, 32, &x).unwrap();
        CpuFast.to_host(&CpuFast.rope(&t, 1, 32, &b_at(&pos), p).unwrap()).unwrap()
    };
    assert_eq!(run(&ones), run(&none));
}

#[test]
fn longrope_factor_count_is_checked() {
    let p = RopeParams {
        style: RopeStyle::Neox,
        n_rot: 32,
        freq_base: 10_000.0,
        freq_scale: 1.0,
        yarn: None,
        freq_factors: Some(vec![1.0; 15].into()),
    };
    let x = signal(32, 1);
    assert!(Cpu.rope(&Cpu.tensor_from_host(1, 32, &x).unwrap(), 1, 32, &b_at(&[0]), &p).is_err());
    assert!(CpuFast.rope(&CpuFast.tensor_from_host(1, 32, &x).unwrap(), 1, 32, &b_at(&[0]), &p).is_err());
}
