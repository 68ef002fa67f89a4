//! Suite `perf`: the engine's throughput against a peer measured in the same run, on the same
//! file and machine (DESIGN §9, issue 14). Rounds alternate ours (in process:
//! `orcd_engine::bench::once` on the case's column, the model loaded once and warmed) and the
//! peer (llama.cpp through llama-cpp-python, `conformance/peer/llamacpp_cpu.py`, a process a
//! round, as many threads as ours); the case passes when the ratio of the medians reaches each
//! floor the case file states (with the issue it comes from). Absolute numbers are never
//! compared with recorded ones: only same-run ratios decide.
//!
//! Not run, with the reason, where the peer is not installed, the model is not fetched, or
//! `ORCD_PERF` is not `1`: the measurement takes minutes and wants an otherwise idle machine,
//! so the test run (`cargo nextest`, cases in parallel) leaves it to the gate run (`ci/gate.sh`
//! sets it).

use serde::Deserialize;

use super::gguf::FileRef;
use super::Measured;
use crate::case::{Backend, Outcome};
use crate::paths;

/// The installed llama-cpp-python this suite's peer is pinned to (goldens/recorders/requirements.txt).
const PEER_VERSION: &str = "0.3.36";

#[derive(Debug, Clone, Deserialize)]
pub struct PerfCase {
    pub name: String,
    #[serde(flatten)]
    pub file: FileRef,
    /// The peer, in words (what the report shows beside the ratio).
    pub peer: String,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    /// Alternating rounds (ours, then the peer); medians over them.
    pub rounds: usize,
    pub thresholds: PerfThresholds,
}

/// Floors on ours / peer (medians of the rounds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerfThresholds {
    pub prefill_ratio: f64,
    pub decode_ratio: f64,
}

fn python() -> String {
    std::env::var("ORCD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Why the peer cannot run here (not installed, or another version than the pinned one).
fn peer_missing() -> Option<String> {
    let out =
        std::process::Command::new(python()).args(["-c", "import llama_cpp; print(llama_cpp.__version__)"]).output();
    match out {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            (v != PEER_VERSION).then(|| {
                format!("llama-cpp-python {v} is installed; the peer is {PEER_VERSION} (goldens/recorders/requirements.txt)")
            })
        }
        _ => Some(format!(
            "llama-cpp-python {PEER_VERSION} (the peer) is not installed here: pip install -r goldens/recorders/requirements.txt"
        )),
    }
}

pub fn not_run_reason(c: &PerfCase) -> Option<String> {
    if std::env::var_os("ORCD_PERF").is_none_or(|v| v != "1") {
        return Some(
            "perf cases run with ORCD_PERF=1 (ci/gate.sh sets it): minutes of alternating measurement that want an idle machine"
                .into(),
        );
    }
    if c.file.file.is_none() && c.file.fixture.is_none() {
        return Some("perf cases measure a fetched file (`file:`) or a generated one (`fixture:`)".into());
    }
    c.file.missing_reason().or_else(peer_missing)
}

/// The case's model as a file on disk, which the peer opens too: a fetched file as it is; a
/// synthetic fixture generated once into `<cache>/generated/<fixture>.gguf` (kept while its
/// sha256 is the case's, regenerated otherwise). Either way the bytes are the case's
/// `file_sha256`.
fn model_path(c: &PerfCase) -> Result<std::path::PathBuf, String> {
    if let Some(rel) = &c.file.file {
        return Ok(paths::external(rel));
    }
    let Some(name) = &c.file.fixture else { return Err(format!("{}: neither `file` nor `fixture`", c.name)) };
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("{}: fixture name {name:?} is not a plain name", c.name));
    }
    let dir = paths::external("generated");
    let path = dir.join(format!("{name}.gguf"));
    if path.is_file() && super::gguf::sha256_path(&path)? == c.file.file_sha256 {
        return Ok(path);
    }
    let bytes = super::gguf::synthetic_fixture(name).ok_or_else(|| format!("unknown synthetic fixture {name:?}"))?;
    let sha = super::gguf::sha256_bytes(&bytes);
    if sha != c.file.file_sha256 {
        return Err(format!(
            "fixture {name} has sha256 {sha}, the case was recorded on {} (python3 goldens/recorders/record_perf_cases.py)",
            c.file.file_sha256
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!("{name}.gguf.tmp"));
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// One peer round: (prefill tok/s, decode tok/s, the build's instruction-set tier).
fn peer_round(c: &PerfCase, path: &std::path::Path, threads: usize) -> Result<(f64, f64, String), String> {
    let script = paths::repo_root().join("conformance/peer/llamacpp_cpu.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(path)
        .arg(c.prompt_tokens.to_string())
        .arg(c.gen_tokens.to_string())
        .arg(threads.to_string())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the peer ({}) failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no message")
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("the peer's output is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_f64()).ok_or_else(|| format!("the peer's output lacks {k}: {v}"));
    let info = v.get("system_info").and_then(|x| x.as_str()).unwrap_or("");
    let tier = if info.contains("AVX512 = 1") {
        "avx512"
    } else if info.contains("AVX2 = 1") {
        "avx2"
    } else {
        "unknown"
    };
    Ok((get("prefill_tok_s")?, get("decode_tok_s")?, format!("{tier} build")))
}

/// Bytes streamed by the read-bandwidth probe: far past any last-level cache.
const PROBE_BYTES: usize = 256 << 20;

/// The machine's read bandwidth, measured on demand: a `PROBE_BYTES` buffer in the memory the
/// engine keeps its weights in (huge-page mappings, `orcd_cpu::pages`: the ceiling is then what
/// the engine's own reads could reach), made once and read again at each measurement.
struct Probe {
    buf: orcd_cpu::pages::WeightBytes,
}

impl Probe {
    fn new() -> Probe {
        Probe { buf: orcd_cpu::pages::WeightBytes::from_slice(&vec![1u8; PROBE_BYTES]) }
    }

    /// GB/s with `threads` threads now (best of 3 passes summing the buffer, each thread its own
    /// contiguous part). Decode streams every weight once a token, so `bandwidth / file bytes`
    /// bounds any engine's decode at that bandwidth (a shared host's bandwidth moves with its
    /// other tenants, minute by minute: the figure is this moment's).
    fn read_gbs(&self, threads: usize) -> f64 {
        const WORD: u64 = 0x0101_0101_0101_0101;
        let buf = &self.buf;
        let per = (buf.len() / 8).div_ceil(threads.max(1)) * 8;
        let mut best = 0f64;
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            let total: u64 = std::thread::scope(|sc| {
                let parts: Vec<_> = buf
                    .chunks(per)
                    .map(|c| {
                        sc.spawn(move || {
                            c.chunks_exact(8)
                                .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
                                .fold(0u64, u64::wrapping_add)
                        })
                    })
                    .collect();
                parts.into_iter().map(|h| h.join().unwrap_or(0)).fold(0u64, u64::wrapping_add)
            });
            let secs = t0.elapsed().as_secs_f64();
            // Every word is WORD: a sum short of that means a part did not run (no figure).
            if total != (buf.len() as u64 / 8).wrapping_mul(WORD) || secs <= 0.0 {
                return f64::NAN;
            }
            best = best.max(PROBE_BYTES as f64 / secs / 1e9);
        }
        best
    }
}

/// Each round's decode ratio beside the bandwidth probed right after our round (`bw[i]`), as
/// `ratio@GB/s`: whether the low rounds are the slow-memory minutes.
fn rounds_with_bandwidth(ours_tg: &[f64], peer_tg: &[f64], bw: &[f64]) -> String {
    ours_tg.iter().zip(peer_tg).zip(bw).map(|((o, p), b)| format!("{:.2}@{b:.1}", o / p)).collect::<Vec<_>>().join(" ")
}

/// The decode ceiling the read bandwidth allows (tok/s) and what it says of the decode floor:
/// `Some(note)` where `floor × peer` is above the ceiling.
fn ceiling_note(bw_gbs: f64, file_bytes: u64, peer_tg: f64, floor: f64) -> (f64, Option<String>) {
    let ceiling = bw_gbs * 1e9 / file_bytes.max(1) as f64;
    let note = (ceiling.is_finite() && floor * peer_tg > ceiling).then(|| {
        format!(
            "the decode floor ({floor:.2}× the peer = {:.1} tok/s) is above the read-bandwidth ceiling measured in \
             this run ({ceiling:.1} tok/s = {bw_gbs:.1} GB/s / {:.0} MB a token; the peer decodes at {:.0}% of it): \
             no engine reaches it at that bandwidth",
            floor * peer_tg,
            file_bytes as f64 / 1e6,
            100.0 * peer_tg / ceiling
        )
    });
    (ceiling, note)
}

pub fn run(c: &PerfCase, backend: Backend) -> (Outcome, Measured) {
    let fail = |message: String| (Outcome::Fail { message }, Measured::default());
    if c.rounds == 0 || c.prompt_tokens == 0 || c.gen_tokens == 0 {
        return fail(format!("{}: rounds, prompt_tokens and gen_tokens must be at least 1", c.name));
    }
    let path = match model_path(c) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    // A fetched file is checked against its sha256 here; a generated one was in `model_path`.
    let opened = if c.file.file.is_some() {
        c.file.load().map(|(f, _)| f)
    } else {
        orcd_engine::gguf::GgufFile::open(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let f = match opened {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let opts = orcd_engine::model::LoadOpts { n_ctx: Some(c.prompt_tokens + c.gen_tokens + 8), ..Default::default() };
    let mut m = match backend.column().load(&f, &opts) {
        Ok(m) => m,
        Err(e) => return fail(format!("load on {}: {e}", backend.name())),
    };
    let threads = orcd_backends::cpu_threads();
    // One untimed pass: page the weights in and warm the caches, as the peer's first pass does.
    if let Err(e) = orcd_engine::bench::once(m.as_mut(), c.prompt_tokens, c.gen_tokens) {
        return fail(format!("bench on {}: {e}", backend.name()));
    }
    // The bandwidth probe runs before the rounds, after our part of each round (the minutes our
    // decode ran in) and after the rounds: the host's other tenants move it from minute to
    // minute, and a reading taken only around the rounds can miss the minutes of the rounds.
    let probe = Probe::new();
    let mut bw_all = vec![probe.read_gbs(threads)];
    let mut bw_rounds = Vec::with_capacity(c.rounds);
    let (mut ours_pp, mut ours_tg, mut peer_pp, mut peer_tg) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut peer_build = String::new();
    for _ in 0..c.rounds {
        match orcd_engine::bench::once(m.as_mut(), c.prompt_tokens, c.gen_tokens) {
            Ok((pp, tg)) => {
                ours_pp.push(pp);
                ours_tg.push(tg);
            }
            Err(e) => return fail(format!("bench on {}: {e}", backend.name())),
        }
        bw_rounds.push(probe.read_gbs(threads));
        match peer_round(c, &path, threads) {
            Ok((pp, tg, build)) => {
                peer_pp.push(pp);
                peer_tg.push(tg);
                peer_build = build;
            }
            Err(e) => return fail(e),
        }
    }
    use orcd_engine::bench::median;
    // Each round's own ratio (ours beside the peer run right after it): their spread shows how
    // much the host moved during the run. The decision stays on the ratio of the medians.
    let (spp, stg) = (spread(&ours_pp, &peer_pp), spread(&ours_tg, &peer_tg));
    let per_round = rounds_with_bandwidth(&ours_tg, &peer_tg, &bw_rounds);
    let (opp, otg, ppp, ptg) = (median(ours_pp), median(ours_tg), median(peer_pp), median(peer_tg));
    let (rpp, rtg) = (opp / ppp, otg / ptg);
    bw_all.extend(&bw_rounds);
    bw_all.push(probe.read_gbs(threads));
    drop(probe);
    // The ceiling from the median reading, as the decode figures are medians: one fast or slow
    // minute does not set it.
    let (bw_lo, bw_hi) = bw_all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &b| (l.min(b), h.max(b)));
    let bw = median(bw_all);
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (ceiling, note) = ceiling_note(bw, file_bytes, ptg, c.thresholds.decode_ratio);
    let mut measured = Measured::default();
    for (k, v) in [
        ("prefill_tok_s", opp),
        ("decode_tok_s", otg),
        ("peer_prefill_tok_s", ppp),
        ("peer_decode_tok_s", ptg),
        ("prefill_ratio", rpp),
        ("decode_ratio", rtg),
        ("threads", threads as f64),
        ("read_bandwidth_gbs", bw),
        ("read_bandwidth_min_gbs", bw_lo),
        ("read_bandwidth_max_gbs", bw_hi),
        ("decode_ceiling_tok_s", ceiling),
    ] {
        measured.metrics.insert(k.into(), v);
    }
    let summary = format!(
        "{} rounds, {threads} threads, pp{} / tg{}: prefill {opp:.1} vs {ppp:.1} tok/s ({rpp:.2}×), decode {otg:.1} vs \
         {ptg:.1} tok/s ({rtg:.2}×) against {} ({peer_build}); ours on the {}; read bandwidth {bw:.1} GB/s (median of {} \
         probes beside the rounds, {bw_lo:.1}–{bw_hi:.1}): decode ceiling {ceiling:.1} tok/s, ours at {:.0}%, the peer \
         at {:.0}%; round by round the ratios ran prefill {:.2}–{:.2}×, decode {:.2}–{:.2}× (decode ratio @ GB/s: \
         {per_round})",
        c.rounds,
        c.prompt_tokens,
        c.gen_tokens,
        c.peer,
        orcd_backends::cpu_isa(),
        c.rounds + 2,
        100.0 * otg / ceiling,
        100.0 * ptg / ceiling,
        spp.0,
        spp.1,
        stg.0,
        stg.1
    );
    match shortfalls(rpp, rtg, &c.thresholds) {
        None => (Outcome::Pass { detail: summary }, measured),
        Some(why) => {
            let note = note.filter(|_| rtg < c.thresholds.decode_ratio).map(|n| format!("\n  {n}")).unwrap_or_default();
            (Outcome::Fail { message: format!("{why} (medians){note}\n  {summary}") }, measured)
        }
    }
}

/// The lowest and highest of the rounds' own ratios `ours[i] / peer[i]` (NaN, NaN for none).
fn spread(ours: &[f64], peer: &[f64]) -> (f64, f64) {
    let r: Vec<f64> = ours.iter().zip(peer).map(|(o, p)| o / p).collect();
    if r.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (r.iter().copied().fold(f64::INFINITY, f64::min), r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
}

/// What falls short of the floors (`None`: both reached). A NaN ratio (a peer that reported 0
/// tok/s, say) falls short.
fn shortfalls(prefill_ratio: f64, decode_ratio: f64, t: &PerfThresholds) -> Option<String> {
    let mut errs = Vec::new();
    if prefill_ratio.is_nan() || prefill_ratio < t.prefill_ratio {
        errs.push(format!("prefill {prefill_ratio:.2}× < {:.2}×", t.prefill_ratio));
    }
    if decode_ratio.is_nan() || decode_ratio < t.decode_ratio {
        errs.push(format!("decode {decode_ratio:.2}× < {:.2}×", t.decode_ratio));
    }
    (!errs.is_empty()).then(|| errs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: PerfThresholds = PerfThresholds { prefill_ratio: 1.2, decode_ratio: 1.5 };

    #[test]
    fn both_floors_reached_passes() {
        assert_eq!(shortfalls(1.2, 1.5, &T), None);
        assert_eq!(shortfalls(3.0, 2.0, &T), None);
    }

    #[test]
    fn each_floor_missed_is_named() {
        assert_eq!(shortfalls(1.19, 1.6, &T).as_deref(), Some("prefill 1.19× < 1.20×"));
        assert_eq!(shortfalls(1.3, 1.0, &T).as_deref(), Some("decode 1.00× < 1.50×"));
        let both = shortfalls(0.5, 0.5, &T).unwrap_or_default();
        assert!(both.contains("prefill") && both.contains("decode"), "{both}");
    }

    #[test]
    fn the_ceiling_note_appears_only_where_the_floor_is_above_the_bandwidth() {
        // 30 GB/s over a 531 MB file: 56.5 tok/s. A peer at 47 tok/s needs 70.5 for 1.5×.
        let (ceiling, note) = ceiling_note(30.0, 531_000_000, 47.0, 1.5);
        assert!((ceiling - 56.497).abs() < 0.01, "{ceiling}");
        let note = note.unwrap_or_default();
        assert!(note.contains("above the read-bandwidth ceiling measured") && note.contains("83%"), "{note}");
        // A peer at 30 tok/s: 45 < 56.5, reachable.
        assert_eq!(ceiling_note(30.0, 531_000_000, 30.0, 1.5).1, None);
        // No bandwidth figure (NaN): no claim either way.
        assert_eq!(ceiling_note(f64::NAN, 531_000_000, 47.0, 1.5).1, None);
    }

    #[test]
    fn the_bandwidth_probe_reports_a_positive_figure_each_time() {
        let probe = Probe::new();
        for _ in 0..2 {
            let bw = probe.read_gbs(2);
            assert!(bw.is_finite() && bw > 0.0, "{bw}");
        }
    }

    #[test]
    fn each_round_is_shown_beside_its_bandwidth() {
        let s = rounds_with_bandwidth(&[60.0, 90.0], &[40.0, 45.0], &[31.04, 58.96]);
        assert_eq!(s, "1.50@31.0 2.00@59.0");
    }

    #[test]
    fn the_spread_is_of_paired_rounds() {
        // Each round against its own peer run: 2.0, 1.5, 1.2.
        assert_eq!(spread(&[200.0, 150.0, 240.0], &[100.0, 100.0, 200.0]), (1.2, 2.0));
        let (lo, hi) = spread(&[], &[]);
        assert!(lo.is_nan() && hi.is_nan());
    }

    #[test]
    fn a_nan_ratio_falls_short() {
        assert!(shortfalls(f64::NAN, 2.0, &T).is_some());
        assert!(shortfalls(2.0, f64::INFINITY / f64::INFINITY, &T).is_some());
    }

    #[test]
    fn the_case_files_parse_with_their_floors() {
        for name in ["cpu-smollm2-135m-q4_1", "cpu-gemma3-270m-q4_k_m", "cpu-qwen2-real-q8_0"] {
            let p = paths::goldens_dir().join("perf").join(format!("{name}.yaml"));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let c: PerfCase = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(c.name, name);
            assert!(c.rounds >= 5, "issue 14: medians of at least 5 rounds");
            assert!(c.thresholds.prefill_ratio >= 1.2 && c.thresholds.decode_ratio >= 1.5);
        }
    }
}
