//! The in-process driver the `server` fuzz target uses (`orcd_server::fuzzing::Harness`, see
//! fuzz/ and docs/RELIABILITY.md), checked on the normal test suite: every route answers through
//! it as over a socket (the fuzz target's seeds), so a campaign exercises the real handlers, and
//! the inputs the fuzzer keeps coming back to get the typed answers the API promises.
//!
//! The fuzz campaigns found no crash in the server; a crash they find becomes a case here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use orcd_gguf::gguf::GgufFile;
use orcd_server::fuzzing::{Harness, Reply};
use serde_json::Value;

fn harness(key: Option<&str>) -> Harness {
    let f = GgufFile::open(&common::model("qwen2")).unwrap();
    Harness::new(f, 256, key.map(str::to_string)).unwrap()
}

fn post(h: &Harness, path: &str, body: &str) -> Reply {
    h.request(b"POST", path.as_bytes(), &[(b"content-type", b"application/json")], body.as_bytes().to_vec()).unwrap()
}

fn json(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.body)))
}

#[test]
fn every_route_answers_through_the_harness() {
    let h = harness(None);
    let r = post(&h, "/v1/completions", r#"{"prompt":"Once upon","max_tokens":2,"logprobs":2}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = json(&r);
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(v["choices"][0]["logprobs"]["tokens"].as_array().map(Vec::len), Some(2));

    let r = post(&h, "/v1/chat/completions", r#"{"messages":[{"role":"user","content":"Hi"}],"stream":true}"#);
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).trim_end().ends_with("data: [DONE]"));

    let r = post(&h, "/execute", r#"{"prompt":"Hello","max_tokens":3}"#);
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("event: started") && text.contains("event: end"), "{text}");

    let r = post(&h, "/tokenize", r#"{"prompt":"Hello world"}"#);
    assert_eq!(r.status, 200);
    let ids = json(&r)["tokens"].clone();
    let r = post(&h, "/detokenize", &serde_json::json!({ "tokens": ids }).to_string());
    assert_eq!(json(&r)["prompt"], "Hello world");

    assert_eq!(post(&h, "/cancel", r#"{"job_id":"j"}"#).status, 202);
    for path in ["/health", "/metrics", "/v1/models"] {
        assert_eq!(h.request(b"GET", path.as_bytes(), &[], Vec::new()).unwrap().status, 200, "{path}");
    }
    assert_eq!(h.request(b"GET", b"/nowhere", &[], Vec::new()).unwrap().status, 404);
}

#[test]
fn bad_bodies_are_typed_400s_on_every_body_route() {
    let h = harness(None);
    for path in ["/execute", "/cancel", "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"] {
        for body in [
            "",
            "{",
            "[]",
            "null",
            "{\"prompt\": 5, \"messages\": {}, \"tokens\": \"x\", \"job_id\": 1}",
            "\u{0}\u{ff}",
        ] {
            let r = post(&h, path, body);
            assert_eq!(r.status, 400, "{path} {body:?}: {}", String::from_utf8_lossy(&r.body));
            assert!(json(&r).is_object());
        }
    }
}

#[test]
fn sampler_parameters_out_of_range_are_400s_and_extremes_in_range_sample() {
    let h = harness(None);
    // Out-of-range values never reach the engine: the validators answer 400.
    let r = post(&h, "/v1/completions", r#"{"prompt":"x","temperature":-1,"top_p":2}"#);
    assert_eq!(r.status, 400);
    // In range for the API, and accepted by the sampler built from them.
    let r = post(&h, "/v1/completions", r#"{"prompt":"x","top_k":-1,"repetition_penalty":1e30,"min_p":1}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn the_api_key_guards_every_route_but_health() {
    let h = harness(Some("k"));
    assert_eq!(h.request(b"GET", b"/v1/models", &[], Vec::new()).unwrap().status, 401);
    assert_eq!(h.request(b"GET", b"/v1/models", &[(b"authorization", b"Bearer k")], Vec::new()).unwrap().status, 200);
    assert_eq!(h.request(b"GET", b"/health", &[], Vec::new()).unwrap().status, 200);
}

#[test]
fn requests_hyper_would_refuse_are_not_sent() {
    let h = harness(None);
    assert!(h.request(b"G ET", b"/health", &[], Vec::new()).is_none());
    assert!(h.request(b"GET", b"/he alth", &[], Vec::new()).is_none());
    assert!(h.request(b"GET", b"/health", &[(b"bad header", b"x")], Vec::new()).is_none());
}
