//! Merging shard results into one report. Inputs are `report.json` files (from
//! `orcd-gate run --partition K/N` on each machine) or folders of per-trial result files (what the
//! nextest target writes with `ORCD_RESULTS_DIR` set). Cases discovered here but absent from every
//! shard become not-run ("no shard produced a result") — never passed.

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

/// Combine shard results. The same case id in two shards is an error unless both agree on the
/// outcome label (a case re-run on two machines must not silently pick one verdict).
/// With `expected`, every expected case without a result is added as not run.
pub fn merge(shards: Vec<Vec<CaseResult>>, expected: Option<&[Case]>) -> Result<Vec<CaseResult>> {
    let mut by_id: BTreeMap<String, CaseResult> = BTreeMap::new();
    for shard in shards {
        for r in shard {
            match by_id.get(&r.id) {
                Some(prev) if prev.outcome.label() != r.outcome.label() => {
                    return Err(HarnessError::Report(format!(
                        "case {} appears in two shards with different outcomes ({} and {})",
                        r.id,
                        prev.outcome.label(),
                        r.outcome.label()
                    )))
                }
                Some(_) => {}
                None => {
                    by_id.insert(r.id.clone(), r);
                }
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
