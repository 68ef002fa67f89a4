//! The OpenAI-compatible API against the real server on loopback: the stream's shape (one id,
//! the role in the first delta only, finish_reason once, include_usage exactly as OpenAI defines
//! it, `data: [DONE]`), stream text equal to non-stream text, logprobs invariants, the same seeded
//! request alone and beside three others, errors in OpenAI's envelope (also inside a stream),
//! /v1/models, /tokenize and /detokenize.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn chunks(c: Conn) -> Vec<Value> {
    let ev = c.events();
    let (last, rest) = ev.split_last().expect("events");
    assert_eq!(last, &(None, "[DONE]".to_string()), "the stream ends with data: [DONE]");
    rest.iter()
        .map(|(name, data)| {
            assert!(name.is_none(), "OpenAI chunks are unnamed");
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

fn chat_body(extra: Value) -> Value {
    let mut b = json!({"model": "any", "messages": [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Say hello"}]}], "max_tokens": 16, "seed": 11,
        "temperature": 0.8});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

fn stream_text(chunks: &[Value], chat: bool) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .filter_map(|ch| if chat { ch["delta"]["content"].as_str() } else { ch["text"].as_str() })
        .collect()
}

#[test]
fn chat_stream_shape_and_include_usage() {
    let s = start(config("qwen2"));
    let plain = post(s.addr(), "/v1/chat/completions", &chat_body(json!({})));
    assert_eq!(plain.status, 200, "{}", plain.text());
    let plain = plain.json();
    assert_eq!(plain["object"], "chat.completion");
    assert_eq!(plain["choices"][0]["message"]["role"], "assistant");
    let usage = plain["usage"].clone();
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    let text = plain["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    let finish = plain["choices"][0]["finish_reason"].as_str().unwrap().to_string();
    assert!(
        (finish == "length" && usage["completion_tokens"] == 16)
            || (finish == "stop" && usage["completion_tokens"].as_u64() < Some(16)),
        "{finish} after {}",
        usage["completion_tokens"]
    );

    for include in [None, Some(false), Some(true)] {
        let mut extra = json!({"stream": true});
        if let Some(b) = include {
            extra["stream_options"] = json!({"include_usage": b});
        }
        let c = chunks(post_stream(s.addr(), "/v1/chat/completions", &chat_body(extra)));
        let ids: std::collections::BTreeSet<&str> = c.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1, "one id across chunks");
        assert!(ids.iter().next().unwrap().starts_with("chatcmpl-"));
        assert!(c.iter().all(|c| c["object"] == "chat.completion.chunk"));
        let roles: Vec<usize> = c
            .iter()
            .enumerate()
            .filter(|(_, c)| c["choices"][0]["delta"].get("role").is_some())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(roles, [0], "the role in the first delta only");
        assert_eq!(c[0]["choices"][0]["delta"]["role"], "assistant");
        let finishes: Vec<(usize, &str)> = c
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c["choices"].get(0).and_then(|ch| ch["finish_reason"].as_str()).map(|f| (i, f)))
            .collect();
        let with_choices = c.iter().filter(|c| !c["choices"].as_array().unwrap().is_empty()).count();
        assert_eq!(finishes, [(with_choices - 1, finish.as_str())], "finish_reason once, in the last choice chunk");
        assert_eq!(stream_text(&c, true), text, "stream text == non-stream text (same seed)");
        if include == Some(true) {
            let last = c.last().unwrap();
            assert_eq!(last["choices"], json!([]), "the usage chunk has no choices");
            // The same counts; cached_tokens may differ (the first run filled the prefix cache).
            for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
                assert_eq!(last["usage"][k], usage[k], "{k}");
            }
            let cached = last["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
            assert!(cached < usage["prompt_tokens"].as_u64().unwrap());
            assert!(c[..c.len() - 1].iter().all(|c| c.get("usage") == Some(&Value::Null)), "other chunks: usage null");
        } else {
            assert!(c.iter().all(|c| c.get("usage").is_none()), "no usage unless asked");
            assert!(c.iter().all(|c| !c["choices"].as_array().unwrap().is_empty()));
        }
    }
}

#[test]
fn completions_stream_equals_non_stream_and_finish_reason_is_what_happened() {
    let s = start(config("llama"));
    let body = json!({"model": "m", "prompt": "The capital of France", "max_tokens": 7, "temperature": 0});
    let r = post(s.addr(), "/v1/completions", &body).json();
    assert_eq!(r["object"], "text_completion");
    assert!(r["id"].as_str().unwrap().starts_with("cmpl-"));
    let n = r["usage"]["completion_tokens"].as_u64().unwrap();
    let expect = if n == 7 { "length" } else { "stop" };
    assert_eq!(r["choices"][0]["finish_reason"], expect);
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let c = chunks(post_stream(s.addr(), "/v1/completions", &sb));
    assert_eq!(stream_text(&c, false), r["choices"][0]["text"].as_str().unwrap());
    assert_eq!(c.last().unwrap()["choices"][0]["finish_reason"], expect);
    // A token-id prompt is the same prompt.
    let f = orcd_gguf::gguf::GgufFile::open(&model("llama")).unwrap();
    let ids =
        orcd_engine::tokenizer::Tokenizer::from_gguf(&f).unwrap().encode("The capital of France", true, false).unwrap();
    let r2 = post(s.addr(), "/v1/completions", &json!({"prompt": ids, "max_tokens": 7, "temperature": 0})).json();
    assert_eq!(r2["choices"][0]["text"], r["choices"][0]["text"]);
    assert_eq!(r2["usage"], r["usage"]);
    // A stop string ends it with "stop" and is not in the text.
    let long = post(
        s.addr(),
        "/v1/completions",
        &json!({"prompt": "The capital of France", "max_tokens": 40, "temperature": 0}),
    )
    .json();
    let full = long["choices"][0]["text"].as_str().unwrap().to_string();
    let cut: String = full.chars().skip(3).take(2).collect();
    if full.chars().count() > 6 && !cut.trim().is_empty() {
        let r = post(
            s.addr(),
            "/v1/completions",
            &json!({"prompt": "The capital of France", "max_tokens": 40, "temperature": 0, "stop": [cut.clone()]}),
        )
        .json();
        let t = r["choices"][0]["text"].as_str().unwrap();
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert!(!t.contains(&cut) && full.starts_with(t), "{t:?} / {full:?} / {cut:?}");
    }
}

#[test]
fn logprobs_are_log_probabilities_whose_tokens_make_the_text() {
    let s = start(config("qwen2"));
    for stream in [false, true] {
        let body = chat_body(
            json!({"logprobs": true, "top_logprobs": 5, "temperature": 0, "max_tokens": 12, "stream": stream}),
        );
        let (text, content): (String, Vec<Value>) = if stream {
            let c = chunks(post_stream(s.addr(), "/v1/chat/completions", &body));
            let content = c
                .iter()
                .filter_map(|c| c["choices"].get(0))
                .filter_map(|ch| ch["logprobs"]["content"].as_array())
                .flatten()
                .cloned()
                .collect();
            (stream_text(&c, true), content)
        } else {
            let r = post(s.addr(), "/v1/chat/completions", &body).json();
            let ch = &r["choices"][0];
            (
                ch["message"]["content"].as_str().unwrap().to_string(),
                ch["logprobs"]["content"].as_array().unwrap().clone(),
            )
        };
        assert!(!content.is_empty());
        let joined: String = content.iter().map(|t| t["token"].as_str().unwrap()).collect();
        assert_eq!(joined, text, "tokens concatenate to the text (stream {stream})");
        for t in &content {
            let lp = t["logprob"].as_f64().unwrap();
            assert!(lp <= 0.0 && lp.is_finite(), "{t}");
            let bytes: Vec<u8> = t["bytes"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            assert_eq!(bytes, t["token"].as_str().unwrap().as_bytes());
            let top = t["top_logprobs"].as_array().unwrap();
            assert_eq!(top.len(), 5);
            let lps: Vec<f64> = top.iter().map(|x| x["logprob"].as_f64().unwrap()).collect();
            assert!(lps.windows(2).all(|w| w[0] >= w[1]) && lps.iter().all(|&x| x <= 0.0), "{lps:?}");
            // Greedy: the chosen token is the most likely one.
            assert!((lp - lps[0]).abs() < 1e-6, "{lp} vs {lps:?}");
            let mass: f64 = lps.iter().map(|x| x.exp()).sum();
            assert!(mass <= 1.0 + 1e-4, "{mass}");
        }
    }
    // Completions: legacy shape.
    let r = post(
        s.addr(),
        "/v1/completions",
        &json!({"prompt": "One two three", "max_tokens": 10, "logprobs": 3, "temperature": 0}),
    )
    .json();
    let ch = &r["choices"][0];
    let lp = &ch["logprobs"];
    let toks: Vec<&str> = lp["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(toks.concat(), ch["text"].as_str().unwrap());
    let offsets: Vec<u64> = lp["text_offset"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    let mut at = 0;
    for (t, o) in toks.iter().zip(&offsets) {
        assert_eq!(*o, at);
        at += t.chars().count() as u64;
    }
    assert!(lp["token_logprobs"].as_array().unwrap().iter().all(|x| x.as_f64().unwrap() <= 0.0));
    assert!(lp["top_logprobs"].as_array().unwrap().iter().all(|m| m.as_object().unwrap().len() <= 3));
    // Limits.
    for (body, param) in [
        (chat_body(json!({"logprobs": true, "top_logprobs": 21})), "top_logprobs"),
        (chat_body(json!({"top_logprobs": 2})), "top_logprobs"),
        (json!({"prompt": "x", "logprobs": 21}), "logprobs"),
    ] {
        let path = if body.get("messages").is_some() { "/v1/chat/completions" } else { "/v1/completions" };
        let r = post(s.addr(), path, &body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["error"]["param"], param);
    }
}

#[test]
fn the_same_seeded_request_gives_the_same_tokens_alone_or_beside_three_others() {
    let mut cfg = config("llama");
    cfg.parallel = 4;
    let s = start(cfg);
    let addr = s.addr();
    let target = json!({"prompt": "In a hole in the ground", "max_tokens": 24, "seed": 42, "temperature": 0.9,
        "top_k": 0, "min_p": 0, "logprobs": 1});
    let alone = post(addr, "/v1/completions", &target).json();
    let tokens = |r: &Value| r["choices"][0]["logprobs"]["tokens"].clone();
    // Three long neighbours running first; the target joins their batch, they leave after it.
    let others: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let b = json!({"prompt": format!("Neighbour number {i} says"), "max_tokens": 400, "seed": i,
                    "temperature": 1.0, "top_k": 0, "min_p": 0});
                post(addr, "/v1/completions", &b).json()
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || metric(addr, "orcd_requests_running") == 3.0));
    let beside = post(addr, "/v1/completions", &target).json();
    let still = metric(addr, "orcd_requests_running");
    for o in others {
        assert_eq!(o.join().unwrap()["choices"][0]["finish_reason"], "length", "a neighbour stopped early");
    }
    assert!(still >= 3.0, "the neighbours were not running beside the target ({still})");
    assert_eq!(tokens(&beside), tokens(&alone));
    assert_eq!(beside["choices"][0]["text"], alone["choices"][0]["text"]);
    assert_eq!(alone["usage"]["completion_tokens"], 24);
}

#[test]
fn errors_use_the_openai_envelope_also_inside_a_stream() {
    let mut cfg = config("qwen2");
    cfg.timeout = Duration::from_millis(30);
    let s = start(cfg);
    for (path, body, param) in [
        ("/v1/chat/completions", chat_body(json!({"temperature": 3})), Some("temperature")),
        ("/v1/chat/completions", chat_body(json!({"n": 2})), Some("n")),
        ("/v1/chat/completions", chat_body(json!({"stream_options": {"include_usage": true}})), Some("stream_options")),
        ("/v1/chat/completions", json!({"model": "m"}), Some("messages")),
        ("/v1/chat/completions", json!({"messages": [{"content": "x"}]}), Some("messages[0].role")),
        ("/v1/completions", json!({"prompt": ["a", "b"]}), Some("prompt")),
        ("/v1/completions", json!({"prompt": [1, 99999999]}), Some("prompt")),
        ("/v1/completions", json!({"prompt": "x", "max_tokens": 0}), Some("max_tokens")),
        ("/v1/completions", json!({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}), Some("stop")),
    ] {
        let r = post(s.addr(), path, &body);
        assert_eq!(r.status, 400, "{path} {body}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"].as_str(), param, "{e}");
        assert!(e["message"].is_string() && e.get("code").is_some(), "{e}");
    }
    let r = send(s.addr(), "POST", "/v1/completions", &[], b"{not json").body();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].is_string());
    let r = get(s.addr(), "/v1/nothing");
    assert_eq!((r.status, r.json()["error"]["type"].as_str()), (404, Some("not_found_error")));
    // A failure after the stream began: an error chunk in the envelope, then [DONE].
    let ev = post_stream(
        s.addr(),
        "/v1/chat/completions",
        &chat_body(json!({"stream": true, "max_tokens": 900,
        "temperature": 1.0, "top_k": 0, "min_p": 0})),
    )
    .events();
    assert_eq!(ev.last().unwrap().1, "[DONE]");
    let err: Value = serde_json::from_str(&ev[ev.len() - 2].1).unwrap();
    assert_eq!(err["error"]["code"], "INFERENCE_TIMEOUT", "{err}");
    assert!(err["error"]["message"].is_string() && err["error"].get("param").is_some());
}

#[test]
fn models_tokenize_and_detokenize() {
    let s = start(config("llama"));
    let m = get(s.addr(), "/v1/models").json();
    assert_eq!(m["object"], "list");
    let path = model("llama");
    assert_eq!(m["data"][0]["id"], path.file_stem().unwrap().to_str().unwrap());
    assert_eq!(m["data"][0]["object"], "model");
    assert_eq!(m["data"][0]["max_model_len"], 1024);
    let f = orcd_gguf::gguf::GgufFile::open(&path).unwrap();
    let tok = orcd_engine::tokenizer::Tokenizer::from_gguf(&f).unwrap();
    let text = "Hello world, héllo wörld";
    let r = post(s.addr(), "/tokenize", &json!({"model": "m", "prompt": text})).json();
    let ids = tok.encode(text, true, false).unwrap();
    assert_eq!(r["tokens"], json!(ids));
    assert_eq!(r["count"], ids.len());
    assert_eq!(r["max_model_len"], 1024);
    let r =
        post(s.addr(), "/tokenize", &json!({"prompt": text, "add_special_tokens": false, "return_token_strs": true}))
            .json();
    let plain = tok.encode(text, false, false).unwrap();
    assert_eq!(r["tokens"], json!(plain));
    assert_eq!(r["token_strs"].as_array().unwrap().len(), plain.len());
    let d = post(s.addr(), "/detokenize", &json!({"tokens": plain})).json();
    assert_eq!(d["prompt"], String::from_utf8(tok.decode(&plain).unwrap()).unwrap());
    assert!(d["prompt"].as_str().unwrap().contains("héllo wörld"));
    let bad = post(s.addr(), "/detokenize", &json!({"tokens": [1, 1 << 30]}));
    assert_eq!((bad.status, bad.json()["error"]["param"].as_str()), (400, Some("tokens")));
    assert_eq!(post(s.addr(), "/detokenize", &json!({})).status, 400);
}

#[test]
fn multi_turn_chat_reuses_the_cached_prefix_without_changing_a_token() {
    let turn = |s: &orcd_server::Server, history: &[(String, String)]| -> Value {
        let msgs: Vec<Value> = history.iter().map(|(r, c)| json!({"role": r, "content": c})).collect();
        post(
            s.addr(),
            "/v1/chat/completions",
            &json!({"messages": msgs, "max_tokens": 10, "seed": 5,
            "temperature": 0.9, "logprobs": true}),
        )
        .json()
    };
    let run = |cache: bool| {
        let mut cfg = config("qwen2");
        cfg.parallel = 1;
        cfg.prefix_cache = cache;
        let s = start(cfg);
        let mut history =
            vec![("system".to_string(), "You are terse.".to_string()), ("user".into(), "Name a colour.".into())];
        let mut out = Vec::new();
        let mut cached = 0;
        for q in ["And a fruit?", "And a city?"] {
            let r = turn(&s, &history);
            cached += r["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
            history.push(("assistant".into(), r["choices"][0]["message"]["content"].as_str().unwrap().to_string()));
            history.push(("user".into(), q.to_string()));
            out.push(r["choices"][0]["logprobs"].clone());
        }
        let last = turn(&s, &history);
        cached += last["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
        out.push(last["choices"][0]["logprobs"].clone());
        let total = metric(s.addr(), "orcd_prefix_cache_reused_tokens_total");
        assert_eq!(cached as f64, total, "per-request cached_tokens add up to the counter");
        (out, total)
    };
    let (cached, reused) = run(true);
    let (fresh, none) = run(false);
    assert_eq!(none, 0.0);
    assert!(reused > 20.0, "later turns continue from the cached history ({reused} tokens reused)");
    assert_eq!(cached, fresh, "tokens and logprobs with the prefix cache == without");
}

#[test]
fn a_client_that_leaves_a_non_streamed_request_cancels_it() {
    let s = start(config("llama"));
    let body = json!({"prompt": "Once upon a time", "max_tokens": 1000, "temperature": 1.0, "top_k": 0, "min_p": 0,
        "seed": 1});
    let mut tcp = std::net::TcpStream::connect(s.addr()).unwrap();
    let b = body.to_string();
    use std::io::Write;
    write!(tcp, "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{b}", b.len()).unwrap();
    assert!(wait_until(Duration::from_secs(5), || metric(s.addr(), "orcd_requests_running") == 1.0));
    drop(tcp);
    assert!(
        wait_until(Duration::from_secs(2), || metric(s.addr(), "orcd_requests_total{reason=\"CANCELLED\"}") == 1.0),
        "the request kept running without its client"
    );
    assert_eq!(metric(s.addr(), "orcd_requests_running"), 0.0);
}
