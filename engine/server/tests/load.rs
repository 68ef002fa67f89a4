//! Load on loopback, bounded in count and time: 64 concurrent streams on a tiny synthetic model
//! (4 sequences, a queue of 16) end without an error — each either streams to `end` or is refused
//! at once with 429 — the waiting gauge stays within the queue limit (plus the free sequences),
//! the gauges are back to 0 afterwards, and the process's resident memory does not grow from one
//! round to the next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;

const CLIENTS: usize = 64;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One round: (accepted and ended, refused with 429).
fn round(addr: std::net::SocketAddr, seed: u64) -> (usize, usize) {
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let body = json!({"prompt": format!("client {i} says"), "max_tokens": 24, "seed": seed + i as u64});
                let c = post_stream(addr, "/execute", &body);
                match c.status {
                    200 => {
                        let ev = c.events();
                        let names: Vec<_> = ev.iter().map(|e| e.0.clone().unwrap()).collect();
                        assert_eq!(names.first().map(String::as_str), Some("started"), "{names:?}");
                        assert_eq!(names.last().map(String::as_str), Some("end"), "{names:?}");
                        (1, 0)
                    }
                    429 => {
                        let r = c.body();
                        assert_eq!(r.json()["code"], "QUEUE_FULL");
                        (0, 1)
                    }
                    s => panic!("status {s}"),
                }
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[test]
fn sixty_four_concurrent_streams_end_cleanly_within_the_queue_limit() {
    let mut cfg = config("llama");
    cfg.parallel = 4;
    cfg.queue = 16;
    let s = start(cfg);
    let addr = s.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut max_waiting = 0.0f64;
            let mut max_running = 0.0f64;
            while !stop.load(Ordering::Relaxed) {
                max_waiting = max_waiting.max(metric(addr, "orcd_requests_waiting"));
                max_running = max_running.max(metric(addr, "orcd_requests_running"));
                std::thread::sleep(Duration::from_millis(2));
            }
            (max_waiting, max_running)
        })
    };
    let (ok1, refused1) = round(addr, 0);
    let rss1 = rss_kib();
    let mut ok = ok1;
    let mut refused = refused1;
    for r in 1..3 {
        let (a, b) = round(addr, 1000 * r);
        ok += a;
        refused += b;
    }
    let rss3 = rss_kib();
    stop.store(true, Ordering::Relaxed);
    let (max_waiting, max_running) = watcher.join().unwrap();
    assert_eq!(ok + refused, 3 * CLIENTS);
    assert!(ok1 >= 4 + 16, "at least the sequences and the queue are served: {ok1}");
    // Waiting = accepted, not yet holding a sequence: at most the queue, plus the requests taken
    // while sequences were free (they start at the next step).
    assert!(max_waiting <= 16.0 + 4.0, "the waiting gauge reached {max_waiting}");
    assert!((2.0..=4.0).contains(&max_running), "running peaked at {max_running}");
    assert_eq!(metric(addr, "orcd_requests_rejected_total"), refused as f64);
    let finished: f64 =
        ["EOS", "MAX_TOKENS"].iter().map(|r| metric(addr, &format!("orcd_requests_total{{reason=\"{r}\"}}"))).sum();
    assert_eq!(finished, ok as f64, "every accepted request ended normally");
    assert_eq!(metric(addr, "orcd_requests_total{reason=\"error\"}"), 0.0);
    assert!(wait_until(Duration::from_secs(2), || metric(addr, "orcd_requests_running") == 0.0));
    assert_eq!(metric(addr, "orcd_requests_waiting"), 0.0);
    // Memory flat: two more rounds after the first grow resident memory by less than 16 MiB.
    assert!(rss3 < rss1 + 16 * 1024, "resident memory grew from {rss1} KiB to {rss3} KiB");
    eprintln!("load: {ok} streamed, {refused} refused (429); RSS {rss1} → {rss3} KiB");
}
