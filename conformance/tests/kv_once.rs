//! The KV cache is allocated once per model (issue 10): loading allocates exactly one cache of
//! `n_layer × n_seq × n_ctx` slots, and prefill plus decode to the end of the context allocate no
//! other and never move its buffers. Its own test binary: the allocation counter is per process.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::Ordering;

use orcd_conformance::suites::gguf::{synthetic_fixture, synthetic_missing_reason};
use orcd_cpu::cpu::Cpu;
use orcd_cpu::cpu_fast::CpuFast;
use orcd_cpu::kv::{CpuKv, KV_ALLOCS};
use orcd_engine::gguf::GgufFile;
use orcd_engine::model::{LoadOpts, Model};
use orcd_engine::ops::{KvType, NoTaps, Ops};

fn run<B: Ops<Kv = CpuKv>>(backend: B, fixture: &str, ty: KvType) {
    if let Some(reason) = synthetic_missing_reason(fixture) {
        panic!("{fixture}: {reason}");
    }
    let f = GgufFile::from_bytes(synthetic_fixture(fixture).expect("known fixture")).unwrap();
    let n_ctx = 24;
    let before = KV_ALLOCS.load(Ordering::SeqCst);
    let mut m = Model::load_opts(&f, backend, &LoadOpts { n_ctx: Some(n_ctx), n_seq: Some(2), kv_type: None }).unwrap();
    assert_eq!(KV_ALLOCS.load(Ordering::SeqCst), before + 1, "{fixture}: one cache at load");
    let hp = m.hp.clone();
    let per_slot = hp.n_head_kv * (hp.head_dim + hp.v_head_dim) * ty.bytes();
    assert_eq!(m.kv_bytes(), hp.n_layer * 2 * n_ctx * per_slot, "{fixture}: layers × sequences × context");
    assert_eq!(m.kv().spec.ty, ty);
    let addrs = m.kv().addresses();
    m.forward(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &mut NoTaps).unwrap();
    while m.n_past() < n_ctx {
        m.forward(&[3], &mut NoTaps).unwrap();
        assert_eq!(m.kv().addresses(), addrs, "{fixture}: the cache moved at position {}", m.n_past());
    }
    // Past the context: a typed error, and still no new cache.
    assert!(m.forward(&[3], &mut NoTaps).unwrap_err().to_string().contains("context full"));
    assert_eq!(KV_ALLOCS.load(Ordering::SeqCst), before + 1, "{fixture}: decoding allocated another cache");
}

#[test]
fn kv_cache_is_allocated_once_and_never_moves() {
    for arch in ["llama", "gemma3", "gpt-oss"] {
        run(Cpu, &format!("model-{arch}-tiny-q8_0-seed1"), KvType::F32);
        run(CpuFast, &format!("model-{arch}-tiny-q4_k-seed1"), KvType::F16);
    }
}
