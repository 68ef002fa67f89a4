//! Suite `models`: whole-model logits against a reference recorded on the same tokens.
//!
//! References (DESIGN §4): a float64 numpy forward pass on gguf-py-dequantized weights for
//! `numerics: exact` (goldens/recorders/record_models.py), llama.cpp's default run for
//! `numerics: fast` (goldens/recorders/record_llamacpp_logits.py). A case runs the engine with the
//! numerics of its reference: exact on the `cpu` / `cuda` columns, fast on `cpu-fast` / `cuda-fast`
//! (the backend registry's columns, `orcd_backends::Column`).
//! Metrics per case, over every position (thresholds live in the case file with their source):
//! - top-1 agreement on confident rows (reference top-1/top-2 margin ≥ `top1_margin`);
//! - KL(P_ref ‖ P_eng) per row, mean and max. The reference stores its top-k logits and the
//!   log-sum-exp, so KL is computed over the top-k plus one bucket for the rest of the vocabulary
//!   (a lower bound of the full KL; the bucket keeps it honest when mass leaks out of the top-k);
//! - max |Δlogit| over the reference top-k;
//! - greedy: the engine decodes step by step with its KV cache from the prompt; tokens must equal
//!   the reference's up to its first near-tie (margin < `top1_margin`);
//! - taps (short cases): NMSE of every named op output against the reference's; on failure the
//!   first tap over `tap_nmse` in forward order names where to look.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orcd_engine::model::{AnyModel, LoadOpts};
use orcd_engine::npy;
use orcd_engine::ops::{CollectTaps, NoTaps};
use serde::Deserialize;

use super::gguf::FileRef;
use super::Measured;
use crate::case::{Backend, Outcome, Series};

#[derive(Debug, Clone, Deserialize)]
pub struct Thresholds {
    pub top1_margin: f64,
    pub top1_min: f64,
    #[serde(default)]
    pub max_kl: Option<f64>,
    #[serde(default)]
    pub mean_kl: Option<f64>,
    #[serde(default)]
    pub max_abs_dlogit: Option<f64>,
    #[serde(default)]
    pub tap_nmse: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelCaseFile {
    pub name: String,
    #[serde(default)]
    pub arch: String,
    #[serde(flatten)]
    pub file: FileRef,
    pub numerics: String,
    pub tokens: Vec<u32>,
    pub logits_topk_ids: String,
    pub logits_topk: String,
    pub logits_lse: String,
    #[serde(default)]
    pub greedy: Vec<u32>,
    #[serde(default)]
    pub greedy_margins: Vec<f64>,
    pub thresholds: Thresholds,
    #[serde(default)]
    pub taps: BTreeMap<String, String>,
    /// For llama.cpp goldens: the f32 vector tier of the build that recorded them (`avx512`,
    /// `avx2`); the CPU fast path is bit-exact with it only on the same tier.
    #[serde(default)]
    pub reference_isa: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ModelCase {
    pub file: ModelCaseFile,
    pub dir: PathBuf,
}

fn load(dir: &Path, rel: &str) -> Result<npy::NpyArray, String> {
    npy::read(&dir.join(rel)).map_err(|e| e.to_string())
}

/// Sort key of a tap name in forward order.
fn tap_order(name: &str) -> (usize, usize, usize) {
    const IN_LAYER: [&str; 6] = ["attn_norm", "attn_out", "ffn_norm", "ffn_moe_logits", "ffn_out", "l_out"];
    if name == "token_embd" {
        return (0, 0, 0);
    }
    if let Some(rest) = name.strip_prefix("blk.") {
        if let Some((n, op)) = rest.split_once('.') {
            let l = n.parse().unwrap_or(usize::MAX);
            let o = IN_LAYER.iter().position(|x| *x == op).unwrap_or(IN_LAYER.len());
            return (1, l, o);
        }
    }
    match name {
        "result_norm" => (2, 0, 0),
        "logits" => (3, 0, 0),
        _ => (4, 0, 0),
    }
}

fn nmse(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

fn log_softmax_row(row: &[f32]) -> (f64, Vec<f64>) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    (lse, row.iter().map(|&v| v as f64 - lse).collect())
}

pub fn run(case: &ModelCase, backend: Backend) -> (Outcome, Measured) {
    let mut measured = Measured::default();
    match check(case, backend, &mut measured) {
        Ok(detail) => (Outcome::Pass { detail }, measured),
        Err(message) => (Outcome::Fail { message }, measured),
    }
}

/// The metrics of the module doc, with the engine on the trial's column (whose numerics must be
/// the case's: a case's reference fixes the numerics it is held to).
fn check(case: &ModelCase, backend: Backend, measured: &mut Measured) -> Result<String, String> {
    let c = &case.file;
    let column = backend.column();
    if column.numerics.name() != c.numerics {
        return Err(format!("case of numerics {:?} run on column {column}", c.numerics));
    }
    let load_on = |f: &orcd_engine::gguf::GgufFile, n_ctx: usize| -> Result<Box<dyn AnyModel>, String> {
        column
            .load(f, &LoadOpts { n_ctx: Some(n_ctx), ..LoadOpts::default() })
            .map_err(|e| format!("loading the model: {e}"))
    };
    let (f, _) = c.file.load()?;
    let ids = load(&case.dir, &c.logits_topk_ids)?.to_i32().map_err(|e| e.to_string())?;
    let top = load(&case.dir, &c.logits_topk)?.to_f32().map_err(|e| e.to_string())?;
    let lse = load(&case.dir, &c.logits_lse)?.to_f32().map_err(|e| e.to_string())?;
    let n = c.tokens.len();
    if n == 0 || lse.len() != n || ids.len() != top.len() || ids.len() % n != 0 {
        return Err(format!(
            "golden shapes disagree: {n} tokens, {} lse, {} top-k ids, {} top-k logits",
            lse.len(),
            ids.len(),
            top.len()
        ));
    }
    let k = ids.len() / n;
    let n_ctx = n + c.greedy.len() + 1;
    let mut model = load_on(&f, n_ctx)?;
    let vocab = model.hp().n_vocab;
    let mut taps = CollectTaps::default();
    let want_taps = !c.taps.is_empty();
    let logits = if want_taps { model.forward(&c.tokens, &mut taps) } else { model.forward(&c.tokens, &mut NoTaps) }
        .map_err(|e| format!("forward: {e}"))?;

    // Per-row metrics.
    let th = &c.thresholds;
    let (mut conf, mut agree) = (0usize, 0usize);
    let (mut kl_sum, mut kl_max, mut kl_arg) = (0f64, 0f64, 0usize);
    let (mut dmax, mut dpos) = (0f64, 0usize);
    let mut first_disagree = None;
    for r in 0..n {
        let row = &logits[r * vocab..(r + 1) * vocab];
        let (_, lp) = log_softmax_row(row);
        let rid = &ids[r * k..(r + 1) * k];
        let rlog = &top[r * k..(r + 1) * k];
        let margin = rlog[0] as f64 - rlog.get(1).copied().unwrap_or(f32::NEG_INFINITY) as f64;
        let eng_top =
            row.iter().enumerate().fold((0usize, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0;
        if margin >= th.top1_margin {
            conf += 1;
            if eng_top == rid[0] as usize {
                agree += 1;
            } else if first_disagree.is_none() {
                first_disagree = Some((r, rid[0], eng_top, margin));
            }
        }
        let (mut kl, mut pr_top, mut pe_top) = (0f64, 0f64, 0f64);
        for (&id, &rl) in rid.iter().zip(rlog) {
            let id = id as usize;
            if id >= vocab {
                return Err(format!("golden token id {id} out of the model's vocabulary {vocab}"));
            }
            let lpr = rl as f64 - lse[r] as f64;
            let pr = lpr.exp();
            kl += pr * (lpr - lp[id]);
            pr_top += pr;
            pe_top += lp[id].exp();
            let d = (row[id] as f64 - rl as f64).abs();
            if d > dmax {
                dmax = d;
                dpos = r;
            }
        }
        let (tr, te) = ((1.0 - pr_top).max(0.0), (1.0 - pe_top).max(1e-300));
        if tr > 0.0 {
            kl += tr * (tr / te).ln();
        }
        let kl = kl.max(0.0);
        kl_sum += kl;
        if kl > kl_max {
            kl_max = kl;
            kl_arg = r;
        }
    }
    let kl_mean = kl_sum / n as f64;
    let top1 = if conf == 0 { 1.0 } else { agree as f64 / conf as f64 };
    measured.metrics.insert("mean_kl".into(), kl_mean);
    measured.metrics.insert("max_kl".into(), kl_max);
    measured.metrics.insert("top1_confident".into(), top1);
    measured.metrics.insert("max_abs_dlogit".into(), dmax);

    // Localisation: NMSE of every tap against the reference, for the batch pass and for a
    // token-by-token pass through the KV cache (which is where cache bugs show).
    let mut tap_report = Vec::new();
    let mut first_bad_tap = None;
    if want_taps {
        let mut names: Vec<&String> = c.taps.keys().collect();
        names.sort_by_key(|s| tap_order(s));
        let mut refs = BTreeMap::new();
        for name in &names {
            refs.insert(*name, load(&case.dir, &c.taps[*name])?.to_f32().map_err(|e| e.to_string())?);
        }
        // Incremental pass: one token at a time, taps of each step appended in order.
        let mut inc = CollectTaps::default();
        let mut step_model = load_on(&f, n)?;
        for &t in &c.tokens {
            step_model.forward(&[t], &mut inc).map_err(|e| format!("incremental forward: {e}"))?;
        }
        let mut per_layer: BTreeMap<&str, Vec<[f64; 2]>> = BTreeMap::new();
        for (mode, collected) in [("batch", &taps), ("kv-cache decode", &inc)] {
            for name in &names {
                let want = &refs[*name];
                let got: Vec<f32> =
                    collected.taps.iter().filter(|t| &t.0 == *name).flat_map(|t| t.3.iter().copied()).collect();
                if got.is_empty() {
                    return Err(format!("the engine produced no tap named {name:?} ({mode} pass)"));
                }
                if got.len() != want.len() {
                    return Err(format!("tap {name} ({mode} pass): {} values, reference {}", got.len(), want.len()));
                }
                let e = nmse(&got, want);
                if let Some(limit) = th.tap_nmse {
                    if e > limit && first_bad_tap.is_none() {
                        first_bad_tap = Some(format!("{name} in the {mode} pass (NMSE {e:.3e} > {limit:.1e})"));
                    }
                }
                if mode == "batch" {
                    let (kind, layer, _) = tap_order(name);
                    if kind == 1 {
                        let op = name.rsplit('.').next().unwrap_or("");
                        per_layer.entry(op).or_default().push([layer as f64, e]);
                    }
                    tap_report.push(((*name).clone(), e));
                }
            }
        }
        for (op, pts) in per_layer {
            if op == "attn_out" || op == "ffn_out" || op == "l_out" {
                measured.series.push(Series {
                    name: format!("NMSE of blk.N.{op} vs reference"),
                    x_label: "layer".into(),
                    y_label: "NMSE".into(),
                    points: pts,
                    threshold: th.tap_nmse,
                });
            }
        }
    }

    // With taps the graph runs every op on its own; without, the fused ops (norm in the
    // projections, q/k/v in one launch, residual adds, RoPE with the KV write). A fused op's
    // contract is the composition's values, so the untapped forward must give these logits bit
    // for bit (on the GPU this is the only check of the fused forward against the tapped one).
    let mut fused_err = None;
    if want_taps {
        let fused =
            load_on(&f, n_ctx)?.forward(&c.tokens, &mut NoTaps).map_err(|e| format!("forward without taps: {e}"))?;
        if fused.len() != logits.len() {
            fused_err =
                Some(format!("the forward without taps gave {} logits, with taps {}", fused.len(), logits.len()));
        } else if let Some((i, (a, b))) =
            fused.iter().zip(&logits).enumerate().find(|(_, (a, b))| a.to_bits() != b.to_bits())
        {
            fused_err = Some(format!(
                "the forward without taps (fused ops) differs from the tapped one at position {}, token {}: {a} vs {b}",
                i / vocab,
                i % vocab
            ));
        }
    }

    // Greedy continuation with the KV cache: tokens must equal the reference's; the first
    // disagreement is excused only where the reference itself was at a near-tie (vLLM-style).
    let mut greedy_err = None;
    let mut greedy_ok = 0usize;
    let mut greedy_tie = None;
    if !c.greedy.is_empty() {
        let mut last = logits[(n - 1) * vocab..n * vocab].to_vec();
        for (step, &want) in c.greedy.iter().enumerate() {
            let margin = c.greedy_margins.get(step).copied().unwrap_or(f64::INFINITY);
            let got = last
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                .0 as u32;
            if got != want {
                if margin < th.top1_margin {
                    greedy_tie = Some(step);
                } else {
                    greedy_err = Some(format!(
                        "greedy step {step}: engine {got}, reference {want} (reference margin {margin:.3})"
                    ));
                }
                break;
            }
            greedy_ok += 1;
            if step + 1 == c.greedy.len() {
                break;
            }
            last = model.forward(&[got], &mut NoTaps).map_err(|e| format!("decode step {step}: {e}"))?;
        }
        measured.metrics.insert("greedy_steps_equal".into(), greedy_ok as f64);
    }
    let tie_note = greedy_tie.map(|s| format!(" (then a reference near-tie at step {s})")).unwrap_or_default();

    let mut errs = Vec::new();
    if top1 < th.top1_min {
        let d = first_disagree
            .map(|(r, w, g, m)| format!("; first at position {r}: reference {w}, engine {g}, margin {m:.3}"))
            .unwrap_or_default();
        errs.push(format!("top-1 on confident rows {top1:.4} < {} (margin ≥ {}){d}", th.top1_min, th.top1_margin));
    }
    if let Some(t) = th.max_kl {
        if kl_max > t {
            errs.push(format!("max KL {kl_max:.3e} > {t:.1e} at position {kl_arg}"));
        }
    }
    if let Some(t) = th.mean_kl {
        if kl_mean > t {
            errs.push(format!("mean KL {kl_mean:.3e} > {t:.1e}"));
        }
    }
    if let Some(t) = th.max_abs_dlogit {
        if dmax > t {
            errs.push(format!("max |Δlogit| over the reference top-{k} {dmax:.4} > {t} at position {dpos}"));
        }
    }
    if let Some(e) = greedy_err {
        errs.push(e);
    }
    if let Some(e) = fused_err {
        errs.push(e);
    }
    if let Some(t) = &first_bad_tap {
        errs.push(format!("first divergent op: {t}"));
    }
    // Which tier computed what: a CPU fast run on another tier than the golden's build is within
    // the thresholds but not expected bit-exact (docs/perf/NOTES.md, the AVX2 tier).
    let tier_note = match (&c.reference_isa, column.backend.name(), column.numerics.name()) {
        (Some(r), "cpu", "fast") => {
            let ours = orcd_backends::cpu_isa();
            if ours.starts_with(r.as_str()) {
                format!("; {r} tier as the golden's build")
            } else {
                format!("; engine on the {ours}, golden from llama.cpp's {r} build (not expected bit-exact)")
            }
        }
        _ => String::new(),
    };
    let summary = format!(
        "{n} positions: top-1 {top1:.4} ({agree}/{conf} confident rows), KL mean {kl_mean:.2e} max {kl_max:.2e}, max |Δlogit| {dmax:.4}, greedy {greedy_ok}/{} equal{tie_note}{tier_note}",
        c.greedy.len()
    );
    if errs.is_empty() {
        Ok(summary)
    } else {
        let worst: Vec<String> = tap_report
            .iter()
            .filter(|t| th.tap_nmse.is_some_and(|l| t.1 > l))
            .take(5)
            .map(|t| format!("{} {:.2e}", t.0, t.1))
            .collect();
        let taps_line =
            if worst.is_empty() { String::new() } else { format!("\n  taps over threshold: {}", worst.join(", ")) };
        Err(format!("{} (metric vs threshold)\n  {summary}{taps_line}", errs.join("; ")))
    }
}
