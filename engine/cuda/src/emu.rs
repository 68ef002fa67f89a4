//! The emulated device (`ORCD_CUDA_EMU=1`): the CUDA backend with its kernels run on the host by
//! kernels/emu (ops.cu compiled as host C++, one fiber a CUDA thread), device memory in host
//! allocations. For checking the backend's logic — host wiring and kernels together, under the
//! `ops` suite — where no GPU is. Not a GPU: it is slow, it has no graphs, PDL or timing, and
//! nothing measured on it says anything about a card (the device name says "emulated").
//!
//! The kernel library is built once per source (sha256 of ops.cu, emu.h, emu_lib.cpp and the
//! weight layouts' defines, [`crate::layout::kernel_defines`], and `ORCD_NVRTC_DEFINES`'s) with
//! `$CXX` (default `g++`; C++20, x86-64 with F16C) into the cubin cache folder, then loaded.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{CudaError, Result};

type LaunchFn = unsafe extern "C" fn(*const std::ffi::c_char, u32, u32, u32, u32, u32, *const u64, i32) -> i32;

/// The loaded kernel library.
#[derive(Debug)]
pub struct Emu {
    launch: LaunchFn,
    /// Keeps `launch` valid.
    _lib: libloading::Library,
}

/// Whether `ORCD_CUDA_EMU=1` asks for the emulated device.
pub fn requested() -> bool {
    std::env::var_os("ORCD_CUDA_EMU").is_some_and(|v| v == "1")
}

impl Emu {
    /// Build (or reuse) and load the kernel library.
    pub fn open(cache: &Path) -> Result<Emu> {
        Emu::open_with(cache, &[])
    }

    /// [`Emu::open`] with the defines `extra` after the layouts' (a module variant, as
    /// [`crate::nvrtc::options_with`] compiles it for a card).
    pub fn open_with(cache: &Path, extra: &[&str]) -> Result<Emu> {
        let mut h = Sha256::new();
        // The layouts' defines, the variant's, then ORCD_NVRTC_DEFINES's (a switch's kernels
        // emulated as the card would compile them).
        let mut defines: Vec<String> = crate::layout::kernel_defines().iter().map(|d| format!("-D{d}")).collect();
        defines.extend(extra.iter().map(|d| format!("-D{d}")));
        if let Ok(d) = std::env::var("ORCD_NVRTC_DEFINES") {
            defines.extend(crate::nvrtc::diagnostic_defines(&d));
        }
        for s in [orcd_kernels::OPS_CU, orcd_kernels::EMU_H, orcd_kernels::EMU_LIB_CPP]
            .into_iter()
            .chain(defines.iter().map(String::as_str))
        {
            h.update(s.as_bytes());
            h.update([0u8]);
        }
        let key: String = h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
        let dir = cache.join(format!("emu-{key}"));
        let lib = dir.join("libemu.so");
        if !lib.exists() {
            build(&dir, &lib, &defines)?;
        }
        // SAFETY: a library built from our own sources above; its one entry point has the
        // signature of `LaunchFn`, and the library stays loaded as long as `Emu` lives.
        unsafe {
            let l = libloading::Library::new(&lib)
                .map_err(|e| CudaError::Unavailable(format!("{}: {e}", lib.display())))?;
            let f = *l
                .get::<LaunchFn>(b"orcd_emu_launch\0")
                .map_err(|e| CudaError::Unavailable(format!("{}: {e}", lib.display())))?;
            Ok(Emu { launch: f, _lib: l })
        }
    }

    /// Run kernel `name` over `grid` blocks of `block` threads to completion.
    pub fn launch(&self, name: &str, grid: (u32, u32, u32), block: u32, smem: u32, slots: &[u64]) -> Result<()> {
        let cname = std::ffi::CString::new(name).map_err(|_| CudaError::Invalid(format!("kernel name {name}")))?;
        // SAFETY: `slots` holds one 8-byte parameter per kernel parameter (checked against the
        // kernel's arity by the library); pointer parameters are host addresses of live buffers.
        let rc = unsafe {
            (self.launch)(cname.as_ptr(), grid.0, grid.1, grid.2, block, smem, slots.as_ptr(), slots.len() as i32)
        };
        match rc {
            0 => Ok(()),
            -1 => Err(CudaError::Invalid(format!("emulator: no kernel named {name}"))),
            -2 => Err(CudaError::Invalid(format!(
                "emulator: {name} takes another number of parameters than {}",
                slots.len()
            ))),
            -3 => {
                Err(CudaError::Invalid(format!("emulator: {name}: a block's threads wait at barriers none can pass")))
            }
            _ => Err(CudaError::Invalid(format!("emulator: {name}: block of {block} threads"))),
        }
    }
}

fn build(dir: &Path, lib: &Path, defines: &[String]) -> Result<()> {
    let io = |e: std::io::Error| CudaError::Unavailable(format!("emulator build in {}: {e}", dir.display()));
    std::fs::create_dir_all(dir.join("emu")).map_err(io)?;
    std::fs::create_dir_all(dir.join("src")).map_err(io)?;
    std::fs::write(dir.join("src/ops.cu"), orcd_kernels::OPS_CU).map_err(io)?;
    std::fs::write(dir.join("emu/emu.h"), orcd_kernels::EMU_H).map_err(io)?;
    std::fs::write(dir.join("emu/emu_lib.cpp"), orcd_kernels::EMU_LIB_CPP).map_err(io)?;
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    // Built under a temporary name and renamed: a concurrent process never loads half a file.
    let tmp = dir.join(format!("libemu.{}.so", std::process::id()));
    let out = std::process::Command::new(&cxx)
        .args(["-std=c++20", "-O2", "-mf16c", "-ffp-contract=off", "-shared", "-fPIC"])
        .args(defines)
        .arg("-o")
        .arg(&tmp)
        .arg(dir.join("emu/emu_lib.cpp"))
        .output()
        .map_err(|e| CudaError::Unavailable(format!("emulator: {cxx}: {e} (set CXX to a C++20 compiler)")))?;
    if !out.status.success() {
        return Err(CudaError::Unavailable(format!(
            "emulator: {cxx} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    std::fs::rename(&tmp, lib).map_err(io)
}
