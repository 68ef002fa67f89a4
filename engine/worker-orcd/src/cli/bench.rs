//! `worker-orcd bench`: prefill and decode throughput (medians over repeats), with the KV
//! cache's bytes and the process's peak resident memory. With `--batch 1,4,16,64`, also batched
//! decode ([`orcd_engine::bench::batched`]) per sequence count: the model is loaded once with as
//! many sequences as the largest count; the single-sequence fields (`prefill_tok_s`,
//! `decode_tok_s`) stay the old one-sequence measurement ([`orcd_engine::bench::once`] on
//! sequence 0), and `"batched"` lists one entry per count (text: one line per count).

use std::io::Write;

use super::{load_model, open, stdout_err, BackendArg, NumericsArg};
use crate::model::AnyModel;
use crate::{Error, Result};
use orcd_engine::bench::{batched_n_ctx, median, MAX_BATCH};

/// The process's peak resident set (Linux `VmHWM`), if the platform reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `--batch LIST`: comma-separated sequence counts, each 1..=[`MAX_BATCH`], at least one.
pub(super) fn parse_batch(list: &str) -> Result<Vec<usize>> {
    let bad = |why: String| Error::Invalid(format!("--batch {list:?}: {why}"));
    let mut out = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad("an empty entry (want e.g. 1,4,16,64)".into()));
        }
        let b: usize = item.parse().map_err(|_| bad(format!("{item:?} is not a sequence count")))?;
        if b == 0 || b > MAX_BATCH {
            return Err(bad(format!("{b} sequences: each count must be 1..={MAX_BATCH}")));
        }
        out.push(b);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn bench(
    path: &std::path::Path,
    backend: Option<BackendArg>,
    numerics: Option<NumericsArg>,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeats: usize,
    ctx: Option<usize>,
    json: bool,
    batch: Option<&[usize]>,
) -> Result<()> {
    let col = super::column(backend, numerics);
    if prompt_tokens == 0 || repeats == 0 {
        return Err(Error::Invalid("--prompt-tokens and --repeats must be at least 1".into()));
    }
    let max_b = batch.and_then(|b| b.iter().copied().max());
    let (need, what) = match max_b {
        None => (prompt_tokens + gen_tokens + 1, "--prompt-tokens + --gen-tokens + 1".to_string()),
        Some(b) => (
            (prompt_tokens + gen_tokens + 1).max(batched_n_ctx(b, prompt_tokens, gen_tokens)),
            format!("--prompt-tokens + {} + --gen-tokens (the longest prompt of --batch {b}, then decode)", b - 1),
        ),
    };
    let n_ctx = ctx.unwrap_or(need);
    if n_ctx < need {
        return Err(Error::Invalid(format!("--ctx {n_ctx} is smaller than {what} = {need}")));
    }
    let f = open(path)?;
    let mut m = load_model(col, &f, n_ctx, max_b)?;
    let (pp, tg) = bench_on(m.as_mut(), prompt_tokens, gen_tokens, repeats, json)?;
    let rows = match batch {
        Some(list) => Some(batched_on(m.as_mut(), list, prompt_tokens, gen_tokens, repeats, json)?),
        None => None,
    };
    let kv_bytes = m.kv_bytes();
    let peak = peak_rss_bytes();
    // Device backends: VRAM in use by category (weights, KV cache, workspace) after the run.
    let vram = m.device_memory();
    let model = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        let mut o = serde_json::json!({
            "backend": col.backend.name(), "numerics": col.numerics.name(), "model": model,
            "prompt_tokens": prompt_tokens, "gen_tokens": gen_tokens, "prefill_tok_s": pp, "decode_tok_s": tg,
            "peak_rss_bytes": peak, "kv_bytes": kv_bytes, "n_ctx": n_ctx,
            "cpu_isa": (col.backend.name() == "cpu").then(orcd_backends::cpu_isa),
            "vram_bytes": vram.as_ref().map(|v| v.used()),
            "vram": vram.as_ref().map(|v| serde_json::json!({
                "device": v.device, "weights": v.weights, "kv": v.kv, "workspace": v.workspace,
                "free": v.free, "total": v.total,
            })),
            "kernel_profile": vram.as_ref().filter(|v| !v.kernel_profile.is_empty()).map(|v| v.kernel_profile.iter()
                .map(|(name, n, secs)| serde_json::json!({"kernel": name, "launches": n, "seconds": secs}))
                .collect::<Vec<_>>()),
        });
        if let (Some(rows), Some(obj)) = (&rows, o.as_object_mut()) {
            obj.insert("batched".into(), serde_json::Value::Array(rows.iter().map(BatchRow::json).collect()));
        }
        writeln!(out, "{o}").map_err(stdout_err)
    } else {
        writeln!(
            out,
            "{model}: {col}, pp{prompt_tokens} {pp:.1} tok/s, tg{gen_tokens} {tg:.1} tok/s (median of {repeats}); \
             KV cache {kv_bytes} bytes at n_ctx {n_ctx}, peak RSS {} bytes{}{}",
            peak.map_or("?".to_string(), |p| p.to_string()),
            if col.backend.name() == "cpu" { format!("; CPU {}", orcd_backends::cpu_isa()) } else { String::new() },
            vram.map_or(String::new(), |v| format!(
                "; VRAM on {}: {} bytes (weights {}, KV {}, workspace {})",
                v.device,
                v.used(),
                v.weights,
                v.kv,
                v.workspace
            ))
        )
        .map_err(stdout_err)?;
        for r in rows.iter().flatten() {
            writeln!(
                out,
                "batch {:>3}: decode {:.1} tok/s aggregate, {:.2} ms per step; prefill {:.1} tok/s \
                 (prompts of {}..{} tokens, one sequence per forward; tg{gen_tokens}, median of {repeats})",
                r.batch,
                r.decode_tok_s,
                r.step_ms,
                r.prefill_tok_s,
                prompt_tokens,
                prompt_tokens + r.batch - 1
            )
            .map_err(stdout_err)?;
        }
        Ok(())
    }
}

/// One `--batch` entry: medians over repeats of [`orcd_engine::bench::batched`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct BatchRow {
    batch: usize,
    prompt_tokens: usize,
    gen_tokens: usize,
    prefill_tok_s: f64,
    decode_tok_s: f64,
    step_ms: f64,
}

impl BatchRow {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "batch": self.batch, "prompt_tokens": self.prompt_tokens, "gen_tokens": self.gen_tokens,
            "prefill_tok_s": self.prefill_tok_s, "decode_tok_s": self.decode_tok_s, "step_ms": self.step_ms,
        })
    }
}

/// Every count of `list` in order, `repeats` times each (medians of each rate).
fn batched_on(
    m: &mut dyn AnyModel,
    list: &[usize],
    prompt_tokens: usize,
    gen_tokens: usize,
    repeats: usize,
    json: bool,
) -> Result<Vec<BatchRow>> {
    let mut rows = Vec::with_capacity(list.len());
    for &b in list {
        let (mut pp, mut tg, mut step) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..repeats {
            let run = orcd_engine::bench::batched(m, b, prompt_tokens, gen_tokens)?;
            pp.push(run.prefill_tok_s());
            if gen_tokens > 0 {
                tg.push(run.decode_tok_s());
                step.push(run.step_ms());
            }
            if !json {
                eprintln!(
                    "batch {b} repeat {}/{repeats}: prefill {:.1} tok/s, decode {:.1} tok/s, {:.2} ms per step",
                    r + 1,
                    run.prefill_tok_s(),
                    run.decode_tok_s(),
                    run.step_ms()
                );
            }
        }
        rows.push(BatchRow {
            batch: b,
            prompt_tokens,
            gen_tokens,
            prefill_tok_s: median(pp),
            decode_tok_s: median(tg),
            step_ms: median(step),
        });
    }
    Ok(rows)
}

/// Prefill and decode tok/s, medians over `repeats` ([`orcd_engine::bench::once`] each).
fn bench_on(
    m: &mut dyn AnyModel,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeats: usize,
    json: bool,
) -> Result<(f64, f64)> {
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    for r in 0..repeats {
        let (p, t) = orcd_engine::bench::once(m, prompt_tokens, gen_tokens)?;
        pp.push(p);
        if gen_tokens > 0 {
            tg.push(t);
        }
        if !json {
            eprintln!("repeat {}/{repeats}: prefill {p:.1} tok/s, decode {t:.1} tok/s", r + 1);
        }
    }
    Ok((median(pp), median(tg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_list_parses_in_order() {
        assert_eq!(parse_batch("1,4,16,64").ok(), Some(vec![1, 4, 16, 64]));
        assert_eq!(parse_batch(" 2 , 256").ok(), Some(vec![2, 256]));
        assert_eq!(parse_batch("3").ok(), Some(vec![3]));
    }

    #[test]
    fn batch_list_rejects_bad_counts_with_a_typed_error() {
        for bad in ["", "0", "1,,4", "257", "4,x", "-1", "1.5", "99999999999999999999999"] {
            match parse_batch(bad) {
                Err(Error::Invalid(msg)) => assert!(msg.starts_with("--batch"), "{bad:?}: {msg}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
