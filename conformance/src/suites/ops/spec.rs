//! One `ops` case: which op, on what shape, type and parameters ([`OpSpec`]); its seeded inputs
//! ([`Prepared`]); the outputs it must produce, with their exact shapes and metrics ([`Expect`]);
//! and [`exec`], the generic code that runs it on any backend (`B: Ops`).

use orcd_engine::gguf::{GgmlType, GgufFile};
use orcd_engine::ops::{Act, AttnParams, BatchRows, Index, KvSpec, Ops, PostNorm, RopeParams, RopeStyle, Yarn};

use super::inputs::{Host, Rng, Weights};

/// NMSE threshold of most ops: llama.cpp tests/test-backend-ops.cpp, `test_case::max_nmse_err()`
/// default (1e-7).
pub const NMSE_DEFAULT: f64 = 1e-7;
/// NMSE threshold of matmul, matmul_id and attention (the KV round trip included): llama.cpp
/// tests/test-backend-ops.cpp, the `max_nmse_err()` overrides of `test_mul_mat`,
/// `test_mul_mat_id` and `test_flash_attn_ext` (5e-4).
pub const NMSE_MATMUL: f64 = 5e-4;

/// How an output is compared with the reference's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// NMSE = Σ(a−b)²/Σb² at most this (b the reference), no non-finite value where the reference
    /// is finite.
    Nmse(f64),
    /// Bit-identical values / identical ids (argmax, top-k, copies).
    Exact,
    /// Every value exactly zero, on the backend and on the reference (guard regions: KV slots
    /// nothing was written to).
    Zero,
}

/// An output a case must produce: name, exact shape `[rows, cols]`, metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub name: &'static str,
    pub shape: (usize, usize),
    pub metric: Metric,
}

fn expect(name: &'static str, shape: (usize, usize), metric: Metric) -> Expect {
    Expect { name, shape, metric }
}

/// An output as a backend produced it.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    Ids(Vec<u32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Got {
    pub name: &'static str,
    pub shape: (usize, usize),
    pub data: Data,
}

/// Attention through the KV cache: `kv_write` of every sequence's keys and values, then
/// `attention` of the last `n_q` positions of each sequence, in one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct AttnSpec {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub v_head_dim: usize,
    pub scale: f32,
    pub window: Option<usize>,
    pub softcap: Option<f32>,
    pub sinks: bool,
    /// Per sequence: (keys written = positions `0..n_kv`, query rows = the last `n_q` positions).
    pub seqs: Vec<(usize, usize)>,
    /// The output then through an o projection of this type (`n_head · v_head_dim` square,
    /// output "proj"): a batched decode's attention → o chain, where a backend may hand the
    /// projection an activation the attention already rounded.
    pub proj: Option<GgmlType>,
}

impl AttnSpec {
    fn params(&self) -> AttnParams {
        AttnParams {
            n_head: self.n_head,
            n_head_kv: self.n_head_kv,
            head_dim: self.head_dim,
            v_head_dim: self.v_head_dim,
            scale: self.scale,
            window: self.window,
            softcap: self.softcap,
        }
    }

    fn n_q(&self) -> usize {
        self.seqs.iter().map(|s| s.1).sum()
    }

    /// The cache is allocated one sequence and [`KV_SPARE_POS`] positions larger than used; the
    /// spare sequence is id 1, between used ones (used ids: 0, 2, 3, …).
    fn seq_id(&self, s: usize) -> u32 {
        if s == 0 {
            0
        } else {
            s as u32 + 1
        }
    }

    fn n_ctx(&self) -> usize {
        self.seqs.iter().map(|s| s.0).max().unwrap_or(0) + KV_SPARE_POS
    }
}

/// Positions the KV cache has beyond the longest sequence (the guard region).
pub const KV_SPARE_POS: usize = 3;
/// The sequence id no row is written to.
pub const KV_SPARE_SEQ: u32 = 1;
/// The layer written; layer 0 is never written.
pub const KV_LAYER: usize = 1;

#[derive(Debug, Clone, PartialEq)]
pub enum OpSpec {
    GetRows {
        ty: GgmlType,
        n_embd: usize,
        n_rows: usize,
        n: usize,
        index: Index,
    },
    OutputRows {
        cols: usize,
        wanted: Vec<bool>,
    },
    RmsNorm {
        rows: usize,
        cols: usize,
        eps: f32,
    },
    LayerNorm {
        rows: usize,
        cols: usize,
        eps: f32,
    },
    MulRow {
        rows: usize,
        cols: usize,
    },
    AddRow {
        rows: usize,
        cols: usize,
    },
    Add {
        rows: usize,
        cols: usize,
    },
    Scale {
        rows: usize,
        cols: usize,
        s: f32,
    },
    Softcap {
        rows: usize,
        cols: usize,
        cap: f32,
        range: f32,
    },
    Act {
        act: Act,
        rows: usize,
        cols: usize,
        range: f32,
    },
    Glu {
        act: Act,
        rows: usize,
        cols: usize,
        range: f32,
    },
    SliceCols {
        rows: usize,
        cols: usize,
        start: usize,
        len: usize,
    },
    Reshape {
        rows: usize,
        cols: usize,
        to_cols: usize,
    },
    Argmax {
        rows: usize,
        cols: usize,
        ties: bool,
    },
    TopK {
        rows: usize,
        cols: usize,
        k: usize,
        ties: bool,
    },
    /// `x · wᵀ` with x `[Σ seqs, k]` in row groups of `seqs` rows (one sequence each).
    Matmul {
        ty: GgmlType,
        k: usize,
        m: usize,
        seqs: Vec<usize>,
    },
    Rope {
        style: RopeStyle,
        n_head: usize,
        head_dim: usize,
        n_rot: usize,
        freq_base: f32,
        freq_scale: f32,
        yarn: Option<Yarn>,
        /// LongRoPE frequency factors drawn uniform in this range.
        freq_factors: Option<(f32, f32)>,
        pos: Vec<u32>,
    },
    Attention(AttnSpec),
    MoeRoute {
        n: usize,
        n_expert: usize,
        k: usize,
    },
    MatmulId {
        ty: GgmlType,
        k_in: usize,
        m: usize,
        n_expert: usize,
        k: usize,
        n: usize,
        shared: bool,
        bias: bool,
    },
    SwigluOai {
        rows: usize,
        cols: usize,
    },
    MoeCombine {
        n: usize,
        k: usize,
        cols: usize,
    },
    // ----- fused ops: each against the CPU's composition of the unfused ones. -----
    /// `mul_row(rms_norm(x), w)` in one op.
    RmsNormMul {
        rows: usize,
        cols: usize,
        eps: f32,
    },
    /// `res + mul_row(rms_norm(x), w)` in one op (gemma-3's post-norms and the residual add after
    /// each).
    RmsNormMulAdd {
        rows: usize,
        cols: usize,
        eps: f32,
    },
    /// `res + (x · wᵀ + bias)` in one op (bias and residual each optional).
    MatmulFused {
        ty: GgmlType,
        k: usize,
        m: usize,
        rows: usize,
        bias: bool,
        res: bool,
    },
    /// `res + rms_norm_mul(x · wᵀ + bias, nw)` in one op (gemma-3's output and down projections
    /// with their post-norms and the residual add).
    MatmulNormAdd {
        ty: GgmlType,
        k: usize,
        m: usize,
        rows: usize,
        bias: bool,
        eps: f32,
    },
    /// `glu(x · gateᵀ, x · upᵀ, act)` in one op.
    MatmulGlu {
        ty: GgmlType,
        k: usize,
        m: usize,
        rows: usize,
        act: Act,
    },
    /// `matmul_fused(rms_norm_mul(x, nw), w_i, bias_i)` for one to three projections of one input
    /// in one op (q/k/v, the output head).
    NormMatmuls {
        ty: GgmlType,
        k: usize,
        ms: Vec<usize>,
        rows: usize,
        bias: bool,
        /// The last projection's type where it is not `ty` (gemma-3's Q8_0 v beside Q5_0 q, k).
        last_ty: Option<GgmlType>,
    },
    /// `matmul_glu(rms_norm_mul(x, nw), gate, up, act)` in one op.
    NormMatmulGlu {
        ty: GgmlType,
        k: usize,
        m: usize,
        rows: usize,
        act: Act,
        /// The output then through a down projection of this type (`m` → `k`, output "down")
        /// with `x` as its residual, each row its own sequence: a batched decode's FFN, where a
        /// backend may hand the down projection an activation the GLU already rounded.
        down: Option<GgmlType>,
    },
    /// `h = res + rms_norm_mul(x, pw)` (a post-norm and its residual add), then
    /// `norm_matmul_glu(h, nw, gate, up, act)` in one op (gemma-3's attention post-norm before
    /// its FFN): outputs `h` and the GLU's `out`.
    NormAddNormMatmulGlu {
        ty: GgmlType,
        k: usize,
        m: usize,
        rows: usize,
        act: Act,
    },
    /// RoPE of q and k with the rotated keys and v stored into the KV cache in one op
    /// (`rope_qk_kv_write`); checked through the rotated queries and a causal attention over the
    /// cache it wrote (every stored key and value reaches some output row).
    RopeQkKv {
        style: RopeStyle,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        rows: usize,
    },
    /// Per-head RMS norms of q and k, `rope_qk_kv_write`, then q's pre-scale (with `q_scale`:
    /// 1/√head_dim) in one op (`norm_rope_qk_kv_write`: gemma-3's attention input side after its
    /// projections); checked as [`OpSpec::RopeQkKv`] is.
    NormRopeQkKv {
        style: RopeStyle,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        rows: usize,
        q_scale: bool,
    },
    /// `norm_matmuls` of q, k and v (biases with `bias`; v of `v_ty` where given), then
    /// `rope_qk_kv_write`, in one op (`norm_qkv_rope_kv_write`: the decode step's attention input
    /// side) — or with `head_norm` (Some(q_scale)) `norm_rope_qk_kv_write` after them
    /// (`norm_qkv_norm_rope_kv_write`: gemma-3's); checked as [`OpSpec::RopeQkKv`] is, through the
    /// rotated queries and a causal attention over the cache.
    NormQkvRopeKv {
        ty: GgmlType,
        v_ty: Option<GgmlType>,
        head_norm: Option<bool>,
        style: RopeStyle,
        k: usize,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        rows: usize,
        bias: bool,
        /// With `head_norm`: the input is first `res + rms_norm_mul(x, pw)` (the previous
        /// layer's post-norm and residual add, `norm_add_norm_qkv_norm_rope_kv_write`), and that
        /// sum is an output too (`h`).
        pre: bool,
    },
    /// RoPE of q (`n_head` heads) and k (`n_head_kv` heads) in one op.
    RopeQk {
        style: RopeStyle,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        pos: Vec<u32>,
    },
}

/// The outputs of a [`OpSpec::NormMatmuls`] case, one per projection (at most three).
const NORM_MATMUL_OUT: [&str; 3] = ["out0", "out1", "out2"];

impl OpSpec {
    /// The op's name (the first part of the case name; what a failure names).
    pub fn op(&self) -> &'static str {
        match self {
            OpSpec::GetRows { .. } => "get_rows",
            OpSpec::OutputRows { .. } => "output_rows",
            OpSpec::RmsNorm { .. } => "rms_norm",
            OpSpec::LayerNorm { .. } => "layer_norm",
            OpSpec::MulRow { .. } => "mul_row",
            OpSpec::AddRow { .. } => "add_row",
            OpSpec::Add { .. } => "add",
            OpSpec::Scale { .. } => "scale",
            OpSpec::Softcap { .. } => "softcap",
            OpSpec::Act { .. } => "act",
            OpSpec::Glu { .. } => "glu",
            OpSpec::SliceCols { .. } => "slice_cols",
            OpSpec::Reshape { .. } => "reshape",
            OpSpec::Argmax { .. } => "argmax",
            OpSpec::TopK { .. } => "top_k",
            OpSpec::Matmul { .. } => "matmul",
            OpSpec::Rope { .. } => "rope",
            OpSpec::Attention(_) => "attention",
            OpSpec::MoeRoute { .. } => "moe_route",
            OpSpec::MatmulId { .. } => "matmul_id",
            OpSpec::SwigluOai { .. } => "swiglu_oai",
            OpSpec::MoeCombine { .. } => "moe_combine",
            OpSpec::RmsNormMul { .. } => "rms_norm_mul",
            OpSpec::RmsNormMulAdd { .. } => "rms_norm_mul_add",
            OpSpec::MatmulFused { .. } => "matmul_fused",
            OpSpec::MatmulNormAdd { .. } => "matmul_norm_add",
            OpSpec::MatmulGlu { .. } => "matmul_glu",
            OpSpec::NormMatmuls { .. } => "norm_matmuls",
            OpSpec::NormMatmulGlu { .. } => "norm_matmul_glu",
            OpSpec::NormAddNormMatmulGlu { .. } => "norm_add_norm_matmul_glu",
            OpSpec::RopeQk { .. } => "rope_qk",
            OpSpec::RopeQkKv { .. } => "rope_qk_kv_write",
            OpSpec::NormRopeQkKv { .. } => "norm_rope_qk_kv_write",
            OpSpec::NormQkvRopeKv { head_norm: None, .. } => "norm_qkv_rope_kv_write",
            OpSpec::NormQkvRopeKv { head_norm: Some(_), pre: true, .. } => "norm_add_norm_qkv_norm_rope_kv_write",
            OpSpec::NormQkvRopeKv { head_norm: Some(_), .. } => "norm_qkv_norm_rope_kv_write",
        }
    }

    /// The outputs, with their exact shapes and how each is compared.
    pub fn expect(&self) -> Vec<Expect> {
        use Metric::*;
        let d = Nmse(NMSE_DEFAULT);
        match self {
            OpSpec::GetRows { ty, n_embd, n, .. } => {
                // F32 rows are copies and F16 → F32 is exact: bit-identical. Dequantization is
                // arithmetic (one or two roundings per value): the default NMSE.
                let m = if matches!(ty, GgmlType::F32 | GgmlType::F16) { Exact } else { d };
                vec![expect("out", (*n, *n_embd), m)]
            }
            OpSpec::OutputRows { cols, wanted } => {
                vec![expect("out", (wanted.iter().filter(|&&w| w).count(), *cols), Exact)]
            }
            OpSpec::RmsNorm { rows, cols, .. }
            | OpSpec::LayerNorm { rows, cols, .. }
            | OpSpec::MulRow { rows, cols }
            | OpSpec::AddRow { rows, cols }
            | OpSpec::Add { rows, cols }
            | OpSpec::Scale { rows, cols, .. }
            | OpSpec::Softcap { rows, cols, .. }
            | OpSpec::Act { rows, cols, .. }
            | OpSpec::Glu { rows, cols, .. }
            | OpSpec::SwigluOai { rows, cols } => vec![expect("out", (*rows, *cols), d)],
            OpSpec::SliceCols { rows, len, .. } => vec![expect("out", (*rows, *len), Exact)],
            OpSpec::Reshape { rows, cols, to_cols } => vec![expect("out", (rows * cols / to_cols, *to_cols), Exact)],
            OpSpec::Argmax { rows, .. } => vec![expect("ids", (*rows, 1), Exact)],
            OpSpec::TopK { rows, k, .. } => {
                vec![expect("ids", (*rows, *k), Exact), expect("values", (*rows, *k), Exact)]
            }
            OpSpec::Matmul { m, seqs, .. } => vec![expect("out", (seqs.iter().sum(), *m), Nmse(NMSE_MATMUL))],
            OpSpec::Rope { n_head, head_dim, pos, .. } => vec![expect("out", (pos.len(), n_head * head_dim), d)],
            OpSpec::Attention(a) => {
                let cols = a.n_head * a.v_head_dim;
                vec![
                    expect("out", (a.n_q(), cols), Nmse(NMSE_MATMUL)),
                    // Guard region: a query at the last slot of every used sequence reads the
                    // written rows and the spare (never written) positions after them.
                    expect("probe", (a.seqs.len(), cols), Nmse(NMSE_MATMUL)),
                    // The spare sequence and the unwritten layer read back zero.
                    expect("spare-seq", (1, cols), Zero),
                    expect("spare-layer", (a.seqs.len() + 1, cols), Zero),
                ]
                .into_iter()
                .chain(a.proj.map(|_| expect("proj", (a.n_q(), cols), Nmse(NMSE_MATMUL))))
                .collect()
            }
            OpSpec::MoeRoute { n, k, .. } => vec![expect("ids", (*n, *k), Exact), expect("weights", (*n, *k), d)],
            OpSpec::MatmulId { m, k, n, .. } => vec![expect("out", (n * k, *m), Nmse(NMSE_MATMUL))],
            OpSpec::MoeCombine { n, cols, .. } => vec![expect("out", (*n, *cols), d)],
            OpSpec::RmsNormMul { rows, cols, .. } | OpSpec::RmsNormMulAdd { rows, cols, .. } => {
                vec![expect("out", (*rows, *cols), d)]
            }
            OpSpec::MatmulFused { m, rows, .. }
            | OpSpec::MatmulNormAdd { m, rows, .. }
            | OpSpec::MatmulGlu { m, rows, .. }
            | OpSpec::NormMatmulGlu { m, rows, down: None, .. } => vec![expect("out", (*rows, *m), Nmse(NMSE_MATMUL))],
            OpSpec::NormMatmulGlu { k, m, rows, down: Some(_), .. } => {
                vec![expect("out", (*rows, *m), Nmse(NMSE_MATMUL)), expect("down", (*rows, *k), Nmse(NMSE_MATMUL))]
            }
            OpSpec::NormAddNormMatmulGlu { k, m, rows, .. } => {
                vec![expect("h", (*rows, *k), d), expect("out", (*rows, *m), Nmse(NMSE_MATMUL))]
            }
            OpSpec::NormMatmuls { ms, rows, .. } => {
                ms.iter().zip(NORM_MATMUL_OUT).map(|(m, name)| expect(name, (*rows, *m), Nmse(NMSE_MATMUL))).collect()
            }
            OpSpec::RopeQk { n_head, n_head_kv, head_dim, pos, .. } => {
                vec![expect("q", (pos.len(), n_head * head_dim), d), expect("k", (pos.len(), n_head_kv * head_dim), d)]
            }
            OpSpec::RopeQkKv { n_head, head_dim, rows, .. } | OpSpec::NormRopeQkKv { n_head, head_dim, rows, .. } => {
                vec![
                    expect("q", (*rows, n_head * head_dim), d),
                    expect("out", (*rows, n_head * head_dim), Nmse(NMSE_MATMUL)),
                ]
            }
            // The queries come out of a quantized mat-vec: the mat-mul bar for both.
            OpSpec::NormQkvRopeKv { n_head, head_dim, rows, k, pre, .. } => {
                let h = pre.then(|| expect("h", (*rows, *k), d));
                h.into_iter()
                    .chain([
                        expect("q", (*rows, n_head * head_dim), Nmse(NMSE_MATMUL)),
                        expect("out", (*rows, n_head * head_dim), Nmse(NMSE_MATMUL)),
                    ])
                    .collect()
            }
        }
    }

    /// Seeded inputs (the same for every backend).
    pub fn prepare(&self, rng: &mut Rng) -> Result<Prepared, String> {
        let mut p = Prepared::default();
        let mut w = Weights::default();
        let mut has_weights = false;
        let u = |rng: &mut Rng, r: usize, c: usize, lo: f32, hi: f32| Host::uniform(rng, r, c, lo, hi);
        match self {
            OpSpec::GetRows { ty, n_embd, n_rows, n, index } => {
                w.add(rng, "table", *ty, &[*n_embd as u64, *n_rows as u64])?;
                has_weights = true;
                // The first and last rows always, the rest at random.
                let ids: Vec<u32> = (0..*n)
                    .map(|i| match i {
                        0 => 0,
                        1 => *n_rows as u32 - 1,
                        _ => rng.below(*n_rows) as u32,
                    })
                    .collect();
                let mut b = one_seq(ids.len());
                match index {
                    Index::Tokens => b.tokens = ids,
                    Index::Positions => b.pos = ids,
                }
                p.batches.push(b);
            }
            OpSpec::OutputRows { cols, wanted } => {
                p.x.push(u(rng, wanted.len(), *cols, -1.0, 1.0));
                let mut b = one_seq(wanted.len());
                b.logits = wanted.clone();
                p.batches.push(b);
            }
            // test-backend-ops's test_rms_norm draws from [-10, 10].
            OpSpec::RmsNorm { rows, cols, .. } => p.x.push(u(rng, *rows, *cols, -10.0, 10.0)),
            OpSpec::LayerNorm { rows, cols, .. }
            | OpSpec::Scale { rows, cols, .. }
            | OpSpec::SliceCols { rows, cols, .. }
            | OpSpec::Reshape { rows, cols, .. } => p.x.push(u(rng, *rows, *cols, -1.0, 1.0)),
            OpSpec::MulRow { rows, cols } | OpSpec::AddRow { rows, cols } => {
                p.x.push(u(rng, *rows, *cols, -1.0, 1.0));
                w.add(rng, "w", GgmlType::F32, &[*cols as u64])?;
                has_weights = true;
            }
            OpSpec::Add { rows, cols } => {
                p.x.push(u(rng, *rows, *cols, -1.0, 1.0));
                p.x.push(u(rng, *rows, *cols, -1.0, 1.0));
            }
            OpSpec::Softcap { rows, cols, range, .. } | OpSpec::Act { rows, cols, range, .. } => {
                p.x.push(u(rng, *rows, *cols, -range, *range))
            }
            OpSpec::Glu { rows, cols, range, .. } => {
                p.x.push(u(rng, *rows, *cols, -range, *range));
                p.x.push(u(rng, *rows, *cols, -range, *range));
            }
            OpSpec::Argmax { rows, cols, ties } | OpSpec::TopK { rows, cols, ties, .. } => {
                // Ties: small integers (as test-backend-ops's test_top_k with ties), so the
                // lower index must win; otherwise a shuffled ramp (distinct values).
                let mut data = Vec::with_capacity(rows * cols);
                for _ in 0..*rows {
                    let perm = rng.permutation(*cols);
                    data.extend(perm.iter().map(|&i| if *ties { (i / 4) as f32 } else { i as f32 * 0.01 - 3.0 }));
                }
                p.x.push(Host { rows: *rows, cols: *cols, data });
            }
            OpSpec::Matmul { ty, k, m, seqs } => {
                let n: usize = seqs.iter().sum();
                p.x.push(u(rng, n, *k, -1.0, 1.0));
                w.add(rng, "w", *ty, &[*k as u64, *m as u64])?;
                has_weights = true;
                // Rows of sequence s are adjacent, positions 0.. within each sequence.
                let mut b = BatchRows::default();
                for (s, &len) in seqs.iter().enumerate() {
                    for r in 0..len {
                        b.tokens.push(0);
                        b.pos.push(r as u32);
                        b.seq.push(s as u32);
                        b.logits.push(true);
                    }
                }
                p.batches.push(b);
            }
            OpSpec::Rope { n_head, head_dim, n_rot, freq_factors, pos, .. } => {
                p.x.push(u(rng, pos.len(), n_head * head_dim, -1.0, 1.0));
                if let Some((lo, hi)) = freq_factors {
                    p.freq_factors = rng.vec(n_rot / 2, *lo, *hi);
                }
                let mut b = one_seq(pos.len());
                b.pos = pos.clone();
                p.batches.push(b);
            }
            OpSpec::Attention(a) => prepare_attention(a, rng, &mut p, &mut w, &mut has_weights)?,
            OpSpec::MoeRoute { n, n_expert, k: _ } => {
                p.x.push(u(rng, *n, *n_expert, -1.0, 1.0));
                add_id_probe(&mut w, *n_expert)?;
                has_weights = true;
            }
            OpSpec::MatmulId { ty, k_in, m, n_expert, k, n, shared, bias } => {
                // Router logits that pick k distinct experts per row in a known order: a shuffle
                // of the experts per row (as test-backend-ops's init_mul_mat_id_tensors), the
                // first k get descending logits well above the rest.
                let mut logits = Vec::with_capacity(n * n_expert);
                for _ in 0..*n {
                    let perm = rng.permutation(*n_expert);
                    let mut row = rng.vec(*n_expert, -1.0, 0.0);
                    for (j, &e) in perm.iter().take(*k).enumerate() {
                        row[e] = 4.0 + (k - j) as f32;
                    }
                    logits.extend(row);
                }
                p.x.push(Host { rows: *n, cols: *n_expert, data: logits });
                let x_rows = if *shared { *n } else { n * k };
                p.x.push(u(rng, x_rows, *k_in, -1.0, 1.0));
                w.add(rng, "experts", *ty, &[*k_in as u64, *m as u64, *n_expert as u64])?;
                if *bias {
                    w.add(rng, "bias", GgmlType::F32, &[*m as u64, *n_expert as u64])?;
                }
                has_weights = true;
            }
            // Both sides of the clamp at ±limit (7).
            OpSpec::SwigluOai { rows, cols } => {
                p.x.push(u(rng, *rows, *cols, -10.0, 10.0));
                p.x.push(u(rng, *rows, *cols, -10.0, 10.0));
            }
            OpSpec::MoeCombine { n, k, cols } => {
                p.x.push(u(rng, n * k, *cols, -1.0, 1.0));
                // Routing weights: positive, each row summing to 1 (a softmax's output).
                let mut wts = Vec::with_capacity(n * k);
                for _ in 0..*n {
                    let row = rng.vec(*k, 0.05, 1.0);
                    let s: f32 = row.iter().sum();
                    wts.extend(row.iter().map(|v| v / s));
                }
                p.x.push(Host { rows: *n, cols: *k, data: wts });
            }
            OpSpec::RmsNormMul { rows, cols, .. } => {
                p.x.push(u(rng, *rows, *cols, -10.0, 10.0));
                w.add(rng, "w", GgmlType::F32, &[*cols as u64])?;
                has_weights = true;
            }
            OpSpec::RmsNormMulAdd { rows, cols, .. } => {
                p.x.push(u(rng, *rows, *cols, -10.0, 10.0));
                p.x.push(u(rng, *rows, *cols, -1.0, 1.0)); // the residual
                w.add(rng, "w", GgmlType::F32, &[*cols as u64])?;
                has_weights = true;
            }
            OpSpec::MatmulFused { ty, k, m, rows, bias, res } => {
                p.x.push(u(rng, *rows, *k, -1.0, 1.0));
                w.add(rng, "w", *ty, &[*k as u64, *m as u64])?;
                if *bias {
                    w.add(rng, "bias", GgmlType::F32, &[*m as u64])?;
                }
                if *res {
                    p.x.push(u(rng, *rows, *m, -1.0, 1.0));
                }
                has_weights = true;
                p.batches.push(one_seq(*rows));
            }
            OpSpec::MatmulNormAdd { ty, k, m, rows, bias, .. } => {
                p.x.push(u(rng, *rows, *k, -1.0, 1.0));
                p.x.push(u(rng, *rows, *m, -1.0, 1.0)); // the residual
                w.add(rng, "w", *ty, &[*k as u64, *m as u64])?;
                w.add(rng, "nw", GgmlType::F32, &[*m as u64])?;
                if *bias {
                    w.add(rng, "bias", GgmlType::F32, &[*m as u64])?;
                }
                has_weights = true;
                p.batches.push(one_seq(*rows));
            }
            OpSpec::MatmulGlu { ty, k, m, rows, .. } => {
                p.x.push(u(rng, *rows, *k, -1.0, 1.0));
                w.add(rng, "gate", *ty, &[*k as u64, *m as u64])?;
                w.add(rng, "up", *ty, &[*k as u64, *m as u64])?;
                has_weights = true;
                p.batches.push(one_seq(*rows));
            }
            OpSpec::NormMatmuls { ty, k, ms, rows, bias, last_ty } => {
                p.x.push(u(rng, *rows, *k, -10.0, 10.0));
                w.add(rng, "nw", GgmlType::F32, &[*k as u64])?;
                for (i, m) in ms.iter().enumerate() {
                    let t = if i + 1 == ms.len() { last_ty.unwrap_or(*ty) } else { *ty };
                    w.add(rng, &format!("w{i}"), t, &[*k as u64, *m as u64])?;
                    if *bias {
                        w.add(rng, &format!("b{i}"), GgmlType::F32, &[*m as u64])?;
                    }
                }
                has_weights = true;
                p.batches.push(one_seq(*rows));
            }
            OpSpec::NormMatmulGlu { ty, k, m, rows, down, .. } => {
                p.x.push(u(rng, *rows, *k, -10.0, 10.0));
                w.add(rng, "nw", GgmlType::F32, &[*k as u64])?;
                w.add(rng, "gate", *ty, &[*k as u64, *m as u64])?;
                w.add(rng, "up", *ty, &[*k as u64, *m as u64])?;
                has_weights = true;
                match down {
                    Some(dt) => {
                        w.add(rng, "down", *dt, &[*m as u64, *k as u64])?;
                        p.batches.push(decode_rows(*rows));
                    }
                    None => p.batches.push(one_seq(*rows)),
                }
            }
            OpSpec::NormAddNormMatmulGlu { ty, k, m, rows, .. } => {
                p.x.push(u(rng, *rows, *k, -10.0, 10.0)); // the post-norm's input
                p.x.push(u(rng, *rows, *k, -1.0, 1.0)); // the residual
                w.add(rng, "pw", GgmlType::F32, &[*k as u64])?;
                w.add(rng, "nw", GgmlType::F32, &[*k as u64])?;
                w.add(rng, "gate", *ty, &[*k as u64, *m as u64])?;
                w.add(rng, "up", *ty, &[*k as u64, *m as u64])?;
                has_weights = true;
                p.batches.push(one_seq(*rows));
            }
            OpSpec::RopeQkKv { n_head, n_head_kv, head_dim, rows, .. } => {
                p.x.push(u(rng, *rows, n_head * head_dim, -1.0, 1.0));
                p.x.push(u(rng, *rows, n_head_kv * head_dim, -1.0, 1.0));
                p.x.push(u(rng, *rows, n_head_kv * head_dim, -1.0, 1.0));
                // Rows at positions ROPE_KV_POS0.. so even a one-row (decode) case is rotated
                // (position 0 is the identity and would hide a RoPE bug); the slots before are
                // never written and read as zeros on every backend.
                let mut b = one_seq(*rows);
                b.pos = (ROPE_KV_POS0..ROPE_KV_POS0 + *rows as u32).collect();
                p.batches.push(b);
            }
            OpSpec::NormRopeQkKv { n_head, n_head_kv, head_dim, rows, .. } => {
                // Projections' scale (the norms take it out again), v as RopeQkKv's.
                p.x.push(u(rng, *rows, n_head * head_dim, -10.0, 10.0));
                p.x.push(u(rng, *rows, n_head_kv * head_dim, -10.0, 10.0));
                p.x.push(u(rng, *rows, n_head_kv * head_dim, -1.0, 1.0));
                w.add(rng, "hq", GgmlType::F32, &[*head_dim as u64])?;
                w.add(rng, "hk", GgmlType::F32, &[*head_dim as u64])?;
                has_weights = true;
                let mut b = one_seq(*rows);
                b.pos = (ROPE_KV_POS0..ROPE_KV_POS0 + *rows as u32).collect();
                p.batches.push(b);
            }
            OpSpec::NormQkvRopeKv { ty, v_ty, head_norm, k, n_head, n_head_kv, head_dim, rows, bias, pre, .. } => {
                p.x.push(u(rng, *rows, *k, -10.0, 10.0));
                w.add(rng, "nw", GgmlType::F32, &[*k as u64])?;
                if *pre {
                    p.x.push(u(rng, *rows, *k, -1.0, 1.0)); // the residual
                    w.add(rng, "pw", GgmlType::F32, &[*k as u64])?;
                }
                for (i, m) in [n_head * head_dim, n_head_kv * head_dim, n_head_kv * head_dim].into_iter().enumerate() {
                    let t = if i == 2 { v_ty.unwrap_or(*ty) } else { *ty };
                    w.add(rng, &format!("w{i}"), t, &[*k as u64, m as u64])?;
                    if *bias {
                        w.add(rng, &format!("b{i}"), GgmlType::F32, &[m as u64])?;
                    }
                }
                if head_norm.is_some() {
                    w.add(rng, "hq", GgmlType::F32, &[*head_dim as u64])?;
                    w.add(rng, "hk", GgmlType::F32, &[*head_dim as u64])?;
                }
                has_weights = true;
                // As RopeQkKv: rows from ROPE_KV_POS0, so a decode row is rotated.
                let mut b = one_seq(*rows);
                b.pos = (ROPE_KV_POS0..ROPE_KV_POS0 + *rows as u32).collect();
                p.batches.push(b);
            }
            OpSpec::RopeQk { n_head, n_head_kv, head_dim, pos, .. } => {
                p.x.push(u(rng, pos.len(), n_head * head_dim, -1.0, 1.0));
                p.x.push(u(rng, pos.len(), n_head_kv * head_dim, -1.0, 1.0));
                let mut b = one_seq(pos.len());
                b.pos = pos.clone();
                p.batches.push(b);
            }
        }
        if has_weights {
            p.file = Some(w.finish()?);
        }
        Ok(p)
    }
}

/// A batch of `n` rows of sequence 0 at positions `0..n`, every output wanted.
fn one_seq(n: usize) -> BatchRows {
    BatchRows { tokens: vec![0; n], pos: (0..n as u32).collect(), seq: vec![0; n], logits: vec![true; n] }
}

/// A decode step of `n` sequences: row i is sequence i's next token.
fn decode_rows(n: usize) -> BatchRows {
    BatchRows { tokens: vec![0; n], pos: vec![0; n], seq: (0..n as u32).collect(), logits: vec![true; n] }
}

/// The weight that reads MoE ids back to the host: `matmul_id` of a row of ones with expert `e`'s
/// 1×1 matrix holding `e` yields the id itself (exact in f32). The op interface keeps routing ids
/// on the backend and has no read-back, so `moe_route`'s ids are read through `matmul_id`
/// (itself held to the reference by the `matmul_id` cases).
fn add_id_probe(w: &mut Weights, n_expert: usize) -> Result<(), String> {
    let ids: Vec<f32> = (0..n_expert).map(|e| e as f32).collect();
    w.add_f32("id_probe", &[1, 1, n_expert as u64], &ids)
}

fn prepare_attention(
    a: &AttnSpec,
    rng: &mut Rng,
    p: &mut Prepared,
    w: &mut Weights,
    has_weights: &mut bool,
) -> Result<(), String> {
    let (kc, vc, qc) = (a.n_head_kv * a.head_dim, a.n_head_kv * a.v_head_dim, a.n_head * a.head_dim);
    let row = |seq: u32, pos: usize| (seq, pos as u32);
    // Keys/values: the sequences' rows interleaved position by position (rows of one sequence are
    // not adjacent), so a write to the wrong slot lands somewhere a probe reads.
    let mut kv_rows = Vec::new();
    let max_kv = a.seqs.iter().map(|s| s.0).max().unwrap_or(0);
    for pos in 0..max_kv {
        for (s, &(n_kv, _)) in a.seqs.iter().enumerate() {
            if pos < n_kv {
                kv_rows.push(row(a.seq_id(s), pos));
            }
        }
    }
    // Queries: the last n_q positions of each sequence, the sequences in reverse order.
    let mut q_rows = Vec::new();
    for (s, &(n_kv, n_q)) in a.seqs.iter().enumerate().rev() {
        for pos in n_kv - n_q..n_kv {
            q_rows.push(row(a.seq_id(s), pos));
        }
    }
    let last = a.n_ctx() - 1;
    let probe: Vec<_> = (0..a.seqs.len()).map(|s| row(a.seq_id(s), last)).collect();
    let spare = vec![row(KV_SPARE_SEQ, last)];
    let mut layer0: Vec<_> = probe.clone();
    layer0.push(row(KV_SPARE_SEQ, last));
    let batch = |rows: &[(u32, u32)]| BatchRows {
        tokens: vec![0; rows.len()],
        pos: rows.iter().map(|r| r.1).collect(),
        seq: rows.iter().map(|r| r.0).collect(),
        logits: vec![true; rows.len()],
    };
    // test-backend-ops's test_flash_attn_ext: q, k, v uniform in [-1, 1].
    p.x.push(Host::uniform(rng, kv_rows.len(), kc, -1.0, 1.0));
    p.x.push(Host::uniform(rng, kv_rows.len(), vc, -1.0, 1.0));
    for rows in [&q_rows, &probe, &spare, &layer0] {
        p.x.push(Host::uniform(rng, rows.len(), qc, -1.0, 1.0));
        p.batches.push(batch(rows));
    }
    p.batches.push(batch(&kv_rows));
    if a.sinks {
        let s = rng.vec(a.n_head, -2.0, 2.0);
        w.add_f32("sinks", &[a.n_head as u64], &s)?;
        *has_weights = true;
    }
    if let Some(ty) = a.proj {
        let o = (a.n_head * a.v_head_dim) as u64;
        w.add(rng, "o", ty, &[o, o])?;
        *has_weights = true;
    }
    Ok(())
}

/// A case's inputs on the host.
#[derive(Debug, Default)]
pub struct Prepared {
    pub x: Vec<Host>,
    pub file: Option<GgufFile>,
    pub batches: Vec<BatchRows>,
    pub freq_factors: Vec<f32>,
}

type R<T> = Result<T, String>;

fn e2s(op: &str) -> impl Fn(orcd_engine::Error) -> String + '_ {
    move |e| format!("{op} returned an error: {e}")
}

fn tensor<B: Ops>(b: &B, h: &Host) -> R<B::Tensor> {
    b.tensor_from_host(h.rows, h.cols, &h.data).map_err(e2s("tensor_from_host"))
}

fn weight<B: Ops>(b: &B, p: &Prepared, name: &str) -> R<B::Weight> {
    let f = p.file.as_ref().ok_or("no weights file")?;
    let t = f.tensor(name).map_err(|e| e.to_string())?;
    b.load_weight(f, t).map_err(e2s("load_weight"))
}

fn host<B: Ops>(b: &B, name: &'static str, t: &B::Tensor) -> R<Got> {
    let shape = b.shape(t);
    let data = b.to_host(t).map_err(e2s("to_host"))?;
    Ok(Got { name, shape, data: Data::F32(data) })
}

fn batch<B: Ops>(b: &B, p: &Prepared, i: usize) -> R<B::Batch> {
    b.upload_batch(&p.batches[i]).map_err(e2s("upload_batch"))
}

/// Read MoE ids back through [`add_id_probe`]'s weight: `[n·k, 1]` f32 that must be integers.
fn ids_to_host<B: Ops>(b: &B, p: &Prepared, ids: &B::Ids, n: usize, k: usize) -> R<Got> {
    let probe = weight(b, p, "id_probe")?;
    let ones = b.tensor_from_host(n, 1, &vec![1.0; n]).map_err(e2s("tensor_from_host"))?;
    let v = b.matmul_id(&ones, &probe, None, ids, k).map_err(e2s("matmul_id (reading the ids back)"))?;
    let (rows, cols) = b.shape(&v);
    let vals = b.to_host(&v).map_err(e2s("to_host"))?;
    if (rows, cols) != (n * k, 1) {
        return Err(format!("reading the ids back: [{rows}, {cols}] values for {n} rows × {k} experts"));
    }
    let mut out = Vec::with_capacity(vals.len());
    for (i, &x) in vals.iter().enumerate() {
        if !(x >= 0.0 && x.fract() == 0.0 && x < u32::MAX as f32) {
            return Err(format!("reading the ids back: slot {i} holds {x}, not an expert id"));
        }
        out.push(x as u32);
    }
    Ok(Got { name: "ids", shape: (n, k), data: Data::Ids(out) })
}

/// Run `spec` on backend `b` with inputs `p`: the outputs of [`OpSpec::expect`], in its order.
pub fn exec<B: Ops>(b: &B, spec: &OpSpec, p: &Prepared) -> R<Vec<Got>> {
    let x0 = || tensor(b, &p.x[0]);
    let x1 = || tensor(b, &p.x[1]);
    let one = |name: &'static str, t: orcd_engine::Result<B::Tensor>| -> R<Vec<Got>> {
        let t = t.map_err(e2s(spec.op()))?;
        Ok(vec![host(b, name, &t)?])
    };
    match spec {
        OpSpec::GetRows { index, .. } => {
            let w = weight(b, p, "table")?;
            one("out", b.get_rows(&w, &batch(b, p, 0)?, *index))
        }
        OpSpec::OutputRows { .. } => one("out", b.output_rows(x0()?, &batch(b, p, 0)?)),
        OpSpec::RmsNorm { eps, .. } => one("out", b.rms_norm(&x0()?, *eps)),
        OpSpec::LayerNorm { eps, .. } => one("out", b.layer_norm(&x0()?, *eps)),
        OpSpec::MulRow { .. } => one("out", b.mul_row(&x0()?, &weight(b, p, "w")?)),
        OpSpec::AddRow { .. } => one("out", b.add_row(&x0()?, &weight(b, p, "w")?)),
        OpSpec::Add { .. } => one("out", b.add(&x0()?, &x1()?)),
        OpSpec::Scale { s, .. } => one("out", b.scale(&x0()?, *s)),
        OpSpec::Softcap { cap, .. } => one("out", b.softcap(&x0()?, *cap)),
        OpSpec::Act { act, .. } => one("out", b.act(&x0()?, *act)),
        OpSpec::Glu { act, .. } => one("out", b.glu(&x0()?, &x1()?, *act)),
        OpSpec::SliceCols { start, len, .. } => one("out", b.slice_cols(&x0()?, *start, *len)),
        OpSpec::Reshape { rows, cols, to_cols } => one("out", b.reshape(x0()?, rows * cols / to_cols, *to_cols)),
        OpSpec::Argmax { .. } => {
            let ids = b.argmax(&x0()?).map_err(e2s("argmax"))?;
            Ok(vec![Got { name: "ids", shape: (ids.len(), 1), data: Data::Ids(ids) }])
        }
        OpSpec::TopK { k, .. } => {
            let top = b.top_k(&x0()?, *k).map_err(e2s("top_k"))?;
            let width = top.first().map_or(0, Vec::len);
            if let Some((r, row)) = top.iter().enumerate().find(|(_, row)| row.len() != width) {
                return Err(format!("top_k: row {r} has {} entries, row 0 has {width}", row.len()));
            }
            let shape = (top.len(), width);
            let ids = top.iter().flatten().map(|e| e.0).collect();
            let vals = top.iter().flatten().map(|e| e.1).collect();
            Ok(vec![
                Got { name: "ids", shape, data: Data::Ids(ids) },
                Got { name: "values", shape, data: Data::F32(vals) },
            ])
        }
        OpSpec::Matmul { .. } => {
            let g = b.batch_groups(&batch(b, p, 0)?);
            one("out", b.matmul(&x0()?, &weight(b, p, "w")?, &g))
        }
        OpSpec::Rope { style, n_head, head_dim, n_rot, freq_base, freq_scale, yarn, freq_factors, .. } => {
            let rp = RopeParams {
                style: *style,
                n_rot: *n_rot,
                freq_base: *freq_base,
                freq_scale: *freq_scale,
                yarn: *yarn,
                freq_factors: freq_factors.map(|_| p.freq_factors.clone().into()),
            };
            one("out", b.rope(&x0()?, *n_head, *head_dim, &batch(b, p, 0)?, &rp))
        }
        OpSpec::Attention(a) => exec_attention(b, a, p),
        OpSpec::MoeRoute { n, k, .. } => {
            let (ids, wts) = b.moe_route(&x0()?, *k).map_err(e2s("moe_route"))?;
            Ok(vec![ids_to_host(b, p, &ids, *n, *k)?, host(b, "weights", &wts)?])
        }
        OpSpec::MatmulId { k, bias, .. } => {
            let (ids, _) = b.moe_route(&x0()?, *k).map_err(e2s("moe_route (choosing the experts)"))?;
            let w = weight(b, p, "experts")?;
            let bw = if *bias { Some(weight(b, p, "bias")?) } else { None };
            one("out", b.matmul_id(&x1()?, &w, bw.as_ref(), &ids, *k))
        }
        OpSpec::SwigluOai { .. } => one(
            "out",
            b.swiglu_oai(&x0()?, &x1()?, orcd_engine::ops::SWIGLU_OAI_ALPHA, orcd_engine::ops::SWIGLU_OAI_LIMIT),
        ),
        OpSpec::MoeCombine { k, .. } => one("out", b.moe_combine(&x0()?, &x1()?, *k)),
        OpSpec::RmsNormMul { eps, .. } => one("out", b.rms_norm_mul(&x0()?, *eps, &weight(b, p, "w")?)),
        OpSpec::RmsNormMulAdd { eps, .. } => one("out", b.rms_norm_mul_add(&x0()?, *eps, &weight(b, p, "w")?, &x1()?)),
        OpSpec::MatmulFused { bias, res, .. } => {
            let g = b.batch_groups(&batch(b, p, 0)?);
            let bw = if *bias { Some(weight(b, p, "bias")?) } else { None };
            let r = if *res { Some(x1()?) } else { None };
            one("out", b.matmul_fused(&x0()?, &weight(b, p, "w")?, bw.as_ref(), r.as_ref(), &g))
        }
        OpSpec::MatmulNormAdd { bias, eps, .. } => {
            let g = b.batch_groups(&batch(b, p, 0)?);
            let bw = if *bias { Some(weight(b, p, "bias")?) } else { None };
            let (w, nw) = (weight(b, p, "w")?, weight(b, p, "nw")?);
            one("out", b.matmul_norm_add(&x0()?, &w, bw.as_ref(), &nw, *eps, &x1()?, &g))
        }
        OpSpec::MatmulGlu { act, .. } => {
            let g = b.batch_groups(&batch(b, p, 0)?);
            one("out", b.matmul_glu(&x0()?, &weight(b, p, "gate")?, &weight(b, p, "up")?, *act, &g))
        }
        OpSpec::NormMatmuls { ms, bias, .. } => {
            let g = b.batch_groups(&batch(b, p, 0)?);
            let mut ws = Vec::with_capacity(ms.len());
            for i in 0..ms.len() {
                let bw = if *bias { Some(weight(b, p, &format!("b{i}"))?) } else { None };
                ws.push((weight(b, p, &format!("w{i}"))?, bw));
            }
            let refs: Vec<_> = ws.iter().map(|(w, bw)| (w, bw.as_ref())).collect();
            let ys = b.norm_matmuls(&x0()?, &weight(b, p, "nw")?, 1e-6, &refs, &g).map_err(e2s("norm_matmuls"))?;
            if ys.len() != ms.len() {
                return Err(format!("norm_matmuls gave {} outputs for {} projections", ys.len(), ms.len()));
            }
            ys.iter().zip(NORM_MATMUL_OUT).map(|(y, name)| host(b, name, y)).collect()
        }
        OpSpec::NormMatmulGlu { act, down, .. } => {
            let g = b.batch_groups(&batch(b, p, 0)?);
            let (nw, gate, up) = (weight(b, p, "nw")?, weight(b, p, "gate")?, weight(b, p, "up")?);
            let y = b.norm_matmul_glu(&x0()?, &nw, 1e-6, &gate, &up, *act, &g);
            match down {
                None => one("out", y),
                Some(_) => {
                    let y = y.map_err(e2s("norm_matmul_glu"))?;
                    let d = b
                        .matmul_fused(&y, &weight(b, p, "down")?, None, Some(&x0()?), &g)
                        .map_err(e2s("matmul_fused (the down projection)"))?;
                    Ok(vec![host(b, "out", &y)?, host(b, "down", &d)?])
                }
            }
        }
        OpSpec::NormAddNormMatmulGlu { act, .. } => {
            let g = b.batch_groups(&batch(b, p, 0)?);
            let (pw, nw) = (weight(b, p, "pw")?, weight(b, p, "nw")?);
            let (gate, up) = (weight(b, p, "gate")?, weight(b, p, "up")?);
            let (x, res) = (x0()?, x1()?);
            let pre = PostNorm { x: &x, w: &pw, eps: 1e-6, res: &res };
            let (h, y) = b
                .norm_add_norm_matmul_glu(&pre, &nw, 1e-6, &gate, &up, *act, &g)
                .map_err(e2s("norm_add_norm_matmul_glu"))?;
            Ok(vec![host(b, "h", &h)?, host(b, "out", &y)?])
        }
        OpSpec::RopeQkKv { style, n_head, n_head_kv, head_dim, rows } => {
            let rp = plain_rope(*style, *head_dim);
            let mut kv = rope_kv_cache(b, *n_head_kv, *head_dim, *rows)?;
            let bt = batch(b, p, 0)?;
            let (q, k, v) = (x0()?, x1()?, tensor(b, &p.x[2])?);
            let q = b
                .rope_qk_kv_write(&q, &k, &v, &mut kv, 1, *n_head, *n_head_kv, *head_dim, &bt, &rp)
                .map_err(e2s("rope_qk_kv_write"))?;
            rope_kv_outputs(b, &q, &kv, &bt, (*n_head, *n_head_kv, *head_dim), 1.0 / (*head_dim as f32).sqrt())
        }
        OpSpec::NormRopeQkKv { style, n_head, n_head_kv, head_dim, rows, q_scale } => {
            let rp = plain_rope(*style, *head_dim);
            let mut kv = rope_kv_cache(b, *n_head_kv, *head_dim, *rows)?;
            let bt = batch(b, p, 0)?;
            let (q, k, v) = (x0()?, x1()?, tensor(b, &p.x[2])?);
            let (hq, hk) = (weight(b, p, "hq")?, weight(b, p, "hk")?);
            let s = q_scale.then(|| 1.0 / (*head_dim as f32).sqrt());
            let heads = (*n_head, *n_head_kv, *head_dim);
            let q = b
                .norm_rope_qk_kv_write(q, k, &v, &mut kv, 1, heads, &bt, &rp, (&hq, &hk, 1e-6), s)
                .map_err(e2s("norm_rope_qk_kv_write"))?;
            // Normalized heads times the weights (~1 each): q·k ~ head_dim; the attention's
            // scale brings the scores to a few units, as RopeQkKv's.
            rope_kv_outputs(b, &q, &kv, &bt, heads, 1.0 / (*head_dim as f32))
        }
        OpSpec::NormQkvRopeKv { style, n_head, n_head_kv, head_dim, rows, bias, head_norm, pre, .. } => {
            let rp = plain_rope(*style, *head_dim);
            let mut kv = rope_kv_cache(b, *n_head_kv, *head_dim, *rows)?;
            let bt = batch(b, p, 0)?;
            let g = b.batch_groups(&bt);
            let mut ws = Vec::with_capacity(3);
            for i in 0..3 {
                let bw = if *bias { Some(weight(b, p, &format!("b{i}"))?) } else { None };
                ws.push((weight(b, p, &format!("w{i}"))?, bw));
            }
            let refs = [(&ws[0].0, ws[0].1.as_ref()), (&ws[1].0, ws[1].1.as_ref()), (&ws[2].0, ws[2].1.as_ref())];
            let nw = weight(b, p, "nw")?;
            let heads = (*n_head, *n_head_kv, *head_dim);
            if let Some(qs) = head_norm {
                let (hq, hk) = (weight(b, p, "hq")?, weight(b, p, "hk")?);
                let s = qs.then(|| 1.0 / (*head_dim as f32).sqrt());
                if *pre {
                    let (x, res, pw) = (x0()?, x1()?, weight(b, p, "pw")?);
                    let pn = PostNorm { x: &x, w: &pw, eps: 1e-6, res: &res };
                    let (h, q) = b
                        .norm_add_norm_qkv_norm_rope_kv_write(
                            &pn,
                            &nw,
                            1e-6,
                            &refs,
                            &g,
                            &mut kv,
                            1,
                            heads,
                            &bt,
                            &rp,
                            (&hq, &hk, 1e-6),
                            s,
                        )
                        .map_err(e2s("norm_add_norm_qkv_norm_rope_kv_write"))?;
                    let mut out = vec![host(b, "h", &h)?];
                    out.extend(rope_kv_outputs(b, &q, &kv, &bt, heads, 1.0 / (*head_dim as f32))?);
                    return Ok(out);
                }
                let q = b
                    .norm_qkv_norm_rope_kv_write(
                        &x0()?,
                        &nw,
                        1e-6,
                        &refs,
                        &g,
                        &mut kv,
                        1,
                        heads,
                        &bt,
                        &rp,
                        (&hq, &hk, 1e-6),
                        s,
                    )
                    .map_err(e2s("norm_qkv_norm_rope_kv_write"))?;
                // Normalized heads (~1 an element): NormRopeQkKv's scale.
                return rope_kv_outputs(b, &q, &kv, &bt, heads, 1.0 / (*head_dim as f32));
            }
            let q = b
                .norm_qkv_rope_kv_write(&x0()?, &nw, 1e-6, &refs, &g, &mut kv, 1, heads, &bt, &rp)
                .map_err(e2s("norm_qkv_rope_kv_write"))?;
            // q and k come out of projections of k-wide rows (elements ~20, |q·k| in the
            // thousands, not ~1 as in RopeQkKv): at 1/√d the softmax saturates and the fast
            // numerics' rounding of the scores swings it (Q8_0's `out` on cpu-fast: NMSE
            // 7e-4). 1/(8d) brings the scores to a few units: a key stored unrotated or
            // wrong still moves the weights by tens of percent, rounding by under one.
            rope_kv_outputs(b, &q, &kv, &bt, heads, 1.0 / (8.0 * *head_dim as f32))
        }
        OpSpec::RopeQk { style, n_head, n_head_kv, head_dim, .. } => {
            let rp = plain_rope(*style, *head_dim);
            let (q, k) = b
                .rope_qk(&x0()?, &x1()?, *n_head, *n_head_kv, *head_dim, &batch(b, p, 0)?, &rp)
                .map_err(e2s("rope_qk"))?;
            Ok(vec![host(b, "q", &q)?, host(b, "k", &k)?])
        }
    }
}

/// `kv_write` into layer [`KV_LAYER`] of a cache one sequence and [`KV_SPARE_POS`] positions
/// larger than used, then four reads: the queries, a probe at the last slot of every used
/// sequence, the spare sequence, the unwritten layer.
fn exec_attention<B: Ops>(b: &B, a: &AttnSpec, p: &Prepared) -> R<Vec<Got>> {
    let spec = KvSpec {
        n_layer: KV_LAYER + 1,
        n_seq: a.seqs.len() + 1,
        n_ctx: a.n_ctx(),
        k_cols: a.n_head_kv * a.head_dim,
        v_cols: a.n_head_kv * a.v_head_dim,
        ty: b.kv_type(),
    };
    let mut kv = b.kv_alloc(&spec).map_err(e2s("kv_alloc"))?;
    let (k, v) = (tensor(b, &p.x[0])?, tensor(b, &p.x[1])?);
    b.kv_write(&mut kv, KV_LAYER, &k, &v, &batch(b, p, 4)?).map_err(e2s("kv_write"))?;
    let sinks = if a.sinks { Some(weight(b, p, "sinks")?) } else { None };
    let params = a.params();
    let (mut out, mut proj) = (Vec::new(), None);
    for (i, (name, layer)) in
        [("out", KV_LAYER), ("probe", KV_LAYER), ("spare-seq", KV_LAYER), ("spare-layer", 0)].into_iter().enumerate()
    {
        let q = tensor(b, &p.x[2 + i])?;
        let bt = batch(b, p, i)?;
        let o = b.attention(&q, &kv, layer, &bt, &params, sinks.as_ref()).map_err(e2s("attention"))?;
        out.push(host(b, name, &o)?);
        if let (Some(_), "out") = (a.proj, name) {
            let y = b.matmul_fused(&o, &weight(b, p, "o")?, None, None, &b.batch_groups(&bt));
            proj = Some(host(b, "proj", &y.map_err(e2s("matmul_fused (the o projection)"))?)?);
        }
    }
    out.extend(proj);
    Ok(out)
}

/// Layer 1 of a two-layer cache with room past `rows` (layer 0 and the slots past the rows must
/// not be read; the slots before ROPE_KV_POS0 are read, as zeros): the fused-RoPE cases' cache.
fn rope_kv_cache<B: Ops>(b: &B, n_head_kv: usize, head_dim: usize, rows: usize) -> R<B::Kv> {
    let spec = KvSpec {
        n_layer: 2,
        n_seq: 1,
        n_ctx: ROPE_KV_POS0 as usize + rows + 3,
        k_cols: n_head_kv * head_dim,
        v_cols: n_head_kv * head_dim,
        ty: b.kv_type(),
    };
    b.kv_alloc(&spec).map_err(e2s("kv_alloc"))
}

/// The fused-RoPE cases' outputs: the rotated queries, and a causal attention (scale `scale`)
/// over the layer-1 cache the op wrote (every stored key and value reaches some output row).
fn rope_kv_outputs<B: Ops>(
    b: &B,
    q: &B::Tensor,
    kv: &B::Kv,
    bt: &B::Batch,
    (n_head, n_head_kv, head_dim): (usize, usize, usize),
    scale: f32,
) -> R<Vec<Got>> {
    let params = AttnParams { n_head, n_head_kv, head_dim, v_head_dim: head_dim, scale, window: None, softcap: None };
    let o = b.attention(q, kv, 1, bt, &params, None).map_err(e2s("attention"))?;
    Ok(vec![host(b, "q", q)?, host(b, "out", &o)?])
}

/// The first position of the `rope_qk_kv_write` cases' rows.
const ROPE_KV_POS0: u32 = 5;

/// The RoPE of the fused-RoPE cases: the whole head rotated, Qwen2's base, no scaling.
fn plain_rope(style: RopeStyle, head_dim: usize) -> RopeParams {
    RopeParams { style, n_rot: head_dim, freq_base: 1_000_000.0, freq_scale: 1.0, yarn: None, freq_factors: None }
}
