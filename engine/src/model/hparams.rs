//! Hyper-parameters from GGUF metadata (`<arch>.*` keys, llama.cpp's names and defaults).

use crate::gguf::{GgufFile, GgufValue};
use std::sync::Arc;

use crate::ops::{AttnParams, RopeParams, RopeStyle, Yarn};
use crate::{Error, Result};

/// Supported architectures (`general.architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Gemma3,
    Phi3,
    Gpt2,
    /// `gpt-oss` (llama.cpp's LLM_ARCH_OPENAI_MOE).
    GptOss,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "gemma3" => Arch::Gemma3,
            "phi3" => Arch::Phi3,
            "gpt2" => Arch::Gpt2,
            "gpt-oss" => Arch::GptOss,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma3 => "gemma3",
            Arch::Phi3 => "phi3",
            Arch::Gpt2 => "gpt2",
            Arch::GptOss => "gpt-oss",
        }
    }

    /// RoPE pairing as llama.cpp's `llama_model_rope_type`.
    pub fn rope_style(self) -> RopeStyle {
        let style = match self {
            Arch::Llama | Arch::Gpt2 => RopeStyle::Normal,
            Arch::Qwen2 | Arch::Gemma3 | Arch::Phi3 | Arch::GptOss => RopeStyle::Neox,
        };
        match (style, crate::faults::active(crate::faults::Fault::RopePairing)) {
            (RopeStyle::Normal, true) => RopeStyle::Neox,
            (RopeStyle::Neox, true) => RopeStyle::Normal,
            (s, false) => s,
        }
    }
}

/// One layer's attention configuration ([`HParams::attn_cfg`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AttnCfg {
    /// RoPE on q and k; `None`: no rotary embedding (gpt2).
    pub rope: Option<RopeParams>,
    /// q multiplied by this after RoPE (the attention's own scale is then 1).
    pub q_scale: Option<f32>,
    pub params: AttnParams,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HParams {
    pub arch: Arch,
    pub n_vocab: usize,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub v_head_dim: usize,
    pub n_rot: usize,
    pub rope_base: f32,
    /// RoPE base of sliding-window layers (gemma3: 10,000 unless the file says otherwise).
    pub rope_base_swa: f32,
    pub rms_eps: f32,
    pub n_ctx_train: usize,
    /// Sliding window and the layers it applies to.
    pub sliding_window: Option<usize>,
    pub swa_layers: Vec<bool>,
    pub final_softcap: Option<f32>,
    /// LayerNorm epsilon (gpt2).
    pub ln_eps: f32,
    pub attn_softcap: Option<f32>,
    /// MoE (gpt-oss): experts per layer, experts used per token (0 and 0 for dense models).
    pub n_expert: usize,
    pub n_expert_used: usize,
    /// RoPE position scaling (`1 / rope.scaling.factor`; 1 when absent or type `none`).
    pub rope_freq_scale: f32,
    /// YaRN (rope.scaling.type `yarn`), as llama.cpp's context derives it.
    pub yarn: Option<Yarn>,
    /// `rope.scaling.attn_factor` (1 when absent): llama.cpp multiplies cos and sin by it (through
    /// `yarn_attn_factor`) whatever the scaling type; YaRN's `attn_factor` already includes it.
    pub rope_attn_factor: f32,
    /// `rope.scaling.original_context_length` (the training context when absent): llama.cpp's
    /// `n_ctx_orig_yarn`, which picks phi3's long or short LongRoPE factors.
    pub n_ctx_orig: usize,
    /// The LongRoPE frequency factors this context uses (phi3's `rope_factors_long` or
    /// `rope_factors_short`, `[n_rot / 2]`), chosen and loaded by `Model::load`; `None` otherwise.
    pub rope_factors: Option<Arc<[f32]>>,
}

impl HParams {
    /// Attention parameters shared by every architecture: scale 1/√head_dim (gemma3's
    /// `query_pre_attn_scalar` equals head_dim in the supported sizes), the attention soft-cap if
    /// the file has one, and the given sliding window.
    pub fn attn_params(&self, window: Option<usize>) -> AttnParams {
        AttnParams {
            n_head: self.n_head,
            n_head_kv: self.n_head_kv,
            head_dim: self.head_dim,
            v_head_dim: self.v_head_dim,
            scale: 1.0 / (self.head_dim as f32).sqrt(),
            window,
            softcap: self.attn_softcap,
        }
    }

    /// RoPE with this architecture's pairing and rotated dims, at `freq_base`.
    /// With the LongRoPE factors if loaded, and `rope.scaling.attn_factor` on cos and sin when it is
    /// not 1 (as ggml's rope_yarn with `ext_factor` 0: no blend, magnitude `attn_factor`).
    pub fn rope_params(&self, freq_base: f32) -> RopeParams {
        let yarn = (self.rope_attn_factor != 1.0).then_some(Yarn {
            ext_factor: 0.0,
            attn_factor: self.rope_attn_factor,
            beta_fast: 32.0,
            beta_slow: 1.0,
            n_ctx_orig: self.n_ctx_orig,
        });
        RopeParams {
            style: self.arch.rope_style(),
            n_rot: self.n_rot,
            freq_base,
            freq_scale: 1.0,
            yarn,
            freq_factors: self.rope_factors.clone(),
        }
    }

    /// What layer `il`'s attention does in this architecture: RoPE (none for gpt2; gemma3's and
    /// gpt-oss's sliding-window layers at `rope_base_swa`; gpt-oss with the file's scaling), the
    /// window, and whether q is pre-scaled by 1/√head_dim before attention (gemma3, phi3, as
    /// llama.cpp's graphs: the same product in another f32 rounding order, which the fast path
    /// mirrors) with the attention then scaling by 1.
    pub fn attn_cfg(&self, il: usize) -> AttnCfg {
        let swa = self.swa_layers.get(il).copied().unwrap_or(false);
        let (window, base) = if swa { (self.sliding_window, self.rope_base_swa) } else { (None, self.rope_base) };
        let plain = self.attn_params(None);
        let pre_scaled = AttnParams { scale: 1.0, ..plain };
        match self.arch {
            Arch::Llama | Arch::Qwen2 => {
                AttnCfg { rope: Some(self.rope_params(self.rope_base)), q_scale: None, params: plain }
            }
            Arch::Gemma3 => AttnCfg {
                rope: Some(self.rope_params(base)),
                q_scale: Some(plain.scale),
                params: AttnParams { window, ..pre_scaled },
            },
            Arch::Phi3 => {
                AttnCfg { rope: Some(self.rope_params(self.rope_base)), q_scale: Some(plain.scale), params: pre_scaled }
            }
            Arch::Gpt2 => AttnCfg { rope: None, q_scale: None, params: plain },
            // llama.cpp: SWA layers use rope_freq_base_train_swa (= freq_base unless the file
            // says otherwise) and the same scaling.
            Arch::GptOss => {
                AttnCfg { rope: Some(self.rope_params_scaled(base)), q_scale: None, params: self.attn_params(window) }
            }
        }
    }

    /// RoPE with this file's scaling (linear factor and YaRN), at `freq_base` (gpt-oss).
    pub fn rope_params_scaled(&self, freq_base: f32) -> RopeParams {
        let p = self.rope_params(freq_base);
        RopeParams { freq_scale: self.rope_freq_scale, yarn: self.yarn.or(p.yarn), ..p }
    }

    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch_name = f.get_str("general.architecture")?;
        let arch = Arch::from_name(arch_name).ok_or_else(|| {
            Error::Invalid(format!(
                "architecture {arch_name:?} is not supported (llama, qwen2, phi3, gemma3, gpt2, gpt-oss)"
            ))
        })?;
        let k = |s: &str| format!("{arch_name}.{s}");
        let u = |s: &str| -> Result<usize> { Ok(f.get_u64(&k(s))? as usize) };
        let u_or = |s: &str, d: usize| -> Result<usize> {
            match f.get(&k(s)) {
                None => Ok(d),
                Some(_) => u(s),
            }
        };
        let f32_or = |s: &str, d: f32| -> Result<f32> {
            match f.get(&k(s)) {
                None => Ok(d),
                Some(_) => Ok(f.get_f32(&k(s))?),
            }
        };
        let n_layer = u("block_count")?;
        let n_embd = u("embedding_length")?;
        let n_head = u("attention.head_count")?;
        let n_head_kv = u_or("attention.head_count_kv", n_head)?;
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 || n_layer == 0 || n_layer > 4096 {
            return Err(Error::Invalid(format!(
                "{n_layer} layers, {n_head} heads, {n_head_kv} kv heads: not a valid shape"
            )));
        }
        let head_dim = u_or("attention.key_length", n_embd / n_head)?;
        let v_head_dim = u_or("attention.value_length", head_dim)?;
        let n_vocab = match f.get(&k("vocab_size")) {
            Some(_) => u("vocab_size")?,
            None => f.tensor("token_embd.weight")?.dims.get(1).copied().unwrap_or(0) as usize,
        };
        let sliding_window = match f.get(&k("attention.sliding_window")) {
            Some(_) => Some(u("attention.sliding_window")?).filter(|&w| w > 0),
            None => None,
        };
        // gemma3: every 6th layer is global, the others use the window (llama.cpp's swa pattern);
        // gpt-oss: pattern 2, i.e. even layers use the window, odd ones are dense
        // (`set_swa_pattern(n, dense_first = false)`: swa when il % n < n - 1), unless the file
        // stores `attention.sliding_window_pattern` (a per-layer bool array or the period).
        let pattern = match (arch, f.get(&k("attention.sliding_window_pattern"))) {
            (Arch::Gemma3 | Arch::GptOss, Some(GgufValue::Array(_, items))) => {
                if items.len() != n_layer {
                    return Err(Error::Invalid(format!(
                        "attention.sliding_window_pattern has {} entries for {n_layer} layers",
                        items.len()
                    )));
                }
                Some(items.iter().map(|v| matches!(v, GgufValue::Bool(true))).collect::<Vec<bool>>())
            }
            (Arch::Gemma3 | Arch::GptOss, Some(_)) => {
                let n = u("attention.sliding_window_pattern")?;
                Some((0..n_layer).map(|il| n == 0 || il % n < n - 1).collect())
            }
            _ => None,
        };
        let period = match arch {
            Arch::Gemma3 => 6,
            Arch::GptOss => 2,
            _ => 0,
        };
        let swa_layers = match pattern {
            Some(p) => p.into_iter().map(|s| s && sliding_window.is_some()).collect(),
            None => (0..n_layer).map(|il| sliding_window.is_some() && period > 0 && il % period < period - 1).collect(),
        };
        let n_ctx_train = u_or("context_length", 2048)?;
        // RoPE scaling (llama_model::load_hparams + llama_context's constructor): the type defaults
        // to linear; freq_scale = 1/factor; YaRN sets ext_factor 1, beta_fast 32, beta_slow 1,
        // and attn_factor = mscale(factor) / (1 + 0.1 ln factor) · rope.scaling.attn_factor, with
        // mscale(s) = 0.1 ln s + 1 for s > 1 (ggml multiplies by 1 + 0.1 ln factor again).
        let scaling = match f.get(&k("rope.scaling.type")) {
            Some(_) => f.get_str(&k("rope.scaling.type"))?.to_string(),
            None => "linear".to_string(),
        };
        let factor = f32_or("rope.scaling.factor", 0.0)?;
        let rope_freq_scale = if factor == 0.0 || scaling == "none" { 1.0 } else { 1.0 / factor };
        if !rope_freq_scale.is_finite() || rope_freq_scale <= 0.0 {
            return Err(Error::Invalid(format!("rope.scaling.factor {factor} is not a valid scale")));
        }
        let yarn = match scaling.as_str() {
            "yarn" => {
                let fct = 1.0 / rope_freq_scale;
                let mscale = if fct <= 1.0 { 1.0 } else { 0.1 * fct.ln() + 1.0 };
                let attn_factor = mscale * (1.0 / (1.0 + 0.1 * fct.ln())) * f32_or("rope.scaling.attn_factor", 1.0)?;
                Some(Yarn {
                    ext_factor: 1.0,
                    attn_factor,
                    beta_fast: 32.0,
                    beta_slow: 1.0,
                    n_ctx_orig: u_or("rope.scaling.original_context_length", n_ctx_train)?,
                })
            }
            "none" | "linear" => None,
            other => {
                if arch == Arch::GptOss {
                    return Err(Error::Invalid(format!("rope.scaling.type {other:?} is not supported for gpt-oss")));
                }
                None
            }
        };
        let rope_attn_factor = f32_or("rope.scaling.attn_factor", 1.0)?;
        if !rope_attn_factor.is_finite() {
            return Err(Error::Invalid(format!("rope.scaling.attn_factor {rope_attn_factor} is not finite")));
        }
        let n_ctx_orig = u_or("rope.scaling.original_context_length", n_ctx_train)?;
        let (n_expert, n_expert_used) = (u_or("expert_count", 0)?, u_or("expert_used_count", 0)?);
        if arch == Arch::GptOss && (n_expert == 0 || n_expert_used == 0 || n_expert_used > n_expert || n_expert > 4096)
        {
            return Err(Error::Invalid(format!("{n_expert_used} of {n_expert} experts: not a valid MoE shape")));
        }
        let rope_base = f32_or("rope.freq_base", 10000.0)?;
        // The SWA layers' base: gemma3 defaults to 10,000; gpt-oss to the global base
        // (llama.cpp's load_arch_hparams for each).
        let rope_base_swa = f32_or("rope.freq_base_swa", if arch == Arch::GptOss { rope_base } else { 10000.0 })?;
        let n_ff = if arch == Arch::GptOss { u("expert_feed_forward_length")? } else { u("feed_forward_length")? };
        let mut rms_eps = f32_or("attention.layer_norm_rms_epsilon", 1e-5)?;
        if crate::faults::active(crate::faults::Fault::NormEps) {
            rms_eps = 1e-2;
        }
        let softcap = |s: &str| -> Result<Option<f32>> { Ok(Some(f32_or(s, 0.0)?).filter(|&c| c != 0.0)) };
        Ok(HParams {
            arch,
            n_vocab,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            v_head_dim,
            n_rot: u_or("rope.dimension_count", head_dim)?,
            rope_base,
            rope_base_swa,
            rms_eps,
            n_ctx_train,
            sliding_window,
            swa_layers,
            final_softcap: softcap("final_logit_softcapping")?,
            ln_eps: f32_or("attention.layer_norm_epsilon", 1e-5)?,
            attn_softcap: softcap("attn_logit_softcapping")?,
            n_expert,
            n_expert_used,
            rope_freq_scale,
            yarn,
            rope_attn_factor,
            n_ctx_orig,
            rope_factors: None,
        })
    }
}
