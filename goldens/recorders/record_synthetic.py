#!/usr/bin/env python3
"""Record the exact goldens of the synthetic model cases: `<arch>-synth-tiny-<type>-short` (8 tokens)
and, for the k-quant types of FOUR_TYPES, `<arch>-synth-tiny-<type>-four` (4 tokens: below
llama.cpp's tiled batch of 8, so its k-quant matmuls take `vec_dot`, the decode kernels).

For every architecture × weight type it
  1. generates the fixture with orcd-fixtures (release build: `cargo build --release -p orcd-fixtures`)
     — deterministic from seed 1, carrying the tokenizer of a real vocabulary (llama.cpp's
     ggml-vocab-*.gguf from the llama-cpp-python 0.3.36 source distribution, or the fetched gemma
     model for gemma3). The fixture is an *input*: nothing of worker-orcd's engine is involved;
  2. runs goldens/recorders/record_models.py on it: the float64 numpy forward pass on gguf-py's
     dequantization (the reference), its float32 self-check and, unless --no-llama-cpp, the
     llama.cpp cross-checks — which also prove that llama.cpp loads the file (issue 4: "the
     recorder checks that llama.cpp loads each one"); the numbers go into the case file.
The F32 case of each arch also stores the per-op taps used to localise a divergence.

Then `python3 goldens/recorders/record_llamacpp_logits.py --write` adds the `numerics: fast`
twins of these cases from llama.cpp's default run.

Usage: python3 goldens/recorders/record_synthetic.py [--arch A,B] [--type f32,f16,q8_0,q4_0,q4_1,q5_0,q5_1,q2_k..q6_k] [--no-llama-cpp]
(`phi3lr`: the phi3 fixture with LongRoPE factors, F32 and Q8_0 unless --type is given.)
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VOCABS = "~/.cache/orcd/llama_cpp_python-0.3.36/vendor/llama.cpp/models"
VOCAB = {
    "llama": f"{VOCABS}/ggml-vocab-llama-spm.gguf",
    "qwen2": f"{VOCABS}/ggml-vocab-qwen2.gguf",
    "phi3": f"{VOCABS}/ggml-vocab-phi-3.gguf",
    # phi3 with LongRoPE factors and rope.scaling.attn_factor (general.architecture phi3).
    "phi3lr": f"{VOCABS}/ggml-vocab-phi-3.gguf",
    "gpt2": f"{VOCABS}/ggml-vocab-gpt-2.gguf",
    "gemma3": "~/.cache/orcd/models/gemma-3-270m-q4_k_m.gguf",
    # gpt-oss: o200k_harmony as fetch.py derives it (pre gpt-4o). Its experts are MXFP4 whatever the type.
    "gpt-oss": "~/.cache/orcd/tokenizers/o200k_harmony-gpt-4o-vocab.gguf",
}
TYPES = ["f32", "f16", "q8_0", "q4_k"]
# Architectures recorded at fewer types unless --type says otherwise: phi3lr only adds the RoPE
# factors to phi3, so its F32 (with taps) and one quantised type suffice.
TYPES_FOR = {"phi3lr": ["f32", "q8_0"]}
# Token ids valid in every vocabulary above; content does not matter for random weights.
TOKENS = "1,5,9,200,77,3000,42,1000"
# The types that also get the 4-token case (issue 14: every weight type of the fast path checked
# against llama.cpp's bits on both of its matmul paths). Recorded with
#   --arch llama,qwen2,gemma3 --type q2_k,q3_k
#   --arch llama --type q4_0,q4_1,q5_0,q5_1,q5_k,q6_k
FOUR_TYPES = ["q2_k", "q3_k", "q4_0", "q4_1", "q5_0", "q5_1", "q5_k", "q6_k"]
FOUR_TOKENS = "1,5,9,200"
SEED = 1
# Where the fixtures are written: the case files' commands name this path, so they rerun as written.
FX = "/tmp/fx"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default=",".join(VOCAB), help="comma-separated architectures")
    ap.add_argument("--type", default=None,
                    help=f"comma-separated weight types (default {','.join(TYPES)}; {TYPES_FOR})")
    ap.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp's load and cross-checks")
    a = ap.parse_args()
    exe = ROOT / "target" / "release" / "orcd-fixtures"
    if not exe.exists():
        raise SystemExit(f"error: {exe} missing: cargo build --release -p orcd-fixtures")
    archs = a.arch.split(",")
    types = a.type.split(",") if a.type else None
    jobs = [(arch, ty) for arch in archs for ty in (types or TYPES_FOR.get(arch, TYPES))]
    Path(FX).mkdir(parents=True, exist_ok=True)
    jobs = [(arch, ty, case, toks) for arch, ty in jobs
            for case, toks in [("short", TOKENS)] + ([("four", FOUR_TOKENS)] if ty in FOUR_TYPES else [])]
    for i, (arch, ty, case, toks) in enumerate(jobs, 1):
        name = f"{arch}-synth-tiny-{ty}-{case}"
        fixture = f"model-{arch}-tiny-{ty}-seed{SEED}"
        out = f"{FX}/{arch}-{ty}.gguf"
        cmd = (f"orcd-fixtures model --arch {arch} --size tiny --type {ty} --seed {SEED} "
               f"--vocab {VOCAB[arch]} --out {out}")
        argv = [os.path.expanduser(x) for x in [str(exe), *cmd.split()[1:]]]
        print(f"[{i}/{len(jobs)}] {name}: {cmd}", file=sys.stderr, flush=True)
        subprocess.run(argv, check=True)
        rec = [sys.executable, str(ROOT / "goldens/recorders/record_models.py"), "--gguf", out,
               "--file-rel", out, "--name", name, "--tokens", toks, "--fixture", fixture, cmd]
        if ty == "f32" and case == "short":
            rec.append("--taps")
        if a.no_llama_cpp:
            rec.append("--no-llama-cpp")
        subprocess.run(rec, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
