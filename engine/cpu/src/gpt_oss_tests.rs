//! The gpt-oss ops (YaRN RoPE, attention sinks, MoE routing, `matmul_id`, clamped SwiGLU,
//! `moe_combine`, the MXFP4 × Q8_0 dot) on both CPU backends against plain scalar formulas
//! written here in f64. Tolerances (DESIGN §5, from llama.cpp's test-backend-ops): NMSE ≤ 1e-7
//! by default, ≤ 5e-4 for matmul and attention on the fast backend (8-bit activations, F16 KV).
//! Each test takes the backend as an `rstest` case (`exact`: `Cpu`, `fast`: `CpuFast`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::cpu::Cpu;
use super::cpu_fast::act::{quantize_q8, Q8Block};
use super::cpu_fast::{dot, CpuFast};
use crate::gguf::{GgmlType, GgufFile, GgufWriter};
use crate::kv::CpuBatch;
use crate::ops::attend_explicit;
use crate::ops::{AttnParams, Ops, RopeParams, RopeStyle, Yarn};
use rstest::rstest;

/// A CPU batch of sequence 0 at `pos` (op tests).
#[allow(dead_code)]
fn b_at(pos: &[u32]) -> crate::kv::CpuBatch {
    crate::kv::CpuBatch::new(&crate::ops::rows_at(pos)).unwrap()
}

fn signal(n: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut r = orcd_engine::testing::XorShift::new(seed);
    (0..n).map(|_| (r.unit() - 0.5) * 2.0 * amp).collect()
}

fn nmse(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    num / den
}

/// A GGUF file holding the given tensors (name, type, dims, f32 values quantized to the type).
fn file(tensors: &[(&str, GgmlType, Vec<u64>, Vec<f32>)]) -> GgufFile {
    let mut w = GgufWriter::new();
    for (name, ty, dims, v) in tensors {
        let data = crate::quant::quantize(*ty, v).unwrap();
        w.add_tensor(name, *ty, dims, data).unwrap();
    }
    GgufFile::from_bytes(w.to_bytes().0).unwrap()
}

/// The weights of `gf` as backend `b` loads them, by name.
fn weights<'a, B: Ops>(b: &'a B, gf: &'a GgufFile) -> impl Fn(&str) -> B::Weight + 'a {
    move |n: &str| b.load_weight(gf, gf.tensor(n).unwrap()).unwrap()
}

fn yarn() -> Yarn {
    Yarn { ext_factor: 1.0, attn_factor: 1.0, beta_fast: 32.0, beta_slow: 1.0, n_ctx_orig: 4096 }
}

/// ggml's rope_yarn, NeoX pairing, written out in f64.
fn rope_formula(x: &[f32], n_head: usize, hd: usize, pos: &[u32], base: f64, fs: f64, y: Option<Yarn>) -> Vec<f64> {
    let half = hd / 2;
    let corr =
        |beta: f64, n_ctx: f64| hd as f64 * (n_ctx / (beta * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln());
    let mut out: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for (r, &p) in pos.iter().enumerate() {
        for h in 0..n_head {
            for i in 0..half {
                let extrap = f64::from(p) * base.powf(-2.0 * i as f64 / hd as f64);
                let (theta, ms) = match y {
                    Some(y) => {
                        let n = y.n_ctx_orig as f64;
                        let lo = corr(f64::from(y.beta_fast), n).floor().max(0.0);
                        let hi = corr(f64::from(y.beta_slow), n).ceil().min(hd as f64 - 1.0);
                        let ramp =
                            (1.0 - ((i as f64 - lo) / (hi - lo).max(0.001)).clamp(0.0, 1.0)) * f64::from(y.ext_factor);
                        let ms = f64::from(y.attn_factor) * (1.0 + 0.1 * (1.0 / fs).ln());
                        (fs * extrap * (1.0 - ramp) + extrap * ramp, ms)
                    }
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

#[rstest]
#[case::exact(Cpu, Some(yarn()))]
#[case::fast(CpuFast, Some(yarn()))]
// Without YaRN the same op is linear scaling.
#[case::exact_linear(Cpu, None)]
fn yarn_rope_matches_ggml_formula<B: Ops<Batch = CpuBatch>>(#[case] b: B, #[case] y: Option<Yarn>) {
    let (n_head, hd) = (2, 16);
    let pos = [0u32, 7, 100, 3000];
    let x = signal(pos.len() * n_head * hd, 1, 1.0);
    let p = RopeParams {
        style: RopeStyle::Neox,
        n_rot: hd,
        freq_base: 150_000.0,
        freq_scale: 1.0 / 32.0,
        yarn: y,
        freq_factors: None,
    };
    if let Some(y) = y {
        // The ramp must be partial somewhere, or the test would not exercise the blend.
        let c = y.corr_dims(hd, 150_000.0);
        assert!(c[0] > 0.0 && c[1] < (hd / 2) as f32, "corr dims {c:?}");
    }
    let want = rope_formula(&x, n_head, hd, &pos, 150_000.0, 1.0 / 32.0, y);
    let e = b.rope(&b.tensor_from_host(pos.len(), n_head * hd, &x).unwrap(), n_head, hd, &b_at(&pos), &p).unwrap();
    let ne = nmse(&b.to_host(&e).unwrap(), &want);
    assert!(ne <= 1e-7, "NMSE {} {ne:.2e}", b.name());
}

/// Attention with per-head sinks, f64.
#[allow(clippy::too_many_arguments)]
fn attn_formula(q: &[f32], k: &[f32], v: &[f32], pos: &[u32], p: &AttnParams, sinks: &[f32]) -> Vec<f64> {
    let (hd, n) = (p.head_dim, pos.len());
    let g = p.n_head / p.n_head_kv;
    let mut out = vec![0f64; n * p.n_head * hd];
    for i in 0..n {
        for h in 0..p.n_head {
            let kh = h / g;
            let mut s = vec![f64::NEG_INFINITY; n];
            for j in 0..n {
                let vis = pos[j] <= pos[i] && p.window.is_none_or(|w| ((pos[i] - pos[j]) as usize) < w);
                if vis {
                    s[j] = (0..hd)
                        .map(|d| {
                            f64::from(q[i * p.n_head * hd + h * hd + d])
                                * f64::from(k[j * p.n_head_kv * hd + kh * hd + d])
                        })
                        .sum::<f64>()
                        * f64::from(p.scale);
                }
            }
            let sink = f64::from(sinks[h]);
            let m = s.iter().copied().fold(sink, f64::max);
            let den: f64 = s.iter().map(|&x| (x - m).exp()).sum::<f64>() + (sink - m).exp();
            for d in 0..hd {
                out[i * p.n_head * hd + h * hd + d] =
                    (0..n).map(|j| (s[j] - m).exp() / den * f64::from(v[j * p.n_head_kv * hd + kh * hd + d])).sum();
            }
        }
    }
    out
}

#[rstest]
#[case::exact(Cpu, 1e-7)]
#[case::fast(CpuFast, 5e-4)]
fn attention_sinks_match_formula<B: Ops>(
    #[case] b: B,
    #[case] tol: f64,
    #[values(None, Some(3))] window: Option<usize>,
) {
    let (n, nh, nkv, hd) = (6, 4, 2, 16);
    let pos: Vec<u32> = (0..n as u32).collect();
    let q = signal(n * nh * hd, 2, 1.0);
    let k = signal(n * nkv * hd, 3, 1.0);
    let v = signal(n * nkv * hd, 4, 1.0);
    let sinks = vec![0.5f32, -1.0, 2.0, 0.0];
    let gf = file(&[
        ("s", GgmlType::F32, vec![nh as u64], sinks.clone()),
        ("none", GgmlType::F32, vec![nh as u64], vec![-1e30; nh]),
    ]);
    let p = AttnParams { n_head: nh, n_head_kv: nkv, head_dim: hd, v_head_dim: hd, scale: 0.25, window, softcap: None };
    let want = attn_formula(&q, &k, &v, &pos, &p, &sinks);
    let w = weights(&b, &gf);
    let t = |x: &[f32], c: usize| b.tensor_from_host(n, c, x).unwrap();
    let (kc, vc) = (t(&k, nkv * hd), t(&v, nkv * hd));
    let qt = t(&q, nh * hd);
    let with = attend_explicit(&b, &qt, &kc, &vc, &pos, &p, Some(&w("s"))).unwrap();
    // A sink at -1e30 takes no mass: plain attention.
    let off = attend_explicit(&b, &qt, &kc, &vc, &pos, &p, Some(&w("none"))).unwrap();
    let plain = attend_explicit(&b, &qt, &kc, &vc, &pos, &p, None).unwrap();
    let ne = nmse(&b.to_host(&with).unwrap(), &want);
    assert!(ne <= tol, "window {window:?}: NMSE {} {ne:.2e}", b.name());
    assert_eq!(b.to_host(&off).unwrap(), b.to_host(&plain).unwrap(), "{}: a -inf sink changes nothing", b.name());
}

#[rstest]
#[case::exact(Cpu)]
#[case::fast(CpuFast)]
fn moe_route_is_top_k_then_softmax<B: Ops<Ids = Vec<u32>>>(#[case] b: B) {
    let logits = vec![1.0f32, 3.0, 2.0, 0.0, /* tie: lower id first */ 0.5, 0.5, 5.0, -1.0];
    let want_ids = [1u32, 2, 2, 0];
    let sm = |a: f64, b: f64| [1.0 / (1.0 + (b - a).exp()), 1.0 / (1.0 + (a - b).exp())];
    let want_w: Vec<f64> = [sm(3.0, 2.0), sm(5.0, 0.5)].concat();
    let r = b.moe_route(&b.tensor_from_host(2, 4, &logits).unwrap(), 2).unwrap();
    assert_eq!(r.0, want_ids);
    assert!(nmse(&b.to_host(&r.1).unwrap(), &want_w) <= 1e-7);
    assert!(b.moe_route(&b.tensor_from_host(2, 4, &logits).unwrap(), 5).is_err());
}

/// The gpt-oss expert weights: `w` MXFP4 (and `wf` the same values in F32) `[kin, m, nx]`, the
/// biases `b` `[m, nx]`; also the f32 values of each.
fn expert_weights(kin: usize, m: usize, nx: usize) -> (GgufFile, Vec<f32>, Vec<f32>) {
    let wv = signal(kin * m * nx, 5, 0.5);
    let bv = signal(m * nx, 6, 0.3);
    let gf = file(&[
        ("w", GgmlType::MXFP4, vec![kin as u64, m as u64, nx as u64], wv.clone()),
        ("wf", GgmlType::F32, vec![kin as u64, m as u64, nx as u64], wv.clone()),
        ("b", GgmlType::F32, vec![m as u64, nx as u64], bv.clone()),
    ]);
    (gf, wv, bv)
}

#[rstest]
#[case::exact(Cpu, 1e-7)]
#[case::fast(CpuFast, 5e-4)]
fn matmul_id_matches_per_expert_products<B: Ops<Ids = Vec<u32>>>(
    #[case] b: B,
    #[case] mxfp4_tol: f64,
    #[values(true, false)] shared: bool,
) {
    let (kin, m, nx) = (96usize, 8usize, 4usize);
    let (gf, wv, bv) = expert_weights(kin, m, nx);
    // What the MXFP4 tensor holds, for the formula.
    let wq = {
        let q = crate::quant::quantize(GgmlType::MXFP4, &wv).unwrap();
        let mut d = vec![0f32; wv.len()];
        crate::quant::dequantize(GgmlType::MXFP4, &q, &mut d).unwrap();
        d
    };
    let ids = [2u32, 0, 1, 3, 3, 1];
    let k = 2;
    let rows = if shared { 3 } else { 6 };
    let x = signal(rows * kin, 7, 1.0);
    let formula = |w: &[f32]| -> Vec<f64> {
        let mut out = vec![0f64; ids.len() * m];
        for (r, &e) in ids.iter().enumerate() {
            let xr = if shared { r / k } else { r };
            for j in 0..m {
                let wr = &w[(e as usize * m + j) * kin..][..kin];
                out[r * m + j] = (0..kin).map(|c| f64::from(x[xr * kin + c]) * f64::from(wr[c])).sum::<f64>()
                    + f64::from(bv[e as usize * m + j]);
            }
        }
        out
    };
    let want = formula(&wq);
    let w = weights(&b, &gf);
    let xt = b.tensor_from_host(rows, kin, &x).unwrap();
    let q = b.to_host(&b.matmul_id(&xt, &w("w"), Some(&w("b")), &ids.to_vec(), k).unwrap()).unwrap();
    let f = b.to_host(&b.matmul_id(&xt, &w("wf"), Some(&w("b")), &ids.to_vec(), k).unwrap()).unwrap();
    let n = nmse(&q, &want);
    assert!(n <= mxfp4_tol, "shared {shared}: MXFP4 NMSE {} {n:.2e}", b.name());
    let want = formula(&wv);
    let n = nmse(&f, &want);
    assert!(n <= 1e-7, "shared {shared}: F32 NMSE {} {n:.2e}", b.name());
}

/// Untrusted ids: out of range is an error, never a panic.
#[rstest]
#[case::exact(Cpu, vec![0, 4, 1, 1, 2, 2])]
#[case::fast(CpuFast, vec![0, 9, 1, 1, 2, 2])]
fn matmul_id_rejects_out_of_range_ids<B: Ops<Ids = Vec<u32>>>(#[case] b: B, #[case] ids: Vec<u32>) {
    let kin = 96;
    let (gf, _, _) = expert_weights(kin, 8, 4);
    let xt = b.tensor_from_host(3, kin, &vec![0.0; 3 * kin]).unwrap();
    let w = b.load_weight(&gf, gf.tensor("w").unwrap()).unwrap();
    assert!(b.matmul_id(&xt, &w, None, &ids, 2).is_err());
}

#[rstest]
fn mxfp4_dot_is_the_dequantized_dot(#[values(1, 2, 3, 5, 8)] nb: usize) {
    let w = crate::quant::quantize(GgmlType::MXFP4, &signal(32 * nb, nb as u64, 3.0)).unwrap();
    let mut wd = vec![0f32; 32 * nb];
    crate::quant::dequantize(GgmlType::MXFP4, &w, &mut wd).unwrap();
    let x = signal(32 * nb, 100 + nb as u64, 1.0);
    let mut a = vec![Q8Block::default(); nb];
    quantize_q8(&x, &mut a);
    let want: f64 =
        (0..32 * nb).map(|i| f64::from(wd[i]) * f64::from(a[i / 32].d) * f64::from(a[i / 32].qs[i % 32])).sum();
    let got = f64::from(dot::dot_mxfp4(&w, &a));
    let scale: f64 = (0..32 * nb).map(|i| (f64::from(wd[i]) * f64::from(x[i])).abs()).sum();
    assert!((got - want).abs() <= 1e-6 * scale, "{nb} blocks: {got} vs {want}");
}

#[rstest]
#[case::exact(Cpu)]
#[case::fast(CpuFast)]
fn swiglu_oai_matches_formula<B: Ops>(#[case] b: B) {
    let g = vec![-9.0f32, -1.0, 0.0, 0.5, 3.0, 6.9, 7.0, 12.0];
    let u = vec![-12.0f32, -7.5, -1.0, 0.0, 2.0, 7.0, 9.0, 0.3];
    let want: Vec<f64> = g
        .iter()
        .zip(&u)
        .map(|(&g, &u)| {
            let x = f64::from(g.min(7.0));
            let y = f64::from(u.clamp(-7.0, 7.0));
            x / (1.0 + (-1.702 * x).exp()) * (y + 1.0)
        })
        .collect();
    let r = b.swiglu_oai(&b.tensor_from_host(2, 4, &g).unwrap(), &b.tensor_from_host(2, 4, &u).unwrap(), 1.702, 7.0);
    assert!(nmse(&b.to_host(&r.unwrap()).unwrap(), &want) <= 1e-7);
}

#[rstest]
#[case::exact(Cpu)]
#[case::fast(CpuFast)]
fn moe_combine_is_the_weighted_sum<B: Ops>(#[case] b: B) {
    let (n, k, e) = (3, 4, 5);
    let ex = signal(n * k * e, 8, 2.0);
    let wt = signal(n * k, 9, 1.0);
    let want: Vec<f64> = (0..n * e)
        .map(|i| (0..k).map(|j| f64::from(ex[((i / e) * k + j) * e + i % e]) * f64::from(wt[(i / e) * k + j])).sum())
        .collect();
    let r = b.moe_combine(&b.tensor_from_host(n * k, e, &ex).unwrap(), &b.tensor_from_host(n, k, &wt).unwrap(), k);
    assert!(nmse(&b.to_host(&r.unwrap()).unwrap(), &want) <= 1e-7);
}
