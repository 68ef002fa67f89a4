//! Architecture `llama` (and the llama-shaped `qwen2`, see `qwen2.rs`): pre-norm decoder with
//! RMSNorm, RoPE (normal pairing for llama, NeoX for qwen2), grouped-query attention, SwiGLU FFN,
//! optional q/k/v biases, output tied to the embeddings when `output.weight` is absent.

use super::weights::{Bias, Layer, Loader};
use crate::ops::{Act, Ops};
use crate::Result;

/// One layer of llama (q/k/v biases used where the file has them); qwen2 requires them.
pub(super) fn layer<B: Ops>(ld: &Loader<'_, B>, qkv_bias: Bias) -> Result<Layer<B::Weight>> {
    Ok(Layer {
        attn_norm: ld.rms("attn_norm")?,
        attn: super::weights::Attn {
            qkv: ld.qkv_separate(qkv_bias)?,
            head_norm: None,
            out: ld.attn_out(Bias::No)?,
            post_norm: None,
            sinks: None,
        },
        ffn_norm: ld.rms("ffn_norm")?,
        ffn: ld.ffn_gated(Act::Silu)?,
        post_ffn_norm: None,
    })
}
