//! The OpenAI-compatible API: `POST /v1/completions`, `POST /v1/chat/completions` (the model's
//! own chat template, rendered by the renderer `generate --chat` uses), `GET /v1/models`, and
//! vLLM's `POST /tokenize` / `POST /detokenize`.
//!
//! Invariants:
//! - Errors use OpenAI's envelope `{"error": {message, type, param, code}}`, inside a stream too
//!   (as one `data:` event, then `data: [DONE]`).
//! - A stream has one id across its chunks; the role only in the first delta; `finish_reason`
//!   (`stop` or `length`, as it happened) in the last choice chunk; a usage chunk with
//!   `choices: []` only when `stream_options.include_usage` is true (and then every other chunk
//!   has `usage: null`, as OpenAI defines it); then `data: [DONE]`.
//! - With logprobs, the tokens' strings concatenate to the text, and every logprob is ≤ 0 (they
//!   are log-softmax values of the unfiltered distribution).
//! - A prompt that cannot fit the context is always a 400 giving both token counts.

// Handlers return an early `Response` as the error of a `Result` (axum's idiom); it is 128 bytes,
// moved once per request.
#![allow(clippy::result_large_err)]

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use orcd_engine::chat::{chat_prompt, Date, Message};
use orcd_engine::generate::{GenerateParams, StopReason, TokenEvent};
use orcd_engine::sampler::{PenaltyParams, SamplerParams};

use crate::engine::{Done, Out, Reject, Submit};
use crate::http::{
    json_response, new_id, read_body, sse, submit, unix_now, AppState, EventStream, StreamFmt, SubmitError,
};
use crate::state::Loaded;
use crate::validate::{FieldError, Fields};
use crate::worker_api::dead_sender;

const MAX_TOP_LOGPROBS: i64 = 20;
const MAX_STOPS: usize = 4;
const MAX_STOP_CHARS: usize = 256;

/// OpenAI's error envelope.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    json_response(status, &error_json(message, kind, param, code))
}

fn error_json(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

fn bad_request(e: &FieldError) -> Response {
    let code = (e.constraint == "context_length").then_some("context_length_exceeded");
    error_response(StatusCode::BAD_REQUEST, &e.message, "invalid_request_error", Some(&e.field), code)
}

/// 503 while loading, after a failed load or while draining.
fn ready(s: &AppState) -> Result<&Loaded, Response> {
    if s.draining() {
        return Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
            "service_unavailable",
            None,
            None,
        ));
    }
    match (s.loaded(), s.failed()) {
        (Some(l), _) => Ok(l),
        (None, Some(m)) => Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            m,
            "service_unavailable",
            None,
            Some("MODEL_LOAD_FAILED"),
        )),
        (None, None) => Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is still loading",
            "service_unavailable",
            None,
            None,
        )),
    }
}

async fn body_fields(req: Request) -> Result<Fields, Response> {
    let bytes = read_body(req).await.map_err(|_| {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body must be at most {} bytes", crate::http::MAX_BODY),
            "invalid_request_error",
            None,
            None,
        )
    })?;
    Fields::parse(&bytes).map_err(|e| bad_request(&e))
}

/// The 400 for a body that failed validation (its first bad field).
fn invalid(f: &Fields) -> Response {
    match f.errors.first() {
        Some(e) => bad_request(e),
        None => error_response(StatusCode::BAD_REQUEST, "invalid request", "invalid_request_error", None, None),
    }
}

fn first_error(f: &Fields) -> Result<(), Response> {
    match f.errors.first() {
        Some(e) => Err(bad_request(e)),
        None => Ok(()),
    }
}

pub(crate) async fn models(State(s): State<AppState>) -> Response {
    let l = match ready(&s) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let created = unix_now().saturating_sub(s.started.elapsed().as_secs());
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": [{
            "id": l.info.id, "object": "model", "created": created, "owned_by": "worker-orcd",
            "root": l.info.id, "max_model_len": l.info.n_ctx,
        }]}),
    )
}

/// What a completion request asks, validated.
struct Sampling {
    params: GenerateParams,
    /// `None`: until the context is full.
    max_tokens: Option<usize>,
    stream: bool,
    include_usage: bool,
    /// Logprobs asked (with this many alternatives).
    logprobs: Option<usize>,
    /// llama.cpp's and vLLM's `ignore_eos`: end-of-generation tokens are never sampled (a bias of
    /// -inf, as llama-server sets it), so only `max_tokens` or a stop string ends the request.
    ignore_eos: bool,
}

/// The sampling fields both endpoints share (OpenAI's defaults: temperature 1, top_p 1; top_k,
/// min_p and penalties off).
fn sampling(f: &mut Fields, chat: bool) -> Sampling {
    let max_tokens = if chat {
        f.int("max_completion_tokens", 1, i64::MAX).or_else(|| f.int("max_tokens", 1, i64::MAX))
    } else {
        Some(f.int("max_tokens", 1, i64::MAX).unwrap_or(16))
    };
    let temperature = f.num("temperature", 0.0, 2.0, false).unwrap_or(1.0);
    let top_p = f.num("top_p", 0.0, 1.0, false).unwrap_or(1.0);
    // vLLM's -1 means off, as 0 does here.
    let top_k = f.int("top_k", -1, i64::MAX).unwrap_or(0).max(0);
    let min_p = f.num("min_p", 0.0, 1.0, false).unwrap_or(0.0);
    let repeat = f.num("repetition_penalty", 0.0, f64::INFINITY, true).unwrap_or(1.0);
    let frequency = f.num("frequency_penalty", -2.0, 2.0, false).unwrap_or(0.0);
    let presence = f.num("presence_penalty", -2.0, 2.0, false).unwrap_or(0.0);
    let stop = f.stop("stop", MAX_STOPS, MAX_STOP_CHARS);
    let seed = f.seed("seed").unwrap_or_else(|| crate::http::random_u128() as u64);
    let stream = f.boolean("stream").unwrap_or(false);
    let ignore_eos = f.boolean("ignore_eos").unwrap_or(false);
    let mut include_usage = false;
    if let Some(o) = f.value("stream_options").cloned() {
        if !stream {
            f.err("stream_options", "unsupported", "stream_options is only allowed when stream is true");
        }
        match o.get("include_usage").filter(|v| !v.is_null()) {
            None => {}
            Some(Value::Bool(b)) => include_usage = *b,
            Some(_) => f.err("stream_options.include_usage", "type", "include_usage must be true or false"),
        }
    }
    if let Some(n) = f.int("n", 1, i64::MAX) {
        if n != 1 {
            f.err("n", "unsupported", "only n = 1 is supported");
        }
    }
    let logprobs = if chat {
        let on = f.boolean("logprobs").unwrap_or(false);
        let top = f.int("top_logprobs", 0, MAX_TOP_LOGPROBS);
        if top.is_some() && !on {
            f.err("top_logprobs", "unsupported", "top_logprobs needs logprobs: true");
        }
        on.then(|| top.unwrap_or(0) as usize)
    } else {
        f.int("logprobs", 0, MAX_TOP_LOGPROBS).map(|n| n as usize)
    };
    let sampler = SamplerParams {
        temperature,
        top_k: usize::try_from(top_k).unwrap_or(usize::MAX),
        top_p,
        min_p,
        penalties: PenaltyParams { repeat, frequency, presence, ..PenaltyParams::default() },
        seed,
        ..SamplerParams::default()
    };
    Sampling {
        params: GenerateParams { max_tokens: 0, stop, sampler, top_logprobs: logprobs.unwrap_or(0) },
        max_tokens: max_tokens.map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
        stream,
        include_usage,
        logprobs,
        ignore_eos,
    }
}

/// `ignore_eos`'s logit biases: -inf on every end-of-generation token of the vocabulary.
fn eog_bias(tok: &orcd_engine::tokenizer::Tokenizer) -> impl Iterator<Item = (u32, f32)> + '_ {
    tok.eog_ids().iter().map(|&id| (id, f32::NEG_INFINITY))
}

/// A completion prompt: a string, one string in an array, token ids, or one array of ids.
fn completion_prompt(f: &mut Fields, l: &Loaded) -> Option<Vec<u32>> {
    let Some(v) = f.value("prompt").cloned() else {
        f.err("prompt", "required", "prompt is required");
        return None;
    };
    let one = match &v {
        Value::Array(a) if a.len() == 1 && (a[0].is_string() || a[0].is_array()) => a[0].clone(),
        Value::Array(a) if a.first().is_some_and(|x| x.is_string() || x.is_array()) => {
            f.err("prompt", "unsupported", "one prompt per request (an array of one string or of token ids)");
            return None;
        }
        _ => v,
    };
    match one {
        Value::String(s) if !s.is_empty() => match l.tok.encode(&s, true, false) {
            Ok(ids) => Some(ids),
            Err(e) => {
                f.err("prompt", "type", format!("cannot tokenize the prompt: {e}"));
                None
            }
        },
        Value::Array(ids) if !ids.is_empty() => token_ids(f, "prompt", &ids, l),
        _ => {
            f.err("prompt", "type", "prompt must be a non-empty string or array of token ids");
            None
        }
    }
}

fn token_ids(f: &mut Fields, field: &str, ids: &[Value], l: &Loaded) -> Option<Vec<u32>> {
    let n = l.info.vocab_size.min(l.info.n_vocab) as u64;
    let out: Option<Vec<u32>> =
        ids.iter().map(|v| v.as_u64().filter(|&i| i < n).and_then(|i| u32::try_from(i).ok())).collect();
    if out.is_none() {
        f.err(field, "range", format!("{field} must hold token ids in [0, {n})"));
    }
    out
}

/// Chat messages: `[{role, content}]`, content a string or an array of `{type: "text", text}`.
fn messages(f: &mut Fields) -> Option<Vec<Message>> {
    let Some(Value::Array(list)) = f.value("messages").cloned() else {
        let c = if f.has("messages") { "type" } else { "required" };
        f.err("messages", c, "messages must be a non-empty array of {role, content}");
        return None;
    };
    if list.is_empty() {
        f.err("messages", "length", "messages must not be empty");
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).filter(|r| !r.is_empty());
        let content = match m.get("content") {
            None | Some(Value::Null) => Some(String::new()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(parts)) => parts
                .iter()
                .map(|p| match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => Some(t),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|v| v.concat()),
            Some(_) => None,
        };
        match (role, content) {
            (Some(r), Some(c)) => out.push(Message::new(r, &c)),
            (None, _) => {
                f.err(&format!("messages[{i}].role"), "required", "each message needs a non-empty role");
                return None;
            }
            (_, None) => {
                f.err(&format!("messages[{i}].content"), "type", "content must be a string or an array of text parts");
                return None;
            }
        }
    }
    Some(out)
}

fn render_chat(f: &mut Fields, l: &Loaded, msgs: &[Message]) -> Option<Vec<u32>> {
    match chat_prompt(&l.file, &l.tok, msgs, Date::today()) {
        Ok((_, ids)) => Some(ids),
        Err(e) => {
            f.err("messages", "unsupported", format!("cannot apply the model's chat template: {e}"));
            None
        }
    }
}

fn context_error(prompt_tokens: usize, n_ctx: usize, field: &str) -> Response {
    bad_request(&FieldError::new(
        field,
        "context_length",
        format!(
            "This model's maximum context length is {n_ctx} tokens. However, your prompt has {prompt_tokens} tokens \
             (the prompt and at least one generated token must fit)."
        ),
    ))
}

pub(crate) async fn completions(State(s): State<AppState>, req: Request) -> Response {
    complete(s, req, false).await
}

pub(crate) async fn chat_completions(State(s): State<AppState>, req: Request) -> Response {
    complete(s, req, true).await
}

async fn complete(s: AppState, req: Request, chat: bool) -> Response {
    let l = match ready(&s) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut f = match body_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut sm = sampling(&mut f, chat);
    if !chat && f.boolean("echo") == Some(true) {
        f.err("echo", "unsupported", "echo is not supported");
    }
    if let Err(r) = first_error(&f) {
        return r;
    }
    let prompt =
        if chat { messages(&mut f).and_then(|m| render_chat(&mut f, l, &m)) } else { completion_prompt(&mut f, l) };
    let field = if chat { "messages" } else { "prompt" };
    let Some(prompt) = prompt else {
        return invalid(&f);
    };
    let n_ctx = l.info.n_ctx;
    if prompt.len() >= n_ctx {
        return context_error(prompt.len(), n_ctx, field);
    }
    let room = n_ctx - prompt.len();
    sm.params.max_tokens = sm.max_tokens.unwrap_or(room).min(room);
    if sm.ignore_eos {
        sm.params.sampler.logit_bias.extend(eog_bias(&l.tok));
    }
    let prompt_tokens = prompt.len();
    let sub = Submit { prompt, params: sm.params.clone(), job_id: None, events: dead_sender() };
    let mut events = match submit(&s, sub).await {
        Ok(e) => e,
        Err(e) => return submit_error(e, field),
    };
    let meta = Meta {
        id: new_id(if chat { "chatcmpl-" } else { "cmpl-" }),
        created: unix_now(),
        model: l.info.id.clone(),
        chat,
        logprobs: sm.logprobs,
        tok: l.tok.clone(),
    };
    if sm.stream {
        return EventStream::response(
            events,
            OpenAiStream { meta, include_usage: sm.include_usage, role_sent: false, prompt_tokens },
        );
    }
    // Not streamed: collect. Dropping this future (client gone) drops the receiver, which cancels.
    let mut tokens: Vec<TokenEvent> = Vec::new();
    let done = loop {
        match events.rx.recv().await {
            Some(Out::Token(t)) => tokens.push(t),
            Some(Out::Done(d)) => break d,
            Some(Out::Error { code, message }) => return engine_error(code, &message),
            Some(_) => {}
            None => return engine_error("INTERNAL", "the engine dropped the request"),
        }
    };
    let mut text: String = tokens.iter().map(|t| t.text.as_str()).collect();
    text.push_str(&done.summary.tail_text);
    let lp = meta.logprobs.map(|_| meta.logprobs_json(&tokens, &done.summary.tail_text, 0));
    let finish = finish_reason(&done);
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": lp, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": text, "logprobs": lp, "finish_reason": finish})
    };
    json_response(
        StatusCode::OK,
        &json!({
            "id": meta.id, "object": if chat { "chat.completion" } else { "text_completion" },
            "created": meta.created, "model": meta.model, "choices": [choice],
            "usage": usage(&done),
        }),
    )
}

fn usage(d: &Done) -> Value {
    let (p, c) = (d.summary.prompt_tokens, d.summary.tokens_out);
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
        "prompt_tokens_details": {"cached_tokens": d.cached_tokens}})
}

fn finish_reason(d: &Done) -> &'static str {
    match d.summary.stop_reason {
        StopReason::MaxTokens => "length",
        StopReason::Eos | StopReason::StopSequence | StopReason::Cancelled => "stop",
    }
}

fn engine_error(code: &str, message: &str) -> Response {
    let (status, kind) = match code {
        "INFERENCE_TIMEOUT" => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    error_response(status, message, kind, None, Some(code))
}

fn submit_error(e: SubmitError, field: &str) -> Response {
    match e {
        SubmitError::Rejected(Reject::QueueFull { waiting }) => {
            let mut r = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("the queue is full ({waiting} waiting); retry later"),
                "rate_limit_error",
                None,
                Some("QUEUE_FULL"),
            );
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        SubmitError::Rejected(Reject::TooLong { prompt_tokens, n_ctx }) => context_error(prompt_tokens, n_ctx, field),
        SubmitError::Rejected(Reject::DuplicateJob) | SubmitError::Rejected(Reject::Invalid(_)) => {
            let msg = match e {
                SubmitError::Rejected(Reject::Invalid(m)) => m,
                _ => "duplicate request".into(),
            };
            error_response(StatusCode::BAD_REQUEST, &msg, "invalid_request_error", None, None)
        }
        SubmitError::Gone => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is not running",
            "service_unavailable",
            None,
            None,
        ),
    }
}

/// What every chunk of one response repeats.
struct Meta {
    id: String,
    created: u64,
    model: String,
    chat: bool,
    logprobs: Option<usize>,
    tok: std::sync::Arc<orcd_engine::tokenizer::Tokenizer>,
}

impl Meta {
    fn piece(&self, id: u32) -> (String, Vec<u8>) {
        let b = self.tok.token_to_piece(id).map(<[u8]>::to_vec).unwrap_or_default();
        (String::from_utf8_lossy(&b).into_owned(), b)
    }

    /// Logprobs of `tokens`, the tail joined to the last token's string so the strings
    /// concatenate to the text. `offset`: characters of text before these tokens (completions'
    /// `text_offset`).
    fn logprobs_json(&self, tokens: &[TokenEvent], tail: &str, offset: usize) -> Value {
        let n = tokens.len();
        let text_of = |i: usize, t: &TokenEvent| -> String {
            if i + 1 == n {
                format!("{}{tail}", t.text)
            } else {
                t.text.clone()
            }
        };
        if self.chat {
            let content: Vec<Value> = tokens
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let s = text_of(i, t);
                    let top: Vec<Value> = t
                        .top_logprobs
                        .iter()
                        .map(|a| {
                            let (p, b) = self.piece(a.token);
                            json!({"token": p, "logprob": a.logprob, "bytes": b})
                        })
                        .collect();
                    json!({"token": s, "logprob": t.logprob, "bytes": s.as_bytes(), "top_logprobs": top})
                })
                .collect();
            json!({"content": content})
        } else {
            let mut off = offset;
            let mut strs = Vec::new();
            let mut offsets = Vec::new();
            for (i, t) in tokens.iter().enumerate() {
                let s = text_of(i, t);
                offsets.push(off);
                off += s.chars().count();
                strs.push(s);
            }
            let top: Vec<Value> = tokens
                .iter()
                .map(|t| {
                    let mut m = serde_json::Map::new();
                    for a in &t.top_logprobs {
                        m.entry(self.piece(a.token).0).or_insert(json!(a.logprob));
                    }
                    Value::Object(m)
                })
                .collect();
            let lps: Vec<f32> = tokens.iter().map(|t| t.logprob).collect();
            json!({"tokens": strs, "token_logprobs": lps, "top_logprobs": top, "text_offset": offsets})
        }
    }
}

struct OpenAiStream {
    meta: Meta,
    include_usage: bool,
    role_sent: bool,
    prompt_tokens: usize,
}

impl OpenAiStream {
    fn chunk(&self, choices: Value) -> String {
        let m = &self.meta;
        let mut v = json!({
            "id": m.id, "object": if m.chat { "chat.completion.chunk" } else { "text_completion" },
            "created": m.created, "model": m.model, "choices": choices,
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        sse(None, &v.to_string())
    }

    fn choice(&mut self, text: Option<&str>, logprobs: Value, finish: Option<&str>) -> Value {
        if self.meta.chat {
            let mut delta = serde_json::Map::new();
            if !self.role_sent {
                delta.insert("role".into(), json!("assistant"));
                self.role_sent = true;
            }
            if let Some(t) = text {
                delta.insert("content".into(), json!(t));
            }
            json!([{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}])
        } else {
            json!([{"index": 0, "text": text.unwrap_or(""), "logprobs": logprobs, "finish_reason": finish}])
        }
    }

    fn error(&self, code: &str, message: &str) -> String {
        let kind = if code == "INFERENCE_TIMEOUT" { "timeout" } else { "server_error" };
        let mut out = sse(None, &error_json(message, kind, None, Some(code)).to_string());
        out.push_str(&sse(None, "[DONE]"));
        out
    }
}

impl StreamFmt for OpenAiStream {
    fn event(&mut self, ev: Out) -> (String, bool) {
        match ev {
            Out::Started { .. } if self.meta.chat && !self.role_sent => {
                let c = self.choice(Some(""), Value::Null, None);
                (self.chunk(c), false)
            }
            Out::Token(t) => {
                if t.text.is_empty() && self.meta.logprobs.is_none() {
                    return (String::new(), false);
                }
                let lp = match self.meta.logprobs {
                    Some(_) => self.meta.logprobs_json(std::slice::from_ref(&t), "", 0),
                    None => Value::Null,
                };
                let c = self.choice(Some(&t.text), lp, None);
                (self.chunk(c), false)
            }
            Out::Done(d) => {
                let mut out = String::new();
                let tail = d.summary.tail_text.as_str();
                if !tail.is_empty() {
                    let c = self.choice(Some(tail), Value::Null, None);
                    out.push_str(&self.chunk(c));
                }
                let c = if self.meta.chat {
                    json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(&d)}])
                } else {
                    json!([{"index": 0, "text": "", "logprobs": null, "finish_reason": finish_reason(&d)}])
                };
                out.push_str(&self.chunk(c));
                if self.include_usage {
                    let m = &self.meta;
                    let v = json!({
                        "id": m.id, "object": if m.chat { "chat.completion.chunk" } else { "text_completion" },
                        "created": m.created, "model": m.model, "choices": [], "usage": usage(&d),
                    });
                    out.push_str(&sse(None, &v.to_string()));
                }
                debug_assert_eq!(d.summary.prompt_tokens, self.prompt_tokens);
                out.push_str(&sse(None, "[DONE]"));
                (out, true)
            }
            Out::Error { code, message } => (self.error(code, &message), true),
            _ => (String::new(), false),
        }
    }

    fn closed(&mut self) -> String {
        self.error("INTERNAL", "the engine dropped the request")
    }
}

pub(crate) async fn tokenize(State(s): State<AppState>, req: Request) -> Response {
    let l = match ready(&s) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut f = match body_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let add_special = f.boolean("add_special_tokens").unwrap_or(true);
    let strs = f.boolean("return_token_strs").unwrap_or(false);
    let ids = if f.has("messages") {
        messages(&mut f).and_then(|m| render_chat(&mut f, l, &m))
    } else {
        match f.string("prompt", true, 0, usize::MAX) {
            Some(p) => match l.tok.encode(&p, add_special, false) {
                Ok(ids) => Some(ids),
                Err(e) => {
                    f.err("prompt", "type", format!("cannot tokenize: {e}"));
                    None
                }
            },
            None => None,
        }
    };
    let Some(ids) = ids else {
        return invalid(&f);
    };
    let meta_strs: Option<Vec<String>> = strs.then(|| {
        ids.iter().map(|&i| String::from_utf8_lossy(l.tok.token_to_piece(i).unwrap_or_default()).into_owned()).collect()
    });
    json_response(
        StatusCode::OK,
        &json!({"count": ids.len(), "max_model_len": l.info.n_ctx, "tokens": ids, "token_strs": meta_strs}),
    )
}

pub(crate) async fn detokenize(State(s): State<AppState>, req: Request) -> Response {
    let l = match ready(&s) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut f = match body_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ids = match f.value("tokens").cloned() {
        Some(Value::Array(a)) => token_ids(&mut f, "tokens", &a, l),
        Some(_) => {
            f.err("tokens", "type", "tokens must be an array of token ids");
            None
        }
        None => {
            f.err("tokens", "required", "tokens is required");
            None
        }
    };
    let Some(ids) = ids else { return invalid(&f) };
    match l.tok.decode(&ids) {
        Ok(b) => json_response(StatusCode::OK, &json!({"prompt": String::from_utf8_lossy(&b)})),
        Err(e) => {
            error_response(StatusCode::BAD_REQUEST, &e.to_string(), "invalid_request_error", Some("tokens"), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ignore_eos`: with every end-of-generation token at the top of the logits, greedy and
    /// sampled draws still never return one (Qwen2's vocabulary: several EOG tokens).
    #[test]
    fn ignore_eos_never_samples_an_eog_token() {
        let home = std::env::var_os("ORCD_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/orcd")
        });
        let path = home.join("llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf");
        let tok = orcd_engine::tokenizer::Tokenizer::open(&path)
            .unwrap_or_else(|e| panic!("{e}: run python3 fixtures/fetch.py"));
        let n = tok.vocab_size();
        assert!(tok.eog_ids().len() >= 2, "{:?}", tok.eog_ids());
        let mut logits = vec![0.0f32; n];
        for &id in tok.eog_ids() {
            logits[id as usize] = 30.0;
        }
        for temperature in [0.0, 1.0] {
            let mut p = SamplerParams { temperature, seed: 7, ..SamplerParams::default() };
            let plain = orcd_engine::sampler::Sampler::new(p.clone(), n).unwrap().sample(&logits).unwrap().token;
            assert!(tok.is_eog(plain), "without the bias an EOG token wins ({plain})");
            p.logit_bias.extend(eog_bias(&tok));
            let mut s = orcd_engine::sampler::Sampler::new(p, n).unwrap();
            for _ in 0..50 {
                let t = s.sample(&logits).unwrap().token;
                assert!(!tok.is_eog(t), "ignore_eos sampled EOG token {t} at temperature {temperature}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any values in the OpenAI fields: typed errors or a validated request, never a panic;
        /// accepted values are within their ranges.
        #[test]
        fn openai_fields_never_panic(
            vals in proptest::collection::vec(proptest::prelude::any::<(u8, i64, f64, bool)>(), 0..12),
        ) {
            let keys = ["max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p",
                "repetition_penalty", "frequency_penalty", "presence_penalty", "seed", "stream", "n", "logprobs",
                "top_logprobs", "stop", "stream_options", "messages", "ignore_eos"];
            let mut o = serde_json::Map::new();
            for (k, i, f, b) in vals {
                let key = keys[k as usize % keys.len()];
                let v = match k % 5 {
                    0 => json!(i),
                    1 => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
                    2 => json!(b),
                    3 => json!([i, "x", {"role": "user", "content": [{"type": "text", "text": "t"}]}]),
                    _ => json!({"include_usage": b, "role": "r", "content": i}),
                };
                o.insert(key.to_string(), v);
            }
            let bytes = Value::Object(o).to_string();
            let mut f = Fields::parse(bytes.as_bytes()).map_err(|e| proptest::test_runner::TestCaseError::fail(e.message))?;
            for chat in [false, true] {
                let sm = sampling(&mut f, chat);
                let _ = messages(&mut f);
                if f.errors.is_empty() {
                    let p = &sm.params.sampler;
                    proptest::prop_assert!((0.0..=2.0).contains(&p.temperature) && (0.0..=1.0).contains(&p.top_p));
                    proptest::prop_assert!(sm.logprobs.unwrap_or(0) <= 20 && sm.params.stop.len() <= MAX_STOPS);
                }
            }
        }
    }
}
