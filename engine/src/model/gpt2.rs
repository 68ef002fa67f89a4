//! Architecture `gpt2`: learned absolute positions added to the token embeddings, LayerNorm with
//! weight and bias, fused `attn_qkv` with bias, no RoPE, attention and FFN output biases, GELU
//! (tanh) MLP without a gate, final LayerNorm with bias.

use super::weights::{Attn, Bias, Dims, Ffn, Layer, Loader};
use crate::ops::{Act, Ops};
use crate::Result;

/// One layer of gpt2.
pub(super) fn layer<B: Ops>(ld: &Loader<'_, B>) -> Result<Layer<B::Weight>> {
    let d = Dims::of(ld.hp);
    Ok(Layer {
        attn_norm: ld.layer_norm("attn_norm")?,
        attn: Attn {
            qkv: ld.qkv_fused(Bias::Req)?,
            head_norm: None,
            out: ld.attn_out(Bias::Opt)?,
            post_norm: None,
            sinks: None,
        },
        ffn_norm: ld.layer_norm("ffn_norm")?,
        ffn: Ffn::Plain {
            up: ld.proj("ffn_up", &[d.e, d.ff], Bias::Opt)?,
            down: ld.proj("ffn_down", &[d.ff, d.e], Bias::Opt)?,
            act: Act::Gelu,
        },
        post_ffn_norm: None,
    })
}
