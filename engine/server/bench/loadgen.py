"""A small streaming load generator for OpenAI-compatible servers (Python stdlib only).

C concurrent clients each send R streamed /v1/completions requests back to back and time them:
time to first token (TTFT, first non-empty text chunk), inter-token latency (gap between
consecutive chunks), output tokens per second over the wall time of the level (chunks counted as
tokens; the server's `usage` is used instead when it sends one). It is light (one process,
threads): on a 2-core machine it takes little CPU from the server it measures. The maintained
load tool runs through `serving.sh` (aiperf, with the GGUF's own tokenizer written by
`gguf_tokenizer.py`). Loopback only; every request has a timeout and the run is bounded.

    python3 engine/server/bench/loadgen.py --url http://127.0.0.1:8080 --concurrency 1,4,16 \
        --requests 4 --max-tokens 64 [--extra '{"ignore_eos": true}']

Prints one JSON object per concurrency level.
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 2)


def one_level(url, conc, reqs, max_tokens, temperature, extra):
    u = urllib.parse.urlparse(url)
    ttft, itl, tokens, errors = [], [], [0], [0]
    lock = threading.Lock()

    def client(i):
        for r in range(reqs):
            body = {"model": "m", "prompt": f"Story {i}-{r}: Once upon a time, in a land far away,",
                    "max_tokens": max_tokens, "temperature": temperature, "seed": 1000 * i + r,
                    "stream": True, "stream_options": {"include_usage": True}}
            body.update(extra)
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
            t0 = time.perf_counter()
            first = last = None
            n = 0
            usage = None
            try:
                c.request("POST", "/v1/completions", json.dumps(body), {"content-type": "application/json"})
                resp = c.getresponse()
                if resp.status != 200:
                    raise RuntimeError(f"status {resp.status}")
                for line in resp:
                    line = line.strip()
                    if not line.startswith(b"data: ") or line == b"data: [DONE]":
                        continue
                    d = json.loads(line[6:])
                    if d.get("usage"):
                        usage = d["usage"].get("completion_tokens")
                    if not d.get("choices") or not d["choices"][0].get("text"):
                        continue
                    now = time.perf_counter()
                    if first is None:
                        first = now - t0
                    elif last is not None:
                        with lock:
                            itl.append(now - last)
                    last = now
                    n += 1
            except Exception:  # noqa: BLE001 - counted, the run goes on
                with lock:
                    errors[0] += 1
                continue
            finally:
                c.close()
            with lock:
                if first is not None:
                    ttft.append(first)
                tokens[0] += usage if usage is not None else n

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client, args=(i,)) for i in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    return {"concurrency": conc, "requests": conc * reqs, "errors": errors[0],
            "output_tok_s": round(tokens[0] / wall, 1), "ttft_p50_ms": pct(ttft, 0.5),
            "ttft_p99_ms": pct(ttft, 0.99), "itl_p50_ms": pct(itl, 0.5), "itl_p99_ms": pct(itl, 0.99)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=4, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--extra", default="{}", help="JSON merged into every request body")
    a = ap.parse_args()
    for c in [int(x) for x in a.concurrency.split(",")]:
        print(json.dumps(one_level(a.url, c, a.requests, a.max_tokens, a.temperature, json.loads(a.extra))),
              flush=True)


main()
