//! Model adapters: hyper-parameters and weights read from GGUF metadata and tensors with
//! llama.cpp's names, one decoder graph for every architecture ([`graph`]) written against
//! [`crate::ops::Ops`], and the KV cache of several sequences.
//!
//! Invariants:
//! - An architecture is written once: `<arch>.rs` says which tensors it has (typed variants in
//!   [`weights`]), [`HParams::attn_cfg`] what its attention does per layer; the graph is shared.
//!   It only reads metadata keys and tensor names llama.cpp uses.
//! - The KV cache is allocated once at load (`n_seq` sequences × `n_ctx` positions, element type
//!   from the backend's numerics) and written in place; slot `p` of a sequence holds position
//!   `p`. Feeding past `n_ctx` is an error, never a silent wrap.
//! - A batch may mix sequences; each row attends only to its own sequence, and a sequence's
//!   numbers never depend on its neighbours (the backends pick kernels by the sequence's rows).
//! - A failed forward leaves every sequence's length unchanged (slots past a sequence's length
//!   are never read before they are written again).

mod gemma3;
mod gpt2;
mod gpt_oss;
pub mod graph;
mod hparams;
mod llama;
mod phi3;
mod qwen2;
pub mod weights;

pub use hparams::{Arch, AttnCfg, HParams};
pub use weights::{Layer, Weights};

use crate::gguf::GgufFile;
use crate::ops::{BatchRows, GraphKey, KvSpec, KvType, MemoryNeed, Ops, TapSink};
use crate::{Error, Result};
use weights::{Embd, Loader};

/// How a model is loaded: context per sequence, number of sequences, KV element type.
#[derive(Debug, Clone, Default)]
pub struct LoadOpts {
    /// Positions per sequence (default: the training context, at most 4096).
    pub n_ctx: Option<usize>,
    /// Sequences decoded together (default 1).
    pub n_seq: Option<usize>,
    /// KV element type (default: the backend's own, [`Ops::kv_type`]).
    pub kv_type: Option<KvType>,
}

/// Logits of the rows a batch asked for, row-major `[rows.len(), n_vocab]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    /// The batch rows these logits belong to, in batch order.
    pub rows: Vec<u32>,
    pub n_vocab: usize,
    pub data: Vec<f32>,
}

impl Logits {
    /// The logits of output row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n_vocab..(i + 1) * self.n_vocab]
    }
}

/// A loaded model with its KV cache.
pub struct Model<B: Ops> {
    pub backend: B,
    pub hp: HParams,
    pub w: Weights<B::Weight>,
    kv: B::Kv,
    /// Positions cached per sequence.
    n_past: Vec<usize>,
    pub n_ctx: usize,
    pub kv_type: KvType,
}

impl<B: Ops> std::fmt::Debug for Model<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("hp", &self.hp).field("n_past", &self.n_past).finish()
    }
}

/// phi3's LongRoPE factors for a context of `n_ctx`, as llama.cpp's `get_rope_factors`:
/// `rope_factors_long` when `n_ctx` exceeds `rope.scaling.original_context_length`, else
/// `rope_factors_short`; F32 `[n_rot / 2]`, one per rotated pair. A chosen tensor that the file
/// lacks means plain RoPE (llama.cpp creates both as optional). Other architectures refuse them.
fn rope_factors(f: &GgufFile, hp: &HParams, n_ctx: usize) -> Result<Option<std::sync::Arc<[f32]>>> {
    let (long, short) = ("rope_factors_long.weight", "rope_factors_short.weight");
    if f.tensor(long).is_err() && f.tensor(short).is_err() {
        return Ok(None);
    }
    if hp.arch != Arch::Phi3 {
        return Err(Error::Invalid(format!(
            "longrope factors (rope_factors_*) are only supported for phi3, not {:?}",
            hp.arch
        )));
    }
    let name = if n_ctx > hp.n_ctx_orig { long } else { short };
    let Ok(t) = f.tensor(name) else { return Ok(None) };
    let half = (hp.n_rot / 2) as u64;
    if t.ty != crate::gguf::GgmlType::F32 || t.dims != [half] {
        return Err(Error::Invalid(format!(
            "tensor {name:?} is {:?} {:?}; LongRoPE factors must be F32 [{half}] (n_rot / 2)",
            t.ty, t.dims
        )));
    }
    let v: Vec<f32> = f.tensor_data(t).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(bad) = v.iter().find(|x| !x.is_finite() || **x <= 0.0) {
        return Err(Error::Invalid(format!(
            "tensor {name:?} holds the frequency factor {bad}: not finite and positive"
        )));
    }
    Ok(Some(v.into()))
}

/// The memory a model of `f` needs on `b` with the cache `spec` ([`MemoryNeed`]); an overflowing
/// cache size is an error here, before anything is allocated.
pub fn memory_need<B: Ops>(f: &GgufFile, b: &B, hp: &HParams, spec: &KvSpec) -> Result<MemoryNeed> {
    let weights = f.tensors().iter().map(|t| b.weight_bytes(t)).fold(0u64, u64::saturating_add);
    let kv =
        spec.bytes().ok_or_else(|| Error::Invalid(format!("KV cache of {spec:?} overflows the address space")))? as u64;
    // A forward keeps a handful of activations of its widest layer alive at once (residual, norm,
    // q/k/v, gate/up); 16 row-widths per row covers the graph, plus two logits rows and a fixed
    // 32 MiB for scratch (top-k, quantized activations). Attention scores live in the backend's
    // own scratch (shared memory on CUDA), not here.
    let widest = [hp.n_embd, hp.n_ff, hp.n_head * hp.head_dim, spec.k_cols + spec.v_cols, hp.n_expert_used * hp.n_ff]
        .into_iter()
        .max()
        .unwrap_or(0) as u64;
    let rows = MemoryNeed::BATCH_ROWS;
    let workspace = (16 * widest * rows + 2 * hp.n_vocab as u64) * 4 + (32 << 20);
    Ok(MemoryNeed { weights, kv, workspace })
}

impl<B: Ops> Model<B> {
    /// Load hyper-parameters and every tensor the architecture needs (checking each shape), and
    /// allocate the KV cache of one sequence of `n_ctx` positions.
    pub fn load(f: &GgufFile, backend: B, n_ctx: Option<usize>) -> Result<Self> {
        Self::load_opts(f, backend, &LoadOpts { n_ctx, ..LoadOpts::default() })
    }

    /// [`Self::load`] with every option.
    pub fn load_opts(f: &GgufFile, backend: B, o: &LoadOpts) -> Result<Self> {
        let mut hp = HParams::from_gguf(f)?;
        let n_ctx = o.n_ctx.unwrap_or(hp.n_ctx_train.min(4096)).max(1);
        let n_seq = o.n_seq.unwrap_or(1).max(1);
        hp.rope_factors = rope_factors(f, &hp, n_ctx)?;
        let kv_type = o.kv_type.unwrap_or_else(|| backend.kv_type());
        let spec = KvSpec {
            n_layer: hp.n_layer,
            n_seq,
            n_ctx,
            k_cols: hp.n_head_kv * hp.head_dim,
            v_cols: hp.n_head_kv * hp.v_head_dim,
            ty: kv_type,
        };
        backend.reserve(&memory_need(f, &backend, &hp, &spec)?)?;
        let b = &backend;
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let ld = Loader { b, f, hp: &hp, i: Some(i) };
            layers.push(match hp.arch {
                Arch::Llama => llama::layer(&ld, weights::Bias::Opt)?,
                Arch::Qwen2 => qwen2::layer(&ld)?,
                Arch::Gemma3 => gemma3::layer(&ld)?,
                Arch::Phi3 => phi3::layer(&ld)?,
                Arch::Gpt2 => gpt2::layer(&ld)?,
                Arch::GptOss => gpt_oss::layer(&ld)?,
            });
        }
        let ld = Loader { b, f, hp: &hp, i: None };
        let (e, nv) = (hp.n_embd as u64, hp.n_vocab as u64);
        let w = Weights {
            embd: Embd {
                tok: ld.w("token_embd", &[e, nv])?,
                pos: match hp.arch {
                    Arch::Gpt2 => Some(ld.w("position_embd", &[e, hp.n_ctx_train as u64])?),
                    _ => None,
                },
                scale: (hp.arch == Arch::Gemma3).then(|| (hp.n_embd as f32).sqrt()),
            },
            output_norm: match hp.arch {
                Arch::Gpt2 => ld.layer_norm("output_norm")?,
                _ => ld.rms("output_norm")?,
            },
            output: match hp.arch {
                // llama.cpp's gpt-oss requires `output.weight` (never tied).
                Arch::GptOss => Some(ld.w("output", &[e, nv])?),
                _ if f.tensor("output.weight").is_ok() => Some(ld.w("output", &[e, nv])?),
                _ => None,
            },
            layers,
        };
        let kv = backend.kv_alloc(&spec).map_err(|e| e.context("allocating the KV cache"))?;
        Ok(Model { backend, hp, w, kv, n_past: vec![0; n_seq], n_ctx, kv_type })
    }

    /// Sequences the cache holds.
    pub fn n_seq(&self) -> usize {
        self.n_past.len()
    }

    /// Positions already cached for sequence 0.
    pub fn n_past(&self) -> usize {
        self.n_past[0]
    }

    /// Positions already cached for sequence `seq` (0 for an unknown sequence).
    pub fn n_past_of(&self, seq: usize) -> usize {
        self.n_past.get(seq).copied().unwrap_or(0)
    }

    /// The KV cache (allocated once at load).
    pub fn kv(&self) -> &B::Kv {
        &self.kv
    }

    /// Bytes of the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.backend.kv_bytes(&self.kv)
    }

    /// Forget every sequence.
    pub fn reset(&mut self) {
        self.n_past.iter_mut().for_each(|n| *n = 0);
    }

    /// Forget sequence `seq` (its slots are rewritten before they are read again).
    pub fn reset_seq(&mut self, seq: usize) {
        if let Some(n) = self.n_past.get_mut(seq) {
            *n = 0;
        }
    }

    /// Keep only the first `n` cached positions of sequence `seq` (prefix reuse: the positions
    /// after them are rewritten before they are read again). Never lengthens a sequence.
    pub fn truncate_seq(&mut self, seq: usize, n: usize) {
        if let Some(p) = self.n_past.get_mut(seq) {
            *p = (*p).min(n);
        }
    }

    /// Feed `tokens` to sequence 0 after its cached ones; returns the logits of every fed
    /// position, row-major `[tokens.len(), n_vocab]`.
    pub fn forward(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        let batch = self.seq_batch(0, tokens, true);
        Ok(self.decode(&batch, taps)?.data)
    }

    /// As [`Self::forward`], but returns only the last position's logits `[n_vocab]` and skips
    /// the output head for the other positions (as llama.cpp computes only the rows asked for).
    /// Every row-wise op is unchanged, so the last row equals `forward`'s last row exactly.
    pub fn forward_last(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        let batch = self.seq_batch(0, tokens, false);
        Ok(self.decode(&batch, taps)?.data)
    }

    /// A batch feeding `tokens` to `seq` after its cached positions; logits for every row
    /// (`all`) or the last.
    pub fn seq_batch(&self, seq: usize, tokens: &[u32], all: bool) -> BatchRows {
        let start = self.n_past_of(seq) as u32;
        let n = tokens.len();
        BatchRows {
            tokens: tokens.to_vec(),
            pos: (start..start + n as u32).collect(),
            seq: vec![seq as u32; n],
            logits: (0..n).map(|i| all || i + 1 == n).collect(),
        }
    }

    /// Run one forward over `batch` (rows of any sequences, each continuing its sequence from
    /// its cached length in order) and return the logits of the rows it asks for.
    pub fn decode(&mut self, batch: &BatchRows, taps: &mut dyn TapSink) -> Result<Logits> {
        let logits = self.run(batch, taps)?;
        let data = self.backend.to_host(&logits)?;
        Ok(Logits { rows: batch.output_rows(), n_vocab: self.hp.n_vocab, data })
    }

    /// As [`Self::decode`], but returns only each output row's argmax (greedy decoding reads
    /// these ids, not the logits).
    pub fn decode_argmax(&mut self, batch: &BatchRows) -> Result<Vec<u32>> {
        let logits = self.run(batch, &mut crate::ops::NoTaps)?;
        self.backend.argmax(&logits)
    }

    /// Check `batch` against the cache and the vocabulary; returns per sequence the rows it
    /// adds.
    fn check(&self, batch: &BatchRows) -> Result<Vec<usize>> {
        let n = batch.len();
        if n == 0 {
            return Err(Error::Invalid("no tokens to feed".into()));
        }
        batch.check_lengths()?;
        let mut added = vec![0usize; self.n_seq()];
        for r in 0..n {
            let (t, s, p) = (batch.tokens[r], batch.seq[r] as usize, batch.pos[r] as usize);
            if t as usize >= self.hp.n_vocab {
                return Err(Error::Invalid(format!("token id {t} out of range (vocab size {})", self.hp.n_vocab)));
            }
            let Some(a) = added.get_mut(s) else {
                return Err(Error::Invalid(format!("sequence {s} out of range ({} sequences)", self.n_seq())));
            };
            let want = self.n_past[s] + *a;
            if p != want {
                return Err(Error::Invalid(format!(
                    "batch row {r}: sequence {s} continues at position {want}, not {p}"
                )));
            }
            if p >= self.n_ctx {
                return Err(Error::Invalid(format!(
                    "context full: sequence {s} has {} cached + {} new tokens > n_ctx {}",
                    self.n_past[s],
                    *a + 1,
                    self.n_ctx
                )));
            }
            *a += 1;
        }
        Ok(added)
    }

    /// Greedy decoding of `steps` steps from `batch` — one row a sequence, each wanting its
    /// logits: a decode step —, every step after the first fed the previous step's ids on the
    /// device where the backend keeps them ([`Ops::argmax_keep`]: no host round trip between
    /// steps; the ids are read once, after the last step is queued), else read and fed back by
    /// the host, as [`Self::decode_argmax`] step by step. Returns each step's ids (`steps` ×
    /// rows), the same either way.
    pub fn decode_greedy(&mut self, batch: &BatchRows, steps: usize) -> Result<Vec<Vec<u32>>> {
        let n = batch.len();
        let mut seqs = batch.seq.clone();
        seqs.sort_unstable();
        seqs.dedup();
        if seqs.len() != n || batch.logits.iter().any(|&l| !l) {
            return Err(Error::Invalid("decode_greedy: one row a sequence, each wanting its logits".into()));
        }
        if steps == 0 {
            return Ok(Vec::new());
        }
        let next = |rows: &BatchRows, tokens: Vec<u32>| BatchRows {
            tokens,
            // Saturating: a position past the context is the host check's error, not a panic.
            pos: rows.pos.iter().map(|p| p.saturating_add(1)).collect(),
            seq: rows.seq.clone(),
            logits: rows.logits.clone(),
        };
        let logits = self.run(batch, &mut crate::ops::NoTaps)?;
        let Some(first) = self.backend.argmax_keep(&logits)? else {
            // The host feeds each step's ids.
            let mut out = vec![self.backend.argmax(&logits)?];
            let mut rows = batch.clone();
            while out.len() < steps {
                rows = next(&rows, out[out.len() - 1].clone());
                out.push(self.decode_argmax(&rows)?);
            }
            return Ok(out);
        };
        let mut kept = vec![first];
        let mut rows = batch.clone();
        while kept.len() < steps {
            // Valid ids stand in for the fed ones in the host's checks (argmax ids are < n_vocab).
            rows = next(&rows, vec![0; n]);
            let fed = &kept[kept.len() - 1];
            let logits = self.run_fed(&rows, Some(fed), &mut crate::ops::NoTaps)?;
            let ids = self.backend.argmax_keep(&logits)?.ok_or_else(|| {
                Error::Invalid(format!("{}: argmax_keep kept ids once, then not", self.backend.name()))
            })?;
            kept.push(ids);
        }
        kept.iter().map(|ids| self.backend.ids_to_host(ids)).collect()
    }

    fn run(&mut self, batch: &BatchRows, taps: &mut dyn TapSink) -> Result<B::Tensor> {
        self.run_fed(batch, None, taps)
    }

    /// [`Self::run`]; with `fed`, the rows' token ids are those kept ids (on the device), not
    /// `batch.tokens`.
    fn run_fed(&mut self, batch: &BatchRows, fed: Option<&B::Ids>, taps: &mut dyn TapSink) -> Result<B::Tensor> {
        let added = self.check(batch)?;
        let mut rows = batch.clone();
        if crate::faults::active(crate::faults::Fault::KvPosShift) {
            // Planted bug: positions of continued sequences shifted back by one.
            for (r, p) in rows.pos.iter_mut().enumerate() {
                if self.n_past[rows.seq[r] as usize] > 0 {
                    *p -= 1;
                }
            }
        }
        // A device backend replays a recorded forward of this shape (taps read activations on
        // the host mid-forward, so a tapped forward is never recorded or replayed).
        let key = if taps.active() { None } else { GraphKey::of(&rows) };
        if let Some(k) = &key {
            let replayed = match fed {
                Some(ids) => self.backend.graph_replay_fed(k, &rows, ids)?,
                None => self.backend.graph_replay(k, &rows)?,
            };
            if let Some(logits) = replayed {
                self.advance(&added);
                return Ok(logits);
            }
        }
        let upload = |b: &B, rows: &BatchRows| match fed {
            Some(ids) => b.upload_batch_fed(rows, ids),
            None => b.upload_batch(rows),
        };
        let up = upload(&self.backend, &rows)?;
        let recording = match &key {
            Some(k) => self.backend.graph_begin(k, &up)?,
            None => false,
        };
        let out = self.forward_batch(&up, &rows, taps);
        let logits = match (recording, key) {
            (true, Some(k)) => {
                let ran = self.backend.graph_end(&k, out.as_ref().ok())?;
                match out {
                    Ok(t) if ran => t,
                    // Nothing ran while recording: run the forward as it is.
                    _ => {
                        let up = upload(&self.backend, &rows)?;
                        self.forward_batch(&up, &rows, taps)?
                    }
                }
            }
            _ => out?,
        };
        self.advance(&added);
        Ok(logits)
    }

    fn advance(&mut self, added: &[usize]) {
        for (n, a) in self.n_past.iter_mut().zip(added) {
            *n += a;
        }
    }

    /// The forward itself: embeddings, every layer (writing the KV cache), the output head.
    fn forward_batch(&mut self, up: &B::Batch, rows: &BatchRows, taps: &mut dyn TapSink) -> Result<B::Tensor> {
        let b = &self.backend;
        let mut f = graph::Fwd {
            b,
            hp: &self.hp,
            batch: up,
            groups: b.batch_groups(up),
            out_groups: rows.output_groups(),
            taps,
            defer_post_norm: false,
        };
        let mut x = graph::Stream::Ready(f.embed(&self.w.embd)?);
        for (il, l) in self.w.layers.iter().enumerate() {
            x = f.layer(il, l, &mut self.kv, x)?;
        }
        let x = f.ready(x)?;
        f.output(x, &self.w)
    }
}

/// A loaded model behind dynamic dispatch: what the registry hands the CLI, the harness and the
/// server, whatever backend it runs on. Every method forwards to [`Model`].
pub trait AnyModel: Send {
    fn hp(&self) -> &HParams;
    /// The backend's name (`cpu`, `cpu-fast`, `cuda`).
    fn backend_name(&self) -> &'static str;
    /// Positions per sequence.
    fn n_ctx(&self) -> usize;
    fn n_seq(&self) -> usize;
    /// Positions cached for sequence 0.
    fn n_past(&self) -> usize;
    fn n_past_of(&self, seq: usize) -> usize;
    fn kv_bytes(&self) -> usize;
    fn kv_type(&self) -> KvType;
    fn reset(&mut self);
    fn reset_seq(&mut self, seq: usize);
    /// Keep the first `n` cached positions of `seq` (never lengthens it).
    fn truncate_seq(&mut self, seq: usize, n: usize);
    fn seq_batch(&self, seq: usize, tokens: &[u32], all: bool) -> BatchRows;
    fn forward(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>>;
    fn forward_last(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>>;
    fn decode(&mut self, batch: &BatchRows, taps: &mut dyn TapSink) -> Result<Logits>;
    fn decode_argmax(&mut self, batch: &BatchRows) -> Result<Vec<u32>>;
    fn decode_greedy(&mut self, batch: &BatchRows, steps: usize) -> Result<Vec<Vec<u32>>>;
    /// Device memory in use by category (`None` on host backends).
    fn device_memory(&self) -> Option<crate::ops::DeviceMemory>;
}

impl<B: Ops + Send> AnyModel for Model<B>
where
    B::Weight: Send,
    B::Kv: Send,
{
    fn hp(&self) -> &HParams {
        &self.hp
    }
    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }
    fn device_memory(&self) -> Option<crate::ops::DeviceMemory> {
        self.backend.device_memory()
    }
    fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    fn n_seq(&self) -> usize {
        Model::n_seq(self)
    }
    fn n_past(&self) -> usize {
        Model::n_past(self)
    }
    fn n_past_of(&self, seq: usize) -> usize {
        Model::n_past_of(self, seq)
    }
    fn kv_bytes(&self) -> usize {
        Model::kv_bytes(self)
    }
    fn kv_type(&self) -> KvType {
        self.kv_type
    }
    fn reset(&mut self) {
        Model::reset(self)
    }
    fn reset_seq(&mut self, seq: usize) {
        Model::reset_seq(self, seq)
    }
    fn truncate_seq(&mut self, seq: usize, n: usize) {
        Model::truncate_seq(self, seq, n)
    }
    fn seq_batch(&self, seq: usize, tokens: &[u32], all: bool) -> BatchRows {
        Model::seq_batch(self, seq, tokens, all)
    }
    fn forward(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        Model::forward(self, tokens, taps)
    }
    fn forward_last(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        Model::forward_last(self, tokens, taps)
    }
    fn decode(&mut self, batch: &BatchRows, taps: &mut dyn TapSink) -> Result<Logits> {
        Model::decode(self, batch, taps)
    }
    fn decode_argmax(&mut self, batch: &BatchRows) -> Result<Vec<u32>> {
        Model::decode_argmax(self, batch)
    }
    fn decode_greedy(&mut self, batch: &BatchRows, steps: usize) -> Result<Vec<Vec<u32>>> {
        Model::decode_greedy(self, batch, steps)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::gguf::{GgufValue, GgufWriter};

    /// Metadata of a small `arch` file with LongRoPE factors of `n_long` / `n_short` entries.
    fn file(arch: &str, n_long: usize, n_short: usize) -> GgufFile {
        let mut w = GgufWriter::new();
        w.set("general.architecture", GgufValue::String(arch.into()));
        for (k, v) in [
            ("block_count", 1),
            ("embedding_length", 64),
            ("feed_forward_length", 128),
            ("attention.head_count", 4),
            ("vocab_size", 32),
            ("context_length", 131_072),
            ("rope.dimension_count", 16),
            ("rope.scaling.original_context_length", 4096),
        ] {
            w.set(&format!("{arch}.{k}"), GgufValue::U32(v));
        }
        w.set(&format!("{arch}.rope.scaling.attn_factor"), GgufValue::F32(1.19));
        let long: Vec<f32> = (0..n_long).map(|i| 10.0 + i as f32).collect();
        let short: Vec<f32> = (0..n_short).map(|i| 1.0 + i as f32 / 8.0).collect();
        w.add_f32("rope_factors_long.weight", &[n_long as u64], &long).unwrap();
        w.add_f32("rope_factors_short.weight", &[n_short as u64], &short).unwrap();
        GgufFile::from_bytes(w.to_bytes().0).unwrap()
    }

    #[test]
    fn longrope_factors_follow_the_context_as_llama_cpp() {
        let f = file("phi3", 8, 8);
        let hp = HParams::from_gguf(&f).unwrap();
        assert_eq!((hp.n_ctx_orig, hp.rope_attn_factor), (4096, 1.19));
        // Up to the original context: short; past it: long (llama.cpp's get_rope_factors).
        assert_eq!(rope_factors(&f, &hp, 4096).unwrap().unwrap()[1], 1.125);
        assert_eq!(rope_factors(&f, &hp, 4097).unwrap().unwrap()[1], 11.0);
        let p = HParams { rope_factors: rope_factors(&f, &hp, 16).unwrap(), ..hp }.rope_params(10_000.0);
        assert_eq!(p.freq_factors.as_deref().map(<[f32]>::len), Some(8));
        assert_eq!(p.yarn.map(|y| (y.ext_factor, y.attn_factor)), Some((0.0, 1.19)));
    }

    #[test]
    fn longrope_factors_are_checked() {
        // Not n_rot / 2 entries: a typed error, whichever set the context picks.
        let f = file("phi3", 8, 7);
        let hp = HParams::from_gguf(&f).unwrap();
        assert!(rope_factors(&f, &hp, 4097).is_ok());
        let e = rope_factors(&f, &hp, 64).unwrap_err().to_string();
        assert!(e.contains("rope_factors_short") && e.contains("[8]"), "{e}");
        // Another architecture does not use them: refused rather than ignored.
        let f = file("llama", 8, 8);
        let hp = HParams::from_gguf(&f).unwrap();
        assert!(rope_factors(&f, &hp, 64).unwrap_err().to_string().contains("only supported for phi3"));
    }
}
