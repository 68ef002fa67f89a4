//! What the server tests share: synthetic models written to temporary files (orcd-fixtures, with
//! the real vocabulary of their architecture from the fetch cache), servers on ephemeral loopback
//! ports, and a tiny HTTP/1.1 client over a raw TCP stream (chunked bodies, SSE events read as
//! they arrive, each with its arrival time). Every read has a timeout: no test can hang.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orcd_backends::Column;
use orcd_fixtures::synthetic::{Arch, Size, Spec, SyntheticModel, Vocab, WeightType};
use orcd_server::{client, ServeConfig, Server};

pub const READ_TIMEOUT: Duration = client::READ_TIMEOUT;

fn cache() -> PathBuf {
    std::env::var_os("ORCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/orcd"))
}

/// A synthetic tiny Q8_0 model of `arch` (`llama`: SentencePiece vocab; `qwen2`: BPE with a chat
/// template) as a file; written once per process.
pub fn model(arch: &str) -> PathBuf {
    let vocab = match arch {
        "llama" => "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf",
        "qwen2" => "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf",
        _ => panic!("no vocabulary for {arch}"),
    };
    let path = std::env::temp_dir().join(format!("orcd-server-test-{}-{arch}.gguf", std::process::id()));
    if path.is_file() {
        return path;
    }
    let vp = cache().join(vocab);
    assert!(vp.is_file(), "{} missing: run python3 fixtures/fetch.py", vp.display());
    let vocab = Vocab::open(&vp).unwrap();
    let spec = Spec {
        arch: Arch::from_name(arch).unwrap(),
        size: Size::from_name("tiny").unwrap(),
        ty: WeightType::from_name("q8_0").unwrap(),
        seed: 1,
    };
    let bytes = SyntheticModel::new(spec, &vocab).to_writer().unwrap().to_bytes().0;
    // Write then rename: tests of one process may race to create it.
    let tmp = path.with_extension(format!("tmp{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

pub fn config(arch: &str) -> ServeConfig {
    let mut c = ServeConfig::new(model(arch), Column::CPU_FAST);
    c.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    c.ctx = Some(1024);
    c.parallel = 2;
    c.queue = 4;
    c
}

pub fn start(cfg: ServeConfig) -> Server {
    let s = Server::start(cfg, false).unwrap();
    s.wait_ready(Duration::from_secs(60)).unwrap();
    s
}

/// A whole response ([`orcd_server::client::Response`]) read as text or JSON, failing the test
/// otherwise.
pub use client::Response as Resp;

pub trait RespExt {
    fn text(&self) -> String;
    fn json(&self) -> serde_json::Value;
}

impl RespExt for Resp {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// An open response whose body is read incrementally ([`orcd_server::client::Conn`], its
/// errors turned into test failures).
pub struct Conn {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    inner: client::Conn,
}

pub fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Conn {
    let inner = client::send(addr, method, path, headers, body).unwrap();
    Conn { status: inner.status, headers: inner.headers.clone(), inner }
}

impl Conn {
    pub fn body(self) -> Resp {
        self.inner.body().unwrap()
    }

    /// The next SSE event (`event` name or `None`, `data`), or `None` at the end of the body.
    pub fn event(&mut self) -> Option<(Option<String>, String)> {
        self.inner.event().unwrap()
    }

    pub fn events(self) -> Vec<(Option<String>, String)> {
        self.inner.events().unwrap()
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    send(addr, "GET", path, &[], b"").body()
}

pub fn post(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Resp {
    send(addr, "POST", path, &[], body.to_string().as_bytes()).body()
}

pub fn post_stream(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Conn {
    send(addr, "POST", path, &[], body.to_string().as_bytes())
}

/// A Prometheus sample's value (`name` with its labels as written, e.g. `x{reason="EOS"}`).
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = get(addr, "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
        .parse()
        .unwrap()
}

/// Poll until `f` holds (at most `limit`).
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// The text and end of an /execute stream.
pub fn execute_text(events: &[(Option<String>, String)]) -> (String, serde_json::Value) {
    let mut text = String::new();
    let mut end = serde_json::Value::Null;
    for (name, data) in events {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        match name.as_deref() {
            Some("token") => text.push_str(v["t"].as_str().unwrap()),
            Some("end") | Some("error") => end = v,
            _ => {}
        }
    }
    (text, end)
}
