//! The CPU backend: the readable reference implementation of every op.
//!
//! Numerics `exact`: weights are dequantized to f32 at load, activations and the KV cache are f32.
//! Each op is a plain loop over rows; the only parallelism is rayon over output columns of
//! `matmul` and over heads in `attention`, which does not change any result (each output element
//! is computed by exactly the same sequence of operations whatever the thread count).

use rayon::prelude::*;

use crate::gguf::{GgufFile, TensorInfo};
use crate::kv::{argmax_rows, top_k_rows, CpuBatch, CpuKv};
use crate::ops::{
    broadcast_row, check_matmul_id, top_k_desc, Act, AttnParams, BatchRows, Index, KvSpec, KvType, Ops, RopeParams,
    RopeStyle, RowGroups,
};
use crate::{Error, Result};

/// A row-major `[rows, cols]` activation.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTensor {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// A weight, dequantized to f32 (GGUF order: `dims[0]` contiguous).
#[derive(Debug, Clone)]
pub struct CpuWeight {
    pub name: String,
    pub dims: Vec<u64>,
    pub data: Vec<f32>,
}

impl CpuWeight {
    fn ne0(&self) -> usize {
        self.dims.first().copied().unwrap_or(0) as usize
    }
    fn rows(&self) -> usize {
        if self.ne0() == 0 {
            0
        } else {
            self.data.len() / self.ne0()
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Cpu;

fn shape_err(op: &str, msg: String) -> Error {
    Error::Invalid(format!("{op}: {msg}"))
}

/// Dot product with 8 independent accumulators (vectorises; order fixed for a given length).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = 0f32;
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + s
}

fn gelu_tanh(x: f32) -> f32 {
    // ggml's GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))), evaluated in f64 here.
    let x = x as f64;
    let c = (2.0 / std::f64::consts::PI).sqrt();
    (0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())) as f32
}

/// ggml's `swiglu_oai` for one element, in f64.
fn swiglu_oai(g: f32, u: f32, alpha: f32, limit: f32) -> f32 {
    let x = g.min(limit) as f64;
    let y = u.clamp(-limit, limit) as f64;
    (x / (1.0 + (-(alpha as f64) * x).exp()) * (y + 1.0)) as f32
}

fn silu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + (-x).exp())) as f32
}

impl Ops for Cpu {
    type Tensor = CpuTensor;
    type Weight = CpuWeight;
    type Kv = CpuKv;
    type Batch = CpuBatch;
    type Ids = Vec<u32>;

    fn kv_type(&self) -> KvType {
        KvType::F32
    }

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn load_weight(&self, f: &GgufFile, t: &TensorInfo) -> Result<CpuWeight> {
        let mut data = f.tensor_f32(&t.name)?;
        if crate::faults::active(crate::faults::Fault::TransposeWq) && t.name == "blk.0.attn_q.weight" {
            let (c, r) = (t.dims[0] as usize, data.len() / (t.dims[0] as usize).max(1));
            data = (0..r * c).map(|i| data[(i % r) * c + i / r]).collect();
        }
        Ok(CpuWeight { name: t.name.clone(), dims: t.dims.clone(), data })
    }

    fn tensor_from_host(&self, rows: usize, cols: usize, data: &[f32]) -> Result<CpuTensor> {
        if rows * cols != data.len() {
            return Err(Error::Invalid(format!("tensor [{rows}, {cols}] given {} values", data.len())));
        }
        Ok(CpuTensor { rows, cols, data: data.to_vec() })
    }

    fn shape(&self, t: &CpuTensor) -> (usize, usize) {
        (t.rows, t.cols)
    }

    fn to_host(&self, t: &CpuTensor) -> Result<Vec<f32>> {
        Ok(t.data.clone())
    }

    fn reshape(&self, t: CpuTensor, rows: usize, cols: usize) -> Result<CpuTensor> {
        if rows * cols != t.data.len() {
            return Err(shape_err("reshape", format!("[{}, {}] to [{rows}, {cols}]", t.rows, t.cols)));
        }
        Ok(CpuTensor { rows, cols, data: t.data })
    }

    fn weight_dims(&self, w: &CpuWeight) -> Vec<u64> {
        w.dims.clone()
    }

    fn upload_batch(&self, rows: &BatchRows) -> Result<CpuBatch> {
        CpuBatch::new(rows)
    }

    fn batch_groups(&self, b: &CpuBatch) -> RowGroups {
        b.groups.clone()
    }

    fn kv_alloc(&self, spec: &KvSpec) -> Result<CpuKv> {
        CpuKv::alloc(spec)
    }

    fn kv_bytes(&self, kv: &CpuKv) -> usize {
        kv.bytes()
    }

    fn kv_write(&self, kv: &mut CpuKv, il: usize, k: &CpuTensor, v: &CpuTensor, b: &CpuBatch) -> Result<()> {
        b.check_kv(&kv.spec)?;
        kv.write(il, &k.data, &v.data, b)
    }

    fn attention(
        &self,
        q: &CpuTensor,
        kv: &CpuKv,
        il: usize,
        b: &CpuBatch,
        p: &AttnParams,
        sinks: Option<&CpuWeight>,
    ) -> Result<CpuTensor> {
        if let Some(s) = sinks {
            if s.data.len() != p.n_head {
                return Err(shape_err(
                    "attention",
                    format!("{} has {} sinks for {} heads", s.name, s.data.len(), p.n_head),
                ));
            }
        }
        let sk = sinks.map(|s| s.data.as_slice());
        let data = b.attend(kv, il, &q.data, q.cols, p, |view, qs, q_pos, kv_pos| {
            let (k, v) = view.f32s();
            attention_impl(qs, q_pos.len(), &k, &v, view.n_kv, q_pos, kv_pos, p, sk)
        })?;
        Ok(CpuTensor { rows: q.rows, cols: p.n_head * p.v_head_dim, data })
    }

    fn output_rows(&self, x: CpuTensor, b: &CpuBatch) -> Result<CpuTensor> {
        Ok(match b.select_outputs(&x.data, x.rows, x.cols)? {
            Some(data) => CpuTensor { rows: data.len() / x.cols.max(1), cols: x.cols, data },
            None => x,
        })
    }

    fn argmax(&self, x: &CpuTensor) -> Result<Vec<u32>> {
        Ok(argmax_rows(&x.data, x.cols))
    }

    fn top_k(&self, x: &CpuTensor, k: usize) -> Result<Vec<Vec<(u32, f32)>>> {
        Ok(top_k_rows(&x.data, x.cols, k))
    }

    fn act(&self, x: &CpuTensor, act: Act) -> Result<CpuTensor> {
        // act(x) · 1 (exact: multiplying by 1.0 changes nothing).
        let ones = CpuTensor { rows: x.rows, cols: x.cols, data: vec![1.0; x.data.len()] };
        self.glu(x, &ones, act)
    }

    fn get_rows(&self, w: &CpuWeight, b: &CpuBatch, index: Index) -> Result<CpuTensor> {
        let ids = b.ids(index);
        let (cols, n_rows) = (w.ne0(), w.rows());
        let mut data = Vec::with_capacity(ids.len() * cols);
        for &id in ids {
            let id = id as usize;
            if id >= n_rows {
                return Err(shape_err(
                    "get_rows",
                    format!("token id {id} out of range (vocab {n_rows}) in {}", w.name),
                ));
            }
            data.extend_from_slice(&w.data[id * cols..(id + 1) * cols]);
        }
        Ok(CpuTensor { rows: ids.len(), cols, data })
    }

    fn rms_norm(&self, x: &CpuTensor, eps: f32) -> Result<CpuTensor> {
        let mut out = x.clone();
        for row in out.data.chunks_mut(x.cols.max(1)) {
            let ms = row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / row.len() as f64;
            let s = 1.0 / (ms + eps as f64).sqrt();
            for v in row {
                *v = ((*v as f64) * s) as f32;
            }
        }
        Ok(out)
    }

    fn layer_norm(&self, x: &CpuTensor, eps: f32) -> Result<CpuTensor> {
        let mut out = x.clone();
        for row in out.data.chunks_mut(x.cols.max(1)) {
            let n = row.len() as f64;
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let s = 1.0 / (var + eps as f64).sqrt();
            for v in row {
                *v = ((*v as f64 - mean) * s) as f32;
            }
        }
        Ok(out)
    }

    fn mul_row(&self, x: &CpuTensor, w: &CpuWeight) -> Result<CpuTensor> {
        if w.data.len() != x.cols {
            return Err(shape_err("mul_row", format!("{} has {} values, rows have {}", w.name, w.data.len(), x.cols)));
        }
        let mut out = x.clone();
        broadcast_row(&mut out.data, x.cols, &w.data, |v, g| *v *= g);
        Ok(out)
    }

    fn add_row(&self, x: &CpuTensor, b: &CpuWeight) -> Result<CpuTensor> {
        if b.data.len() != x.cols {
            return Err(shape_err("add_row", format!("{} has {} values, rows have {}", b.name, b.data.len(), x.cols)));
        }
        let mut out = x.clone();
        broadcast_row(&mut out.data, x.cols, &b.data, |v, g| *v += g);
        Ok(out)
    }

    fn add(&self, a: &CpuTensor, b: &CpuTensor) -> Result<CpuTensor> {
        if (a.rows, a.cols) != (b.rows, b.cols) {
            return Err(shape_err("add", format!("[{}, {}] + [{}, {}]", a.rows, a.cols, b.rows, b.cols)));
        }
        let data = a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect();
        Ok(CpuTensor { rows: a.rows, cols: a.cols, data })
    }

    fn scale(&self, x: &CpuTensor, s: f32) -> Result<CpuTensor> {
        Ok(CpuTensor { rows: x.rows, cols: x.cols, data: x.data.iter().map(|v| v * s).collect() })
    }

    /// Every output element is one dot product whatever the rows: the groups change nothing.
    fn matmul(&self, x: &CpuTensor, w: &CpuWeight, _g: &RowGroups) -> Result<CpuTensor> {
        let k = w.ne0();
        if k != x.cols {
            return Err(shape_err("matmul", format!("x has {} columns, {} has ne0 = {k}", x.cols, w.name)));
        }
        let m = w.rows();
        let n = x.rows;
        // Column-parallel: each task owns a block of output columns for all rows.
        const BLOCK: usize = 64;
        let mut cols: Vec<(usize, Vec<f32>)> = (0..m.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let j0 = b * BLOCK;
                let j1 = (j0 + BLOCK).min(m);
                let mut out = vec![0f32; n * (j1 - j0)];
                for j in j0..j1 {
                    let wr = &w.data[j * k..(j + 1) * k];
                    for i in 0..n {
                        out[i * (j1 - j0) + (j - j0)] = dot(&x.data[i * k..(i + 1) * k], wr);
                    }
                }
                (j0, out)
            })
            .collect();
        cols.sort_by_key(|c| c.0);
        let mut data = vec![0f32; n * m];
        for (j0, block) in cols {
            let bw = block.len() / n.max(1);
            for i in 0..n {
                data[i * m + j0..i * m + j0 + bw].copy_from_slice(&block[i * bw..(i + 1) * bw]);
            }
        }
        Ok(CpuTensor { rows: n, cols: m, data })
    }

    fn rope(&self, x: &CpuTensor, n_head: usize, head_dim: usize, b: &CpuBatch, p: &RopeParams) -> Result<CpuTensor> {
        let pos = &b.rows.pos[..];
        p.check_shapes((x.rows, x.cols), n_head, head_dim, pos.len())?;
        let half = p.n_rot / 2;
        let mut out = x.clone();
        // YaRN: per-pair blend of interpolated and extrapolated angles, and a magnitude factor.
        let corr = p.yarn.map(|y| y.corr_dims(p.n_rot, p.freq_base));
        let fs = p.freq_scale as f64;
        let mscale = p.mscale_f64();
        for (r, &ps) in pos.iter().enumerate() {
            for h in 0..n_head {
                let base = r * x.cols + h * head_dim;
                for i in 0..half {
                    let mut extrap = ps as f64 * (p.freq_base as f64).powf(-2.0 * i as f64 / p.n_rot as f64);
                    // LongRoPE: the pair's angle divided by its frequency factor (ggml's freq_factors).
                    if let Some(ff) = &p.freq_factors {
                        extrap /= ff[i] as f64;
                    }
                    let theta = match (p.yarn, corr) {
                        (Some(y), Some(c)) if y.ext_factor != 0.0 => {
                            let lo = c[0] as f64;
                            let yv = (i as f64 - lo) / (c[1] as f64 - lo).max(0.001);
                            let ramp = (1.0 - yv.clamp(0.0, 1.0)) * y.ext_factor as f64;
                            fs * extrap * (1.0 - ramp) + extrap * ramp
                        }
                        _ => fs * extrap,
                    };
                    let (s, c) = theta.sin_cos();
                    let (s, c) = (s * mscale, c * mscale);
                    let (a, b) = match p.style {
                        RopeStyle::Normal => (base + 2 * i, base + 2 * i + 1),
                        RopeStyle::Neox => (base + i, base + i + half),
                    };
                    let (x0, x1) = (x.data[a] as f64, x.data[b] as f64);
                    out.data[a] = (x0 * c - x1 * s) as f32;
                    out.data[b] = (x0 * s + x1 * c) as f32;
                }
            }
        }
        Ok(out)
    }

    fn moe_route(&self, logits: &CpuTensor, k: usize) -> Result<(Vec<u32>, CpuTensor)> {
        if k == 0 || k > logits.cols {
            return Err(shape_err("moe_route", format!("{k} of {} experts", logits.cols)));
        }
        let mut ids = Vec::with_capacity(logits.rows * k);
        let mut w = Vec::with_capacity(logits.rows * k);
        for row in logits.data.chunks(logits.cols.max(1)) {
            let top = top_k_desc(row, k);
            // softmax over the chosen logits (f64), the largest first so max = row[top[0]].
            let max = row[top[0]] as f64;
            let e: Vec<f64> = top.iter().map(|&i| (row[i] as f64 - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            ids.extend(top.iter().map(|&i| i as u32));
            w.extend(e.iter().map(|x| (x / sum) as f32));
        }
        Ok((ids, CpuTensor { rows: logits.rows, cols: k, data: w }))
    }

    fn matmul_id(
        &self,
        x: &CpuTensor,
        w: &CpuWeight,
        b: Option<&CpuWeight>,
        ids: &Vec<u32>,
        k: usize,
    ) -> Result<CpuTensor> {
        let (_, m, _, shared) = check_matmul_id(x.rows, x.cols, &w.dims, b.map(|b| b.data.len()), ids, k)?;
        let kin = x.cols;
        let mut data = vec![0f32; ids.len() * m];
        data.par_chunks_mut(m.max(1)).enumerate().for_each(|(r, out)| {
            let e = ids[r] as usize;
            let xr = if shared { r / k } else { r };
            let xr = &x.data[xr * kin..(xr + 1) * kin];
            for (j, o) in out.iter_mut().enumerate() {
                let row = (e * m + j) * kin;
                *o = dot(xr, &w.data[row..row + kin]);
                if let Some(b) = b {
                    *o += b.data[e * m + j];
                }
            }
        });
        Ok(CpuTensor { rows: ids.len(), cols: m, data })
    }

    fn swiglu_oai(&self, gate: &CpuTensor, up: &CpuTensor, alpha: f32, limit: f32) -> Result<CpuTensor> {
        if (gate.rows, gate.cols) != (up.rows, up.cols) {
            return Err(shape_err(
                "swiglu_oai",
                format!("gate [{}, {}], up [{}, {}]", gate.rows, gate.cols, up.rows, up.cols),
            ));
        }
        let data = gate.data.iter().zip(&up.data).map(|(&g, &u)| swiglu_oai(g, u, alpha, limit)).collect();
        Ok(CpuTensor { rows: gate.rows, cols: gate.cols, data })
    }

    fn moe_combine(&self, experts: &CpuTensor, weights: &CpuTensor, k: usize) -> Result<CpuTensor> {
        crate::ops::check_moe_combine((experts.rows, experts.cols), (weights.rows, weights.cols), k)?;
        let e = experts.cols;
        let mut data = vec![0f32; weights.rows * e];
        for (t, out) in data.chunks_mut(e.max(1)).enumerate() {
            for (d, o) in out.iter_mut().enumerate() {
                let mut acc = 0f64;
                for j in 0..k {
                    acc += experts.data[(t * k + j) * e + d] as f64 * weights.data[t * k + j] as f64;
                }
                *o = acc as f32;
            }
        }
        Ok(CpuTensor { rows: weights.rows, cols: e, data })
    }
    fn glu(&self, gate: &CpuTensor, up: &CpuTensor, act: Act) -> Result<CpuTensor> {
        if (gate.rows, gate.cols) != (up.rows, up.cols) {
            return Err(shape_err(
                "glu",
                format!("gate [{}, {}], up [{}, {}]", gate.rows, gate.cols, up.rows, up.cols),
            ));
        }
        let f = match act {
            Act::Silu => silu,
            Act::Gelu => gelu_tanh,
        };
        let data = gate.data.iter().zip(&up.data).map(|(&g, &u)| f(g) * u).collect();
        Ok(CpuTensor { rows: gate.rows, cols: gate.cols, data })
    }

    fn softcap(&self, x: &CpuTensor, cap: f32) -> Result<CpuTensor> {
        let c = cap as f64;
        Ok(CpuTensor {
            rows: x.rows,
            cols: x.cols,
            data: x.data.iter().map(|&v| (c * (v as f64 / c).tanh()) as f32).collect(),
        })
    }

    fn slice_cols(&self, x: &CpuTensor, start: usize, len: usize) -> Result<CpuTensor> {
        if start + len > x.cols {
            return Err(shape_err("slice_cols", format!("[{start}, {}) of {} columns", start + len, x.cols)));
        }
        let mut data = Vec::with_capacity(x.rows * len);
        for r in 0..x.rows {
            data.extend_from_slice(&x.data[r * x.cols + start..r * x.cols + start + len]);
        }
        Ok(CpuTensor { rows: x.rows, cols: len, data })
    }
}

/// Attention (with optional per-head sinks in the softmax denominator), in f64 per score.
/// `q` is `[n_q, n_head·hd]`, `k` / `v` `[n_kv, n_head_kv·hd / vd]` (shapes checked by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_impl(
    q: &[f32],
    n_q: usize,
    k: &[f32],
    v: &[f32],
    n_kv: usize,
    q_pos: &[u32],
    kv_pos: &[u32],
    p: &AttnParams,
    sinks: Option<&[f32]>,
) -> Vec<f32> {
    let (hd, vd) = (p.head_dim, p.v_head_dim);
    let group = p.n_head / p.n_head_kv;
    let (q_cols, k_cols, v_cols) = (p.n_head * hd, p.n_head_kv * hd, p.n_head_kv * vd);
    let heads: Vec<Vec<f32>> = (0..p.n_head)
        .into_par_iter()
        .map(|h| {
            let kh = h / group;
            let mut out = vec![0f32; n_q * vd];
            let mut scores = vec![0f64; n_kv];
            for i in 0..n_q {
                let qi = &q[i * q_cols + h * hd..i * q_cols + (h + 1) * hd];
                let mut max = f64::NEG_INFINITY;
                for j in 0..n_kv {
                    let visible =
                        kv_pos[j] <= q_pos[i] && p.window.is_none_or(|w| ((q_pos[i] - kv_pos[j]) as usize) < w);
                    scores[j] = if visible {
                        let kj = &k[j * k_cols + kh * hd..j * k_cols + (kh + 1) * hd];
                        let mut s = dot(qi, kj) as f64 * p.scale as f64;
                        if let Some(c) = p.softcap {
                            s = c as f64 * (s / c as f64).tanh();
                        }
                        s
                    } else {
                        f64::NEG_INFINITY
                    };
                    max = max.max(scores[j]);
                }
                // A sink joins the max and the denominator, not the weighted sum of values.
                let sink = sinks.map(|s| s[h] as f64);
                if let Some(sk) = sink {
                    max = max.max(sk);
                }
                let mut sum = sink.map_or(0.0, |sk| (sk - max).exp());
                for s in scores.iter_mut() {
                    *s = if s.is_finite() { (*s - max).exp() } else { 0.0 };
                    sum += *s;
                }
                let o = &mut out[i * vd..(i + 1) * vd];
                let mut acc = vec![0f64; vd];
                for (j, &sc) in scores.iter().enumerate() {
                    if sc == 0.0 {
                        continue;
                    }
                    let wgt = sc / sum;
                    let vj = &v[j * v_cols + kh * vd..j * v_cols + (kh + 1) * vd];
                    for (a, &x) in acc.iter_mut().zip(vj) {
                        *a += wgt * x as f64;
                    }
                }
                for (o, a) in o.iter_mut().zip(acc) {
                    *o = a as f32;
                }
            }
            out
        })
        .collect();
    let cols = p.n_head * vd;
    let mut data = vec![0f32; n_q * cols];
    for (h, hv) in heads.iter().enumerate() {
        for i in 0..n_q {
            data[i * cols + h * vd..i * cols + (h + 1) * vd].copy_from_slice(&hv[i * vd..(i + 1) * vd]);
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn t(rows: usize, cols: usize, data: Vec<f32>) -> CpuTensor {
        CpuTensor { rows, cols, data }
    }
    fn w(dims: Vec<u64>, data: Vec<f32>) -> CpuWeight {
        CpuWeight { name: "w".into(), dims, data }
    }
    fn at(pos: &[u32]) -> CpuBatch {
        CpuBatch::new(&crate::ops::rows_at(pos)).unwrap()
    }

    #[test]
    fn matmul_matches_naive() {
        let (n, k, m) = (3, 37, 70);
        let x: Vec<f32> = (0..n * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
        let wd: Vec<f32> = (0..m * k).map(|i| ((i * 11 % 17) as f32 - 8.0) / 9.0).collect();
        let y =
            Cpu.matmul(&t(n, k, x.clone()), &w(vec![k as u64, m as u64], wd.clone()), &RowGroups::single(n)).unwrap();
        for i in 0..n {
            for j in 0..m {
                let e: f64 = (0..k).map(|l| x[i * k + l] as f64 * wd[j * k + l] as f64).sum();
                assert!((y.data[i * m + j] as f64 - e).abs() < 1e-4, "{i} {j}");
            }
        }
    }

    /// `rotated` is the dim that dim 0 rotates into, `still` one that stays 0.
    #[rstest]
    // normal: dims (0,1) rotate together → x1 = sin(1)
    #[case::normal(RopeStyle::Normal, 1, 2)]
    // neox: dims (0,2) rotate together → x2 = sin(1)
    #[case::neox(RopeStyle::Neox, 2, 1)]
    fn rope_pairing_normal_vs_neox(#[case] style: RopeStyle, #[case] rotated: usize, #[case] still: usize) {
        // One head of 4 dims at position 1, base 1: theta_0 = 1 rad, theta_1 = 1 rad^(1/2)... check pairs.
        let x = t(1, 4, vec![1.0, 0.0, 0.0, 0.0]);
        let p = RopeParams { style, n_rot: 4, freq_base: 10000.0, freq_scale: 1.0, yarn: None, freq_factors: None };
        let n = Cpu.rope(&x, 1, 4, &at(&[1]), &p).unwrap();
        assert!((n.data[rotated] - 1f32.sin()).abs() < 1e-6 && n.data[still] == 0.0);
    }

    #[rstest]
    #[case::causal(None, vec![0.0, 0.5, 1.0])]
    #[case::window_1(Some(1), vec![0.0, 1.0, 2.0])]
    fn attention_is_causal_and_windowed(#[case] window: Option<usize>, #[case] want: Vec<f32>) {
        // 1 head, dim 1; values = position; query sees only itself and the past.
        let q = t(3, 1, vec![0.0; 3]);
        let k = t(3, 1, vec![0.0; 3]);
        let v = t(3, 1, vec![0.0, 1.0, 2.0]);
        let p = AttnParams { n_head: 1, n_head_kv: 1, head_dim: 1, v_head_dim: 1, scale: 1.0, window, softcap: None };
        let o = crate::ops::attend_explicit(&Cpu, &q, &k, &v, &[0, 1, 2], &p, None).unwrap();
        assert_eq!(o.data, want);
    }

    #[test]
    fn get_rows_rejects_out_of_range_ids() {
        let mut rows = crate::ops::rows_at(&[0]);
        rows.tokens = vec![3];
        let b = CpuBatch::new(&rows).unwrap();
        assert!(Cpu.get_rows(&w(vec![2, 3], vec![0.0; 6]), &b, Index::Tokens).is_err());
    }
}
