//! Per-kernel timings of the CUDA backend (criterion), on the shapes of the Qwen2.5-0.5B-shape
//! file that docs/perf/GPU.md measures end to end:
//!
//! - `matmul/<type>/n<rows>`: `Cuda::matmul` (the mat-vec kernel; `cuda-fast` adds the activation
//!   rounding) of a 4864 × 896 weight (ffn_up) and of the 151,936 × 896 output head; reported per
//!   weight byte, so the number reads against the card's ~4.3 TB/s;
//! - `attention/n_kv<N>`: one decode row over N cached positions (14 heads, 2 KV heads, 64 dims);
//! - `rms_norm`, `argmax` (one 151,936-wide row), `glu`.
//!
//! Every sample synchronises the device, so a sample is the kernel's time plus one launch and one
//! synchronisation. On a machine without CUDA it prints why and measures nothing.
//!
//! Run (GPU machine): `cargo bench -p orcd-cuda --bench kernels` here, or the bench binary that
//! `cargo bench --no-run` builds, carried there.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use criterion::{criterion_group, Criterion, Throughput};
use orcd_cuda::Cuda;
use orcd_engine::gguf::{GgmlType, GgufFile, GgufWriter};
use orcd_engine::ops::{rows_at, Act, AttnParams, KvSpec, KvType, Ops, RowGroups};
use orcd_engine::testing::signal;

/// A GGUF in memory holding `[k, m]` weights of each type (quantized by orcd-gguf).
fn weights(k: usize, m: usize, types: &[GgmlType]) -> GgufFile {
    let mut w = GgufWriter::new();
    let vals = signal(k * m, 7);
    for &ty in types {
        let data = orcd_engine::quant::quantize(ty, &vals).unwrap();
        w.add_tensor(&format!("w_{ty}"), ty, &[k as u64, m as u64], data).unwrap();
    }
    GgufFile::from_bytes(w.to_bytes().0).unwrap()
}

fn bench(c: &mut Criterion) {
    if let Some(reason) = orcd_cuda::probe() {
        eprintln!("not run: {reason}");
        return;
    }
    let types = [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::MXFP4];
    for (label, m) in [("ffn_up", 4864usize), ("head", 151_936)] {
        let f = weights(896, m, &types);
        for fast in [false, true] {
            let b = Cuda::new(fast).unwrap();
            let mut g = c.benchmark_group(format!("matmul-{label}-{}", b.name()));
            for t in f.tensors() {
                let w = b.load_weight(&f, t).unwrap();
                g.throughput(Throughput::Bytes(t.n_bytes));
                for n in [1usize, 8] {
                    let x = b.tensor_from_host(n, 896, &signal(n * 896, 3)).unwrap();
                    g.bench_function(format!("{}/n{n}", t.ty), |bch| {
                        bch.iter(|| {
                            let y = b.matmul(&x, &w, &RowGroups::single(n)).unwrap();
                            b.device().synchronize().unwrap();
                            y
                        })
                    });
                }
            }
            g.finish();
        }
    }
    for fast in [false, true] {
        let b = Cuda::new(fast).unwrap();
        let mut g = c.benchmark_group(format!("attention-{}", b.name()));
        let p = AttnParams {
            n_head: 14,
            n_head_kv: 2,
            head_dim: 64,
            v_head_dim: 64,
            scale: 0.125,
            window: None,
            softcap: None,
        };
        for n_kv in [512usize, 4096] {
            let ty = if fast { KvType::F16 } else { KvType::F32 };
            let spec = KvSpec { n_layer: 1, n_seq: 1, n_ctx: n_kv, k_cols: 128, v_cols: 128, ty };
            let mut kv = b.kv_alloc(&spec).unwrap();
            let k = b.tensor_from_host(n_kv, 128, &signal(n_kv * 128, 1)).unwrap();
            let v = b.tensor_from_host(n_kv, 128, &signal(n_kv * 128, 2)).unwrap();
            let all = b.upload_batch(&rows_at(&(0..n_kv as u32).collect::<Vec<_>>())).unwrap();
            b.kv_write(&mut kv, 0, &k, &v, &all).unwrap();
            let q = b.tensor_from_host(1, 14 * 64, &signal(14 * 64, 4)).unwrap();
            let last = b.upload_batch(&rows_at(&[n_kv as u32 - 1])).unwrap();
            g.bench_function(format!("n_kv{n_kv}"), |bch| {
                bch.iter(|| {
                    let y = b.attention(&q, &kv, 0, &last, &p, None).unwrap();
                    b.device().synchronize().unwrap();
                    y
                })
            });
        }
        g.finish();
    }
    let b = Cuda::new(true).unwrap();
    let mut g = c.benchmark_group("rows-cuda-fast");
    let x = b.tensor_from_host(1, 896, &signal(896, 5)).unwrap();
    g.bench_function("rms_norm/896", |bch| {
        bch.iter(|| {
            let y = b.rms_norm(&x, 1e-6).unwrap();
            b.device().synchronize().unwrap();
            y
        })
    });
    let h = b.tensor_from_host(1, 4864, &signal(4864, 6)).unwrap();
    g.bench_function("glu-silu/4864", |bch| {
        bch.iter(|| {
            let y = b.glu(&h, &h, Act::Silu).unwrap();
            b.device().synchronize().unwrap();
            y
        })
    });
    let logits = b.tensor_from_host(1, 151_936, &signal(151_936, 8)).unwrap();
    g.bench_function("argmax/151936", |bch| bch.iter(|| b.argmax(&logits).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
