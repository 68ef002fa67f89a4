//! Case discovery: every `*.yaml` under `goldens/` that names a `suite` is a case file (one file,
//! one case); generated cases (the malformed-GGUF corpus, the `ops` suite) are added by their suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::case::{Backend, Case, CaseKind};
use crate::suites::{gguf, quant};
use crate::{HarnessError, Result};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(HarnessError::Io { path: dir.into(), source: e }),
    };
    for entry in rd {
        let entry = entry.map_err(|e| HarnessError::Io { path: dir.into(), source: e })?;
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

fn bad(path: &Path, message: impl std::fmt::Display) -> HarnessError {
    HarnessError::CaseFile { path: path.into(), message: message.to_string() }
}

/// Parse one case file; `Ok(None)` for YAML files that are not cases (no `suite` key).
pub fn load_case_file(path: &Path) -> Result<Option<Case>> {
    let text = std::fs::read_to_string(path).map_err(|e| HarnessError::Io { path: path.into(), source: e })?;
    let value: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| bad(path, e))?;
    let Some(suite) = value.get("suite").and_then(|s| s.as_str()).map(str::to_string) else {
        return Ok(None);
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (name, kind) = match suite.as_str() {
        "quant" => {
            let file: quant::QuantCaseFile = serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            (file.name.clone(), CaseKind::Quant(quant::QuantCase { file, dir }))
        }
        "gguf" => match value.get("check").and_then(|c| c.as_str()) {
            Some("inspect") => {
                let c: gguf::InspectCase = serde_norway::from_value(value).map_err(|e| bad(path, e))?;
                (c.name.clone(), CaseKind::GgufInspect(Box::new(c)))
            }
            Some("tensors") => {
                let c: gguf::TensorsCase = serde_norway::from_value(value).map_err(|e| bad(path, e))?;
                (c.name.clone(), CaseKind::GgufTensors(Box::new(c)))
            }
            other => return Err(bad(path, format!("gguf case with unknown check {other:?}"))),
        },
        "sampler" => {
            let c: crate::suites::sampler::SamplerCase = serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            (c.name.clone(), CaseKind::Sampler(Box::new(c)))
        }
        "tokenizer" => {
            let file: crate::suites::tokenizer::StringsCaseFile =
                serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            (file.name.clone(), CaseKind::TokenizerStrings(Box::new(file)))
        }
        "chat_template" => {
            let file: crate::suites::chat_template::ChatCaseFile =
                serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            (file.name.clone(), CaseKind::ChatTemplate(Box::new(crate::suites::chat_template::ChatCase { file, dir })))
        }
        "models" => {
            let file: crate::suites::models::ModelCaseFile =
                serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            (file.name.clone(), CaseKind::Model(Box::new(crate::suites::models::ModelCase { file, dir })))
        }
        "generate" => {
            let c: crate::suites::generate::GenerateCase = serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            (c.name.clone(), CaseKind::Generate(Box::new(c)))
        }
        "perf" => {
            let c: crate::suites::perf::PerfCase = serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            (c.name.clone(), CaseKind::Perf(Box::new(c)))
        }
        "server" => {
            let file: crate::suites::server::ServerCaseFile =
                serde_norway::from_value(value).map_err(|e| bad(path, e))?;
            let golden = match &file.golden {
                Some(g) => {
                    let gp = dir.join(g);
                    let text = std::fs::read_to_string(&gp)
                        .map_err(|e| bad(path, format!("its golden {}: {e}", gp.display())))?;
                    let c: crate::suites::generate::GenerateCase = serde_norway::from_str(&text)
                        .map_err(|e| bad(path, format!("its golden {}: {e}", gp.display())))?;
                    Some(c)
                }
                None => None,
            };
            (file.name.clone(), CaseKind::Server(Box::new(crate::suites::server::ServerCase { file, golden })))
        }
        other => return Err(bad(path, format!("unknown suite {other:?}"))),
    };
    // Model cases run on every column of their numerics; generation on the fast ones (its
    // reference is llama.cpp's default run); the rest is backend-independent host code.
    let backends = match &kind {
        CaseKind::Model(m) => match orcd_backends::Numerics::parse(&m.file.numerics) {
            Some(n) => Backend::of_numerics(n),
            None => return Err(bad(path, format!("numerics {:?}: unknown (exact or fast)", m.file.numerics))),
        },
        CaseKind::Generate(_) => Backend::of_numerics(orcd_backends::Numerics::Fast),
        CaseKind::Server(s) if s.golden.is_some() => Backend::of_numerics(orcd_backends::Numerics::Fast),
        // The HTTP contract does not depend on the column: the CPU's default serves it.
        CaseKind::Server(_) => vec![Backend::CpuFast],
        // The CPU peer competes with the CPU's default (fast) numerics.
        CaseKind::Perf(_) => vec![Backend::CpuFast],
        _ => vec![Backend::Cpu],
    };
    Ok(Some(Case { suite, name, source: path.into(), backends, kind }))
}

/// All cases: case files under `goldens` plus generated ones, sorted by id.
pub fn discover(goldens: &Path) -> Result<Vec<Case>> {
    let mut files = Vec::new();
    walk(goldens, &mut files)?;
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        if let Some(c) = load_case_file(&f)? {
            cases.push(c);
        }
    }
    for (name, description, bytes, expected_kind) in gguf::malformed_cases() {
        cases.push(Case {
            suite: "gguf".into(),
            name: format!("malformed-{name}"),
            source: PathBuf::from(format!("orcd-fixtures malformed corpus: {name} ({description})")),
            backends: vec![Backend::Cpu],
            kind: CaseKind::GgufMalformed { bytes: Arc::new(bytes), expected_kind, description },
        });
    }
    cases.extend(crate::suites::tokenizer::cases());
    cases.extend(crate::suites::ops::cases());
    cases.sort_by(|a, b| (&a.suite, &a.name).cmp(&(&b.suite, &b.name)));
    for w in cases.windows(2) {
        if w[0].suite == w[1].suite && w[0].name == w[1].name {
            return Err(bad(&w[1].source, format!("duplicate case name {}::{}", w[1].suite, w[1].name)));
        }
    }
    Ok(cases)
}
