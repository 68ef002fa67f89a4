#!/usr/bin/env python3
"""Outside check (issue 4: "llama, qwen2, phi3, gpt2 and gpt-oss files produced by gguf-py rather than
by orcd-fixtures"): write a gpt-oss GGUF with gguf-py 0.19.0 — a shape unlike the fixture's (3 layers,
8 heads of 32, 2 KV heads, 16 experts of width 96 (3 MXFP4 blocks per row: an odd tail), 4 used,
window 8, YaRN x32 over 4096), random weights from numpy's generator, the gpt-2 vocabulary — then
compare, on 40 random token ids:
  * `worker-orcd logits --numerics exact` with this recorder's float64 reference (record_models.py),
    issue 4's gpt-oss thresholds: mean KL <= 1e-3, top-1 (m = 0.1) >= 97%;
  * `worker-orcd logits --numerics fast` with llama.cpp's default run (llama-cpp-python 0.3.36,
    2 threads, F16 KV, one batch, use_extra_bufts off as everywhere on this VM): mean KL <= 5e-3,
    top-1 (m = 0.5) >= 99%.
Nothing here is a golden: it prints the numbers and exits 1 if a threshold is missed.

Usage: python3 goldens/recorders/check_gpt_oss_gguf_py.py [--q8] [--seed 7] [--dir /tmp/orcd-outside]
       (--q8: the 2-D non-expert weights in Q8_0 instead of F32; needs target/release/worker-orcd)
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import quantize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record_models as R  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VOCAB = R.CACHE / "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf"


def write(out, seed, q8):
    rng = np.random.default_rng(seed)
    E, L, H, HKV, HD, FF, X, K = 128, 3, 8, 2, 32, 96, 16, 4
    voc = GGUFReader(str(VOCAB))
    w = GGUFWriter(str(out), "gpt-oss")
    a = "gpt-oss"
    for k, v in [("context_length", 512), ("embedding_length", E), ("block_count", L), ("feed_forward_length", FF),
                 ("expert_feed_forward_length", FF), ("attention.head_count", H), ("attention.head_count_kv", HKV),
                 ("attention.key_length", HD), ("attention.value_length", HD), ("attention.sliding_window", 8),
                 ("expert_count", X), ("expert_used_count", K), ("rope.scaling.original_context_length", 4096)]:
        w.add_uint32(f"{a}.{k}", v)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_float32(f"{a}.rope.freq_base", 150000.0)
    w.add_string(f"{a}.rope.scaling.type", "yarn")
    w.add_float32(f"{a}.rope.scaling.factor", 32.0)
    for k, f in voc.fields.items():
        if k.startswith("tokenizer."):
            t = f.types
            if t[0] == GGUFValueType.ARRAY:
                w.add_key_value(k, f.contents(), GGUFValueType.ARRAY, sub_type=t[1])
            else:
                w.add_key_value(k, f.contents(), t[0])
    nv = len(voc.fields["tokenizer.ggml.tokens"].data)

    def n(*shape, std=1.0):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def dense(name, arr):  # numpy shape = GGUF dims reversed
        if q8 and arr.ndim == 2 and not name.endswith(".bias"):
            qd = quantize(arr, Q.Q8_0)
            w.add_tensor(name, qd, raw_shape=qd.shape, raw_dtype=Q.Q8_0)
        else:
            w.add_tensor(name, arr)

    def mx(name, arr):
        qd = quantize(arr, Q.MXFP4)
        w.add_tensor(name, qd, raw_shape=qd.shape, raw_dtype=Q.MXFP4)

    dense("token_embd.weight", n(nv, E))
    for i in range(L):
        p = f"blk.{i}."
        dense(p + "attn_norm.weight", 1 + n(E, std=0.1))
        for t, rows, std in (("q", H * HD, 1.8), ("k", HKV * HD, 1.8), ("v", HKV * HD, 1.0)):
            dense(p + f"attn_{t}.weight", n(rows, E, std=std / np.sqrt(E)))
            dense(p + f"attn_{t}.bias", n(rows, std=0.2))
        dense(p + "attn_output.weight", n(E, H * HD, std=0.8 / np.sqrt(H * HD)))
        dense(p + "attn_output.bias", n(E, std=0.05))
        dense(p + "attn_sinks.weight", n(H))
        dense(p + "post_attention_norm.weight", 1 + n(E, std=0.1))
        dense(p + "ffn_gate_inp.weight", n(X, E, std=2 / np.sqrt(E)))
        dense(p + "ffn_gate_inp.bias", n(X, std=0.5))
        mx(p + "ffn_gate_exps.weight", n(X, FF, E, std=2.5 / np.sqrt(E)))
        dense(p + "ffn_gate_exps.bias", n(X, FF, std=0.2))
        mx(p + "ffn_up_exps.weight", n(X, FF, E, std=2.5 / np.sqrt(E)))
        dense(p + "ffn_up_exps.bias", n(X, FF, std=0.2))
        mx(p + "ffn_down_exps.weight", n(X, E, FF, std=0.2 / np.sqrt(FF)))
        dense(p + "ffn_down_exps.bias", n(X, E, std=0.05))
    dense("output_norm.weight", 1 + n(E, std=0.1))
    dense("output.weight", n(nv, E, std=4 / np.sqrt(E)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--q8", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", default="/tmp/orcd-outside")
    a = ap.parse_args()
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"gguf-py-gpt-oss-{'q8_0' if a.q8 else 'f32'}-seed{a.seed}.gguf"
    write(path, a.seed, a.q8)
    toks = [int(x) for x in np.random.default_rng(a.seed + 4).integers(0, 50000, size=40)]
    eng = {}
    for num in ("exact", "fast"):
        o = d / f"{path.stem}-{num}.npy"
        subprocess.run([str(ROOT / "target/release/worker-orcd"), "logits", "--model", str(path), "--tokens",
                        ",".join(map(str, toks)), "--numerics", num, "--out", str(o)], check=True)
        eng[num] = np.load(o).astype(np.float64)
    l64, _, _ = R.run_forward(R.Model(path), np.float64, toks)
    ex = R.compare_logits(l64, eng["exact"], margin=0.1)
    lc = R.llama_cpp_module()
    R._no_extra_bufts(lc)
    llm = lc.Llama(model_path=str(path), logits_all=True, n_ctx=512, n_batch=512, n_threads=2, verbose=False)
    llm.reset()
    llm.eval(toks)
    ld = np.array(llm.scores[:len(toks)], dtype=np.float64)
    fa = R.compare_logits(ld, eng["fast"], margin=0.5)
    print(f"{path.name}\n  exact vs float64: {ex}\n  fast vs llama.cpp default: {fa}")
    ok = ex["mean_kl"] <= 1e-3 and ex["top1_conf"] >= 0.97 and fa["mean_kl"] <= 5e-3 and fa["top1_conf"] >= 0.99
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
