//! Architecture `gpt2`: learned absolute positions added to the token embeddings, LayerNorm with
//! weight and bias, fused `attn_qkv` with bias, no RoPE, attention and FFN output biases, GELU
//! (tanh) MLP without a gate, final LayerNorm with bias.

use super::{tap, Model};
use crate::ops::{Act, Ops, TapSink};
use crate::Result;

fn layer_norm<B: Ops>(b: &B, x: &B::Tensor, w: &B::Weight, bias: &Option<B::Weight>, eps: f32) -> Result<B::Tensor> {
    let y = b.mul_row(&b.layer_norm(x, eps), w)?;
    match bias {
        Some(bb) => b.add_row(&y, bb),
        None => Ok(y),
    }
}

fn with_bias<B: Ops>(b: &B, y: B::Tensor, bias: &Option<B::Weight>) -> Result<B::Tensor> {
    match bias {
        Some(bb) => b.add_row(&y, bb),
        None => Ok(y),
    }
}

pub(crate) fn forward<B: Ops>(
    m: &mut Model<B>,
    tokens: &[u32],
    pos: &[u32],
    kv_pos: &[u32],
    taps: &mut dyn TapSink,
) -> Result<Vec<f32>> {
    let hp = m.hp.clone();
    let attn = hp.attn_params(None);
    let (qw, kw, vw) = (hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim, hp.n_head_kv * hp.v_head_dim);
    let mut x = {
        let b = &m.backend;
        let tok = b.get_rows(&m.w.tok_embd, tokens)?;
        let p = b.get_rows(Model::<B>::req(&m.w.pos_embd, "position_embd")?, pos)?;
        b.add(&tok, &p)?
    };
    tap(&m.backend, taps, "token_embd", &x);
    for il in 0..hp.n_layer {
        let (q, k, v) = {
            let (b, l) = (&m.backend, &m.w.layers[il]);
            let cur = layer_norm(b, &x, &l.attn_norm, &l.attn_norm_b, hp.ln_eps)?;
            tap(b, taps, &format!("blk.{il}.attn_norm"), &cur);
            let qkv = with_bias(b, b.matmul(&cur, Model::<B>::req(&l.wqkv, "attn_qkv")?)?, &l.bqkv)?;
            (b.slice_cols(&qkv, 0, qw)?, b.slice_cols(&qkv, qw, kw)?, b.slice_cols(&qkv, qw + kw, vw)?)
        };
        let a = m.attend(il, (q, k, v), pos, kv_pos, &attn)?;
        let (b, l) = (&m.backend, &m.w.layers[il]);
        let a = with_bias(b, b.matmul(&a, &l.wo)?, &l.bo)?;
        tap(b, taps, &format!("blk.{il}.attn_out"), &a);
        let ffn_inp = b.add(&x, &a)?;
        let cur = layer_norm(b, &ffn_inp, &l.ffn_norm, &l.ffn_norm_b, hp.ln_eps)?;
        tap(b, taps, &format!("blk.{il}.ffn_norm"), &cur);
        let h = b.act(&with_bias(b, b.matmul(&cur, &l.ffn_up)?, &l.b_up)?, Act::Gelu)?;
        let f = with_bias(b, b.matmul(&h, &l.ffn_down)?, &l.b_down)?;
        tap(b, taps, &format!("blk.{il}.ffn_out"), &f);
        x = b.add(&ffn_inp, &f)?;
        tap(b, taps, &format!("blk.{il}.l_out"), &x);
    }
    m.output_head(x, taps)
}
