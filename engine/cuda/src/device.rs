//! The one CUDA device of the process: probing, the context and its created stream, the kernels
//! (NVRTC cubins, cached on disk), device memory with a byte ledger per category, and launches.
//!
//! Invariants:
//! - Nothing here calls into a CUDA library before [`probe`] found it: with dynamic loading,
//!   cudarc panics on the first call into a library that is absent.
//! - Every buffer is a plain `cuMemAlloc` (device memory: never managed, never host-mapped);
//!   [`Dev::check_resident`] proves it per buffer.
//! - All work goes on one created stream (the legacy default stream cannot be captured in a
//!   graph); activations freed on the host go back to a size-class pool and are reused by later
//!   work on that same stream, so stream order makes the reuse safe. With
//!   `ORCD_CUDA_EXACT_ALLOC=1` every buffer is allocated at its exact size and freed on drop (no
//!   pool), so compute-sanitizer sees every out-of-bounds access.
//! - Kernel parameters are passed by value (shapes, strides, device pointers).
//! - With `ORCD_CUDA_EMU=1` the device is the host emulator ([`crate::emu`]): buffers are host
//!   allocations, launches run kernels/emu's build of ops.cu to completion, there are no graphs,
//!   and the device's name says "emulated" wherever it is reported.

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::safe::{CudaContext, CudaStream};
use cudarc::driver::{result as dr, sys};
use sha2::{Digest, Sha256};

use crate::{CudaError, Result};

/// Why CUDA cannot run in this process, if it cannot (libraries missing, no device, kernels
/// not compiling). Computed once.
pub fn probe() -> Option<String> {
    device().err()
}

/// The process's device, created on first use.
pub fn device() -> std::result::Result<Arc<Dev>, String> {
    static DEV: OnceLock<std::result::Result<Arc<Dev>, String>> = OnceLock::new();
    DEV.get_or_init(|| Dev::open().map(Arc::new).map_err(|e| e.to_string())).clone()
}

/// What device memory holds, by category (bytes currently allocated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VramUse {
    pub weights: u64,
    pub kv: u64,
    /// Activations and scratch, pooled buffers included (the pool's high-water mark stays here).
    pub workspace: u64,
}

impl VramUse {
    pub fn total(&self) -> u64 {
        self.weights + self.kv + self.workspace
    }
}

/// What a buffer holds (the ledger's categories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Weights,
    Kv,
    Workspace,
}

#[derive(Debug, Default)]
struct Pool {
    /// Free workspace buffers by size class (bytes, a power of two).
    free: HashMap<usize, Vec<sys::CUdeviceptr>>,
}

/// A real device's context, stream and kernels.
#[derive(Debug)]
struct Hw {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    funcs: HashMap<&'static str, sys::CUfunction>,
}

/// The device: context, stream, kernels, memory (or the host emulator's).
#[derive(Debug)]
pub struct Dev {
    hw: Option<Hw>,
    emu: Option<crate::emu::Emu>,
    pub name: String,
    pub cc: (i32, i32),
    /// Largest dynamic shared memory a block may use (bytes, after opting in).
    pub max_smem: usize,
    /// Streaming multiprocessors (132 on the H100 SXM / H200; the emulator plays 132).
    pub sms: usize,
    exact_alloc: bool,
    ledger: Mutex<VramUse>,
    pool: Mutex<Pool>,
    /// Every live allocation (pointer → bytes), for the residency check.
    live: Mutex<HashMap<sys::CUdeviceptr, usize>>,
    /// The buffers of the forward being recorded, if one is.
    capture: Mutex<Option<Vec<DevBuf>>>,
    /// `ORCD_CUDA_PROFILE=1`: every launch is followed by a synchronisation and its wall time is
    /// added to its kernel's row (launches, seconds); graphs are then not recorded.
    profile: Option<Mutex<HashMap<String, (u64, f64)>>>,
    /// Programmatic dependent launch for the kernels that ask for it (sm_90 and later, unless
    /// `ORCD_CUDA_PDL=0`): kernels/src/ops.cu `pdl_wait`.
    pdl: bool,
    /// The module variants loaded so far, by their define ([`Dev::variant`]).
    variants: Mutex<HashMap<&'static str, Arc<Variant>>>,
}

/// The kernels of ops.cu compiled with one more define (`MV_ONLY_FAST`: the one-row mat-vecs
/// of one numerics alone, kernels/ABI.md), beside the device's own module: every kernel, by the
/// same names, loaded into the same context (their launches share the stream and graphs).
#[derive(Debug)]
pub struct Variant {
    define: &'static str,
    funcs: HashMap<&'static str, sys::CUfunction>,
    emu: Option<crate::emu::Emu>,
}

impl Variant {
    /// The define it was compiled with.
    pub fn define(&self) -> &'static str {
        self.define
    }
}

// SAFETY: the function handles belong to a module loaded for the process's life; the driver
// API may be called with them from any thread that binds the context (Dev::bind).
unsafe impl Send for Variant {}
unsafe impl Sync for Variant {}

/// A recorded forward: the instantiated CUDA graph and every buffer its kernels use.
#[derive(Debug)]
pub struct Graph {
    graph: sys::CUgraph,
    exec: sys::CUgraphExec,
    pub bufs: Vec<DevBuf>,
}

// SAFETY: graph handles are plain values of the context; launches bind the context first.
unsafe impl Send for Graph {}

impl Graph {
    /// Run the recording on `dev`'s stream.
    pub fn launch(&self, dev: &Dev) -> Result<()> {
        dev.bind()?;
        // SAFETY: an instantiated graph of this context.
        unsafe { sys::cuGraphLaunch(self.exec, dev.cu_stream()) }.result().map_err(|e| drv("cuGraphLaunch", e))
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: handles created by end_capture, destroyed once.
        unsafe {
            let _ = sys::cuGraphExecDestroy(self.exec);
            let _ = sys::cuGraphDestroy(self.graph);
        }
    }
}

// SAFETY: the raw handles (functions, device pointers) are plain values owned by the context,
// which cudarc makes Send + Sync; every use binds the context to the calling thread first.
unsafe impl Send for Dev {}
unsafe impl Sync for Dev {}

fn drv(op: &str, e: dr::DriverError) -> CudaError {
    CudaError::Driver { op: op.to_string(), message: format!("{e:?}") }
}

/// Host memory standing in for device memory on the emulated device (256-byte aligned). Filled
/// with 0xff bytes (NaN as f32), as cuMemAlloc's memory is not zeroed: a kernel that reads what
/// nothing wrote shows NaN instead of a lucky zero.
fn emu_alloc(size: usize) -> Result<sys::CUdeviceptr> {
    let layout = std::alloc::Layout::from_size_align(size.max(1), 256)
        .map_err(|e| CudaError::Invalid(format!("emulated allocation of {size} bytes: {e}")))?;
    // SAFETY: a non-zero size with a valid alignment; the fill stays inside the allocation.
    let p = unsafe {
        let p = std::alloc::alloc(layout);
        if !p.is_null() {
            std::ptr::write_bytes(p, 0xff, layout.size());
        }
        p
    };
    if p.is_null() {
        return Err(CudaError::OutOfMemory {
            needed: size as u64,
            free: 0,
            device: "emulated".into(),
            message: "host allocation failed".into(),
        });
    }
    Ok(p as sys::CUdeviceptr)
}

/// Load the cubins of ops.cu (one program, or [`crate::nvrtc::split`] programs that hold each
/// kernel once) into the current context: every kernel's handle, the opt-in kernels allowed
/// `max_smem` bytes of dynamic shared memory. The modules stay loaded for the process's life.
fn load_module(cubins: &[Vec<u8>], max_smem: usize) -> Result<HashMap<&'static str, sys::CUfunction>> {
    let mut modules = Vec::with_capacity(cubins.len());
    for cubin in cubins {
        // SAFETY: `cubin` is a complete cubin image for this device's architecture.
        let m = unsafe { dr::module::load_data(cubin.as_ptr() as *const c_void) }
            .map_err(|e| drv("cuModuleLoadData", e))?;
        modules.push(m);
    }
    let mut funcs = HashMap::new();
    for &k in orcd_kernels::KERNELS {
        let cname = CString::new(k).map_err(|_| CudaError::Invalid(format!("kernel name {k}")))?;
        let mut found = Err(CudaError::Invalid(format!("{k}: in none of the {} kernel modules", modules.len())));
        for &m in &modules {
            // SAFETY: the module is loaded and stays loaded for the process's life.
            match unsafe { dr::module::get_function(m, cname.clone()) } {
                Ok(f) => {
                    found = Ok(f);
                    break;
                }
                Err(e) if modules.len() == 1 => found = Err(drv(k, e)),
                Err(_) => {}
            }
        }
        funcs.insert(k, found?);
    }
    for f in orcd_kernels::OPT_IN_SMEM.iter().filter_map(|k| funcs.get(k).copied()) {
        // SAFETY: a valid function handle and a documented attribute.
        unsafe {
            sys::cuFuncSetAttribute(
                f,
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                max_smem as i32,
            )
        }
        .result()
        .map_err(|e| drv("cuFuncSetAttribute(max dynamic shared memory)", e))?;
    }
    Ok(funcs)
}

impl Dev {
    /// The kernels compiled with `define` as well (NVRTC, or the emulator's build), loaded the
    /// first time a backend asks and kept: a second numerics' backend of the same process gets
    /// its own. Not during a recording (a module load is not a stream operation; the backend
    /// asks when it is made).
    pub fn variant(&self, define: &'static str) -> Result<Arc<Variant>> {
        let mut v = self.variants.lock().map_err(|_| CudaError::Invalid("module variants poisoned".into()))?;
        if let Some(x) = v.get(define) {
            return Ok(x.clone());
        }
        let x = if self.emulated() {
            let emu = crate::emu::Emu::open_with(&cubin_cache_dir(), &[define])?;
            Variant { define, funcs: HashMap::new(), emu: Some(emu) }
        } else {
            self.bind()?;
            let cubins = crate::nvrtc::cubins_with(orcd_kernels::OPS_CU, self.cc, &[define])?;
            Variant { define, funcs: load_module(&cubins, self.max_smem)?, emu: None }
        };
        let x = Arc::new(x);
        v.insert(define, x.clone());
        Ok(x)
    }

    /// The emulated device (`ORCD_CUDA_EMU=1`, [`crate::emu`]): Hopper's compute capability and
    /// shared-memory limit, so the backend takes the paths it takes on the H100/H200.
    fn open_emu() -> Result<Dev> {
        let emu = crate::emu::Emu::open(&cubin_cache_dir())?;
        Ok(Dev {
            hw: None,
            emu: Some(emu),
            name: "emulated CUDA device (orcd host emulator, no GPU)".into(),
            cc: (9, 0),
            max_smem: (227 << 10) - (16 << 10),
            sms: 132,
            exact_alloc: true,
            ledger: Mutex::new(VramUse::default()),
            pool: Mutex::new(Pool::default()),
            live: Mutex::new(HashMap::new()),
            capture: Mutex::new(None),
            profile: None,
            pdl: false,
            variants: Mutex::new(HashMap::new()),
        })
    }

    /// Whether this is the host emulator, not a GPU.
    pub fn emulated(&self) -> bool {
        self.emu.is_some()
    }

    fn hw(&self) -> Result<&Hw> {
        self.hw.as_ref().ok_or_else(|| CudaError::Invalid("the emulated device has no CUDA context".into()))
    }

    fn open() -> Result<Dev> {
        if crate::emu::requested() {
            return Dev::open_emu();
        }
        // SAFETY: these only try to dlopen the libraries.
        let (cu, rtc) = unsafe { (sys::is_culib_present(), cudarc::nvrtc::sys::is_culib_present()) };
        if !cu {
            return Err(CudaError::Unavailable("libcuda (the NVIDIA driver) is not installed here".into()));
        }
        if !rtc {
            return Err(CudaError::Unavailable("libnvrtc (the CUDA run-time compiler) is not installed here".into()));
        }
        let n = CudaContext::device_count().map_err(|e| drv("cuDeviceGetCount", e))?;
        if n < 1 {
            return Err(CudaError::Unavailable("no CUDA device".into()));
        }
        let ctx = CudaContext::new(0).map_err(|e| drv("cuCtxCreate", e))?;
        // SAFETY: every buffer here is a raw allocation used on one stream; cudarc's per-argument
        // events are not needed (and are illegal during graph capture).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(|e| drv("cuStreamCreate", e))?;
        let name = ctx.name().map_err(|e| drv("cuDeviceGetName", e))?;
        let cc = ctx.compute_capability().map_err(|e| drv("compute capability", e))?;
        let optin = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(|e| drv("shared memory limit", e))? as usize;
        let sms = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| drv("multiprocessor count", e))? as usize;
        // Attention keeps one key row of scores in dynamic shared memory, attention_tile its 16
        // rows' queries and scores and a staged key or value tile, matvectl_q8_0 its slots' chains
        // (64 KiB): allow the opt-in limit less the kernels' static arrays (reductions and the
        // per-warp value sums, ~8.5 KiB).
        let max_smem = optin.saturating_sub(16 << 10);
        let funcs = load_module(&crate::nvrtc::cubins_with(orcd_kernels::OPS_CU, cc, &[])?, max_smem)?;
        Ok(Dev {
            hw: Some(Hw { ctx, stream, funcs }),
            emu: None,
            name,
            cc,
            max_smem,
            sms,
            exact_alloc: std::env::var_os("ORCD_CUDA_EXACT_ALLOC").is_some_and(|v| v == "1"),
            ledger: Mutex::new(VramUse::default()),
            pool: Mutex::new(Pool::default()),
            live: Mutex::new(HashMap::new()),
            capture: Mutex::new(None),
            profile: std::env::var_os("ORCD_CUDA_PROFILE")
                .is_some_and(|v| v == "1")
                .then(|| Mutex::new(HashMap::new())),
            pdl: cc.0 >= 9 && std::env::var_os("ORCD_CUDA_PDL").is_none_or(|v| v != "0"),
            variants: Mutex::new(HashMap::new()),
        })
    }

    /// Make the context current on this thread (a model may move between threads).
    pub fn bind(&self) -> Result<()> {
        match &self.hw {
            Some(hw) => hw.ctx.bind_to_thread().map_err(|e| drv("cuCtxSetCurrent", e)),
            None => Ok(()),
        }
    }

    /// (free, total) device memory in bytes.
    pub fn mem_info(&self) -> Result<(u64, u64)> {
        if self.emulated() {
            // The host's: what the emulated device can hold.
            let avail = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| {
                    m.lines().find(|l| l.starts_with("MemAvailable:"))?.split_whitespace().nth(1)?.parse::<u64>().ok()
                })
                .map_or(8 << 30, |kb| kb * 1024);
            return Ok((avail, avail));
        }
        self.bind()?;
        let (f, t) = dr::mem_get_info().map_err(|e| drv("cuMemGetInfo", e))?;
        Ok((f as u64, t as u64))
    }

    /// Bytes in use by category.
    pub fn vram_use(&self) -> VramUse {
        self.ledger.lock().map(|l| *l).unwrap_or_default()
    }

    fn account(&self, cat: Category, bytes: usize, add: bool) {
        if let Ok(mut l) = self.ledger.lock() {
            let slot = match cat {
                Category::Weights => &mut l.weights,
                Category::Kv => &mut l.kv,
                Category::Workspace => &mut l.workspace,
            };
            if add {
                *slot += bytes as u64;
            } else {
                *slot = slot.saturating_sub(bytes as u64);
            }
        }
    }

    /// A device buffer of `bytes` (uninitialised). Workspace buffers come from the pool unless
    /// exact allocation is on; weights and the KV cache are always exact.
    pub fn alloc(self: &Arc<Self>, bytes: usize, cat: Category) -> Result<DevBuf> {
        self.bind()?;
        let pooled = cat == Category::Workspace && !self.exact_alloc;
        let size = if pooled { bytes.max(256).next_power_of_two() } else { bytes.max(1) };
        if pooled {
            let hit = self.pool.lock().ok().and_then(|mut p| p.free.get_mut(&size).and_then(Vec::pop));
            if let Some(ptr) = hit {
                return Ok(self.keep(DevBuf(Arc::new(BufInner { ptr, bytes, size, cat, pooled, dev: self.clone() }))));
            }
        }
        let ptr = if self.emulated() {
            emu_alloc(size)?
        } else {
            // SAFETY: a plain device allocation; the memory is not read before a kernel or copy
            // writes it.
            match unsafe { dr::malloc_sync(size) } {
                Ok(p) => p,
                Err(_) if pooled => {
                    // Give the pool's free buffers back and try once more.
                    self.trim()?;
                    unsafe { dr::malloc_sync(size) }.map_err(|e| self.oom(size, e))?
                }
                Err(e) => return Err(self.oom(size, e)),
            }
        };
        self.account(cat, size, true);
        if let Ok(mut l) = self.live.lock() {
            l.insert(ptr, size);
        }
        Ok(self.keep(DevBuf(Arc::new(BufInner { ptr, bytes, size, cat, pooled, dev: self.clone() }))))
    }

    /// While a forward is being recorded, every buffer it allocates is kept by the recording
    /// (its kernels hold the addresses), so none is handed out again while the graph lives.
    fn keep(&self, b: DevBuf) -> DevBuf {
        if let Ok(mut c) = self.capture.lock() {
            if let Some(list) = c.as_mut() {
                list.push(b.clone());
            }
        }
        b
    }

    /// Start recording the stream's work (a CUDA graph); buffers allocated until
    /// [`Dev::end_capture`] are kept by the recording.
    pub fn begin_capture(&self) -> Result<()> {
        if self.emulated() {
            return Err(CudaError::Invalid("the emulated device records no graphs".into()));
        }
        self.bind()?;
        if let Ok(mut c) = self.capture.lock() {
            *c = Some(Vec::new());
        }
        // Relaxed: allocations (cuMemAlloc) stay legal while recording.
        // SAFETY: a live stream of this context.
        unsafe {
            sys::cuStreamBeginCapture_v2(self.cu_stream(), sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
        }
        .result()
        .map_err(|e| drv("cuStreamBeginCapture", e))
    }

    /// Whether the stream is being recorded.
    pub fn capturing(&self) -> bool {
        self.capture.lock().map(|c| c.is_some()).unwrap_or(false)
    }

    /// End the recording: the graph (instantiated, ready to launch) and the buffers it uses, or
    /// `None` when `keep` is false (the recording is discarded).
    pub fn end_capture(&self, keep: bool) -> Result<Option<Graph>> {
        if self.emulated() {
            return Ok(None);
        }
        self.bind()?;
        let bufs = self.capture.lock().ok().and_then(|mut c| c.take()).unwrap_or_default();
        let mut graph: sys::CUgraph = std::ptr::null_mut();
        // SAFETY: the stream is capturing (begin_capture); `graph` receives the recording.
        let r = unsafe { sys::cuStreamEndCapture(self.cu_stream(), &mut graph) }.result();
        if let Err(e) = r {
            return Err(drv("cuStreamEndCapture", e));
        }
        if !keep {
            if !graph.is_null() {
                // SAFETY: a graph this call created and nothing else uses.
                let _ = unsafe { sys::cuGraphDestroy(graph) };
            }
            return Ok(None);
        }
        let mut exec: sys::CUgraphExec = std::ptr::null_mut();
        // SAFETY: a complete graph; exec receives its instantiation.
        let r = unsafe { sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0) }.result();
        if let Err(e) = r {
            // SAFETY: as above.
            let _ = unsafe { sys::cuGraphDestroy(graph) };
            return Err(drv("cuGraphInstantiate", e));
        }
        Ok(Some(Graph { graph, exec, bufs }))
    }

    fn oom(&self, size: usize, e: dr::DriverError) -> CudaError {
        let free = self.mem_info().map(|m| m.0).unwrap_or(0);
        CudaError::OutOfMemory { needed: size as u64, free, device: self.name.clone(), message: format!("{e:?}") }
    }

    /// Free every pooled buffer that is not in use.
    pub fn trim(&self) -> Result<()> {
        self.synchronize()?;
        let bufs: Vec<(usize, Vec<sys::CUdeviceptr>)> =
            self.pool.lock().map(|mut p| p.free.drain().collect()).unwrap_or_default();
        for (size, ptrs) in bufs {
            for p in ptrs {
                self.release(p, size, Category::Workspace);
            }
        }
        Ok(())
    }

    fn release(&self, ptr: sys::CUdeviceptr, size: usize, cat: Category) {
        if self.emulated() {
            if let Ok(layout) = std::alloc::Layout::from_size_align(size.max(1), 256) {
                // SAFETY: `ptr` came from emu_alloc with this size and alignment, freed once.
                unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
            }
        } else if self.bind().is_ok() {
            // SAFETY: `ptr` came from cuMemAlloc and no queued work uses it (callers synchronise
            // or free buffers whose last use is ordered before any later allocation's use).
            let _ = unsafe { dr::free_sync(ptr) };
        }
        self.account(cat, size, false);
        if let Ok(mut l) = self.live.lock() {
            l.remove(&ptr);
        }
    }

    /// Every live buffer is device memory (not managed, not host-mapped): the residency check.
    pub fn check_resident(&self) -> Result<usize> {
        if self.emulated() {
            return Err(CudaError::Invalid("the emulated device holds host memory, not device memory".into()));
        }
        self.bind()?;
        let ptrs: Vec<sys::CUdeviceptr> = self.live.lock().map(|l| l.keys().copied().collect()).unwrap_or_default();
        for &p in &ptrs {
            let mut ty: u32 = 0;
            let mut managed: u32 = 0;
            // SAFETY: queries on a live allocation into properly sized out-parameters.
            unsafe {
                sys::cuPointerGetAttribute(
                    &mut ty as *mut u32 as *mut c_void,
                    sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                    p,
                )
                .result()
                .map_err(|e| drv("cuPointerGetAttribute", e))?;
                sys::cuPointerGetAttribute(
                    &mut managed as *mut u32 as *mut c_void,
                    sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_IS_MANAGED,
                    p,
                )
                .result()
                .map_err(|e| drv("cuPointerGetAttribute", e))?;
            }
            if ty != sys::CUmemorytype::CU_MEMORYTYPE_DEVICE as u32 || managed != 0 {
                return Err(CudaError::Invalid(format!(
                    "buffer {p:#x} is not plain device memory (type {ty}, managed {managed})"
                )));
            }
        }
        Ok(ptrs.len())
    }

    pub fn synchronize(&self) -> Result<()> {
        let Some(hw) = &self.hw else { return Ok(()) }; // the emulator runs every launch to its end
        self.bind()?;
        hw.stream.synchronize().map_err(|e| drv("cuStreamSynchronize", e))
    }

    /// The stream (null on the emulated device, which has none).
    pub fn cu_stream(&self) -> sys::CUstream {
        self.hw.as_ref().map_or(std::ptr::null_mut(), |hw| hw.stream.cu_stream())
    }

    /// Copy host data into `dst`, in stream order. `src` is pageable memory, which the driver
    /// stages before the call returns, so the caller may drop it at once.
    pub fn upload<T: Copy>(&self, dst: &DevBuf, src: &[T]) -> Result<()> {
        let bytes = std::mem::size_of_val(src);
        if bytes > dst.bytes() {
            return Err(CudaError::Invalid(format!("upload of {bytes} bytes into a buffer of {}", dst.bytes())));
        }
        if bytes == 0 {
            return Ok(());
        }
        if self.emulated() {
            // SAFETY: `dst` is a live host allocation of at least `bytes`.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr() as *const u8, dst.ptr() as *mut u8, bytes) };
            return Ok(());
        }
        self.bind()?;
        // SAFETY: `dst` holds at least `bytes`; the copy is synchronous with respect to `src`
        // (pageable host memory is staged before cuMemcpyHtoDAsync returns).
        unsafe { dr::memcpy_htod_async(dst.ptr(), src, self.cu_stream()) }.map_err(|e| drv("cuMemcpyHtoDAsync", e))
    }

    /// Set every byte of `b` to zero (on the stream).
    pub fn zero(&self, b: &DevBuf) -> Result<()> {
        if self.emulated() {
            // SAFETY: the buffer's own range of a live host allocation.
            unsafe { std::ptr::write_bytes(b.ptr() as *mut u8, 0, b.bytes()) };
            return Ok(());
        }
        self.bind()?;
        // SAFETY: the range is the buffer's own.
        unsafe { dr::memset_d8_async(b.ptr(), 0, b.bytes(), self.cu_stream()) }.map_err(|e| drv("cuMemsetD8Async", e))
    }

    /// Copy `n` values of `src` to the host (synchronises the stream).
    pub fn download<T: Copy + Default>(&self, src: &DevBuf, n: usize) -> Result<Vec<T>> {
        let bytes = n * std::mem::size_of::<T>();
        if bytes > src.bytes() {
            return Err(CudaError::Invalid(format!("download of {bytes} bytes from a buffer of {}", src.bytes())));
        }
        let mut out = vec![T::default(); n];
        if n == 0 {
            return Ok(out);
        }
        if self.emulated() {
            // SAFETY: `src` is a live host allocation of at least `bytes`; `out` holds `bytes`.
            unsafe { std::ptr::copy_nonoverlapping(src.ptr() as *const u8, out.as_mut_ptr() as *mut u8, bytes) };
            return Ok(out);
        }
        self.bind()?;
        // SAFETY: `out` holds `bytes`; the stream is synchronised before `out` is read.
        unsafe { dr::memcpy_dtoh_async(&mut out, src.ptr(), self.cu_stream()) }
            .map_err(|e| drv("cuMemcpyDtoHAsync", e))?;
        self.synchronize()?;
        Ok(out)
    }

    /// Copy `bytes` from `src` at `src_off` to `dst` at `dst_off` on the stream.
    pub fn copy(&self, dst: &DevBuf, dst_off: usize, src: &DevBuf, src_off: usize, bytes: usize) -> Result<()> {
        if dst_off + bytes > dst.bytes() || src_off + bytes > src.bytes() {
            return Err(CudaError::Invalid("device copy out of range".into()));
        }
        if bytes == 0 {
            return Ok(());
        }
        if self.emulated() {
            // SAFETY: both ranges lie inside live host allocations (checked above).
            unsafe {
                std::ptr::copy(
                    (src.ptr() + src_off as u64) as *const u8,
                    (dst.ptr() + dst_off as u64) as *mut u8,
                    bytes,
                )
            };
            return Ok(());
        }
        self.bind()?;
        // SAFETY: both ranges are inside their buffers.
        unsafe {
            dr::memcpy_dtod_async(dst.ptr() + dst_off as u64, src.ptr() + src_off as u64, bytes, self.cu_stream())
        }
        .map_err(|e| drv("cuMemcpyDtoDAsync", e))
    }

    /// Launch kernel `name` with `grid` × `block` threads, `smem` bytes of dynamic shared memory
    /// and `args` by value.
    pub fn launch(&self, name: &str, grid: (u32, u32, u32), block: u32, smem: u32, args: &[Arg]) -> Result<()> {
        self.launch_in(None, name, grid, block, smem, args, false)
    }

    /// [`Dev::launch`] of the kernel of that name in `variant`'s module (the device's own with
    /// `None`); with `pdl` (a kernel that calls `pdl_wait` before it touches anything but its
    /// weights), launched so that it may start while the kernel before it runs.
    #[allow(clippy::too_many_arguments)]
    pub fn launch_in(
        &self,
        variant: Option<&Variant>,
        name: &str,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        args: &[Arg],
        pdl: bool,
    ) -> Result<()> {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(());
        }
        if let Some(emu) = variant.map_or(self.emu.as_ref(), |v| v.emu.as_ref()) {
            if !orcd_kernels::KERNELS.contains(&name) {
                return Err(CudaError::Invalid(format!("no kernel named {name}")));
            }
            // The driver's rule, so that a kernel missing its opt-in fails here as on a card
            // (attention_tile_lpt at 512 tokens, stop 44: emulated green, refused on the H100).
            if smem > orcd_kernels::DEFAULT_SMEM && !orcd_kernels::OPT_IN_SMEM.contains(&name) {
                return Err(CudaError::Invalid(format!(
                    "{name}: {smem} bytes of dynamic shared memory without the opt-in (the driver's \
                     CUDA_ERROR_INVALID_VALUE; orcd_kernels::OPT_IN_SMEM)"
                )));
            }
            let slots: Vec<u64> = args.iter().map(Arg::bits).collect();
            return emu.launch(name, grid, block, smem, &slots);
        }
        let funcs = match variant {
            Some(v) => &v.funcs,
            None => &self.hw()?.funcs,
        };
        let f = *funcs.get(name).ok_or_else(|| CudaError::Invalid(format!("no kernel named {name}")))?;
        self.bind()?;
        // Each argument lives in its own 8-byte slot; the driver reads the parameter's size from
        // the slot's start (little-endian, so a 4-byte value sits in the low half).
        let mut slots: Vec<u64> = args.iter().map(Arg::bits).collect();
        let mut ptrs: Vec<*mut c_void> = slots.iter_mut().map(|s| s as *mut u64 as *mut c_void).collect();
        let t0 = self.profile.as_ref().map(|_| std::time::Instant::now());
        if pdl && self.pdl {
            // SAFETY: a zeroed attribute is valid; id and value are set as the driver API documents.
            let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
            attr.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
            attr.value.programmaticStreamSerializationAllowed = 1;
            let cfg = sys::CUlaunchConfig {
                gridDimX: grid.0,
                gridDimY: grid.1,
                gridDimZ: grid.2,
                blockDimX: block,
                blockDimY: 1,
                blockDimZ: 1,
                sharedMemBytes: smem,
                hStream: self.cu_stream(),
                attrs: &mut attr,
                numAttrs: 1,
            };
            // SAFETY: as below; `cfg` and `attr` outlive the call.
            unsafe { sys::cuLaunchKernelEx(&cfg, f, ptrs.as_mut_ptr(), std::ptr::null_mut()) }
                .result()
                .map_err(|e| drv(name, e))?;
        } else {
            // SAFETY: `f` is a kernel of the loaded module whose parameter list matches `args`
            // (kernels/ABI.md); the slots outlive the call, which copies the parameters.
            unsafe { dr::launch_kernel(f, grid, (block, 1, 1), smem, self.cu_stream(), &mut ptrs) }
                .map_err(|e| drv(name, e))?;
        }
        if let (Some(p), Some(t0)) = (&self.profile, t0) {
            self.synchronize()?;
            if let Ok(mut m) = p.lock() {
                let e = m.entry(name.to_string()).or_insert((0, 0.0));
                e.0 += 1;
                e.1 += t0.elapsed().as_secs_f64();
            }
        }
        Ok(())
    }

    /// Whether `ORCD_CUDA_PROFILE=1` times every launch.
    pub fn profiling(&self) -> bool {
        self.profile.is_some()
    }

    /// Per kernel: launches and seconds (launch + run + synchronisation), most time first; empty
    /// unless profiling.
    pub fn profile(&self) -> Vec<(String, u64, f64)> {
        let mut v: Vec<(String, u64, f64)> = self
            .profile
            .as_ref()
            .and_then(|p| p.lock().ok().map(|m| m.iter().map(|(k, &(n, t))| (k.clone(), n, t)).collect()))
            .unwrap_or_default();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }
}

/// One kernel argument, passed by value.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    /// A device pointer (0 for a null pointer).
    Ptr(u64),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

impl Arg {
    pub(crate) fn bits(&self) -> u64 {
        match *self {
            Arg::Ptr(p) => p,
            Arg::I32(v) => v as u32 as u64,
            Arg::I64(v) => v as u64,
            Arg::F32(v) => v.to_bits() as u64,
            Arg::F64(v) => v.to_bits(),
        }
    }
}

/// A device buffer, shared: freed (or returned to the pool) when the last handle drops. A
/// recorded forward (CUDA graph) keeps a handle on every buffer its kernels use.
#[derive(Debug, Clone)]
pub struct DevBuf(Arc<BufInner>);

#[derive(Debug)]
struct BufInner {
    ptr: sys::CUdeviceptr,
    /// Bytes asked for.
    bytes: usize,
    /// Bytes allocated (the size class of a pooled buffer).
    size: usize,
    cat: Category,
    pooled: bool,
    dev: Arc<Dev>,
}

impl DevBuf {
    pub fn ptr(&self) -> sys::CUdeviceptr {
        self.0.ptr
    }
    /// Bytes asked for (a pooled buffer may hold more).
    pub fn bytes(&self) -> usize {
        self.0.bytes
    }
    pub fn arg(&self) -> Arg {
        Arg::Ptr(self.0.ptr)
    }
}

impl Drop for BufInner {
    fn drop(&mut self) {
        if self.pooled {
            // Later work on the same stream may reuse it: stream order keeps that safe.
            if let Ok(mut p) = self.dev.pool.lock() {
                p.free.entry(self.size).or_default().push(self.ptr);
                return;
            }
        } else {
            // Work queued on the buffer must finish before cuMemFree returns it to the driver.
            let _ = self.dev.synchronize();
        }
        self.dev.release(self.ptr, self.size, self.cat);
    }
}

/// Where compiled kernels are cached: `$ORCD_CUBIN_CACHE`, else `$ORCD_CACHE/cubin`, else
/// `~/.cache/orcd/cubin`.
pub fn cubin_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ORCD_CUBIN_CACHE") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("ORCD_CACHE") {
        return PathBuf::from(d).join("cubin");
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join(".cache/orcd/cubin")
}

/// The cache key of a compilation: source, options, NVRTC version and compute capability.
pub fn cubin_key(src: &str, opts: &[String], nvrtc: (i32, i32), cc: (i32, i32)) -> String {
    let mut h = Sha256::new();
    h.update(src.as_bytes());
    for o in opts {
        h.update([0u8]);
        h.update(o.as_bytes());
    }
    h.update(format!("nvrtc {}.{} cc {}.{}", nvrtc.0, nvrtc.1, cc.0, cc.1).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
