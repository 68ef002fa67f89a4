//! orcd-conformance: the data-driven conformance harness.
//!
//! - [`case`]: what a case is, its outcome (pass / fail / not-run-with-reason), backends.
//! - [`discover`]: finds cases — YAML case files under `goldens/**`, the generated malformed-GGUF
//!   corpus, external fixtures from the fetch cache.
//! - [`suites`]: one runner per suite (`gguf`, `quant`, ...). A runner compares the engine with a
//!   golden recorded from an independent reference; nothing compares the engine with itself
//!   (suite `ops` holds the other backends to the exact CPU backend, which the goldens hold).
//! - [`report`]: report.md, report.json, junit.xml from a set of results; [`html`]: report.html.
//! - [`gates`]: gates and integration checklists defined in `goldens/gates.yaml`.
//! - [`merge`]: results of several shards (nextest `--partition`, `orcd-gate run --partition`)
//!   into one report.
//!
//! Invariant: a case that cannot run here (file not fetched, no CUDA device) is `NotRun` with a
//! reason — never a pass.

pub mod case;
pub mod discover;
pub mod gates;
pub mod html;
pub mod merge;
pub mod paths;
pub mod report;
pub mod suites;

pub use case::{Backend, Case, CaseResult, Outcome};

/// The harness's error type.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{path}: invalid case file: {message}")]
    CaseFile { path: std::path::PathBuf, message: String },
    #[error("{0}")]
    Engine(#[from] orcd_engine::Error),
    #[error("{0}")]
    Report(String),
}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
