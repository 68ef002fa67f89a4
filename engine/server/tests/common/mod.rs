//! What the server tests share: synthetic models written to temporary files (orcd-fixtures, with
//! the real vocabulary of their architecture from the fetch cache), servers on ephemeral loopback
//! ports, and a tiny HTTP/1.1 client over a raw TCP stream (chunked bodies, SSE events read as
//! they arrive, each with its arrival time). Every read has a timeout: no test can hang.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orcd_backends::Column;
use orcd_fixtures::synthetic::{Arch, Size, Spec, SyntheticModel, Vocab, WeightType};
use orcd_server::{ServeConfig, Server};

pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

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

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// An open response whose body is read incrementally.
pub struct Conn {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    chunked: bool,
    remaining: Option<usize>,
    /// Body bytes read but not yet consumed as events.
    buf: Vec<u8>,
    eof: bool,
}

pub fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Conn {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    if !body.is_empty() {
        req.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap_or_else(|| panic!("status line {line:?}")).parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let remaining = get("content-length").map(|v| v.parse().unwrap());
    Conn { reader, status, headers, chunked, remaining, buf: Vec::new(), eof: false }
}

impl Conn {
    /// Read more body bytes into `buf`; false at the end of the body.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.chunked {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                self.eof = true;
                return false;
            }
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or_else(|_| panic!("chunk size {line:?}"));
            let mut data = vec![0; n + 2];
            self.reader.read_exact(&mut data).unwrap();
            if n == 0 {
                self.eof = true;
                return false;
            }
            self.buf.extend_from_slice(&data[..n]);
            true
        } else if let Some(r) = self.remaining {
            if r == 0 {
                self.eof = true;
                return false;
            }
            let mut data = vec![0; r.min(65536)];
            let got = self.reader.read(&mut data).unwrap();
            if got == 0 {
                self.eof = true;
                return false;
            }
            self.buf.extend_from_slice(&data[..got]);
            self.remaining = Some(r - got);
            true
        } else {
            let mut data = vec![0; 65536];
            let got = self.reader.read(&mut data).unwrap_or(0);
            if got == 0 {
                self.eof = true;
                return false;
            }
            self.buf.extend_from_slice(&data[..got]);
            true
        }
    }

    pub fn body(mut self) -> Resp {
        while self.fill() {}
        Resp { status: self.status, headers: self.headers, body: self.buf }
    }

    /// The next SSE event (`event` name or `None`, `data`), or `None` at the end of the body.
    pub fn event(&mut self) -> Option<(Option<String>, String)> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(raw).expect("events are whole UTF-8");
                let mut name = None;
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                return Some((name, data));
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "a partial event at the end: {:?}", String::from_utf8_lossy(&self.buf));
                return None;
            }
        }
    }

    pub fn events(mut self) -> Vec<(Option<String>, String)> {
        let mut v = Vec::new();
        while let Some(e) = self.event() {
            v.push(e);
        }
        v
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
