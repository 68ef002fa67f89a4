//! `worker-orcd bench`: prefill and decode throughput (medians over repeats), with the KV
//! cache's bytes and the process's peak resident memory.

use std::io::Write;

use super::{load_model, open, stdout_err, BackendArg, NumericsArg};
use crate::model::AnyModel;
use crate::{Error, Result};
use orcd_engine::bench::median;

/// The process's peak resident set (Linux `VmHWM`), if the platform reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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
) -> Result<()> {
    let col = super::column(backend, numerics);
    if prompt_tokens == 0 || repeats == 0 {
        return Err(Error::Invalid("--prompt-tokens and --repeats must be at least 1".into()));
    }
    let need = prompt_tokens + gen_tokens + 1;
    let n_ctx = ctx.unwrap_or(need);
    if n_ctx < need {
        return Err(Error::Invalid(format!(
            "--ctx {n_ctx} is smaller than --prompt-tokens + --gen-tokens + 1 = {need}"
        )));
    }
    let f = open(path)?;
    let mut m = load_model(col, &f, n_ctx)?;
    let (pp, tg) = bench_on(m.as_mut(), prompt_tokens, gen_tokens, repeats, json)?;
    let kv_bytes = m.kv_bytes();
    let peak = peak_rss_bytes();
    // Device backends: VRAM in use by category (weights, KV cache, workspace) after the run.
    let vram = m.device_memory();
    let model = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        let o = serde_json::json!({
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
        .map_err(stdout_err)
    }
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
