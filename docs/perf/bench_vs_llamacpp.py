#!/usr/bin/env python3
"""Decode / prefill speed of the engine's fast CPU backend against llama.cpp, same file, same run.

Per model and round: llama.cpp (llama-cpp-python 0.3.36, n_threads 2, default settings except
use_extra_bufts=False: the AMX repack SIGILLs on this VM) evaluates a 128-token prompt in one
batch, then 128 tokens one at a time; the engine does the same through `Model::forward` (the
`worker-orcd bench --numerics fast`, release build, 2 threads). Each
side runs in its own process; rounds alternate the two. Reported: best and median tok/s over the
rounds, and the ratio of the medians.

The machine is shared: before each measurement the script waits (up to --wait seconds) until the
CPUs have been idle for 3 s (busy fraction below --max-busy), and records that fraction and the
load average after the run (a run that overlapped someone's build shows a high one).

Usage: python3 docs/perf/bench_vs_llamacpp.py [--rounds 3] [--models smollm2,gemma3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
MODELS = {
    "smollm2": CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": CACHE / "models" / "gemma-3-270m-q4_k_m.gguf",
    "qwen05": Path(os.environ.get("ORCD_QWEN05", CACHE / "models" / "qwen2.5-0.5b-shape-q8_0.gguf")),
}

LLAMA = r'''
import sys, time, json
import llama_cpp, llama_cpp.llama_cpp as C
orig = C.llama_model_default_params
def patched():
    p = orig(); p.use_extra_bufts = False; return p
C.llama_model_default_params = patched
n = int(sys.argv[2])
llm = llama_cpp.Llama(model_path=sys.argv[1], n_threads=2, n_threads_batch=2, n_ctx=2 * n + 8, verbose=False)
prompt = [(i * 7919) % 5000 + 100 for i in range(n)]
gen = [(i * 104729) % 5000 + 100 for i in range(n)]
best_pp = best_tg = float("inf")
for _ in range(2):
    llm.reset()
    t0 = time.perf_counter(); llm.eval(prompt); t1 = time.perf_counter()
    for t in gen:
        llm.eval([t])
    t2 = time.perf_counter()
    best_pp = min(best_pp, t1 - t0); best_tg = min(best_tg, t2 - t1)
print(json.dumps({"prefill_tok_s": n / best_pp, "decode_tok_s": n / best_tg}))
'''


def cpu_busy(seconds=3.0):
    """Fraction of all CPUs busy over the next `seconds` (from /proc/stat)."""
    def snap():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(max_busy, wait):
    """Wait (up to `wait` s) until the machine has been idle (< max_busy of all CPUs) for 3 s."""
    t0 = time.time()
    while time.time() - t0 < wait:
        b = cpu_busy()
        if b < max_busy:
            return b
    return cpu_busy(1.0)


def ours(path, n):
    """`worker-orcd bench --numerics fast` (release build): an n-token prompt in one batch, then n
    tokens one at a time through the KV cache; one JSON object."""
    exe = ROOT / "target" / "release" / "worker-orcd"
    cmd = [str(exe), "bench", "--model", str(path), "--numerics", "fast", "--prompt-tokens", str(n),
           "--gen-tokens", str(n), "--repeats", "2", "--json"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    line = [l for l in r.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def llama(path, n):
    r = subprocess.run([sys.executable, "-c", LLAMA, str(path), str(n)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="smollm2,gemma3")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--max-busy", type=float, default=0.1, help="CPU fraction busy allowed before a run")
    ap.add_argument("--wait", type=float, default=600)
    a = ap.parse_args()
    summary = {}
    for name in a.models.split(","):
        path = MODELS[name]
        if not path.exists():
            print(f"NOT RUN {name}: {path} missing", flush=True)
            continue
        res = {"ours": [], "llama.cpp": []}
        for rnd in range(a.rounds):
            for side, fn in (("llama.cpp", llama), ("ours", ours)) if rnd % 2 == 0 else (("ours", ours), ("llama.cpp", llama)):
                busy = wait_quiet(a.max_busy, a.wait)
                r = fn(path, a.tokens)
                r["busy_before"] = round(busy, 3)
                r["loadavg_after"] = round(os.getloadavg()[0], 2)
                res[side].append(r)
                print(json.dumps({"model": name, "side": side, "round": rnd, **r}), flush=True)
        s = {}
        for side, rs in res.items():
            s[side] = {k: {"best": round(max(x[k] for x in rs), 1), "median": round(statistics.median(x[k] for x in rs), 1)}
                       for k in ("prefill_tok_s", "decode_tok_s")}
        for k in ("prefill_tok_s", "decode_tok_s"):
            s[f"ratio_{k}"] = round(s["ours"][k]["median"] / s["llama.cpp"][k]["median"], 3)
        summary[name] = s
        print(json.dumps({"model": name, "summary": s}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
