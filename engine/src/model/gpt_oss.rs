//! Architecture `gpt-oss` (llama.cpp's `LLM_ARCH_OPENAI_MOE`, src/models/openai-moe.cpp):
//! pre-norm decoder with RMSNorm; q/k/v projections with optional biases, NeoX RoPE with YaRN
//! (`rope.scaling.*`), grouped-query attention with scale 1/√head_dim and one learned sink logit
//! per head in each softmax; sliding-window attention on the even layers (pattern 2), dense on
//! the odd ones; `attn_output` with bias; then `post_attention_norm` (the FFN's pre-norm) and a
//! mixture of experts: router `ffn_gate_inp` (+ bias) → top-k experts → softmax over the k chosen
//! logits (SOFTMAX_WEIGHT gating) → per expert `ffn_gate_exps`/`ffn_up_exps` (+ biases, MXFP4 in
//! real files) → clamped SwiGLU (alpha 1.702, limit 7, `up + 1`) → `ffn_down_exps` (+ bias) →
//! weighted sum; final RMSNorm and an untied `output`.
//!
//! Taps: as every architecture, plus `blk.N.ffn_moe_logits` (the router's biased logits), and
//! `blk.N.ffn_norm` is the output of `post_attention_norm`.

use super::weights::{Attn, Bias, Dims, Ffn, Layer, Loader};
use crate::ops::Ops;
use crate::Result;

/// One layer of gpt-oss (the layer's window and RoPE come from `HParams::attn_cfg`).
pub(super) fn layer<B: Ops>(ld: &Loader<'_, B>) -> Result<Layer<B::Weight>> {
    let d = Dims::of(ld.hp);
    let x = ld.hp.n_expert as u64;
    Ok(Layer {
        attn_norm: ld.rms("attn_norm")?,
        attn: Attn {
            qkv: ld.qkv_separate(Bias::Opt)?,
            head_norm: None,
            out: ld.attn_out(Bias::Req)?,
            post_norm: None,
            sinks: Some(ld.w("attn_sinks", &[ld.hp.n_head as u64])?),
        },
        ffn_norm: ld.rms("post_attention_norm")?,
        ffn: Ffn::Moe {
            router: ld.proj("ffn_gate_inp", &[d.e, x], Bias::Req)?,
            gate: ld.proj("ffn_gate_exps", &[d.e, d.ff, x], Bias::Req)?,
            up: ld.proj("ffn_up_exps", &[d.e, d.ff, x], Bias::Req)?,
            down: ld.proj("ffn_down_exps", &[d.ff, d.e, x], Bias::Req)?,
            k: ld.hp.n_expert_used,
        },
        post_ffn_norm: None,
    })
}
