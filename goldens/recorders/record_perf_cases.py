#!/usr/bin/env python3
"""Write the `perf` suite's case files (goldens/perf/cpu-*.yaml) from their references.

A perf case holds no expected output: its numbers are measured in the run, ours beside the peer
(conformance/peer/llamacpp_cpu.py: llama.cpp through llama-cpp-python 0.3.36, pinned in
requirements.txt), and the case only fixes what is compared and the floors. Where each field
comes from:
- `file_sha256`: hashlib over the model file that `python3 fixtures/fetch.py` fetched (the same
  files the `models` goldens name; nothing of ours reads or writes it);
- prompt 128 tokens, 128 generated, at least 5 rounds, floors prefill 1.2× and decode 1.5×:
  issue 14's acceptance ("same run, alternating with llama.cpp ..., medians of ≥ 5 rounds ...
  prefill (128-token prompt) ≥ 1.2×, decode ≥ 1.5×");
- the peer's description: how conformance/peer/llamacpp_cpu.py runs llama.cpp.

Usage (from anywhere; paths are resolved from this file):
  python3 goldens/recorders/record_perf_cases.py [--check]   (--check: compare, write nothing)
"""
import argparse
import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "perf"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))

# (case name, model file under the cache): the two real models issue 14 names that are fetched
# files (its Qwen2.5-0.5B-shape file is synthetic, generated in memory: no peer can load it).
CASES = [
    ("cpu-smollm2-135m-q4_1", "models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("cpu-gemma3-270m-q4_k_m", "models/gemma-3-270m-q4_k_m.gguf"),
]
PEER = "llama.cpp (llama-cpp-python 0.3.36, use_extra_bufts false, same threads)"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def render(name, file, digest):
    return f"""# Recorded by goldens/recorders/record_perf_cases.py; do not edit by hand.
# Suite perf (conformance/src/suites/perf.rs): no golden numbers, only floors on ratios measured
# in the same run against the peer (conformance/peer/llamacpp_cpu.py).
suite: perf
name: {name}
file: {file}
file_sha256: {digest}
peer: "{PEER}"
prompt_tokens: 128
gen_tokens: 128
rounds: 5
thresholds:
  prefill_ratio: 1.2   # issue 14 acceptance: prefill (128-token prompt) >= 1.2x llama.cpp, medians of >= 5 rounds
  decode_ratio: 1.5    # issue 14 acceptance: decode >= 1.5x llama.cpp
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    bad = 0
    for i, (name, file) in enumerate(CASES, 1):
        model = CACHE / file
        if not model.is_file():
            print(f"error: {model} not found (python3 fixtures/fetch.py)", file=sys.stderr)
            return 2
        print(f"[{i}/{len(CASES)}] {name}: sha256 of {model.name} ...", file=sys.stderr, flush=True)
        text = render(name, file, sha256(model))
        path = OUT / f"{name}.yaml"
        if a.check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            print(f"{path.relative_to(ROOT)}: {'same' if same else 'DIFFERS'}")
            bad += not same
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
