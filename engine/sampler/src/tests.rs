//! Unit tests and proptest invariants of the sampler. The exact probability vectors of llama.cpp's
//! test-sampling.cpp are checked by the conformance suite `sampler` (goldens/sampler/).
//!
//! Cases per property: proptest's default (256), `PROPTEST_CASES=N` to change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;
// Explicit, over the two glob imports (proptest's prelude has an `Rng` trait).
use super::Rng;

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn log_softmax_f64(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let lse = max + logits.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
    logits.iter().map(|&x| x as f64 - lse).collect()
}

fn plain(params: SamplerParams) -> SamplerParams {
    SamplerParams { penalties: PenaltyParams { repeat: 1.0, ..Default::default() }, ..params }
}

/// Logits with ties and masked entries now and then.
fn logits_strategy(max_len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        prop_oneof![
            8 => -20.0f32..20.0,
            1 => Just(1.5f32),
            1 => Just(f32::NEG_INFINITY),
        ],
        1..max_len,
    )
    .prop_filter("one finite logit", |v| v.iter().any(|x| x.is_finite()))
}

fn params_strategy() -> impl Strategy<Value = SamplerParams> {
    (
        prop_oneof![Just(0.0f32), 0.05f32..3.0],
        prop_oneof![Just(0usize), 1usize..50],
        prop_oneof![Just(1.0f32), 0.0f32..=1.0],
        prop_oneof![Just(0.0f32), 0.0f32..1.2],
        prop_oneof![Just(1.0f32), 0.5f32..2.0],
        prop_oneof![Just(0.0f32), -1.0f32..1.0],
        0usize..3,
        any::<u64>(),
        prop_oneof![Just(1.0f32), 0.1f32..=1.0],
        prop_oneof![Just(-1.0f32), 0.5f32..3.0],
    )
        .prop_map(
            |(temperature, top_k, top_p, min_p, repeat, presence, min_keep, seed, typical_p, top_n_sigma)| {
                SamplerParams {
                    temperature,
                    top_k,
                    top_p,
                    min_p,
                    typical_p,
                    top_n_sigma,
                    min_keep,
                    seed,
                    penalties: PenaltyParams { last_n: 8, repeat, frequency: presence / 2.0, presence },
                    ..Default::default()
                }
            },
        )
}

/// The chain applied by hand, stage by stage on the whole vocabulary (no fast path, no shortcut).
fn manual_chain(params: &SamplerParams, history: &[u32], logits: &[f32]) -> Result<u32> {
    let mut c = Candidates::from_logits(logits);
    let mut xtc_rng = Rng::new(params.seed ^ XTC_STREAM);
    ops::logit_bias(&mut c, &params.logit_bias)?;
    for stage in &params.order {
        match stage {
            Stage::Penalties => ops::penalties(&mut c, history, &params.penalties)?,
            Stage::Dry => ops::dry(&mut c, history, &params.dry)?,
            Stage::TopNSigma => ops::top_n_sigma(&mut c, params.top_n_sigma)?,
            Stage::TopK => ops::top_k(&mut c, params.top_k)?,
            Stage::Typical => ops::typical(&mut c, params.typical_p, params.min_keep)?,
            Stage::TopP => ops::top_p(&mut c, params.top_p, params.min_keep)?,
            Stage::MinP => ops::min_p(&mut c, params.min_p, params.min_keep)?,
            Stage::Xtc => {
                ops::xtc(&mut c, params.xtc_probability, params.xtc_threshold, params.min_keep, &mut xtc_rng)?
            }
            Stage::Temperature => {
                ops::temperature_ext(&mut c, params.temperature, params.dynatemp_range, params.dynatemp_exponent)?
            }
        }
    }
    let i = ops::dist(&mut c, &mut Rng::new(params.seed))?;
    Ok(c.items()[i].id)
}

fn order_strategy() -> impl Strategy<Value = Vec<Stage>> {
    prop_oneof![
        3 => Just(Stage::DEFAULT_ORDER.to_vec()),
        1 => Just(Stage::DEFAULT_ORDER.to_vec()).prop_shuffle(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Hand-checked semantics.

#[test]
fn greedy_takes_lowest_id_on_ties() {
    let logits = [1.0, 3.0, -2.0, 3.0, 0.5];
    for order in [Stage::DEFAULT_ORDER.to_vec(), vec![Stage::Temperature]] {
        let mut s = Sampler::new(SamplerParams { order, ..SamplerParams::greedy() }, 5).unwrap();
        for _ in 0..5 {
            s.reset();
            assert_eq!(s.sample(&logits).unwrap().token, 1);
        }
    }
}

#[test]
fn repetition_penalty_divides_positive_multiplies_negative() {
    let params = SamplerParams {
        penalties: PenaltyParams { last_n: 2, repeat: 2.0, frequency: 0.0, presence: 0.0 },
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        temperature: 1.0,
        ..Default::default()
    };
    let mut s = Sampler::new(params, 4).unwrap();
    for t in [0, 1, 3] {
        s.accept(t).unwrap();
    }
    // Window of 2: tokens 1 and 3 (0 fell out).
    let c = s.candidates(&[4.0, 4.0, -4.0, -4.0]).unwrap();
    let logits: Vec<f32> = c.items().iter().map(|x| x.logit).collect();
    assert_eq!(logits, vec![4.0, 2.0, -4.0, -8.0]);
}

#[test]
fn frequency_and_presence_penalties() {
    let params = SamplerParams {
        penalties: PenaltyParams { last_n: 10, repeat: 1.0, frequency: 0.5, presence: 0.25 },
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        temperature: 1.0,
        ..Default::default()
    };
    let mut s = Sampler::new(params, 3).unwrap();
    for t in [2, 2, 2, 1] {
        s.accept(t).unwrap();
    }
    let c = s.candidates(&[1.0, 1.0, 1.0]).unwrap();
    let logits: Vec<f32> = c.items().iter().map(|x| x.logit).collect();
    assert_eq!(logits, vec![1.0, 1.0 - 0.75, 1.0 - 1.75]);
}

#[test]
fn logit_bias_masks_and_boosts() {
    let params = SamplerParams { logit_bias: vec![(0, f32::NEG_INFINITY), (2, 10.0)], ..SamplerParams::greedy() };
    let mut s = Sampler::new(params, 3).unwrap();
    assert_eq!(s.sample(&[5.0, 4.0, -4.0]).unwrap().token, 2);
}

#[test]
fn top_k_fast_path_with_overrides_matches_full_chain() {
    // Penalised tokens move in and out of the top k.
    let logits: Vec<f32> = (0..3000).map(|i| ((i * 7919) % 1009) as f32 / 100.0).collect();
    let hist: Vec<u32> = vec![1008, 2017, 5, 5, 77, 2999];
    let params = SamplerParams {
        penalties: PenaltyParams { last_n: 64, repeat: 3.0, frequency: 0.5, presence: 1.0 },
        logit_bias: vec![(3, 9.0), (1008, -1.0)],
        top_k: 10,
        ..Default::default()
    };
    let mut fast = Sampler::new(params.clone(), logits.len()).unwrap();
    for &t in &hist {
        fast.accept(t).unwrap();
    }
    let got = fast.candidates(&logits).unwrap();

    let mut c = Candidates::from_logits(&logits);
    let mut shuffled: Vec<Candidate> = c.items().to_vec();
    shuffled.reverse(); // a non-identity list takes the general edit path
    c = Candidates::from_items(shuffled);
    ops::logit_bias(&mut c, &params.logit_bias).unwrap();
    ops::penalties(&mut c, &hist, &params.penalties).unwrap();
    ops::top_k(&mut c, 10).unwrap();
    ops::top_p(&mut c, params.top_p, 0).unwrap();
    ops::min_p(&mut c, params.min_p, 0).unwrap();
    ops::temperature(&mut c, params.temperature).unwrap();
    assert_eq!(got.ids(), c.ids());
    let gl: Vec<f32> = got.items().iter().map(|x| x.logit).collect();
    let cl: Vec<f32> = c.items().iter().map(|x| x.logit).collect();
    assert_eq!(gl, cl);
}

#[test]
fn top_p_on_large_lists_matches_a_full_sort() {
    // Lists over 1024 entries take the growing-prefix path; compare with sort-everything-first.
    let mut rng = Rng::new(5);
    for (n, scale) in [(1025usize, 0.1f32), (5000, 1.0), (20_000, 0.01), (20_000, 5.0)] {
        let logits: Vec<f32> = (0..n).map(|_| (rng.next_f32() - 0.5) * 20.0 * scale).collect();
        for p in [0.0f32, 0.1, 0.5, 0.9, 0.95, 0.999] {
            let mut fast = Candidates::from_logits(&logits);
            ops::top_p(&mut fast, p, 0).unwrap();
            // Reference: the same softmax (summed in id order), then a full sort and a scan.
            let mut full = Candidates::from_logits(&logits);
            ops::softmax(&mut full, false).unwrap();
            let mut items = full.items().to_vec();
            items.sort_by(candidates::rank);
            let mut cum = 0.0f32;
            let keep = items.iter().position(|x| {
                cum += x.p;
                cum >= p
            });
            let want: Vec<u32> = items[..keep.map_or(items.len(), |i| i + 1)].iter().map(|x| x.id).collect();
            assert_eq!(fast.ids(), want, "n {n} scale {scale} p {p}");
            assert!(fast.is_sorted());
        }
    }
}

#[test]
fn draw_frequencies_follow_probabilities() {
    let logits = [0.0f32, (2.0f32).ln(), (3.0f32).ln(), f32::NEG_INFINITY];
    let params = SamplerParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 7, ..Default::default() };
    let mut s = Sampler::new(plain(params), 4).unwrap();
    let mut counts = [0usize; 4];
    let n = 60_000;
    for _ in 0..n {
        counts[s.sample(&logits).unwrap().token as usize] += 1;
    }
    assert_eq!(counts[3], 0);
    for (i, want) in [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0].iter().enumerate() {
        let got = counts[i] as f64 / n as f64;
        assert!((got - want).abs() < 0.01, "token {i}: {got} vs {want}");
    }
}

#[test]
fn fixed_seed_gives_a_fixed_token_stream() {
    // A regression guard across builds and platforms: the tokens for seed 1234 on fixed logits.
    let logits: Vec<f32> = (0..64).map(|i| ((i * 37) % 17) as f32 * 0.25).collect();
    let params = SamplerParams { seed: 1234, top_k: 0, top_p: 1.0, min_p: 0.0, temperature: 1.5, ..Default::default() };
    let mut s = Sampler::new(plain(params), 64).unwrap();
    let got: Vec<u32> = (0..12).map(|_| s.sample(&logits).unwrap().token).collect();
    assert_eq!(got, FIXED_STREAM.to_vec(), "token stream for seed 1234 changed");
}

const FIXED_STREAM: [u32; 12] = [4, 55, 45, 56, 8, 57, 28, 13, 38, 43, 33, 15];

#[test]
fn validation_errors_are_typed() {
    let e = |p: SamplerParams| Sampler::new(p, 10).unwrap_err();
    let d = SamplerParams::default;
    assert!(matches!(
        e(SamplerParams { temperature: -0.1, ..d() }),
        SamplerError::InvalidParam { name: "temperature", .. }
    ));
    assert!(matches!(e(SamplerParams { temperature: f32::NAN, ..d() }), SamplerError::InvalidParam { .. }));
    assert!(matches!(e(SamplerParams { top_p: 1.01, ..d() }), SamplerError::InvalidParam { name: "top_p", .. }));
    assert!(matches!(e(SamplerParams { top_p: -0.01, ..d() }), SamplerError::InvalidParam { name: "top_p", .. }));
    assert!(matches!(e(SamplerParams { min_p: -0.5, ..d() }), SamplerError::InvalidParam { name: "min_p", .. }));
    assert!(matches!(e(SamplerParams { typical_p: 2.0, ..d() }), SamplerError::InvalidParam { name: "typical_p", .. }));
    assert!(matches!(
        e(SamplerParams { penalties: PenaltyParams { repeat: 0.0, ..Default::default() }, ..d() }),
        SamplerError::InvalidParam { name: "repeat_penalty", .. }
    ));
    assert!(matches!(
        e(SamplerParams { penalties: PenaltyParams { frequency: f32::INFINITY, ..Default::default() }, ..d() }),
        SamplerError::InvalidParam { name: "frequency_penalty", .. }
    ));
    assert!(matches!(
        e(SamplerParams { logit_bias: vec![(10, 1.0)], ..d() }),
        SamplerError::TokenOutOfVocab { token: 10, n_vocab: 10, .. }
    ));
    assert!(matches!(e(SamplerParams { logit_bias: vec![(1, f32::NAN)], ..d() }), SamplerError::InvalidParam { .. }));
    assert!(matches!(
        e(SamplerParams { logit_bias: vec![(1, 1.0), (1, 2.0)], ..d() }),
        SamplerError::InvalidParam { .. }
    ));
    assert!(matches!(
        e(SamplerParams {
            dry: DryParams { multiplier: 1.0, sequence_breakers: vec![vec![3, 11]], ..Default::default() },
            ..d()
        }),
        SamplerError::TokenOutOfVocab { token: 11, .. }
    ));
    assert!(matches!(
        e(SamplerParams { order: vec![Stage::TopK, Stage::TopK], ..d() }),
        SamplerError::DuplicateStage(Stage::TopK)
    ));
    assert!(matches!(Sampler::new(d(), 0), Err(SamplerError::InvalidParam { name: "n_vocab", .. })));
    assert!(matches!(Stage::parse_order("kpq"), Err(SamplerError::UnknownStage('q'))));
    assert_eq!(Stage::parse_order("ekpmt").unwrap().len(), 5);

    let mut s = Sampler::new(d(), 4).unwrap();
    assert!(matches!(s.accept(4), Err(SamplerError::TokenOutOfVocab { token: 4, .. })));
    assert!(matches!(s.sample(&[0.0; 3]), Err(SamplerError::VocabMismatch { expected: 4, got: 3 })));
    assert!(matches!(s.sample(&[0.0, f32::NAN, 0.0, 0.0]), Err(SamplerError::NonFiniteLogit { index: 1, .. })));
    assert!(matches!(s.sample(&[0.0, 0.0, f32::INFINITY, 0.0]), Err(SamplerError::NonFiniteLogit { index: 2, .. })));
    assert!(matches!(s.sample(&[f32::NEG_INFINITY; 4]), Err(SamplerError::NoFiniteLogit { n: 4 })));
    // Overflow inside the chain is caught, not propagated as NaN probabilities.
    let mut s = Sampler::new(SamplerParams { temperature: 1e-30, top_k: 0, ..d() }, 2).unwrap();
    assert!(matches!(s.sample(&[3e38, 1.0]), Err(SamplerError::NonFiniteAfter { .. })));
    // Empty candidate sets.
    let mut empty = Candidates::default();
    assert!(matches!(ops::dist(&mut empty, &mut Rng::new(0)), Err(SamplerError::EmptyCandidates)));
    assert!(matches!(ops::softmax(&mut empty, true), Err(SamplerError::EmptyCandidates)));
    assert!(ops::top_k(&mut empty, 3).is_ok() && ops::min_p(&mut empty, 0.5, 0).is_ok());
    assert!(matches!(logprobs(&[0.0, 1.0], 2, 1), Err(SamplerError::TokenOutOfVocab { .. })));
    // The message names the sampler (orcd-engine's error shows it unchanged; tested there).
    assert_eq!(SamplerError::EmptyCandidates.to_string(), "sampler: empty candidate set");
}

#[test]
fn fast_exp_relative_error() {
    let mut worst = 0.0f64;
    let mut x = -87.0f32;
    while x <= 0.0 {
        let want = (x as f64).exp();
        let got = fast_exp(x) as f64;
        worst = worst.max(((got - want) / want).abs());
        x += 0.000_37;
    }
    assert!(worst < 3e-7, "worst relative error {worst}");
    assert!(fast_exp(f32::NEG_INFINITY) < 1e-37);
}

// ---------------------------------------------------------------------------------------------
// Invariants.

proptest! {
    /// After the chain and the draw the candidate probabilities sum to 1.
    #[test]
    fn probabilities_sum_to_one(logits in logits_strategy(300), params in params_strategy()) {
        let mut s = Sampler::new(params, logits.len()).unwrap();
        let mut c = s.candidates(&logits).unwrap();
        let i = ops::dist(&mut c, &mut Rng::new(1)).unwrap();
        let sum: f64 = c.items().iter().map(|x| x.p as f64).sum();
        prop_assert!((sum - 1.0).abs() < 1e-5, "sum {}", sum);
        prop_assert!(c.items()[i].p > 0.0);
    }

    /// top-k = 1 is greedy, whatever the temperature and the other filters.
    #[test]
    fn top_k_one_is_greedy(logits in logits_strategy(300), params in params_strategy()) {
        let p = plain(SamplerParams { top_k: 1, ..params });
        let mut s = Sampler::new(p, logits.len()).unwrap();
        prop_assert_eq!(s.sample(&logits).unwrap().token, argmax(&logits));
        let mut g = Sampler::new(plain(SamplerParams::greedy()), logits.len()).unwrap();
        prop_assert_eq!(g.sample(&logits).unwrap().token, argmax(&logits));
    }

    /// top-p → 0 is greedy.
    #[test]
    fn top_p_zero_is_greedy(logits in logits_strategy(300), params in params_strategy(), tiny in 0.0f32..1e-6) {
        let p = plain(SamplerParams { top_p: tiny, min_keep: 0, typical_p: 1.0, top_n_sigma: -1.0, ..params });
        let mut s = Sampler::new(p, logits.len()).unwrap();
        prop_assert_eq!(s.sample(&logits).unwrap().token, argmax(&logits));
    }

    /// min-p = 0 changes nothing: same candidates as without the stage.
    #[test]
    fn min_p_zero_is_a_no_op(logits in logits_strategy(300), params in params_strategy()) {
        let with = SamplerParams { min_p: 0.0, ..params.clone() };
        let without = SamplerParams { order: params.order.iter().copied().filter(|&s| s != Stage::MinP).collect(), ..params };
        let a = Sampler::new(with, logits.len()).unwrap().candidates(&logits).unwrap();
        let b = Sampler::new(without, logits.len()).unwrap().candidates(&logits).unwrap();
        prop_assert_eq!(a, b);
        let mut c = Candidates::from_logits(&logits);
        let before = c.clone();
        ops::min_p(&mut c, 0.0, 0).unwrap();
        prop_assert_eq!(c, before);
    }

    /// No filter adds a candidate (or duplicates one), in any order.
    #[test]
    fn filters_never_add_candidates(logits in logits_strategy(200), params in params_strategy(), n in 0.0f32..3.0, which in 0usize..8) {
        let mut c = Candidates::from_logits(&logits);
        if which % 2 == 1 {
            ops::top_k(&mut c, logits.len() / 2 + 1).unwrap();
        }
        let before: std::collections::BTreeSet<u32> = c.ids().into_iter().collect();
        let len = c.len();
        let mut rng = Rng::new(params.seed);
        match which / 2 {
            0 => ops::top_p(&mut c, params.top_p, params.min_keep).unwrap(),
            1 => ops::min_p(&mut c, params.min_p, params.min_keep).unwrap(),
            2 => ops::typical(&mut c, params.typical_p, params.min_keep).unwrap(),
            _ => {
                ops::top_k(&mut c, params.top_k).unwrap();
                ops::top_n_sigma(&mut c, n).unwrap();
                ops::xtc(&mut c, 1.0, n / 6.0, params.min_keep, &mut rng).unwrap();
            }
        }
        let after: std::collections::BTreeSet<u32> = c.ids().into_iter().collect();
        prop_assert!(after.is_subset(&before));
        prop_assert_eq!(after.len(), c.len());
        prop_assert!(c.len() <= len);
        prop_assert!(!c.is_empty());
        if c.is_sorted() {
            prop_assert!(c.items().windows(2).all(|w| candidates::rank(&w[0], &w[1]).is_lt()));
        }
    }

    /// Same seed and parameters → same tokens, step after step (with the history feeding back).
    #[test]
    fn same_seed_same_draws(logits in logits_strategy(300), params in params_strategy()) {
        let mut a = Sampler::new(params.clone(), logits.len()).unwrap();
        let mut b = Sampler::new(params, logits.len()).unwrap();
        let ta: Vec<u32> = (0..8).map(|_| a.sample(&logits).unwrap().token).collect();
        let tb: Vec<u32> = (0..8).map(|_| b.sample(&logits).unwrap().token).collect();
        prop_assert_eq!(&ta, &tb);
        a.reset();
        let tc: Vec<u32> = (0..8).map(|_| a.sample(&logits).unwrap().token).collect();
        prop_assert_eq!(ta, tc);
    }

    /// Log-probabilities are the log-softmax of the raw logits; the top list is the best ranked.
    #[test]
    fn logprobs_equal_log_softmax(logits in logits_strategy(3000), token in any::<prop::sample::Index>(), n in 0usize..10) {
        let t = token.index(logits.len()) as u32;
        let want = log_softmax_f64(&logits);
        let got = logprobs(&logits, t, n).unwrap();
        let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-5 || (a == f32::NEG_INFINITY && b == f64::NEG_INFINITY);
        prop_assert!(close(got.token.logprob, want[t as usize]), "{} vs {}", got.token.logprob, want[t as usize]);
        let mut c = Candidates::from_logits(&logits);
        c.sort_all();
        prop_assert_eq!(got.top.len(), n.min(logits.len()));
        for (g, w) in got.top.iter().zip(c.items()) {
            prop_assert_eq!(g.token, w.id);
            prop_assert!(close(g.logprob, want[w.id as usize]));
        }
    }

    /// The sampler (top-k fast path, greedy shortcut, reused buffers) draws what the stages
    /// applied one by one draw, in any order, with the same seed.
    #[test]
    fn chain_matches_stage_by_stage(
        logits in logits_strategy(300), params in params_strategy(), order in order_strategy(),
        xtc in prop_oneof![Just(0.0f32), 0.0f32..=1.0], hist in prop::collection::vec(0u32..300, 0..12),
        bias in prop::collection::vec((0u32..300, -5.0f32..5.0), 0..3), dry in prop_oneof![Just(0.0f32), 0.5f32..2.0],
    ) {
        let n = logits.len() as u32;
        let mut bias: Vec<(u32, f32)> = bias.into_iter().map(|(t, b)| (t % n, b)).collect();
        bias.sort_by_key(|b| b.0);
        bias.dedup_by_key(|b| b.0);
        let hist: Vec<u32> = hist.into_iter().map(|t| t % n).collect();
        let params = SamplerParams {
            order,
            xtc_probability: xtc,
            xtc_threshold: 0.2,
            logit_bias: bias,
            dry: DryParams { multiplier: dry, base: 1.5, allowed_length: 1, last_n: 16, sequence_breakers: vec![vec![0]] },
            ..params
        };
        let mut s = Sampler::new(params.clone(), logits.len()).unwrap();
        for &t in &hist {
            s.accept(t).unwrap();
        }
        let got = s.sample(&logits).map(|x| x.token);
        let want = manual_chain(&params, &hist, &logits);
        prop_assert_eq!(got, want);
    }

    /// Arbitrary input never panics.
    #[test]
    fn no_panic_on_arbitrary_input(
        logits in prop::collection::vec(prop_oneof![any::<f32>(), -5.0f32..5.0], 0..64),
        temperature in any::<f32>(), top_p in any::<f32>(), min_p in any::<f32>(), top_k in any::<usize>(),
        repeat in any::<f32>(), hist in prop::collection::vec(0u32..80, 0..20), bias in prop::collection::vec((0u32..80, any::<f32>()), 0..3),
    ) {
        let params = SamplerParams {
            temperature, top_p, min_p, top_k, logit_bias: bias,
            penalties: PenaltyParams { repeat, ..Default::default() },
            ..Default::default()
        };
        if let Ok(mut s) = Sampler::new(params, logits.len().max(1)) {
            for t in hist {
                let _ = s.accept(t);
            }
            let _ = s.sample(&logits);
        }
        let _ = logprobs(&logits, 0, 3);
    }
}
