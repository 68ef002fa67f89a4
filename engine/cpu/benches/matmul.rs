//! The fast backend's matmul kernels (`engine/src/backend/cpu_fast`), one weight type at a time.
//!
//! - `dot/<type>`: one thread, the SIMD kernel over a 1536 × 576 weight (SmolLM2's ffn_up shape,
//!   k-quants 1536 × 512... see `K_KQ`), one activation row — decode's inner loop; reported per
//!   weight byte streamed (criterion throughput).
//! - `matvec/<type>`: `CpuFast::matmul` of one row through the thread team (all threads), 4096 ×
//!   1024 weights — a decode matmul, including activation quantization and scheduling.
//! - `matmul128/<type>`: the same with 128 rows (prefill).
//! - `dot-scalar/<type>`: `dot/<type>` through the lane-by-lane reference (`Isa::Scalar`) for the
//!   types whose SIMD kernels came last (Q2_K, Q3_K, MXFP4): the speed they had before.
//!
//! Run: `cargo bench -p orcd-engine --bench matmul` (add `-- --quick`, or a filter like `q4_1`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use orcd_cpu::cpu_fast::act::{quantize_q8, quantize_q8k, Q8Block, Q8KBlock};
use orcd_cpu::cpu_fast::matmul::{dot_rows_q8, dot_rows_q8k, Isa};
use orcd_cpu::cpu_fast::{CpuFast, FastWeight};
use orcd_engine::gguf::GgmlType;
use orcd_engine::ops::Ops;
use orcd_engine::testing::bytes;

/// Random blocks with small positive f16 scales.
fn weights(ty: GgmlType, rows: usize, k: usize) -> Vec<u8> {
    let ts = ty.type_size();
    let mut b = bytes(rows * k / ty.block_size() * ts, 1);
    let scales: &[usize] = match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    };
    for blk in b.chunks_exact_mut(ts) {
        for &at in scales {
            blk[at..at + 2].copy_from_slice(&half::f16::from_f32(0.01).to_bits().to_le_bytes());
        }
        if ty == GgmlType::MXFP4 {
            // E8M0 exponent 2^-7.
            blk[0] = 120;
        }
    }
    b
}

fn signal(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1.0 + (i % 3) as f32)).collect()
}

const LEGACY: [GgmlType; 6] =
    [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::MXFP4];
const KQ: [GgmlType; 5] = [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K];
/// The types measured through the scalar reference too (`dot-scalar`).
const LAST_SIMD: [GgmlType; 3] = [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::MXFP4];

fn dot(c: &mut Criterion) {
    dot_group(c, "dot", Isa::detect(), &LEGACY.into_iter().chain(KQ).collect::<Vec<_>>());
    dot_group(c, "dot-scalar", Isa::Scalar, &LAST_SIMD);
}

fn dot_group(c: &mut Criterion, name: &str, isa: Isa, types: &[GgmlType]) {
    let mut g = c.benchmark_group(name);
    let (m, k) = (1536, 512);
    for &ty in types {
        let w = weights(ty, m, k);
        let rb = w.len() / m;
        let rows: Vec<&[u8]> = w.chunks_exact(rb).collect();
        let mut out = vec![0f32; m];
        g.throughput(Throughput::Bytes(w.len() as u64));
        if KQ.contains(&ty) {
            let mut a = vec![Q8KBlock::default(); k / 256];
            quantize_q8k(&signal(k), &mut a);
            g.bench_function(format!("{ty}"), |b| {
                b.iter(|| dot_rows_q8k(isa, ty, black_box(&rows), &a, &mut out, false))
            });
        } else {
            let mut a = vec![Q8Block::default(); k / 32];
            quantize_q8(&signal(k), &mut a);
            g.bench_function(format!("{ty}"), |b| b.iter(|| dot_rows_q8(isa, ty, black_box(&rows), &a, &mut out)));
        }
    }
    g.finish();
}

fn fast_weight(ty: GgmlType, m: usize, k: usize) -> FastWeight {
    FastWeight::from_raw("w", ty, k, m, weights(ty, m, k)).unwrap()
}

fn matmul(c: &mut Criterion) {
    let be = CpuFast;
    let (m, k) = (4096, 1024);
    for n in [1usize, 128] {
        let mut g = c.benchmark_group(if n == 1 { "matvec" } else { "matmul128" });
        if n > 1 {
            g.sample_size(10);
        }
        let x = be.tensor_from_host(n, k, &signal(n * k)).unwrap();
        let groups = orcd_engine::ops::RowGroups::single(n);
        for ty in LEGACY.into_iter().chain(KQ) {
            let w = fast_weight(ty, m, k);
            g.throughput(Throughput::Bytes(w.bytes() as u64));
            g.bench_function(format!("{ty}"), |b| b.iter(|| be.matmul(black_box(&x), &w, &groups).unwrap()));
        }
        g.finish();
    }
}

criterion_group!(benches, dot, matmul);
criterion_main!(benches);
