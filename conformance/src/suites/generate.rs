//! Suite `generate`: end-to-end greedy generation against llama.cpp's (issue 4: "`generate` on
//! SmolLM2 with a ChatML prompt produces the same greedy text as llama.cpp").
//!
//! Reference: goldens/recorders/record_generate.py — the chat template rendered by Python jinja2,
//! tokenized and decoded greedily by llama.cpp's default run. The engine takes the same path as
//! `worker-orcd generate --chat --top-k 1` (numerics fast): [`orcd_engine::chat::chat_prompt`]
//! (or plain-text tokenization for a model without a template), then
//! [`orcd_engine::generate::generate`] with the greedy sampler. Checks, in order: the rendered
//! prompt text, the prompt ids, the generated ids up to the reference's first near-tie (a step
//! whose top-1/top-2 margin is below `near_tie` may flip; the threshold's source is in the case
//! file), the stop reason and the streamed text — all exact.

use orcd_engine::chat::{chat_prompt, Date, Message};
use orcd_engine::generate::{generate, GenerateParams, StopReason};
use orcd_engine::model::LoadOpts;
use orcd_engine::sampler::SamplerParams;
use orcd_engine::tokenizer::Tokenizer;
use serde::Deserialize;

use super::gguf::FileRef;
use super::Measured;
use crate::case::{Backend, Outcome};

#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NearTie {
    pub near_tie: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GenerateCase {
    pub name: String,
    #[serde(flatten)]
    pub file: FileRef,
    pub numerics: String,
    /// A chat (rendered with the model's template) or a plain-text prompt.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub chat_date: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    pub prompt_text: String,
    pub prompt_tokens: Vec<u32>,
    pub max_tokens: usize,
    pub greedy: Vec<u32>,
    pub greedy_margins: Vec<f64>,
    pub stop_reason: String,
    pub text: String,
    pub thresholds: NearTie,
}

fn parse_date(s: &str) -> Result<Date, String> {
    let p: Vec<&str> = s.split('-').collect();
    let n = |i: usize| p.get(i).and_then(|x| x.parse::<i64>().ok()).ok_or_else(|| format!("bad chat_date {s:?}"));
    Ok(Date { year: n(0)?, month: n(1)? as u32, day: n(2)? as u32 })
}

pub fn run(case: &GenerateCase, backend: Backend) -> (Outcome, Measured) {
    let mut measured = Measured::default();
    match check(case, backend, &mut measured) {
        Ok(detail) => (Outcome::Pass { detail }, measured),
        Err(message) => (Outcome::Fail { message }, measured),
    }
}

fn check(c: &GenerateCase, backend: Backend, measured: &mut Measured) -> Result<String, String> {
    if c.numerics != "fast" {
        return Err(format!("numerics {:?}: generate cases mirror llama.cpp's default run (fast)", c.numerics));
    }
    let (f, _) = c.file.load()?;
    let tok = Tokenizer::from_gguf(&f).map_err(|e| format!("tokenizer: {e}"))?;
    let (text, ids) = if c.messages.is_empty() {
        let text = c.prompt.clone().ok_or("case has neither messages nor prompt")?;
        let ids = tok.encode(&text, true, false).map_err(|e| format!("tokenize: {e}"))?;
        (text, ids)
    } else {
        let msgs: Vec<Message> = c.messages.iter().map(|m| Message::new(&m.role, &m.content)).collect();
        let date = parse_date(c.chat_date.as_deref().unwrap_or("2026-01-01"))?;
        chat_prompt(&f, &tok, &msgs, date).map_err(|e| format!("chat prompt: {e}"))?
    };
    if text != c.prompt_text {
        return Err(format!("rendered prompt differs\n  engine:    {text:?}\n  reference: {:?}", c.prompt_text));
    }
    if ids != c.prompt_tokens {
        let at =
            ids.iter().zip(&c.prompt_tokens).position(|(a, b)| a != b).unwrap_or(ids.len().min(c.prompt_tokens.len()));
        return Err(format!(
            "prompt ids differ at {at}: engine {:?}, reference {:?}",
            ids.get(at..(at + 4).min(ids.len())),
            c.prompt_tokens.get(at..(at + 4).min(c.prompt_tokens.len()))
        ));
    }
    let n_ctx = ids.len() + c.max_tokens + 1;
    let mut model = backend
        .column()
        .load(&f, &LoadOpts { n_ctx: Some(n_ctx), ..LoadOpts::default() })
        .map_err(|e| format!("loading the model: {e}"))?;
    let params = GenerateParams {
        max_tokens: c.max_tokens,
        stop: Vec::new(),
        sampler: SamplerParams { top_k: 1, seed: 0, ..SamplerParams::default() },
        top_logprobs: 0,
    };
    let (mut got, mut streamed) = (Vec::new(), String::new());
    let summary = generate(model.as_mut(), &tok, &ids, &params, |ev| {
        got.push(ev.id);
        streamed.push_str(&ev.text);
        true
    })
    .map_err(|e| format!("generate: {e}"))?;
    streamed.push_str(&summary.tail_text);

    // Ids up to the first divergence; excused only at a reference near-tie.
    let first_diff = got.iter().zip(&c.greedy).position(|(a, b)| a != b);
    let equal = first_diff.unwrap_or(got.len().min(c.greedy.len()));
    measured.metrics.insert("greedy_steps_equal".into(), equal as f64);
    if let Some(i) = first_diff {
        let margin = c.greedy_margins.get(i).copied().unwrap_or(f64::INFINITY);
        if margin < c.thresholds.near_tie {
            return Ok(format!(
                "{equal}/{} greedy tokens equal, then a reference near-tie at step {i} (margin {margin:.3} < {})",
                c.greedy.len(),
                c.thresholds.near_tie
            ));
        }
        return Err(format!(
            "greedy step {i}: engine {}, reference {} (reference margin {margin:.3} ≥ near_tie {})\n  engine text:    {streamed:?}\n  reference text: {:?}",
            got[i], c.greedy[i], c.thresholds.near_tie, c.text
        ));
    }
    // The engine does not stream the end-of-generation token; the reference lists it.
    let want_ids: &[u32] =
        if c.stop_reason == "EOS" { &c.greedy[..c.greedy.len().saturating_sub(1)] } else { &c.greedy };
    let want_reason = match c.stop_reason.as_str() {
        "EOS" => StopReason::Eos,
        "MAX_TOKENS" => StopReason::MaxTokens,
        other => return Err(format!("unknown stop_reason {other:?} in the case")),
    };
    if got != want_ids || summary.stop_reason != want_reason {
        return Err(format!(
            "engine generated {} tokens ({}), reference {} ({})",
            got.len(),
            summary.stop_reason.as_str(),
            want_ids.len(),
            c.stop_reason
        ));
    }
    if streamed != c.text {
        return Err(format!("streamed text differs\n  engine:    {streamed:?}\n  reference: {:?}", c.text));
    }
    Ok(format!("{} tokens equal ({}), text equal: {:?}", got.len(), c.stop_reason, truncate(&streamed, 60)))
}

/// `s` cut to `n` characters (an ellipsis marks the cut).
pub(crate) fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
