//! Reports from results: `report.md`, `report.json` (schema `orcd-gate-report/1`, documented in
//! docs/REPORT_SCHEMA.md) and `junit.xml`. Not-run cases are listed with their reason and are
//! never counted as passed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::case::{Backend, CaseResult, Outcome};
use crate::gates::{evaluate_checklist, evaluate_gate, ChecklistResult, GateResult, GatesFile, Status};
use crate::{HarnessError, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub not_run: usize,
    pub total: usize,
}

impl Counts {
    fn add(&mut self, o: &Outcome) {
        self.total += 1;
        match o {
            Outcome::Pass { .. } => self.pass += 1,
            Outcome::Fail { .. } => self.fail += 1,
            Outcome::NotRun { .. } => self.not_run += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteCounts {
    pub suite: String,
    pub backend: Backend,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The whole report (what `report.json` holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub generated_unix: u64,
    pub git_commit: Option<String>,
    pub totals: Counts,
    pub suites: Vec<SuiteCounts>,
    pub gates: Vec<GateResult>,
    pub checklists: Vec<ChecklistResult>,
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub fn new(mut cases: Vec<CaseResult>, git_commit: Option<String>, generated_unix: u64, defs: &GatesFile) -> Self {
        cases.sort_by(|a, b| a.id.cmp(&b.id));
        let mut totals = Counts::default();
        let mut per: BTreeMap<(String, Backend), Counts> = BTreeMap::new();
        for c in &cases {
            totals.add(&c.outcome);
            per.entry((c.suite.clone(), c.backend)).or_default().add(&c.outcome);
        }
        let suites = per.into_iter().map(|((suite, backend), counts)| SuiteCounts { suite, backend, counts }).collect();
        // Results of the emulated CUDA device count as not run for the gates and checklists: they
        // say nothing of a GPU.
        let judged: Vec<CaseResult> = cases
            .iter()
            .map(|c| match crate::case::ran_emulated(c) {
                true => CaseResult {
                    outcome: Outcome::NotRun {
                        reason: "ran on the emulated CUDA device (ORCD_CUDA_EMU=1), not a GPU".into(),
                    },
                    ..c.clone()
                },
                false => c.clone(),
            })
            .collect();
        let gates = defs.gates.iter().map(|g| evaluate_gate(g, &judged)).collect();
        let checklists = defs.checklists.iter().map(|c| evaluate_checklist(c, &judged)).collect();
        Report {
            schema: "orcd-gate-report/1".into(),
            generated_unix,
            git_commit,
            totals,
            suites,
            gates,
            checklists,
            cases,
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let t = &self.totals;
        let _ = writeln!(s, "# orcd-gate report\n");
        if let Some(c) = &self.git_commit {
            let _ = writeln!(s, "commit `{c}`\n");
        }
        let verdict = if t.fail > 0 {
            "**FAIL**"
        } else if t.not_run > 0 {
            "**INCOMPLETE** (no failures, but some cases did not run)"
        } else {
            "**PASS**"
        };
        let _ = writeln!(
            s,
            "{verdict}: {} passed, {} failed, {} not run, of {} cases.\n",
            t.pass, t.fail, t.not_run, t.total
        );
        let emulated = self.cases.iter().filter(|c| crate::case::ran_emulated(c)).count();
        if emulated > 0 {
            let _ = writeln!(
                s,
                "**{emulated} results of the cuda columns ran on the emulated CUDA device (ORCD_CUDA_EMU=1: the \
                 kernels on the host), not a GPU.** They check the backend's logic; the gates below count them \
                 as not run.\n"
            );
        }
        let _ = writeln!(s, "| suite | backend | pass | fail | not run | total |\n|---|---|---:|---:|---:|---:|");
        for x in &self.suites {
            let c = &x.counts;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                x.suite,
                x.backend.name(),
                c.pass,
                c.fail,
                c.not_run,
                c.total
            );
        }
        if !self.gates.is_empty() {
            let _ = writeln!(s, "\n## Gates\n\n| gate | status | pass | fail | not run |\n|---|---|---:|---:|---:|");
            for g in &self.gates {
                let _ = writeln!(
                    s,
                    "| {} | {} {} | {} | {} | {} |",
                    g.title,
                    g.status.icon(),
                    g.status.label(),
                    g.pass,
                    g.fail,
                    g.not_run
                );
            }
            for g in self.gates.iter().filter(|g| g.status != Status::Green) {
                let _ = writeln!(s, "\n**{}** is {}:\n", g.title, g.status.label());
                for r in g.reasons.iter().take(12) {
                    let _ = writeln!(s, "- {r}");
                }
                if g.reasons.len() > 12 {
                    let _ = writeln!(s, "- … and {} more", g.reasons.len() - 12);
                }
            }
        }
        if !self.checklists.is_empty() {
            let _ = writeln!(s, "\n## Integration checklists\n");
            for c in &self.checklists {
                let done = c.items.iter().filter(|i| i.status == Status::Green).count();
                let _ =
                    writeln!(s, "- [{}](checklists/{}.md): {done} of {} items ticked", c.title, c.model, c.items.len());
            }
        }
        let fails: Vec<_> = self.cases.iter().filter(|c| matches!(c.outcome, Outcome::Fail { .. })).collect();
        if !fails.is_empty() {
            let _ = writeln!(s, "\n## Failures\n");
            for c in fails {
                if let Outcome::Fail { message } = &c.outcome {
                    let _ = writeln!(s, "### `{}`\n\n```\n{}\n```\n", c.id, message.trim_end());
                }
            }
        }
        let not_run: Vec<_> = self.cases.iter().filter(|c| matches!(c.outcome, Outcome::NotRun { .. })).collect();
        if !not_run.is_empty() {
            let _ = writeln!(s, "\n## Not run\n\n| case | reason |\n|---|---|");
            for c in not_run {
                if let Outcome::NotRun { reason } = &c.outcome {
                    let _ = writeln!(s, "| `{}` | {} |", c.id, reason.replace('|', "\\|"));
                }
            }
        }
        let _ = writeln!(s, "\n## Cases\n\n| case | outcome | ms |\n|---|---|---:|");
        for c in &self.cases {
            let _ = writeln!(s, "| `{}` | {} | {:.1} |", c.id, c.outcome.label(), c.duration_ms);
        }
        s
    }

    pub fn junit(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let t = &self.totals;
        let _ = writeln!(
            s,
            "<testsuites name=\"orcd-gate\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            t.total, t.fail, t.not_run
        );
        for x in &self.suites {
            let c = &x.counts;
            let _ = writeln!(
                s,
                "  <testsuite name=\"{}.{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
                xml(&x.suite),
                x.backend.name(),
                c.total,
                c.fail,
                c.not_run
            );
            for r in self.cases.iter().filter(|r| r.suite == x.suite && r.backend == x.backend) {
                let _ = write!(
                    s,
                    "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.3}\"",
                    xml(&r.suite),
                    r.backend.name(),
                    xml(&r.name),
                    r.duration_ms / 1e3
                );
                match &r.outcome {
                    Outcome::Pass { .. } => s.push_str("/>\n"),
                    Outcome::Fail { message } => {
                        let first = message.lines().next().unwrap_or("");
                        let _ = writeln!(
                            s,
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                            xml(first),
                            xml(message)
                        );
                    }
                    Outcome::NotRun { reason } => {
                        let _ =
                            writeln!(s, ">\n      <skipped message=\"not run: {}\"/>\n    </testcase>", xml(reason));
                    }
                }
            }
            s.push_str("  </testsuite>\n");
        }
        s.push_str("</testsuites>\n");
        s
    }

    /// Write report.md, report.html, report.json, junit.xml and checklists/<model>.md into `dir`.
    pub fn write(&self, dir: &Path, peers: &crate::html::Peers) -> Result<()> {
        let io = |p: &Path, e| HarnessError::Io { path: p.into(), source: e };
        std::fs::create_dir_all(dir.join("checklists")).map_err(|e| io(dir, e))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| HarnessError::Report(e.to_string()))?;
        let html = crate::html::render(self, peers);
        for (name, body) in
            [("report.md", self.markdown()), ("report.html", html), ("report.json", json), ("junit.xml", self.junit())]
        {
            let p = dir.join(name);
            std::fs::write(&p, body).map_err(|e| io(&p, e))?;
        }
        for c in &self.checklists {
            let p = dir.join("checklists").join(format!("{}.md", c.model));
            std::fs::write(&p, c.markdown()).map_err(|e| io(&p, e))?;
        }
        Ok(())
    }

    /// Parse a `report.json`.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| HarnessError::Report(format!("report.json: {e}")))
    }
}

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push_str(&format!("&#x{:x};", c as u32)),
            c => o.push(c),
        }
    }
    o
}
