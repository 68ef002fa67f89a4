#!/usr/bin/env python3
"""The CPU peer of the `perf` suite (DESIGN §9): llama.cpp through llama-cpp-python 0.3.36.

Usage: llamacpp_cpu.py MODEL.gguf PROMPT_TOKENS GEN_TOKENS [THREADS]

Loads MODEL with n_threads = n_threads_batch = THREADS (default 2) and default settings except
use_extra_bufts = False (the AMX repack SIGILLs on this project's VM), evaluates a PROMPT_TOKENS
prompt in one batch, then GEN_TOKENS tokens one at a time (each step's logits computed, as a
greedy decode does), twice; prints the second pass (the first warms the mapping) as one JSON line:
{"prefill_tok_s": ..., "decode_tok_s": ..., "peer": "llama-cpp-python <version>"}.
Token ids are spread over the vocabulary like `orcd_engine::bench::prompt` (content does not
change the cost).
"""

import json
import sys
import time
from pathlib import Path

import llama_cpp

# The recorder's switch (one copy): no weight repacking, as the llama.cpp goldens were recorded.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "goldens" / "recorders"))
from record_llamacpp_logits import no_extra_bufts  # noqa: E402

no_extra_bufts()


def main():
    path, n_prompt, n_gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads,
                          n_ctx=n_prompt + n_gen + 8, n_batch=max(512, n_prompt), verbose=False)
    n_vocab = llm.n_vocab()
    prompt = [(i * 7919 + 13) % n_vocab for i in range(n_prompt)]
    gen = [(i * 104729 + 17) % n_vocab for i in range(n_gen)]
    out = None
    for _ in range(2):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        for t in gen:
            llm.eval([t])
        t2 = time.perf_counter()
        out = {"prefill_tok_s": n_prompt / (t1 - t0), "decode_tok_s": n_gen / (t2 - t1) if n_gen else 0.0}
    out["peer"] = f"llama-cpp-python {llama_cpp.__version__}"
    # The build's instruction sets (its tier: AVX512 = 1 in a native build on an AVX-512 host).
    out["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
