//! `Cuda`: every op of the interface on the GPU, for both numerics.
//!
//! - `exact`: f32 activations and KV cache; weights stay in VRAM in their GGUF encoding and are
//!   dequantized in registers to exactly the f32 values the CPU's `tensor_f32` gives; products
//!   accumulate in f32; norms, activations, RoPE and the softmax in f64 like the exact `Cpu`.
//! - `fast`: llama.cpp's fast numerics: activations of quantized matmuls rounded to 8 bits exactly
//!   as llama.cpp rounds them for the weight type's `vec_dot_type` (Q8_0 blocks of 32 with an F16
//!   scale; Q8_K blocks of 256 for the k-quants), of F16 matmuls to F16; an F16 KV cache; queries
//!   and attention probabilities rounded to F16. Products then accumulate in f32 (the integer
//!   block sums of the CPU become f32 sums of the same rounded values).
//!
//! Invariants: a row's result never depends on the other rows of the batch (every kernel computes
//! a row with the same sequence of operations whatever the batch), so a sequence's numbers do not
//! depend on its neighbours; ids and positions from the host are checked here, on the host copy of
//! the batch, before any kernel reads them; a weight type without a kernel is dequantized on the
//! host at load (exactly, by orcd-gguf) and kept as f32.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use orcd_engine::gguf::{GgmlType, GgufFile, TensorInfo};
use orcd_engine::ops::{
    Act, AttnParams, BatchRows, DeviceMemory, GraphKey, Index, KvSpec, KvType, MemoryNeed, Ops, PostNorm, RopeParams,
    RopeStyle, RowGroups,
};
use orcd_engine::{Error, Result};

use crate::device::{Arg, Category, Dev, DevBuf, Graph, VramUse};
use crate::CudaError;

/// The CUDA backend (one per numerics and model; all share the process's device).
#[derive(Debug, Clone)]
pub struct Cuda {
    dev: Arc<Dev>,
    fast: bool,
    /// Recorded forwards (CUDA graphs) and what they need; per model, since the graphs hold
    /// the addresses of its weights and KV cache.
    graphs: Arc<Mutex<Graphs>>,
    /// RoPE frequency factors in device memory, by their bits (uploaded once, outside any
    /// recording: a recorded forward cannot copy from host memory).
    factors: Arc<Mutex<HashMap<Vec<u32>, DevBuf>>>,
    /// The zeroed block counter of the mat-vecs that finish their row's post-norm in the last
    /// block (`matvec8n_` / `matvec2ln_`; each launch leaves it zero again). Made outside any
    /// recording, the first time one runs.
    done_count: Arc<Mutex<Option<DevBuf>>>,
    /// [`GROUP_COUNTS`] zeroed counters of the batched GLU's groups ([`glu_codes_on`]); made as
    /// `done_count`.
    group_counts: Arc<Mutex<Option<DevBuf>>>,
    /// The module this backend launches from: its numerics' own ([`one_numerics_on`]), or the
    /// device's (`None`).
    variant: Option<Arc<crate::device::Variant>>,
}

/// The recorded forwards of one model.
#[derive(Debug, Default)]
struct Graphs {
    /// Forwards run per shape: a shape is recorded the second time it runs (the first run
    /// creates what the forward uploads once, such as RoPE factors).
    seen: HashMap<GraphKey, u32>,
    /// Shapes whose recording failed: run as they are from then on.
    failed: HashSet<GraphKey>,
    recorded: HashMap<GraphKey, Recorded>,
    /// The batch buffers of the recording under way: its inputs, and the output-row indices
    /// (fixed by the key's logits mask) that its gather reads.
    pending: Option<(GraphKey, [DevBuf; 3], Option<DevBuf>)>,
}

/// A recorded forward: its graph, its input buffers (token ids, positions, sequence ids) and its
/// output.
#[derive(Debug)]
struct Recorded {
    graph: Graph,
    inputs: [DevBuf; 3],
    /// The output-row indices the recorded gather reads: held as long as the graph, so the pool
    /// never hands their memory to another buffer (a replay would read it).
    _out_rows: Option<DevBuf>,
    out: (usize, usize, DevBuf),
}

/// A row-major `[rows, cols]` f32 activation in device memory.
#[derive(Debug)]
pub struct CudaTensor {
    pub rows: usize,
    pub cols: usize,
    buf: DevBuf,
    /// The values already rounded to Q8_0 codes, scales and Q8_1 sums (`quant_x_q8`'s layout,
    /// no norm) by the kernel that produced them (a batched decode's attention), for the
    /// mat-vec that reads them; None for every other tensor.
    codes: Option<Box<[CudaTensor; 3]>>,
}

/// A weight in device memory: its GGUF bytes (`ty`), or f32 values (`ty == F32`).
#[derive(Debug)]
pub struct CudaWeight {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Elements per row (`dims[0]`).
    k: usize,
    /// Rows (all experts together for a 3-D weight).
    rows: usize,
    row_bytes: usize,
    buf: DevBuf,
}

/// The KV cache: `[layer][seq][slot][cols]`, f32 or F16.
#[derive(Debug)]
pub struct CudaKv {
    spec: KvSpec,
    k: DevBuf,
    v: DevBuf,
}

/// One forward's batch: the host copy (checked) and its columns in device memory.
#[derive(Debug)]
pub struct CudaBatch {
    rows: BatchRows,
    groups: RowGroups,
    tokens: DevBuf,
    pos: DevBuf,
    seq: DevBuf,
    /// Batch rows whose logits are wanted (`None`: all of them).
    out: Option<(usize, DevBuf)>,
    max_pos: u32,
    /// The forward's RoPE tables (`rope_table`: each row's pairs' sin and cos, once for all the
    /// layers of one set of RoPE parameters), keyed by those parameters' argument bits.
    rope_tabs: std::sync::Mutex<Vec<(Vec<u64>, CudaTensor)>>,
}

/// MoE routing ids `[n, k]`, in device memory.
#[derive(Debug)]
pub struct CudaIds {
    n: usize,
    k: usize,
    buf: DevBuf,
}

fn err(e: CudaError) -> Error {
    e.into()
}

fn shape_err(op: &str, msg: String) -> Error {
    Error::Invalid(format!("{op}: {msg}"))
}

/// The kernel suffix of a weight type with device kernels.
fn kernel_ty(ty: GgmlType) -> Option<&'static str> {
    use GgmlType::*;
    Some(match ty {
        F32 => "f32",
        F16 => "f16",
        BF16 => "bf16",
        Q4_0 => "q4_0",
        Q4_1 => "q4_1",
        Q5_0 => "q5_0",
        Q5_1 => "q5_1",
        Q8_0 => "q8_0",
        Q2_K => "q2_k",
        Q3_K => "q3_k",
        Q4_K => "q4_k",
        Q5_K => "q5_k",
        Q6_K => "q6_k",
        IQ4_NL => "iq4_nl",
        MXFP4 => "mxfp4",
        _ => return None,
    })
}

fn blocks(n: usize, per: usize) -> u32 {
    n.div_ceil(per).max(1) as u32
}

const BLOCK: u32 = 256;
/// Whether a one-row GLU pair takes 8 columns a block (matvec8g_) rather than 4 (matvec4_);
/// `ORCD_MV_GLU8=0` picks 4 (an experiment knob for docs/perf/GPU.md: the same values either way).
fn glu8() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_MV_GLU8").is_none_or(|v| v != "0"))
}

/// Output widths from which a mat-vec's activation is rounded once for the launch (the head:
/// 151,936 columns would each round the same row otherwise; a layer's widest, 2 × 4,864 for
/// gate·up, is cheaper rounded in place than paying a launch): the fast numerics' codes
/// (`quant_x_q8` + `matvecq_`, the integer products of every other fast mat-vec) for
/// part-decodable weights, else `round_x`'s floats.
const MV_ROUND_ONCE_M: usize = 16_384;

/// Rows of a mat-vec from which the activation is normalized and rounded once for the launch
/// (`quant_x_q8` + `matvecq_`, or `round_x`) instead of in every block: one or two rows keep the
/// fused single-launch kernels (a decode step of one sequence).
const MVQ_MIN_ROWS: usize = 3;
/// The once-rounded activation of [`Cuda::matvecq`]: codes, scales and Q8_1 sums
/// (`quant_x_q8`), or floats (`round_x`, or x as it is).
enum MvIn<'a> {
    Codes(&'a CudaTensor, &'a CudaTensor, &'a CudaTensor),
    Floats(&'a CudaTensor),
}

/// Batched rows take the once-rounded activation unless `ORCD_CUDA_MVQ=0` (the A/B of
/// docs/perf/GPU.md: the same values either way).
fn mvq_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_CUDA_MVQ").is_none_or(|v| v != "0"))
}

/// Blocks an SM of the batched mat-vec's persistent grid (`ORCD_CUDA_MVQ_PERSIST=n`): `matvecq_`
/// and `matvecqg_` (3+ rows on the codes) become `matvecqp_` / `matvecqpg_` launched with at
/// most `n` blocks an SM, each taking the ABI's flat blocks in turn and
/// loading the next one's weights before its own products (kernels/ABI.md). 0 (the default until
/// a card has timed it) launches the flat grid. The same values either way.
fn mvq_persist() -> usize {
    static V: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var("ORCD_CUDA_MVQ_PERSIST").ok().and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Row tiles of 16 a block of the batched tensor-core mat-vec (`matvectw_` for `matvect_`,
/// `matvectgw_` for `matvectg_`): the blocks of a column group take `n` of its row tiles each, in
/// turn, with the group's weight fragments and scales loaded once (the same values). A 64-row
/// step's gate·up and head re-load them for each of four tiles (stop 50's ncu: 73 µs a gate·up
/// launch, 1.05 ms a head). `ORCD_CUDA_MVT_ROWS=n` (1–8, 1 the one-tile kernels: the A/B);
/// default 2 (stop 51, H100, interleaved: 64 sequences +7.5 / +7.8% at 2, +5.7% at 4 — four
/// tiles' fragments spill; 16 sequences, one tile, ±0.7%). Never with the GLU's codes
/// (`matvectgw_` is chosen only when they are off).
fn mvt_rows_a_block() -> usize {
    static V: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var("ORCD_CUDA_MVT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(2).clamp(1, 8))
}

/// Whether a decode row's `matvec8r_` and `matvec8h_` and the `rope` kernel read their pairs'
/// sin and cos from the forward's `rope_table` (one launch a forward and RoPE parameter set) instead of computing
/// them (f64 `pow` and `sincos`) before their waits in every layer — the same values.
/// `ORCD_CUDA_ROPE_TAB=1` on; off until a card has timed it.
fn rope_table_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_ROPE_TAB", &[("1", true)], false))
}

/// The row length (k) past which a one-row mat-vec without a GLU pair takes `matvec2l_` (2
/// columns a block, six iterations' weight parts loaded at once) instead of `matvec8_` (one
/// iteration's: a row of 129–256 parts fetches its second half after the first's products, an HBM
/// round trip on the chain — gemma-3's 2,048-wide downs). Default 2,048 (Qwen's 4,864-wide downs:
/// 8 or 4 columns a block measured 2–6% slower, docs/perf/GPU.md sixteenth block);
/// `ORCD_CUDA_MV_LONG_K=1024` the A/B, untimed. The same values either way (a column's sum is
/// the same order for any columns a block).
fn mv_long_k() -> usize {
    static V: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_MV_LONG_K", &[("1024", 1024)], 2 * 1024))
}

/// A speed switch's value: the choice whose name the environment variable `var` holds, else
/// `default` (unset or any other value).
fn env_choice<T: Copy>(var: &str, choices: &[(&str, T)], default: T) -> T {
    let v = std::env::var(var).ok();
    choices.iter().find(|(name, _)| v.as_deref() == Some(*name)).map_or(default, |&(_, t)| t)
}

/// Whether `n_out` batched Q8_0 rows take the tensor-core form of the codes mat-vec
/// (`matvect_q8_0`, `matvectg_q8_0` for k ≤ 1,024: 16 rows × 16 or 8 columns a block;
/// `matvectl_q8_0` past it, no GLU pair: 16 × 8; kernels/ABI.md) instead of `matvecq_` /
/// `matvecqg_`, for a weight of `cols` output columns. The same values either way. By default
/// past [`MVT_AUTO_ROWS`] rows: measured (H100, d8369c1, docs/perf/GPU.md sixteenth block)
/// +20.3% at 64 sequences and −6.4% at 16, where a 16-row tile leaves the narrow projections a
/// block or two an SM; and from [`MVT_WIDE_ROWS`] rows for a wide weight ([`mvt_wide_cols`]).
/// `ORCD_CUDA_MVT=1` at any batch of 3+ rows, `=0` never (the A/B).
fn mvt_rows(n_out: usize, cols: usize) -> bool {
    static V: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    let forced = *V.get_or_init(|| env_choice("ORCD_CUDA_MVT", &[("1", Some(true)), ("0", Some(false))], None));
    forced.unwrap_or(n_out > MVT_AUTO_ROWS || (n_out >= MVT_WIDE_ROWS && cols >= mvt_wide_cols()))
}

/// The rows up to which the default keeps `matvecq_` (see [`mvt_rows`]): one 16-row tile.
const MVT_AUTO_ROWS: usize = 16;
/// The rows from which a wide weight takes the tensor-core form: three quarters of a tile. At 4
/// rows it lost 17.1% (gate·up and the head: H100, stop 43), at 16 it gained 7.0%; 12–15 rows are
/// not measured. Why 12: `matvecq_` takes rows in blocks of 8, so 9–16 rows cost it two blocks'
/// work as 16 do, and a 16-row tile costs the same at any fill — the 16-row comparison should
/// hold down to 9; 12 leaves a margin.
const MVT_WIDE_ROWS: usize = 12;

/// The output columns from which a weight takes the tensor-core form at [`MVT_WIDE_ROWS`] rows
/// or more: 4,000 by default (the Qwen2.5-0.5B shape's gate·up, 4,864, and its 151,936-wide
/// head), `ORCD_CUDA_MVT_WIDE=C` another threshold, `=0` none (the A/B). A fused q·k·v counts
/// its projections' columns together; a GLU pair its gate's. Measured at 16 sequences (H100,
/// stop 43, one build, same call): the head alone +0.8%, the head and gate·up **+7.0%** — where
/// ncu had gate·up's `matvecqg_` at 29 µs a launch (26% of the step) against a 2.8 µs read.
fn mvt_wide_cols() -> usize {
    static V: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *V.get_or_init(|| match std::env::var("ORCD_CUDA_MVT_WIDE").ok().and_then(|v| v.parse::<usize>().ok()) {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 4000,
    })
}

/// `ORCD_CUDA_MVT_NARROW=1` (off until a card has timed it): the tensor-core mat-vec of a weight
/// without a GLU pair, k ≤ 1,024, on 8-column tiles (`matvectn_q8_0`) instead of 16 — twice the
/// blocks, for steps of one or two row tiles, whose narrow projections leave most SMs one block.
/// The same values either way.
fn mvt_narrow() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_CUDA_MVT_NARROW").is_some_and(|v| v == "1"))
}

/// The widest row (k) `matvect_q8_0` takes: one part a thread slot (kernels/ABI.md); longer
/// rows take `matvectl_q8_0` with [`MVT_LONG_SMEM`] bytes of dynamic shared memory.
const MVT_MAX_K: usize = 1024;
/// 4 warps × 128 chain words a lane × 32 lanes × 4 bytes (ops.cu `matvectl_q8_0`'s check).
const MVT_LONG_SMEM: usize = 4 * 128 * 32 * 4;

/// The grid of [`Cuda::matvecq`]: the ABI's flat grid of `nblk` blocks (`nrb` row blocks to a
/// column group), or with `per_sm` > 0 at most `per_sm` blocks an SM, a whole number of row
/// blocks (so a block keeps its rows as it moves along the columns).
fn mvq_grid(nblk: usize, nrb: usize, sms: usize, per_sm: usize) -> usize {
    if per_sm == 0 || nrb == 0 {
        return nblk;
    }
    let cap = ((sms * per_sm) / nrb).max(1) * nrb;
    nblk.min(cap)
}

/// Rows of one sequence from which its fast-numerics matmuls take the tensor-core GEMM
/// (llama.cpp's CUDA backend leaves its mat-vec, mmvq, past 8 rows; ours reads each weight once
/// for 8 rows, so 16 is where a 64-row tile starts to pay).
const MMQ_MIN_ROWS: u32 = 16;
/// `mmq_*`'s tile and block (kernels/ABI.md).
const MMQ_BM: usize = 128;
const MMQ_BN: usize = 64;
const MMQ_THREADS: u32 = 256;

/// The prefill GEMM is on unless `ORCD_CUDA_MMQ=0` (it passed `ops` and memcheck on an H100,
/// docs/perf/GPU.md, ninth block).
fn mmq_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_CUDA_MMQ").is_none_or(|v| v != "0"))
}

/// The further projections' launch arguments of the mat-vec entry points (kernels/ABI.md):
/// `wb, bias_b, yb, mb, wc, bias_c, yc, mc` (null and 0 where absent); their outputs are
/// `ys[1..]`.
fn more_args(more: &[(&CudaWeight, Option<&CudaWeight>)], ys: &[CudaTensor]) -> [Arg; 8] {
    let one = |i: usize| -> ([Arg; 3], i32) {
        match (more.get(i), ys.get(i + 1)) {
            (Some((wm, b)), Some(y)) => {
                ([wm.buf.arg(), b.map_or(Arg::Ptr(0), |b| b.buf.arg()), y.buf.arg()], wm.rows as i32)
            }
            _ => ([Arg::Ptr(0), Arg::Ptr(0), Arg::Ptr(0)], 0),
        }
    };
    let (([wb, bias_b, yb], mb), ([wc, bias_c, yc], mc)) = (one(0), one(1));
    [wb, bias_b, yb, Arg::I32(mb), wc, bias_c, yc, Arg::I32(mc)]
}

/// Small GEMM grids take 32-token tiles (`mmq32_*`) unless `ORCD_CUDA_MMQ32=0` (the A/B of
/// docs/perf/GPU.md: the same values either way).
fn mmq32_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_CUDA_MMQ32").is_none_or(|v| v != "0"))
}

/// Small GEMM grids may take 64-row tiles with `ORCD_CUDA_MMQ64` (off by default until a card
/// has timed it; the same values either way): `1` 64 × 32 (`mmqh32_*`) after 128 × 32, `2`
/// 64 × 64 (`mmqh_*`) instead of 128 × 32, then 64 × 32.
fn mmq64_mode() -> u8 {
    static V: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_MMQ64", &[("1", 1), ("2", 2)], 0))
}

/// The prefill GEMM takes a norm's q, k and v (`Ops::norm_matmuls`) in one launch
/// (`mmqm32_*` / `mmqmh32_*`): the default since stop 43 (H100, one build, the same call: pp512
/// +4.5% / +4.9% over three launches; docs/perf/GPU.md eighteenth block). `ORCD_CUDA_MMQ_QKV=0`
/// keeps three launches (the A/B). The same values either way.
fn mmq_qkv_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_CUDA_MMQ_QKV").is_none_or(|v| v != "0"))
}

/// A prefill GLU pair (gate, up) in one GEMM launch (`mmqg_*`: 64 rows of each a tile, the GLU
/// applied in the block) — the default since stop 44 (pp512 +13.1% / +14.1%, H100, one call);
/// `ORCD_CUDA_MMQ_PAIR=0` keeps two launches (the A/B). ncu (H100, stop 43): the 512-token gate's
/// 304 blocks of 128 × 64 are 1.15 waves of two blocks an SM, so two; the pair's 608 blocks are
/// three for both weights where two launches take four, and the gate's values never leave the
/// block. The same values either way.
fn mmq_pair_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("ORCD_CUDA_MMQ_PAIR").is_none_or(|v| v != "0"))
}

/// The GEMM's entry point and tile (weight rows, tokens) for an `m` × `n` output: 128 × 64
/// (`mmq_`), or, where that grid would leave SMs idle (fewer than two blocks an SM fit), the
/// smaller tiles `mmq32` and `mmq64` ([`mmq64_mode`]) allow, in order — the first whose grid
/// fills the SMs, else the last allowed. The same values on every tile (kernels/ABI.md).
fn mmq_tile(m: usize, n: usize, sms: usize, mmq32: bool, mmq64: u8) -> (&'static str, usize, usize) {
    let mut tiles = vec![("mmq", MMQ_BM, MMQ_BN)];
    if mmq64 == 2 {
        tiles.push(("mmqh", MMQ_BM / 2, MMQ_BN));
    } else if mmq32 {
        tiles.push(("mmq32", MMQ_BM, MMQ_BN / 2));
    }
    if mmq64 > 0 {
        tiles.push(("mmqh32", MMQ_BM / 2, MMQ_BN / 2));
    }
    let fills = |&(_, bm, bn): &(&str, usize, usize)| m.div_ceil(bm) * n.div_ceil(bn) >= 2 * sms;
    tiles.iter().copied().find(fills).unwrap_or(tiles[tiles.len() - 1])
}

/// A fast-numerics prefill's Q4_K and Q6_K projections on the tensor-core GEMM (`quant_x_q8k`'s
/// Q8_K codes, `mmq_q4_k`, `mmq_q6_k`) instead of the many-row mat-vec `matvecf_` (gemma-3-270m's
/// pp512: 11.2 of 22.1 ms, stop 45). Not the mat-vec's bits: integer sums a 32-element block,
/// then d·sc and the min term in f32 (the ops matmul threshold). Measured (H100, stop 48, same
/// call): gemma-3-270m Q4_K_M pp512 23,303 → 41,194 tok/s alone, 23,136 → 80,931 with
/// [`att_mma256`]; on the card every `ops` case passes under it and the real file's fast KL
/// moves from 6.59e-3 to 6.14e-3 on the long prompt (issue 11's case). The default;
/// `ORCD_CUDA_MMQ_K=0` the mat-vec (the A/B).
fn mmq_k_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_MMQ_K", &[("0", false)], true))
}

/// Types whose 8-element parts decode alone (kernels/ops.cu `PART`): the multi-column mat-vecs
/// (`matvec8_`, `matvec2l_`, their fused forms) and the batched ones take them.
fn part_decodable(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q8_0
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
    )
}

/// The k-quants the GEMM takes from Q8_K codes (`quant_x_q8k`) under [`mmq_k_on`].
fn k_quant_gemm(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_K | GgmlType::Q6_K)
}

/// gemma-3's fused norms: `rms_norm_mul_add` (the `rms_norm` kernel with its residual) and
/// `norm_rope_qk_kv_write` (the `rope` kernel with its head norms and q's pre-scale), each the
/// composition's bits (checked on the emulated device: conformance/tests/cuda_emu.rs).
/// `ORCD_CUDA_FUSE_NORMS=0` composes them instead (the A/B).
fn fuse_norms() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_FUSE_NORMS", &[("0", false)], true))
}

/// Heads of q (and of k) `matvec8h_`'s last block normalizes (kernels/ops.cu `QKVH_MAX_HEADS`).
const QKVH_MAX_HEADS: usize = 32;

/// Heads a row of `norm_rope_qk_kv_write`'s one launch (kernels/ops.cu `ROPE_MAX_HEADS`).
const ROPE_MAX_HEADS: usize = 128;

/// Query rows of one tile of `attention_tile` (kernels/ABI.md).
const ATT_TILE_ROWS: usize = 16;

/// When prefill rows take `attention_tile`: `ORCD_CUDA_ATT_TILE=0` never (the A/B of
/// docs/perf/GPU.md: the same values either way), `2` for every batch of two or more rows
/// (how the emulated `ops` cases reach it), otherwise for a batch of at least 16 rows with 8 or
/// more a sequence on average (a decode step of many sequences shares no keys).
fn att_tile_mode() -> u8 {
    static V: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_ATT_TILE", &[("0", 0), ("2", 2)], 1))
}

/// A prefill's tiles through `attention_tile_lpt`, every head's heaviest tile first
/// (longest-first scheduling; `ORCD_CUDA_ATT_LPT=0` the A/B). ncu (H100, stop 43): a 512-token
/// layer's `attention_tile` took 210.7 µs for 448 blocks in 1.7 waves of two an SM, where a
/// causal tile's work grows with its index and the heaviest tiles of the last heads started late.
/// Measured (H100, stop 45, same call): pp512 +17.3% / +17.6%. The same values (the same body;
/// only which block takes which tile).
fn att_lpt() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_ATT_LPT", &[("0", false)], true))
}

/// A fast-numerics prefill's attention with its products on the f16 tensor cores
/// (`attention_mma`: `attention`'s two passes and F16 weights, the softmax in f32 — held to the
/// `ops` attention threshold, not to attention_tile's bits). attention_tile was 34.6% of a pp512
/// at ~3 TFLOPS (stop 43). Measured (H100, stop 45, same call): pp512 +29.4% (4 warps), +24.0%
/// (2 warps). The default: blocks of 64 rows (4 warps); `ORCD_CUDA_ATT_MMA=2` 32 rows (2 warps),
/// `=0` off (the A/B); the warps a block, 0 when off.
fn att_mma() -> u32 {
    static V: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_ATT_MMA", &[("0", 0), ("1", 4), ("2", 2)], 4))
}

/// Whether `attention_mma` takes a tile-sized batch: switched on, an F16 cache (the fast
/// numerics), K and V heads of one width of 64, 128 or 256 (gemma-3: two blocks a head, each
/// half the output), every row of one sequence (a block's rows share its staged keys).
fn att_mma_takes(ty: KvType, head_dim: usize, v_head_dim: usize, seq: &[u32]) -> bool {
    att_mma_for(att_mma() > 0, ty, head_dim, v_head_dim, seq) && (head_dim != 256 || att_mma256())
}

/// A batched decode's attention (the fast numerics, 3+ rows) writes its output's Q8_0 codes too
/// (the o projection's `quant_x_q8` launch saved; the same values: every `ops` metric equal on
/// the emulated device and on an H100). Measured (H100, stop 46, interleaved A/B): 16
/// sequences +3.1% / +3.8%, 4 +2.2% / +2.1%, 64 +1.6% / +1.6%, batch 1 unchanged. The default;
/// `ORCD_CUDA_ATT_CODES=0` keeps the rounding launch (the A/B).
fn att_codes_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_ATT_CODES", &[("0", false)], true))
}

/// A batched GLU (`matvecqg_`, `matvectg_q8_0`: the fast numerics, 3+ rows) rounds its output to
/// the down projection's codes where it produces it: each 32-column group's last block
/// (`mv_glu_codes`, a zeroed counter a group) writes `quant_x_q8`'s values of the same floats, so
/// the down projection's rounding launch is saved (stop 48; the composition's bits on the emulated
/// device and on an H100). `ORCD_CUDA_GLU_CODES=1`; off: measured (H100, stop 48, two calls) at 4
/// / 16 / 64 sequences −4.6 / +2.3 / −3.2% and −4.3 / +1.1 / −3.5% — the fences and the groups'
/// last blocks cost what the launch saved.
fn glu_codes_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_GLU_CODES", &[("1", true)], false))
}

/// Counters of [`glu_codes_on`]'s groups (row tiles × 32-column groups of one launch); a launch
/// needing more keeps the rounding launch.
const GROUP_COUNTS: usize = 1 << 15;

/// One-row projections followed by a post-norm and the residual add in one launch
/// (`matvec8n_` / `matvec2ln_`: the last block to finish normalizes the row; gemma-3's output
/// and down projections; stop 46, the composition's bits on the emulated device):
/// `ORCD_CUDA_FUSE_POSTNORM=1`. On an H100 every `ops` metric under it equals the composition's
/// and memcheck / racecheck find nothing (stops 46, 48), but it is slower: gemma-3-270m decode
/// 821.2 → 753.7 tok/s (−8.2%, stop 48) — the last block's serial norm and every block's fence
/// cost more than the `rms_norm_mul_add` launch. Off: the mat-vec and `rms_norm` launch apart.
fn postnorm_fuse() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_FUSE_POSTNORM", &[("1", true)], false))
}

/// gemma-3's attention post-norm and residual add folded into its FFN's one-row GLU launch
/// (`matvec8gp_`, [`Ops::norm_add_norm_matmul_glu`]): every block computes the sum itself from
/// the output projection and the residual, so the one-block `rms_norm` launch between them goes
/// (18 of a gemma-3-270m step's ~170 launches). Measured (H100, docs/perf/GPU.md twenty-eighth
/// block): gemma-3-270m batch 1 +3.1% fast, +2.8% exact (33542b3), +4.1% / +3.4% (6bf4966),
/// every `models` and `generate` metric the same. Likewise the FFN's post-norm into the next
/// layer's one-row q·k·v launches (`matvec8p_`, [`Ops::norm_add_norm_qkv_norm_rope_kv_write`]):
/// the other 18 — but
/// measured slower (17840b6: −6.0% fast, −6.2% exact against the first alone), so off. The
/// first by default (`glu`); `ORCD_CUDA_FOLD_POSTNORM=1` both, `=0` neither (the A/B).
fn fold_postnorm(qkv: bool) -> bool {
    static V: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    let level = *V.get_or_init(|| env_choice("ORCD_CUDA_FOLD_POSTNORM", &[("1", 2), ("glu", 1), ("0", 0)], 1));
    level > qkv as u8
}

/// A decode batch's q, k and v with RoPE and the KV store in the batched mat-vec's launch
/// (`matvecqr_` / `matvecfr_`: the rows' values of `matvecq_` / `matvecf_` and then of
/// `rope_qk_kv_write`, one launch a layer fewer; stop 49). The default since stop 50 (H100,
/// Qwen2.5-0.5B shape: 4 / 16 sequences +4.6% / +2.6%, 64 ±0, docs/perf/GPU.md);
/// `ORCD_CUDA_BATCH_ROPE=0` is the composition (the A/B).
fn batch_rope_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_BATCH_ROPE", &[("0", false)], true))
}

/// Whether each backend launches from a module of its numerics alone (`MV_ONLY_FAST` /
/// `MV_ONLY_EXACT`, kernels/ABI.md): the one-row mat-vecs without the other numerics' code —
/// the same values, a smaller body fetched cold at each launch (docs/perf/GPU.md, seventeenth
/// and twenty-ninth blocks). `ORCD_CUDA_ONE_NUMERICS=1` on, `=0` off (default off until a card
/// has timed it).
fn one_numerics_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_ONE_NUMERICS", &[("1", true), ("0", false)], false))
}

/// A norm's three one-row projections of two types (q and k of one, v of another: gemma-3's Q5_0
/// and Q8_0) in one launch (`matvec8x_<t1>_<t2>`: each block the type's `matvec8_` code, so the
/// values of the two launches; stop 47): `ORCD_CUDA_MV_MIXED=1`. Off until a card has timed it
/// alone (stop 48 timed it only with the two last-block fusions, together −10.7%).
fn mv_mixed_on() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_MV_MIXED", &[("1", true)], false))
}

/// The `matvec8x_` entry points (kernels/ABI.md): the type pairs real Q4_K_M files give a
/// layer's q, k and v where the k-quants do not fit the row (gemma-3: Q5_0 and Q8_0) or do.
fn mixed_kernel(a: GgmlType, c: GgmlType) -> Option<&'static str> {
    match (a, c) {
        (GgmlType::Q5_0, GgmlType::Q8_0) => Some("matvec8x_q5_0_q8_0"),
        (GgmlType::Q4_K, GgmlType::Q6_K) => Some("matvec8x_q4_k_q6_k"),
        _ => None,
    }
}

/// gemma-3's attention input side in one launch (`matvec8h_<t1>_<t2>`: a decode row's q, k and v
/// as `matvec8x_` computes them, then the last block's head norms, RoPE, KV store and q's
/// pre-scale as the `rope` kernel computes them; stop 47): `ORCD_CUDA_FUSE_QKV_NORM=1`. Off:
/// slower on an H100 (gemma-3-270m decode −2.9%, stop 48; its values the composition's there);
/// off, `norm_matmuls` then `norm_rope_qk_kv_write` (the composition).
fn qkv_norm_fuse() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_FUSE_QKV_NORM", &[("1", true)], false))
}

/// The `matvec8h_` entry points (kernels/ABI.md): gemma-3-270m Q4_K_M's q and k (Q5_0) and v
/// (Q8_0), and the one-type and Q4_K / Q6_K files.
fn qkv_norm_kernel(a: GgmlType, c: GgmlType) -> Option<&'static str> {
    match (a, c) {
        (GgmlType::Q5_0, GgmlType::Q8_0) => Some("matvec8h_q5_0_q8_0"),
        (GgmlType::Q8_0, GgmlType::Q8_0) => Some("matvec8h_q8_0_q8_0"),
        (GgmlType::Q4_K, GgmlType::Q4_K) => Some("matvec8h_q4_k_q4_k"),
        (GgmlType::Q4_K, GgmlType::Q6_K) => Some("matvec8h_q4_k_q6_k"),
        _ => None,
    }
}

/// `attention_mma` for heads of 256 (gemma-3's prefill; stop 46, written to take 9.0 of its
/// 22.1 ms pp512 from `attention_tile_lpt`). Measured (H100, stop 48, same call): gemma-3-270m
/// Q4_K_M pp512 23,303 → 32,228 tok/s alone, 80,931 with [`mmq_k_on`] (the peer 66,721); its
/// values are not the tile's, and on the card every `ops` case passes under it with the real
/// file's fast KL within the bars but issue 11's one case. The default; `ORCD_CUDA_ATT_MMA256=0`
/// the tile (the A/B).
fn att_mma256() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| env_choice("ORCD_CUDA_ATT_MMA256", &[("0", false)], true))
}

fn att_mma_for(on: bool, ty: KvType, head_dim: usize, v_head_dim: usize, seq: &[u32]) -> bool {
    on && ty == KvType::F16
        && head_dim == v_head_dim
        && matches!(head_dim, 64 | 128 | 256)
        && seq.first().is_some_and(|&s0| seq.iter().all(|&s| s == s0))
}

/// `attention_tile`'s dynamic shared memory (kernels/ABI.md, ops.cu `att_tile_floats`): the
/// tile's queries and scores, and one staged tile of keys or values (~16 KiB, 8 to 64 rows,
/// padded by 4 floats).
fn att_tile_bytes(head_dim: usize, v_head_dim: usize, ld: usize) -> usize {
    let w = head_dim.max(v_head_dim).max(1);
    let kt = ((4096 / w) & !7).clamp(8, 64);
    4 * (ATT_TILE_ROWS * (head_dim + ld) + kt * (w + 4))
}

/// Keys whose cache rows the one-row `attention` stages in shared memory before its passes, for
/// rows of `row_bytes` (a key's and its value's) in a launch of `blocks` blocks on `sms` SMs, at
/// most `max_smem` bytes a block: `ORCD_CUDA_ATT_STAGE=n` n (0: none, the A/B); else, with
/// [`att_stage_wide`] and at most a block an SM, up to [`ATT_STAGE_WIDE_KEYS`] within `max_smem`;
/// else [`ATT_STAGE_KEYS`] within [`ATT_STAGE_BYTES`]. The same values either way
/// (kernels/ABI.md).
fn att_stage_keys(row_bytes: usize, blocks: usize, sms: usize, max_smem: usize) -> usize {
    static V: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let env = *V.get_or_init(|| std::env::var("ORCD_CUDA_ATT_STAGE").ok().and_then(|v| v.parse().ok()));
    match env {
        Some(n) => n,
        None if att_stage_wide() && blocks <= sms => ATT_STAGE_WIDE_KEYS.min(max_smem / row_bytes.max(1)),
        None => att_stage_default(row_bytes),
    }
}

/// `ORCD_CUDA_ATT_STAGE_WIDE=1` (off until a card times it): a one-row attention launch of at
/// most one block an SM (rows × heads ≤ the SMs: a decode of a few sequences) stages up to
/// [`ATT_STAGE_WIDE_KEYS`] keys in as much shared memory as a block may have, instead of the
/// default's 64 KiB — gemma-3's 256-wide F16 heads stage 64 keys by default, so at tg128 about
/// half of them are read from the cache in passes 1 and 3. The same bytes either way.
fn att_stage_wide() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var("ORCD_CUDA_ATT_STAGE_WIDE").is_ok_and(|v| v == "1"))
}

/// The keys [`att_stage_wide`] stages at most (the shared memory allowing).
const ATT_STAGE_WIDE_KEYS: usize = 1024;

/// The default staging: [`ATT_STAGE_KEYS`] keys, fewer where their rows pass [`ATT_STAGE_BYTES`].
fn att_stage_default(row_bytes: usize) -> usize {
    ATT_STAGE_KEYS.min(ATT_STAGE_BYTES / row_bytes.max(1))
}

/// The default of [`att_stage_keys`], as timed (H100, 4297ae4, docs/perf/GPU.md sixteenth block):
/// +4.7% batch-1 decode on the fast numerics (F16 cache: 64 KiB for a 64-wide head), +0.0% on
/// the exact (F32, 128 KiB then), +8.5% / +3.7% at 16 / 64 sequences (fast).
const ATT_STAGE_KEYS: usize = 256;
/// The most shared memory the default stages a block: the timed fast configuration's 64 KiB, so
/// an F32 cache's or a wide head's blocks keep the same occupancy (the exact numerics' batched
/// decode was not timed with 128 KiB a block).
const ATT_STAGE_BYTES: usize = 64 << 10;

/// The attention kernels' shared arguments after their pointers (kernels/ABI.md): rows, layer,
/// the cache's sequences and context, heads, head widths, scale, window, softcap.
fn att_shape_args(rows: usize, il: usize, s: &KvSpec, p: &AttnParams) -> [Arg; 11] {
    [
        Arg::I32(rows as i32),
        Arg::I32(il as i32),
        Arg::I32(s.n_seq as i32),
        Arg::I32(s.n_ctx as i32),
        Arg::I32(p.n_head as i32),
        Arg::I32(p.n_head_kv as i32),
        Arg::I32(p.head_dim as i32),
        Arg::I32(p.v_head_dim as i32),
        Arg::F32(p.scale),
        Arg::I32(p.window.map_or(0, |w| w.min(i32::MAX as usize) as i32)),
        Arg::F32(p.softcap.unwrap_or(0.0)),
    ]
}

/// Splits over the keys of the fast numerics' attention (`ORCD_CUDA_ATT_SPLIT=n`, at most 64;
/// 0, the default until a card has timed it: `attention` / `attention_tile`). On, every row of
/// an F16 cache takes `attention_split` + `attention_combine`: f32, not `attention`'s bits, so
/// the exact numerics' F32 cache never does (kernels/ABI.md).
fn att_split() -> usize {
    static V: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var("ORCD_CUDA_ATT_SPLIT").ok().and_then(|v| v.parse().ok()).unwrap_or(0).min(64))
}

/// `ORCD_CUDA_ATT_H=1` (off until timed; the same values): an F16 cache's one-row attention on
/// `attention_h`, the F16 row in a kernel of its own (with `ORCD_NVRTC_DEFINES=ATT_GENERIC`
/// `attention` then carries the generic row alone): neither cache type's launch fetches the
/// other's code (GPU.md seventeenth block).
fn att_h() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var("ORCD_CUDA_ATT_H").is_ok_and(|v| v == "1"))
}

/// `attention`'s dynamic shared memory with `want` keys staged: the scores' `base` bytes, or with
/// staging the whole context's scores (16-byte aligned) and then `row_elems` elements of `es`
/// bytes a key (its key and value rows), as many keys as `max` allows, up to `want`.
fn att_stage_bytes(base: usize, n_ctx: usize, row_elems: usize, es: usize, want: usize, max: usize) -> usize {
    let off = (n_ctx * 4).div_ceil(16) * 16;
    let row = row_elems * es;
    let keys = want.min(max.saturating_sub(off) / row.max(1));
    if keys == 0 {
        base
    } else {
        off + keys * row
    }
}

fn att_tile_wanted(rows: &BatchRows) -> bool {
    att_tile_for(att_tile_mode(), rows)
}

fn att_tile_for(mode: u8, rows: &BatchRows) -> bool {
    let n = rows.len();
    match mode {
        0 => false,
        2 => n >= 2,
        _ => {
            let seqs: HashSet<u32> = rows.seq.iter().copied().collect();
            n >= ATT_TILE_ROWS && n >= 8 * seqs.len()
        }
    }
}

/// The rows of a matmul that take the GEMM: none, all, or these.
#[derive(Debug, PartialEq, Eq)]
enum MmqRows {
    None,
    All,
    Some(Vec<u32>),
}

/// The rows of an `n_out`-row activation whose sequence has at least [`MMQ_MIN_ROWS`] rows in it
/// (none when the groups do not describe these rows).
fn mmq_select(g: &RowGroups, n_out: usize) -> MmqRows {
    if g.len() != n_out {
        return MmqRows::None;
    }
    let sel: Vec<u32> = (0..n_out as u32).filter(|&r| g.seq_rows[r as usize] >= MMQ_MIN_ROWS).collect();
    match sel.len() {
        0 => MmqRows::None,
        n if n == n_out => MmqRows::All,
        _ => MmqRows::Some(sel),
    }
}

impl Cuda {
    /// The backend on the process's device (`fast` picks the numerics).
    pub fn new(fast: bool) -> std::result::Result<Self, CudaError> {
        let dev = crate::device::device().map_err(CudaError::Unavailable)?;
        let variant = match one_numerics_on() {
            true => Some(dev.variant(if fast { "MV_ONLY_FAST" } else { "MV_ONLY_EXACT" })?),
            false => None,
        };
        Ok(Cuda {
            dev,
            fast,
            graphs: Arc::default(),
            factors: Arc::default(),
            done_count: Arc::default(),
            group_counts: Arc::default(),
            variant,
        })
    }

    pub fn device(&self) -> &Arc<Dev> {
        &self.dev
    }

    /// Device memory in use, by category.
    pub fn vram_use(&self) -> VramUse {
        self.dev.vram_use()
    }

    fn alloc_f32(&self, n: usize) -> Result<DevBuf> {
        self.dev.alloc(n * 4, Category::Workspace).map_err(err)
    }

    fn tensor(&self, rows: usize, cols: usize) -> Result<CudaTensor> {
        Ok(CudaTensor { rows, cols, buf: self.alloc_f32(rows * cols)?, codes: None })
    }

    fn launch(&self, name: &str, grid: (u32, u32, u32), block: u32, smem: u32, args: &[Arg]) -> Result<()> {
        self.dev.launch_in(self.variant.as_deref(), name, grid, block, smem, args, false).map_err(err)
    }

    /// [`Cuda::launch`] with programmatic dependent launch, for kernels that call `pdl_wait`
    /// before they read anything a kernel wrote or write anything (kernels/ABI.md).
    /// Off by default: PDL on rope and attention measured slower (H200; H100 stop 52: attention
    /// −9.4% on Qwen at batch 1), and on rms_norm (H100 stop 52: gemma-3 −3.5%; docs/perf/GPU.md);
    /// `ORCD_CUDA_PDL_MORE` = `all`, or kernels' names (`,` or `+` between them: the A/B scripts
    /// split a switch's variables at commas), turns it on for the A/B. On by default
    /// for `quant_x_q8` (the batched decode's activation rounding, stop 49: H100, 4 / 16 / 64
    /// sequences +2.2 / +6.7 / +1.4% with its trigger; `ORCD_CUDA_QX_PDL=0` with
    /// `ORCD_NVRTC_DEFINES=QX_NO_PDL` is the A/B).
    fn launch_pdl(&self, name: &str, grid: (u32, u32, u32), block: u32, smem: u32, args: &[Arg]) -> Result<()> {
        static MORE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        static QX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let more = MORE.get_or_init(|| std::env::var("ORCD_CUDA_PDL_MORE").unwrap_or_default());
        let qx = *QX.get_or_init(|| env_choice("ORCD_CUDA_QX_PDL", &[("0", false)], true));
        let on = more == "all" || more.split([',', '+']).any(|m| m == name) || (qx && name == "quant_x_q8");
        self.dev.launch_in(self.variant.as_deref(), name, grid, block, smem, args, on).map_err(err)
    }

    /// A 1-D elementwise launch over `n` values.
    fn launch_1d(&self, name: &str, n: usize, args: &[Arg]) -> Result<()> {
        self.launch(name, (blocks(n, BLOCK as usize), 1, 1), BLOCK, 0, args)
    }

    fn unary(&self, name: &str, x: &CudaTensor, extra: &[Arg]) -> Result<CudaTensor> {
        let y = self.tensor(x.rows, x.cols)?;
        let n = x.rows * x.cols;
        let mut args = vec![x.buf.arg(), y.buf.arg(), Arg::I64(n as i64)];
        args.extend_from_slice(extra);
        self.launch_1d(name, n, &args)?;
        Ok(y)
    }

    fn same_shape(op: &str, a: &CudaTensor, b: &CudaTensor) -> Result<()> {
        if (a.rows, a.cols) != (b.rows, b.cols) {
            return Err(shape_err(op, format!("[{}, {}] and [{}, {}]", a.rows, a.cols, b.rows, b.cols)));
        }
        Ok(())
    }

    fn one_d(op: &str, w: &CudaWeight, cols: usize) -> Result<()> {
        if w.ty != GgmlType::F32 || w.k * w.rows != cols {
            return Err(shape_err(op, format!("{} has {} values, rows have {cols}", w.name, w.k * w.rows)));
        }
        Ok(())
    }

    /// How the mat-vec rounds the activation of a matmul with a weight of type `ty` as it stages
    /// it (kernels/ABI.md `xq`): as is (exact; F32 and BF16 weights), or as llama.cpp's fast path
    /// rounds it for the weight type's vec_dot_type: IEEE half for F16, Q8_K blocks of 256 for the
    /// k-quants, Q8_0 blocks of 32 for the rest.
    fn matmul_rounding(&self, cols: usize, ty: GgmlType) -> Result<i32> {
        use GgmlType::*;
        if !self.fast || ty == F32 || ty == BF16 {
            return Ok(-1);
        }
        if ty == F16 {
            return Ok(2);
        }
        let (xq, bs) = match ty {
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K => (1, 256),
            _ => (0, 32),
        };
        if !cols.is_multiple_of(bs) {
            return Err(shape_err("matmul", format!("{cols} columns are not whole blocks of {bs}")));
        }
        Ok(xq)
    }

    /// `y[r, j] = x̂[xr] · W[e·m + j] (+ bias) (+ res[r, j])`: the one mat-vec kernel behind matmul,
    /// matmul_fused, matmul_glu, matmul_id and the norm-fused projections (see kernels/ABI.md).
    /// `x̂` is `x`, or with `norm` its `rms_norm_mul` (computed in the kernel, the same values).
    /// `more` (at most two, same type and shape as `w`, no ids, residual or GLU) are further
    /// projections of the same input in the same launch: their outputs follow the first.
    #[allow(clippy::too_many_arguments)]
    fn matvec(
        &self,
        x: &CudaTensor,
        w: &CudaWeight,
        m: usize,
        n_out: usize,
        ids: Option<(&DevBuf, usize, bool)>,
        bias: Option<&CudaWeight>,
        res: Option<&CudaTensor>,
        glu: Option<(&CudaWeight, Act)>,
        norm: Option<(&CudaWeight, f32)>,
        more: &[(&CudaWeight, Option<&CudaWeight>)],
        groups: Option<&RowGroups>,
    ) -> Result<Vec<CudaTensor>> {
        if let Some((w2, _)) = glu {
            if w2.ty != w.ty || w2.dims != w.dims || w2.row_bytes != w.row_bytes || ids.is_some() {
                return Err(shape_err("matmul_glu", format!("{} and {} differ in type or shape", w.name, w2.name)));
            }
        }
        if more.len() > 2 || (!more.is_empty() && (ids.is_some() || glu.is_some() || res.is_some())) {
            return Err(shape_err(
                "matmul",
                format!("{}: at most two more projections, without ids, GLU or residual", w.name),
            ));
        }
        for (wm, _) in more {
            if wm.ty != w.ty || wm.k != w.k || wm.row_bytes != w.row_bytes {
                return Err(shape_err("matmul", format!("{} and {} differ in type or row length", w.name, wm.name)));
            }
        }
        if x.cols != w.k {
            return Err(shape_err("matmul", format!("{}: rows of {} for k = {}", w.name, x.cols, w.k)));
        }
        if let Some((nw, _)) = norm {
            Self::one_d("rms_norm_mul", nw, x.cols)?;
        }
        let kty =
            kernel_ty(w.ty).ok_or_else(|| shape_err("matmul", format!("{}: no kernel for {:?}", w.name, w.ty)))?;
        let xq = self.matmul_rounding(x.cols, w.ty)?;
        if let Some(r) = res {
            if (r.rows, r.cols) != (n_out, m) {
                return Err(shape_err("matmul", format!("residual [{}, {}] for [{n_out}, {m}]", r.rows, r.cols)));
            }
        }
        // Rows of sequences with many rows (a prefill) take the tensor-core GEMM; the others the
        // mat-vec. With both kinds in one batch the mat-vec computes every row and the GEMM then
        // writes its rows over (a row's value depends on its own sequence alone).
        let sel = self.mmq_rows(w, xq, ids.is_some(), groups, n_out);
        if !matches!(sel, MmqRows::None) {
            let ys = if matches!(sel, MmqRows::Some(_)) {
                self.matvec(x, w, m, n_out, ids, bias, res, glu, norm, more, None)?
            } else {
                let mut ys = vec![self.tensor(n_out, m)?];
                for (wm, _) in more {
                    ys.push(self.tensor(n_out, wm.rows)?);
                }
                ys
            };
            self.mmq(x, w, m, bias, res, glu, norm, more, &ys, &sel)?;
            let mut ys = ys;
            if let Some(y) = ys.first_mut() {
                y.codes = None; // the GEMM's rows were written after any codes of the mat-vec's
            }
            return Ok(ys);
        }
        let mut ys = vec![self.tensor(n_out, m)?];
        for (wm, _) in more {
            ys.push(self.tensor(n_out, wm.rows)?);
        }
        let (mb, mc) = (more.first().map_or(0, |(w, _)| w.rows), more.get(1).map_or(0, |(w, _)| w.rows));
        let total = m + mb + mc;
        // Quantized weights: a block per output column, up to 8 rows sharing each weight read
        // (with ids each row has its own expert); for one or two rows of a part-decodable type,
        // a block per 8 or 4 columns (matvec8_ / matvec4_: more bytes in flight a thread, the
        // activation read once for all of them; the same values). Float weights: a warp per
        // column. kernels/ABI.md.
        let float_w = matches!(w.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
        // Part-decodable types (kernels/ops.cu `PART`): their 8-element parts decode alone. The
        // k-quants' fast numerics round the activation to Q8_K (xq 1), so they never take codes.
        let part = part_decodable(w.ty) && ids.is_none();
        // Several rows (a decode batch): the activation is normalized and rounded once for the
        // whole launch, not again in every block (the same values: kernels/ABI.md). Part-decodable
        // types then take several columns and rows a block: the fast numerics' codes
        // (`quant_x_q8` + `matvecq_`), else `round_x`'s floats (or x itself) with `matvecf_`.
        let batched = ids.is_none() && !float_w && n_out >= MVQ_MIN_ROWS && mvq_on();
        // A wide output (the head) of the fast numerics takes the codes at any row count: one
        // rounding for the launch, and the same integer products alone or batched.
        let wide_codes = part && xq == 0 && m >= MV_ROUND_ONCE_M && mvq_on();
        if part && (batched || wide_codes) {
            if xq == 0 {
                // Codes its producer wrote (attention's) serve where no norm comes between.
                let made;
                let [q, d, s] = match (&x.codes, norm) {
                    (Some(c), None) => &**c,
                    _ => {
                        made = self.quant_codes(x, norm)?;
                        &made
                    }
                };
                // A batched GLU's output may come with its codes (glu_codes_on): the down
                // projection after it takes them.
                let codes = self.matvecq(MvIn::Codes(q, d, s), w, kty, m, n_out, bias, res, glu, more, &ys)?;
                if let Some(y) = ys.first_mut() {
                    y.codes = codes;
                }
            } else if xq >= 0 || norm.is_some() {
                let rounded = self.round_x(x, xq, norm)?;
                self.matvecq(MvIn::Floats(&rounded), w, kty, m, n_out, bias, res, glu, more, &ys)?;
            } else {
                self.matvecq(MvIn::Floats(x), w, kty, m, n_out, bias, res, glu, more, &ys)?;
            }
            return Ok(ys);
        }
        // Long rows (k > 2,048: a down projection) take 2 columns a block, six loop iterations'
        // parts loaded at once: 8 or 4 columns measured 2–6% slower (docs/perf/GPU.md, sixteenth
        // block).
        let (variant, cols, rpb) = if part && n_out == 1 && glu.is_none() && w.k > mv_long_k() {
            ("matvec2l", 2, 1)
        } else if part && n_out == 1 && glu.is_none() {
            ("matvec8", 8, 1)
        } else if part && n_out == 1 && glu8() {
            ("matvec8g", 8, 1)
        } else if part && n_out <= 2 {
            ("matvec4", 4, 2)
        } else {
            ("matvec", 1, if ids.is_some() { 1 } else { n_out.clamp(1, 8) })
        };
        let grid_x = if float_w { blocks(total, 4) } else { blocks(total, cols) };
        // A wide output (the head) normalizes and rounds the activation once, not once per
        // column: round_x computes the values the mat-vec would (the same device code), then the
        // mat-vec takes them as they are. Not the fast numerics' codes of part-decodable weights
        // (only with ORCD_CUDA_MVQ=0 here): their integer products need the codes, so every block
        // rounds its row as the codes path would.
        let codes_in_block = part && xq == 0;
        let rounded;
        let (x, xq, norm) =
            if !float_w && !codes_in_block && (xq >= 0 || norm.is_some()) && (m >= MV_ROUND_ONCE_M || batched) {
                rounded = self.round_x(x, xq, norm)?;
                (&rounded, -1, None)
            } else {
                (x, xq, norm)
            };
        let (ids_arg, ids_k, shared) = match ids {
            Some((b, k, s)) => (b.arg(), k as i32, s as i32),
            None => (Arg::Ptr(0), 0, 0),
        };
        self.dev
            .launch_in(
                self.variant.as_deref(),
                &format!("{variant}_{kty}"),
                (grid_x, blocks(n_out, rpb), 1),
                128,
                0,
                &[
                    &[
                        w.buf.arg(),
                        x.buf.arg(),
                        ys[0].buf.arg(),
                        Arg::I32(n_out as i32),
                        Arg::I32(w.k as i32),
                        Arg::I32(m as i32),
                        Arg::I64(w.row_bytes as i64),
                        ids_arg,
                        Arg::I32(ids_k),
                        Arg::I32(shared),
                        bias.map_or(Arg::Ptr(0), |b| b.buf.arg()),
                        Arg::I32(rpb as i32),
                        res.map_or(Arg::Ptr(0), |r| r.buf.arg()),
                        Arg::I32(xq),
                        glu.map_or(Arg::Ptr(0), |(w2, _)| w2.buf.arg()),
                        Arg::I32(glu.map_or(0, |(_, a)| self.act_code(a))),
                        Arg::I32(norm.is_some() as i32),
                        norm.map_or(Arg::Ptr(0), |(nw, _)| nw.buf.arg()),
                        Arg::F32(norm.map_or(0.0, |(_, e)| e)),
                    ][..],
                    &more_args(more, &ys),
                ]
                .concat(),
                true,
            )
            .map_err(err)?;
        Ok(ys)
    }

    /// `x`'s rows rounded to Q8_0 codes once (`quant_x_q8`, rms-normalized first with `norm`):
    /// codes (one byte an element: k / 4 f32 slots a row), scales and Q8_1 sums per 32.
    fn quant_codes(&self, x: &CudaTensor, norm: Option<(&CudaWeight, f32)>) -> Result<[CudaTensor; 3]> {
        self.quant_codes_as("quant_x_q8", x, norm)
    }

    /// [`Cuda::quant_codes`] by `kernel`: `quant_x_q8` (Q8_0 blocks of 32) or `quant_x_q8k` (Q8_K
    /// blocks of 256, the k-quants' fast activation; k a multiple of 256), the same layout.
    fn quant_codes_as(
        &self,
        kernel: &str,
        x: &CudaTensor,
        norm: Option<(&CudaWeight, f32)>,
    ) -> Result<[CudaTensor; 3]> {
        let k = x.cols;
        let (q, d, s) = (self.tensor(x.rows, k / 4)?, self.tensor(x.rows, k / 32)?, self.tensor(x.rows, k / 32)?);
        self.launch_pdl(
            kernel,
            (x.rows.max(1) as u32, 1, 1),
            128,
            0,
            &[
                x.buf.arg(),
                q.buf.arg(),
                d.buf.arg(),
                s.buf.arg(),
                Arg::I32(x.rows as i32),
                Arg::I32(k as i32),
                Arg::I32(norm.is_some() as i32),
                norm.map_or(Arg::Ptr(0), |(nw, _)| nw.buf.arg()),
                Arg::F32(norm.map_or(0.0, |(_, e)| e)),
            ],
        )?;
        Ok([q, d, s])
    }

    /// `x` as the mat-vec would normalize (`norm`) and round (`xq`) it, once (`round_x`): the
    /// mat-vec then takes it with `xq` -1 and no norm.
    fn round_x(&self, x: &CudaTensor, xq: i32, norm: Option<(&CudaWeight, f32)>) -> Result<CudaTensor> {
        let rounded = self.tensor(x.rows, x.cols)?;
        self.dev
            .launch_in(
                self.variant.as_deref(),
                "round_x",
                (x.rows.max(1) as u32, 1, 1),
                128,
                0,
                &[
                    x.buf.arg(),
                    rounded.buf.arg(),
                    Arg::I32(x.rows as i32),
                    Arg::I32(x.cols as i32),
                    Arg::I32(xq),
                    Arg::I32(norm.is_some() as i32),
                    norm.map_or(Arg::Ptr(0), |(nw, _)| nw.buf.arg()),
                    Arg::F32(norm.map_or(0.0, |(_, e)| e)),
                ],
                true,
            )
            .map_err(err)?;
        Ok(rounded)
    }

    /// [`Cuda::matvec`] of several rows of a part-decodable type from an activation rounded once:
    /// codes (`matvecq_`, 4 columns × 8 rows a block; one or two rows `matvecq1_`, 8 × 1; a GLU
    /// pair `matvecqg_`, 2 × 8) or floats
    /// (`matvecf_`, 8 × 4; `matvecfg_`, 4 × 4): the single-row kernels' values (kernels/ABI.md).
    #[allow(clippy::too_many_arguments)]
    fn matvecq(
        &self,
        x: MvIn<'_>,
        w: &CudaWeight,
        kty: &str,
        m: usize,
        n_out: usize,
        bias: Option<&CudaWeight>,
        res: Option<&CudaTensor>,
        glu: Option<(&CudaWeight, Act)>,
        more: &[(&CudaWeight, Option<&CudaWeight>)],
        ys: &[CudaTensor],
    ) -> Result<Option<Box<[CudaTensor; 3]>>> {
        let (mb, mc) = (more.first().map_or(0, |(w, _)| w.rows), more.get(1).map_or(0, |(w, _)| w.rows));
        let (variant, cols, rows) = match (&x, glu.is_some()) {
            // One or two rows (the head of a decode step): 8 columns a block, 8 blocks an SM.
            (MvIn::Codes(..), false) if n_out <= 2 => ("matvecq1", 8, 1),
            (MvIn::Codes(..), false) => ("matvecq", 4, 8),
            (MvIn::Codes(..), true) => ("matvecqg", 2, 8),
            (MvIn::Floats(_), false) => ("matvecf", 8, 4),
            (MvIn::Floats(_), true) => ("matvecfg", 4, 4),
        };
        let [xa, da, sa] = match x {
            MvIn::Codes(q, d, s) => [q.buf.arg(), d.buf.arg(), s.buf.arg()],
            MvIn::Floats(t) => [t.buf.arg(), Arg::Ptr(0), Arg::Ptr(0)],
        };
        let y0 = ys.first().ok_or_else(|| shape_err("matmul", format!("{}: no output", w.name)))?;
        // One flat grid: the row blocks of a column group are adjacent (or fewer blocks taking
        // them in turn: ORCD_CUDA_MVQ_PERSIST).
        // The tensor-core form (Q8_0, more than one 16-row tile, or 12+ rows of a wide weight:
        // mvt_rows): the same values;
        // rows longer than 1,024 (no GLU pair) keep their slots' chains in 64 KB of dynamic
        // shared memory.
        let tcore = mvt_rows(n_out, m + mb + mc) && kty == "q8_0" && matches!(variant, "matvecq" | "matvecqg");
        let long = w.k > MVT_MAX_K;
        let (variant, cols, rows, smem) = match (variant, tcore, long) {
            ("matvecq", true, false) if mvt_narrow() => ("matvectn", 8, 16, 0),
            ("matvecq", true, false) => ("matvect", 16, 16, 0),
            ("matvecqg", true, false) => ("matvectg", 8, 16, 0),
            ("matvecq", true, true) if MVT_LONG_SMEM <= self.dev.max_smem => ("matvectl", 8, 16, MVT_LONG_SMEM),
            (v, _, _) => (v, cols, rows, 0),
        };
        let nrb = n_out.div_ceil(rows);
        // matvecq_ / matvecqg_ on a persistent grid: matvecqp_ / matvecqpg_ (the same values).
        let persist = mvq_persist();
        let variant = match (variant, persist > 0) {
            ("matvecq", true) => "matvecqp",
            ("matvecqg", true) => "matvecqpg",
            (v, _) => v,
        };
        let per_sm = if variant.starts_with("matvecqp") { persist } else { 0 };
        // The tensor-core forms with several row tiles a block (`matvectw_` / `matvectgw_`: a
        // column group's weight fragments loaded once for them): ceil(nrb / n) blocks a group (the
        // kernel reads it off the grid). Not with the GLU's codes, whose epilogue counts a block a
        // row tile.
        let rows_a_block = mvt_rows_a_block();
        let (variant, nrb_blocks) = match variant {
            "matvect" if rows_a_block > 1 && nrb > 1 => ("matvectw", nrb.div_ceil(rows_a_block)),
            "matvectg" if rows_a_block > 1 && nrb > 1 && !glu_codes_on() => ("matvectgw", nrb.div_ceil(rows_a_block)),
            v => (v, nrb),
        };
        // The batched GLU entry points take four more arguments: its output's codes (mv_glu_codes)
        // where switched on and the groups are whole, else none.
        let glu_entry = matches!(variant, "matvecqg" | "matvectg" | "matvectgw");
        let grid = mvq_grid(nrb_blocks * (m + mb + mc).div_ceil(cols), nrb_blocks, self.dev.sms, per_sm);
        let grid = u32::try_from(grid).map_err(|_| shape_err("matmul", format!("{}: {grid} blocks", w.name)))?;
        let counts = if glu_entry && glu_codes_on() && more.is_empty() && m.is_multiple_of(32) {
            match nrb.checked_mul(m / 32) {
                Some(n) if n <= GROUP_COUNTS => self.counters(&self.group_counts, GROUP_COUNTS)?,
                _ => None,
            }
        } else {
            None
        };
        let codes = match &counts {
            Some(_) => {
                Some(Box::new([self.tensor(n_out, m / 4)?, self.tensor(n_out, m / 32)?, self.tensor(n_out, m / 32)?]))
            }
            None => None,
        };
        let glu_args = match (&codes, &counts) {
            (Some(c), Some(n)) => vec![c[0].buf.arg(), c[1].buf.arg(), c[2].buf.arg(), n.arg()],
            _ if glu_entry => vec![Arg::Ptr(0); 4],
            _ => Vec::new(),
        };
        self.dev
            .launch_in(
                self.variant.as_deref(),
                &format!("{variant}_{kty}"),
                (grid.max(1), 1, 1),
                128,
                smem as u32,
                &[&self.mvq_args(w, [xa, da, sa], y0, n_out, m, bias, res, glu)[..], &more_args(more, ys), &glu_args]
                    .concat(),
                true,
            )
            .map_err(err)?;
        Ok(codes)
    }

    /// [`Backend::attention`] split over the keys (`ORCD_CUDA_ATT_SPLIT`): `attention_split` into
    /// `split` partial sums a row and head, then `attention_combine` into the output
    /// (kernels/ABI.md). The caller has checked the shapes.
    #[allow(clippy::too_many_arguments)]
    fn attention_split(
        &self,
        q: &CudaTensor,
        kv: &CudaKv,
        il: usize,
        b: &CudaBatch,
        p: &AttnParams,
        sinks: Option<&CudaWeight>,
        split: usize,
    ) -> Result<CudaTensor> {
        let s = &kv.spec;
        let rows = q.rows.max(1);
        let y = self.tensor(q.rows, p.n_head * p.v_head_dim)?;
        let part = self.tensor(rows * p.n_head * split, p.v_head_dim + 2)?;
        // A recorded forward is replayed at later positions: a split's keys for the whole context.
        let span = if self.dev.capturing() { s.n_ctx } else { b.max_pos as usize + 1 };
        let smem = span.div_ceil(split) * 4;
        if smem > self.dev.max_smem {
            return Err(shape_err(
                "attention",
                format!("{span} positions in {split} splits need {smem} bytes of shared memory a block"),
            ));
        }
        let (n_head, rows_u, split_u) = (p.n_head as u32, rows as u32, split as u32);
        self.launch_pdl(
            "attention_split",
            (rows_u, n_head, split_u),
            128,
            smem as u32,
            &[
                &[q.buf.arg(), kv.k.arg(), kv.v.arg(), b.pos.arg(), b.seq.arg(), part.buf.arg()][..],
                &att_shape_args(q.rows, il, s, p),
                &[Arg::I32(split as i32)],
            ]
            .concat(),
        )?;
        self.launch_pdl(
            "attention_combine",
            (rows_u, n_head, 1),
            128,
            0,
            &[
                part.buf.arg(),
                sinks.map_or(Arg::Ptr(0), |w| w.buf.arg()),
                y.buf.arg(),
                Arg::I32(q.rows as i32),
                Arg::I32(p.n_head as i32),
                Arg::I32(p.v_head_dim as i32),
                Arg::I32(split as i32),
            ],
        )?;
        Ok(y)
    }

    /// Which rows of a matmul take the tensor-core GEMM (`mmq_*`, kernels/ABI.md): with the fast
    /// numerics (`xq` 0), a Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 weight without expert ids whose rows are whole
    /// pairs of blocks (k % 64 == 0), the rows whose sequence has at least [`MMQ_MIN_ROWS`] rows
    /// in this activation — decided by a row's own sequence, so its value never depends on its
    /// neighbours. `ORCD_CUDA_MMQ=0` turns it off.
    fn mmq_rows(&self, w: &CudaWeight, xq: i32, ids: bool, groups: Option<&RowGroups>, n_out: usize) -> MmqRows {
        // The fast numerics' codes: Q8_0's for these types, Q8_K's (xq 1) for Q4_K and Q6_K.
        let typed = match w.ty {
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => xq == 0,
            ty if k_quant_gemm(ty) => xq == 1 && mmq_k_on(),
            _ => false,
        };
        match groups {
            Some(g) if mmq_on() && !ids && typed && w.k.is_multiple_of(64) => mmq_select(g, n_out),
            _ => MmqRows::None,
        }
    }

    /// The GEMM rows of [`Cuda::matvec`]'s outputs `ys` (the values its ABI gives, per block
    /// instead of per part): the activation rounded to Q8_0 codes once (`quant_x_q8`, normalized
    /// first with `norm`), then one `mmq_<ty>` launch a projection; a GLU pair is the gate's
    /// launch into a scratch tensor, then the up's, which applies the GLU (and the residual).
    #[allow(clippy::too_many_arguments)]
    fn mmq(
        &self,
        x: &CudaTensor,
        w: &CudaWeight,
        m: usize,
        bias: Option<&CudaWeight>,
        res: Option<&CudaTensor>,
        glu: Option<(&CudaWeight, Act)>,
        norm: Option<(&CudaWeight, f32)>,
        more: &[(&CudaWeight, Option<&CudaWeight>)],
        ys: &[CudaTensor],
        sel: &MmqRows,
    ) -> Result<()> {
        let (n, rows) = match sel {
            MmqRows::None => return Ok(()),
            MmqRows::All => (x.rows, None),
            MmqRows::Some(v) => (v.len(), Some(self.upload_u32(v)?)),
        };
        let kty = kernel_ty(w.ty).ok_or_else(|| shape_err("matmul", format!("{}: no GEMM for {:?}", w.name, w.ty)))?;
        let k = x.cols;
        let qx = if k_quant_gemm(w.ty) { "quant_x_q8k" } else { "quant_x_q8" };
        let [q, d, s] = self.quant_codes_as(qx, x, norm)?;
        let rows_arg = rows.as_ref().map_or(Arg::Ptr(0), |b| b.arg());
        // mmq_*'s arguments (kernels/ABI.md) for weight `wt` of `mm` rows into `y`.
        let args = |wt: &CudaWeight,
                    mm: usize,
                    b: Option<&CudaWeight>,
                    r: Option<&CudaTensor>,
                    gin: Option<(&CudaTensor, i32)>,
                    y: &CudaTensor|
         -> [Arg; 14] {
            [
                wt.buf.arg(),
                q.buf.arg(),
                d.buf.arg(),
                s.buf.arg(),
                y.buf.arg(),
                Arg::I32(n as i32),
                Arg::I32(k as i32),
                Arg::I32(mm as i32),
                Arg::I64(wt.row_bytes as i64),
                rows_arg,
                b.map_or(Arg::Ptr(0), |b| b.buf.arg()),
                r.map_or(Arg::Ptr(0), |r| r.buf.arg()),
                gin.map_or(Arg::Ptr(0), |(t, _)| t.buf.arg()),
                Arg::I32(gin.map_or(0, |(_, a)| a)),
            ]
        };
        let gemm = |wt: &CudaWeight,
                    mm: usize,
                    b: Option<&CudaWeight>,
                    r: Option<&CudaTensor>,
                    gin: Option<(&CudaTensor, i32)>,
                    y: &CudaTensor|
         -> Result<()> {
            let (name, bm, bn) = mmq_tile(mm, n, self.dev.sms, mmq32_on(), mmq64_mode());
            self.launch(
                &format!("{name}_{kty}"),
                (blocks(mm, bm), blocks(n, bn), 1),
                MMQ_THREADS,
                0,
                &args(wt, mm, b, r, gin, y),
            )
        };
        let y0 = ys.first().ok_or_else(|| shape_err("matmul", format!("{}: no output", w.name)))?;
        match glu {
            Some((up, act)) if mmq_pair_on() && up.ty == w.ty && up.k == w.k && up.row_bytes == w.row_bytes => {
                // The pair in one launch (mmqg_): 64 rows of each weight a tile, the GLU in the
                // block; `gin` unused, the up weight last.
                let base = args(w, m, bias, res, None, y0);
                self.launch(
                    &format!("mmqg_{kty}"),
                    (blocks(m, MMQ_BM / 2), blocks(n, MMQ_BN), 1),
                    MMQ_THREADS,
                    0,
                    &[&base[..13], &[Arg::I32(self.act_code(act)), up.buf.arg()][..]].concat(),
                )
            }
            Some((up, act)) => {
                let gate = self.tensor(y0.rows, y0.cols)?;
                gemm(w, m, bias, None, None, &gate)?;
                gemm(up, m, None, res, Some((&gate, self.act_code(act))), y0)
            }
            None if mmq_qkv_on()
                && !more.is_empty()
                && more.len() <= 2
                && res.is_none()
                && more.iter().all(|(wm, _)| wm.ty == w.ty && wm.k == w.k && wm.row_bytes == w.row_bytes) =>
            {
                // q, k and v in one launch (mmqm32_ / mmqmh32_): the tile of their concatenation.
                let total = m + more.iter().map(|(wm, _)| wm.rows).sum::<usize>();
                let (_, bm, _) = mmq_tile(total, n, self.dev.sms, true, mmq64_mode());
                let name = if bm == MMQ_BM { "mmqm32" } else { "mmqmh32" };
                let base = args(w, m, bias, None, None, y0);
                self.launch(
                    &format!("{name}_{kty}"),
                    (blocks(total, if bm == MMQ_BM { MMQ_BM } else { MMQ_BM / 2 }), blocks(n, MMQ_BN / 2), 1),
                    MMQ_THREADS,
                    0,
                    &[&base[..], &more_args(more, ys)].concat(),
                )
            }
            None => {
                gemm(w, m, bias, res, None, y0)?;
                for ((wm, bm), y) in more.iter().zip(&ys[1..]) {
                    gemm(wm, wm.rows, *bm, None, None, y)?;
                }
                Ok(())
            }
        }
    }

    /// One row's three norm-fused projections, q and k of one type and v of another, in one
    /// `kernel` launch (`matvec8x_`, [`mv_mixed_on`]); `None` where [`Cuda::mixed_takes`] does not.
    fn norm_matmuls_mixed(
        &self,
        kernel: &str,
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        ws: [(&CudaWeight, Option<&CudaWeight>); 3],
    ) -> Result<Option<Vec<CudaTensor>>> {
        let Some(xq) = self.mixed_takes(x, nw, ws)? else { return Ok(None) };
        let [(wa, _), (wb, _), (wc, _)] = ws;
        let ys = vec![self.tensor(1, wa.rows)?, self.tensor(1, wb.rows)?, self.tensor(1, wc.rows)?];
        let grid = (blocks(wa.rows + wb.rows + wc.rows, 8), 1, 1);
        let args = Self::mixed_args(x, nw, eps, ws, &ys, xq);
        self.dev.launch_in(self.variant.as_deref(), kernel, grid, 128, 0, &args, true).map_err(err)?;
        Ok(Some(ys))
    }

    /// Whether a row's three norm-fused projections (q and k of one type, v of the same or
    /// another) take one mixed launch (`matvec8x_`, `matvec8h_`) with the values of the launches
    /// `matvec` makes for them, and their activation rounding (`xq`) if so: not where `matvec`'s
    /// launch would not be `matvec8_`'s (several rows, long or wide rows, a float or whole-row
    /// type), where the two types round the activation apart, or where a block of 8 columns would
    /// span both types (q + k not a multiple of 8).
    fn mixed_takes(
        &self,
        x: &CudaTensor,
        nw: &CudaWeight,
        [(wa, _), (wb, _), (wc, _)]: [(&CudaWeight, Option<&CudaWeight>); 3],
    ) -> Result<Option<i32>> {
        let one_row = |w: &CudaWeight| {
            part_decodable(w.ty) && w.k == x.cols && w.dims.len() <= 2 && w.k <= mv_long_k() && w.rows < MV_ROUND_ONCE_M
        };
        if x.rows != 1
            || !(one_row(wa) && one_row(wb) && one_row(wc))
            || (wa.ty, wa.row_bytes) != (wb.ty, wb.row_bytes)
            || !(wa.rows + wb.rows).is_multiple_of(8)
        {
            return Ok(None);
        }
        let xq = self.matmul_rounding(x.cols, wa.ty)?;
        if xq != self.matmul_rounding(x.cols, wc.ty)? {
            return Ok(None);
        }
        Self::one_d("rms_norm_mul", nw, x.cols)?;
        Ok(Some(xq))
    }

    /// `matvec8x_`'s arguments (kernels/ABI.md): `matvec_`'s of one row with the norm, q's
    /// weight first, k and v as the further projections, then v's row length.
    fn mixed_args(
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        ws: [(&CudaWeight, Option<&CudaWeight>); 3],
        ys: &[CudaTensor],
        xq: i32,
    ) -> Vec<Arg> {
        let [(wa, ba), _, (wc, _)] = ws;
        [
            &[
                wa.buf.arg(),
                x.buf.arg(),
                ys[0].buf.arg(),
                Arg::I32(1),
                Arg::I32(wa.k as i32),
                Arg::I32(wa.rows as i32),
                Arg::I64(wa.row_bytes as i64),
                Arg::Ptr(0),
                Arg::I32(0),
                Arg::I32(0),
                ba.map_or(Arg::Ptr(0), |b| b.buf.arg()),
                Arg::I32(1),
                Arg::Ptr(0),
                Arg::I32(xq),
                Arg::Ptr(0),
                Arg::I32(0),
                Arg::I32(1),
                nw.buf.arg(),
                Arg::F32(eps),
            ][..],
            &more_args(&[ws[1], ws[2]], ys),
            &[Arg::I64(wc.row_bytes as i64)],
        ]
        .concat()
    }

    /// `norm_qkv_norm_rope_kv_write` of a decode row in one launch (`matvec8h_`,
    /// [`qkv_norm_fuse`]): the projections as [`Cuda::mixed_takes`] allows, whole heads rotated
    /// entirely, at most `QKVH_MAX_HEADS` of q and of k; `None` otherwise (the composition then).
    #[allow(clippy::too_many_arguments)]
    fn qkv_norm_one(
        &self,
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        ws: &[(&CudaWeight, Option<&CudaWeight>); 3],
        kv: &CudaKv,
        il: usize,
        (n_head, n_head_kv, head_dim): (usize, usize, usize),
        b: &CudaBatch,
        p: &RopeParams,
        hn: (&CudaWeight, &CudaWeight, f32),
        q_scale: Option<f32>,
    ) -> Result<Option<CudaTensor>> {
        let [(wq, bq), (wk, bk), (wv, bv)] = *ws;
        let s = &kv.spec;
        let Some(kernel) = qkv_norm_kernel(wq.ty, wv.ty) else { return Ok(None) };
        let shapes = qkv_norm_fuse()
            && b.rows.len() == 1
            && p.n_rot == head_dim
            && head_dim.is_multiple_of(2)
            && head_dim <= 512
            && n_head.max(n_head_kv) <= QKVH_MAX_HEADS
            && wq.rows == n_head * head_dim
            && wk.rows == n_head_kv * head_dim
            && wk.rows == s.k_cols
            && wv.rows == s.v_cols
            && il < s.n_layer;
        if !shapes {
            return Ok(None);
        }
        let Some(xq) = self.mixed_takes(x, nw, [ws[0], ws[1], ws[2]])? else { return Ok(None) };
        let Some(count) = self.done_counter()? else { return Ok(None) };
        for (w, bias) in [(wq, bq), (wk, bk), (wv, bv)] {
            if let Some(bias) = bias {
                Self::one_d("matmul bias", bias, w.rows)?;
            }
        }
        Self::one_d("norm_qkv_norm_rope_kv_write", hn.0, head_dim)?;
        Self::one_d("norm_qkv_norm_rope_kv_write", hn.1, head_dim)?;
        b.rows.check_kv(s)?;
        // The raw projections (scratch the last block reads back) and the rotated queries.
        let ys = vec![self.tensor(1, wq.rows)?, self.tensor(1, wk.rows)?, self.tensor(1, wv.rows)?];
        let q = self.tensor(1, wq.rows)?;
        let args = [
            Self::mixed_args(x, nw, eps, [ws[0], ws[1], ws[2]], &ys, xq),
            self.rope_kv_args(b, p, kv, il, head_dim)?,
            vec![
                hn.0.buf.arg(),
                hn.1.buf.arg(),
                Arg::F32(hn.2),
                Arg::F32(q_scale.unwrap_or(1.0)),
                q.buf.arg(),
                count.arg(),
                self.rope_table(b, p)?,
            ],
        ]
        .concat();
        let grid = (blocks(wq.rows + wk.rows + wv.rows, 8), 1, 1);
        self.dev.launch_in(self.variant.as_deref(), kernel, grid, 128, 0, &args, true).map_err(err)?;
        Ok(Some(q))
    }

    /// [`Ops::norm_qkv_rope_kv_write`] of a decode batch (several rows, none of a sequence the
    /// GEMM takes) in the batched mat-vec's launch with RoPE and the KV store (`matvecqr_` on the
    /// codes, `matvecfr_` on `round_x`'s floats; kernels/ABI.md) under [`batch_rope_on`]; `None`
    /// where that launch would not be the one `norm_matmuls` makes (the tensor-core form, another
    /// type, heads that are not whole blocks) or the heads are not fully rotated: the composition.
    #[allow(clippy::too_many_arguments)]
    fn qkv_rope_batched(
        &self,
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        ws: &[(&CudaWeight, Option<&CudaWeight>); 3],
        g: &RowGroups,
        kv: &CudaKv,
        il: usize,
        (n_head, n_head_kv, head_dim): (usize, usize, usize),
        b: &CudaBatch,
        p: &RopeParams,
    ) -> Result<Option<CudaTensor>> {
        let [(wq, bq), (wk, bk), (wv, bv)] = *ws;
        let s = &kv.spec;
        let n = x.rows;
        if !batch_rope_on()
            || n < MVQ_MIN_ROWS
            || !mvq_on()
            || mvq_persist() > 0
            || !matches!(wq.ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q8_0)
            || [wq, wk, wv].iter().any(|w| w.ty != wq.ty || w.k != x.cols || w.row_bytes != wq.row_bytes)
            || [wq, wk, wv].iter().any(|w| w.dims.len() > 2)
            || p.n_rot != head_dim
            || head_dim == 0
            || head_dim > 512
            || wq.rows != n_head * head_dim
            || wk.rows != n_head_kv * head_dim
            || wk.rows != s.k_cols
            || wv.rows != s.v_cols
            || il >= s.n_layer
        {
            return Ok(None);
        }
        let xq = self.matmul_rounding(x.cols, wq.ty)?;
        let total = wq.rows + wk.rows + wv.rows;
        let kty = kernel_ty(wq.ty).ok_or_else(|| shape_err("matmul", format!("{}: no kernel", wq.name)))?;
        // matvec's choice for these rows: no GEMM rows, not the tensor-core form.
        if !matches!(self.mmq_rows(wq, xq, false, Some(g), n), MmqRows::None)
            || (xq == 0 && mvt_rows(n, total) && kty == "q8_0")
        {
            return Ok(None);
        }
        let (variant, cols, rows) = if xq == 0 { ("matvecqr", 4, 8) } else { ("matvecfr", 8, 4) };
        if !head_dim.is_multiple_of(cols) {
            return Ok(None);
        }
        Self::one_d("rms_norm_mul", nw, x.cols)?;
        for (w, bias) in ws {
            if let Some(bias) = bias {
                Self::one_d("matmul bias", bias, w.rows)?;
            }
        }
        b.rows.check_kv(s)?;
        let made;
        let rounded;
        let [xa, da, sa] = if xq == 0 {
            made = self.quant_codes(x, Some((nw, eps)))?;
            [made[0].buf.arg(), made[1].buf.arg(), made[2].buf.arg()]
        } else {
            rounded = self.round_x(x, xq, Some((nw, eps)))?;
            [rounded.buf.arg(), Arg::Ptr(0), Arg::Ptr(0)]
        };
        let y = self.tensor(n, wq.rows)?;
        let nrb = n.div_ceil(rows);
        let grid = nrb * total.div_ceil(cols);
        let grid = u32::try_from(grid).map_err(|_| shape_err("matmul", format!("{}: {grid} blocks", wq.name)))?;
        self.dev
            .launch_in(
                self.variant.as_deref(),
                &format!("{variant}_{kty}"),
                (grid, 1, 1),
                128,
                0,
                &self
                    .mvq_args(wq, [xa, da, sa], &y, n, wq.rows, bq, None, None)
                    .into_iter()
                    .chain(self.kv_rope_tail((wk, bk), (wv, bv), b, p, kv, il, head_dim)?)
                    .collect::<Vec<_>>(),
                true,
            )
            .map_err(err)?;
        Ok(Some(y))
    }

    /// Each row's argmax of `x` (cols > 0) into a fresh device buffer of `rows` u32: stage 1
    /// spreads a row over up to 128 blocks of 256 (a 150k vocabulary: ~5 values per thread),
    /// stage 2 picks the best of their pairs.
    fn argmax_ids(&self, x: &CudaTensor) -> Result<DevBuf> {
        let nb = x.cols.div_ceil(BLOCK as usize * 4).clamp(1, 128);
        let part_k = self.dev.alloc(x.rows.max(1) * nb * 4, Category::Workspace).map_err(err)?;
        let part_i = self.dev.alloc(x.rows.max(1) * nb * 4, Category::Workspace).map_err(err)?;
        let out = self.dev.alloc(x.rows.max(1) * 4, Category::Workspace).map_err(err)?;
        self.launch(
            "argmax_part",
            (nb as u32, x.rows.max(1) as u32, 1),
            BLOCK,
            0,
            &[x.buf.arg(), part_k.arg(), part_i.arg(), Arg::I32(x.rows as i32), Arg::I32(x.cols as i32)],
        )?;
        self.launch(
            "argmax_final",
            (x.rows.max(1) as u32, 1, 1),
            128,
            0,
            &[part_k.arg(), part_i.arg(), out.arg(), Arg::I32(x.rows as i32), Arg::I32(nb as i32)],
        )?;
        Ok(out)
    }

    /// Replay the forward recorded for `key` (`None`: none is) with the positions and sequence
    /// ids of `rows` and its token ids — `fed`'s, copied on the device, or `rows.tokens`.
    fn replay(&self, key: &GraphKey, rows: &BatchRows, fed: Option<&CudaIds>) -> Result<Option<CudaTensor>> {
        let g = self.graphs()?;
        let Some(r) = g.recorded.get(key) else { return Ok(None) };
        let [tok, pos, seq] = &r.inputs;
        match fed {
            Some(ids) => self.dev.copy(tok, 0, &ids.buf, 0, rows.len() * 4),
            None => self.dev.upload(tok, &rows.tokens),
        }
        .map_err(err)?;
        self.dev.upload(pos, &rows.pos).map_err(err)?;
        self.dev.upload(seq, &rows.seq).map_err(err)?;
        r.graph.launch(&self.dev).map_err(err)?;
        Ok(Some(CudaTensor { rows: r.out.0, cols: r.out.1, buf: r.out.2.clone(), codes: None }))
    }

    /// Fed ids must be one a row.
    fn fed_shape(rows: &BatchRows, tokens: &CudaIds) -> Result<()> {
        if tokens.n * tokens.k != rows.len() {
            return Err(Error::Invalid(format!("fed ids: {} × {} for {} rows", tokens.n, tokens.k, rows.len())));
        }
        Ok(())
    }

    /// The batched mat-vecs' arguments up to the further projections (kernels/ABI.md
    /// `matvecq_<ty>`): the weight, the activation's codes, scales and sums (or floats and two
    /// nulls), the output, rows, k, columns, row length, bias, residual and GLU pair.
    #[allow(clippy::too_many_arguments)]
    fn mvq_args(
        &self,
        w: &CudaWeight,
        x: [Arg; 3],
        y: &CudaTensor,
        n_out: usize,
        m: usize,
        bias: Option<&CudaWeight>,
        res: Option<&CudaTensor>,
        glu: Option<(&CudaWeight, Act)>,
    ) -> Vec<Arg> {
        let [xa, da, sa] = x;
        vec![
            w.buf.arg(),
            xa,
            da,
            sa,
            y.buf.arg(),
            Arg::I32(n_out as i32),
            Arg::I32(w.k as i32),
            Arg::I32(m as i32),
            Arg::I64(w.row_bytes as i64),
            bias.map_or(Arg::Ptr(0), |b| b.buf.arg()),
            res.map_or(Arg::Ptr(0), |r| r.buf.arg()),
            glu.map_or(Arg::Ptr(0), |(w2, _)| w2.buf.arg()),
            Arg::I32(glu.map_or(0, |(_, a)| self.act_code(a))),
        ]
    }

    /// The arguments after q's of `matvec8r_` and `matvecqr_` / `matvecfr_`: k's and v's weight,
    /// bias, (unused) output and columns, then [`Cuda::rope_kv_args`].
    #[allow(clippy::too_many_arguments)]
    fn kv_rope_tail(
        &self,
        (wk, bk): (&CudaWeight, Option<&CudaWeight>),
        (wv, bv): (&CudaWeight, Option<&CudaWeight>),
        b: &CudaBatch,
        p: &RopeParams,
        kv: &CudaKv,
        il: usize,
        head_dim: usize,
    ) -> Result<Vec<Arg>> {
        let bias = |w: Option<&CudaWeight>| w.map_or(Arg::Ptr(0), |b| b.buf.arg());
        let mut args = vec![
            wk.buf.arg(),
            bias(bk),
            Arg::Ptr(0),
            Arg::I32(wk.rows as i32),
            wv.buf.arg(),
            bias(bv),
            Arg::Ptr(0),
            Arg::I32(wv.rows as i32),
        ];
        args.extend(self.rope_kv_args(b, p, kv, il, head_dim)?);
        Ok(args)
    }

    /// The RoPE and cache arguments (kernels/ABI.md `ROPE_KV_PARAMS`) of `matvec8r_`, `matvec8h_`
    /// and `matvecqr_` / `matvecfr_`: the rows of `b` (their positions and sequences) into layer
    /// `il` of `kv`, heads of `head_dim` fully rotated.
    fn rope_kv_args(&self, b: &CudaBatch, p: &RopeParams, kv: &CudaKv, il: usize, head_dim: usize) -> Result<Vec<Arg>> {
        let neox = p.style == RopeStyle::Neox && !orcd_engine::faults::active(orcd_engine::faults::Fault::CudaRopeNeox);
        let s = &kv.spec;
        Ok([b.pos.arg(), b.seq.arg(), Arg::I32(head_dim as i32), Arg::I32(neox as i32)]
            .into_iter()
            .chain(self.rope_angle_args(p)?)
            .chain([
                kv.k.arg(),
                kv.v.arg(),
                Arg::I32(il as i32),
                Arg::I32(s.n_seq as i32),
                Arg::I32(s.n_ctx as i32),
                Arg::I32((s.ty == KvType::F16) as i32),
            ])
            .collect())
    }

    /// The angle's arguments of every RoPE kernel (`rope_angle`'s parameters after the pair,
    /// position and rotated dims): freq_base, freq_scale, yarn_ramp, ext_factor, corr0, corr1,
    /// mscale, freq_factors.
    fn rope_angle_args(&self, p: &RopeParams) -> Result<[Arg; 8]> {
        let (corr, ext, ff) = self.rope_extras(p)?;
        Ok([
            Arg::F32(p.freq_base),
            Arg::F32(p.freq_scale),
            Arg::I32((p.yarn.is_some() && ext != 0.0) as i32),
            Arg::F32(ext),
            Arg::F32(corr[0]),
            Arg::F32(corr[1]),
            Arg::F64(p.mscale_f64()),
            ff.as_ref().map_or(Arg::Ptr(0), |b| b.arg()),
        ])
    }

    /// The first output of [`Cuda::matvec`] (one projection).
    #[allow(clippy::too_many_arguments)]
    fn matvec1(
        &self,
        x: &CudaTensor,
        w: &CudaWeight,
        m: usize,
        n_out: usize,
        ids: Option<(&DevBuf, usize, bool)>,
        bias: Option<&CudaWeight>,
        res: Option<&CudaTensor>,
        glu: Option<(&CudaWeight, Act)>,
        norm: Option<(&CudaWeight, f32)>,
        groups: Option<&RowGroups>,
    ) -> Result<CudaTensor> {
        self.matvec(x, w, m, n_out, ids, bias, res, glu, norm, &[], groups)?
            .into_iter()
            .next()
            .ok_or_else(|| shape_err("matmul", format!("{}: no output", w.name)))
    }

    /// `rms_norm`, then (with `w`) `mul_row` by `w` in the same kernel (the same values).
    fn rms_norm_w(&self, x: &CudaTensor, eps: f32, w: Option<&CudaWeight>) -> Result<CudaTensor> {
        self.rms_norm_launch(x, eps, w, None)
    }

    /// The `rms_norm` kernel: `x` normalized, times `w`, plus `res` (each optional; the
    /// composition's values).
    fn rms_norm_launch(
        &self,
        x: &CudaTensor,
        eps: f32,
        w: Option<&CudaWeight>,
        res: Option<&CudaTensor>,
    ) -> Result<CudaTensor> {
        let y = self.tensor(x.rows, x.cols)?;
        self.launch_pdl(
            "rms_norm",
            (x.rows.max(1) as u32, 1, 1),
            BLOCK,
            0,
            &[
                x.buf.arg(),
                y.buf.arg(),
                Arg::I32(x.rows as i32),
                Arg::I32(x.cols as i32),
                Arg::F32(eps),
                w.map_or(Arg::Ptr(0), |w| w.buf.arg()),
                res.map_or(Arg::Ptr(0), |r| r.buf.arg()),
            ],
        )?;
        Ok(y)
    }

    /// The `rope` kernel on `x` (and, in the same launch, on `x2` with `n_head2` heads); shapes
    /// checked by the caller.
    #[allow(clippy::too_many_arguments)]
    fn rope_launch(
        &self,
        x: &CudaTensor,
        x2: Option<&CudaTensor>,
        n_head: usize,
        n_head2: usize,
        head_dim: usize,
        b: &CudaBatch,
        p: &RopeParams,
        store: Option<(&CudaKv, usize, &CudaTensor)>,
        hn: Option<(&CudaWeight, &CudaWeight, f32)>,
        q_scale: f32,
    ) -> Result<(CudaTensor, Option<CudaTensor>)> {
        if p.n_rot.min(head_dim) > 512 {
            return Err(shape_err("rope", format!("{} rotated dims: the kernel rotates at most 512", p.n_rot)));
        }
        let y = self.tensor(x.rows, x.cols)?;
        let y2 = match x2 {
            Some(t) => Some(self.tensor(t.rows, t.cols)?),
            None => None,
        };
        let planes = if store.is_some() {
            3
        } else if x2.is_some() {
            2
        } else {
            1
        };
        // Head norms: 256 threads, the rms_norm kernel's sums (kernels/ABI.md).
        self.launch_pdl(
            "rope",
            (x.rows.max(1) as u32, planes, 1),
            if hn.is_some() { BLOCK } else { 128 },
            0,
            &[
                x.buf.arg(),
                y.buf.arg(),
                b.pos.arg(),
                Arg::I32(x.rows as i32),
                Arg::I32(n_head as i32),
                Arg::I32(head_dim as i32),
                Arg::I32(p.n_rot as i32),
                Arg::I32(
                    (p.style == RopeStyle::Neox
                        && !orcd_engine::faults::active(orcd_engine::faults::Fault::CudaRopeNeox))
                        as i32,
                ),
            ]
            .into_iter()
            .chain(self.rope_angle_args(p)?)
            .chain([
                x2.map_or(Arg::Ptr(0), |t| t.buf.arg()),
                y2.as_ref().map_or(Arg::Ptr(0), |t| t.buf.arg()),
                Arg::I32(n_head2 as i32),
                store.map_or(Arg::Ptr(0), |(kv, _, _)| kv.k.arg()),
                store.map_or(Arg::Ptr(0), |(kv, _, _)| kv.v.arg()),
                store.map_or(Arg::Ptr(0), |(_, _, v)| v.buf.arg()),
                b.seq.arg(),
                Arg::I32(store.map_or(0, |(_, il, _)| il as i32)),
                Arg::I32(store.map_or(0, |(kv, _, _)| kv.spec.n_seq as i32)),
                Arg::I32(store.map_or(0, |(kv, _, _)| kv.spec.n_ctx as i32)),
                Arg::I32(store.map_or(0, |(kv, _, _)| kv.spec.v_cols as i32)),
                Arg::I32(store.map_or(0, |(kv, _, _)| (kv.spec.ty == KvType::F16) as i32)),
                hn.map_or(Arg::Ptr(0), |(wq, _, _)| wq.buf.arg()),
                hn.map_or(Arg::Ptr(0), |(_, wk, _)| wk.buf.arg()),
                Arg::F32(hn.map_or(0.0, |(_, _, e)| e)),
                Arg::F32(q_scale),
                if x.rows == b.rows.len() { self.rope_table(b, p)? } else { Arg::Ptr(0) },
            ])
            .collect::<Vec<_>>(),
        )?;
        Ok((y, y2))
    }

    /// The shapes of a RoPE + KV store (`rope_qk_kv_write`, `norm_rope_qk_kv_write`): q and k as
    /// `heads` at the batch's rows, k and v the cache's widths, the layer within it.
    #[allow(clippy::too_many_arguments)]
    fn check_rope_kv(
        op: &str,
        (q, k, v): (&CudaTensor, &CudaTensor, &CudaTensor),
        kv: &CudaKv,
        il: usize,
        (n_head, n_head_kv, head_dim): (usize, usize, usize),
        b: &CudaBatch,
        p: &RopeParams,
    ) -> Result<()> {
        p.check_shapes((q.rows, q.cols), n_head, head_dim, b.rows.len())?;
        p.check_shapes((k.rows, k.cols), n_head_kv, head_dim, b.rows.len())?;
        let s = &kv.spec;
        b.rows.check_kv(s)?;
        if il >= s.n_layer || v.rows != k.rows || k.cols != s.k_cols || v.cols != s.v_cols {
            return Err(shape_err(
                op,
                format!("layer {il}: k [{}, {}], v [{}, {}] into {s:?}", k.rows, k.cols, v.rows, v.cols),
            ));
        }
        Ok(())
    }

    /// The `glu` kernel's activation code: silu, or GELU (f64 tanh for exact, ggml's f16 table for
    /// fast, as llama.cpp).
    fn act_code(&self, act: Act) -> i32 {
        match act {
            Act::Silu => 0,
            Act::Gelu => 1 + self.fast as i32,
        }
    }

    /// A RoPE's YaRN correction dims, extrapolation factor and device frequency factors: the
    /// `rope` kernel's and `matvec8r_`'s arguments beyond the plain ones.
    fn rope_extras(&self, p: &RopeParams) -> Result<([f32; 2], f32, Option<DevBuf>)> {
        let corr = p.yarn.map(|y| y.corr_dims(p.n_rot, p.freq_base)).unwrap_or([0.0, 0.0]);
        let ext = p.yarn.map_or(0.0, |y| y.ext_factor);
        let ff = match &p.freq_factors {
            Some(f) => Some(self.factors_on_device(f)?),
            None => None,
        };
        Ok((corr, ext, ff))
    }

    /// The last argument of `matvec8r_` and `rope`: the forward's table of `b`'s rows' RoPE pairs
    /// for `p` (`p.n_rot / 2` pairs a row), launched (`rope_table`, under PDL) the first time a
    /// forward asks for it; null when the switch is off ([`rope_table_on`]) or `n_rot` is outside
    /// the kernel's 2..=512.
    fn rope_table(&self, b: &CudaBatch, p: &RopeParams) -> Result<Arg> {
        if !rope_table_on() || !(2..=512).contains(&p.n_rot) {
            return Ok(Arg::Ptr(0));
        }
        let head_dim = p.n_rot;
        let params: Vec<Arg> = [Arg::I32(head_dim as i32)].into_iter().chain(self.rope_angle_args(p)?).collect();
        let key: Vec<u64> = params.iter().map(Arg::bits).collect();
        let mut tabs = b.rope_tabs.lock().map_err(|_| Error::Invalid("rope tables: poisoned lock".into()))?;
        if let Some((_, t)) = tabs.iter().find(|(k, _)| *k == key) {
            return Ok(t.buf.arg());
        }
        let rows = b.rows.len();
        // Two f64 a pair: head_dim / 2 pairs = head_dim f32 slots of a row.
        let t = self.tensor(rows, 2 * head_dim)?;
        let args: Vec<Arg> =
            [b.pos.arg(), Arg::I32(rows as i32)].into_iter().chain(params).chain([t.buf.arg()]).collect();
        self.dev
            .launch_in(self.variant.as_deref(), "rope_table", (rows as u32, 1, 1), 128, 0, &args, true)
            .map_err(err)?;
        let arg = t.buf.arg();
        tabs.push((key, t));
        Ok(arg)
    }

    /// The device copy of RoPE frequency factors `f` (uploaded the first time they are seen).
    fn factors_on_device(&self, f: &[f32]) -> Result<DevBuf> {
        let key: Vec<u32> = f.iter().map(|x| x.to_bits()).collect();
        let mut map = self.factors.lock().map_err(|_| Error::Invalid("rope factors: poisoned lock".into()))?;
        if let Some(b) = map.get(&key) {
            return Ok(b.clone());
        }
        if self.dev.capturing() {
            return Err(Error::Invalid("rope factors first seen while recording a forward".into()));
        }
        let b = self.dev.alloc(f.len().max(1) * 4, Category::Weights).map_err(err)?;
        self.dev.upload(&b, f).map_err(err)?;
        map.insert(key, b.clone());
        Ok(b)
    }

    /// The mat-vecs' block counter ([`Cuda::done_count`]); None while recording before it exists.
    fn done_counter(&self) -> Result<Option<DevBuf>> {
        self.counters(&self.done_count, 1)
    }

    /// `n` zeroed counters kept in `slot` (made outside any recording, the first time they are
    /// asked for; each launch that counts leaves them zero); None while recording before they exist.
    fn counters(&self, slot: &Mutex<Option<DevBuf>>, n: usize) -> Result<Option<DevBuf>> {
        let mut c = slot.lock().map_err(|_| Error::Invalid("block counter: poisoned lock".into()))?;
        if let Some(b) = c.as_ref() {
            return Ok(Some(b.clone()));
        }
        if self.dev.capturing() {
            return Ok(None);
        }
        let b = self.dev.alloc(4 * n, Category::Workspace).map_err(err)?;
        self.dev.zero(&b).map_err(err)?;
        *c = Some(b.clone());
        Ok(Some(b))
    }

    /// `res + rms_norm_mul(x · wᵀ + bias, eps, nw)` of one row in one launch (`matvec8n_` /
    /// `matvec2ln_`: the row's blocks, then its last block's norm — the composition's values),
    /// where the one-row mat-vec of a part-decodable type takes it; None otherwise.
    #[allow(clippy::too_many_arguments)]
    fn matvec_norm_add(
        &self,
        x: &CudaTensor,
        w: &CudaWeight,
        bias: Option<&CudaWeight>,
        nw: &CudaWeight,
        eps: f32,
        res: &CudaTensor,
        g: &RowGroups,
    ) -> Result<Option<CudaTensor>> {
        let m = w.rows;
        let part = part_decodable(w.ty);
        if !postnorm_fuse()
            || !part
            || x.rows != 1
            || w.dims.len() > 2
            || w.k != x.cols
            || m >= MV_ROUND_ONCE_M
            || (res.rows, res.cols) != (1, m)
            || nw.ty != GgmlType::F32
            || nw.k * nw.rows != m
            || bias.is_some_and(|b| b.ty != GgmlType::F32 || b.k * b.rows != m)
        {
            return Ok(None);
        }
        let xq = self.matmul_rounding(x.cols, w.ty)?;
        if !matches!(self.mmq_rows(w, xq, false, Some(g), 1), MmqRows::None) {
            return Ok(None);
        }
        let Some(count) = self.done_counter()? else { return Ok(None) };
        let kty =
            kernel_ty(w.ty).ok_or_else(|| shape_err("matmul", format!("{}: no kernel for {:?}", w.name, w.ty)))?;
        // The one-row mat-vec's choice (Cuda::matvec): long rows 2 columns a block.
        let (variant, cols) = if w.k > mv_long_k() { ("matvec2ln", 2) } else { ("matvec8n", 8) };
        let (y, out) = (self.tensor(1, m)?, self.tensor(1, m)?);
        self.dev
            .launch_in(
                self.variant.as_deref(),
                &format!("{variant}_{kty}"),
                (blocks(m, cols), 1, 1),
                128,
                0,
                &[
                    &[
                        w.buf.arg(),
                        x.buf.arg(),
                        y.buf.arg(),
                        Arg::I32(1),
                        Arg::I32(w.k as i32),
                        Arg::I32(m as i32),
                        Arg::I64(w.row_bytes as i64),
                        Arg::Ptr(0),
                        Arg::I32(0),
                        Arg::I32(0),
                        bias.map_or(Arg::Ptr(0), |b| b.buf.arg()),
                        Arg::I32(1),
                        Arg::Ptr(0),
                        Arg::I32(xq),
                        Arg::Ptr(0),
                        Arg::I32(0),
                        Arg::I32(0),
                        Arg::Ptr(0),
                        Arg::F32(0.0),
                    ][..],
                    &more_args(&[], &[]),
                    &[nw.buf.arg(), Arg::F32(eps), res.buf.arg(), out.buf.arg(), count.arg()],
                ]
                .concat(),
                true,
            )
            .map_err(err)?;
        Ok(Some(out))
    }

    /// The `matvec8p_` / `matvec8gp_` kernel types (kernels/ABI.md): those of gemma-3's Q4_K_M
    /// q, k, v and gate·up (Q5_0, Q8_0) and two more of the synthetic models'.
    fn pre_kernel_ty(ty: GgmlType) -> Option<&'static str> {
        match ty {
            GgmlType::Q4_0 | GgmlType::Q4_K | GgmlType::Q5_0 | GgmlType::Q8_0 => kernel_ty(ty),
            _ => None,
        }
    }

    /// Whether one row of `k` values with a pending post-norm `pre` may be folded into one-row
    /// launches of weight `w` (the fold on for a GLU pair, or with `qkv` for q·k·v; a row a
    /// block's parts take, no prefill GEMM).
    fn pre_fits(
        &self,
        pre: &PostNorm<'_, CudaTensor, CudaWeight>,
        w: &CudaWeight,
        g: &RowGroups,
        qkv: bool,
    ) -> Result<bool> {
        let k = pre.x.cols;
        if !fold_postnorm(qkv)
            || pre.x.rows != 1
            || (pre.res.rows, pre.res.cols) != (1, k)
            || !k.is_multiple_of(8)
            || k > 8 * 128
            || w.dims.len() > 2
            || w.k != k
            || w.rows >= MV_ROUND_ONCE_M
            || Self::pre_kernel_ty(w.ty).is_none()
        {
            return Ok(false);
        }
        Self::one_d("rms_norm_mul_add", pre.w, k)?;
        let xq = self.matmul_rounding(k, w.ty)?;
        Ok(matches!(self.mmq_rows(w, xq, false, Some(g), 1), MmqRows::None))
    }

    /// One `matvec8p_` / `matvec8gp_` launch (kernels/ABI.md): `pre`'s sum `h` computed by every
    /// block and stored by the first, then the norm-fused projections of it — `w` (with `glu`'s
    /// pair) and the `more` projections, outputs `ys`. The caller checked [`Self::pre_fits`].
    #[allow(clippy::too_many_arguments)]
    fn matvec_pre(
        &self,
        pre: &PostNorm<'_, CudaTensor, CudaWeight>,
        h: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        (w, bias): (&CudaWeight, Option<&CudaWeight>),
        glu: Option<(&CudaWeight, Act)>,
        more: &[(&CudaWeight, Option<&CudaWeight>)],
        ys: &[CudaTensor],
    ) -> Result<()> {
        let k = pre.x.cols;
        Self::one_d("rms_norm_mul", nw, k)?;
        for (wi, bi) in std::iter::once(&(w, bias)).chain(more) {
            if wi.ty != w.ty || wi.k != k || wi.row_bytes != w.row_bytes {
                return Err(shape_err("matmul", format!("{} and {} differ in type or row length", w.name, wi.name)));
            }
            if let Some(b) = bi {
                Self::one_d("matmul bias", b, wi.rows)?;
            }
        }
        let kty = Self::pre_kernel_ty(w.ty)
            .ok_or_else(|| shape_err("matmul", format!("{}: no folded kernel for {:?}", w.name, w.ty)))?;
        let total = w.rows + more.iter().map(|(wm, _)| wm.rows).sum::<usize>();
        let (name, up) = match glu {
            Some((up, _)) => (format!("matvec8gp_{kty}"), up.buf.arg()),
            None => (format!("matvec8p_{kty}"), Arg::Ptr(0)),
        };
        self.dev
            .launch_in(
                self.variant.as_deref(),
                &name,
                (blocks(total, 8), 1, 1),
                128,
                0,
                &[
                    &[
                        w.buf.arg(),
                        pre.res.buf.arg(),
                        ys[0].buf.arg(),
                        Arg::I32(1),
                        Arg::I32(k as i32),
                        Arg::I32(w.rows as i32),
                        Arg::I64(w.row_bytes as i64),
                        Arg::Ptr(0),
                        Arg::I32(0),
                        Arg::I32(0),
                        bias.map_or(Arg::Ptr(0), |b| b.buf.arg()),
                        Arg::I32(1),
                        Arg::Ptr(0),
                        Arg::I32(self.matmul_rounding(k, w.ty)?),
                        up,
                        Arg::I32(glu.map_or(0, |(_, a)| self.act_code(a))),
                        Arg::I32(1),
                        nw.buf.arg(),
                        Arg::F32(eps),
                    ][..],
                    &more_args(more, ys),
                    &[pre.x.buf.arg(), pre.w.buf.arg(), Arg::F32(pre.eps), h.buf.arg()],
                ]
                .concat(),
                true,
            )
            .map_err(err)
    }

    fn graphs(&self) -> Result<std::sync::MutexGuard<'_, Graphs>> {
        self.graphs.lock().map_err(|_| Error::Invalid("cuda graphs: poisoned lock".into()))
    }

    /// Upload `v` (u32) into a fresh workspace buffer.
    fn upload_u32(&self, v: &[u32]) -> Result<DevBuf> {
        let b = self.dev.alloc(v.len().max(1) * 4, Category::Workspace).map_err(err)?;
        self.dev.upload(&b, v).map_err(err)?;
        Ok(b)
    }
}

impl Ops for Cuda {
    type Tensor = CudaTensor;
    type Weight = CudaWeight;
    type Kv = CudaKv;
    type Batch = CudaBatch;
    type Ids = CudaIds;

    fn name(&self) -> &'static str {
        if self.fast {
            "cuda-fast"
        } else {
            "cuda"
        }
    }

    fn kv_type(&self) -> KvType {
        if self.fast {
            KvType::F16
        } else {
            KvType::F32
        }
    }

    fn graph_replay(&self, key: &GraphKey, rows: &BatchRows) -> Result<Option<CudaTensor>> {
        self.replay(key, rows, None)
    }

    fn graph_begin(&self, key: &GraphKey, b: &CudaBatch) -> Result<bool> {
        // Profiling synchronises after every launch, which a recording cannot hold.
        // The emulated device records no graphs.
        if std::env::var_os("ORCD_CUDA_GRAPHS").is_some_and(|v| v == "0") || self.dev.profiling() || self.dev.emulated()
        {
            return Ok(false);
        }
        let mut g = self.graphs()?;
        let n = g.seen.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n < 2 || g.failed.contains(key) || g.recorded.contains_key(key) {
            return Ok(false);
        }
        let out_rows = b.out.as_ref().map(|(_, buf)| buf.clone());
        g.pending = Some((key.clone(), [b.tokens.clone(), b.pos.clone(), b.seq.clone()], out_rows));
        drop(g);
        self.dev.begin_capture().map_err(err)?;
        Ok(true)
    }

    fn graph_end(&self, key: &GraphKey, out: Option<&CudaTensor>) -> Result<bool> {
        let mut g = self.graphs()?;
        let pending = g.pending.take();
        let graph = self.dev.end_capture(out.is_some()).unwrap_or(None);
        let (Some(graph), Some(out), Some((k, inputs, out_rows))) = (graph, out, pending) else {
            g.failed.insert(key.clone());
            return Ok(false);
        };
        if let Err(e) = graph.launch(&self.dev) {
            g.failed.insert(key.clone());
            return Err(err(e));
        }
        g.recorded
            .insert(k, Recorded { graph, inputs, _out_rows: out_rows, out: (out.rows, out.cols, out.buf.clone()) });
        Ok(true)
    }

    fn device_memory(&self) -> Option<DeviceMemory> {
        let u = self.dev.vram_use();
        let (free, total) = self.dev.mem_info().unwrap_or((0, 0));
        Some(DeviceMemory {
            device: self.dev.name.clone(),
            weights: u.weights,
            kv: u.kv,
            workspace: u.workspace,
            free,
            total,
            kernel_profile: self.dev.profile(),
        })
    }

    fn weight_bytes(&self, t: &TensorInfo) -> u64 {
        if t.dims.len() <= 1 || kernel_ty(t.ty).is_none() {
            t.n_elements.saturating_mul(4)
        } else {
            // The device layout's rows (crate::layout: Q8_0 grouped may add a few bytes a row).
            let k = t.dims.first().copied().unwrap_or(1).max(1);
            match crate::layout::device_row_bytes(t.ty, k as usize) {
                Some(rb) => (t.n_elements / k).saturating_mul(rb as u64),
                None => t.n_bytes,
            }
        }
    }

    /// Refuse a model whose weights, KV cache and workspace do not fit the device's free memory.
    fn reserve(&self, need: &MemoryNeed) -> Result<()> {
        let (free, _) = self.dev.mem_info().map_err(err)?;
        if need.total() > free {
            return Err(Error::InsufficientVram {
                what: format!(
                    "the model (weights {} + KV cache {} + workspace {} bytes)",
                    need.weights, need.kv, need.workspace
                ),
                needed: need.total(),
                free,
                device: self.dev.name.clone(),
            });
        }
        Ok(())
    }

    fn load_weight(&self, f: &GgufFile, t: &TensorInfo) -> Result<CudaWeight> {
        let k = t.dims.first().copied().unwrap_or(1).max(1) as usize;
        let rows = (t.n_elements as usize) / k;
        // 1-D weights (norms, biases, sinks) and types without a kernel are kept as f32.
        let (ty, host): (GgmlType, Vec<u8>) = if t.dims.len() <= 1 || kernel_ty(t.ty).is_none() {
            let v = f.tensor_f32(&t.name)?;
            (GgmlType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        } else {
            (t.ty, f.tensor_data(t).to_vec())
        };
        let gguf_row = ty
            .row_bytes(k as u64)
            .ok_or_else(|| shape_err("load", format!("{}: row of {k} {:?} values", t.name, ty)))?
            as usize;
        if gguf_row * rows != host.len() {
            return Err(shape_err("load", format!("{}: {} bytes for {rows} rows of {gguf_row}", t.name, host.len())));
        }
        // The device layout (crate::layout): the GGUF bytes, or Q8_0 regrouped for wider loads.
        let dev_bytes = crate::layout::q8_0_device_bytes(ty, &host, rows, k)
            .ok_or_else(|| shape_err("load", format!("{}: {rows} rows of {k} {:?} values", t.name, ty)))?;
        let row_bytes = crate::layout::device_row_bytes(ty, k).unwrap_or(gguf_row);
        if row_bytes * rows != dev_bytes.len() {
            return Err(shape_err(
                "load",
                format!("{}: device layout of {} bytes for {rows} rows", t.name, dev_bytes.len()),
            ));
        }
        let buf = self.dev.alloc(dev_bytes.len(), Category::Weights).map_err(err)?;
        self.dev.upload(&buf, &dev_bytes).map_err(err)?;
        Ok(CudaWeight { name: t.name.clone(), dims: t.dims.clone(), ty, k, rows, row_bytes, buf })
    }

    fn tensor_from_host(&self, rows: usize, cols: usize, data: &[f32]) -> Result<CudaTensor> {
        if rows * cols != data.len() {
            return Err(Error::Invalid(format!("tensor [{rows}, {cols}] given {} values", data.len())));
        }
        let t = self.tensor(rows, cols)?;
        self.dev.upload(&t.buf, data).map_err(err)?;
        Ok(t)
    }

    fn shape(&self, t: &CudaTensor) -> (usize, usize) {
        (t.rows, t.cols)
    }

    fn to_host(&self, t: &CudaTensor) -> Result<Vec<f32>> {
        self.dev.download(&t.buf, t.rows * t.cols).map_err(err)
    }

    fn reshape(&self, t: CudaTensor, rows: usize, cols: usize) -> Result<CudaTensor> {
        if rows * cols != t.rows * t.cols {
            return Err(shape_err("reshape", format!("[{}, {}] to [{rows}, {cols}]", t.rows, t.cols)));
        }
        Ok(CudaTensor { rows, cols, buf: t.buf, codes: None })
    }

    fn weight_dims(&self, w: &CudaWeight) -> Vec<u64> {
        w.dims.clone()
    }

    fn upload_batch(&self, rows: &BatchRows) -> Result<CudaBatch> {
        rows.check_lengths()?;
        let out_rows = rows.output_rows();
        let out = if out_rows.len() == rows.len() { None } else { Some((out_rows.len(), self.upload_u32(&out_rows)?)) };
        Ok(CudaBatch {
            groups: rows.groups(),
            tokens: self.upload_u32(&rows.tokens)?,
            pos: self.upload_u32(&rows.pos)?,
            seq: self.upload_u32(&rows.seq)?,
            out,
            max_pos: rows.pos.iter().copied().max().unwrap_or(0),
            rows: rows.clone(),
            rope_tabs: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn batch_groups(&self, b: &CudaBatch) -> RowGroups {
        b.groups.clone()
    }

    fn kv_alloc(&self, spec: &KvSpec) -> Result<CudaKv> {
        let per = spec
            .n_layer
            .checked_mul(spec.n_seq)
            .and_then(|x| x.checked_mul(spec.n_ctx))
            .ok_or_else(|| Error::Invalid(format!("KV cache {spec:?} overflows")))?;
        let kb = per.checked_mul(spec.k_cols * spec.ty.bytes());
        let vb = per.checked_mul(spec.v_cols * spec.ty.bytes());
        let (Some(kb), Some(vb)) = (kb, vb) else {
            return Err(Error::Invalid(format!("KV cache {spec:?} overflows")));
        };
        let (free, _) = self.dev.mem_info().map_err(err)?;
        if (kb + vb) as u64 > free {
            return Err(Error::InsufficientVram {
                what: "the KV cache".into(),
                needed: (kb + vb) as u64,
                free,
                device: self.dev.name.clone(),
            });
        }
        let k = self.dev.alloc(kb, Category::Kv).map_err(err)?;
        let v = self.dev.alloc(vb, Category::Kv).map_err(err)?;
        // Slots never written read as zero (as the CPU caches; the ops suite's guard checks it).
        self.dev.zero(&k).map_err(err)?;
        self.dev.zero(&v).map_err(err)?;
        Ok(CudaKv { spec: spec.clone(), k, v })
    }

    fn kv_bytes(&self, kv: &CudaKv) -> usize {
        kv.k.bytes() + kv.v.bytes()
    }

    fn kv_write(&self, kv: &mut CudaKv, il: usize, k: &CudaTensor, v: &CudaTensor, b: &CudaBatch) -> Result<()> {
        let s = &kv.spec;
        b.rows.check_kv(s)?;
        if il >= s.n_layer || k.rows != b.rows.len() || v.rows != k.rows || k.cols != s.k_cols || v.cols != s.v_cols {
            return Err(shape_err(
                "kv_write",
                format!("layer {il}: k [{}, {}], v [{}, {}] into {s:?}", k.rows, k.cols, v.rows, v.cols),
            ));
        }
        self.launch(
            "kv_write",
            (k.rows.max(1) as u32, 1, 1),
            BLOCK,
            0,
            &[
                k.buf.arg(),
                v.buf.arg(),
                kv.k.arg(),
                kv.v.arg(),
                b.pos.arg(),
                b.seq.arg(),
                Arg::I32(k.rows as i32),
                Arg::I32(il as i32),
                Arg::I32(s.n_seq as i32),
                Arg::I32(s.n_ctx as i32),
                Arg::I32(s.k_cols as i32),
                Arg::I32(s.v_cols as i32),
                Arg::I32((s.ty == KvType::F16) as i32),
            ],
        )
    }

    fn attention(
        &self,
        q: &CudaTensor,
        kv: &CudaKv,
        il: usize,
        b: &CudaBatch,
        p: &AttnParams,
        sinks: Option<&CudaWeight>,
    ) -> Result<CudaTensor> {
        let s = &kv.spec;
        b.rows.check_kv(s)?;
        p.check_shapes((q.rows, q.cols), (1, s.k_cols), (1, s.v_cols), b.rows.len(), 1)?;
        if il >= s.n_layer {
            return Err(shape_err("attention", format!("layer {il} of {}", s.n_layer)));
        }
        if p.head_dim > 512 {
            return Err(shape_err("attention", format!("head_dim {} is wider than the kernel's 512", p.head_dim)));
        }
        if let Some(sk) = sinks {
            if sk.ty != GgmlType::F32 || sk.k * sk.rows != p.n_head {
                return Err(shape_err(
                    "attention",
                    format!("{} has {} sinks for {} heads", sk.name, sk.k * sk.rows, p.n_head),
                ));
            }
        }
        // A recorded forward is replayed at later positions: size for the whole context then.
        let smem = if self.dev.capturing() { s.n_ctx * 4 } else { (b.max_pos as usize + 1) * 4 };
        if smem > self.dev.max_smem {
            return Err(shape_err(
                "attention",
                format!(
                    "position {} needs {smem} bytes of shared memory, the device allows {}",
                    b.max_pos, self.dev.max_smem
                ),
            ));
        }
        let split = att_split();
        if split > 0 && s.ty == KvType::F16 {
            return self.attention_split(q, kv, il, b, p, sinks, split);
        }
        let y = self.tensor(q.rows, p.n_head * p.v_head_dim)?;
        // Prefill rows: a block per 16 query rows, its shared memory their queries and scores.
        let ld = b.max_pos as usize + 1;
        let tile_smem = att_tile_bytes(p.head_dim, p.v_head_dim, ld);
        let wanted = !self.dev.capturing() && att_tile_wanted(&b.rows);
        // attention_mma's shared memory is static: no bound on the positions.
        let mma = wanted && att_mma_takes(s.ty, p.head_dim, p.v_head_dim, &b.rows.seq);
        let tile = wanted && tile_smem <= self.dev.max_smem;
        let (kernel, grid, smem) = if tile {
            ("attention_tile", q.rows.div_ceil(ATT_TILE_ROWS).max(1), tile_smem)
        } else {
            let es = if s.ty == KvType::F16 { 2 } else { 4 };
            let row = p.head_dim + p.v_head_dim;
            // A recorded forward stages at every later position too: its count is not cut to now's.
            let keys = att_stage_keys(row * es, q.rows.max(1) * p.n_head, self.dev.sms, self.dev.max_smem);
            let want = if self.dev.capturing() { keys } else { keys.min(b.max_pos as usize + 1) };
            let name = if s.ty == KvType::F16 && att_h() { "attention_h" } else { "attention" };
            (name, q.rows.max(1), att_stage_bytes(smem, s.n_ctx, row, es, want, self.dev.max_smem))
        };
        let mut args = [
            &[
                q.buf.arg(),
                kv.k.arg(),
                kv.v.arg(),
                b.pos.arg(),
                b.seq.arg(),
                sinks.map_or(Arg::Ptr(0), |w| w.buf.arg()),
                y.buf.arg(),
            ][..],
            &att_shape_args(q.rows, il, s, p),
            &[Arg::I32((s.ty == KvType::F16) as i32)],
        ]
        .concat();
        if tile || mma {
            args.push(Arg::I32(ld as i32));
        }
        // The fast numerics' tensor-core attention (attention_mma: 16 rows a warp, the heaviest
        // first, its shared memory static), where it takes the shape.
        if mma {
            let warps = att_mma();
            // Heads of 256: two blocks a head (each half of its output dims).
            let parts = if p.head_dim == 256 { 2 } else { 1 };
            let dims = (parts * p.n_head as u32, q.rows.div_ceil(16 * warps as usize) as u32, 1);
            // Never with PDL (it has no pdl_wait: it reads q at once).
            self.launch("attention_mma", dims, 32 * warps, 0, &args)?;
            return Ok(y);
        }
        // The tiles the heaviest first (attention_tile_lpt): the grid's dimensions swapped.
        let (kernel, dims) = if tile && att_lpt() {
            ("attention_tile_lpt", (p.n_head as u32, grid as u32, 1))
        } else {
            (kernel, (grid as u32, p.n_head as u32, 1))
        };
        let mut y = y;
        if !tile {
            // A batched decode of the fast numerics: each block also rounds its head to the o
            // projection's codes (quant_x_q8's values), so the batched mat-vec after it needs
            // no rounding launch of its own.
            let cols = p.n_head * p.v_head_dim;
            if att_codes_on()
                && self.fast
                && s.ty == KvType::F16
                && q.rows >= MVQ_MIN_ROWS
                && mvq_on()
                && p.v_head_dim.is_multiple_of(32)
            {
                let c =
                    [self.tensor(q.rows, cols / 4)?, self.tensor(q.rows, cols / 32)?, self.tensor(q.rows, cols / 32)?];
                args.extend([c[0].buf.arg(), c[1].buf.arg(), c[2].buf.arg()]);
                y.codes = Some(Box::new(c));
            } else {
                args.extend([Arg::Ptr(0), Arg::Ptr(0), Arg::Ptr(0)]);
            }
        }
        self.launch_pdl(kernel, dims, 256, smem as u32, &args)?;
        Ok(y)
    }

    fn get_rows(&self, w: &CudaWeight, b: &CudaBatch, index: Index) -> Result<CudaTensor> {
        let (ids, dev_ids) = match index {
            Index::Tokens => (&b.rows.tokens, &b.tokens),
            Index::Positions => (&b.rows.pos, &b.pos),
        };
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= w.rows) {
            return Err(shape_err("get_rows", format!("token id {bad} out of range (vocab {}) in {}", w.rows, w.name)));
        }
        if index == Index::Positions && self.dev.capturing() {
            // Replays are not checked here: a position table shorter than the context must not
            // be read by a replayed forward.
            return Err(shape_err("get_rows", "position embeddings are not recorded".into()));
        }
        let kty =
            kernel_ty(w.ty).ok_or_else(|| shape_err("get_rows", format!("{}: no kernel for {:?}", w.name, w.ty)))?;
        let y = self.tensor(ids.len(), w.k)?;
        self.launch(
            &format!("dequant_rows_{kty}"),
            (ids.len().max(1) as u32, 1, 1),
            128,
            0,
            &[
                w.buf.arg(),
                dev_ids.arg(),
                y.buf.arg(),
                Arg::I32(ids.len() as i32),
                Arg::I32(w.k as i32),
                Arg::I64(w.row_bytes as i64),
            ],
        )?;
        Ok(y)
    }

    fn output_rows(&self, x: CudaTensor, b: &CudaBatch) -> Result<CudaTensor> {
        if x.rows != b.rows.len() {
            return Err(shape_err("output_rows", format!("{} rows for a batch of {}", x.rows, b.rows.len())));
        }
        let Some((n, idx)) = &b.out else { return Ok(x) };
        let y = self.tensor(*n, x.cols)?;
        self.launch_1d(
            "gather_rows",
            n * x.cols,
            &[x.buf.arg(), idx.arg(), y.buf.arg(), Arg::I32(*n as i32), Arg::I32(x.cols as i32)],
        )?;
        Ok(y)
    }

    fn rms_norm(&self, x: &CudaTensor, eps: f32) -> Result<CudaTensor> {
        self.rms_norm_w(x, eps, None)
    }

    fn rms_norm_mul(&self, x: &CudaTensor, eps: f32, w: &CudaWeight) -> Result<CudaTensor> {
        Self::one_d("rms_norm_mul", w, x.cols)?;
        self.rms_norm_w(x, eps, Some(w))
    }

    fn matmul_norm_add(
        &self,
        x: &CudaTensor,
        w: &CudaWeight,
        bias: Option<&CudaWeight>,
        nw: &CudaWeight,
        eps: f32,
        res: &CudaTensor,
        g: &RowGroups,
    ) -> Result<CudaTensor> {
        if let Some(out) = self.matvec_norm_add(x, w, bias, nw, eps, res, g)? {
            return Ok(out);
        }
        self.rms_norm_mul_add(&self.matmul_fused(x, w, bias, None, g)?, eps, nw, res)
    }

    fn rms_norm_mul_add(&self, x: &CudaTensor, eps: f32, w: &CudaWeight, res: &CudaTensor) -> Result<CudaTensor> {
        Self::one_d("rms_norm_mul_add", w, x.cols)?;
        Self::same_shape("rms_norm_mul_add", x, res)?;
        if !fuse_norms() {
            return self.add(res, &self.rms_norm_mul(x, eps, w)?);
        }
        self.rms_norm_launch(x, eps, Some(w), Some(res))
    }

    fn layer_norm(&self, x: &CudaTensor, eps: f32) -> Result<CudaTensor> {
        let y = self.tensor(x.rows, x.cols)?;
        self.launch(
            "layer_norm",
            (x.rows.max(1) as u32, 1, 1),
            BLOCK,
            0,
            &[x.buf.arg(), y.buf.arg(), Arg::I32(x.rows as i32), Arg::I32(x.cols as i32), Arg::F32(eps)],
        )?;
        Ok(y)
    }

    fn mul_row(&self, x: &CudaTensor, w: &CudaWeight) -> Result<CudaTensor> {
        Self::one_d("mul_row", w, x.cols)?;
        let y = self.tensor(x.rows, x.cols)?;
        let n = x.rows * x.cols;
        self.launch_1d(
            "mul_row",
            n,
            &[x.buf.arg(), w.buf.arg(), y.buf.arg(), Arg::I64(n as i64), Arg::I32(x.cols as i32)],
        )?;
        Ok(y)
    }

    fn add_row(&self, x: &CudaTensor, b: &CudaWeight) -> Result<CudaTensor> {
        Self::one_d("add_row", b, x.cols)?;
        let y = self.tensor(x.rows, x.cols)?;
        let n = x.rows * x.cols;
        self.launch_1d(
            "add_row",
            n,
            &[x.buf.arg(), b.buf.arg(), y.buf.arg(), Arg::I64(n as i64), Arg::I32(x.cols as i32)],
        )?;
        Ok(y)
    }

    fn add(&self, a: &CudaTensor, b: &CudaTensor) -> Result<CudaTensor> {
        Self::same_shape("add", a, b)?;
        let y = self.tensor(a.rows, a.cols)?;
        let n = a.rows * a.cols;
        self.launch_1d("add", n, &[a.buf.arg(), b.buf.arg(), y.buf.arg(), Arg::I64(n as i64)])?;
        Ok(y)
    }

    fn scale(&self, x: &CudaTensor, s: f32) -> Result<CudaTensor> {
        self.unary("scale", x, &[Arg::F32(s)])
    }

    fn matmul(&self, x: &CudaTensor, w: &CudaWeight, g: &RowGroups) -> Result<CudaTensor> {
        if w.k != x.cols || w.dims.len() > 2 {
            return Err(shape_err("matmul", format!("x has {} columns, {} has dims {:?}", x.cols, w.name, w.dims)));
        }
        self.matvec1(x, w, w.rows, x.rows, None, None, None, None, None, Some(g))
    }

    fn matmul_glu(
        &self,
        x: &CudaTensor,
        gate: &CudaWeight,
        up: &CudaWeight,
        act: Act,
        g: &RowGroups,
    ) -> Result<CudaTensor> {
        // One kernel when the two weights share a type and shape (they read the same staged x).
        if gate.ty != up.ty || gate.dims != up.dims || gate.row_bytes != up.row_bytes {
            return self.glu(&self.matmul(x, gate, g)?, &self.matmul(x, up, g)?, act);
        }
        if gate.k != x.cols || gate.dims.len() > 2 {
            return Err(shape_err(
                "matmul",
                format!("x has {} columns, {} has dims {:?}", x.cols, gate.name, gate.dims),
            ));
        }
        self.matvec1(x, gate, gate.rows, x.rows, None, None, None, Some((up, act)), None, Some(g))
    }

    fn norm_matmuls(
        &self,
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        ws: &[(&CudaWeight, Option<&CudaWeight>)],
        g: &RowGroups,
    ) -> Result<Vec<CudaTensor>> {
        let Some(((w0, b0), rest)) = ws.split_first() else { return Ok(Vec::new()) };
        for (w, b) in ws {
            if w.k != x.cols || w.dims.len() > 2 {
                return Err(shape_err("matmul", format!("x has {} columns, {} has dims {:?}", x.cols, w.name, w.dims)));
            }
            if let Some(b) = b {
                Self::one_d("matmul bias", b, w.rows)?;
            }
        }
        // One launch when the projections share a type and row length (q, k, v usually do);
        // else one a group of those that do, in order (gemma-3: q and k Q5_0, v Q8_0), every
        // launch normalizing its input itself (the same values).
        let same = |a: &CudaWeight, b: &CudaWeight| a.ty == b.ty && a.k == b.k && a.row_bytes == b.row_bytes;
        if rest.len() <= 2 && rest.iter().all(|(w, _)| same(w, w0)) {
            return self.matvec(x, w0, w0.rows, x.rows, None, *b0, None, None, Some((nw, eps)), rest, Some(g));
        }
        if let [(wa, ba), (wb, bb), (wc, bc)] = ws {
            if let Some(kernel) = mixed_kernel(wa.ty, wc.ty).filter(|_| mv_mixed_on() && same(wa, wb)) {
                if let Some(ys) = self.norm_matmuls_mixed(kernel, x, nw, eps, [(wa, *ba), (wb, *bb), (wc, *bc)])? {
                    return Ok(ys);
                }
            }
        }
        let mut out: Vec<Option<CudaTensor>> = std::iter::repeat_with(|| None).take(ws.len()).collect();
        for i in 0..ws.len() {
            if out[i].is_some() {
                continue;
            }
            let (wi, bi) = ws[i];
            let group: Vec<usize> =
                (i + 1..ws.len()).filter(|&j| out[j].is_none() && same(ws[j].0, wi)).take(2).collect();
            let more: Vec<(&CudaWeight, Option<&CudaWeight>)> = group.iter().map(|&j| ws[j]).collect();
            let ys = if more.is_empty() {
                vec![self.matvec1(x, wi, wi.rows, x.rows, None, bi, None, None, Some((nw, eps)), Some(g))?]
            } else {
                self.matvec(x, wi, wi.rows, x.rows, None, bi, None, None, Some((nw, eps)), &more, Some(g))?
            };
            for (j, y) in std::iter::once(i).chain(group).zip(ys) {
                out[j] = Some(y);
            }
        }
        out.into_iter()
            .map(|y| y.ok_or_else(|| shape_err("matmul", "a projection without its output".to_string())))
            .collect()
    }

    fn norm_matmul_glu(
        &self,
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        gate: &CudaWeight,
        up: &CudaWeight,
        act: Act,
        g: &RowGroups,
    ) -> Result<CudaTensor> {
        if gate.ty != up.ty || gate.dims != up.dims || gate.row_bytes != up.row_bytes || gate.dims.len() > 2 {
            return self.matmul_glu(&self.rms_norm_mul(x, eps, nw)?, gate, up, act, g);
        }
        if gate.k != x.cols {
            return Err(shape_err(
                "matmul",
                format!("x has {} columns, {} has dims {:?}", x.cols, gate.name, gate.dims),
            ));
        }
        self.matvec1(x, gate, gate.rows, x.rows, None, None, None, Some((up, act)), Some((nw, eps)), Some(g))
    }

    fn norm_add_norm_matmul_glu(
        &self,
        pre: &PostNorm<'_, CudaTensor, CudaWeight>,
        nw: &CudaWeight,
        eps: f32,
        gate: &CudaWeight,
        up: &CudaWeight,
        act: Act,
        g: &RowGroups,
    ) -> Result<(CudaTensor, CudaTensor)> {
        // One launch (matvec8gp_) where the one-row pair would take matvec8g_.
        let pair = gate.ty == up.ty && gate.dims == up.dims && gate.row_bytes == up.row_bytes;
        if pair && glu8() && self.pre_fits(pre, gate, g, false)? {
            let (h, y) = (self.tensor(1, pre.x.cols)?, self.tensor(1, gate.rows)?);
            self.matvec_pre(pre, &h, nw, eps, (gate, None), Some((up, act)), &[], std::slice::from_ref(&y))?;
            return Ok((h, y));
        }
        let h = self.rms_norm_mul_add(pre.x, pre.eps, pre.w, pre.res)?;
        let y = self.norm_matmul_glu(&h, nw, eps, gate, up, act, g)?;
        Ok((h, y))
    }

    #[allow(clippy::too_many_arguments)]
    fn norm_add_norm_qkv_norm_rope_kv_write(
        &self,
        pre: &PostNorm<'_, CudaTensor, CudaWeight>,
        nw: &CudaWeight,
        eps: f32,
        ws: &[(&CudaWeight, Option<&CudaWeight>); 3],
        g: &RowGroups,
        kv: &mut CudaKv,
        il: usize,
        heads: (usize, usize, usize),
        b: &CudaBatch,
        p: &RopeParams,
        hn: (&CudaWeight, &CudaWeight, f32),
        q_scale: Option<f32>,
    ) -> Result<(CudaTensor, CudaTensor)> {
        // q, k and v in matvec8p_ launches as norm_matmuls groups them for one row (one launch
        // when the three share a type, else q + k and v), each computing the sum itself; then
        // the head norms, RoPE and the KV store as norm_qkv_norm_rope_kv_write's composition.
        let [(wq, bq), (wk, bk), (wv, bv)] = *ws;
        let same = |a: &CudaWeight, c: &CudaWeight| a.ty == c.ty && a.k == c.k && a.row_bytes == c.row_bytes;
        let fits = same(wq, wk) && self.pre_fits(pre, wq, g, true)? && self.pre_fits(pre, wv, g, true)?;
        if fits && !qkv_norm_fuse() && !mv_mixed_on() {
            let h = self.tensor(1, pre.x.cols)?;
            let ys = [self.tensor(1, wq.rows)?, self.tensor(1, wk.rows)?, self.tensor(1, wv.rows)?];
            if same(wq, wv) {
                self.matvec_pre(pre, &h, nw, eps, (wq, bq), None, &[(wk, bk), (wv, bv)], &ys)?;
            } else {
                self.matvec_pre(pre, &h, nw, eps, (wq, bq), None, &[(wk, bk)], &ys[..2])?;
                self.matvec_pre(pre, &h, nw, eps, (wv, bv), None, &[], &ys[2..])?;
            }
            let [q, k, v] = ys;
            let q = self.norm_rope_qk_kv_write(q, k, &v, kv, il, heads, b, p, hn, q_scale)?;
            return Ok((h, q));
        }
        let h = self.rms_norm_mul_add(pre.x, pre.eps, pre.w, pre.res)?;
        let q = self.norm_qkv_norm_rope_kv_write(&h, nw, eps, ws, g, kv, il, heads, b, p, hn, q_scale)?;
        Ok((h, q))
    }

    fn matmul_fused(
        &self,
        x: &CudaTensor,
        w: &CudaWeight,
        bias: Option<&CudaWeight>,
        res: Option<&CudaTensor>,
        g: &RowGroups,
    ) -> Result<CudaTensor> {
        if w.k != x.cols || w.dims.len() > 2 {
            return Err(shape_err("matmul", format!("x has {} columns, {} has dims {:?}", x.cols, w.name, w.dims)));
        }
        if let Some(b) = bias {
            Self::one_d("matmul bias", b, w.rows)?;
        }
        self.matvec1(x, w, w.rows, x.rows, None, bias, res, None, None, Some(g))
    }

    fn rope(
        &self,
        x: &CudaTensor,
        n_head: usize,
        head_dim: usize,
        b: &CudaBatch,
        p: &RopeParams,
    ) -> Result<CudaTensor> {
        p.check_shapes((x.rows, x.cols), n_head, head_dim, b.rows.len())?;
        Ok(self.rope_launch(x, None, n_head, 0, head_dim, b, p, None, None, 1.0)?.0)
    }

    #[allow(clippy::too_many_arguments)]
    fn rope_qk(
        &self,
        q: &CudaTensor,
        k: &CudaTensor,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        b: &CudaBatch,
        p: &RopeParams,
    ) -> Result<(CudaTensor, CudaTensor)> {
        p.check_shapes((q.rows, q.cols), n_head, head_dim, b.rows.len())?;
        p.check_shapes((k.rows, k.cols), n_head_kv, head_dim, b.rows.len())?;
        let (yq, yk) = self.rope_launch(q, Some(k), n_head, n_head_kv, head_dim, b, p, None, None, 1.0)?;
        let yk = yk.ok_or_else(|| Error::Invalid("rope_qk: no key output".into()))?;
        Ok((yq, yk))
    }

    #[allow(clippy::too_many_arguments)]
    fn rope_qk_kv_write(
        &self,
        q: &CudaTensor,
        k: &CudaTensor,
        v: &CudaTensor,
        kv: &mut CudaKv,
        il: usize,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        b: &CudaBatch,
        p: &RopeParams,
    ) -> Result<CudaTensor> {
        Self::check_rope_kv("rope_qk_kv_write", (q, k, v), kv, il, (n_head, n_head_kv, head_dim), b, p)?;
        Ok(self.rope_launch(q, Some(k), n_head, n_head_kv, head_dim, b, p, Some((kv, il, v)), None, 1.0)?.0)
    }

    #[allow(clippy::too_many_arguments)]
    fn norm_rope_qk_kv_write(
        &self,
        q: CudaTensor,
        k: CudaTensor,
        v: &CudaTensor,
        kv: &mut CudaKv,
        il: usize,
        heads: (usize, usize, usize),
        b: &CudaBatch,
        p: &RopeParams,
        hn: (&CudaWeight, &CudaWeight, f32),
        q_scale: Option<f32>,
    ) -> Result<CudaTensor> {
        let (n_head, n_head_kv, head_dim) = heads;
        // One launch (the rope kernel with its head norms) for heads it takes; else the parts.
        if n_head.max(n_head_kv) > ROPE_MAX_HEADS || !fuse_norms() {
            return orcd_engine::ops::norm_rope_qk_kv_write_composed(self, q, k, v, kv, il, heads, b, p, hn, q_scale);
        }
        Self::one_d("norm_rope_qk_kv_write", hn.0, head_dim)?;
        Self::one_d("norm_rope_qk_kv_write", hn.1, head_dim)?;
        Self::check_rope_kv("norm_rope_qk_kv_write", (&q, &k, v), kv, il, heads, b, p)?;
        let store = Some((&*kv, il, v));
        let (y, _) =
            self.rope_launch(&q, Some(&k), n_head, n_head_kv, head_dim, b, p, store, Some(hn), q_scale.unwrap_or(1.0))?;
        Ok(y)
    }

    #[allow(clippy::too_many_arguments)]
    fn norm_qkv_rope_kv_write(
        &self,
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        ws: &[(&CudaWeight, Option<&CudaWeight>); 3],
        g: &RowGroups,
        kv: &mut CudaKv,
        il: usize,
        heads: (usize, usize, usize),
        b: &CudaBatch,
        p: &RopeParams,
    ) -> Result<CudaTensor> {
        let (n_head, n_head_kv, head_dim) = heads;
        let [(wq, bq), (wk, bk), (wv, bv)] = *ws;
        let s = &kv.spec;
        // One launch (matvec8r_, kernels/ABI.md) for a decode row of a part-decodable type whose
        // heads are whole 8-column blocks, fully rotated; anything else as the composition.
        let one = x.rows == 1
            && b.rows.len() == 1
            && matches!(wq.ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q8_0)
            && [wk, wv].iter().all(|w| w.ty == wq.ty && w.k == wq.k && w.row_bytes == wq.row_bytes)
            && [wq, wk, wv].iter().all(|w| w.dims.len() <= 2 && w.k == x.cols)
            && p.n_rot == head_dim
            && head_dim.is_multiple_of(8)
            && head_dim <= 512
            && wq.rows == n_head * head_dim
            && wk.rows == n_head_kv * head_dim
            && wk.rows == s.k_cols
            && wv.rows == s.v_cols
            && wv.rows.is_multiple_of(8)
            && il < s.n_layer;
        if !one {
            if let Some(q) = self.qkv_rope_batched(x, nw, eps, ws, g, kv, il, heads, b, p)? {
                return Ok(q);
            }
            let mut out = self.norm_matmuls(x, nw, eps, &ws[..], g)?.into_iter();
            return match (out.next(), out.next(), out.next()) {
                (Some(q), Some(k), Some(v)) => {
                    self.rope_qk_kv_write(&q, &k, &v, kv, il, n_head, n_head_kv, head_dim, b, p)
                }
                _ => Err(Error::Invalid("norm_matmuls: fewer than three outputs".into())),
            };
        }
        Self::one_d("rms_norm_mul", nw, x.cols)?;
        for (w, bias) in ws {
            if let Some(bias) = bias {
                Self::one_d("matmul bias", bias, w.rows)?;
            }
        }
        b.rows.check_kv(s)?;
        let kty = kernel_ty(wq.ty).ok_or_else(|| shape_err("matmul", format!("{}: no kernel", wq.name)))?;
        let xq = self.matmul_rounding(x.cols, wq.ty)?;
        let y = self.tensor(1, wq.rows)?;
        let bias = |w: Option<&CudaWeight>| w.map_or(Arg::Ptr(0), |b| b.buf.arg());
        let total = wq.rows + wk.rows + wv.rows;
        self.dev
            .launch_in(
                self.variant.as_deref(),
                &format!("matvec8r_{kty}"),
                (blocks(total, 8), 1, 1),
                128,
                0,
                &[
                    wq.buf.arg(),
                    x.buf.arg(),
                    y.buf.arg(),
                    Arg::I32(1),
                    Arg::I32(wq.k as i32),
                    Arg::I32(wq.rows as i32),
                    Arg::I64(wq.row_bytes as i64),
                    Arg::Ptr(0),
                    Arg::I32(0),
                    Arg::I32(0),
                    bias(bq),
                    Arg::I32(1),
                    Arg::Ptr(0),
                    Arg::I32(xq),
                    Arg::Ptr(0),
                    Arg::I32(0),
                    Arg::I32(1),
                    nw.buf.arg(),
                    Arg::F32(eps),
                ]
                .into_iter()
                .chain(self.kv_rope_tail((wk, bk), (wv, bv), b, p, kv, il, head_dim)?)
                .chain([self.rope_table(b, p)?])
                .collect::<Vec<_>>(),
                true,
            )
            .map_err(err)?;
        Ok(y)
    }

    #[allow(clippy::too_many_arguments)]
    fn norm_qkv_norm_rope_kv_write(
        &self,
        x: &CudaTensor,
        nw: &CudaWeight,
        eps: f32,
        ws: &[(&CudaWeight, Option<&CudaWeight>); 3],
        g: &RowGroups,
        kv: &mut CudaKv,
        il: usize,
        heads: (usize, usize, usize),
        b: &CudaBatch,
        p: &RopeParams,
        hn: (&CudaWeight, &CudaWeight, f32),
        q_scale: Option<f32>,
    ) -> Result<CudaTensor> {
        if let Some(q) = self.qkv_norm_one(x, nw, eps, ws, kv, il, heads, b, p, hn, q_scale)? {
            return Ok(q);
        }
        let mut out = self.norm_matmuls(x, nw, eps, &ws[..], g)?.into_iter();
        match (out.next(), out.next(), out.next()) {
            (Some(q), Some(k), Some(v)) => self.norm_rope_qk_kv_write(q, k, &v, kv, il, heads, b, p, hn, q_scale),
            _ => Err(Error::Invalid("norm_matmuls: fewer than three outputs".into())),
        }
    }

    fn glu(&self, gate: &CudaTensor, up: &CudaTensor, act: Act) -> Result<CudaTensor> {
        Self::same_shape("glu", gate, up)?;
        let y = self.tensor(gate.rows, gate.cols)?;
        let n = gate.rows * gate.cols;
        let a = self.act_code(act);
        self.launch_1d("glu", n, &[gate.buf.arg(), up.buf.arg(), y.buf.arg(), Arg::I64(n as i64), Arg::I32(a)])?;
        Ok(y)
    }

    fn act(&self, x: &CudaTensor, act: Act) -> Result<CudaTensor> {
        let y = self.tensor(x.rows, x.cols)?;
        let n = x.rows * x.cols;
        let a = self.act_code(act);
        self.launch_1d("glu", n, &[x.buf.arg(), Arg::Ptr(0), y.buf.arg(), Arg::I64(n as i64), Arg::I32(a)])?;
        Ok(y)
    }

    fn softcap(&self, x: &CudaTensor, cap: f32) -> Result<CudaTensor> {
        self.unary("softcap", x, &[Arg::F32(cap)])
    }

    fn slice_cols(&self, x: &CudaTensor, start: usize, len: usize) -> Result<CudaTensor> {
        if start + len > x.cols {
            return Err(shape_err("slice_cols", format!("[{start}, {}) of {} columns", start + len, x.cols)));
        }
        let y = self.tensor(x.rows, len)?;
        self.launch_1d(
            "slice_cols",
            x.rows * len,
            &[
                x.buf.arg(),
                y.buf.arg(),
                Arg::I32(x.rows as i32),
                Arg::I32(x.cols as i32),
                Arg::I32(start as i32),
                Arg::I32(len as i32),
            ],
        )?;
        Ok(y)
    }

    fn argmax(&self, x: &CudaTensor) -> Result<Vec<u32>> {
        if x.cols == 0 {
            return Ok(vec![0; x.rows]);
        }
        let out = self.argmax_ids(x)?;
        self.dev.download(&out, x.rows).map_err(err)
    }

    fn argmax_keep(&self, x: &CudaTensor) -> Result<Option<CudaIds>> {
        if x.cols == 0 {
            return Ok(None);
        }
        Ok(Some(CudaIds { n: x.rows, k: 1, buf: self.argmax_ids(x)? }))
    }

    fn ids_to_host(&self, ids: &CudaIds) -> Result<Vec<u32>> {
        self.dev.download(&ids.buf, ids.n * ids.k).map_err(err)
    }

    fn upload_batch_fed(&self, rows: &BatchRows, tokens: &CudaIds) -> Result<CudaBatch> {
        Self::fed_shape(rows, tokens)?;
        let b = self.upload_batch(rows)?;
        self.dev.copy(&b.tokens, 0, &tokens.buf, 0, rows.len() * 4).map_err(err)?;
        Ok(b)
    }

    fn graph_replay_fed(&self, key: &GraphKey, rows: &BatchRows, tokens: &CudaIds) -> Result<Option<CudaTensor>> {
        Self::fed_shape(rows, tokens)?;
        self.replay(key, rows, Some(tokens))
    }

    fn top_k(&self, x: &CudaTensor, k: usize) -> Result<Vec<Vec<(u32, f32)>>> {
        let k = k.min(x.cols);
        if k == 0 || x.rows == 0 {
            return Ok(vec![Vec::new(); x.rows]);
        }
        let scratch = self.alloc_f32(x.rows * x.cols)?;
        let idx = self.dev.alloc(x.rows * k * 4, Category::Workspace).map_err(err)?;
        let val = self.alloc_f32(x.rows * k)?;
        self.launch(
            "topk_rows",
            (x.rows as u32, 1, 1),
            BLOCK,
            0,
            &[
                x.buf.arg(),
                scratch.arg(),
                idx.arg(),
                val.arg(),
                Arg::I32(x.rows as i32),
                Arg::I32(x.cols as i32),
                Arg::I32(k as i32),
            ],
        )?;
        let ids: Vec<u32> = self.dev.download(&idx, x.rows * k).map_err(err)?;
        let vals: Vec<f32> = self.dev.download(&val, x.rows * k).map_err(err)?;
        Ok((0..x.rows).map(|r| (0..k).map(|j| (ids[r * k + j], vals[r * k + j])).collect()).collect())
    }

    fn moe_route(&self, logits: &CudaTensor, k: usize) -> Result<(CudaIds, CudaTensor)> {
        if k == 0 || k > logits.cols {
            return Err(shape_err("moe_route", format!("{k} of {} experts", logits.cols)));
        }
        let ids = self.dev.alloc(logits.rows.max(1) * k * 4, Category::Workspace).map_err(err)?;
        let w = self.tensor(logits.rows, k)?;
        self.launch_1d(
            "moe_route",
            logits.rows,
            &[
                logits.buf.arg(),
                ids.arg(),
                w.buf.arg(),
                Arg::I32(logits.rows as i32),
                Arg::I32(logits.cols as i32),
                Arg::I32(k as i32),
            ],
        )?;
        Ok((CudaIds { n: logits.rows, k, buf: ids }, w))
    }

    fn matmul_id(
        &self,
        x: &CudaTensor,
        w: &CudaWeight,
        b: Option<&CudaWeight>,
        ids: &CudaIds,
        k: usize,
    ) -> Result<CudaTensor> {
        // The ids were made on the device by moe_route (always in range); the shapes are checked
        // here as `check_matmul_id` checks them on the host backends.
        let [k_in, m, n_exp] = match w.dims[..] {
            [a, b, c] => [a as usize, b as usize, c as usize],
            _ => return Err(shape_err("matmul_id", format!("weight dims {:?} are not 3-D", w.dims))),
        };
        if k == 0 || ids.k != k {
            return Err(shape_err("matmul_id", format!("ids of {} per row for {k} experts per row", ids.k)));
        }
        let n = ids.n;
        if x.cols != k_in || (x.rows != n && x.rows != n * k) {
            return Err(shape_err(
                "matmul_id",
                format!("x [{}, {}] for {n} rows × {k} experts of [{k_in}, {m}]", x.rows, x.cols),
            ));
        }
        if let Some(b) = b {
            if b.ty != GgmlType::F32 || b.k * b.rows != m * n_exp {
                return Err(shape_err("matmul_id", format!("bias of {} values, need {m} × {n_exp}", b.k * b.rows)));
            }
        }
        let shared = x.rows == n && k > 1;
        self.matvec1(x, w, m, n * k, Some((&ids.buf, k, shared)), b, None, None, None, None)
    }

    fn swiglu_oai(&self, gate: &CudaTensor, up: &CudaTensor, alpha: f32, limit: f32) -> Result<CudaTensor> {
        Self::same_shape("swiglu_oai", gate, up)?;
        let y = self.tensor(gate.rows, gate.cols)?;
        let n = gate.rows * gate.cols;
        self.launch_1d(
            "swiglu_oai",
            n,
            &[gate.buf.arg(), up.buf.arg(), y.buf.arg(), Arg::I64(n as i64), Arg::F32(alpha), Arg::F32(limit)],
        )?;
        Ok(y)
    }

    fn moe_combine(&self, experts: &CudaTensor, weights: &CudaTensor, k: usize) -> Result<CudaTensor> {
        orcd_engine::ops::check_moe_combine((experts.rows, experts.cols), (weights.rows, weights.cols), k)?;
        let y = self.tensor(weights.rows, experts.cols)?;
        self.launch_1d(
            "moe_combine",
            weights.rows * experts.cols,
            &[
                experts.buf.arg(),
                weights.buf.arg(),
                y.buf.arg(),
                Arg::I32(weights.rows as i32),
                Arg::I32(k as i32),
                Arg::I32(experts.cols as i32),
            ],
        )?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(seqs: &[usize]) -> RowGroups {
        RowGroups { seq_rows: seqs.iter().flat_map(|&n| std::iter::repeat_n(n as u32, n)).collect() }
    }

    fn batch(seq_lens: &[usize]) -> BatchRows {
        let seq: Vec<u32> = seq_lens.iter().enumerate().flat_map(|(s, &n)| std::iter::repeat_n(s as u32, n)).collect();
        let n = seq.len();
        BatchRows { tokens: vec![0; n], pos: (0..n as u32).collect(), seq, logits: vec![true; n] }
    }

    #[test]
    fn the_default_staging_keeps_within_the_timed_64_kib() {
        // A 64-wide head: 256 keys of F16 rows (256 bytes), 128 of F32 rows (512).
        assert_eq!(att_stage_default(256), 256);
        assert_eq!(att_stage_default(512), 128);
        // gemma-3's 256-wide heads (1 KiB a key in F16): 64 keys.
        assert_eq!(att_stage_default(1024), 64);
        assert_eq!(att_stage_default(0), 256);
    }

    #[test]
    fn attention_stages_what_fits_past_the_whole_contexts_scores() {
        // 4,096 positions: 16 KiB of scores, then 64 + 64 F16 elements (256 bytes) a key.
        let off = 4096 * 4;
        assert_eq!(att_stage_bytes(400, 4096, 128, 2, 256, 200 << 10), off + 256 * 256);
        // No staging asked: the scores' bytes alone, as before.
        assert_eq!(att_stage_bytes(400, 4096, 128, 2, 0, 200 << 10), 400);
        // The device's limit cuts the keys (F32: 512 bytes a key).
        assert_eq!(att_stage_bytes(400, 4096, 128, 4, 1000, off + 100 * 512 + 7), off + 100 * 512);
        // Not one key fits: no staging. An odd context rounds its scores up to 16 bytes.
        assert_eq!(att_stage_bytes(400, 4096, 128, 4, 8, off + 511), 400);
        assert_eq!(att_stage_bytes(12, 3, 8, 2, 1, 1 << 20), 16 + 16);
    }

    #[test]
    fn prefill_rows_take_the_tiled_attention_and_decode_steps_do_not() {
        // A prompt of 16+ rows: the tile; one row fewer, or a decode step of many sequences
        // (one row each, no keys shared), the per-row kernel.
        assert!(att_tile_for(1, &batch(&[16])));
        assert!(!att_tile_for(1, &batch(&[15])));
        assert!(!att_tile_for(1, &batch(&[1; 16])));
        // A prefill beside decode rows: 8+ rows a sequence on average.
        assert!(att_tile_for(1, &batch(&[30, 1, 1])));
        assert!(!att_tile_for(1, &batch(&[14, 1, 1])));
        // The switches: never, or every batch of two or more rows.
        assert!(!att_tile_for(0, &batch(&[512])));
        assert!(att_tile_for(2, &batch(&[1, 1])));
        assert!(!att_tile_for(2, &batch(&[1])));
    }

    #[test]
    fn the_tensor_core_attention_takes_one_sequence_of_an_f16_cache() {
        let one = [3, 3, 3];
        assert!(att_mma_for(true, KvType::F16, 64, 64, &one));
        assert!(att_mma_for(true, KvType::F16, 128, 128, &one));
        assert!(att_mma_for(true, KvType::F16, 256, 256, &one));
        // Off; the exact numerics' F32 cache; other widths; V narrower than K; rows of two
        // sequences; no rows.
        assert!(!att_mma_for(false, KvType::F16, 64, 64, &one));
        assert!(!att_mma_for(true, KvType::F32, 64, 64, &one));
        assert!(!att_mma_for(true, KvType::F16, 96, 96, &one));
        assert!(!att_mma_for(true, KvType::F16, 512, 512, &one));
        assert!(!att_mma_for(true, KvType::F16, 64, 32, &one));
        assert!(!att_mma_for(true, KvType::F16, 64, 64, &[3, 4]));
        assert!(!att_mma_for(true, KvType::F16, 64, 64, &[]));
    }

    #[test]
    fn small_gemm_grids_take_smaller_tiles() {
        // gate / up of the Qwen shape at 512 tokens: 38 × 8 = 304 blocks fill 132 SMs twice.
        assert_eq!(mmq_tile(4864, 512, 132, true, 1), ("mmq", 128, 64));
        // o / down (896 wide): 56 blocks → 112 with 32-token tiles → 224 with 64-row ones.
        assert_eq!(mmq_tile(896, 512, 132, true, 0), ("mmq32", 128, 32));
        assert_eq!(mmq_tile(896, 512, 132, true, 1), ("mmqh32", 64, 32));
        // Mode 2: 64 × 64 in place of 128 × 32 (the same 112 blocks), then 64 × 32.
        assert_eq!(mmq_tile(896, 512, 132, true, 2), ("mmqh32", 64, 32));
        assert_eq!(mmq_tile(2304, 512, 132, true, 2), ("mmqh", 64, 64));
        // The emulated `ops` cases of 1,536 columns and 64 tokens (conformance/tests/cuda_emu.rs).
        assert_eq!(mmq_tile(1536, 64, 132, true, 1), ("mmqh32", 64, 32));
        // The switches off: the 64-token tile whatever its grid.
        assert_eq!(mmq_tile(128, 16, 132, false, 0), ("mmq", 128, 64));
        // A grid the 32-token tiles already fill keeps them (18 × 16 = 288 blocks).
        assert_eq!(mmq_tile(2304, 512, 132, true, 1), ("mmq32", 128, 32));
    }

    #[test]
    fn the_persistent_grid_keeps_whole_row_blocks() {
        // Off: the ABI's flat grid.
        assert_eq!(mvq_grid(4864, 2, 132, 0), 4864);
        // 16 rows (2 row blocks) at 4 blocks an SM: 528 blocks, a block keeps its row block.
        assert_eq!(mvq_grid(4864, 2, 132, 4), 528);
        // 5 row blocks: 528 rounded down to 525; a grid smaller than the cap is left as it is.
        assert_eq!(mvq_grid(4864, 5, 132, 4), 525);
        assert_eq!(mvq_grid(100, 2, 132, 4), 100);
        // More row blocks than the cap: one block per row block, never zero.
        assert_eq!(mvq_grid(8000, 600, 132, 4), 600);
    }

    #[test]
    fn the_gemm_takes_the_rows_of_long_sequences_only() {
        // A decode batch: every row its own sequence, the mat-vec's.
        assert_eq!(mmq_select(&groups(&[1, 1, 1]), 3), MmqRows::None);
        // Just below and at the threshold.
        assert_eq!(mmq_select(&groups(&[15]), 15), MmqRows::None);
        assert_eq!(mmq_select(&groups(&[16]), 16), MmqRows::All);
        // A prefill beside decode rows: the prefill's rows (2..42), wherever they sit.
        assert_eq!(mmq_select(&groups(&[1, 1, 40]), 42), MmqRows::Some((2..42).collect()));
        assert_eq!(mmq_select(&groups(&[20, 3]), 23), MmqRows::Some((0..20).collect()));
        // Groups of other rows (the head's output rows): never a guess.
        assert_eq!(mmq_select(&groups(&[40]), 1), MmqRows::None);
    }
}
