//! Suite `server`: DESIGN §7's HTTP APIs end to end on a real model, against llama.cpp's greedy
//! generation of the same prompt.
//!
//! Reference: the `generate` golden the case names (goldens/generate/*.yaml, recorded by
//! goldens/recorders/record_generate.py from llama.cpp's default run: the rendered prompt, the
//! greedy ids with each step's top-1/top-2 margin, the text and the stop reason). The engine side
//! is `worker-orcd serve`'s server ([`orcd_server::Server`] on an ephemeral loopback port, the
//! case's column, one sequence), asked through one API over a real socket:
//! - `chat`: `POST /v1/chat/completions` with the golden's messages, streamed (SSE `data:` chunks
//!   ending in `data: [DONE]`);
//! - `completions`: `POST /v1/completions` with the golden's plain prompt;
//! - `execute`: the worker API's `POST /execute` with the golden's plain prompt (named SSE events
//!   `started`, `token`…, then exactly one `end`).
//!
//! Each request asks for greedy decoding (`temperature` 0) and the golden's `max_tokens`.
//! Checks: status 200; the API's stream shape (its first and terminal events); the text — equal to
//! the golden's, or, when the reference has a near-tie (margin below the golden's `near_tie`,
//! whose source the golden states) before its end, starting with the reference's text up to that
//! step (the engine may take the other branch there, as suite `generate` allows); and the stop
//! reason in the API's words when the whole text is compared.
//!
//! Contract cases (`contract-*.yaml`, no golden): one request to a server on a synthetic tiny
//! model; the expected status, JSON fields and values, headers, absent text and first / last SSE
//! event are written from the DESIGN §7 sentence (or the OpenAI API reference) each case quotes
//! in `reference` — never from the server's own answers.

use std::collections::BTreeMap;
use std::time::Duration;

use orcd_engine::tokenizer::Tokenizer;
use orcd_server::{client, ServeConfig, Server};
use serde::Deserialize;
use serde_json::{json, Value};

use super::generate::{truncate, GenerateCase};
use super::Measured;
use crate::case::{Backend, Outcome};
use crate::paths;

/// A case file: a `generate` golden through one API, or one request of the contract.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerCaseFile {
    pub name: String,
    /// A `generate` golden, relative to this case file's folder.
    #[serde(default)]
    pub golden: Option<String>,
    /// With `golden`: `chat`, `completions` or `execute`.
    #[serde(default)]
    pub api: Option<String>,
    /// A contract case: the DESIGN §7 sentence its expectations come from.
    #[serde(default)]
    pub reference: Option<String>,
    /// A contract case's model: a synthetic fixture (`model-<arch>-<size>-<type>-seed<N>`).
    #[serde(default)]
    pub fixture: Option<String>,
    /// The server's `--api-key`.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub request: Option<ContractRequest>,
    #[serde(default)]
    pub expect: Option<Expect>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContractRequest {
    pub method: String,
    pub path: String,
    /// Sent as is (may be malformed on purpose).
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// What the answer must hold (each field optional but `status`).
#[derive(Debug, Clone, Deserialize)]
pub struct Expect {
    pub status: u16,
    /// JSON pointer → value, in the JSON body (or, for a stream, in the last event's data).
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
    /// JSON pointers that must exist there.
    #[serde(default)]
    pub json_present: Vec<String>,
    /// Response headers that must be present.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Text the body must not contain (a prompt is never echoed in an error).
    #[serde(default)]
    pub absent: Vec<String>,
    /// An SSE answer: its first and last event (`event:` name, or the data for unnamed events).
    #[serde(default)]
    pub first_event: Option<String>,
    #[serde(default)]
    pub last_event: Option<String>,
}

/// A case with its golden read at discovery.
#[derive(Debug, Clone)]
pub struct ServerCase {
    pub file: ServerCaseFile,
    pub golden: Option<GenerateCase>,
}

impl ServerCase {
    pub fn not_run_reason(&self) -> Option<String> {
        match (&self.golden, &self.file.fixture) {
            (Some(g), _) => g.file.missing_reason(),
            (None, Some(f)) => super::gguf::synthetic_missing_reason(f),
            (None, None) => None,
        }
    }
}

/// The longest a model load or a whole generation may take before the case fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(case: &ServerCase, backend: Backend) -> (Outcome, Measured) {
    let r = match &case.golden {
        Some(g) => check(case, g, backend),
        None => contract(&case.file, backend),
    };
    match r {
        Ok(detail) => (Outcome::Pass { detail }, Measured::default()),
        Err(message) => (Outcome::Fail { message }, Measured::default()),
    }
}

/// What one API answered: the generated text and its stop reason in the API's words.
struct Answer {
    text: String,
    stop: String,
}

/// Start a server on `model` (column `backend`, one sequence, `ctx` positions) and wait for its
/// load.
fn start(model: std::path::PathBuf, backend: Backend, ctx: usize, api_key: Option<String>) -> Result<Server, String> {
    let mut cfg = ServeConfig::new(model, backend.column());
    cfg.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.ctx = Some(ctx);
    cfg.parallel = 1;
    cfg.queue = 1;
    cfg.timeout = LOAD_TIMEOUT;
    cfg.api_key = api_key;
    let server = Server::start(cfg, false).map_err(|e| format!("starting the server: {e}"))?;
    server.wait_ready(LOAD_TIMEOUT).map_err(|e| format!("loading the model in the server: {e}"))?;
    Ok(server)
}

/// Drain the server, then give `r` (a failed drain fails a passing case).
fn stop<T>(server: Server, r: Result<T, String>) -> Result<T, String> {
    server.shutdown();
    let joined = server.join();
    let v = r?;
    joined.map_err(|e| format!("the server's drain: {e}"))?;
    Ok(v)
}

fn check(c: &ServerCase, g: &GenerateCase, backend: Backend) -> Result<String, String> {
    let api = c.file.api.as_deref().ok_or("a golden case names its `api`")?;
    let rel = g.file.file.as_ref().ok_or("the golden names no external model file (`file`)")?;
    // The sha256 check: the golden was recorded on exactly this file.
    let (f, _) = g.file.load()?;
    let tok = Tokenizer::from_gguf(&f).map_err(|e| format!("tokenizer: {e}"))?;
    drop(f);
    let server = start(paths::external(rel), backend, g.prompt_tokens.len() + g.max_tokens + 8, None)?;
    let answer = ask(api, g, server.addr());
    let a = stop(server, answer)?;

    // The reference's first near-tie before its end: the engine may branch there.
    let tie = g.greedy_margins.iter().position(|&m| m < g.thresholds.near_tie);
    match tie {
        Some(i) if a.text == g.text && i + 1 < g.greedy.len() => {
            Ok(format!("text equal ({} chars; the reference's first near-tie at step {i})", a.text.chars().count()))
        }
        Some(i) if i + 1 < g.greedy.len() => {
            let prefix =
                tok.decode_to_string(&g.greedy[..i]).map_err(|e| format!("detokenize the reference's ids: {e}"))?;
            if !a.text.starts_with(&prefix) {
                return Err(format!(
                    "text differs before the reference's near-tie at step {i}\n  server:    {:?}\n  reference: {:?} (then the \
                     near-tie)",
                    a.text, prefix
                ));
            }
            Ok(format!("text equal up to the reference's near-tie at step {i} ({} chars)", prefix.chars().count()))
        }
        _ => {
            if a.text != g.text {
                return Err(format!("text differs\n  server:    {:?}\n  reference: {:?}", a.text, g.text));
            }
            let want = stop_word(api, &g.stop_reason)?;
            if a.stop != want {
                return Err(format!(
                    "stop reason {:?}, the reference's {} is {want:?} in this API",
                    a.stop, g.stop_reason
                ));
            }
            Ok(format!("text equal ({} chars), stop reason {want}", a.text.chars().count()))
        }
    }
}

/// The golden's stop reason as `api` reports it.
fn stop_word(api: &str, reference: &str) -> Result<String, String> {
    Ok(match (api, reference) {
        ("execute", r) => r.to_string(),
        (_, "EOS") => "stop".into(),
        (_, "MAX_TOKENS") => "length".into(),
        (_, r) => return Err(format!("unknown stop_reason {r:?} in the golden")),
    })
}

fn parse(data: &str) -> Result<Value, String> {
    serde_json::from_str(data).map_err(|e| format!("not JSON ({e}): {data:?}"))
}

fn ask(api: &str, g: &GenerateCase, addr: std::net::SocketAddr) -> Result<Answer, String> {
    let body = match api {
        "chat" => {
            if g.messages.is_empty() {
                return Err("api chat needs a golden with messages".into());
            }
            let msgs: Vec<Value> = g.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
            json!({"messages": msgs, "max_tokens": g.max_tokens, "temperature": 0, "stream": true})
        }
        // The plain-text APIs tokenize as llama.cpp's plain run does (special tokens as text), so
        // they take a golden of a plain prompt, not a rendered chat.
        "completions" | "execute" if g.prompt.is_none() => {
            return Err(format!("api {api} needs a golden with a plain `prompt`, not messages"))
        }
        "completions" => json!({"prompt": g.prompt, "max_tokens": g.max_tokens, "temperature": 0}),
        "execute" => json!({"job_id": "conformance", "prompt": g.prompt, "max_tokens": g.max_tokens, "temperature": 0}),
        other => return Err(format!("unknown api {other:?} (chat, completions or execute)")),
    };
    let path = match api {
        "chat" => "/v1/chat/completions",
        "completions" => "/v1/completions",
        _ => "/execute",
    };
    let conn = client::send(addr, "POST", path, &[], body.to_string().as_bytes()).map_err(|e| e.to_string())?;
    if conn.status != 200 {
        let r = conn.body().map_err(|e| e.to_string())?;
        return Err(format!("{path}: status {}: {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    match api {
        "completions" => {
            let r = conn.body().map_err(|e| e.to_string())?;
            let v = parse(&String::from_utf8_lossy(&r.body))?;
            let choice = &v["choices"][0];
            Ok(Answer {
                text: choice["text"].as_str().ok_or("no choices[0].text")?.to_string(),
                stop: choice["finish_reason"].as_str().unwrap_or("").to_string(),
            })
        }
        "chat" => {
            let events = conn.events().map_err(|e| e.to_string())?;
            if events.last().map(|(_, d)| d.as_str()) != Some("[DONE]") {
                return Err(format!("the stream does not end with data: [DONE] ({} events)", events.len()));
            }
            let (mut text, mut stop) = (String::new(), String::new());
            for (_, data) in &events[..events.len() - 1] {
                let v = parse(data)?;
                let choice = &v["choices"][0];
                if let Some(t) = choice["delta"]["content"].as_str() {
                    text.push_str(t);
                }
                if let Some(f) = choice["finish_reason"].as_str() {
                    stop = f.to_string();
                }
            }
            Ok(Answer { text, stop })
        }
        _ => {
            let events = conn.events().map_err(|e| e.to_string())?;
            let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap_or("")).collect();
            if names.first() != Some(&"started") || names.iter().filter(|n| matches!(**n, "end" | "error")).count() != 1
            {
                return Err(format!("event sequence {names:?}: want started, …, exactly one end or error"));
            }
            let (mut text, mut stop) = (String::new(), String::new());
            for (name, data) in &events {
                match name.as_deref() {
                    Some("token") => text.push_str(parse(data)?["t"].as_str().ok_or("a token event without t")?),
                    Some("end") => stop = parse(data)?["stop_reason"].as_str().unwrap_or("").to_string(),
                    Some("error") => return Err(format!("error event: {data}")),
                    _ => {}
                }
            }
            Ok(Answer { text, stop })
        }
    }
}

/// A contract case: one request to a server on a synthetic model, its answer against `expect`.
fn contract(c: &ServerCaseFile, backend: Backend) -> Result<String, String> {
    let (Some(fixture), Some(req), Some(want)) = (&c.fixture, &c.request, &c.expect) else {
        return Err("a contract case names `fixture`, `request` and `expect` (or `golden` and `api`)".into());
    };
    let bytes =
        super::gguf::synthetic_fixture(fixture).ok_or_else(|| format!("unknown synthetic fixture {fixture:?}"))?;
    let path = std::env::temp_dir().join(format!("orcd-gate-server-{}-{fixture}.gguf", std::process::id()));
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let server = start(path.clone(), backend, 256, c.api_key.clone());
    let _ = std::fs::remove_file(&path);
    let server = server?;
    let answer = exchange(req, server.addr());
    let (status, headers, body, events) = stop(server, answer)?;
    let mut checked = vec![format!("status {status}")];
    if status != want.status {
        return Err(format!("status {status}, want {}: {}", want.status, truncate(&body, 300)));
    }
    for h in &want.headers {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(h)) {
            return Err(format!("no {h} header (headers: {:?})", headers.iter().map(|(k, _)| k).collect::<Vec<_>>()));
        }
        checked.push(format!("header {h}"));
    }
    for a in &want.absent {
        if body.contains(a.as_str()) {
            return Err(format!("the body contains {a:?}: {}", truncate(&body, 300)));
        }
        checked.push("no echo".into());
    }
    if let Some(e) = &events {
        let label = |(n, d): &client::Event| n.clone().unwrap_or_else(|| d.clone());
        for (want_ev, got) in [(&want.first_event, e.first()), (&want.last_event, e.last())] {
            if let Some(w) = want_ev {
                let g = got.map(label);
                if g.as_deref() != Some(w.as_str()) {
                    return Err(format!("event {g:?}, want {w:?} ({} events)", e.len()));
                }
                checked.push(format!("event {w}"));
            }
        }
    } else if want.first_event.is_some() || want.last_event.is_some() {
        return Err(format!("not an event stream: {}", truncate(&body, 300)));
    }
    if !want.json.is_empty() || !want.json_present.is_empty() {
        // A stream's JSON is its last event carrying JSON (the terminal event).
        let text = match &events {
            Some(e) => e.iter().rev().find(|(_, d)| d.starts_with('{')).map(|(_, d)| d.clone()).unwrap_or_default(),
            None => body.clone(),
        };
        let v = parse(&text)?;
        for p in &want.json_present {
            if v.pointer(p).is_none() {
                return Err(format!("no {p} in {}", truncate(&text, 300)));
            }
        }
        for (p, w) in &want.json {
            if v.pointer(p) != Some(w) {
                return Err(format!("{p} is {:?}, want {w} in {}", v.pointer(p), truncate(&text, 300)));
            }
        }
        checked.push(format!("{} JSON fields", want.json.len() + want.json_present.len()));
    }
    Ok(checked.join(", "))
}

type Exchange = (u16, Vec<(String, String)>, String, Option<Vec<client::Event>>);

fn exchange(req: &ContractRequest, addr: std::net::SocketAddr) -> Result<Exchange, String> {
    let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let conn = client::send(addr, &req.method, &req.path, &headers, req.body.as_bytes()).map_err(|e| e.to_string())?;
    let is_sse = conn.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"));
    let (status, headers) = (conn.status, conn.headers.clone());
    if is_sse {
        let events = conn.events().map_err(|e| e.to_string())?;
        let body = events.iter().map(|(n, d)| format!("{n:?} {d}\n")).collect();
        Ok((status, headers, body, Some(events)))
    } else {
        let r = conn.body().map_err(|e| e.to_string())?;
        Ok((status, headers, String::from_utf8_lossy(&r.body).into_owned(), None))
    }
}
