//! What both CPU backends share below the ops: the in-place KV cache and the batch as the CPU
//! keeps it, and the per-sequence split of attention.
//!
//! Invariants:
//! - The cache is allocated once ([`CpuKv::alloc`]); writes go to slot `pos` of the row's
//!   sequence; nothing is reallocated or moved while sequences grow.
//! - Attention of one sequence sees only that sequence's slots `0..=max pos of its rows`, and the
//!   kernel gets exactly the query rows of that sequence (so a kernel that changes formula with
//!   the row count decides by the sequence's own rows, never by its neighbours').

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ops::{BatchRows, KvSpec, KvType, RowGroups};
use crate::quant::{f16_to_f32, f32_to_f16};
use crate::{Error, Result};

/// How many KV caches the CPU backends allocated in this process (the test that a model
/// allocates its cache once, and never again while it decodes, reads it).
pub static KV_ALLOCS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
enum Store {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl Store {
    fn zeroed(ty: KvType, n: usize) -> Result<Self> {
        let oom = |_| Error::Invalid(format!("KV cache: cannot allocate {n} values"));
        Ok(match ty {
            KvType::F32 => {
                let mut v = Vec::new();
                v.try_reserve_exact(n).map_err(oom)?;
                v.resize(n, 0.0);
                Store::F32(v)
            }
            KvType::F16 => {
                let mut v = Vec::new();
                v.try_reserve_exact(n).map_err(oom)?;
                v.resize(n, 0);
                Store::F16(v)
            }
        })
    }

    fn write(&mut self, at: usize, row: &[f32]) {
        match self {
            Store::F32(v) => v[at..at + row.len()].copy_from_slice(row),
            Store::F16(v) => {
                for (o, &x) in v[at..at + row.len()].iter_mut().zip(row) {
                    *o = f32_to_f16(x);
                }
            }
        }
    }

    fn f32s(&self, r: std::ops::Range<usize>) -> Cow<'_, [f32]> {
        match self {
            Store::F32(v) => Cow::Borrowed(&v[r]),
            Store::F16(v) => Cow::Owned(v[r].iter().map(|&h| f16_to_f32(h)).collect()),
        }
    }

    fn f16s(&self, r: std::ops::Range<usize>) -> Cow<'_, [u16]> {
        match self {
            Store::F16(v) => Cow::Borrowed(&v[r]),
            Store::F32(v) => Cow::Owned(v[r].iter().map(|&x| f32_to_f16(x)).collect()),
        }
    }
}

/// The KV cache of a CPU backend: per layer one K and one V buffer `[n_seq][n_ctx][cols]`.
#[derive(Debug)]
pub struct CpuKv {
    pub spec: KvSpec,
    k: Vec<Store>,
    v: Vec<Store>,
}

impl CpuKv {
    /// Allocate the whole cache (zeroed; the pages are touched as positions are written).
    pub fn alloc(spec: &KvSpec) -> Result<Self> {
        let total = spec.bytes().ok_or_else(|| Error::Invalid(format!("KV cache {spec:?} overflows")))?;
        let per_seq = |cols: usize| spec.n_seq.checked_mul(spec.n_ctx).and_then(|n| n.checked_mul(cols));
        let (Some(nk), Some(nv)) = (per_seq(spec.k_cols), per_seq(spec.v_cols)) else {
            return Err(Error::Invalid(format!("KV cache {spec:?} overflows")));
        };
        let _ = total;
        let mut k = Vec::with_capacity(spec.n_layer);
        let mut v = Vec::with_capacity(spec.n_layer);
        for _ in 0..spec.n_layer {
            k.push(Store::zeroed(spec.ty, nk)?);
            v.push(Store::zeroed(spec.ty, nv)?);
        }
        KV_ALLOCS.fetch_add(1, Ordering::Relaxed);
        Ok(CpuKv { spec: spec.clone(), k, v })
    }

    pub fn bytes(&self) -> usize {
        self.spec.bytes().unwrap_or(usize::MAX)
    }

    /// Addresses of every layer's K and V buffers: they never change after [`Self::alloc`]
    /// (what a device backend's graph replay needs; tested).
    pub fn addresses(&self) -> Vec<usize> {
        let addr = |s: &Store| match s {
            Store::F32(v) => v.as_ptr() as usize,
            Store::F16(v) => v.as_ptr() as usize,
        };
        self.k.iter().chain(&self.v).map(addr).collect()
    }

    /// Write row `r` of `k` / `v` (row-major, `k_cols` / `v_cols` wide) to slot `pos[r]` of
    /// sequence `seq[r]` in layer `il`.
    pub fn write(&mut self, il: usize, k: &[f32], v: &[f32], b: &CpuBatch) -> Result<()> {
        let s = &self.spec;
        let n = b.rows.len();
        if il >= s.n_layer || k.len() != n * s.k_cols || v.len() != n * s.v_cols {
            return Err(Error::Invalid(format!(
                "kv_write: layer {il} of {}, k {} and v {} values for {n} rows of {} / {}",
                s.n_layer,
                k.len(),
                v.len(),
                s.k_cols,
                s.v_cols
            )));
        }
        let (kc, vc, n_ctx) = (s.k_cols, s.v_cols, s.n_ctx);
        for r in 0..n {
            let (seq, pos) = (b.rows.seq[r] as usize, b.rows.pos[r] as usize);
            let slot = seq * n_ctx + pos;
            self.k[il].write(slot * kc, &k[r * kc..(r + 1) * kc]);
            self.v[il].write(slot * vc, &v[r * vc..(r + 1) * vc]);
        }
        Ok(())
    }

    fn range(&self, seq: usize, n_kv: usize, cols: usize) -> std::ops::Range<usize> {
        let start = seq * self.spec.n_ctx * cols;
        start..start + n_kv * cols
    }

    /// Layer `il`'s keys and values of `seq`, slots `0..n_kv`, as f32.
    pub fn f32s(&self, il: usize, seq: usize, n_kv: usize) -> (Cow<'_, [f32]>, Cow<'_, [f32]>) {
        let (kr, vr) = (self.range(seq, n_kv, self.spec.k_cols), self.range(seq, n_kv, self.spec.v_cols));
        (self.k[il].f32s(kr), self.v[il].f32s(vr))
    }

    /// As [`Self::f32s`], as F16 bits.
    pub fn f16s(&self, il: usize, seq: usize, n_kv: usize) -> (Cow<'_, [u16]>, Cow<'_, [u16]>) {
        let (kr, vr) = (self.range(seq, n_kv, self.spec.k_cols), self.range(seq, n_kv, self.spec.v_cols));
        (self.k[il].f16s(kr), self.v[il].f16s(vr))
    }
}

/// One sequence's slots `0..n_kv` of one layer of a cache.
#[derive(Debug, Clone, Copy)]
pub struct KvView<'k> {
    kv: &'k CpuKv,
    il: usize,
    seq: usize,
    pub n_kv: usize,
}

impl<'k> KvView<'k> {
    pub fn f32s(&self) -> (Cow<'k, [f32]>, Cow<'k, [f32]>) {
        self.kv.f32s(self.il, self.seq, self.n_kv)
    }

    pub fn f16s(&self) -> (Cow<'k, [u16]>, Cow<'k, [u16]>) {
        self.kv.f16s(self.il, self.seq, self.n_kv)
    }
}

/// One sequence's rows in a batch.
#[derive(Debug, Clone)]
pub struct SeqRows {
    pub seq: usize,
    /// Batch rows of this sequence, in batch order.
    pub rows: Vec<usize>,
    /// Their positions.
    pub pos: Vec<u32>,
    /// Slots attention reads: `0..n_kv` (the largest position + 1).
    pub n_kv: usize,
}

/// The batch as the CPU backends keep it: the rows, their groups, and the rows of each sequence.
#[derive(Debug, Clone)]
pub struct CpuBatch {
    pub rows: BatchRows,
    pub groups: RowGroups,
    pub seqs: Vec<SeqRows>,
}

impl CpuBatch {
    pub fn new(rows: &BatchRows) -> Result<Self> {
        rows.check_lengths()?;
        let n = rows.len();
        let mut seqs: Vec<SeqRows> = Vec::new();
        for r in 0..n {
            let (s, p) = (rows.seq[r] as usize, rows.pos[r]);
            let i = match seqs.iter().position(|x| x.seq == s) {
                Some(i) => i,
                None => {
                    seqs.push(SeqRows { seq: s, rows: Vec::new(), pos: Vec::new(), n_kv: 0 });
                    seqs.len() - 1
                }
            };
            let e = &mut seqs[i];
            e.rows.push(r);
            e.pos.push(p);
            e.n_kv = e.n_kv.max(p as usize + 1);
        }
        Ok(CpuBatch { rows: rows.clone(), groups: rows.groups(), seqs })
    }

    /// Check the batch against a cache (sequence ids and positions inside it).
    pub fn check_kv(&self, spec: &KvSpec) -> Result<()> {
        self.rows.check_kv(spec)
    }

    /// Attention split by sequence: for each sequence, `f(seq rows, q rows of that sequence
    /// (row-major, `q_cols` wide), their positions)` returns its output rows (`out_cols` wide),
    /// which are scattered back to the batch rows.
    /// `q` holds one row of `q_cols` per batch row.
    fn check_q(&self, q: &[f32], q_cols: usize) -> Result<()> {
        let n = self.rows.len();
        if q.len() != n * q_cols {
            return Err(Error::Invalid(format!("attention: q has {} values for {n} rows of {q_cols}", q.len())));
        }
        Ok(())
    }

    /// Sequence `s`'s rows of `q`, in its order (an arena buffer).
    fn gather(q: &[f32], q_cols: usize, s: &SeqRows) -> Vec<f32> {
        let mut qs = crate::arena::take(s.rows.len() * q_cols);
        for (i, &r) in s.rows.iter().enumerate() {
            qs[i * q_cols..(i + 1) * q_cols].copy_from_slice(&q[r * q_cols..(r + 1) * q_cols]);
        }
        qs
    }

    /// Sequence `s`'s output rows `o` back to their batch rows of `out`.
    fn scatter(out: &mut [f32], o: &[f32], out_cols: usize, s: &SeqRows) {
        for (i, &r) in s.rows.iter().enumerate() {
            out[r * out_cols..(r + 1) * out_cols].copy_from_slice(&o[i * out_cols..(i + 1) * out_cols]);
        }
    }

    pub fn per_seq(
        &self,
        q: &[f32],
        q_cols: usize,
        out_cols: usize,
        mut f: impl FnMut(&SeqRows, &[f32], &[u32]) -> Result<Vec<f32>>,
    ) -> Result<Vec<f32>> {
        self.check_q(q, q_cols)?;
        // One sequence whose rows are the whole batch in order: no gather, no scatter.
        if let [s] = self.seqs.as_slice() {
            if s.rows.iter().enumerate().all(|(i, &r)| i == r) {
                return f(s, q, &s.pos);
            }
        }
        let mut out = crate::arena::take(self.rows.len() * out_cols);
        for s in &self.seqs {
            let qs = Self::gather(q, q_cols, s);
            let o = f(s, &qs, &s.pos)?;
            Self::scatter(&mut out, &o, out_cols, s);
            crate::arena::give(o);
            crate::arena::give(qs);
        }
        Ok(out)
    }

    /// Attention of `q` (`[rows, q_cols]`) over layer `il` of `kv`, split by sequence: checks
    /// the batch against the cache and every sequence's shapes, then `f(view, q rows of the
    /// sequence, their positions, slot positions 0..n_kv)` computes one sequence's output rows.
    pub fn attend<'k>(
        &self,
        kv: &'k CpuKv,
        il: usize,
        q: &[f32],
        q_cols: usize,
        p: &crate::ops::AttnParams,
        mut f: impl FnMut(KvView<'k>, &[f32], &[u32], &[u32]) -> Vec<f32>,
    ) -> Result<Vec<f32>> {
        self.check_kv(&kv.spec)?;
        let (kc, vc) = (kv.spec.k_cols, kv.spec.v_cols);
        self.per_seq(q, q_cols, p.n_head * p.v_head_dim, |s, qs, q_pos| {
            let n_q = q_pos.len();
            p.check_shapes((n_q, q_cols), (s.n_kv, kc), (s.n_kv, vc), n_q, s.n_kv)?;
            let kv_pos: Vec<u32> = (0..s.n_kv as u32).collect();
            Ok(f(KvView { kv, il, seq: s.seq, n_kv: s.n_kv }, qs, q_pos, &kv_pos))
        })
    }

    /// [`CpuBatch::attend`] with the sequences handed to `par` (a parallel for over `0..n`): a
    /// batch of many one-row sequences (the server's decode step) spreads over the threads
    /// instead of running one small attention after another. Each sequence's rows are computed
    /// by `f` alone, so the result is the same whatever `par` does.
    #[allow(clippy::too_many_arguments)] // `attend`'s six and the parallel for
    pub fn attend_par<'k>(
        &self,
        kv: &'k CpuKv,
        il: usize,
        q: &[f32],
        q_cols: usize,
        p: &crate::ops::AttnParams,
        par: impl Fn(usize, &(dyn Fn(usize) + Sync)),
        f: impl Fn(KvView<'k>, &[f32], &[u32], &[u32]) -> Vec<f32> + Sync,
    ) -> Result<Vec<f32>> {
        if self.seqs.len() < 2 {
            return self.attend(kv, il, q, q_cols, p, f);
        }
        self.check_kv(&kv.spec)?;
        self.check_q(q, q_cols)?;
        let (kc, vc, out_cols) = (kv.spec.k_cols, kv.spec.v_cols, p.n_head * p.v_head_dim);
        let mut qs = Vec::with_capacity(self.seqs.len());
        for s in &self.seqs {
            p.check_shapes((s.rows.len(), q_cols), (s.n_kv, kc), (s.n_kv, vc), s.rows.len(), s.n_kv)?;
            qs.push(Self::gather(q, q_cols, s));
        }
        // The arena is per thread: the output slots are this thread's buffers, and what `f`
        // takes on a helper thread goes back to that thread's arena (warm after one step).
        let slots: Vec<std::sync::Mutex<Vec<f32>>> =
            self.seqs.iter().map(|s| std::sync::Mutex::new(crate::arena::take(s.rows.len() * out_cols))).collect();
        let bad = std::sync::atomic::AtomicBool::new(false);
        par(self.seqs.len(), &|i| {
            let s = &self.seqs[i];
            let kv_pos: Vec<u32> = (0..s.n_kv as u32).collect();
            let o = f(KvView { kv, il, seq: s.seq, n_kv: s.n_kv }, &qs[i], &s.pos, &kv_pos);
            let mut slot = slots[i].lock().unwrap_or_else(|e| e.into_inner());
            if o.len() == slot.len() {
                slot.copy_from_slice(&o);
            } else {
                bad.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            crate::arena::give(o);
        });
        if bad.into_inner() {
            return Err(Error::Invalid("attention: a sequence's output has the wrong size".into()));
        }
        let mut out = crate::arena::take(self.rows.len() * out_cols);
        for ((s, slot), g) in self.seqs.iter().zip(slots).zip(qs) {
            let o = slot.into_inner().unwrap_or_else(|e| e.into_inner());
            Self::scatter(&mut out, &o, out_cols, s);
            crate::arena::give(o);
            crate::arena::give(g);
        }
        Ok(out)
    }

    /// The rows of `x` (`[rows, cols]`, one per batch row) whose logits are wanted: `None` when
    /// all are (the caller keeps `x`).
    pub fn select_outputs(&self, x: &[f32], rows: usize, cols: usize) -> Result<Option<Vec<f32>>> {
        if rows != self.rows.len() {
            return Err(Error::Invalid(format!("output_rows: {rows} rows for a batch of {}", self.rows.len())));
        }
        Ok((!self.all_outputs()).then(|| self.output_rows(x, cols)))
    }

    /// Rows of `x` (`cols` wide, one per batch row) whose logits are wanted.
    pub fn output_rows(&self, x: &[f32], cols: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for (r, &want) in self.rows.logits.iter().enumerate() {
            if want {
                out.extend_from_slice(&x[r * cols..(r + 1) * cols]);
            }
        }
        out
    }

    pub fn all_outputs(&self) -> bool {
        self.rows.logits.iter().all(|&w| w)
    }

    /// The batch's token ids or positions.
    pub fn ids(&self, i: crate::ops::Index) -> &[u32] {
        match i {
            crate::ops::Index::Tokens => &self.rows.tokens,
            crate::ops::Index::Positions => &self.rows.pos,
        }
    }
}

/// Per row, the index of the largest value (first on ties); `NaN` never wins.
pub fn argmax_rows(x: &[f32], cols: usize) -> Vec<u32> {
    x.chunks(cols.max(1)).map(argmax_row).collect()
}

/// Lanes of [`argmax_row`]'s maximum: independent running maxima in vector registers.
const ARGMAX_LANES: usize = 16;

/// [`argmax_ref`] in two vectorizable passes: the largest non-NaN value (`f32::max` ignores
/// NaN), then the first index holding it (`==`: -0 and +0 tie, as the scan's `>` has them).
/// The same index as the sequential scan (tested), without its dependence of every step on
/// the last (a 262,144-wide logits row: decode's argmax). No non-NaN value: index 0, as the
/// scan.
fn argmax_row(row: &[f32]) -> u32 {
    let mut lanes = [f32::NEG_INFINITY; ARGMAX_LANES];
    let whole = row.len() / ARGMAX_LANES * ARGMAX_LANES;
    for chunk in row[..whole].chunks_exact(ARGMAX_LANES) {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v);
        }
    }
    let max = lanes.into_iter().chain(row[whole..].iter().copied()).fold(f32::NEG_INFINITY, f32::max);
    for (c, chunk) in row.chunks(256).enumerate() {
        if chunk.iter().fold(false, |hit, &v| hit | (v == max)) {
            return (c * 256 + chunk.iter().position(|&v| v == max).unwrap_or(0)) as u32;
        }
    }
    0
}

/// Per row, the `k` largest values with their indices, largest first, ties by lower index.
pub fn top_k_rows(x: &[f32], cols: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
    x.chunks(cols.max(1))
        .map(|row| crate::ops::top_k_desc(row, k).into_iter().map(|i| (i as u32, row[i])).collect())
        .collect()
}

/// The sequential scan [`argmax_row`] is held to.
#[cfg(test)]
fn argmax_ref(row: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod argmax_tests {
    use super::*;

    #[test]
    fn lanes_pick_the_sequential_scans_index() {
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, -1.0];
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for n in [0usize, 1, 2, 15, 16, 17, 33, 100, 1000] {
            for _ in 0..300 {
                // Few distinct values: ties, and NaN / ±0 / ±inf in any place.
                let row: Vec<f32> = (0..n).map(|_| specials[next() % specials.len()]).collect();
                assert_eq!(argmax_row(&row), argmax_ref(&row), "{row:?}");
                let row: Vec<f32> = (0..n).map(|_| (next() % 5) as f32).collect();
                assert_eq!(argmax_row(&row), argmax_ref(&row), "{row:?}");
            }
        }
    }
}
