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

use super::{tap, Model};
use crate::ops::{Ops, TapSink, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT};
use crate::Result;

pub(crate) fn forward<B: Ops>(
    m: &mut Model<B>,
    tokens: &[u32],
    pos: &[u32],
    kv_pos: &[u32],
    taps: &mut dyn TapSink,
) -> Result<Vec<f32>> {
    let hp = m.hp.clone();
    let k_used = hp.n_expert_used;
    let mut x = m.backend.get_rows(&m.w.tok_embd, tokens)?;
    tap(&m.backend, taps, "token_embd", &x);
    for il in 0..hp.n_layer {
        let swa = hp.swa_layers.get(il).copied().unwrap_or(false);
        // llama.cpp: SWA layers use rope_freq_base_train_swa (= freq_base unless the file says
        // otherwise) and the same scaling.
        let rope = hp.rope_params_scaled(if swa { hp.rope_base_swa } else { hp.rope_base });
        let (q, k, v) = {
            let (b, l) = (&m.backend, &m.w.layers[il]);
            let cur = b.mul_row(&b.rms_norm(&x, hp.rms_eps), &l.attn_norm)?;
            tap(b, taps, &format!("blk.{il}.attn_norm"), &cur);
            let proj = |w: &B::Weight, bias: &Option<B::Weight>| -> Result<B::Tensor> {
                let y = b.matmul(&cur, w)?;
                match bias {
                    Some(_) if crate::faults::active(crate::faults::Fault::DropQkvBias) => Ok(y),
                    Some(bb) => b.add_row(&y, bb),
                    None => Ok(y),
                }
            };
            let q = b.rope(&proj(Model::<B>::req(&l.wq, "attn_q")?, &l.bq)?, hp.n_head, hp.head_dim, pos, &rope)?;
            let k = b.rope(&proj(Model::<B>::req(&l.wk, "attn_k")?, &l.bk)?, hp.n_head_kv, hp.head_dim, pos, &rope)?;
            let v = proj(Model::<B>::req(&l.wv, "attn_v")?, &l.bv)?;
            (q, k, v)
        };
        m.kv_append(il, &k, &v)?;
        let (kc, vc) = m.kv_get(il)?;
        let (b, l) = (&m.backend, &m.w.layers[il]);
        let attn = hp.attn_params(if swa { hp.sliding_window } else { None });
        let sinks = Model::<B>::req(&l.attn_sinks, "attn_sinks")?;
        let a = b.attention_sinks(&q, kc, vc, pos, kv_pos, &attn, sinks)?;
        let a = b.matmul(&a, &l.wo)?;
        let a = match &l.bo {
            Some(bo) => b.add_row(&a, bo)?,
            None => a,
        };
        tap(b, taps, &format!("blk.{il}.attn_out"), &a);
        let ffn_inp = b.add(&x, &a)?;
        let cur = b.mul_row(&b.rms_norm(&ffn_inp, hp.rms_eps), &l.ffn_norm)?;
        tap(b, taps, &format!("blk.{il}.ffn_norm"), &cur);

        // Router: logits (+ bias), top-k, softmax over the chosen k.
        let logits = b.matmul(&cur, Model::<B>::req(&l.ffn_gate_inp, "ffn_gate_inp")?)?;
        let logits = match &l.ffn_gate_inp_b {
            Some(bb) => b.add_row(&logits, bb)?,
            None => logits,
        };
        tap(b, taps, &format!("blk.{il}.ffn_moe_logits"), &logits);
        let (ids, weights) = b.moe_route(&logits, k_used)?;

        // Experts: gate and up share the normed input; down reads one row per (token, expert).
        let gate_exps = Model::<B>::req(&l.ffn_gate, "ffn_gate_exps")?;
        let up = b.matmul_id(&cur, &l.ffn_up, l.b_up.as_ref(), &ids, k_used)?;
        let gate = b.matmul_id(&cur, gate_exps, l.b_gate.as_ref(), &ids, k_used)?;
        let h = b.swiglu_oai(&gate, &up, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT)?;
        let down = b.matmul_id(&h, &l.ffn_down, l.b_down.as_ref(), &ids, k_used)?;
        let f = b.moe_combine(&down, &weights, k_used)?;
        tap(b, taps, &format!("blk.{il}.ffn_out"), &f);
        x = b.add(&ffn_inp, &f)?;
        tap(b, taps, &format!("blk.{il}.l_out"), &x);
    }
    m.output_head(x, taps)
}
