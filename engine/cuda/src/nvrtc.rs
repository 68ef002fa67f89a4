//! Kernels compiled by NVRTC for the device's own architecture, as a cubin (`sm_90a` on Hopper):
//! no PTX is left for the driver to JIT (which fails when NVRTC is newer than the driver).
//! Cubins are cached on disk, keyed by source hash, options, NVRTC version and compute capability
//! ([`crate::device::cubin_key`]); a corrupt or partial cache file is recompiled, never trusted
//! blindly (the file is written to a temporary name and renamed).

use std::ffi::{c_char, c_int, CStr};

use cudarc::nvrtc::{result as nr, sys as ns};

use crate::device::{cubin_cache_dir, cubin_key};
use crate::{CudaError, Result};

/// `sm_90a` for compute capability 9.0 (Hopper's arch-specific features), `sm_XY` otherwise.
pub fn arch(cc: (i32, i32)) -> String {
    if cc == (9, 0) {
        "sm_90a".into()
    } else {
        format!("sm_{}{}", cc.0, cc.1)
    }
}

/// The NVRTC options for compute capability `cc` (ci/nvrtc_check.py uses the same), the weight
/// layouts' defines ([`crate::layout::kernel_defines`]), then the diagnostic defines of `ORCD_NVRTC_DEFINES` (e.g. `ATT_PROF`: attention_tile prints its
/// phases' clocks; the cache key covers them).
pub fn options(cc: (i32, i32)) -> Vec<String> {
    options_with(cc, &[])
}

/// [`options`] with the defines `extra` after the layouts' (a module variant: [`crate::device::Dev::variant`]).
pub fn options_with(cc: (i32, i32), extra: &[&str]) -> Vec<String> {
    let mut o = vec![format!("--gpu-architecture={}", arch(cc)), "--std=c++17".into(), "-default-device".into()];
    // The weights' device layouts (crate::layout), as the upload writes them.
    o.extend(crate::layout::kernel_defines().iter().map(|n| format!("-D{n}")));
    o.extend(extra.iter().map(|n| format!("-D{n}")));
    if let Ok(d) = std::env::var("ORCD_NVRTC_DEFINES") {
        o.extend(diagnostic_defines(&d));
    }
    o
}

/// `-D` options of an `ORCD_NVRTC_DEFINES` value: names apart by whitespace or '+' (a '+' list
/// fits one word of a shell variant list); a name with any character but letters, digits, '_'
/// and '=' is dropped, so nothing else reaches the compiler's command line.
pub(crate) fn diagnostic_defines(d: &str) -> Vec<String> {
    d.split(|c: char| c.is_whitespace() || c == '+')
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '='))
        .map(|n| format!("-D{n}"))
        .collect()
}

/// NVRTC's version (major, minor).
pub fn version() -> Result<(i32, i32)> {
    let (mut major, mut minor): (c_int, c_int) = (0, 0);
    // SAFETY: two valid out-parameters; the library was probed before.
    unsafe { ns::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| CudaError::Nvrtc(format!("nvrtcVersion: {e:?}")))?;
    Ok((major, minor))
}

/// The cubin of `src` for compute capability `cc`, from the cache or freshly compiled.
pub fn cubin(src: &str, cc: (i32, i32)) -> Result<Vec<u8>> {
    cubin_with(src, cc, &[])
}

/// [`cubin`] compiled with the defines `extra` too ([`options_with`]; cached under its own key).
pub fn cubin_with(src: &str, cc: (i32, i32), extra: &[&str]) -> Result<Vec<u8>> {
    let opts = options_with(cc, extra);
    let key = cubin_key(src, &opts, version()?, cc);
    let dir = cubin_cache_dir();
    let path = dir.join(format!("{key}.cubin"));
    if let Ok(bytes) = std::fs::read(&path) {
        // An ELF image starts with 0x7f 'E' 'L' 'F'; anything else is recompiled.
        if bytes.starts_with(b"\x7fELF") {
            return Ok(bytes);
        }
    }
    let bin = compile(src, &opts)?;
    // The cache is an optimisation: a read-only home must not stop the engine.
    if std::fs::create_dir_all(&dir).is_ok() {
        let tmp = dir.join(format!("{key}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, &bin).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(bin)
}

/// How many programs the kernels are compiled in ([`cubins_with`]): `ORCD_NVRTC_SPLIT=n` (1 to
/// 32; 1 the one program), default the machine's threads up to 8. NVRTC compiles a program on
/// one thread (~110 s for ops.cu on the H100 machine's cores); n programs of a share of the
/// kernels each compile at once (stop 55, H100 machine, 16 cores: two builds at n = 8 side by
/// side in ~33 s; `ops` 1,092/1,092 from the split modules; docs/perf/GPU.md thirtieth block).
pub fn split() -> usize {
    static V: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        std::env::var("ORCD_NVRTC_SPLIT").ok().and_then(|v| v.parse::<usize>().ok()).map_or(cores, |n| n.clamp(1, 32))
    })
}

/// Program `g` of `n` of `src`: every `n`th kernel entry point from the `g`th kept, the others
/// made templates that nothing instantiates, so NVRTC generates no code for them (a template may
/// keep its `__launch_bounds__`; a device function may not). Every entry point of ops.cu is one
/// line that starts `extern "C" __global__` (kernels/src/lib.rs lists their names). The code of a
/// kernel is its one-program code (NVRTC 12.9 here: every kernel the defaults launch
/// byte-identical; a few off-by-default ones differ in their calls' addresses).
pub fn split_source(src: &str, n: usize, g: usize) -> String {
    let mut k = 0usize;
    let mut out = String::with_capacity(src.len() + 4096);
    for line in src.split_inclusive('\n') {
        match line.strip_prefix("extern \"C\" __global__") {
            Some(rest) => {
                if k % n == g {
                    out.push_str(line);
                } else {
                    out.push_str("template <int ORCD_OTHER_PROGRAM_> __global__");
                    out.push_str(rest);
                }
                k += 1;
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The cubins of `src` with the defines `extra` ([`options_with`]) in [`split`] programs
/// compiled at once, one thread each (each cached under its own key).
pub fn cubins_with(src: &str, cc: (i32, i32), extra: &[&str]) -> Result<Vec<Vec<u8>>> {
    let n = split();
    if n == 1 {
        return Ok(vec![cubin_with(src, cc, extra)?]);
    }
    let parts: Vec<String> = (0..n).map(|g| split_source(src, n, g)).collect();
    std::thread::scope(|s| {
        let hs: Vec<_> = parts.iter().map(|p| s.spawn(move || cubin_with(p, cc, extra))).collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(CudaError::Nvrtc("an NVRTC thread panicked".into()))))
            .collect()
    })
}

fn compile(src: &str, opts: &[String]) -> Result<Vec<u8>> {
    let csrc = std::ffi::CString::new(src).map_err(|_| CudaError::Nvrtc("kernel source holds a NUL byte".into()))?;
    let prog = nr::create_program(&csrc, None).map_err(|e| CudaError::Nvrtc(format!("nvrtcCreateProgram: {e:?}")))?;
    let out = (|| {
        // SAFETY: `prog` is a live program; options are NUL-free ASCII.
        if let Err(e) = unsafe { nr::compile_program(prog, opts) } {
            let log = unsafe { nr::get_program_log(prog) }
                .map(|l| {
                    // SAFETY: NVRTC's log is NUL-terminated.
                    unsafe { CStr::from_ptr(l.as_ptr()) }.to_string_lossy().into_owned()
                })
                .unwrap_or_default();
            return Err(CudaError::Nvrtc(format!("compiling kernels/src/ops.cu with {opts:?}: {e:?}\n{log}")));
        }
        let mut size = 0usize;
        // SAFETY: compiled program; `size` then a buffer of that size.
        unsafe { ns::nvrtcGetCUBINSize(prog, &mut size) }
            .result()
            .map_err(|e| CudaError::Nvrtc(format!("nvrtcGetCUBINSize: {e:?}")))?;
        let mut bin = vec![0u8; size];
        unsafe { ns::nvrtcGetCUBIN(prog, bin.as_mut_ptr() as *mut c_char) }
            .result()
            .map_err(|e| CudaError::Nvrtc(format!("nvrtcGetCUBIN: {e:?}")))?;
        Ok(bin)
    })();
    // SAFETY: destroyed once, after its last use.
    let _ = unsafe { nr::destroy_program(prog) };
    out
}

#[cfg(test)]
mod tests {
    use super::{diagnostic_defines, split_source};

    #[test]
    fn split_programs_keep_each_kernel_once_and_nothing_else_changes() {
        let src = orcd_kernels::OPS_CU;
        let entry = "extern \"C\" __global__";
        let n_kernels = src.lines().filter(|l| l.starts_with(entry)).count();
        assert_eq!(n_kernels, orcd_kernels::KERNELS.len(), "one entry-point line a kernel");
        for n in [2, 3, 8] {
            let parts: Vec<String> = (0..n).map(|g| split_source(src, n, g)).collect();
            let kept: usize = parts.iter().map(|p| p.lines().filter(|l| l.starts_with(entry)).count()).sum();
            assert_eq!(kept, n_kernels, "{n} programs");
            for p in &parts {
                // Line for line the source, but for the entry points made templates.
                assert_eq!(p.lines().count(), src.lines().count());
                for (a, b) in src.lines().zip(p.lines()) {
                    assert!(a == b || (a.starts_with(entry) && b.starts_with("template <int ORCD_OTHER_PROGRAM_>")));
                }
            }
            // Each kernel name is an entry point of exactly one program.
            for k in orcd_kernels::KERNELS {
                let homes = parts
                    .iter()
                    .filter(|p| p.lines().any(|l| l.starts_with(entry) && l.contains(&format!(" {k}("))))
                    .count();
                assert_eq!(homes, 1, "{k} in {homes} of {n} programs");
            }
        }
        assert_eq!(split_source(src, 1, 0), src);
    }

    #[test]
    fn diagnostic_defines_split_on_spaces_and_plus_and_drop_strange_names() {
        assert_eq!(diagnostic_defines("A B+C_1 X=2"), ["-DA", "-DB", "-DC_1", "-DX=2"]);
        assert_eq!(diagnostic_defines("  ++ "), Vec::<String>::new());
        assert_eq!(diagnostic_defines("OK --evil;rm"), ["-DOK"]);
    }
}
