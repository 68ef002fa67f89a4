//! orcd-cuda: the CUDA backend. Every op of `orcd_engine::ops::Ops` on one NVIDIA GPU, for both
//! numerics (`cuda` exact, `cuda-fast`), with the kernels of `kernels/` (CUDA C, compiled by
//! NVRTC for the device's own architecture and cached as cubins).
//!
//! - [`device`]: probing (cudarc loads libcuda/libnvrtc at run time and panics on a missing one,
//!   so nothing is called before the probe), the context and its created stream, device memory
//!   with a ledger by category (weights, KV cache, workspace) and a residency check, launches.
//! - [`nvrtc`]: the cubin compile and its on-disk cache.
//! - [`backend`]: the `Ops` implementation.
//! - [`layout`]: device layouts of weights other than their GGUF bytes (Q8_0 grouped by four
//!   blocks, the default; `ORCD_CUDA_Q8_GROUPED=0` keeps the GGUF layout) and the kernel defines
//!   that go with them.
//! - [`emu`]: the emulated device (`ORCD_CUDA_EMU=1`): the same backend with kernels/emu's host
//!   build of the kernels, for checking its logic where no GPU is (never a GPU figure).
//!
//! Invariants: VRAM only (plain `cuMemAlloc`; no managed or host-mapped memory); a model that
//! does not fit is refused before any large allocation (`INSUFFICIENT_VRAM`, needed, free,
//! device); every CUDA failure is a typed error, never a panic; on a machine without CUDA the
//! crate builds and [`device::probe`] says why it cannot run.

pub mod backend;
pub mod device;
pub mod emu;
pub mod layout;
pub mod nvrtc;

pub use backend::{Cuda, CudaTensor, CudaWeight};
pub use device::{probe, VramUse};

pub type Result<T, E = CudaError> = std::result::Result<T, E>;

/// The crate's error type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CudaError {
    /// CUDA cannot run here (library or device missing); the harness reports its cases not run.
    #[error("{0}")]
    Unavailable(String),
    #[error("CUDA driver: {op}: {message}")]
    Driver { op: String, message: String },
    #[error("NVRTC: {0}")]
    Nvrtc(String),
    #[error("INSUFFICIENT_VRAM: allocating {needed} bytes: {free} bytes free on {device} ({message})")]
    OutOfMemory { needed: u64, free: u64, device: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl From<CudaError> for orcd_engine::Error {
    fn from(e: CudaError) -> Self {
        match e {
            CudaError::OutOfMemory { needed, free, device, message } => orcd_engine::Error::InsufficientVram {
                what: format!("an allocation ({message})"),
                needed,
                free,
                device,
            },
            CudaError::Invalid(m) => orcd_engine::Error::Invalid(m),
            other => orcd_engine::Error::Device { backend: "cuda", op: "device".into(), message: other.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubin_key_changes_with_every_input() {
        let o = vec!["--gpu-architecture=sm_90a".to_string()];
        let k = device::cubin_key("src", &o, (12, 8), (9, 0));
        assert_ne!(k, device::cubin_key("src2", &o, (12, 8), (9, 0)));
        assert_ne!(k, device::cubin_key("src", &["--x".into()], (12, 8), (9, 0)));
        assert_ne!(k, device::cubin_key("src", &o, (13, 0), (9, 0)));
        assert_ne!(k, device::cubin_key("src", &o, (12, 8), (8, 9)));
        assert_eq!(k, device::cubin_key("src", &o, (12, 8), (9, 0)));
    }

    #[test]
    fn hopper_gets_the_arch_specific_target() {
        assert_eq!(nvrtc::arch((9, 0)), "sm_90a");
        assert_eq!(nvrtc::arch((8, 9)), "sm_89");
    }

    #[test]
    fn a_device_error_keeps_its_vram_figures() {
        let e: orcd_engine::Error =
            CudaError::OutOfMemory { needed: 10, free: 3, device: "H200".into(), message: "oom".into() }.into();
        let s = e.to_string();
        assert!(s.starts_with("INSUFFICIENT_VRAM") && s.contains("10") && s.contains("H200"), "{s}");
    }

    /// The kernels compile to a Hopper cubin wherever libnvrtc is installed (no GPU needed:
    /// `LD_LIBRARY_PATH` pointing at the pip wheel nvidia-cuda-nvrtc-cu12 is enough), through the
    /// engine's own compile path and cache.
    #[test]
    fn kernels_compile_for_hopper_where_nvrtc_is_present() {
        // SAFETY: only tries to dlopen the library.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            eprintln!("not run: libnvrtc is not installed here");
            return;
        }
        let dir = std::env::temp_dir().join(format!("orcd-cubin-test-{}", std::process::id()));
        std::env::set_var("ORCD_CUBIN_CACHE", &dir);
        let bin = nvrtc::cubin(orcd_kernels::OPS_CU, (9, 0)).unwrap_or_else(|e| panic!("{e}"));
        assert!(bin.starts_with(b"\x7fELF"), "not a cubin");
        // The second call reads the cache.
        let cached = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(cached, 1);
        assert_eq!(nvrtc::cubin(orcd_kernels::OPS_CU, (9, 0)).unwrap_or_else(|e| panic!("{e}")), bin);
        // The two programs of ORCD_NVRTC_SPLIT=2 compile too, each a share of the code.
        for g in 0..2 {
            let part = nvrtc::cubin(&nvrtc::split_source(orcd_kernels::OPS_CU, 2, g), (9, 0))
                .unwrap_or_else(|e| panic!("program {g} of 2: {e}"));
            assert!(
                part.starts_with(b"\x7fELF") && part.len() < bin.len() * 3 / 4,
                "program {g}: {} bytes",
                part.len()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// On a machine without CUDA the probe answers with a reason instead of panicking; with CUDA
    /// the residency check passes on the device's buffers.
    #[test]
    fn probe_answers_without_panicking() {
        match probe() {
            Some(reason) => assert!(!reason.is_empty()),
            None => {
                let c = Cuda::new(false).unwrap_or_else(|e| panic!("{e}"));
                let t = orcd_engine::ops::Ops::tensor_from_host(&c, 2, 2, &[1.0, 2.0, 3.0, 4.0])
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(c.device().check_resident().unwrap_or_else(|e| panic!("{e}")) >= 1);
                assert_eq!(
                    orcd_engine::ops::Ops::to_host(&c, &t).unwrap_or_else(|e| panic!("{e}")),
                    vec![1.0, 2.0, 3.0, 4.0]
                );
            }
        }
    }
}
