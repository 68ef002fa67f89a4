//! A minimal HTTP/1.1 client over a raw TCP stream, for the conformance harness's `server` suite
//! and this crate's tests: one request per connection (`connection: close`), bodies read by
//! content length, chunks or to the end, and SSE events read as they arrive.
//!
//! Invariants: every read has a timeout (no caller can hang on a silent server); nothing the
//! server sends is unwrapped — a malformed status line, header, chunk size or event is a
//! [`ServerError::Client`] naming what was wrong.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::{Result, ServerError};

/// The longest any single read waits.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |e| ServerError::Client(format!("{what}: {e}"))
}

/// One SSE event: its `event:` name (if any) and its `data:` lines joined.
pub type Event = (Option<String>, String);

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An open response whose body is read incrementally.
#[derive(Debug)]
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

/// Send one request (a JSON `content-type` when `body` is not empty) and read the status line
/// and headers.
pub fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Conn> {
    let mut s = TcpStream::connect(addr).map_err(io("connect"))?;
    s.set_read_timeout(Some(READ_TIMEOUT)).map_err(io("set_read_timeout"))?;
    s.set_nodelay(true).map_err(io("set_nodelay"))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    if !body.is_empty() {
        req.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(io("write the request"))?;
    s.write_all(body).map_err(io("write the body"))?;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(io("read the status line"))?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ServerError::Client(format!("status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).map_err(io("read a header"))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').ok_or_else(|| ServerError::Client(format!("header line {h:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let remaining = match get("content-length") {
        Some(v) => Some(v.parse().map_err(|_| ServerError::Client(format!("content-length {v:?}")))?),
        None => None,
    };
    Ok(Conn { reader, status, headers, chunked, remaining, buf: Vec::new(), eof: false })
}

impl Conn {
    /// Read more body bytes into `buf`; false at the end of the body.
    fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let got = if self.chunked {
            let mut line = String::new();
            if self.reader.read_line(&mut line).map_err(io("read a chunk size"))? == 0 {
                0
            } else {
                let n = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| ServerError::Client(format!("chunk size {line:?}")))?;
                let mut data = vec![0; n + 2];
                self.reader.read_exact(&mut data).map_err(io("read a chunk"))?;
                self.buf.extend_from_slice(&data[..n]);
                n
            }
        } else {
            let want = self.remaining.map_or(65536, |r| r.min(65536));
            let mut data = vec![0; want];
            let got = if want == 0 { 0 } else { self.reader.read(&mut data).map_err(io("read the body"))? };
            self.buf.extend_from_slice(&data[..got]);
            if let Some(r) = self.remaining.as_mut() {
                *r -= got;
            }
            got
        };
        if got == 0 {
            self.eof = true;
        }
        Ok(got > 0)
    }

    /// The rest of the body.
    pub fn body(mut self) -> Result<Response> {
        while self.fill()? {}
        Ok(Response { status: self.status, headers: self.headers, body: self.buf })
    }

    /// The next SSE event, or `None` at the end of the body.
    pub fn event(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(raw).map_err(|_| ServerError::Client("an event is not UTF-8".into()))?;
                let mut name = None;
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                return Ok(Some((name, data)));
            }
            if !self.fill()? {
                if !self.buf.is_empty() {
                    return Err(ServerError::Client(format!(
                        "a partial event at the end: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    )));
                }
                return Ok(None);
            }
        }
    }

    /// Every remaining event.
    pub fn events(mut self) -> Result<Vec<Event>> {
        let mut v = Vec::new();
        while let Some(e) = self.event()? {
            v.push(e);
        }
        Ok(v)
    }
}
