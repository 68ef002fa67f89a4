//! Architecture `gemma3`: embeddings scaled by √n_embd; RMSNorm everywhere (the GGUF norm weights
//! already include gemma's +1); per-head RMSNorm of q and k before NeoX RoPE; query scaled by
//! 1/√head_dim before attention, as llama.cpp does; post-attention and post-FFN norms before each residual add; GeGLU (tanh GELU);
//! sliding-window attention on 5 of every 6 layers with RoPE base `rope_base_swa` (10,000), global
//! layers with `rope.freq_base`; optional final logit soft-capping.

use super::weights::{Attn, Bias, HeadNorm, Layer, Loader};
use crate::ops::{Act, Ops};
use crate::Result;

/// One layer of gemma3 (the layer's window and RoPE base come from `HParams::attn_cfg`).
pub(super) fn layer<B: Ops>(ld: &Loader<'_, B>) -> Result<Layer<B::Weight>> {
    let hd = ld.hp.head_dim as u64;
    Ok(Layer {
        attn_norm: ld.rms("attn_norm")?,
        attn: Attn {
            qkv: ld.qkv_separate(Bias::No)?,
            head_norm: Some(HeadNorm { q: ld.w("attn_q_norm", &[hd])?, k: ld.w("attn_k_norm", &[hd])? }),
            out: ld.attn_out(Bias::No)?,
            post_norm: Some(ld.w("post_attention_norm", &[ld.hp.n_embd as u64])?),
            sinks: None,
        },
        ffn_norm: ld.rms("ffn_norm")?,
        ffn: ld.ffn_gated(Act::Gelu)?,
        post_ffn_norm: Some(ld.w("post_ffw_norm", &[ld.hp.n_embd as u64])?),
    })
}
