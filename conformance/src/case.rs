//! Cases, backends and outcomes.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A column a case runs on: a (backend, numerics) pair of the backend registry
/// (`orcd_backends::Column`). `cpu` and `cuda` are the exact numerics, `cpu-fast` and `cuda-fast`
/// the fast ones. Backend-independent suites (gguf, quant, tokenizer, ...) run on `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Backend {
    #[serde(rename = "cpu")]
    Cpu,
    #[serde(rename = "cpu-fast")]
    CpuFast,
    #[serde(rename = "cuda")]
    Cuda,
    #[serde(rename = "cuda-fast")]
    CudaFast,
}

impl Backend {
    pub const ALL: [Backend; 4] = [Backend::Cpu, Backend::CpuFast, Backend::Cuda, Backend::CudaFast];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::CpuFast => "cpu-fast",
            Backend::Cuda => "cuda",
            Backend::CudaFast => "cuda-fast",
        }
    }

    /// The registry column this trial runs on.
    pub fn column(self) -> orcd_backends::Column {
        use orcd_backends::Column;
        match self {
            Backend::Cpu => Column::CPU_EXACT,
            Backend::CpuFast => Column::CPU_FAST,
            Backend::Cuda => Column::CUDA_EXACT,
            Backend::CudaFast => Column::CUDA_FAST,
        }
    }

    pub fn from_column(c: orcd_backends::Column) -> Self {
        match (c.backend, c.numerics) {
            (orcd_backends::BackendKind::Cpu, orcd_backends::Numerics::Exact) => Backend::Cpu,
            (orcd_backends::BackendKind::Cpu, orcd_backends::Numerics::Fast) => Backend::CpuFast,
            (orcd_backends::BackendKind::Cuda, orcd_backends::Numerics::Exact) => Backend::Cuda,
            (orcd_backends::BackendKind::Cuda, orcd_backends::Numerics::Fast) => Backend::CudaFast,
        }
    }

    /// The columns of a numerics (`exact` / `fast`), CPU first.
    pub fn of_numerics(numerics: orcd_backends::Numerics) -> Vec<Backend> {
        orcd_backends::BackendKind::ALL
            .into_iter()
            .map(|backend| Backend::from_column(orcd_backends::Column { backend, numerics }))
            .collect()
    }

    pub fn parse(s: &str) -> Option<Self> {
        Backend::ALL.into_iter().find(|b| b.name() == s)
    }
}

/// What a case runs; each variant is handled by one suite runner.
#[derive(Debug, Clone)]
pub enum CaseKind {
    /// A quant golden (YAML + .npy) recorded with gguf-py.
    Quant(crate::suites::quant::QuantCase),
    /// A malformed GGUF file that must be rejected with a given error kind.
    GgufMalformed { bytes: Arc<Vec<u8>>, expected_kind: String, description: String },
    /// Reader output vs gguf-py's reading of the same file.
    GgufInspect(Box<crate::suites::gguf::InspectCase>),
    /// Every tensor of a file dequantized vs gguf-py's dequantization (sha256 per tensor).
    GgufTensors(Box<crate::suites::gguf::TensorsCase>),
    /// A sampler golden (exact probability vectors from llama.cpp's test-sampling.cpp).
    Sampler(Box<crate::suites::sampler::SamplerCase>),
    /// Whole-model logits against a recorded reference.
    Model(Box<crate::suites::models::ModelCase>),
    /// One input of llama.cpp's vocab suites.
    Tokenizer(Box<crate::suites::tokenizer::TokenizerCase>),
    /// Strings tokenized by llama.cpp on one vocabulary.
    TokenizerStrings(Box<crate::suites::tokenizer::StringsCaseFile>),
    /// A chat template rendered by jinja2.
    ChatTemplate(Box<crate::suites::chat_template::ChatCase>),
    /// Greedy generation end to end against llama.cpp's.
    Generate(Box<crate::suites::generate::GenerateCase>),
    /// One op on one shape, type and parameters against the exact CPU backend (generated).
    Op(Box<crate::suites::ops::OpCase>),
    /// Throughput against a peer measured in the same run (suite `perf`).
    Perf(Box<crate::suites::perf::PerfCase>),
    /// Greedy generation through the HTTP server against a `generate` golden (suite `server`).
    Server(Box<crate::suites::server::ServerCase>),
}

/// One case (the backend is chosen when it runs).
#[derive(Debug, Clone)]
pub struct Case {
    pub suite: String,
    pub name: String,
    /// The case file (or a description of the generator) — printed on failure.
    pub source: PathBuf,
    pub backends: Vec<Backend>,
    pub kind: CaseKind,
}

impl Case {
    /// The trial id: `suite::name::backend` (what nextest filters on).
    pub fn id(&self, backend: Backend) -> String {
        format!("{}::{}::{}", self.suite, self.name, backend.name())
    }

    /// The exact command that reruns this case alone.
    pub fn rerun_command(&self, backend: Backend) -> String {
        // The perf suite measures only when asked to (suites/perf.rs).
        let env = if self.suite == "perf" { "ORCD_PERF=1 " } else { "" };
        format!("{env}cargo nextest run -p orcd-conformance --test conformance -E 'test(={})'", self.id(backend))
    }

    /// Why this case cannot run here, if it cannot.
    pub fn not_run_reason(&self, backend: Backend) -> Option<String> {
        if let Some(reason) = backend.column().unavailable() {
            return Some(reason);
        }
        crate::suites::not_run_reason(self)
    }
}

/// The outcome of one case on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Pass { detail: String },
    Fail { message: String },
    NotRun { reason: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass { .. } => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::NotRun { .. } => "not_run",
        }
    }
}

/// A case's result as reports carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub suite: String,
    pub name: String,
    pub backend: Backend,
    pub source: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub duration_ms: f64,
    pub rerun: String,
    /// Named measurements (e.g. `mean_kl`, `decode_tok_s`, `peer_decode_tok_s`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// Curves for plots (e.g. error per layer, with the threshold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
}

/// A curve a case measured, plotted in the HTML report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub x_label: String,
    pub y_label: String,
    pub points: Vec<[f64; 2]>,
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// Run one case on one backend, timing it, turning a panic into a failure.
/// The metric that marks a result of a cuda column run on the emulated device (ORCD_CUDA_EMU=1).
pub const EMULATED_METRIC: &str = "cuda_emulated";

/// Whether `r` ran on the emulated CUDA device rather than a GPU.
pub fn ran_emulated(r: &CaseResult) -> bool {
    r.metrics.contains_key(EMULATED_METRIC)
}

pub fn run_case(case: &Case, backend: Backend) -> CaseResult {
    let start = std::time::Instant::now();
    let mut measured = crate::suites::Measured::default();
    let outcome = match case.not_run_reason(backend) {
        Some(reason) => Outcome::NotRun { reason },
        None => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::suites::run(case, backend))) {
            Ok((o, m)) => {
                measured = m;
                o
            }
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Outcome::Fail { message: format!("panicked: {msg}") }
            }
        },
    };
    let outcome = match outcome {
        Outcome::Fail { message } => Outcome::Fail {
            message: format!(
                "{message}\n  case: {}\n  backend: {}\n  rerun: {}",
                case.source.display(),
                backend.name(),
                case.rerun_command(backend)
            ),
        },
        o => o,
    };
    // A cuda column on the emulated device ran, but not on a GPU: marked, in the detail and as
    // the `cuda_emulated` metric (the report keeps such results out of its gates).
    let emulated = backend.name().starts_with("cuda")
        && orcd_backends::cuda_emulated()
        && !matches!(outcome, Outcome::NotRun { .. });
    let outcome = match outcome {
        Outcome::Pass { detail } if emulated => Outcome::Pass { detail: format!("[emulated device, no GPU] {detail}") },
        o => o,
    };
    if emulated {
        measured.metrics.insert(EMULATED_METRIC.into(), 1.0);
    }
    CaseResult {
        id: case.id(backend),
        suite: case.suite.clone(),
        name: case.name.clone(),
        backend,
        source: case.source.display().to_string(),
        outcome,
        duration_ms: start.elapsed().as_secs_f64() * 1e3,
        rerun: case.rerun_command(backend),
        metrics: measured.metrics,
        series: measured.series,
    }
}
