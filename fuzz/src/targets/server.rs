//! Fuzz target: the server's request bodies on every route (`/execute`, `/cancel`, `/health`,
//! `/metrics`, `/v1/models`, `/v1/completions`, `/v1/chat/completions`, `/tokenize`,
//! `/detokenize`) and arbitrary methods/paths, through the real router, middleware (API key,
//! correlation id), bounded body reading, field validation (validate.rs), handlers (openai.rs,
//! worker_api.rs), prompt tokenization and chat-template rendering with the qwen2 vocabulary, and
//! the sampler built from the request's parameters, with orcd-server's in-process
//! `fuzzing::Harness` standing in for the engine thread.
//!
//! Input: byte 0 picks the route (or, past the list, "METHOD PATH\n" leads the body); byte 1's
//! bits pick the headers (API key right, wrong or absent on a key-guarded server; a correlation
//! id); the rest is the body. Properties: a well-formed status for every request (400s for bad
//! fields, never a 500 or a panic), and JSON bodies for JSON routes.

use std::sync::OnceLock;

use orcd_gguf::gguf::GgufFile;
use orcd_server::fuzzing::Harness;

/// (method, path) of every route, in the order byte 0 picks them.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/execute"),
    ("POST", "/cancel"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/tokenize"),
    ("POST", "/detokenize"),
];

/// The vocabulary (with its chat template) the harness serves, in the data directory.
pub const VOCAB: &str = "ggml-vocab-qwen2.gguf";
/// The API key of the guarded harness.
pub const KEY: &str = "fuzz-key";

struct Harnesses {
    open: Harness,
    guarded: Harness,
}

fn harnesses() -> &'static Harnesses {
    static H: OnceLock<Harnesses> = OnceLock::new();
    H.get_or_init(|| {
        let path = crate::data_dir().join(VOCAB);
        let load = |key: Option<String>| {
            let f =
                GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e} (run fuzz/make_seeds.sh)", path.display()));
            Harness::new(f, 256, key).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        Harnesses { open: load(None), guarded: load(Some(KEY.into())) }
    })
}

pub fn run(data: &[u8]) {
    let [route, flags, body @ ..] = data else { return };
    let h = harnesses();
    let (method, path, body): (&[u8], &[u8], &[u8]) = match ROUTES.get(usize::from(*route)) {
        Some((m, p)) => (m.as_bytes(), p.as_bytes(), body),
        None => {
            let (line, rest) = match body.iter().position(|&b| b == b'\n') {
                Some(i) => (&body[..i], &body[i + 1..]),
                None => (body, &[][..]),
            };
            let mut parts = line.splitn(2, |&b| b == b' ');
            (parts.next().unwrap_or(b"GET"), parts.next().unwrap_or(b"/"), rest)
        }
    };
    let mut headers: Vec<(&[u8], &[u8])> = vec![(b"content-type", b"application/json")];
    if flags & 4 != 0 {
        headers.push((b"x-correlation-id", body.get(..body.len().min(40)).unwrap_or(b"")));
    }
    let guarded = flags & 1 != 0;
    if guarded {
        match flags & 2 {
            0 => headers.push((b"authorization", b"Bearer fuzz-key")),
            _ => headers.push((b"x-api-key", body.get(..body.len().min(8)).unwrap_or(b""))),
        }
    }
    let harness = if guarded { &h.guarded } else { &h.open };
    let Some(reply) = harness.request(method, path, &headers, body.to_vec()) else { return };
    assert!((200..600).contains(&reply.status), "status {}", reply.status);
    assert_ne!(
        reply.status,
        500,
        "500 for {:?} {:?}: {}",
        String::from_utf8_lossy(method),
        String::from_utf8_lossy(path),
        String::from_utf8_lossy(&reply.body)
    );
    let p = path;
    let json_route =
        p.starts_with(b"/v1/") || p == b"/tokenize" || p == b"/detokenize" || p == b"/cancel" || p == b"/health";
    let streamed = reply.body.starts_with(b"data:") || reply.body.starts_with(b"event:");
    if json_route && !streamed && !reply.body.is_empty() && reply.status != 405 {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&reply.body).is_ok(),
            "{} {:?}: not JSON: {}",
            reply.status,
            String::from_utf8_lossy(p),
            String::from_utf8_lossy(&reply.body)
        );
    }
}
