//! GET /metrics: Prometheus text exposition (format 0.0.4) of what the engine thread counted.
//!
//! Our own names are `orcd_*`. The same gauges are also written under the names the Kubernetes
//! Gateway API Inference Extension's model-server protocol reads from vLLM
//! (`vllm:num_requests_waiting`, `vllm:num_requests_running`, `vllm:kv_cache_usage_perc` and its
//! older name `vllm:gpu_cache_usage_perc`), so an existing endpoint picker can route across a fleet
//! of workers configured as vLLM model servers (docs/SERVING.md).
//!
//! Invariants: counters only grow; a histogram's buckets are cumulative and its `+Inf` bucket
//! equals its count; every finished request is counted once, under one `reason`.

use std::collections::BTreeMap;
use std::fmt::Write;

/// A Prometheus histogram with fixed upper bounds (seconds).
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative; the last is `+Inf`).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, v: f64) {
        let v = if v.is_finite() && v >= 0.0 { v } else { 0.0 };
        let i = self.bounds.iter().position(|&b| v <= b).unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            cum += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

const TTFT: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const ITL: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
const LONG: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// Counters and histograms, written by the engine thread.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    /// Finished requests by reason: `EOS`, `STOP_SEQUENCE`, `MAX_TOKENS`, `CANCELLED`, `timeout`,
    /// `error`.
    pub finished: BTreeMap<&'static str, u64>,
    pub rejected_queue_full: u64,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    pub engine_errors: u64,
    pub ttft: Histogram,
    pub inter_token: Histogram,
    pub queue_time: Histogram,
    pub e2e: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            finished: BTreeMap::new(),
            rejected_queue_full: 0,
            prompt_tokens: 0,
            generation_tokens: 0,
            engine_errors: 0,
            ttft: Histogram::new(TTFT),
            inter_token: Histogram::new(ITL),
            queue_time: Histogram::new(LONG),
            e2e: Histogram::new(LONG),
        }
    }
}

/// Live values read at scrape time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    pub running: u64,
    pub waiting: u64,
    pub kv_used: u64,
    pub kv_capacity: u64,
    pub prefix_reused: u64,
    /// Device bytes in use (`None` on host backends).
    pub vram_bytes: Option<u64>,
}

fn gauge(out: &mut String, name: &str, help: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
}

/// The exposition text. `model` labels the vLLM-named series (as vLLM labels them).
pub(crate) fn render(m: &Metrics, g: Gauges, model: &str) -> String {
    let mut out = String::new();
    let kv = if g.kv_capacity > 0 { g.kv_used as f64 / g.kv_capacity as f64 } else { 0.0 };
    let _ = writeln!(out, "# HELP orcd_requests_total Requests finished, by how they ended.");
    let _ = writeln!(out, "# TYPE orcd_requests_total counter");
    for r in ["EOS", "STOP_SEQUENCE", "MAX_TOKENS", "CANCELLED", "timeout", "error"] {
        let _ = writeln!(out, "orcd_requests_total{{reason=\"{r}\"}} {}", m.finished.get(r).copied().unwrap_or(0));
    }
    counter(
        &mut out,
        "orcd_requests_rejected_total",
        "Requests refused with 429 because the queue was full.",
        m.rejected_queue_full,
    );
    counter(&mut out, "orcd_prompt_tokens_total", "Prompt tokens of accepted requests.", m.prompt_tokens);
    counter(&mut out, "orcd_generation_tokens_total", "Tokens generated.", m.generation_tokens);
    counter(&mut out, "orcd_engine_errors_total", "Engine steps that failed.", m.engine_errors);
    counter(
        &mut out,
        "orcd_prefix_cache_reused_tokens_total",
        "Prompt tokens continued from a sequence's cached KV instead of recomputed.",
        g.prefix_reused,
    );
    gauge(&mut out, "orcd_requests_running", "Requests holding a sequence.", g.running);
    gauge(&mut out, "orcd_requests_waiting", "Requests waiting for a sequence.", g.waiting);
    gauge(&mut out, "orcd_kv_cache_usage_ratio", "Positions held by running requests over the KV capacity (0..1).", kv);
    gauge(&mut out, "orcd_kv_cache_tokens", "Positions held by running requests.", g.kv_used);
    if let Some(v) = g.vram_bytes {
        gauge(&mut out, "orcd_vram_bytes", "Device memory in use (weights, KV cache, workspace).", v);
    }
    m.ttft.render(&mut out, "orcd_time_to_first_token_seconds", "From arrival to the first token.");
    m.inter_token.render(&mut out, "orcd_inter_token_latency_seconds", "Between consecutive tokens of a request.");
    m.queue_time.render(&mut out, "orcd_request_queue_time_seconds", "From arrival to getting a sequence.");
    m.e2e.render(&mut out, "orcd_e2e_request_latency_seconds", "From arrival to the end of the request.");
    // The model-server protocol of the Gateway API Inference Extension, under vLLM's names.
    let label = model.replace('\\', "\\\\").replace('"', "\\\"");
    for (name, help, v) in [
        ("vllm:num_requests_running", "Requests running (Gateway API Inference Extension protocol).", g.running as f64),
        ("vllm:num_requests_waiting", "Requests queued (Gateway API Inference Extension protocol).", g.waiting as f64),
        ("vllm:kv_cache_usage_perc", "KV-cache utilisation, 0..1 (Gateway API Inference Extension protocol).", kv),
        ("vllm:gpu_cache_usage_perc", "KV-cache utilisation, 0..1 (the name before vLLM 0.10).", kv),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{model_name=\"{label}\"}} {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inf_is_the_count() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0, f64::NAN] {
            h.observe(v);
        }
        let mut s = String::new();
        h.render(&mut s, "x", "help");
        assert!(s.contains("x_bucket{le=\"0.1\"} 3\n"), "{s}"); // 0.05, 0.1 and NaN (as 0)
        assert!(s.contains("x_bucket{le=\"1\"} 4\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 5\n"), "{s}");
        assert!(s.contains("x_count 5\n"), "{s}");
    }
}
