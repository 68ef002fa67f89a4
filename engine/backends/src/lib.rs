//! orcd-backends: the one backend registry. The CLI, the harness and (later) the server choose a
//! backend here and nowhere else.
//!
//! A *column* is a (backend, numerics) pair: `cpu` (numerics exact: the `Cpu` reference backend,
//! f32 weights, activations and KV), `cpu-fast` (`CpuFast`: llama.cpp's CPU numerics), `cuda`,
//! `cuda-fast`. Each column is one column of the conformance harness.
//!
//! Invariants: a backend that cannot run here (not built, no device) is a typed
//! [`BackendError::Unavailable`] with its reason — never a panic, never a silent fallback to
//! another backend; loading names the column in every error.

use orcd_cpu::cpu::Cpu;
use orcd_cpu::cpu_fast::CpuFast;
use orcd_cuda::Cuda;
use orcd_engine::gguf::GgufFile;
use orcd_engine::model::{AnyModel, LoadOpts, Model};
use orcd_engine::ops::Ops;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend {column}: not available here: {reason}")]
    Unavailable { column: Column, reason: String },
    #[error("backend {column}: {source}")]
    Engine { column: Column, source: orcd_engine::Error },
}

/// A backend family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Cpu,
    Cuda,
}

impl BackendKind {
    pub const ALL: [BackendKind; 2] = [BackendKind::Cpu, BackendKind::Cuda];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// Why this backend cannot run here, if it cannot.
    pub fn unavailable(self) -> Option<String> {
        match self {
            BackendKind::Cpu => None,
            BackendKind::Cuda => orcd_cuda::probe(),
        }
    }

    /// DESIGN §6: `--backend` defaults to cuda when a device is present, else cpu.
    pub fn default_here() -> Self {
        if BackendKind::Cuda.unavailable().is_none() {
            BackendKind::Cuda
        } else {
            BackendKind::Cpu
        }
    }
}

/// `exact`: weights dequantised, f32 activations, f32 KV cache (the reference path). `fast`:
/// 8-bit activations for quantised matmuls and an F16 KV cache, as llama.cpp computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Numerics {
    Exact,
    Fast,
}

impl Numerics {
    pub const ALL: [Numerics; 2] = [Numerics::Exact, Numerics::Fast];

    pub fn name(self) -> &'static str {
        match self {
            Numerics::Exact => "exact",
            Numerics::Fast => "fast",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Numerics::Exact),
            "fast" => Some(Numerics::Fast),
            _ => None,
        }
    }
}

/// A (backend, numerics) pair: one column of the harness, one way to run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Column {
    pub backend: BackendKind,
    pub numerics: Numerics,
}

/// `cpu`, `cpu-fast`, `cuda`, `cuda-fast`: the exact numerics carry no suffix.
impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.numerics {
            Numerics::Exact => write!(f, "{}", self.backend.name()),
            Numerics::Fast => write!(f, "{}-fast", self.backend.name()),
        }
    }
}

impl Column {
    pub const CPU_EXACT: Column = Column { backend: BackendKind::Cpu, numerics: Numerics::Exact };
    pub const CPU_FAST: Column = Column { backend: BackendKind::Cpu, numerics: Numerics::Fast };
    pub const CUDA_EXACT: Column = Column { backend: BackendKind::Cuda, numerics: Numerics::Exact };
    pub const CUDA_FAST: Column = Column { backend: BackendKind::Cuda, numerics: Numerics::Fast };
    /// Every column, CPU first.
    pub const ALL: [Column; 4] = [Column::CPU_EXACT, Column::CPU_FAST, Column::CUDA_EXACT, Column::CUDA_FAST];

    /// `cpu`, `cuda-fast`, … (the harness's trial suffix).
    pub fn parse(s: &str) -> Option<Self> {
        Column::ALL.into_iter().find(|c| c.to_string() == s)
    }

    /// Why this column cannot run here, if it cannot.
    pub fn unavailable(self) -> Option<String> {
        self.backend.unavailable()
    }

    /// Run `v` with this column's backend (generic code, expanded once per backend type): how
    /// the `ops` suite drives every backend through one function.
    pub fn visit<V: OpsVisitor>(self, v: V) -> Result<V::Out, BackendError> {
        if let Some(reason) = self.unavailable() {
            return Err(BackendError::Unavailable { column: self, reason });
        }
        Ok(match (self.backend, self.numerics) {
            (BackendKind::Cpu, Numerics::Exact) => v.visit(&Cpu),
            (BackendKind::Cpu, Numerics::Fast) => v.visit(&CpuFast),
            (BackendKind::Cuda, n) => match Cuda::new(n == Numerics::Fast) {
                Ok(c) => v.visit(&c),
                Err(e) => return Err(BackendError::Unavailable { column: self, reason: e.to_string() }),
            },
        })
    }

    /// Load `f` on this column.
    pub fn load(self, f: &GgufFile, opts: &LoadOpts) -> Result<Box<dyn AnyModel>, BackendError> {
        struct Load<'a>(&'a GgufFile, &'a LoadOpts);
        impl OpsVisitor for Load<'_> {
            type Out = orcd_engine::Result<Box<dyn AnyModel>>;
            fn visit<B: Ops + Clone + Send + 'static>(self, b: &B) -> Self::Out
            where
                B::Weight: Send,
                B::Kv: Send,
            {
                Ok(Box::new(Model::load_opts(self.0, b.clone(), self.1)?))
            }
        }
        self.visit(Load(f, opts))?.map_err(|source| BackendError::Engine { column: self, source })
    }
}

/// Whether the cuda columns run on the host emulator (`ORCD_CUDA_EMU=1`, orcd_cuda::emu), not a
/// GPU: the harness marks their results so (never a GPU result).
pub fn cuda_emulated() -> bool {
    orcd_cuda::emu::requested()
}

/// The instruction-set tier of the CPU fast path on this host (`avx512` / `avx2` and its
/// kernels), as bench output and reports name it.
pub fn cpu_isa() -> String {
    orcd_cpu::cpu_fast::isa_summary()
}

/// Threads the CPU backends' parallel loops use (`ORCD_THREADS`, else `RAYON_NUM_THREADS`, else
/// the CPU count): a peer measured beside them gets as many.
pub fn cpu_threads() -> usize {
    orcd_cpu::cpu_fast::pool::threads()
}

/// Generic code run on a column's backend ([`Column::visit`]).
pub trait OpsVisitor {
    type Out;
    fn visit<B: Ops + Clone + Send + 'static>(self, b: &B) -> Self::Out
    where
        B::Weight: Send,
        B::Kv: Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_their_names() {
        for c in Column::ALL {
            assert_eq!(Column::parse(&c.to_string()), Some(c));
        }
        assert_eq!(Column::CPU_FAST.to_string(), "cpu-fast");
        // The exact numerics carry no suffix: `cpu` is (cpu, exact).
        assert_eq!(Column::parse("cpu"), Some(Column::CPU_EXACT));
        assert_eq!(Column::parse("cpu-exact"), None);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn cuda_without_a_device_is_a_typed_unavailable_error() {
        // Where CUDA cannot run, the column says why instead of panicking or falling back.
        if orcd_cuda::probe().is_none() {
            return; // a GPU machine: the cuda columns run (the harness checks them)
        }
        let f = GgufFile::from_bytes(orcd_engine::gguf::GgufWriter::new().to_bytes().0).unwrap();
        let e = Column::CUDA_FAST.load(&f, &LoadOpts::default());
        assert!(matches!(e, Err(BackendError::Unavailable { .. })));
        assert!(Column::CUDA_EXACT.unavailable().is_some() && Column::CPU_EXACT.unavailable().is_none());
    }
}
