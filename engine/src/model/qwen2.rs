//! Architecture `qwen2`: the llama graph (`llama.rs`) with q/k/v biases (required), NeoX RoPE
//! pairing (llama.cpp's `LLAMA_ROPE_TYPE_NEOX` for qwen2) and, in the small models, the output
//! tied to the token embeddings. The differences are data (`HParams`, `Arch::rope_style`,
//! `Arch::check_layers`), so the graph itself is shared.

use super::weights::{Bias, Layer, Loader};
use crate::ops::Ops;
use crate::Result;

/// One layer of qwen2: llama's, with the q/k/v biases required.
pub(super) fn layer<B: Ops>(ld: &Loader<'_, B>) -> Result<Layer<B::Weight>> {
    super::llama::layer(ld, Bias::Req)
}
