//! The router and what every route shares: the API-key and correlation-id middleware, bounded
//! body reading, submitting to the engine thread, and the streaming body that turns a request's
//! engine events into bytes as they come.
//!
//! Invariants:
//! - Every body is read with a byte limit ([`MAX_BODY`]) before anything parses it.
//! - A streamed response owns its request's event receiver: when the client goes away the body is
//!   dropped, the receiver with it, and the engine cancels the request (engine.rs).
//! - `--api-key` guards every route but `/health`; the comparison does not stop at the first
//!   differing byte.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::engine::{Command, Out, Reject, Submit};
use crate::state::Shared;
use crate::{openai, worker_api};

/// Largest request body accepted (a 32,768-character prompt escaped as `\uXXXX` is ~200 KB; chat
/// histories get room to spare).
pub(crate) const MAX_BODY: usize = 1 << 20;

pub(crate) type AppState = Arc<Shared>;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(worker_api::health))
        .route("/execute", post(worker_api::execute))
        .route("/cancel", post(worker_api::cancel))
        .route("/metrics", get(worker_api::metrics))
        .route("/v1/models", get(openai::models))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/tokenize", post(openai::tokenize))
        .route("/detokenize", post(openai::detokenize))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found() -> Response {
    openai::error_response(StatusCode::NOT_FOUND, "no such route", "not_found_error", None, None)
}

/// API key (all routes but /health) and the correlation id (taken from `x-correlation-id` when it
/// is a sane token, else made), echoed on every response.
async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let cid = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| new_id(""));
    let mut resp = if req.uri().path() != "/health" && !authorized(&s, req.headers()) {
        openai::error_response(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API key (send Authorization: Bearer KEY)",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        )
    } else {
        next.run(req).await
    };
    if let Ok(v) = HeaderValue::from_str(&cid) {
        resp.headers_mut().insert("x-correlation-id", v);
    }
    resp
}

fn authorized(s: &Shared, headers: &HeaderMap) -> bool {
    let Some(key) = &s.api_key else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    // Constant time in the key's length: no early exit on the first differing byte.
    let (a, b) = (given.as_bytes(), key.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &k) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ k);
    }
    diff == 0
}

/// A fresh id: `prefix` + 24 hex digits from the process's random hasher keys and a counter.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}{:024x}", random_u128() >> 32)
}

/// Random bits without a dependency: std's per-process random hasher keys over a counter and the
/// clock. Used for ids and for seeds a request did not give (reported back, so reproducible).
pub(crate) fn random_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local!(static KEYS: std::collections::hash_map::RandomState = std::collections::hash_map::RandomState::new());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    KEYS.with(|k| {
        let mut h = k.build_hasher();
        h.write_u64(n);
        h.write_u128(t);
        let a = h.finish();
        h.write_u64(a);
        (u128::from(a) << 64) | u128::from(h.finish())
    })
}

/// Read the whole body, at most [`MAX_BODY`] bytes.
pub(crate) async fn read_body(req: Request) -> Result<Bytes, ()> {
    axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| ())
}

/// Why a submission did not produce a stream.
#[derive(Debug)]
pub(crate) enum SubmitError {
    Rejected(Reject),
    /// The engine thread is gone (load failed, or shutting down).
    Gone,
}

/// Queue a request on the engine thread; on acceptance, the receiver of its events.
pub(crate) async fn submit(s: &Shared, sub: Submit) -> Result<Events, SubmitError> {
    let (tx, mut rx) = unbounded_channel();
    let sub = Submit { events: tx, ..sub };
    if !s.send(Command::Submit(Box::new(sub))) {
        return Err(SubmitError::Gone);
    }
    match rx.recv().await {
        Some(Out::Accepted) => Ok(Events::new(rx, s)),
        Some(Out::Rejected(r)) => Err(SubmitError::Rejected(r)),
        _ => Err(SubmitError::Gone),
    }
}

/// A request's event receiver, counted as active (SIGTERM waits for active requests) until dropped.
#[derive(Debug)]
pub(crate) struct Events {
    pub rx: UnboundedReceiver<Out>,
    active: Arc<AtomicU64>,
}

impl Events {
    fn new(rx: UnboundedReceiver<Out>, s: &Shared) -> Self {
        s.active.fetch_add(1, Ordering::SeqCst);
        Events { rx, active: s.active.clone() }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How one streaming route writes its request's events.
pub(crate) trait StreamFmt: Send + Unpin + 'static {
    /// Bytes for one event (maybe none), and whether the stream is complete after them.
    fn event(&mut self, ev: Out) -> (String, bool);
    /// The engine dropped the request without a terminal event (a bug or a shutdown).
    fn closed(&mut self) -> String;
}

/// A streamed response body: engine events in, SSE bytes out, as they come (every event ready at
/// a poll goes into one frame).
pub(crate) struct EventStream<F> {
    events: Events,
    fmt: F,
    finished: bool,
}

impl<F: StreamFmt> EventStream<F> {
    pub fn response(events: Events, fmt: F) -> Response {
        let body = Body::new(EventStream { events, fmt, finished: false });
        let mut r = Response::new(body);
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        r
    }
}

impl<F: StreamFmt> http_body::Body for EventStream<F> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let mut out = String::new();
        while !this.finished {
            match this.events.rx.poll_recv(cx) {
                Poll::Ready(Some(ev)) => {
                    let (text, done) = this.fmt.event(ev);
                    out.push_str(&text);
                    this.finished = done;
                }
                Poll::Ready(None) => {
                    out.push_str(&this.fmt.closed());
                    this.finished = true;
                }
                Poll::Pending => break,
            }
        }
        if !out.is_empty() {
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
        } else if this.finished {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// One SSE event; `data` is one line of JSON.
pub(crate) fn sse(event: Option<&str>, data: &str) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

pub(crate) fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Seconds since the epoch, and an RFC 3339 UTC timestamp with milliseconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let orcd_engine::chat::Date { year, month, day } = orcd_engine::chat::Date::from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        let t = |s: u64, ms: u64| std::time::UNIX_EPOCH + std::time::Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(t(0, 0)), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 12:34:56 UTC (a leap day), from `date -u -d @951827696`.
        assert_eq!(rfc3339(t(951_827_696, 7)), "2000-02-29T12:34:56.007Z");
    }

    #[test]
    fn ids_are_fresh() {
        let a = new_id("x-");
        assert!(a.starts_with("x-") && a.len() == 26, "{a}");
        assert_ne!(a, new_id("x-"));
    }
}
