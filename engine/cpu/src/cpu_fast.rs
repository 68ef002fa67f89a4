//! The CPU backend with `fast` numerics (DESIGN §6): what llama.cpp computes on the CPU.
//!
//! - Weights stay in their GGUF type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, F16, BF16, F32);
//!   1-D weights (norms, biases) and types without a dot kernel here (IQ4_NL, MXFP4, ...) are
//!   dequantized to f32 at load and multiplied in f32.
//! - `matmul` quantizes the activation rows exactly as ggml's x86 `quantize_row_q8_0` / `q8_1` /
//!   `q8_K` and computes integer block dot products with the per-block scales, as llama.cpp's
//!   CPU backend does — `ggml_vec_dot_*` in its AVX2 lane structure, its tiled k-quant formula
//!   for batches of 8+ rows ([`dot`] is the scalar reference, [`simd`] the AVX2 / AVX-VNNI
//!   kernels chosen at run time, bit-identical to it; [`panel`] repacks the 32-element types into
//!   4-row panels at load). Parallel loops run on a small thread team ([`pool`]).
//! - Result: logits bit-identical to llama.cpp's default CPU run (llama-cpp-python 0.3.36) on the
//!   prompt and decode rows of both real models (goldens/recorders/record_llamacpp_logits.py).
//! - The KV cache is F16: `concat_rows` rounds the rows it appends to F16 and keeps them as F16;
//!   `attention` reads F16 K and V ([`attn`]).
//! - The other ops follow ggml's f32 formulas: RMSNorm with an f64 sum of f32 squares and
//!   `1/sqrtf(mean + eps)`; RoPE with `theta_i = p · base^(-2i/n)` built by repeated f32
//!   multiplication, `cosf`/`sinf`, and the rotation with the FMAs GCC forms; GELU through
//!   ggml's F16 table (`x` rounded to F16, the table value F16); SiLU `x / (1 + e^-x)` in f32 with ggml's vector `exp` ([`attn::ggml_expf`])
//!   where ggml uses it (whole chunks of 16), libm `expf` elsewhere.
//!
//! Invariant: no result depends on the number of threads (each output element is computed by one
//! task with a fixed order of operations).

pub mod act;
pub mod attn;
pub mod dot;
pub mod ktile;
pub mod matmul;
pub mod panel;
pub mod panel_asm512;
pub mod pool;
pub mod simd;

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::arena;
use crate::gguf::{GgmlType, GgufFile, TensorInfo};
use crate::kv::{argmax_rows, top_k_rows, CpuBatch, CpuKv};
use crate::ops::{
    broadcast_row, check_matmul_id, top_k_desc, Act, AttnParams, BatchRows, Index, KvSpec, KvType, Ops, RopeParams,
    RopeStyle, RowGroups,
};
use crate::quant::{f16_to_f32, f32_to_f16};

use crate::{Error, Result};
use matmul::{act_kind, quantize_acts, ActKind, Isa, QMatrix};

/// Storage of an activation: f32, or F16 bits (the KV cache).
#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

/// A row-major `[rows, cols]` activation.
#[derive(Debug, Clone, PartialEq)]
pub struct FastTensor {
    pub rows: usize,
    pub cols: usize,
    pub data: Store,
}

/// Activations come from the arena and go back to it ([`crate::arena`]).
impl Drop for FastTensor {
    fn drop(&mut self) {
        if let Store::F32(v) = &mut self.data {
            arena::give(std::mem::take(v));
        }
    }
}

impl FastTensor {
    fn new(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        FastTensor { rows, cols, data: Store::F32(data) }
    }

    /// The values as f32 (converted when stored as F16).
    pub fn f32s(&self) -> Cow<'_, [f32]> {
        match &self.data {
            Store::F32(v) => Cow::Borrowed(v),
            Store::F16(v) => Cow::Owned(v.iter().map(|&h| f16_to_f32(h)).collect()),
        }
    }

    /// The values as F16 bits (rounded when stored as f32).
    pub fn f16s(&self) -> Cow<'_, [u16]> {
        match &self.data {
            Store::F16(v) => Cow::Borrowed(v),
            Store::F32(v) => Cow::Owned(v.iter().map(|&x| f32_to_f16(x)).collect()),
        }
    }
}

/// A weight: quantized rows as in the GGUF file, or f32.
#[derive(Debug, Clone)]
pub struct FastWeight {
    pub name: String,
    pub dims: Vec<u64>,
    /// The type `raw` holds; `F32` when the values are in `f32`.
    pub ty: GgmlType,
    ne0: usize,
    rows: usize,
    /// The quantized rows in the GGUF layout (a huge-page mapping when large).
    raw: crate::pages::WeightBytes,
    f32: Vec<f32>,
    /// The quantized rows repacked for the SIMD kernels (then `raw` is empty).
    panels: Option<panel::Panels>,
}

impl FastWeight {
    fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.ne0 as u64).map_or(0, |b| b as usize)
    }

    /// The quantized matrix as the matmul kernels take it.
    fn qmatrix(&self) -> QMatrix<'_> {
        QMatrix {
            ty: self.ty,
            k: self.ne0,
            m: self.rows,
            row_bytes: self.row_bytes(),
            data: &self.raw,
            panels: self.panels.as_ref(),
        }
    }

    /// The weight's GGUF bytes: repacked for the SIMD kernels where that applies (`panels`,
    /// AVX2 present, a 32-element type), else kept as they are.
    fn with_bytes(mut self, bytes: &[u8], panels: bool) -> Self {
        if panels && self.ty != GgmlType::F32 && panel::supported(self.ty) && simd::has_avx2() {
            let nb = self.ne0 / self.ty.block_size();
            if let Some(p) =
                panel::Panels::new(self.ty, bytes, nb, self.rows, simd::has_avxvnni() || simd::has_vnni512())
            {
                self.panels = Some(p);
                return self;
            }
        }
        self.raw = crate::pages::WeightBytes::from_slice(bytes);
        self
    }

    /// Row `r`'s bytes in the GGUF layout.
    fn row(&self, r: usize) -> std::borrow::Cow<'_, [u8]> {
        let rb = self.row_bytes();
        match &self.panels {
            Some(p) => {
                let mut v = vec![0u8; rb];
                p.row(r, &mut v);
                std::borrow::Cow::Owned(v)
            }
            None => std::borrow::Cow::Borrowed(&self.raw[r * rb..(r + 1) * rb]),
        }
    }

    /// Bytes this weight occupies in memory.
    pub fn bytes(&self) -> usize {
        self.raw.len() + 4 * self.f32.len() + self.panels.as_ref().map_or(0, |p| p.data.len() + p.tail.len())
    }

    /// A weight of `m` rows of `k` elements from raw GGUF block bytes (benches, tests).
    pub fn from_raw(name: &str, ty: GgmlType, k: usize, m: usize, raw: Vec<u8>) -> Result<Self> {
        let need = ty.row_bytes(k as u64).map(|b| b as usize * m);
        if need != Some(raw.len()) || matmul::act_kind(ty).is_none() || ty == GgmlType::F32 {
            return Err(Error::Invalid(format!("{name}: {} bytes for {m} rows of {k} {ty}", raw.len())));
        }
        let w = FastWeight {
            name: name.into(),
            dims: vec![k as u64, m as u64],
            ty,
            ne0: k,
            rows: m,
            raw: Default::default(),
            f32: vec![],
            panels: None,
        };
        Ok(w.with_bytes(&raw, true))
    }
}

/// The `fast` CPU backend. Stateless: construct with `CpuFast::default()`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuFast;

fn isa() -> Isa {
    static I: OnceLock<Isa> = OnceLock::new();
    *I.get_or_init(Isa::detect)
}

/// The instruction-set tier the fast path computes on this host, as reports and `bench` name it:
/// the llama.cpp build it is bit-identical with (`avx512`: ggml's AVX-512 f32 paths; `avx2`: an
/// AVX2/FMA/F16C build, e.g. `GGML_NATIVE=OFF`), and the integer kernels in use.
pub fn isa_summary() -> String {
    let tier = if isa() == Isa::Scalar && !cfg!(target_arch = "x86_64") {
        "scalar"
    } else if simd::f32_lanes() == 16 {
        "avx512"
    } else {
        "avx2"
    };
    let kernels = match isa() {
        Isa::Vnni512 => "avx512-vnni",
        Isa::Vnni => "avx-vnni",
        Isa::Avx2 => "avx2",
        Isa::Scalar => "scalar",
    };
    format!("{tier} tier ({kernels} kernels)")
}

fn shape_err(op: &str, msg: String) -> Error {
    Error::Invalid(format!("{op}: {msg}"))
}

/// ggml's `ggml_gelu_f32`, in f32, with `1 + A·x·x` contracted to an FMA as GCC compiles it.
fn gelu_f32(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (GELU_COEF_A * x).mul_add(x, 1.0)).tanh())
}

/// ggml's GELU table: `gelu(f16 value)` rounded to F16, for every F16 bit pattern.
fn gelu_table() -> &'static [u16] {
    static T: OnceLock<Vec<u16>> = OnceLock::new();
    // One padding entry: the SIMD lookup gathers 32 bits at entry h.
    T.get_or_init(|| (0..=u16::MAX).map(|h| f32_to_f16(gelu_f32(f16_to_f32(h)))).chain([0]).collect())
}

/// Elements from which a row-wise op is split over the thread team (below, one thread is
/// quicker than waking the other).
const PAR_ROWS_ELEMS: usize = 1 << 14;

/// `f(first_row, rows)` over `out` (rows of `cols`) in chunks of whole rows, on the thread team
/// when `out` is large. Each row is computed by one call, in its own order: the result does not
/// depend on the split.
fn par_rows(out: &mut [f32], cols: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let cols = cols.max(1);
    let rows = out.len() / cols;
    if out.len() < PAR_ROWS_ELEMS || rows < 2 {
        return f(0, out);
    }
    let per = rows.div_ceil(pool::threads() * 2).max(1);
    let chunks: Vec<std::sync::Mutex<&mut [f32]>> = out.chunks_mut(per * cols).map(std::sync::Mutex::new).collect();
    pool::par_for(chunks.len(), &|ci| {
        if let Ok(mut o) = chunks[ci].lock() {
            f(ci * per, &mut o);
        }
    });
}

/// [`par_rows`] on a copy of `src` made in the same parallel pass (each task copies its own rows
/// first): no serial copy on the calling thread while the others wait.
fn par_rows_copy(src: &[f32], cols: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) -> Vec<f32> {
    // Every element is written (copied) below.
    let mut out = arena::take_for_overwrite(src.len());
    let c = cols.max(1);
    par_rows(&mut out, cols, &|r0, o| {
        o.copy_from_slice(&src[r0 * c..][..o.len()]);
        f(r0, o);
    });
    out
}

/// ggml's `ggml_vec_gelu_f32` (GGML_GELU_FP16): 0 below -10, identity above 10, else the table.
fn gelu(x: f32, table: &[u16]) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        f16_to_f32(table[usize::from(f32_to_f16(x))])
    }
}

/// ggml's `ggml_vec_swiglu_f32` on one row: `ggml_v_silu` (with the tier's `ggml_v_expf`) on
/// whole chunks of `lanes` (16 in the AVX-512 build, 8 in the AVX2 one), the libm `expf` on
/// the rest.
pub fn swiglu_row_ref(g: &[f32], u: &[f32], out: &mut [f32], lanes: usize) {
    let whole = g.len() / lanes * lanes;
    for (i, ((o, &x), &y)) in out.iter_mut().zip(g).zip(u).enumerate() {
        let e = if i < whole { attn::expf_tier(lanes, 0.0 - x) } else { (-x).exp() };
        *o = x / (1.0 + e) * y;
    }
}

impl CpuFast {
    /// `[matmul(x, w, g) for w in ws]`, bit for bit: where every `w` takes the same quantized
    /// activations, they are converted once and all the products run in one parallel loop
    /// (`matmul::matmul_q_multi`: the threads meet once, not once per matrix); otherwise one
    /// [`Ops::matmul`] each.
    pub fn matmuls(&self, x: &FastTensor, ws: &[&FastWeight], g: &RowGroups) -> Result<Vec<FastTensor>> {
        let kind = |w: &FastWeight| if w.ty == GgmlType::F32 { None } else { act_kind(w.ty) };
        let first = ws.first().and_then(|w| kind(w));
        let same = first.is_some() && ws.iter().all(|w| kind(w) == first && w.ne0 == x.cols);
        let (Some(kind), true, true) = (first, same, ws.len() > 1) else {
            return ws.iter().map(|w| self.matmul(x, w, g)).collect();
        };
        if g.len() != x.rows {
            return Err(shape_err("matmul", format!("{} row groups for {} rows", g.len(), x.rows)));
        }
        let acts = quantize_acts(kind, &x.f32s(), x.cols);
        let qms: Vec<QMatrix<'_>> = ws.iter().map(|w| w.qmatrix()).collect();
        let refs: Vec<&QMatrix<'_>> = qms.iter().collect();
        let outs = matmul::matmul_q_multi(isa(), &refs, &acts, &g.seq_rows);
        Ok(outs.into_iter().zip(ws).map(|(d, w)| FastTensor::new(x.rows, w.rows, d)).collect())
    }
    /// Whether SIMD kernels are in use (AVX2 + FMA + F16C; `ORCD_NO_SIMD` turns them off).
    pub fn simd(&self) -> bool {
        isa() != Isa::Scalar
    }

    fn one_d(&self, op: &str, w: &FastWeight, cols: usize) -> Result<()> {
        if w.ty != GgmlType::F32 || w.f32.len() != cols {
            return Err(shape_err(op, format!("{} ({:?}) has {} values, rows have {cols}", w.name, w.ty, w.f32.len())));
        }
        Ok(())
    }
}

/// RoPE's rotation of one row (all heads) with the cached (cos, sin) pairs: ggml's
/// `x0*cos - x1*sin`, `x0*sin + x1*cos` as GCC contracts them (checked bit for bit against
/// llama.cpp's rope output).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rotate_body(
    data: &mut [f32],
    cache: &[(f32, f32)],
    base: usize,
    n_head: usize,
    hd: usize,
    half: usize,
    style: RopeStyle,
) {
    for h in 0..n_head {
        let base = base + h * hd;
        for (i, &(cos, sin)) in cache.iter().enumerate() {
            let (a, b) = match style {
                RopeStyle::Normal => (base + 2 * i, base + 2 * i + 1),
                RopeStyle::Neox => (base + i, base + i + half),
            };
            let (x0, x1) = (data[a], data[b]);
            data[a] = x0.mul_add(cos, -(x1 * sin));
            data[b] = x0.mul_add(sin, x1 * cos);
        }
    }
}

/// [`rotate_body`] compiled with FMA (one instruction per `mul_add`, same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
fn rotate_fma(
    data: &mut [f32],
    cache: &[(f32, f32)],
    base: usize,
    n_head: usize,
    hd: usize,
    half: usize,
    style: RopeStyle,
) {
    rotate_body(data, cache, base, n_head, hd, half, style)
}

#[allow(clippy::too_many_arguments)]
fn rotate(
    simd: bool,
    data: &mut [f32],
    cache: &[(f32, f32)],
    base: usize,
    n_head: usize,
    hd: usize,
    half: usize,
    style: RopeStyle,
) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only true when the CPU has AVX2, FMA and F16C.
        return unsafe { rotate_fma(data, cache, base, n_head, hd, half, style) };
    }
    let _ = simd;
    rotate_body(data, cache, base, n_head, hd, half, style)
}

impl Ops for CpuFast {
    type Tensor = FastTensor;
    type Weight = FastWeight;
    type Kv = CpuKv;
    type Batch = CpuBatch;
    type Ids = Vec<u32>;

    fn kv_type(&self) -> KvType {
        KvType::F16
    }

    fn name(&self) -> &'static str {
        "cpu-fast"
    }

    fn load_weight(&self, f: &GgufFile, t: &TensorInfo) -> Result<FastWeight> {
        let ne0 = t.dims.first().copied().unwrap_or(0) as usize;
        let n = usize::try_from(t.n_elements)
            .map_err(|_| Error::Invalid(format!("tensor {:?} is too large for this machine", t.name)))?;
        let rows = n.checked_div(ne0).unwrap_or(0);
        let transpose_fault =
            crate::faults::active(crate::faults::Fault::TransposeWq) && t.name == "blk.0.attn_q.weight";
        let keep_raw = t.dims.len() >= 2
            && !transpose_fault
            && !matches!(t.ty, GgmlType::F32)
            && act_kind(t.ty).is_some()
            && ne0.is_multiple_of(t.ty.block_size());
        if keep_raw {
            let w = FastWeight {
                name: t.name.clone(),
                dims: t.dims.clone(),
                ty: t.ty,
                ne0,
                rows,
                raw: Default::default(),
                f32: vec![],
                panels: None,
            };
            // Expert stacks (3-D, `matmul_id`) stay in the GGUF row layout: it slices them by expert.
            return Ok(w.with_bytes(f.tensor_data(t), t.dims.len() == 2));
        }
        let mut data = f.tensor_f32(&t.name)?;
        if transpose_fault {
            let (c, r) = (ne0, rows);
            data = (0..r * c).map(|i| data[(i % r) * c + i / r]).collect();
        }
        Ok(FastWeight {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty: GgmlType::F32,
            ne0,
            rows,
            raw: Default::default(),
            f32: data,
            panels: None,
        })
    }

    fn tensor_from_host(&self, rows: usize, cols: usize, data: &[f32]) -> Result<FastTensor> {
        if rows * cols != data.len() {
            return Err(Error::Invalid(format!("tensor [{rows}, {cols}] given {} values", data.len())));
        }
        Ok(FastTensor::new(rows, cols, arena::copy_of(data)))
    }

    fn shape(&self, t: &FastTensor) -> (usize, usize) {
        (t.rows, t.cols)
    }

    fn to_host(&self, t: &FastTensor) -> Result<Vec<f32>> {
        Ok(t.f32s().into_owned())
    }

    fn reshape(&self, mut t: FastTensor, rows: usize, cols: usize) -> Result<FastTensor> {
        if rows * cols != t.rows * t.cols {
            return Err(shape_err("reshape", format!("[{}, {}] to [{rows}, {cols}]", t.rows, t.cols)));
        }
        let data = std::mem::replace(&mut t.data, Store::F32(Vec::new()));
        Ok(FastTensor { rows, cols, data })
    }

    fn weight_dims(&self, w: &FastWeight) -> Vec<u64> {
        w.dims.clone()
    }

    fn upload_batch(&self, rows: &BatchRows) -> Result<CpuBatch> {
        CpuBatch::new(rows)
    }

    fn batch_groups(&self, b: &CpuBatch) -> RowGroups {
        b.groups.clone()
    }

    /// An F16 cache, as llama.cpp's default: an F32 one is refused (this backend mirrors
    /// llama.cpp's F16 KV products).
    fn kv_alloc(&self, spec: &KvSpec) -> Result<CpuKv> {
        if spec.ty != KvType::F16 {
            return Err(Error::Invalid(format!("{}: the KV cache is F16 (asked for {:?})", self.name(), spec.ty)));
        }
        CpuKv::alloc(spec)
    }

    fn kv_bytes(&self, kv: &CpuKv) -> usize {
        kv.bytes()
    }

    /// Rows are rounded to F16 as they are written.
    fn kv_write(&self, kv: &mut CpuKv, il: usize, k: &FastTensor, v: &FastTensor, b: &CpuBatch) -> Result<()> {
        b.check_kv(&kv.spec)?;
        kv.write(il, &k.f32s(), &v.f32s(), b)
    }

    fn attention(
        &self,
        q: &FastTensor,
        kv: &CpuKv,
        il: usize,
        b: &CpuBatch,
        p: &AttnParams,
        sinks: Option<&FastWeight>,
    ) -> Result<FastTensor> {
        if let Some(s) = sinks {
            self.one_d("attention sinks", s, p.n_head)?;
        }
        let (simd, sk) = (self.simd(), sinks.map(|s| s.f32.as_slice()));
        // Per sequence, so the kernel's one-row / batch switch (as llama.cpp's) sees that
        // sequence's rows only.
        // Sequences in parallel (a decode step of many sequences: each one's attention is too
        // small to split by heads); a nested par_for (the heads of one long sequence) runs inline.
        let data = b.attend_par(kv, il, &q.f32s(), q.cols, p, pool::par_for, |view, qs, q_pos, kv_pos| {
            let (k, v) = view.f16s();
            attn::attention_sinks(simd, qs, q_pos.len(), &k, &v, view.n_kv, q_pos, kv_pos, p, sk)
        })?;
        Ok(FastTensor::new(q.rows, p.n_head * p.v_head_dim, data))
    }

    fn output_rows(&self, x: FastTensor, b: &CpuBatch) -> Result<FastTensor> {
        let sel = b.select_outputs(&x.f32s(), x.rows, x.cols)?;
        Ok(match sel {
            Some(data) => FastTensor::new(data.len() / x.cols.max(1), x.cols, data),
            None => x,
        })
    }

    fn argmax(&self, x: &FastTensor) -> Result<Vec<u32>> {
        Ok(argmax_rows(&x.f32s(), x.cols))
    }

    fn top_k(&self, x: &FastTensor, k: usize) -> Result<Vec<Vec<(u32, f32)>>> {
        Ok(top_k_rows(&x.f32s(), x.cols, k))
    }

    fn act(&self, x: &FastTensor, act: Act) -> Result<FastTensor> {
        // act(x) · 1 (exact: multiplying by 1.0 changes nothing).
        let mut ones = arena::take(x.rows * x.cols);
        ones.iter_mut().for_each(|v| *v = 1.0);
        let ones = FastTensor::new(x.rows, x.cols, ones);
        self.glu(x, &ones, act)
    }

    fn get_rows(&self, w: &FastWeight, b: &CpuBatch, index: Index) -> Result<FastTensor> {
        let ids = b.ids(index);
        let cols = w.ne0;
        let mut data = arena::take(ids.len() * cols);
        for (i, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= w.rows {
                return Err(shape_err(
                    "get_rows",
                    format!("token id {id} out of range (vocab {}) in {}", w.rows, w.name),
                ));
            }
            let out = &mut data[i * cols..(i + 1) * cols];
            if w.ty == GgmlType::F32 {
                out.copy_from_slice(&w.f32[id * cols..(id + 1) * cols]);
            } else {
                crate::quant::dequantize(w.ty, &w.row(id), out)?;
            }
        }
        Ok(FastTensor::new(ids.len(), cols, data))
    }

    fn rms_norm(&self, x: &FastTensor, eps: f32) -> Result<FastTensor> {
        let cols = x.cols.max(1);
        let simd = self.simd();
        let data = par_rows_copy(&x.f32s(), cols, &|_, rows| {
            let norm = |row: &mut [f32], sum: f64| {
                let mean = (sum / row.len() as f64) as f32;
                let scale = 1.0 / (mean + eps).sqrt();
                for v in row {
                    *v *= scale;
                }
            };
            let mut rest = rows;
            // Groups of 8 rows: their sums in SIMD lanes (the same bits as one at a time).
            #[cfg(target_arch = "x86_64")]
            if simd {
                while rest.len() >= 8 * cols {
                    let (group, tail) = std::mem::take(&mut rest).split_at_mut(8 * cols);
                    let sums = {
                        let r: Vec<&[f32]> = group.chunks(cols).collect();
                        // SAFETY: `simd` is only true when the CPU has AVX2, FMA and F16C.
                        unsafe { simd::half::sumsq8(std::array::from_fn(|i| r[i])) }
                    };
                    for (row, sum) in group.chunks_mut(cols).zip(sums) {
                        norm(row, sum);
                    }
                    rest = tail;
                }
            }
            let _ = simd;
            for row in rest.chunks_mut(cols) {
                let sum: f64 = row.iter().map(|&v| f64::from(v * v)).sum();
                norm(row, sum);
            }
        });
        Ok(FastTensor::new(x.rows, x.cols, data))
    }

    fn layer_norm(&self, x: &FastTensor, eps: f32) -> Result<FastTensor> {
        let mut data = arena::copy_of(&x.f32s());
        for row in data.chunks_mut(x.cols.max(1)) {
            let n = row.len() as f64;
            let mean = (row.iter().map(|&v| f64::from(v)).sum::<f64>() / n) as f32;
            let mut sum2 = 0f64;
            for v in row.iter_mut() {
                *v -= mean;
                sum2 += f64::from(*v * *v);
            }
            let scale = 1.0 / ((sum2 / n) as f32 + eps).sqrt();
            for v in row {
                *v *= scale;
            }
        }
        Ok(FastTensor::new(x.rows, x.cols, data))
    }

    fn mul_row(&self, x: &FastTensor, w: &FastWeight) -> Result<FastTensor> {
        self.one_d("mul_row", w, x.cols)?;
        let data = par_rows_copy(&x.f32s(), x.cols, &|_, rows| broadcast_row(rows, x.cols, &w.f32, |v, g| *v *= g));
        Ok(FastTensor::new(x.rows, x.cols, data))
    }

    fn add_row(&self, x: &FastTensor, b: &FastWeight) -> Result<FastTensor> {
        self.one_d("add_row", b, x.cols)?;
        let mut data = arena::copy_of(&x.f32s());
        broadcast_row(&mut data, x.cols, &b.f32, |v, g| *v += g);
        Ok(FastTensor::new(x.rows, x.cols, data))
    }

    fn add(&self, a: &FastTensor, b: &FastTensor) -> Result<FastTensor> {
        if (a.rows, a.cols) != (b.rows, b.cols) {
            return Err(shape_err("add", format!("[{}, {}] + [{}, {}]", a.rows, a.cols, b.rows, b.cols)));
        }
        let (av, bv) = (a.f32s(), b.f32s());
        // Every element is written below.
        let mut data = arena::take_for_overwrite(av.len());
        par_rows(&mut data, a.cols, &|r0, o| {
            let at = r0 * a.cols.max(1);
            for ((o, &x), &y) in o.iter_mut().zip(&av[at..]).zip(&bv[at..]) {
                *o = x + y;
            }
        });
        Ok(FastTensor::new(a.rows, a.cols, data))
    }

    fn scale(&self, x: &FastTensor, s: f32) -> Result<FastTensor> {
        Ok(FastTensor::new(x.rows, x.cols, arena::map(&x.f32s(), |v| v * s)))
    }

    /// The k-quant kernel's formula is picked per row by the row count of the row's own
    /// sequence (`g`), as llama.cpp would for that sequence alone.
    fn matmul(&self, x: &FastTensor, w: &FastWeight, g: &RowGroups) -> Result<FastTensor> {
        let (k, m, n) = (w.ne0, w.rows, x.rows);
        if k != x.cols {
            return Err(shape_err("matmul", format!("x has {} columns, {} has ne0 = {k}", x.cols, w.name)));
        }
        if g.len() != n {
            return Err(shape_err("matmul", format!("{} row groups for {n} rows", g.len())));
        }
        let xs = x.f32s();
        let data = if w.ty == GgmlType::F32 {
            matmul::matmul_f32(&w.f32, k, m, &xs, n)
        } else {
            let kind = act_kind(w.ty).unwrap_or(ActKind::F32);
            let acts = quantize_acts(kind, &xs, k);
            matmul::matmul_q(isa(), &w.qmatrix(), &acts, &g.seq_rows)
        };
        Ok(FastTensor::new(n, m, data))
    }

    /// Projections of one normalized input in one pass ([`CpuFast::matmuls`]), each with its
    /// bias after: the default's values.
    fn norm_matmuls(
        &self,
        x: &FastTensor,
        nw: &FastWeight,
        eps: f32,
        ws: &[(&FastWeight, Option<&FastWeight>)],
        g: &RowGroups,
    ) -> Result<Vec<FastTensor>> {
        let h = self.rms_norm_mul(x, eps, nw)?;
        let plain: Vec<&FastWeight> = ws.iter().map(|(w, _)| *w).collect();
        let ys = self.matmuls(&h, &plain, g)?;
        ys.into_iter().zip(ws).map(|(y, (_, b))| if let Some(b) = b { self.add_row(&y, b) } else { Ok(y) }).collect()
    }

    /// Gate and up in one pass ([`CpuFast::matmuls`]), then the GLU: the default's values.
    fn matmul_glu(
        &self,
        x: &FastTensor,
        gate: &FastWeight,
        up: &FastWeight,
        act: Act,
        g: &RowGroups,
    ) -> Result<FastTensor> {
        let mut ys = self.matmuls(x, &[gate, up], g)?.into_iter();
        match (ys.next(), ys.next()) {
            (Some(gt), Some(u)) => self.glu(&gt, &u, act),
            _ => Err(shape_err("matmul_glu", "two projections expected".into())),
        }
    }

    fn rope(&self, x: &FastTensor, n_head: usize, head_dim: usize, b: &CpuBatch, p: &RopeParams) -> Result<FastTensor> {
        let pos = &b.rows.pos[..];
        p.check_shapes((x.rows, x.cols), n_head, head_dim, pos.len())?;
        let half = p.n_rot / 2;
        let theta_scale = p.freq_base.powf(-2.0 / p.n_rot as f32);
        let corr = p.yarn.map(|y| y.corr_dims(p.n_rot, p.freq_base));
        let neox_fault = p.style == RopeStyle::Neox && crate::faults::active(crate::faults::Fault::FastRopeNeox);
        let simd = self.simd();
        // Rows are independent (each its own angle cache): split over the team for a batch.
        let data = par_rows_copy(&x.f32s(), x.cols, &|r0, rows| {
            let mut cache = vec![(0f32, 0f32); half];
            for (i, row) in rows.chunks_mut(x.cols.max(1)).enumerate() {
                let ps = pos[r0 + i];
                let mut theta = ps as f32;
                for (i, c) in cache.iter_mut().enumerate() {
                    // ggml_rope_cache_init: rope_yarn gets theta / freq_factors[i] as its theta_extrap.
                    let te = match &p.freq_factors {
                        Some(ff) => theta / ff[i],
                        None => theta,
                    };
                    *c = match (p.yarn, corr) {
                        // ggml's rope_yarn: blend interpolated and extrapolated angles, scale by mscale.
                        (Some(y), Some(cd)) => {
                            let interp = p.freq_scale * te;
                            let t = if y.ext_factor != 0.0 {
                                let mix = y.ramp(cd, i);
                                interp * (1.0 - mix) + te * mix
                            } else {
                                interp
                            };
                            let ms = y.mscale(p.freq_scale);
                            (t.cos() * ms, t.sin() * ms)
                        }
                        _ => {
                            let t = p.freq_scale * te;
                            (t.cos(), t.sin())
                        }
                    };
                    theta *= theta_scale;
                }
                if neox_fault {
                    // Planted bug (tests only): rotate NeoX pairs the wrong way.
                    cache.iter_mut().for_each(|c| c.1 = -c.1);
                }
                rotate(simd, row, &cache, 0, n_head, head_dim, half, p.style);
            }
        });
        Ok(FastTensor::new(x.rows, x.cols, data))
    }

    /// As ggml: `argsort_top_k` of the f32 logits, `get_rows`, then `soft_max` over the k chosen
    /// (libm `expf`, f64 sum as `ggml_vec_soft_max_f32`'s tail).
    fn moe_route(&self, logits: &FastTensor, k: usize) -> Result<(Vec<u32>, FastTensor)> {
        if k == 0 || k > logits.cols {
            return Err(shape_err("moe_route", format!("{k} of {} experts", logits.cols)));
        }
        let l = logits.f32s();
        let mut ids = Vec::with_capacity(logits.rows * k);
        let mut w = arena::take(logits.rows * k);
        w.clear();
        for row in l.chunks(logits.cols.max(1)) {
            let top = top_k_desc(row, k);
            let max = row[top[0]];
            let e: Vec<f32> = top.iter().map(|&i| (row[i] - max).exp()).collect();
            let sum: f64 = e.iter().map(|&x| f64::from(x)).sum();
            let inv = (1.0 / sum) as f32;
            ids.extend(top.iter().map(|&i| i as u32));
            w.extend(e.iter().map(|&x| x * inv));
        }
        Ok((ids, FastTensor::new(logits.rows, k, w)))
    }

    /// ggml's `mul_mat_id` on the CPU: rows grouped by expert, each group's activations quantized
    /// to the weight's `vec_dot_type` (Q8_0 for MXFP4 and the 32-element types) and multiplied
    /// with the same block dot products as [`Ops::matmul`]; then `add_id` adds the expert's bias.
    fn matmul_id(
        &self,
        x: &FastTensor,
        w: &FastWeight,
        b: Option<&FastWeight>,
        ids: &Vec<u32>,
        k: usize,
    ) -> Result<FastTensor> {
        let (_, m, n_exp, shared) = check_matmul_id(x.rows, x.cols, &w.dims, b.map(|b| b.f32.len()), ids, k)?;
        if let Some(b) = b {
            self.one_d("matmul_id bias", b, m * n_exp)?;
        }
        let kin = x.cols;
        let kind = match w.ty {
            GgmlType::F32 => ActKind::F32,
            t => act_kind(t).filter(|a| *a == ActKind::Q8).ok_or_else(|| {
                shape_err("matmul_id", format!("{}: expert weights of type {t} are not supported", w.name))
            })?,
        };
        let rb = w.row_bytes();
        let xs = x.f32s();
        let mut out = arena::take(ids.len() * m);
        for e in 0..n_exp {
            let rows: Vec<usize> = (0..ids.len()).filter(|&r| ids[r] as usize == e).collect();
            if rows.is_empty() {
                continue;
            }
            let mut xe = arena::take(rows.len() * kin);
            for (i, &r) in rows.iter().enumerate() {
                let xr = if shared { r / k } else { r };
                xe[i * kin..(i + 1) * kin].copy_from_slice(&xs[xr * kin..(xr + 1) * kin]);
            }
            let y = if kind == ActKind::F32 {
                matmul::matmul_f32(&w.f32[e * m * kin..(e + 1) * m * kin], kin, m, &xe, rows.len())
            } else {
                let acts = quantize_acts(kind, &xe, kin);
                let data = &w.raw[e * m * rb..(e + 1) * m * rb];
                let qm = QMatrix { ty: w.ty, k: kin, m, row_bytes: rb, data, panels: None };
                matmul::matmul_q(isa(), &qm, &acts, &vec![rows.len() as u32; rows.len()])
            };
            for (i, &r) in rows.iter().enumerate() {
                let o = &mut out[r * m..(r + 1) * m];
                o.copy_from_slice(&y[i * m..(i + 1) * m]);
                if let Some(b) = b {
                    for (v, bb) in o.iter_mut().zip(&b.f32[e * m..(e + 1) * m]) {
                        *v += bb;
                    }
                }
            }
            arena::give(y);
            arena::give(xe);
        }
        Ok(FastTensor::new(ids.len(), m, out))
    }

    /// ggml's `swiglu_oai_f32`: f32 with libm `expf`.
    fn swiglu_oai(&self, gate: &FastTensor, up: &FastTensor, alpha: f32, limit: f32) -> Result<FastTensor> {
        if (gate.rows, gate.cols) != (up.rows, up.cols) {
            return Err(shape_err(
                "swiglu_oai",
                format!("gate [{}, {}], up [{}, {}]", gate.rows, gate.cols, up.rows, up.cols),
            ));
        }
        let data = arena::zip(&gate.f32s(), &up.f32s(), |g, u| {
            let x = g.min(limit);
            let y = u.clamp(-limit, limit);
            x / (1.0 + (alpha * -x).exp()) * (y + 1.0)
        });
        Ok(FastTensor::new(gate.rows, gate.cols, data))
    }

    /// `experts · weights` then the adds in slot order, in f32 as ggml's `mul` and `add`s.
    fn moe_combine(&self, experts: &FastTensor, weights: &FastTensor, k: usize) -> Result<FastTensor> {
        crate::ops::check_moe_combine((experts.rows, experts.cols), (weights.rows, weights.cols), k)?;
        let (ex, wt) = (experts.f32s(), weights.f32s());
        let e = experts.cols;
        let mut data = arena::take(weights.rows * e);
        for (t, out) in data.chunks_mut(e.max(1)).enumerate() {
            for j in 0..k {
                let wj = wt[t * k + j];
                let row = &ex[(t * k + j) * e..(t * k + j + 1) * e];
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = if j == 0 { v * wj } else { *o + v * wj };
                }
            }
        }
        Ok(FastTensor::new(weights.rows, e, data))
    }

    fn glu(&self, gate: &FastTensor, up: &FastTensor, act: Act) -> Result<FastTensor> {
        if (gate.rows, gate.cols) != (up.rows, up.cols) {
            return Err(shape_err(
                "glu",
                format!("gate [{}, {}], up [{}, {}]", gate.rows, gate.cols, up.rows, up.cols),
            ));
        }
        let (g, u) = (gate.f32s(), up.f32s());
        let data = match act {
            Act::Silu => {
                // Every element is written below.
                let mut out = arena::take_for_overwrite(g.len());
                let cols = gate.cols.max(1);
                let (simd, lanes) = (self.simd(), simd::f32_lanes());
                par_rows(&mut out, cols, &|r0, o| {
                    let (g, u) = (&g[r0 * cols..][..o.len()], &u[r0 * cols..][..o.len()]);
                    for ((o, g), u) in o.chunks_mut(cols).zip(g.chunks(cols)).zip(u.chunks(cols)) {
                        #[cfg(target_arch = "x86_64")]
                        if simd {
                            // SAFETY: the CPU has AVX2, FMA and F16C (`simd`).
                            unsafe {
                                if lanes == 16 {
                                    simd::half::swiglu_row::<true>(g, u, o)
                                } else {
                                    simd::half::swiglu_row::<false>(g, u, o)
                                }
                            };
                            continue;
                        }
                        swiglu_row_ref(g, u, o, lanes);
                    }
                });
                out
            }
            Act::Gelu => {
                let t = gelu_table();
                // Every element is written below.
                let mut out = arena::take_for_overwrite(g.len());
                let simd = self.simd();
                par_rows(&mut out, gate.cols, &|r0, o| {
                    let (g, u) = (&g[r0 * gate.cols..][..o.len()], &u[r0 * gate.cols..][..o.len()]);
                    #[cfg(target_arch = "x86_64")]
                    if simd {
                        // SAFETY: the CPU has AVX2, FMA and F16C (`simd`); the table is padded.
                        unsafe { simd::half::gelu_mul_row(g, u, t, o) };
                        return;
                    }
                    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                        *o = gelu(g, t) * u;
                    }
                });
                out
            }
        };
        Ok(FastTensor::new(gate.rows, gate.cols, data))
    }

    fn softcap(&self, x: &FastTensor, cap: f32) -> Result<FastTensor> {
        let inv = 1.0 / cap;
        Ok(FastTensor::new(x.rows, x.cols, arena::map(&x.f32s(), |v| (v * inv).tanh() * cap)))
    }

    fn slice_cols(&self, x: &FastTensor, start: usize, len: usize) -> Result<FastTensor> {
        if start + len > x.cols {
            return Err(shape_err("slice_cols", format!("[{start}, {}) of {} columns", start + len, x.cols)));
        }
        let xs = x.f32s();
        let mut data = arena::take(x.rows * len);
        for (r, o) in data.chunks_exact_mut(len.max(1)).enumerate() {
            o.copy_from_slice(&xs[r * x.cols + start..r * x.cols + start + len]);
        }
        Ok(FastTensor::new(x.rows, len, data))
    }
}

#[cfg(test)]
mod tests;
