//! `/execute` SSE transcripts as insta snapshots (issue 12): the bytes a client reads, with what
//! varies from run to run normalised — timestamps, durations, rates, the correlation id — and
//! the token events of a cancelled stream collapsed to a count. They guard our rendering (event
//! names, field names, JSON escaping, framing, the 400 body), not the engine's numbers: the
//! model is a synthetic tiny llama on the exact CPU column, whose text is the same on every host.
//! Review changes with `cargo insta review`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use orcd_backends::Column;
use serde_json::json;

/// Keys whose values differ between runs, and what replaces them.
/// (`model` is the file's stem, and the tests' file names carry the process id.)
const VARYING: [(&str, &str); 4] = [
    ("started_at", "\"<rfc3339>\""),
    ("decode_time_ms", "\"<ms>\""),
    ("tokens_per_sec", "\"<tok/s>\""),
    ("model", "\"<model>\""),
];

/// `data` with the value of every [`VARYING`] key replaced (the JSON is one line, as we write it).
fn normalise(data: &str) -> String {
    normalise_also(data, &[])
}

/// [`normalise`], and the values of `more` keys too.
fn normalise_also(data: &str, more: &[(&str, &str)]) -> String {
    let mut out = data.to_string();
    for &(key, with) in VARYING.iter().chain(more) {
        let pat = format!("\"{key}\":");
        let mut from = 0;
        while let Some(at) = out[from..].find(&pat).map(|i| from + i + pat.len()) {
            let end = if out[at..].starts_with('"') {
                at + 1 + out[at + 1..].find('"').unwrap() + 1
            } else {
                at + out[at..].find([',', '}']).unwrap()
            };
            out.replace_range(at..end, with);
            from = at + with.len();
        }
    }
    out
}

/// Status and the headers a client relies on.
fn head(c: &Conn) -> String {
    let mut s = format!("HTTP {}\n", c.status);
    for h in ["content-type", "cache-control"] {
        if let Some((_, v)) = c.headers.iter().find(|(k, _)| k == h) {
            s.push_str(&format!("{h}: {v}\n"));
        }
    }
    let cid = c.headers.iter().any(|(k, v)| k == "x-correlation-id" && !v.is_empty());
    s.push_str(&format!("x-correlation-id: {}\n\n", if cid { "<present>" } else { "<MISSING>" }));
    s
}

/// One event as it came, normalised.
fn render(name: Option<&str>, data: &str, more: &[(&str, &str)]) -> String {
    let name = name.map(|n| format!("event: {n}\n")).unwrap_or_default();
    format!("{name}data: {}\n\n", normalise_also(data, more))
}

/// The rest of the stream's events. With `collapse_tokens` (a cancelled stream: how many tokens
/// come before the end depends on timing) the token events become one line, written whether
/// there were any or not, and `tokens_out` is normalised.
fn rest(c: &mut Conn, collapse_tokens: bool) -> String {
    let more: &[(&str, &str)] = if collapse_tokens { &[("tokens_out", "\"<n>\"")] } else { &[] };
    let (mut s, mut collapsed) = (String::new(), false);
    while let Some((name, data)) = c.event() {
        if collapse_tokens && name.as_deref() == Some("token") {
            continue;
        }
        if collapse_tokens && !collapsed {
            s.push_str("(token events: <n>)\n\n");
            collapsed = true;
        }
        s.push_str(&render(name.as_deref(), &data, more));
    }
    s
}

fn exact_server() -> orcd_server::Server {
    let mut cfg = config("llama");
    cfg.column = Column::CPU_EXACT;
    start(cfg)
}

#[test]
fn normalise_replaces_only_the_varying_values() {
    assert_eq!(
        normalise(r#"{"a":1,"decode_time_ms":12,"started_at":"2026-12-03T18:00:00.123Z","tokens_per_sec":3.5}"#),
        r#"{"a":1,"decode_time_ms":"<ms>","started_at":"<rfc3339>","tokens_per_sec":"<tok/s>"}"#
    );
    assert_eq!(normalise(r#"{"t":"decode_time_ms","i":0}"#), r#"{"t":"decode_time_ms","i":0}"#);
    assert_eq!(normalise_also(r#"{"tokens_out":17}"#, &[("tokens_out", "<n>")]), r#"{"tokens_out":<n>}"#);
}

#[test]
fn execute_transcript() {
    let s = exact_server();
    let c = post_stream(
        s.addr(),
        "/execute",
        &json!({"job_id": "snap-1", "prompt": "Hello there", "max_tokens": 6, "temperature": 0, "seed": 7}),
    );
    let mut c = c;
    insta::assert_snapshot!(format!("{}{}", head(&c), rest(&mut c, false)));
}

#[test]
fn cancelled_execute_transcript() {
    let mut cfg = config("llama");
    cfg.column = Column::CPU_EXACT;
    cfg.parallel = 1;
    let s = start(cfg);
    let body = json!({"job_id": "snap-2", "prompt": "Once upon a time", "max_tokens": 2000, "temperature": 1.0,
                      "top_k": 0, "min_p": 0, "top_p": 1, "seed": 3});
    let mut c = post_stream(s.addr(), "/execute", &body);
    // Read up to the first token, then cancel; the rest of the stream follows.
    let mut t = head(&c);
    let (name, data) = c.event().unwrap();
    assert_eq!(name.as_deref(), Some("started"));
    t.push_str(&render(name.as_deref(), &data, &[]));
    let (name, data) = c.event().unwrap();
    assert_eq!(name.as_deref(), Some("token"));
    assert!(data.contains("\"i\":0"), "{data}");
    t.push_str("(first token read, then POST /cancel)\n\n");
    assert_eq!(post(s.addr(), "/cancel", &json!({"job_id": "snap-2"})).status, 202);
    t.push_str(&rest(&mut c, true));
    insta::assert_snapshot!(t);
    assert!(wait_until(Duration::from_secs(5), || metric(s.addr(), "orcd_requests_running") == 0.0));
}

#[test]
fn execute_validation_error_body() {
    let s = exact_server();
    let r = post(
        s.addr(),
        "/execute",
        &json!({"prompt": "", "max_tokens": 0, "temperature": 2.5, "top_p": -0.1, "top_k": -1, "min_p": 1.5,
                "repetition_penalty": 0, "stop": ["a", "b", "c", "d", "e"]}),
    );
    insta::assert_snapshot!(format!("HTTP {}\n{}", r.status, normalise(&r.text())));
}
