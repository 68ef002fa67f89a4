//! The KV cache is allocated once per model (issue 10): loading allocates exactly one cache of
//! `n_layer × n_seq × n_ctx` slots, and prefill plus decode to the end of the context allocate no
//! other and never move its buffers; a warm decode step of the fast backend allocates no
//! activation (its arena). Its own test binary: the allocation counters are per process.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::Ordering;

use orcd_conformance::suites::gguf::{synthetic_fixture, synthetic_missing_reason};
use orcd_cpu::cpu::Cpu;
use orcd_cpu::cpu_fast::CpuFast;
use orcd_cpu::kv::{CpuKv, KV_ALLOCS};
use orcd_engine::gguf::GgufFile;
use orcd_engine::model::{LoadOpts, Model};
use orcd_engine::ops::{KvType, NoTaps, Ops};

/// The allocation counter is per process: the tests here run one at a time.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    for arch in ["llama", "gemma3", "gpt-oss"] {
        run(Cpu, &format!("model-{arch}-tiny-q8_0-seed1"), KvType::F32);
        run(CpuFast, &format!("model-{arch}-tiny-q4_k-seed1"), KvType::F16);
    }
}

/// Activations of the fast backend come from its arena: once warm, a decode step allocates no
/// activation buffer (each op takes the buffer an earlier intermediate gave back).
#[test]
fn a_warm_decode_step_allocates_no_activation() {
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    for arch in ["llama", "gemma3", "gpt-oss", "phi3", "gpt2"] {
        let fixture = format!("model-{arch}-tiny-q4_k-seed1");
        if let Some(reason) = synthetic_missing_reason(&fixture) {
            panic!("{fixture}: {reason}");
        }
        let f = GgufFile::from_bytes(synthetic_fixture(&fixture).expect("known fixture")).unwrap();
        let mut m = Model::load(&f, CpuFast, Some(32)).unwrap();
        m.forward(&[1, 2, 3, 4, 5, 6, 7, 8, 9], &mut NoTaps).unwrap();
        for _ in 0..3 {
            m.forward(&[3], &mut NoTaps).unwrap();
        }
        let warm = orcd_cpu::arena::misses();
        for _ in 0..4 {
            m.forward(&[5], &mut NoTaps).unwrap();
        }
        assert_eq!(orcd_cpu::arena::misses(), warm, "{fixture}: a warm decode step allocated activations");
    }
}
