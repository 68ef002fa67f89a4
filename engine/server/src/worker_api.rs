//! The worker API (DESIGN §7): `POST /execute` (named SSE events `started`, `token {t, i}`,
//! `metrics`, then exactly one of `end` / `error`), `POST /cancel`, `GET /health`, and
//! `GET /metrics`.
//!
//! Invariants: a bad body is a 400 listing every bad field (`{errors: [{field, constraint,
//! message}]}`), never quoting the prompt; once the stream has started, failures are an `error`
//! event, never a truncated stream; `token` events carry increasing `i` and text that never splits
//! a UTF-8 character (the engine releases whole characters only).

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use orcd_engine::generate::GenerateParams;
use orcd_engine::sampler::{PenaltyParams, SamplerParams};

use crate::engine::{Command, Out, Reject, Submit};
use crate::http::{json_response, read_body, rfc3339, sse, submit, AppState, EventStream, StreamFmt, SubmitError};
use crate::metrics::{render, Gauges};
use crate::validate::{FieldError, Fields};

/// The seed's limits.
const MAX_PROMPT_CHARS: usize = 32_768;
const MAX_TOKENS: i64 = 2048;
const MAX_STOPS: usize = 4;
const MAX_STOP_CHARS: usize = 256;
const MAX_JOB_ID: usize = 128;

/// `{code, message, retriable}`: the worker API's error shape (as its `error` event).
fn worker_error(status: StatusCode, code: &str, message: &str, retriable: bool) -> Response {
    json_response(status, &json!({"code": code, "message": message, "retriable": retriable}))
}

fn field_errors(errors: &[FieldError]) -> Response {
    let list: Vec<_> = errors.iter().map(FieldError::json).collect();
    json_response(StatusCode::BAD_REQUEST, &json!({"errors": list}))
}

pub(crate) async fn health(State(s): State<AppState>) -> Response {
    let uptime = s.started.elapsed().as_secs_f64();
    let Some(l) = s.loaded() else {
        let (status, msg) = match s.failed() {
            Some(m) => ("failed", Some(m.to_string())),
            None => ("loading", None),
        };
        let mut v = json!({"status": status, "resident": false, "uptime_s": uptime});
        if let Some(m) = msg {
            v["error"] = json!({"code": "MODEL_LOAD_FAILED", "message": m});
        }
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &v);
    };
    if s.engine_stopped.load(Ordering::SeqCst) && !s.draining() {
        let v = json!({"status": "failed", "resident": false, "uptime_s": uptime,
            "error": {"code": "INTERNAL", "message": "the engine thread stopped"}});
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &v);
    }
    let i = &l.info;
    let draining = s.draining();
    let vram = s.vram_bytes.load(Ordering::Relaxed);
    let v = json!({
        "status": if draining { "draining" } else { "ok" },
        "model": i.id,
        "model_path": i.path,
        "arch": i.arch,
        "backend": i.backend,
        "resident": true,
        "quant_kind": i.quant_kind,
        "vram_bytes": vram,
        "kv_bytes": i.kv_bytes,
        "tokenizer_kind": i.tokenizer_kind,
        "tokenizer_model": i.tokenizer_model,
        "vocab_size": i.vocab_size,
        "context_length": i.n_ctx,
        "context_length_train": i.n_ctx_train,
        "chat_template": i.has_chat_template,
        "prefix_cache": i.prefix_cache,
        "parallel": i.parallel,
        "queue_limit": i.queue,
        "running": s.running.load(Ordering::Relaxed),
        "waiting": s.waiting.load(Ordering::Relaxed),
        "uptime_s": uptime,
    });
    let status = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    json_response(status, &v)
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    let (model, on_device) = match s.loaded() {
        Some(l) => (l.info.id.clone(), l.info.backend.starts_with("cuda")),
        None => (String::new(), false),
    };
    let g = Gauges {
        running: s.running.load(Ordering::Relaxed),
        waiting: s.waiting.load(Ordering::Relaxed),
        kv_used: s.kv_used.load(Ordering::Relaxed),
        kv_capacity: s.kv_capacity.load(Ordering::Relaxed),
        prefix_reused: s.prefix_reused.load(Ordering::Relaxed),
        vram_bytes: on_device.then(|| s.vram_bytes.load(Ordering::Relaxed)),
    };
    let text = match s.metrics.lock() {
        Ok(m) => render(&m, g, &model),
        Err(_) => String::new(),
    };
    let mut r = Response::new(axum::body::Body::from(text));
    r.headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

/// 503 while loading, after a failed load, or while draining; `None` when requests are served.
fn unavailable(s: &AppState) -> Option<Response> {
    if s.draining() {
        return Some(worker_error(StatusCode::SERVICE_UNAVAILABLE, "INTERNAL", "the server is shutting down", true));
    }
    match (s.loaded(), s.failed()) {
        (Some(_), _) => None,
        (None, Some(m)) => Some(worker_error(StatusCode::SERVICE_UNAVAILABLE, "MODEL_LOAD_FAILED", m, false)),
        (None, None) => {
            Some(worker_error(StatusCode::SERVICE_UNAVAILABLE, "INTERNAL", "the model is still loading", true))
        }
    }
}

/// An `/execute` body, validated.
struct ExecuteReq {
    job_id: Option<String>,
    prompt: String,
    params: GenerateParams,
}

fn parse_execute(bytes: &[u8]) -> Result<ExecuteReq, Vec<FieldError>> {
    let mut f = Fields::parse(bytes).map_err(|e| vec![e])?;
    let job_id = f.string("job_id", false, 1, MAX_JOB_ID);
    if job_id.as_ref().is_some_and(|j| !j.bytes().all(|b| b.is_ascii_graphic())) {
        f.err("job_id", "type", "job_id must be printable ASCII without spaces");
    }
    let prompt = f.string("prompt", true, 1, MAX_PROMPT_CHARS);
    let max_tokens = f.int("max_tokens", 1, MAX_TOKENS).unwrap_or(128) as usize;
    let temperature = f.num("temperature", 0.0, 2.0, false).unwrap_or(0.8);
    let top_k = f.int("top_k", 0, i64::MAX).unwrap_or(40);
    let top_p = f.num("top_p", 0.0, 1.0, false).unwrap_or(0.95);
    let min_p = f.num("min_p", 0.0, 1.0, false).unwrap_or(0.05);
    let repeat = f.num("repetition_penalty", 0.0, f64::INFINITY, true).unwrap_or(1.0);
    let stop = f.stop("stop", MAX_STOPS, MAX_STOP_CHARS);
    let seed = f.seed("seed").unwrap_or_else(|| crate::http::random_u128() as u64);
    let (Some(prompt), true) = (prompt, f.errors.is_empty()) else { return Err(f.errors) };
    let sampler = SamplerParams {
        temperature,
        top_k: usize::try_from(top_k).unwrap_or(usize::MAX),
        top_p,
        min_p,
        penalties: PenaltyParams { repeat, ..PenaltyParams::default() },
        seed,
        ..SamplerParams::default()
    };
    Ok(ExecuteReq { job_id, prompt, params: GenerateParams { max_tokens, stop, sampler, top_logprobs: 0 } })
}

pub(crate) async fn execute(State(s): State<AppState>, req: Request) -> Response {
    if let Some(r) = unavailable(&s) {
        return r;
    }
    let Ok(bytes) = read_body(req).await else {
        return field_errors(&[FieldError::new(
            "body",
            "length",
            format!("the body must be at most {} bytes", crate::http::MAX_BODY),
        )]);
    };
    let r = match parse_execute(&bytes) {
        Ok(r) => r,
        Err(errors) => return field_errors(&errors),
    };
    let Some(l) = s.loaded() else { return worker_error(StatusCode::SERVICE_UNAVAILABLE, "INTERNAL", "loading", true) };
    let prompt = match l.tok.encode(&r.prompt, true, false) {
        Ok(p) => p,
        Err(e) => return field_errors(&[FieldError::new("prompt", "type", format!("cannot tokenize: {e}"))]),
    };
    if prompt.len() >= l.info.n_ctx {
        return field_errors(&[context_error(prompt.len(), l.info.n_ctx)]);
    }
    let job_id = r.job_id.unwrap_or_else(|| crate::http::new_id("job-"));
    let sub = Submit { prompt, params: r.params, job_id: Some(job_id.clone()), events: dead_sender() };
    match submit(&s, sub).await {
        Ok(events) => EventStream::response(events, ExecuteFmt { job_id, model: l.info.id.clone() }),
        Err(SubmitError::Rejected(Reject::QueueFull { waiting })) => {
            let mut r = worker_error(
                StatusCode::TOO_MANY_REQUESTS,
                "QUEUE_FULL",
                &format!("the queue is full ({waiting} waiting); retry later"),
                true,
            );
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(SubmitError::Rejected(Reject::TooLong { prompt_tokens, n_ctx })) => {
            field_errors(&[context_error(prompt_tokens, n_ctx)])
        }
        Err(SubmitError::Rejected(Reject::DuplicateJob)) => worker_error(
            StatusCode::CONFLICT,
            "INVALID_REQUEST",
            "a request with this job_id is already queued or running",
            false,
        ),
        Err(SubmitError::Rejected(Reject::Invalid(m))) => {
            worker_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &m, false)
        }
        Err(SubmitError::Gone) => {
            worker_error(StatusCode::SERVICE_UNAVAILABLE, "INTERNAL", "the engine is not running", true)
        }
    }
}

fn context_error(prompt_tokens: usize, n_ctx: usize) -> FieldError {
    FieldError::new(
        "prompt",
        "context_length",
        format!(
            "the prompt has {prompt_tokens} tokens; the context holds {n_ctx} (the prompt and at least one generated token)"
        ),
    )
}

/// A sender whose receiver is gone: [`submit`] replaces it with the request's own.
pub(crate) fn dead_sender() -> tokio::sync::mpsc::UnboundedSender<Out> {
    tokio::sync::mpsc::unbounded_channel().0
}

struct ExecuteFmt {
    job_id: String,
    model: String,
}

impl StreamFmt for ExecuteFmt {
    fn event(&mut self, ev: Out) -> (String, bool) {
        match ev {
            Out::Started { at } => (
                sse(
                    Some("started"),
                    &json!({"job_id": self.job_id, "model": self.model, "started_at": rfc3339(at)}).to_string(),
                ),
                false,
            ),
            Out::Token(t) => (sse(Some("token"), &json!({"t": t.text, "i": t.i}).to_string()), false),
            Out::Done(d) => {
                let s = &d.summary;
                let mut out = sse(
                    Some("metrics"),
                    &json!({"tokens_per_sec": d.tokens_per_sec, "vram_bytes": d.vram_bytes}).to_string(),
                );
                let mut end = json!({
                    "tokens_out": s.tokens_out,
                    "prompt_tokens": s.prompt_tokens,
                    "decode_time_ms": (s.decode_seconds * 1000.0).round() as u64,
                    "stop_reason": s.stop_reason.as_str(),
                    "seed": s.seed,
                });
                // Never set in practice (the engine joins the tail to the last token event).
                if !s.tail_text.is_empty() {
                    end["t"] = json!(s.tail_text);
                }
                out.push_str(&sse(Some("end"), &end.to_string()));
                (out, true)
            }
            Out::Error { code, message } => {
                let retriable = matches!(code, "INFERENCE_TIMEOUT" | "QUEUE_FULL" | "VRAM_OOM");
                let body = json!({"code": code, "message": message, "retriable": retriable});
                (sse(Some("error"), &body.to_string()), true)
            }
            Out::Accepted | Out::Rejected(_) => (String::new(), false),
        }
    }

    fn closed(&mut self) -> String {
        let body = json!({"code": "INTERNAL", "message": "the engine dropped the request", "retriable": true});
        sse(Some("error"), &body.to_string())
    }
}

pub(crate) async fn cancel(State(s): State<AppState>, req: Request) -> Response {
    let Ok(bytes) = read_body(req).await else {
        return field_errors(&[FieldError::new("body", "length", "the body is too large")]);
    };
    let mut f = match Fields::parse(&bytes) {
        Ok(f) => f,
        Err(e) => return field_errors(&[e]),
    };
    let job = f.string("job_id", true, 1, MAX_JOB_ID);
    let Some(job) = job else { return field_errors(&f.errors) };
    // Idempotent: an unknown or finished job is accepted the same way.
    s.send(Command::CancelJob(job.clone()));
    json_response(StatusCode::ACCEPTED, &json!({"job_id": job, "status": "cancelling"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_bodies_get_every_bad_field_and_defaults() {
        let body = br#"{"prompt": "", "max_tokens": 0, "temperature": 2.5, "top_p": -0.1, "top_k": 1.5,
            "min_p": 2, "repetition_penalty": 0, "stop": ["a","b","c","d","e"]}"#;
        let Err(errs) = parse_execute(body) else { panic!("accepted") };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["prompt", "max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "stop"]
        );
        let Ok(ok) = parse_execute(br#"{"prompt": "hi", "seed": 7}"#) else { panic!("refused") };
        assert_eq!((ok.params.max_tokens, ok.params.sampler.seed, ok.params.sampler.top_k), (128, 7, 40));
        let long = format!("{{\"prompt\": \"{}\"}}", "x".repeat(MAX_PROMPT_CHARS + 1));
        assert!(parse_execute(long.as_bytes()).is_err());
        let limit = format!("{{\"prompt\": \"{}\"}}", "é".repeat(MAX_PROMPT_CHARS));
        assert!(parse_execute(limit.as_bytes()).is_ok(), "the limit counts characters, not bytes");
    }

    /// A JSON value of any shape (bounded depth and size).
    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)),
            "\\PC{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("\\PC{0,6}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any body: a typed answer, never a panic; an error never quotes the prompt.
        #[test]
        fn execute_bodies_never_panic_nor_echo_the_prompt(
            fields in proptest::collection::btree_map(
                proptest::sample::select(vec!["job_id", "max_tokens", "temperature", "top_k", "top_p", "min_p",
                    "repetition_penalty", "stop", "seed", "other"]),
                any_json(), 0..10),
            prompt_kind in 0u8..4,
        ) {
            let mut o: serde_json::Map<String, serde_json::Value> =
                fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            match prompt_kind {
                0 => {}
                1 => { o.insert("prompt".into(), serde_json::json!("MARKER-Zq9 secret")); }
                2 => { o.insert("prompt".into(), serde_json::json!(["MARKER-Zq9"])); }
                _ => { o.insert("prompt".into(), serde_json::json!("MARKER-Zq9".repeat(4000))); }
            }
            let body = serde_json::Value::Object(o).to_string();
            if let Err(errs) = parse_execute(body.as_bytes()) {
                proptest::prop_assert!(!errs.is_empty());
                for e in errs {
                    proptest::prop_assert!(!e.message.contains("MARKER"), "{:?}", e);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_are_typed_errors(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = parse_execute(&bytes);
        }
    }
}
