//! Architecture `llama` (and the llama-shaped `qwen2`, see `qwen2.rs`): pre-norm decoder with
//! RMSNorm, RoPE (normal pairing for llama, NeoX for qwen2), grouped-query attention, SwiGLU FFN,
//! optional q/k/v biases, output tied to the embeddings when `output.weight` is absent.

use super::{tap, Model};
use crate::ops::{Act, Ops, TapSink};
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
    let attn = hp.attn_params(None);
    let mut x = m.backend.get_rows(&m.w.tok_embd, tokens)?;
    tap(&m.backend, taps, "token_embd", &x);
    for il in 0..hp.n_layer {
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
        let a = m.attend(il, (q, k, v), pos, kv_pos, &attn)?;
        let (b, l) = (&m.backend, &m.w.layers[il]);
        let a = b.matmul(&a, &l.wo)?;
        tap(b, taps, &format!("blk.{il}.attn_out"), &a);
        let ffn_inp = b.add(&x, &a)?;
        let cur = b.mul_row(&b.rms_norm(&ffn_inp, hp.rms_eps), &l.ffn_norm)?;
        tap(b, taps, &format!("blk.{il}.ffn_norm"), &cur);
        let gate = Model::<B>::req(&l.ffn_gate, "ffn_gate")?;
        let h = b.glu(&b.matmul(&cur, gate)?, &b.matmul(&cur, &l.ffn_up)?, Act::Silu)?;
        let f = b.matmul(&h, &l.ffn_down)?;
        tap(b, taps, &format!("blk.{il}.ffn_out"), &f);
        x = b.add(&ffn_inp, &f)?;
        tap(b, taps, &format!("blk.{il}.l_out"), &x);
    }
    m.output_head(x, taps)
}
