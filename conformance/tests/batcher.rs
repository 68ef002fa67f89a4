//! Continuous batching (orcd_engine::batcher): the same request with the same seed gives the same
//! tokens alone or beside others joining and leaving, on both CPU columns and every synthetic
//! architecture; a request alone gives exactly what `generate` (the CLI's path) gives; waiting
//! requests start as sequences free up; cancelling works in both states; a prompt longer than the
//! context is refused with both counts. Sampling is not greedy (temperature 0.8, top-k 40, seeds
//! per request), so a wrong logits row or a shared RNG would change the draws.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;

use orcd_backends::Column;
use orcd_conformance::suites::gguf::{synthetic_fixture, synthetic_missing_reason};
use orcd_engine::batcher::{Batcher, Event, RequestId, MIN_PREFILL_ROWS};
use orcd_engine::generate::{generate, GenerateParams, StopReason};
use orcd_engine::gguf::GgufFile;
use orcd_engine::model::LoadOpts;
use orcd_engine::sampler::SamplerParams;
use orcd_engine::tokenizer::Tokenizer;

fn params(seed: u64, max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        stop: Vec::new(),
        sampler: SamplerParams { seed, temperature: 0.8, ..SamplerParams::default() },
        top_logprobs: 0,
    }
}

/// Per request: its token ids and how it ended.
type Outcomes = BTreeMap<RequestId, (Vec<u32>, Option<StopReason>)>;

fn collect(out: &mut Outcomes) -> impl FnMut(Event) + '_ {
    move |e| match e {
        Event::Token(id, t) => out.entry(id).or_default().0.push(t.id),
        Event::Done(id, s) => out.entry(id).or_default().1 = Some(s.stop_reason),
        Event::Error(id, m) => panic!("request {id} failed: {m}"),
        Event::Started(..) => {}
    }
}

fn fixture(name: &str) -> Option<(GgufFile, Tokenizer)> {
    if let Some(reason) = synthetic_missing_reason(name) {
        panic!("{name}: cannot run: {reason}");
    }
    let f = GgufFile::from_bytes(synthetic_fixture(name).unwrap()).unwrap();
    let tok = Tokenizer::from_gguf(&f).unwrap();
    Some((f, tok))
}

const PROMPTS: [&[u32]; 4] = [&[1, 5, 9, 200], &[1, 77, 3000], &[1, 42, 1000, 7, 8, 9, 10, 11, 12], &[1, 3]];

#[test]
fn same_seed_same_tokens_alone_or_beside_others() {
    let mut checked = 0;
    for arch in ["llama", "qwen2", "phi3", "gpt2", "gpt-oss"] {
        let Some((f, tok)) = fixture(&format!("model-{arch}-tiny-q8_0-seed1")) else { continue };
        for column in [Column::CPU_EXACT, Column::CPU_FAST] {
            let load =
                |n_seq| column.load(&f, &LoadOpts { n_ctx: Some(64), n_seq: Some(n_seq), kv_type: None }).unwrap();
            // Alone: each request in a batcher of its own, and through `generate`.
            let mut alone = Vec::new();
            for (i, p) in PROMPTS.iter().enumerate() {
                let mut b = Batcher::new(load(1), 4);
                let mut out = Outcomes::new();
                let id = b.submit(p.to_vec(), params(100 + i as u64, 12)).unwrap();
                b.run_all(&tok, &mut collect(&mut out)).unwrap();
                let (ids, end) = out.remove(&id).unwrap();
                let mut m = load(1);
                let mut via_generate = Vec::new();
                let s = generate(m.as_mut(), &tok, p, &params(100 + i as u64, 12), |t| {
                    via_generate.push(t.id);
                    true
                })
                .unwrap();
                assert_eq!(ids, via_generate, "{arch} on {column}: request {i} alone differs from generate");
                assert_eq!(end, Some(s.stop_reason));
                alone.push(ids);
            }
            // Together: two sequences for four requests (two wait), the last two submitted after
            // the first step, so requests join a running batch and leave it at different steps.
            let mut b = Batcher::new(load(2), 4);
            let mut out = Outcomes::new();
            let mut ids = vec![b.submit(PROMPTS[0].to_vec(), params(100, 12)).unwrap()];
            ids.push(b.submit(PROMPTS[1].to_vec(), params(101, 12)).unwrap());
            assert!(b.step(&tok, &mut collect(&mut out)).unwrap());
            ids.push(b.submit(PROMPTS[2].to_vec(), params(102, 12)).unwrap());
            ids.push(b.submit(PROMPTS[3].to_vec(), params(103, 12)).unwrap());
            assert_eq!((b.running(), b.waiting()), (2, 2));
            b.run_all(&tok, &mut collect(&mut out)).unwrap();
            assert_eq!((b.running(), b.waiting()), (0, 0));
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(out[id].0, alone[i], "{arch} on {column}: request {i} beside others differs from alone");
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} architecture × column runs");
}

#[test]
fn cancel_waiting_and_running_requests() {
    let (f, tok) = fixture("model-llama-tiny-q8_0-seed1").unwrap();
    let m = Column::CPU_FAST.load(&f, &LoadOpts { n_ctx: Some(64), n_seq: Some(1), kv_type: None }).unwrap();
    let mut b = Batcher::new(m, 4);
    let mut out = Outcomes::new();
    let running = b.submit(vec![1, 5, 9], params(1, 40)).unwrap();
    let waiting = b.submit(vec![1, 7], params(2, 40)).unwrap();
    let after = b.submit(vec![1, 8], params(3, 3)).unwrap();
    b.step(&tok, &mut collect(&mut out)).unwrap();
    b.cancel(waiting);
    b.cancel(running);
    b.cancel(running); // twice is harmless
    b.run_all(&tok, &mut collect(&mut out)).unwrap();
    assert_eq!(out[&waiting], (vec![], Some(StopReason::Cancelled)), "a waiting request ends without a token");
    let (toks, end) = &out[&running];
    assert_eq!(*end, Some(StopReason::Cancelled));
    assert!(toks.len() <= 2, "a running request stops at its next token, got {}", toks.len());
    // The freed sequence serves the next request.
    assert_eq!(out[&after].1, Some(StopReason::MaxTokens));
    assert_eq!(out[&after].0.len(), 3);
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_with_both_counts() {
    let (f, _tok) = fixture("model-llama-tiny-q8_0-seed1").unwrap();
    let m = Column::CPU_FAST.load(&f, &LoadOpts { n_ctx: Some(16), n_seq: Some(1), kv_type: None }).unwrap();
    let mut b = Batcher::new(m, 1);
    let e = b.submit(vec![1; 20], params(1, 4)).unwrap_err().to_string();
    assert!(e.contains("20 tokens") && e.contains("16"), "{e}");
    assert!(b.submit(vec![], params(1, 4)).is_err());
    b.submit(vec![1, 2], params(1, 4)).unwrap();
    let full = b.submit(vec![1, 2], params(1, 4)).unwrap_err().to_string();
    assert!(full.contains("queue is full"), "{full}");
}

/// Per request: (token id, logprob bits) of every token — a changed bit anywhere in the last
/// logits row shows.
type Exact = BTreeMap<RequestId, Vec<(u32, u32)>>;

fn collect_exact(out: &mut Exact) -> impl FnMut(Event) + '_ {
    move |e| match e {
        Event::Token(id, t) => out.entry(id).or_default().push((t.id, t.logprob.to_bits())),
        Event::Error(id, m) => panic!("request {id} failed: {m}"),
        _ => {}
    }
}

#[test]
fn prefix_reuse_gives_the_tokens_of_a_fresh_prefill_bit_for_bit() {
    let mut checked = 0;
    let cases = [
        ("llama", "q8_0"),
        ("llama", "q4_k"),
        ("qwen2", "q8_0"),
        ("phi3", "q8_0"),
        ("gpt2", "q8_0"),
        ("gpt-oss", "q8_0"),
    ];
    for (arch, ty) in cases {
        let Some((f, tok)) = fixture(&format!("model-{arch}-tiny-{ty}-seed1")) else { continue };
        for column in [Column::CPU_EXACT, Column::CPU_FAST] {
            let load =
                |n_seq| column.load(&f, &LoadOpts { n_ctx: Some(96), n_seq: Some(n_seq), kv_type: None }).unwrap();
            let turn1: Vec<u32> = (0..20).map(|i| 1 + (i * 37 % 900)).collect();
            // One sequence with reuse on: turn 1, then turn 2 (turn 1 + its answer + more).
            let mut b = Batcher::new(load(1), 4);
            b.set_prefix_reuse(true);
            let mut out = Exact::new();
            let id1 = b.submit(turn1.clone(), params(7, 12)).unwrap();
            b.run_all(&tok, &mut collect_exact(&mut out)).unwrap();
            let answer: Vec<u32> = out[&id1].iter().map(|t| t.0).collect();
            let mut turn2 = turn1.clone();
            turn2.extend(&answer);
            turn2.extend((0..10).map(|i| 3 + i * 11));
            let id2 = b.submit(turn2.clone(), params(8, 12)).unwrap();
            b.run_all(&tok, &mut collect_exact(&mut out)).unwrap();
            assert_eq!(b.reused_tokens(), turn1.len() as u64, "{arch}-{ty} on {column}: turn 1's prompt reused");
            // The same turn 2 again: its own prompt is cached now (all but the last rows reused).
            let id3 = b.submit(turn2.clone(), params(8, 12)).unwrap();
            b.run_all(&tok, &mut collect_exact(&mut out)).unwrap();
            assert_eq!(b.reused_tokens(), (turn1.len() + turn2.len() - MIN_PREFILL_ROWS) as u64);
            // Fresh: no reuse.
            let mut fresh = Batcher::new(load(1), 4);
            let mut fout = Exact::new();
            let f1 = fresh.submit(turn1.clone(), params(7, 12)).unwrap();
            let f2 = fresh.submit(turn2.clone(), params(8, 12)).unwrap();
            fresh.run_all(&tok, &mut collect_exact(&mut fout)).unwrap();
            assert_eq!(fresh.reused_tokens(), 0);
            assert_eq!(out[&id1], fout[&f1]);
            assert_eq!(out[&id2], fout[&f2], "{arch}-{ty} on {column}: turn 2 reusing turn 1 differs from fresh");
            assert_eq!(out[&id3], fout[&f2], "{arch}-{ty} on {column}: turn 2 reusing itself differs from fresh");
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked} runs");
}

#[test]
fn prefix_reuse_picks_the_sequence_holding_the_prefix() {
    let (f, tok) = fixture("model-llama-tiny-q8_0-seed1").unwrap();
    let m = Column::CPU_FAST.load(&f, &LoadOpts { n_ctx: Some(96), n_seq: Some(2), kv_type: None }).unwrap();
    let mut b = Batcher::new(m, 4);
    b.set_prefix_reuse(true);
    let a: Vec<u32> = (0..16).map(|i| 2 + i * 13).collect();
    let c: Vec<u32> = (0..16).map(|i| 5 + i * 17).collect();
    let mut out = Exact::new();
    b.submit(a.clone(), params(1, 2)).unwrap();
    b.submit(c.clone(), params(2, 2)).unwrap();
    b.run_all(&tok, &mut collect_exact(&mut out)).unwrap();
    // c's continuation goes to the sequence that holds c (the second), not the first free one.
    let mut c2 = c.clone();
    c2.extend([9, 10, 11, 12, 13, 14, 15, 16]);
    b.submit(c2, params(3, 2)).unwrap();
    b.run_all(&tok, &mut collect_exact(&mut out)).unwrap();
    assert_eq!(b.reused_tokens(), c.len() as u64);
    // A short prompt (fewer rows than MIN_PREFILL_ROWS to prefill) is never reused from.
    b.submit(vec![1, 2, 3], params(4, 2)).unwrap();
    b.run_all(&tok, &mut collect_exact(&mut out)).unwrap();
    assert_eq!(b.reused_tokens(), c.len() as u64);
}
