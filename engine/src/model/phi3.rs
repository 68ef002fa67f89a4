//! Architecture `phi3`: the llama-style decoder with a fused `attn_qkv` (q, k, v side by side in
//! its output), NeoX RoPE, and a fused `ffn_up` of width 2·n_ff whose first half is the gate and
//! second half the up projection (SwiGLU), as llama.cpp's phi3 graph. LongRoPE: the frequency
//! factors `rope_factors_long` / `rope_factors_short` (long when the context exceeds
//! `rope.scaling.original_context_length`, as llama.cpp's `get_rope_factors`) divide each rotated
//! pair's angle, and `rope.scaling.attn_factor` multiplies cos and sin ([`HParams::rope_params`]).
//!
//! [`HParams::rope_params`]: super::HParams::rope_params

use super::weights::{Attn, Bias, Dims, Ffn, Layer, Loader};
use crate::ops::Ops;
use crate::Result;

/// One layer of phi3 (q pre-scaled, see `HParams::attn_cfg`).
pub(super) fn layer<B: Ops>(ld: &Loader<'_, B>) -> Result<Layer<B::Weight>> {
    let d = Dims::of(ld.hp);
    Ok(Layer {
        attn_norm: ld.rms("attn_norm")?,
        attn: Attn {
            qkv: ld.qkv_fused(Bias::No)?,
            head_norm: None,
            out: ld.attn_out(Bias::No)?,
            post_norm: None,
            sinks: None,
        },
        ffn_norm: ld.rms("ffn_norm")?,
        ffn: Ffn::FusedGateUp { up: ld.w("ffn_up", &[d.e, 2 * d.ff])?, down: ld.w("ffn_down", &[d.ff, d.e])? },
        post_ffn_norm: None,
    })
}
