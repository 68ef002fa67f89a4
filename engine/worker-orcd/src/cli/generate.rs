//! `worker-orcd generate`: sampling from a prompt (or one chat turn), streamed as text or JSON lines.

use std::io::Write;

use super::{default_model, load_model, load_tokenizer, open, stdout_err, GenerateArgs};
use crate::model::AnyModel;
use crate::Result;

pub(super) fn generate(a: &GenerateArgs) -> Result<()> {
    use crate::generate::GenerateParams;
    use crate::sampler::{PenaltyParams, SamplerParams};
    let col = super::column(a.backend, a.numerics);
    let path = match &a.model {
        Some(p) => p.clone(),
        None => default_model()?,
    };
    let f = open(&path)?;
    let tok = load_tokenizer(&f)?;
    let prompt = if a.chat {
        let msgs = [crate::chat::Message::new("user", &a.prompt)];
        crate::chat::chat_prompt(&f, &tok, &msgs, crate::chat::Date::today())
            .map_err(|e| e.context(format!("--chat with {}", path.display())))?
            .1
    } else {
        tok.encode(&a.prompt, true, false)?
    };
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    });
    let sampler = SamplerParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        penalties: PenaltyParams { repeat: a.repeat_penalty, ..PenaltyParams::default() },
        seed,
        ..SamplerParams::default()
    };
    let params =
        GenerateParams { max_tokens: a.max_tokens, stop: a.stop.clone(), sampler, top_logprobs: a.top_logprobs };
    let n_ctx = (prompt.len() + a.max_tokens + 1).max(1);
    let mut m = load_model(col, &f, n_ctx, None)?;
    generate_on(m.as_mut(), &tok, &prompt, &params, a)
}

fn generate_on(
    m: &mut dyn AnyModel,
    tok: &crate::tokenizer::Tokenizer,
    prompt: &[u32],
    params: &crate::generate::GenerateParams,
    a: &GenerateArgs,
) -> Result<()> {
    use crate::generate::generate as run_generate;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut io_err = None;
    let json = a.json;
    let summary = run_generate(m, tok, prompt, params, |ev| {
        let r = if json {
            let mut o = serde_json::json!({"i": ev.i, "id": ev.id, "text": ev.text, "logprob": ev.logprob});
            if a.top_logprobs > 0 {
                o["top_logprobs"] = ev
                    .top_logprobs
                    .iter()
                    .map(|t| serde_json::json!({"id": t.token, "logprob": t.logprob}))
                    .collect::<Vec<_>>()
                    .into();
            }
            writeln!(out, "{o}")
        } else {
            write!(out, "{}", ev.text).and_then(|_| out.flush())
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                io_err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = io_err {
        return Err(stdout_err(e));
    }
    let tok_s = if summary.decode_seconds > 0.0 { summary.tokens_out as f64 / summary.decode_seconds } else { 0.0 };
    if json {
        let mut o = serde_json::json!({
            "stop_reason": summary.stop_reason.as_str(), "tokens_out": summary.tokens_out,
            "prompt_tokens": summary.prompt_tokens, "seed": summary.seed, "decode_tok_s": tok_s,
        });
        if !summary.tail_text.is_empty() {
            o["text"] = summary.tail_text.clone().into();
        }
        writeln!(out, "{o}").map_err(stdout_err)?;
    } else {
        writeln!(out, "{}", summary.tail_text).map_err(stdout_err)?;
        eprintln!(
            "[{}: {} tokens, prompt {}, seed {}, {:.1} tok/s]",
            summary.stop_reason.as_str(),
            summary.tokens_out,
            summary.prompt_tokens,
            summary.seed,
            tok_s
        );
    }
    out.flush().map_err(stdout_err)
}
