#!/usr/bin/env python3
"""How far llama.cpp's own CUDA backend is from the llama.cpp (CPU) goldens of the `fast` model cases.

The `cuda-fast` column is compared with goldens recorded from llama.cpp's CPU backend
(goldens/recorders/record_llamacpp_logits.py). This measures the same metrics for llama.cpp's
CUDA backend on the same card, so a `cuda-fast` figure can be read beside what the reference's own
GPU path reaches: every layer offloaded (n_gpu_layers -1), F16 KV cache, the prompt in one batch,
logits at every position; flash attention off (as the CPU goldens) and on (llama-bench `-fa 1`).
The KL is the `models` suite's: KL(golden || llama.cpp CUDA) over the golden's top-40 plus the
tail mass, mean over positions (conformance/src/suites/models.rs).

Runs on the GPU machine (no network): llama-cpp-python 0.3.36's Python package (carried as
target/pyref/pyref.tar.xz: llama_cpp without its CPU libraries, and diskcache) over the shared
libraries that `bash ci/llamacpp-cuda.sh build` leaves in target/llamacpp/build/bin.

Usage: python3 ci/llamacpp-cuda-kl.py [--only SUBSTRING]   (prints one line per case and setting)
"""

import argparse
import json
import os
import re
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))


def field(text, key):
    m = re.search(rf"^{key}: (.*)$", text, re.M)
    return m.group(1).strip().strip('"') if m else None


def kl_like_models_suite(logits, ids, top, lse):
    """Mean and max KL(golden || got) as conformance/src/suites/models.rs computes it."""
    import numpy as np
    kls = []
    for r in range(logits.shape[0]):
        row = logits[r].astype(np.float64)
        m = row.max()
        lp = row - (m + np.log(np.exp(row - m).sum()))
        lpr = top[r].astype(np.float64) - float(lse[r])
        pr = np.exp(lpr)
        kl = float((pr * (lpr - lp[ids[r]])).sum())
        tr, te = max(1.0 - pr.sum(), 0.0), max(1.0 - np.exp(lp[ids[r]]).sum(), 1e-300)
        if tr > 0.0:
            kl += tr * np.log(tr / te)
        kls.append(max(kl, 0.0))
    return float(np.mean(kls)), float(np.max(kls))


def ours_logits(binary, model, tokens):
    import subprocess
    import numpy as np
    out = Path(tempfile.mkdtemp()) / "ours.npy"
    subprocess.run([binary, "logits", "--model", str(model), "--tokens", ",".join(map(str, tokens)), "--backend",
                    "cuda", "--numerics", "fast", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return np.load(out)


def kl_full(ref, got):
    """Mean and max over positions of KL(ref || got), full vocabulary."""
    import numpy as np

    def lsm(x):
        x = x.astype(np.float64)
        m = x.max(axis=-1, keepdims=True)
        return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))
    lp, lq = lsm(ref), lsm(got)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return float(kl.mean()), float(kl.max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--ours", help="a worker-orcd binary: also KL(llama.cpp CUDA || ours, cuda-fast) over the full vocabulary")
    a = ap.parse_args()
    # ORCD_LLAMA_LIB: another build's libraries (a CPU build checks this script: KL ~0 there).
    lib = Path(os.environ.get("ORCD_LLAMA_LIB", ROOT / "target" / "llamacpp" / "build" / "bin"))
    who = f"llama.cpp ({lib})" if "ORCD_LLAMA_LIB" in os.environ else "llama.cpp CUDA"
    if not (lib / "libllama.so").exists():
        print(f"not run: no {lib}/libllama.so (bash ci/llamacpp-cuda.sh build first)")
        return 2
    pyref = ROOT / "target" / "pyref" / "pyref.tar.xz"
    tmp = tempfile.mkdtemp()
    with tarfile.open(pyref) as t:
        t.extractall(tmp)
    sys.path.insert(0, tmp)
    os.environ["LLAMA_CPP_LIB_PATH"] = str(lib)
    # llama.cpp's libraries load before numpy's: the other order crashed the CUDA build's process
    # on the GPU machine (Python 3.12) before any output.
    import llama_cpp
    import numpy as np

    # As the recorder: no CPU weight repacking (its AMX path dies on some VMs; offloaded layers
    # never use it). Its module imports numpy: after llama.cpp's libraries, as above.
    sys.path.insert(0, str(ROOT / "goldens" / "recorders"))
    from record_llamacpp_logits import no_extra_bufts
    no_extra_bufts()

    rows = []
    for case in sorted((ROOT / "goldens" / "models").glob("*-fast-*.yaml")):
        text = case.read_text(encoding="utf-8")
        f = field(text, "file")
        if a.only not in case.stem or not f:
            continue
        model = CACHE / f
        if not model.exists():
            print(f"{case.stem}: not run ({model} not here)")
            continue
        tokens = json.loads(field(text, "tokens"))
        d = case.parent
        ids = np.load(d / field(text, "logits_topk_ids"))
        top = np.load(d / field(text, "logits_topk"))
        lse = np.load(d / field(text, "logits_lse"))
        for fa in (False, True):
            llm = llama_cpp.Llama(model_path=str(model), n_gpu_layers=-1, logits_all=True, n_threads=2, n_threads_batch=2, flash_attn=fa,
                                  n_ctx=max(512, len(tokens) + 32), verbose=False)
            llm.reset()
            llm.eval(list(tokens))
            got = np.array(llm.scores[:len(tokens)], dtype=np.float32)
            del llm
            mean, mx = kl_like_models_suite(got, ids, top, lse)
            if a.ours and not fa:
                ours = ours_logits(a.ours, model, tokens)
                om, ox = kl_like_models_suite(ours, ids, top, lse)
                fm, fx = kl_full(got, ours)
                print(f"{case.stem}: ours cuda-fast vs the CPU golden: mean KL {om:.3e}, max {ox:.3e}; "
                      f"vs llama.cpp CUDA (full vocabulary): mean KL {fm:.3e}, max {fx:.3e}", flush=True)
            line = f"{case.stem}: {who} (flash attention {'on' if fa else 'off'}) vs the CPU golden: " \
                   f"mean KL {mean:.3e}, max KL {mx:.3e} over {len(tokens)} positions"
            print(line, flush=True)
            rows.append(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
