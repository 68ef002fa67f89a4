//! Architecture `gemma3`: embeddings scaled by √n_embd; RMSNorm everywhere (the GGUF norm weights
//! already include gemma's +1); per-head RMSNorm of q and k before NeoX RoPE; query scaled by
//! 1/√head_dim before attention, as llama.cpp does; post-attention and post-FFN norms before each residual add; GeGLU (tanh GELU);
//! sliding-window attention on 5 of every 6 layers with RoPE base `rope_base_swa` (10,000), global
//! layers with `rope.freq_base`; optional final logit soft-capping.

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
    let n = tokens.len();
    let emb = m.backend.get_rows(&m.w.tok_embd, tokens)?;
    let mut x = m.backend.scale(&emb, (hp.n_embd as f32).sqrt());
    tap(&m.backend, taps, "token_embd", &x);
    let q_scale = hp.attn_params(None).scale;
    for il in 0..hp.n_layer {
        let swa = hp.swa_layers.get(il).copied().unwrap_or(false);
        let rope = hp.rope_params(if swa { hp.rope_base_swa } else { hp.rope_base });
        let (q, k, v) = {
            let (b, l) = (&m.backend, &m.w.layers[il]);
            let cur = b.mul_row(&b.rms_norm(&x, hp.rms_eps), &l.attn_norm)?;
            tap(b, taps, &format!("blk.{il}.attn_norm"), &cur);
            let head_norm = |t: B::Tensor, heads: usize, w: &Option<B::Weight>| -> Result<B::Tensor> {
                let t = b.reshape(t, n * heads, hp.head_dim)?;
                let t = b.rms_norm(&t, hp.rms_eps);
                let t = match w {
                    Some(w) => b.mul_row(&t, w)?,
                    None => t,
                };
                b.reshape(t, n, heads * hp.head_dim)
            };
            let q = head_norm(b.matmul(&cur, Model::<B>::req(&l.wq, "attn_q")?)?, hp.n_head, &l.q_norm)?;
            let k = head_norm(b.matmul(&cur, Model::<B>::req(&l.wk, "attn_k")?)?, hp.n_head_kv, &l.k_norm)?;
            // q is scaled before attention (which then scales by 1), as llama.cpp's gemma3 graph
            // does: the same product in another f32 rounding order, which the fast path mirrors.
            let q = b.scale(&b.rope(&q, hp.n_head, hp.head_dim, pos, &rope)?, q_scale);
            let k = b.rope(&k, hp.n_head_kv, hp.head_dim, pos, &rope)?;
            let v = b.matmul(&cur, Model::<B>::req(&l.wv, "attn_v")?)?;
            (q, k, v)
        };
        let attn = AttnParams { scale: 1.0, ..hp.attn_params(if swa { hp.sliding_window } else { None }) };
        let a = m.attend(il, (q, k, v), pos, kv_pos, &attn)?;
        let (b, l) = (&m.backend, &m.w.layers[il]);
        let a = b.matmul(&a, &l.wo)?;
        let a = match &l.post_attn_norm {
            Some(w) => b.mul_row(&b.rms_norm(&a, hp.rms_eps), w)?,
            None => a,
        };
        tap(b, taps, &format!("blk.{il}.attn_out"), &a);
        let sa_out = b.add(&x, &a)?;
        let cur = b.mul_row(&b.rms_norm(&sa_out, hp.rms_eps), &l.ffn_norm)?;
        tap(b, taps, &format!("blk.{il}.ffn_norm"), &cur);
        let gate = Model::<B>::req(&l.ffn_gate, "ffn_gate")?;
        let h = b.glu(&b.matmul(&cur, gate)?, &b.matmul(&cur, &l.ffn_up)?, Act::Gelu)?;
        let f = b.matmul(&h, &l.ffn_down)?;
        let f = match &l.post_ffn_norm {
            Some(w) => b.mul_row(&b.rms_norm(&f, hp.rms_eps), w)?,
            None => f,
        };
        tap(b, taps, &format!("blk.{il}.ffn_out"), &f);
        x = b.add(&sa_out, &f)?;
        tap(b, taps, &format!("blk.{il}.l_out"), &x);
    }
    m.output_head(x, taps)
}
