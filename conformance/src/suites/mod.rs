//! Suite runners. Each suite turns a [`Case`] into an [`Outcome`] by comparing the engine with a
//! golden recorded from an independent reference (see the suite's module doc for the reference
//! and the source of its tolerance) — except suite `ops`, whose reference is the exact CPU
//! backend run in the same process (see its module doc).

pub mod chat_template;
pub mod generate;
pub mod gguf;
pub mod models;
pub mod ops;
pub mod perf;
pub mod quant;
pub mod sampler;
pub mod server;
pub mod tokenizer;

use crate::case::{Backend, Case, CaseKind, Outcome};

/// The suites that exist, in report order.
pub const SUITES: &[&str] =
    &["gguf", "quant", "tokenizer", "chat_template", "sampler", "ops", "models", "generate", "server", "perf"];

/// What a case measured besides its verdict (shown in reports and plots).
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub metrics: std::collections::BTreeMap<String, f64>,
    pub series: Vec<crate::case::Series>,
}

pub fn run(case: &Case, backend: Backend) -> (Outcome, Measured) {
    let plain = |o: Outcome| (o, Measured::default());
    match &case.kind {
        CaseKind::Quant(q) => plain(quant::run(q, backend)),
        CaseKind::GgufMalformed { bytes, expected_kind, .. } => plain(gguf::run_malformed(bytes, expected_kind)),
        CaseKind::GgufInspect(c) => plain(gguf::run_inspect(c)),
        CaseKind::GgufTensors(c) => plain(gguf::run_tensors(c)),
        CaseKind::Sampler(c) => plain(sampler::run(c, backend)),
        CaseKind::Model(c) => models::run(c, backend),
        CaseKind::Tokenizer(c) => plain(tokenizer::run(c)),
        CaseKind::TokenizerStrings(c) => plain(tokenizer::run_strings(c)),
        CaseKind::ChatTemplate(c) => plain(chat_template::run(c)),
        CaseKind::Generate(c) => generate::run(c, backend),
        CaseKind::Op(c) => ops::run(c, &case.name, backend),
        CaseKind::Perf(c) => perf::run(c, backend),
        CaseKind::Server(c) => server::run(c, backend),
    }
}

/// Why a case cannot run on this machine (an external file that was not fetched).
pub fn not_run_reason(case: &Case) -> Option<String> {
    match &case.kind {
        CaseKind::GgufInspect(c) => c.file.missing_reason(),
        CaseKind::GgufTensors(c) => c.file.missing_reason(),
        CaseKind::Model(c) => c.file.file.missing_reason(),
        CaseKind::Generate(c) => c.file.missing_reason(),
        CaseKind::Tokenizer(c) => tokenizer::not_run_reason(c),
        CaseKind::TokenizerStrings(c) => tokenizer::strings_not_run_reason(c),
        CaseKind::Perf(c) => perf::not_run_reason(c),
        CaseKind::Server(c) => c.not_run_reason(),
        _ => None,
    }
}

/// First index where two f32 slices differ bitwise, with a readable description.
pub fn first_bit_mismatch(got: &[f32], want: &[f32]) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!("length {} != expected {}", got.len(), want.len()));
    }
    let bad = got.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits())?;
    let n_bad = got.iter().zip(want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    Some(format!(
        "{n_bad} of {} values differ; first at index {bad}: got {:?} (0x{:08x}), expected {:?} (0x{:08x})",
        got.len(),
        got[bad],
        got[bad].to_bits(),
        want[bad],
        want[bad].to_bits()
    ))
}
