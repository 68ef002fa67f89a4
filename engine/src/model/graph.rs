//! The decoder graph, written once for every architecture against [`Ops`], after llama.cpp's
//! `build_norm` / `build_attn` / `build_ffn`: embeddings → layers (norm, attention block,
//! residual, norm, FFN block, residual) → output head. What differs between architectures is
//! data: the weights' variants ([`super::weights`]) and each layer's [`super::hparams::AttnCfg`].
//!
//! Taps (named op outputs, formatted only when a sink is active): `token_embd`,
//! `blk.N.attn_norm`, `blk.N.attn_out`, `blk.N.ffn_norm`, `blk.N.ffn_moe_logits` (MoE),
//! `blk.N.ffn_out`, `blk.N.l_out`, `result_norm`, `logits`.

use super::weights::{Attn, Embd, Ffn, Layer, Norm, NormKind, Proj, Qkv, Weights};
use super::HParams;
use crate::ops::{Act, Index, Ops, PostNorm, RowGroups, TapSink, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT};
use crate::Result;

/// A block's output: the residual already added (fused, after the block's post-norm where it
/// has one), or not; or (`PostNorm`, the attention block of a layer whose gated FFN takes it)
/// before its post-norm, which the FFN's first op applies with the residual add
/// ([`Ops::norm_add_norm_matmul_glu`]).
enum Residual<T> {
    Added(T),
    Not(T),
    PostNorm(T),
}

/// The residual stream between layers: a tensor, or (a layer with an FFN post-norm, no taps)
/// the FFN's output whose post-norm and residual add are left to the next layer's first op
/// ([`Ops::norm_add_norm_qkv_norm_rope_kv_write`]) or, where it has none that takes them, to
/// [`Fwd::ready`].
pub(crate) enum Stream<'w, T, W> {
    Ready(T),
    PostNorm { f: T, w: &'w W, res: T },
}

/// A q/k/v projection's bias, unless the planted fault drops it.
fn qkv_bias<W>(p: &Proj<W>) -> Option<&W> {
    p.b.as_ref().filter(|_| !crate::faults::active(crate::faults::Fault::DropQkvBias))
}

/// One forward: the backend, the uploaded batch and its row groups, the tap sink.
pub(crate) struct Fwd<'a, B: Ops> {
    pub b: &'a B,
    pub hp: &'a HParams,
    pub batch: &'a B::Batch,
    /// Row groups of the activations (every batch row), then of the output rows.
    pub groups: RowGroups,
    pub out_groups: RowGroups,
    pub taps: &'a mut dyn TapSink,
    /// Set by [`Self::layer`] around its attention block: the output projection leaves its
    /// post-norm and the residual add to the FFN's first op ([`Residual::PostNorm`]).
    pub defer_post_norm: bool,
}

impl<B: Ops> Fwd<'_, B> {
    /// Hand `t` to the sink as `blk.{il}.{what}` (or `what` outside the layers) if it wants it.
    fn tap(&mut self, il: Option<usize>, what: &str, t: &B::Tensor) -> Result<()> {
        if !self.taps.active() {
            return Ok(());
        }
        let name = match il {
            Some(i) => format!("blk.{i}.{what}"),
            None => what.to_string(),
        };
        if self.taps.wants(&name) {
            let (r, c) = self.b.shape(t);
            let host = self.b.to_host(t)?;
            self.taps.tap(&name, r, c, &host);
        }
        Ok(())
    }

    fn mm(&self, x: &B::Tensor, w: &B::Weight) -> Result<B::Tensor> {
        self.b.matmul(x, w, &self.groups)
    }

    fn proj(&self, x: &B::Tensor, p: &Proj<B::Weight>) -> Result<B::Tensor> {
        self.b.matmul_fused(x, &p.w, p.b.as_ref(), None, &self.groups)
    }

    /// `res + proj(x)` in one op (a backend may fuse the residual add into the projection).
    fn proj_res(&self, x: &B::Tensor, p: &Proj<B::Weight>, res: &B::Tensor) -> Result<B::Tensor> {
        self.b.matmul_fused(x, &p.w, p.b.as_ref(), Some(res), &self.groups)
    }

    fn norm(&self, x: &B::Tensor, n: &Norm<B::Weight>) -> Result<B::Tensor> {
        let b = self.b;
        match n.kind {
            NormKind::Rms => b.rms_norm_mul(x, n.eps, &n.w),
            NormKind::Layer => {
                let y = b.mul_row(&b.layer_norm(x, n.eps)?, &n.w)?;
                match &n.b {
                    Some(bias) => b.add_row(&y, bias),
                    None => Ok(y),
                }
            }
        }
    }

    /// RMSNorm with weight `w` (gemma3's post-norms).
    fn rms(&self, x: &B::Tensor, w: &B::Weight) -> Result<B::Tensor> {
        self.b.rms_norm_mul(x, self.hp.rms_eps, w)
    }

    /// RMSNorm of every head of `t` (`[n, heads·head_dim]`) with weight `w` (`[head_dim]`).
    fn head_norm(&self, t: B::Tensor, heads: usize, w: &B::Weight) -> Result<B::Tensor> {
        let (b, hd) = (self.b, self.hp.head_dim);
        let n = b.shape(&t).0;
        let t = b.reshape(t, n * heads, hd)?;
        let t = self.rms(&t, w)?;
        b.reshape(t, n, heads * hd)
    }

    pub fn embed(&mut self, e: &Embd<B::Weight>) -> Result<B::Tensor> {
        let b = self.b;
        let mut x = b.get_rows(&e.tok, self.batch, Index::Tokens)?;
        if let Some(s) = e.scale {
            x = b.scale(&x, s)?;
        }
        if let Some(p) = &e.pos {
            x = b.add(&x, &b.get_rows(p, self.batch, Index::Positions)?)?;
        }
        self.tap(None, "token_embd", &x)?;
        Ok(x)
    }

    /// The stream's tensor: a pending post-norm applied with its residual add.
    pub fn ready(&self, x: Stream<'_, B::Tensor, B::Weight>) -> Result<B::Tensor> {
        match x {
            Stream::Ready(t) => Ok(t),
            Stream::PostNorm { f, w, res } => self.b.rms_norm_mul_add(&f, self.hp.rms_eps, w, &res),
        }
    }

    /// One decoder layer. Without taps, the residual adds ride in the output and down
    /// projections ([`Ops::matmul_fused`]) where no post-norm comes between: the same values,
    /// fewer ops; with taps, `attn_out` and `ffn_out` exist on their own to be tapped. Without
    /// taps, a post-norm after the FFN is left to the next layer ([`Stream::PostNorm`]).
    pub fn layer<'w>(
        &mut self,
        il: usize,
        l: &'w Layer<B::Weight>,
        kv: &mut B::Kv,
        x: Stream<'w, B::Tensor, B::Weight>,
    ) -> Result<Stream<'w, B::Tensor, B::Weight>> {
        let fuse = !self.taps.active();
        // A pending post-norm rides in gemma-3's attention input side where the layer takes it
        // (its q, k, v launches compute the sum themselves); else it is applied first.
        let mut q_pre = None;
        let x = match x {
            Stream::Ready(t) => t,
            Stream::PostNorm { f, w, res } => {
                let pre = PostNorm { x: &f, w, eps: self.hp.rms_eps, res: &res };
                let cfg = self.hp.attn_cfg(il);
                match (&l.attn_norm, &l.attn.qkv, &l.attn.head_norm, &cfg.rope) {
                    (n, Qkv::Separate { q, k, v }, Some(hn), Some(r))
                        if fuse && n.kind == NormKind::Rms && n.b.is_none() =>
                    {
                        let ws = [(&q.w, qkv_bias(q)), (&k.w, qkv_bias(k)), (&v.w, qkv_bias(v))];
                        let hp = self.hp;
                        let heads = (hp.n_head, hp.n_head_kv, hp.head_dim);
                        let hn = (&hn.q, &hn.k, hp.rms_eps);
                        let (b, g, batch) = (self.b, &self.groups, self.batch);
                        let (h, qr) = b.norm_add_norm_qkv_norm_rope_kv_write(
                            &pre,
                            &n.w,
                            n.eps,
                            &ws,
                            g,
                            kv,
                            il,
                            heads,
                            batch,
                            r,
                            hn,
                            cfg.q_scale,
                        )?;
                        q_pre = Some(qr);
                        h
                    }
                    _ => self.b.rms_norm_mul_add(&f, pre.eps, w, &res)?,
                }
            }
        };
        // Without taps the output projection adds the residual itself, after its post-norm
        // where there is one (Ops::matmul_norm_add) — or, before a gated FFN with an RMS norm,
        // leaves the post-norm and the add to the FFN's first op (Ops::norm_add_norm_matmul_glu),
        // which a backend may run in the GLU's launch.
        let res = fuse.then_some(&x);
        self.defer_post_norm = fuse
            && l.attn.post_norm.is_some()
            && matches!((&l.ffn_norm, &l.ffn), (n, Ffn::Gated { .. }) if n.kind == NormKind::Rms && n.b.is_none());
        // Without taps, an RMS norm rides in the projections that read it (Ops::norm_matmuls,
        // Ops::norm_matmul_glu): the same values, no normalized tensor of its own.
        let attn = match (&l.attn_norm, &l.attn.qkv) {
            (n, Qkv::Separate { q, k, v }) if fuse && n.kind == NormKind::Rms && n.b.is_none() => {
                let ws = [(&q.w, qkv_bias(q)), (&k.w, qkv_bias(k)), (&v.w, qkv_bias(v))];
                // RoPE and the KV store ride along too (Ops::norm_qkv_rope_kv_write), and with
                // head norms they and q's pre-scale (Ops::norm_qkv_norm_rope_kv_write; gemma-3).
                let cfg = self.hp.attn_cfg(il);
                if let Some(r) = &cfg.rope {
                    let hp = self.hp;
                    let heads = (hp.n_head, hp.n_head_kv, hp.head_dim);
                    let (b, g, batch) = (self.b, &self.groups, self.batch);
                    match &l.attn.head_norm {
                        None => {
                            let q = b.norm_qkv_rope_kv_write(&x, &n.w, n.eps, &ws, g, kv, il, heads, batch, r)?;
                            self.attend(il, q, &l.attn, kv, res)?
                        }
                        Some(hn) => {
                            let hn = (&hn.q, &hn.k, hp.rms_eps);
                            let q = match q_pre.take() {
                                Some(q) => q,
                                None => b.norm_qkv_norm_rope_kv_write(
                                    &x,
                                    &n.w,
                                    n.eps,
                                    &ws,
                                    g,
                                    kv,
                                    il,
                                    heads,
                                    batch,
                                    r,
                                    hn,
                                    cfg.q_scale,
                                )?,
                            };
                            self.attend_scaled(q, &l.attn, kv, il, res)?
                        }
                    }
                } else {
                    let mut out = self.b.norm_matmuls(&x, &n.w, n.eps, &ws, &self.groups)?.into_iter();
                    match (out.next(), out.next(), out.next()) {
                        (Some(q), Some(k), Some(v)) => self.attention_qkv(il, q, k, v, &l.attn, kv, res)?,
                        _ => return Err(crate::Error::Invalid("norm_matmuls: fewer than three outputs".into())),
                    }
                }
            }
            _ => {
                let cur = self.norm(&x, &l.attn_norm)?;
                self.tap(Some(il), "attn_norm", &cur)?;
                self.attention(il, &cur, &l.attn, kv, res)?
            }
        };
        self.defer_post_norm = false;
        let (ffn_inp, glu) = match attn {
            Residual::Added(t) => (t, None),
            Residual::Not(a) => {
                self.tap(Some(il), "attn_out", &a)?;
                (self.b.add(&x, &a)?, None)
            }
            Residual::PostNorm(o) => match (&l.attn.post_norm, &l.ffn_norm, &l.ffn) {
                (Some(pw), n, Ffn::Gated { gate, up, act, .. }) => {
                    let eps = self.hp.rms_eps;
                    let g = &self.groups;
                    let pre = PostNorm { x: &o, w: pw, eps, res: &x };
                    let (h, y) = self.b.norm_add_norm_matmul_glu(&pre, &n.w, n.eps, gate, up, *act, g)?;
                    (h, Some(y))
                }
                _ => return Err(crate::Error::Invalid("a deferred post-norm without its gated FFN".into())),
            },
        };
        let res = (fuse && l.post_ffn_norm.is_none()).then_some(&ffn_inp);
        let out = match (&l.ffn_norm, &l.ffn) {
            (n, Ffn::Gated { gate, up, down, act }) if fuse && n.kind == NormKind::Rms && n.b.is_none() => {
                let h = match glu {
                    Some(y) => y,
                    None => self.b.norm_matmul_glu(&ffn_inp, &n.w, n.eps, gate, up, *act, &self.groups)?,
                };
                match &l.post_ffn_norm {
                    // The post-norm and the residual add are left to the next layer.
                    Some(_) => Residual::PostNorm(self.b.matmul_fused(&h, down, None, None, &self.groups)?),
                    None => self.down(&h, down, res)?,
                }
            }
            _ => {
                let cur = self.norm(&ffn_inp, &l.ffn_norm)?;
                self.tap(Some(il), "ffn_norm", &cur)?;
                self.ffn(il, &cur, &l.ffn, res)?
            }
        };
        let x = match (out, &l.post_ffn_norm) {
            (Residual::Added(t), _) => t,
            (Residual::PostNorm(f), Some(w)) => return Ok(Stream::PostNorm { f, w, res: ffn_inp }),
            (Residual::PostNorm(_), None) => {
                return Err(crate::Error::Invalid("an FFN block's output deferred without a post-norm".into()))
            }
            // Without taps the post-norm and the residual add are one op.
            (Residual::Not(f), Some(w)) if fuse => self.b.rms_norm_mul_add(&f, self.hp.rms_eps, w, &ffn_inp)?,
            (Residual::Not(f), _) => {
                let f = match &l.post_ffn_norm {
                    Some(w) => self.rms(&f, w)?,
                    None => f,
                };
                self.tap(Some(il), "ffn_out", &f)?;
                self.b.add(&ffn_inp, &f)?
            }
        };
        self.tap(Some(il), "l_out", &x)?;
        Ok(Stream::Ready(x))
    }

    /// Projections, head norms, RoPE, q pre-scale, KV write, attention over the cache, output
    /// projection, post-norm.
    /// With `res` (no post-norm then), the output projection adds it.
    fn attention(
        &mut self,
        il: usize,
        x: &B::Tensor,
        a: &Attn<B::Weight>,
        kv: &mut B::Kv,
        res: Option<&B::Tensor>,
    ) -> Result<Residual<B::Tensor>> {
        let (b, hp) = (self.b, self.hp);
        let (q, k, v) = match &a.qkv {
            Qkv::Separate { q, k, v } => {
                let p = |w: &Proj<B::Weight>| b.matmul_fused(x, &w.w, qkv_bias(w), None, &self.groups);
                (p(q)?, p(k)?, p(v)?)
            }
            Qkv::Fused(w) => {
                let qkv = self.proj(x, w)?;
                let (qw, kw) = (hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim);
                let vw = hp.n_head_kv * hp.v_head_dim;
                (b.slice_cols(&qkv, 0, qw)?, b.slice_cols(&qkv, qw, kw)?, b.slice_cols(&qkv, qw + kw, vw)?)
            }
        };
        self.attention_qkv(il, q, k, v, a, kv, res)
    }

    /// The attention block from its projections on: head norms, RoPE, q pre-scale, KV write,
    /// attention, output projection (with `res`, adding it), post-norm.
    #[allow(clippy::too_many_arguments)]
    fn attention_qkv(
        &mut self,
        il: usize,
        q: B::Tensor,
        k: B::Tensor,
        v: B::Tensor,
        a: &Attn<B::Weight>,
        kv: &mut B::Kv,
        res: Option<&B::Tensor>,
    ) -> Result<Residual<B::Tensor>> {
        let (b, hp) = (self.b, self.hp);
        let cfg = hp.attn_cfg(il);
        // Without taps, head norms, RoPE, the KV store and q's pre-scale are one op.
        if let (Some(n), Some(r), false) = (&a.head_norm, &cfg.rope, self.taps.active()) {
            let heads = (hp.n_head, hp.n_head_kv, hp.head_dim);
            let q =
                b.norm_rope_qk_kv_write(q, k, &v, kv, il, heads, self.batch, r, (&n.q, &n.k, hp.rms_eps), cfg.q_scale)?;
            return self.attend_scaled(q, a, kv, il, res);
        }
        let (q, k) = match &a.head_norm {
            Some(n) => (self.head_norm(q, hp.n_head, &n.q)?, self.head_norm(k, hp.n_head_kv, &n.k)?),
            None => (q, k),
        };
        let q = match &cfg.rope {
            // Without taps the keys go from RoPE straight into the cache (one op).
            Some(r) if !self.taps.active() => {
                b.rope_qk_kv_write(&q, &k, &v, kv, il, hp.n_head, hp.n_head_kv, hp.head_dim, self.batch, r)?
            }
            rope => {
                let (q, k) = match rope {
                    Some(r) => b.rope_qk(&q, &k, hp.n_head, hp.n_head_kv, hp.head_dim, self.batch, r)?,
                    None => (q, k),
                };
                b.kv_write(kv, il, &k, &v, self.batch)?;
                q
            }
        };
        self.attend(il, q, a, kv, res)
    }

    /// The attention block from the rotated queries on (the keys and values in the cache):
    /// q pre-scale, attention, output projection (with `res`, adding it), post-norm.
    fn attend(
        &mut self,
        il: usize,
        q: B::Tensor,
        a: &Attn<B::Weight>,
        kv: &mut B::Kv,
        res: Option<&B::Tensor>,
    ) -> Result<Residual<B::Tensor>> {
        let q = match self.hp.attn_cfg(il).q_scale {
            Some(s) => self.b.scale(&q, s)?,
            None => q,
        };
        self.attend_scaled(q, a, kv, il, res)
    }

    /// [`Self::attend`] from the pre-scaled queries on.
    fn attend_scaled(
        &mut self,
        q: B::Tensor,
        a: &Attn<B::Weight>,
        kv: &mut B::Kv,
        il: usize,
        res: Option<&B::Tensor>,
    ) -> Result<Residual<B::Tensor>> {
        let (b, hp) = (self.b, self.hp);
        let cfg = hp.attn_cfg(il);
        let o = b.attention(&q, kv, il, self.batch, &cfg.params, a.sinks.as_ref())?;
        if let Some(r) = res {
            return Ok(match &a.post_norm {
                Some(_) if self.defer_post_norm => Residual::PostNorm(self.proj(&o, &a.out)?),
                Some(w) => Residual::Added(b.matmul_norm_add(
                    &o,
                    &a.out.w,
                    a.out.b.as_ref(),
                    w,
                    hp.rms_eps,
                    r,
                    &self.groups,
                )?),
                None => Residual::Added(self.proj_res(&o, &a.out, r)?),
            });
        }
        let o = self.proj(&o, &a.out)?;
        Ok(match &a.post_norm {
            Some(w) => Residual::Not(self.rms(&o, w)?),
            None => Residual::Not(o),
        })
    }

    /// The down projection of a gated FFN; with `res`, adding it.
    fn down(&self, h: &B::Tensor, down: &B::Weight, res: Option<&B::Tensor>) -> Result<Residual<B::Tensor>> {
        Ok(match res {
            Some(r) => Residual::Added(self.b.matmul_fused(h, down, None, Some(r), &self.groups)?),
            None => Residual::Not(self.mm(h, down)?),
        })
    }

    /// With `res`, the down projection adds it (MoE adds it afterwards).
    fn ffn(
        &mut self,
        il: usize,
        x: &B::Tensor,
        f: &Ffn<B::Weight>,
        res: Option<&B::Tensor>,
    ) -> Result<Residual<B::Tensor>> {
        let b = self.b;
        match f {
            Ffn::Gated { gate, up, down, act } => {
                let h = b.matmul_glu(x, gate, up, *act, &self.groups)?;
                self.down(&h, down, res)
            }
            Ffn::FusedGateUp { up, down } => {
                let u = self.mm(x, up)?;
                let ff = self.hp.n_ff;
                let h = b.glu(&b.slice_cols(&u, 0, ff)?, &b.slice_cols(&u, ff, ff)?, Act::Silu)?;
                self.down(&h, down, res)
            }
            Ffn::Plain { up, down, act } => {
                let h = b.act(&self.proj(x, up)?, *act)?;
                Ok(match res {
                    Some(r) => Residual::Added(self.proj_res(&h, down, r)?),
                    None => Residual::Not(self.proj(&h, down)?),
                })
            }
            Ffn::Moe { router, gate, up, down, k } => {
                let logits = self.proj(x, router)?;
                self.tap(Some(il), "ffn_moe_logits", &logits)?;
                let (ids, weights) = b.moe_route(&logits, *k)?;
                // gate and up share the normed input; down reads one row per (token, expert).
                let u = b.matmul_id(x, &up.w, up.b.as_ref(), &ids, *k)?;
                let g = b.matmul_id(x, &gate.w, gate.b.as_ref(), &ids, *k)?;
                let h = b.swiglu_oai(&g, &u, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT)?;
                let d = b.matmul_id(&h, &down.w, down.b.as_ref(), &ids, *k)?;
                let y = b.moe_combine(&d, &weights, *k)?;
                Ok(match res {
                    Some(r) => Residual::Added(b.add(r, &y)?),
                    None => Residual::Not(y),
                })
            }
        }
    }

    /// The output head on the rows whose logits are wanted: final norm, output projection,
    /// optional soft-capping.
    pub fn output(&mut self, x: B::Tensor, w: &Weights<B::Weight>) -> Result<B::Tensor> {
        let b = self.b;
        let x = b.output_rows(x, self.batch)?;
        let n = &w.output_norm;
        let mut logits = if !self.taps.active() && n.kind == NormKind::Rms && n.b.is_none() {
            // The norm rides in the head (Ops::norm_matmuls): the same values.
            let mut out = b.norm_matmuls(&x, &n.w, n.eps, &[(w.output(), None)], &self.out_groups)?;
            out.pop().ok_or_else(|| crate::Error::Invalid("norm_matmuls: no output".into()))?
        } else {
            let x = self.norm(&x, n)?;
            self.tap(None, "result_norm", &x)?;
            b.matmul(&x, w.output(), &self.out_groups)?
        };
        if let Some(c) = self.hp.final_softcap {
            logits = b.softcap(&logits, c)?;
        }
        self.tap(None, "logits", &logits)?;
        Ok(logits)
    }
}
