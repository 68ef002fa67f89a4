//! The sampler chain on a 262,144-entry vocabulary (gemma3's), random logits (normal, σ = 3).
//! Budget (issue 5): under 5% of a CPU decode step; SmolLM2-135M decodes at ~95 tok/s with
//! llama.cpp on the development machine (~10 ms a step), so the chain must stay well under 0.5 ms.
//!
//! Run: `cargo bench -p orcd-sampler --bench sampler` (add `-- --quick` for a short run).
//!
//! Cases:
//! - `default`: llama.cpp's defaults (top-k 40, top-p 0.95, min-p 0.05, temperature 0.8) plus a
//!   repetition penalty of 1.1 over 64 tokens of history and two logit biases — the common path;
//! - `default+logprobs5`: the same plus the sampled token's log-probability and the top 5 (the
//!   log-sum-exp over the whole vocabulary), as `generate --json` needs per token;
//! - `greedy`: temperature 0, defaults otherwise;
//! - `no_top_k`: top-k off (top-p 0.95, min-p 0.05): the whole vocabulary reaches top-p, which
//!   takes a softmax over 262,144 entries (llama.cpp does the same);
//! - `logprobs5`: the log-probabilities alone.
//!
//! Measured (criterion medians, commit after c46f4f0): on an idle 16-core Xeon (the device host)
//! default 96–143 µs, default+logprobs5 322–430 µs, greedy 44–59 µs, no_top_k 4.7–7.5 ms,
//! logprobs5 245–370 µs (spread over four runs on fresh hosts); on the 2-core development machine
//! with load average ~6 (other builds running) default 290 µs, default+logprobs5 0.99 ms, greedy
//! 96 µs, no_top_k 12.6 ms, logprobs5 517 µs.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use orcd_sampler::{logprobs, PenaltyParams, Rng, Sampler, SamplerParams};

const N_VOCAB: usize = 262_144;

fn random_logits(seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..N_VOCAB)
        .map(|_| {
            // Box–Muller.
            let u1 = rng.next_f64().max(1e-300);
            let u2 = rng.next_f64();
            (3.0 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

fn sampler(params: SamplerParams) -> Sampler {
    let mut s = Sampler::new(params, N_VOCAB).unwrap();
    for t in 0..64u32 {
        s.accept(t * 4099 % N_VOCAB as u32).unwrap();
    }
    s
}

fn default_params() -> SamplerParams {
    SamplerParams {
        penalties: PenaltyParams { last_n: 64, repeat: 1.1, ..Default::default() },
        logit_bias: vec![(17, 2.0), (1000, f32::NEG_INFINITY)],
        seed: 42,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let logits = random_logits(1);
    let mut g = c.benchmark_group("sampler_262144");

    let mut s = sampler(default_params());
    g.bench_function("default", |b| b.iter(|| s.sample(black_box(&logits)).unwrap()));

    let mut s = sampler(default_params());
    g.bench_function("default+logprobs5", |b| {
        b.iter(|| {
            let t = s.sample(black_box(&logits)).unwrap();
            logprobs(&logits, t.token, 5).unwrap()
        })
    });

    let mut s = sampler(SamplerParams { temperature: 0.0, ..default_params() });
    g.bench_function("greedy", |b| b.iter(|| s.sample(black_box(&logits)).unwrap()));

    let mut s = sampler(SamplerParams { top_k: 0, ..default_params() });
    g.bench_function("no_top_k", |b| b.iter(|| s.sample(black_box(&logits)).unwrap()));

    g.bench_function("logprobs5", |b| b.iter(|| logprobs(black_box(&logits), 7, 5).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
