//! Generation: prompt → tokens, one step at a time, with llama.cpp's sampler chain, stop rules and
//! streaming text.
//!
//! Invariants:
//! - Text is released only in whole UTF-8 characters ([`StreamDecoder`]), and a stop string is
//!   never emitted: text that could still become the start of a stop string is held back until it
//!   cannot (it is flushed at the end when generation stops for another reason).
//! - The stop reason is exactly one of EOS (any end-of-generation token of the vocab, not
//!   emitted), STOP_SEQUENCE, MAX_TOKENS, CANCELLED; the seed used is returned.

use crate::model::AnyModel;
use crate::ops::NoTaps;
use crate::sampler::{logprobs, Sampler, SamplerParams, TokenLogprob};
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    StopSequence,
    MaxTokens,
    Cancelled,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "EOS",
            StopReason::StopSequence => "STOP_SEQUENCE",
            StopReason::MaxTokens => "MAX_TOKENS",
            StopReason::Cancelled => "CANCELLED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub max_tokens: usize,
    pub stop: Vec<String>,
    pub sampler: SamplerParams,
    /// Return this many top alternatives with each token's logprob (0 = none).
    pub top_logprobs: usize,
}

/// One generated token, as streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    pub i: usize,
    pub id: u32,
    /// Text released at this step (may be empty: an incomplete character or a possible stop).
    pub text: String,
    /// Log-probability of the token under the unfiltered distribution.
    pub logprob: f32,
    pub top_logprobs: Vec<TokenLogprob>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub stop_reason: StopReason,
    pub tokens_out: usize,
    pub prompt_tokens: usize,
    pub seed: u64,
    /// Text released after the last token (held-back text flushed at the end).
    pub tail_text: String,
    pub decode_seconds: f64,
}

/// Holds back text that may be the start of a stop string.
#[derive(Debug, Default)]
struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// Add text; returns (text safe to emit, whether a stop string was found).
    fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        if let Some(at) = self.stops.iter().filter(|s| !s.is_empty()).filter_map(|s| self.held.find(s.as_str())).min() {
            let out = self.held[..at].to_string();
            self.held.clear();
            return (out, true);
        }
        // Longest suffix of `held` that is a proper prefix of some stop string stays held.
        let mut keep = 0;
        for s in self.stops.iter().filter(|s| !s.is_empty()) {
            for (i, _) in self.held.char_indices() {
                let suffix = &self.held[i..];
                if s.starts_with(suffix) && suffix.len() > keep {
                    keep = suffix.len();
                }
            }
        }
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        (out, false)
    }

    fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Generate from `prompt` (token ids, BOS included if wanted). `on_token` receives every token
/// and returns false to cancel.
pub fn generate(
    model: &mut dyn AnyModel,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenerateParams,
    mut on_token: impl FnMut(&TokenEvent) -> bool,
) -> Result<Summary> {
    if prompt.is_empty() {
        return Err(Error::Invalid("the prompt has no tokens".into()));
    }
    let n_vocab = model.hp().n_vocab;
    let mut sampler = Sampler::new(params.sampler.clone(), n_vocab)?;
    for &t in prompt {
        sampler.accept(t)?;
    }
    model.reset();
    let mut last = model.forward_last(prompt, &mut NoTaps)?;
    let mut decoder = StreamDecoder::new(false);
    let mut stops = StopMatcher { stops: params.stop.clone(), held: String::new() };
    let start = std::time::Instant::now();
    let mut reason = StopReason::MaxTokens;
    let mut n_out = 0;
    while n_out < params.max_tokens {
        let s = sampler.sample(&last)?;
        if tok.is_eog(s.token) {
            reason = StopReason::Eos;
            break;
        }
        sampler.accept(s.token)?;
        let lp = logprobs(&last, s.token, params.top_logprobs)?;
        let piece = decoder.push(tok, s.token)?;
        let (text, stopped) = stops.push(&piece);
        let ev = TokenEvent { i: n_out, id: s.token, text, logprob: lp.token.logprob, top_logprobs: lp.top };
        n_out += 1;
        let go_on = on_token(&ev);
        if stopped {
            reason = StopReason::StopSequence;
            break;
        }
        if !go_on {
            reason = StopReason::Cancelled;
            break;
        }
        if n_out == params.max_tokens {
            break;
        }
        if model.n_past() + 1 > model.n_ctx() {
            return Err(Error::Invalid(format!("context length {} reached", model.n_ctx())));
        }
        last = model.forward(&[s.token], &mut NoTaps)?;
    }
    let tail_text = if reason == StopReason::StopSequence {
        String::new()
    } else {
        let rest = decoder.finish();
        let (t, _) = stops.push(&rest);
        t + &stops.flush()
    };
    Ok(Summary {
        stop_reason: reason,
        tokens_out: n_out,
        prompt_tokens: prompt.len(),
        seed: params.sampler.seed,
        tail_text,
        decode_seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_across_pieces_are_cut_and_held() {
        let mut m = StopMatcher { stops: vec!["</s>".into(), "\n\n".into()], held: String::new() };
        assert_eq!(m.push("Hello <"), ("Hello ".to_string(), false));
        assert_eq!(m.push("/"), (String::new(), false));
        assert_eq!(m.push("x"), ("</x".to_string(), false));
        assert_eq!(m.push(" a\n"), (" a".to_string(), false));
        assert_eq!(m.push("\nrest"), (String::new(), true));
    }

    #[test]
    fn no_stop_strings_release_everything() {
        let mut m = StopMatcher::default();
        assert_eq!(m.push("abc"), ("abc".to_string(), false));
        assert_eq!(m.flush(), "");
    }
}
