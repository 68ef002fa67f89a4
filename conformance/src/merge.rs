//! Merging shard results into one report. Inputs are `report.json` files (from
//! `orcd-gate run --partition K/N` on each machine) or folders of per-trial result files (what the
//! nextest target writes with `ORCD_RESULTS_DIR` set). Cases discovered here but absent from every
//! shard become not-run ("no shard produced a result") — never passed.
//!
//! A CPU machine and a GPU machine each run every case id; the CPU machine reports the cuda
//! columns not run ("no CUDA backend in this build yet" / no device), the GPU machine runs them.
//! So a not-run result yields to a real one (pass or fail) from another input, while two real
//! results that disagree stay an error: a case re-run on two machines must not silently pick one
//! verdict.

use std::collections::BTreeMap;
use std::path::Path;

use crate::case::{Backend, Case, CaseResult, Outcome};
use crate::{HarnessError, Result};

/// Read every result from one input (a report.json or a folder of `*.json` CaseResult files).
pub fn read_input(path: &Path) -> Result<Vec<CaseResult>> {
    let io = |p: &Path, e| HarnessError::Io { path: p.into(), source: e };
    if path.is_dir() {
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        for p in entries {
            let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
            let r: CaseResult = serde_json::from_str(&text)
                .map_err(|e| HarnessError::Report(format!("{}: not a case result: {e}", p.display())))?;
            out.push(r);
        }
        Ok(out)
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        Ok(crate::report::Report::from_json(&text)
            .map_err(|e| HarnessError::Report(format!("{}: {e}", path.display())))?
            .cases)
    }
}

/// Combine shard results. For the same case id in several shards: a not-run result yields to a
/// real one (pass or fail) whichever comes first; two real results must agree on the outcome label
/// (the first is kept), else it is an error; of several not-run results the first is kept.
/// With `expected`, every expected case without a result is added as not run.
pub fn merge(shards: Vec<Vec<CaseResult>>, expected: Option<&[Case]>) -> Result<Vec<CaseResult>> {
    let mut by_id: BTreeMap<String, CaseResult> = BTreeMap::new();
    for shard in shards {
        for r in shard {
            match by_id.get_mut(&r.id) {
                None => {
                    by_id.insert(r.id.clone(), r);
                }
                Some(prev) => match (is_real(&prev.outcome), is_real(&r.outcome)) {
                    // The earlier input did not run it; this one did.
                    (false, true) => *prev = r,
                    (true, false) | (false, false) => {}
                    (true, true) if prev.outcome.label() == r.outcome.label() => {}
                    (true, true) => {
                        return Err(HarnessError::Report(format!(
                            "case {} appears in two inputs with different outcomes ({} and {})",
                            r.id,
                            prev.outcome.label(),
                            r.outcome.label()
                        )))
                    }
                },
            }
        }
    }
    if let Some(cases) = expected {
        for c in cases {
            for &b in &c.backends {
                let id = c.id(b);
                by_id.entry(id.clone()).or_insert_with(|| missing(c, b, id));
            }
        }
    }
    Ok(by_id.into_values().collect())
}

/// A result from a run that actually happened (pass or fail), not a not-run placeholder.
fn is_real(o: &Outcome) -> bool {
    !matches!(o, Outcome::NotRun { .. })
}

fn missing(c: &Case, b: Backend, id: String) -> CaseResult {
    let reason = c
        .not_run_reason(b)
        .unwrap_or_else(|| "no shard produced a result for this case (skipped, filtered out or not run)".into());
    CaseResult {
        id,
        suite: c.suite.clone(),
        name: c.name.clone(),
        backend: b,
        source: c.source.display().to_string(),
        outcome: Outcome::NotRun { reason },
        duration_ms: 0.0,
        rerun: c.rerun_command(b),
        metrics: Default::default(),
        series: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, outcome: Outcome) -> CaseResult {
        let backend = if id.ends_with("::cuda") { Backend::Cuda } else { Backend::Cpu };
        CaseResult {
            id: id.into(),
            suite: "ops".into(),
            name: id.split("::").nth(1).unwrap_or_default().into(),
            backend,
            source: "generated".into(),
            outcome,
            duration_ms: 1.0,
            rerun: String::new(),
            metrics: Default::default(),
            series: Vec::new(),
        }
    }
    fn pass() -> Outcome {
        Outcome::Pass { detail: "ok".into() }
    }
    fn fail() -> Outcome {
        Outcome::Fail { message: "NMSE 1e-2 > 5e-4".into() }
    }
    fn not_run() -> Outcome {
        Outcome::NotRun { reason: "no CUDA backend in this build yet".into() }
    }
    fn outcome_of(m: &[CaseResult], id: &str) -> Outcome {
        m.iter().find(|x| x.id == id).map(|x| x.outcome.clone()).unwrap_or_else(|| panic!("{id} not merged"))
    }

    /// The CPU machine's report (cuda not run) merged with the GPU machine's (cuda run), in
    /// either order: the GPU verdict wins, including a failure.
    #[test]
    fn not_run_yields_to_a_real_result_in_either_order() {
        let cpu = vec![r("ops::add::cpu", pass()), r("ops::add::cuda", not_run()), r("ops::mul::cuda", not_run())];
        let gpu = vec![r("ops::add::cuda", pass()), r("ops::mul::cuda", fail())];
        for shards in [vec![cpu.clone(), gpu.clone()], vec![gpu, cpu]] {
            let m = merge(shards, None).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.len(), 3);
            assert_eq!(outcome_of(&m, "ops::add::cpu"), pass());
            assert_eq!(outcome_of(&m, "ops::add::cuda"), pass());
            assert_eq!(outcome_of(&m, "ops::mul::cuda"), fail(), "a GPU failure must survive the merge");
        }
    }

    #[test]
    fn two_real_results_that_disagree_are_an_error() {
        for (a, b) in [(pass(), fail()), (fail(), pass())] {
            let e = merge(vec![vec![r("ops::add::cuda", a)], vec![r("ops::add::cuda", b)]], None);
            let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains("ops::add::cuda") && msg.contains("different outcomes"), "{msg}");
        }
        // Also when a not-run result sits between them.
        let e = merge(
            vec![
                vec![r("ops::add::cuda", pass())],
                vec![r("ops::add::cuda", not_run())],
                vec![r("ops::add::cuda", fail())],
            ],
            None,
        );
        assert!(e.is_err());
    }

    #[test]
    fn agreeing_results_and_lone_not_runs_are_kept() {
        let m = merge(
            vec![
                vec![r("ops::add::cuda", fail()), r("ops::mul::cuda", not_run())],
                vec![r("ops::add::cuda", fail()), r("ops::mul::cuda", not_run())],
            ],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outcome_of(&m, "ops::add::cuda"), fail());
        assert_eq!(outcome_of(&m, "ops::mul::cuda"), not_run());
    }
}
