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
    /// Text is held back after this token (an incomplete character, or text that may begin a
    /// stop string): if generation ends now, [`Summary::tail_text`] is released text of this
    /// token. A streaming server holds such an event until the next one so the tail joins it
    /// and the tokens' texts always concatenate to the whole text.
    pub held: bool,
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

/// One sequence's generation state: sampler (with its own seed and penalties), streaming text
/// decoder, stop matcher and counters. [`generate`] drives one; the continuous batcher
/// ([`crate::batcher`]) drives many, one per sequence, each from its own rows' logits, so a
/// sequence's tokens never depend on its neighbours.
#[derive(Debug)]
pub struct SeqGen {
    sampler: Sampler,
    decoder: StreamDecoder,
    stops: StopMatcher,
    max_tokens: usize,
    top_logprobs: usize,
    n_out: usize,
    prompt_tokens: usize,
    seed: u64,
}

/// What one step of a [`SeqGen`] produced.
#[derive(Debug, Clone, PartialEq)]
pub enum SeqStep {
    /// A token to stream; `next` is the token to feed back (`None` when generation ended with it:
    /// `stopped` then holds why).
    Token { event: TokenEvent, next: Option<u32>, stopped: Option<StopReason> },
    /// Generation ended without a token (end-of-generation token, or max_tokens already reached).
    Done(StopReason),
}

impl SeqGen {
    /// A generation of `prompt` (its tokens are accepted by the sampler: penalties see them).
    pub fn new(prompt: &[u32], params: &GenerateParams, n_vocab: usize) -> Result<Self> {
        if prompt.is_empty() {
            return Err(Error::Invalid("the prompt has no tokens".into()));
        }
        let mut sampler = Sampler::new(params.sampler.clone(), n_vocab)?;
        for &t in prompt {
            sampler.accept(t)?;
        }
        Ok(SeqGen {
            sampler,
            decoder: StreamDecoder::new(false),
            stops: StopMatcher { stops: params.stop.clone(), held: String::new() },
            max_tokens: params.max_tokens,
            top_logprobs: params.top_logprobs,
            n_out: 0,
            prompt_tokens: prompt.len(),
            seed: params.sampler.seed,
        })
    }

    /// Sample from `logits` (this sequence's last row) and advance. `cancel` asks to stop after
    /// this token (the caller's client went away).
    pub fn step(&mut self, tok: &Tokenizer, logits: &[f32]) -> Result<SeqStep> {
        if self.n_out >= self.max_tokens {
            return Ok(SeqStep::Done(StopReason::MaxTokens));
        }
        let s = self.sampler.sample(logits)?;
        if tok.is_eog(s.token) {
            return Ok(SeqStep::Done(StopReason::Eos));
        }
        self.sampler.accept(s.token)?;
        let lp = logprobs(logits, s.token, self.top_logprobs)?;
        let piece = self.decoder.push(tok, s.token)?;
        let (text, stopped) = self.stops.push(&piece);
        let held = !self.decoder.pending().is_empty() || !self.stops.held.is_empty();
        let event =
            TokenEvent { i: self.n_out, id: s.token, text, logprob: lp.token.logprob, top_logprobs: lp.top, held };
        self.n_out += 1;
        let stopped = if stopped {
            Some(StopReason::StopSequence)
        } else if self.n_out == self.max_tokens {
            Some(StopReason::MaxTokens)
        } else {
            None
        };
        Ok(SeqStep::Token { event, next: stopped.is_none().then_some(s.token), stopped })
    }

    /// Tokens generated so far.
    pub fn tokens_out(&self) -> usize {
        self.n_out
    }

    /// The summary once generation stopped for `reason` (held-back text flushed unless a stop
    /// string ended it).
    pub fn finish(&mut self, reason: StopReason, decode_seconds: f64) -> Summary {
        let tail_text = if reason == StopReason::StopSequence {
            String::new()
        } else {
            let rest = self.decoder.finish();
            let (t, _) = self.stops.push(&rest);
            t + &self.stops.flush()
        };
        Summary {
            stop_reason: reason,
            tokens_out: self.n_out,
            prompt_tokens: self.prompt_tokens,
            seed: self.seed,
            tail_text,
            decode_seconds,
        }
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
    let mut g = SeqGen::new(prompt, params, model.hp().n_vocab)?;
    model.reset();
    let mut last = model.forward_last(prompt, &mut NoTaps)?;
    let start = std::time::Instant::now();
    let reason = loop {
        match g.step(tok, &last)? {
            SeqStep::Done(r) => break r,
            SeqStep::Token { event, next, stopped } => {
                let go_on = on_token(&event);
                // A stop string ends generation even if the client also cancelled; a cancel wins
                // over running out of tokens (the order this function always had).
                if stopped == Some(StopReason::StopSequence) {
                    break StopReason::StopSequence;
                }
                if !go_on {
                    break StopReason::Cancelled;
                }
                if let Some(r) = stopped {
                    break r;
                }
                let Some(t) = next else { break StopReason::MaxTokens };
                if model.n_past() + 1 > model.n_ctx() {
                    return Err(Error::Invalid(format!("context length {} reached", model.n_ctx())));
                }
                last = model.forward(&[t], &mut NoTaps)?;
            }
        }
    };
    Ok(g.finish(reason, start.elapsed().as_secs_f64()))
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
