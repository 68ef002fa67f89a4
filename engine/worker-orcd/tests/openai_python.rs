//! The official `openai` Python client (tests/openai_client.py) against `worker-orcd serve` on
//! the fetched SmolLM2-135M-Instruct, with an API key: chat streamed at temperature 0 equals
//! `generate --chat`, usage, seed, logprobs, typed errors. Where Python's `openai` package is not
//! installed (ci/test.sh installs it, pinned) the trial is reported ignored with the reason —
//! not run is never passed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use libtest_mimic::{Arguments, Failed, Trial};

fn smollm() -> PathBuf {
    let cache = std::env::var_os("ORCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/orcd"));
    cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn openai_missing() -> Option<String> {
    match Command::new("python3").args(["-c", "import openai"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(_) => Some("python3 has no `openai` package (ci/test.sh installs it)".into()),
        Err(e) => Some(format!("python3 cannot run: {e}")),
    }
}

fn run() -> Result<(), Failed> {
    let m = smollm();
    if !m.is_file() {
        return Err(format!("{} missing: run python3 fixtures/fetch.py", m.display()).into());
    }
    let bin = env!("CARGO_BIN_EXE_worker-orcd");
    let q = "What is the capital of France?";
    let out = Command::new(bin)
        .args(["generate", "--model", m.to_str().unwrap(), "--backend", "cpu", "--chat", "--prompt", q])
        .args(["--temperature", "0", "--max-tokens", "24", "--json"])
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    let expected: String = String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_string))
        .collect();
    let mut child = Command::new(bin)
        .args(["serve", "--model", m.to_str().unwrap(), "--backend", "cpu", "--addr", "127.0.0.1:0"])
        .args(["--ctx", "512", "--parallel", "2", "--api-key", "k-test"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut err = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let mut line = String::new();
    err.read_line(&mut line)?;
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr = line.trim().rsplit("http://").next().unwrap_or("").to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_client.py");
    // The script's client retries nothing; wait for the model first (/health needs no key).
    let mut ready = false;
    for _ in 0..600 {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = write!(s, "GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let result = if ready {
        Command::new("python3").arg(script).arg(format!("http://{addr}")).arg(&expected).output()
    } else {
        let _ = child.kill();
        return Err("the server did not get ready".into());
    };
    let _ = child.kill();
    let _ = child.wait();
    let out = result?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).into())
    }
}

fn main() {
    let args = Arguments::from_args();
    let mut trial = Trial::test("openai_python_client_against_serve", run);
    if let Some(reason) = openai_missing() {
        eprintln!("openai_python_client_against_serve: not run: {reason}");
        trial = trial.with_ignored_flag(true);
    }
    libtest_mimic::run(&args, vec![trial]).exit();
}
