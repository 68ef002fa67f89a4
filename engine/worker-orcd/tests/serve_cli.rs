//! `worker-orcd serve` as a process, on the fetched SmolLM2-135M-Instruct: the text the server
//! streams equals what `worker-orcd generate` prints for the same request at temperature 0 (chat
//! through the model's template, and a plain completion); SIGTERM drains a running request,
//! answers 503 meanwhile, and exits 0. Without the model these tests fail with the fetch command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../server/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::RespExt;
use serde_json::{json, Value};

fn smollm() -> PathBuf {
    let cache = std::env::var_os("ORCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/orcd"));
    let p = cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.is_file(), "{} missing: run python3 fixtures/fetch.py", p.display());
    p
}

/// A server process, killed when dropped.
struct Proc(Child, SocketAddr);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(args: &[&str]) -> Proc {
    let m = smollm();
    let mut child = Command::new(env!("CARGO_BIN_EXE_worker-orcd"))
        .args(["serve", "--model", m.to_str().unwrap(), "--addr", "127.0.0.1:0", "--backend", "cpu"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let p = Proc(child, addr);
    assert!(common::wait_until(Duration::from_secs(60), || common::get(addr, "/health").status == 200), "not ready");
    p
}

/// `generate --json`'s text for these arguments.
fn generate(args: &[&str]) -> String {
    let m = smollm();
    let out = Command::new(env!("CARGO_BIN_EXE_worker-orcd"))
        .args(["generate", "--model", m.to_str().unwrap(), "--json", "--backend", "cpu"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| v.get("text").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn stream_text(c: common::Conn, chat: bool) -> String {
    let ev = c.events();
    assert_eq!(ev.last().map(|e| e.1.as_str()), Some("[DONE]"));
    ev[..ev.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|v| {
            let ch = v["choices"].get(0)?.clone();
            if chat {
                ch["delta"]["content"].as_str().map(str::to_string)
            } else {
                ch["text"].as_str().map(str::to_string)
            }
        })
        .collect()
}

#[test]
fn served_text_equals_generate_at_temperature_0() {
    let p = serve(&["--parallel", "2", "--ctx", "512"]);
    let q = "What is the capital of France?";
    let chat = stream_text(
        common::post_stream(
            p.1,
            "/v1/chat/completions",
            &json!({"model": "smol", "messages": [{"role": "user", "content": q}], "temperature": 0,
                "max_tokens": 24, "stream": true}),
        ),
        true,
    );
    let cli = generate(&["--chat", "--prompt", q, "--temperature", "0", "--max-tokens", "24"]);
    assert!(!cli.is_empty());
    assert_eq!(chat, cli, "chat stream vs generate --chat");
    let prompt = "Once upon a time, in a small village,";
    let r = common::post(p.1, "/v1/completions", &json!({"prompt": prompt, "temperature": 0, "max_tokens": 20})).json();
    let cli = generate(&["--prompt", prompt, "--temperature", "0", "--max-tokens", "20"]);
    assert_eq!(r["choices"][0]["text"].as_str().unwrap(), cli, "completion vs generate");
    assert_eq!(r["usage"]["completion_tokens"], 20);
    // /execute at temperature 0 is the same text.
    let ev =
        common::post_stream(p.1, "/execute", &json!({"prompt": prompt, "temperature": 0, "max_tokens": 20})).events();
    assert_eq!(common::execute_text(&ev).0, cli);
}

#[test]
fn sigterm_drains_the_running_request_and_exits_0() {
    let mut p = serve(&["--parallel", "1", "--ctx", "256"]);
    let mut c = common::post_stream(
        p.1,
        "/execute",
        &json!({"prompt": "Once upon a time, in a small village,", "max_tokens": 40, "temperature": 0}),
    );
    assert_eq!(c.event().unwrap().0.as_deref(), Some("started"));
    let st = Command::new("kill").args(["-TERM", &p.0.id().to_string()]).status().unwrap();
    assert!(st.success());
    assert!(common::wait_until(Duration::from_secs(5), || common::get(p.1, "/health").status == 503));
    let r = common::post(p.1, "/v1/completions", &json!({"prompt": "x"}));
    assert_eq!(r.status, 503);
    let rest = c.events();
    let (_, end) = common::execute_text(&rest);
    assert_eq!(rest.last().unwrap().0.as_deref(), Some("end"), "{rest:?}");
    assert_eq!(end["tokens_out"], 40, "the running request finished: {rest:?}");
    let mut code = None;
    assert!(common::wait_until(Duration::from_secs(10), || {
        code = p.0.try_wait().unwrap();
        code.is_some()
    }));
    assert_eq!(code.unwrap().code(), Some(0));
}
