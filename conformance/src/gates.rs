//! Gates and integration checklists, defined in data (`goldens/gates.yaml`) and evaluated against
//! the results of a run. A gate is green only when every case it requires passed; a not-run case
//! or a requirement that selects no case makes it incomplete, with the reason shown.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::case::{Backend, CaseResult, Outcome};
use crate::{HarnessError, Result};

/// A selection of cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    pub suite: String,
    #[serde(default)]
    pub backend: Option<Backend>,
    /// Glob over case ids (`*` matches any run of characters).
    #[serde(default)]
    pub cases: Option<String>,
}

impl Requirement {
    pub fn selects(&self, r: &CaseResult) -> bool {
        (self.suite == "*" || r.suite == self.suite)
            && self.backend.is_none_or(|b| b == r.backend)
            && self.cases.as_ref().is_none_or(|g| glob(g, &r.id))
    }

    pub fn describe(&self) -> String {
        let mut s = format!("suite {}", self.suite);
        if let Some(b) = self.backend {
            s += &format!(" on {}", b.name());
        }
        if let Some(c) = &self.cases {
            s += &format!(" matching {c}");
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDef {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub require: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItemDef {
    pub text: String,
    /// Case id globs; the item is ticked only when all cases they select passed (and there is one).
    pub cases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistDef {
    pub model: String,
    pub title: String,
    pub items: Vec<ChecklistItemDef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatesFile {
    #[serde(default)]
    pub gates: Vec<GateDef>,
    #[serde(default)]
    pub checklists: Vec<ChecklistDef>,
}

impl GatesFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::Io { path: path.into(), source: e })?;
        serde_norway::from_str(&text)
            .map_err(|e| HarnessError::CaseFile { path: path.into(), message: format!("gates file: {e}") })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Green,
    Red,
    Incomplete,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Green => "green",
            Status::Red => "red",
            Status::Incomplete => "incomplete",
        }
    }
    pub fn icon(self) -> &'static str {
        match self {
            Status::Green => "✅",
            Status::Red => "❌",
            Status::Incomplete => "⬜",
        }
    }
}

/// A gate's verdict with the case ids behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub pass: usize,
    pub fail: usize,
    pub not_run: usize,
    /// Why the gate is not green: failed and not-run case ids with reasons, empty requirements.
    pub reasons: Vec<String>,
}

/// Evaluate a set of requirements: (status, pass, fail, not_run, reasons).
fn evaluate(require: &[Requirement], results: &[CaseResult]) -> (Status, usize, usize, usize, Vec<String>) {
    let (mut pass, mut fail, mut not_run) = (0, 0, 0);
    let mut reasons = Vec::new();
    let mut empty = false;
    for req in require {
        let selected: Vec<&CaseResult> = results.iter().filter(|r| req.selects(r)).collect();
        if selected.is_empty() {
            empty = true;
            reasons.push(format!("no case exists yet for {}", req.describe()));
        }
        for r in selected {
            match &r.outcome {
                Outcome::Pass { .. } => pass += 1,
                Outcome::Fail { message } => {
                    fail += 1;
                    reasons.push(format!("failed: {} — {}", r.id, message.lines().next().unwrap_or("")));
                }
                Outcome::NotRun { reason } => {
                    not_run += 1;
                    reasons.push(format!("not run: {} — {reason}", r.id));
                }
            }
        }
    }
    let status = if fail > 0 {
        Status::Red
    } else if not_run > 0 || empty {
        Status::Incomplete
    } else {
        Status::Green
    };
    (status, pass, fail, not_run, reasons)
}

pub fn evaluate_gate(gate: &GateDef, results: &[CaseResult]) -> GateResult {
    let (status, pass, fail, not_run, reasons) = evaluate(&gate.require, results);
    GateResult { id: gate.id.clone(), title: gate.title.clone(), status, pass, fail, not_run, reasons }
}

/// One checklist item's verdict and the case ids that prove it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItemResult {
    pub text: String,
    pub status: Status,
    pub cases: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistResult {
    pub model: String,
    pub title: String,
    pub items: Vec<ChecklistItemResult>,
}

pub fn evaluate_checklist(def: &ChecklistDef, results: &[CaseResult]) -> ChecklistResult {
    let items = def
        .items
        .iter()
        .map(|item| {
            let reqs: Vec<Requirement> = item
                .cases
                .iter()
                .map(|g| Requirement { suite: "*".into(), backend: None, cases: Some(g.clone()) })
                .collect();
            let (status, _, _, _, reasons) = evaluate(&reqs, results);
            let cases = results.iter().filter(|r| reqs.iter().any(|q| q.selects(r))).map(|r| r.id.clone()).collect();
            ChecklistItemResult { text: item.text.clone(), status, cases, reasons }
        })
        .collect();
    ChecklistResult { model: def.model.clone(), title: def.title.clone(), items }
}

impl ChecklistResult {
    /// The checklist as Markdown: one line per item, ticked only by passing cases, with their ids.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = format!("# Integration checklist — {}\n\n", self.title);
        let _ = writeln!(
            s,
            "Generated by `orcd-gate` from the cases that ran (see docs/INTEGRATION_CHECKLIST.md). \
             ✅ every named case passed · ❌ a case failed · ⬜ not run or no case yet.\n"
        );
        for it in &self.items {
            let box_ = if it.status == Status::Green { "[x]" } else { "[ ]" };
            let _ = writeln!(s, "- {box_} {} {}", it.status.icon(), it.text);
            if it.cases.is_empty() {
                let _ = writeln!(s, "  - no case yet");
            } else {
                let shown: Vec<String> = it.cases.iter().take(6).map(|c| format!("`{c}`")).collect();
                let more = if it.cases.len() > 6 { format!(" and {} more", it.cases.len() - 6) } else { String::new() };
                let _ = writeln!(s, "  - cases: {}{more}", shown.join(", "));
            }
            for r in it.reasons.iter().take(3) {
                let _ = writeln!(s, "  - {r}");
            }
        }
        s
    }
}

/// `*`-glob match (no other metacharacters).
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        assert!(glob("models::*qwen2*", "models::qwen2-tiny-f32::cpu"));
        assert!(glob("quant::*", "quant::x"));
        assert!(!glob("quant::*", "gguf::x"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXcYb"));
        assert!(glob("exact", "exact"));
        assert!(!glob("ab*ba", "aba"));
    }
}
