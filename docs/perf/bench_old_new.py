#!/usr/bin/env python3
"""Old binary against new binary, alternated in one run on the same files (issue 10's acceptance:
a refactor must not slow decode: ratio new/old >= 0.97).

Per file and round: `worker-orcd bench --json --numerics fast --prompt-tokens P --gen-tokens G
--repeats 3` (its median) of each binary in its own process, the order alternating between rounds; before
each measurement the script waits until the CPUs have been idle (as bench_vs_llamacpp.py).
Reported per file: median prefill and decode tok/s of each binary, the ratios, and the new
binary's kv_bytes and peak_rss_bytes.

Usage: python3 docs/perf/bench_old_new.py OLD_BIN NEW_BIN [--rounds 5] [--models smollm2,gemma3,qwen05]
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_llamacpp import MODELS, wait_quiet  # noqa: E402


REPEATS = 3


def bench(binary, model, p, g):
    r = subprocess.run([binary, "bench", "--model", str(model), "--backend", "cpu", "--numerics", "fast",
                        "--prompt-tokens", str(p), "--gen-tokens", str(g), "--repeats", str(REPEATS), "--json"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="smollm2,gemma3,qwen05")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--wait", type=float, default=120)
    a = ap.parse_args()
    for name in a.models.split(","):
        model = MODELS[name]
        res = {"old": [], "new": []}
        for r in range(a.rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            for side in order:
                busy = wait_quiet(0.1, a.wait)
                o = bench(getattr(a, side), model, a.prompt_tokens, a.gen_tokens)
                o["busy_before"] = busy
                res[side].append(o)
                print(f"{name} round {r + 1} {side}: pp {o['prefill_tok_s']:.1f} tg {o['decode_tok_s']:.1f} "
                      f"(busy before {busy:.2f})", flush=True)
        med = {s: {k: statistics.median(x[k] for x in v) for k in ("prefill_tok_s", "decode_tok_s")}
               for s, v in res.items()}
        new = res["new"][-1]
        print(json.dumps({
            "model": name, "rounds": a.rounds,
            "old": med["old"], "new": med["new"],
            "decode_ratio": med["new"]["decode_tok_s"] / med["old"]["decode_tok_s"],
            "prefill_ratio": med["new"]["prefill_tok_s"] / med["old"]["prefill_tok_s"],
            "kv_bytes": new.get("kv_bytes"), "peak_rss_bytes": new.get("peak_rss_bytes"),
        }), flush=True)


if __name__ == "__main__":
    main()
