//! Architecture `phi3`: the llama-style decoder with a fused `attn_qkv` (q, k, v side by side in
//! its output), NeoX RoPE, and a fused `ffn_up` of width 2·n_ff whose first half is the gate and
//! second half the up projection (SwiGLU), as llama.cpp's phi3 graph. LongRoPE: the frequency
//! factors `rope_factors_long` / `rope_factors_short` (long when the context exceeds
//! `rope.scaling.original_context_length`, as llama.cpp's `get_rope_factors`) divide each rotated
//! pair's angle, and `rope.scaling.attn_factor` multiplies cos and sin ([`HParams::rope_params`]).
//!
//! [`HParams::rope_params`]: super::HParams::rope_params

use super::{tap, Model};
use crate::ops::{Act, AttnParams, Ops, TapSink};
use crate::Result;

pub(crate) fn forward<B: Ops>(
    m: &mut Model<B>,
    tokens: &[u32],
    pos: &[u32],
    kv_pos: &[u32],
    taps: &mut dyn TapSink,
) -> Result<Vec<f32>> {
    let hp = m.hp.clone();
    let rope = hp.rope_params(hp.rope_base);
    // q is scaled by 1/√head_dim before attention (which then scales by 1), as llama.cpp's phi3
    // graph does: the fast path rounds the scaled q to F16 for the KV product, as llama.cpp.
    let q_scale = hp.attn_params(None).scale;
    let attn = AttnParams { scale: 1.0, ..hp.attn_params(None) };
    let (qw, kw, vw) = (hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim, hp.n_head_kv * hp.v_head_dim);
    let mut x = m.backend.get_rows(&m.w.tok_embd, tokens)?;
    tap(&m.backend, taps, "token_embd", &x);
    for il in 0..hp.n_layer {
        let (q, k, v) = {
            let (b, l) = (&m.backend, &m.w.layers[il]);
            let cur = b.mul_row(&b.rms_norm(&x, hp.rms_eps), &l.attn_norm)?;
            tap(b, taps, &format!("blk.{il}.attn_norm"), &cur);
            let qkv = b.matmul(&cur, Model::<B>::req(&l.wqkv, "attn_qkv")?)?;
            let q = b.scale(&b.rope(&b.slice_cols(&qkv, 0, qw)?, hp.n_head, hp.head_dim, pos, &rope)?, q_scale);
            let k = b.rope(&b.slice_cols(&qkv, qw, kw)?, hp.n_head_kv, hp.head_dim, pos, &rope)?;
            let v = b.slice_cols(&qkv, qw + kw, vw)?;
            (q, k, v)
        };
        let a = m.attend(il, (q, k, v), pos, kv_pos, &attn)?;
        let (b, l) = (&m.backend, &m.w.layers[il]);
        let a = b.matmul(&a, &l.wo)?;
        tap(b, taps, &format!("blk.{il}.attn_out"), &a);
        let ffn_inp = b.add(&x, &a)?;
        let cur = b.mul_row(&b.rms_norm(&ffn_inp, hp.rms_eps), &l.ffn_norm)?;
        tap(b, taps, &format!("blk.{il}.ffn_norm"), &cur);
        let up = b.matmul(&cur, &l.ffn_up)?;
        let h = b.glu(&b.slice_cols(&up, 0, hp.n_ff)?, &b.slice_cols(&up, hp.n_ff, hp.n_ff)?, Act::Silu)?;
        let f = b.matmul(&h, &l.ffn_down)?;
        tap(b, taps, &format!("blk.{il}.ffn_out"), &f);
        x = b.add(&ffn_inp, &f)?;
        tap(b, taps, &format!("blk.{il}.l_out"), &x);
    }
    m.output_head(x, taps)
}
