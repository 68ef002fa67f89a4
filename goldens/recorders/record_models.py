#!/usr/bin/env python3
"""Record the exact model goldens (suite `models`, numerics `exact`) with a float64 numpy forward pass.

The reference (DESIGN §4 (c), issue 4 deliverable 5c): every weight of the GGUF file is dequantized
by gguf-py (`gguf.quants.dequantize`, bit-exact with ggml) to float32, then the whole model runs in
float64 numpy — teacher-forced over the prompt (causal attention, positions 0..n-1), then 24 greedy
steps with a KV cache. Each architecture is one function over a weights dict and an hparams dict
(`ARCHS` below); the ops they share (RMSNorm, LayerNorm, RoPE, attention, GLUs) are small numpy
functions written from the semantics of llama.cpp's graph (vendor/llama.cpp/src/models/*.cpp,
llama-graph.cpp, llama-hparams.cpp, ggml-cpu/ops.cpp) — see the notes on each function.

Per case it writes into goldens/models/ (paths in the YAML are relative to that folder):
  <name>.yaml                    the case (schema: see `write_case`)
  <name>.topk_ids.npy            int32   [n_tokens, 40]  ids of the 40 largest logits per position
                                 (sorted by logit descending, ties by id ascending)
  <name>.topk_logits.npy         float32 [n_tokens, 40]  their logits
  <name>.lse.npy                 float32 [n_tokens]      log-sum-exp of the full logit row
  <name>.taps/<tap>.npy          float32 [n_tokens, width]  (the short case of each model only):
                                 token_embd, blk.N.{attn_norm,attn_out,ffn_norm,ffn_out,l_out},
                                 result_norm, logits (full rows, only when they fit in 8 MB)

Self-checks it runs (and prints) before writing, per model:
  * the same forward pass in float32 numpy: NMSE vs float64 per tap (this calibrates `tap_nmse`,
    written as `measured_f32_nmse_max`), and top-1 agreement / KL / max |dlogit| of the f32 logits
    against the f64 ones on every case;
  * when `llama_cpp` (llama-cpp-python 0.3.36) is importable, llama.cpp's logits on the same
    tokens (teacher-forced, one batch, F32 KV cache, 2 threads) vs ours — mean/max KL, top-1:
      (a) on an F32 re-encoding of the file (every tensor = gguf-py's dequantization): the same
          weights without llama.cpp's quantized-matmul path, so any graph difference (RoPE pairing,
          norm +1, scaling, GQA, window, soft-cap) shows up here; expected ~f32 noise (gemma3 a
          little more: ggml's CPU GELU reads an f16 table);
      (b) on the file as it is: llama.cpp rounds activations to 8 bits (Q8_0/Q8_1/Q8_K) for
          quantized dot products, so this sits at llama.cpp's quantization noise (mean KL ~1e-3);
      (c) diagnostic: our float64 graph with that activation rounding emulated
          (`ActQuantWeight`), written to the --summary JSON only.
    llama.cpp's extra buffer types (AMX / repack) are turned off: on this VM the AMX path dies
    with SIGILL.

Tokenization of text prompts: llama-cpp-python's `Llama(..., vocab_only=True).tokenize` when it is
importable; otherwise a fallback written here from llama.cpp's tokenizer rules (llama-vocab.cpp):
gpt2-style byte-level BPE (merge ranks, the `smollm` pre-tokenizer regexes) and SPM (highest-score
bigram merges, byte fallback), with special/user-defined token partitioning. The YAML's
`prompt_ids_source` says which one produced the ids.

Usage (from anywhere; paths resolve from this file):
  python3 goldens/recorders/record_models.py                  # both real models, all cases
  python3 goldens/recorders/record_models.py --only smollm2   # models whose key contains this
  python3 goldens/recorders/record_models.py --no-llama-cpp   # skip the llama.cpp cross-check
  python3 goldens/recorders/record_models.py --gguf FILE --name NAME --tokens 1,2,3 [--taps]
                                                              # one case on any supported GGUF
                                                              # (synthetic files)
"""
import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "models"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))

TOP_K = 40
N_GREEDY = 24
FULL_LOGITS_MAX_BYTES = 8_000_000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# GGUF loading
# ----------------------------------------------------------------------------------------------

def field_value(f):
    v = f.contents()
    return v


class Model:
    """A GGUF file: metadata, hparams, dequantized float32 weights (numpy shape = GGUF dims reversed)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.reader = GGUFReader(str(self.path))
        self.meta = {}
        for k, f in self.reader.fields.items():
            if k in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                     "tokenizer.ggml.merges"):
                continue
            try:
                self.meta[k] = field_value(f)
            except Exception:  # noqa: BLE001 - unreadable metadata is not needed here
                pass
        self.arch = self.meta["general.architecture"]
        self.hp = read_hparams(self.arch, self.meta)
        self._w32 = {}
        self._cast = {}
        self._mins = {}
        self.tensor_types = {}
        t0 = time.time()
        for t in self.reader.tensors:
            name = t.name[:-len(".weight")] if t.name.endswith(".weight") else t.name
            arr = dequantize(t.data, t.tensor_type)
            arr = np.asarray(arr, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
            self._w32[name] = arr
            self.tensor_types[name] = t.tensor_type.name
            if t.tensor_type.name in ("Q4_1", "Q5_1"):  # block min m (f16 at byte 2 of each block)
                bsz = 20 if t.tensor_type.name == "Q4_1" else 24
                raw = np.asarray(t.data, dtype=np.uint8).reshape(arr.shape[0], -1, bsz)
                self._mins[name] = np.ascontiguousarray(raw[:, :, 2:4]).view(np.float16)[..., 0].astype(np.float32)
        log(f"  loaded {len(self._w32)} tensors from {self.path.name} in {time.time() - t0:.1f}s "
            f"(types: {sorted(set(self.tensor_types.values()))})")

    def weights(self, dtype):
        """A dict-like view of the weights cast to dtype (cached per dtype)."""
        dtype = np.dtype(dtype)
        if dtype == np.float32:
            return self._w32
        if dtype not in self._cast:
            self._cast[dtype] = {k: v.astype(dtype) for k, v in self._w32.items()}
        return self._cast[dtype]

    def weights_actq(self, dtype):
        """Diagnostic: the weights with quantized 2-D tensors wrapped in ActQuantWeight."""
        W = self.weights(dtype)
        return {k: (ActQuantWeight(v, VEC_DOT_TYPE[self.tensor_types[k]], self._mins.get(k))
                    if v.ndim == 2 and self.tensor_types[k] in VEC_DOT_TYPE else v) for k, v in W.items()}

    def drop(self, dtype):
        self._cast.pop(np.dtype(dtype), None)

    def vocab_arrays(self):
        f = self.reader.fields["tokenizer.ggml.tokens"]
        tokens = [bytes(f.parts[i]).decode("utf-8", errors="surrogateescape") for i in f.data]
        types = None
        if "tokenizer.ggml.token_type" in self.reader.fields:
            f = self.reader.fields["tokenizer.ggml.token_type"]
            types = [int(f.parts[i][0]) for i in f.data]
        scores = None
        if "tokenizer.ggml.scores" in self.reader.fields:
            f = self.reader.fields["tokenizer.ggml.scores"]
            scores = [float(f.parts[i][0]) for i in f.data]
        merges = None
        if "tokenizer.ggml.merges" in self.reader.fields:
            f = self.reader.fields["tokenizer.ggml.merges"]
            merges = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return tokens, types, scores, merges


def read_hparams(arch, m):
    """Hyperparameters under llama.cpp's key names (llama-arch.cpp), with llama.cpp's defaults."""
    def g(key, default=None):
        return m.get(f"{arch}.{key}", default)

    def per_layer(v, n):
        if isinstance(v, (list, tuple)):
            return [int(x) for x in v]
        return [int(v)] * n

    n_embd = int(g("embedding_length"))
    n_layer = int(g("block_count"))
    n_head = per_layer(g("attention.head_count"), n_layer)
    n_head_kv = per_layer(g("attention.head_count_kv", g("attention.head_count")), n_layer)
    hd_k = int(g("attention.key_length", n_embd // n_head[0]))
    hd_v = int(g("attention.value_length", n_embd // n_head[0]))
    hp = dict(
        arch=arch,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=hd_k,
        head_dim_v=hd_v,
        n_ff=g("feed_forward_length"),
        n_ctx_train=int(g("context_length", 0) or 0),
        n_rot=int(g("rope.dimension_count", hd_k)),
        rope_base=float(g("rope.freq_base", 10000.0)),
        rope_base_swa=g("rope.freq_base_swa"),
        rope_scaling_type=g("rope.scaling.type"),
        rope_scaling_factor=g("rope.scaling.factor"),
        rope_orig_ctx=g("rope.scaling.original_context_length"),
        rope_attn_factor=g("rope.scaling.attn_factor"),
        rms_eps=g("attention.layer_norm_rms_epsilon"),
        ln_eps=g("attention.layer_norm_epsilon"),
        sliding_window=g("attention.sliding_window"),
        sliding_window_pattern=g("attention.sliding_window_pattern"),
        final_softcap=g("final_logit_softcapping"),
        attn_softcap=g("attn_logit_softcapping"),
        query_pre_attn_scalar=g("attention.query_pre_attn_scalar"),  # not read by llama.cpp's gemma3
        n_expert=g("expert_count"),
        n_expert_used=g("expert_used_count"),
        n_vocab=None,
    )
    for k in ("rms_eps", "ln_eps"):
        if hp[k] is not None:
            # The value exactly as stored (a float32 in the file), widened to float64.
            hp[k] = float(hp[k])
    return hp


# ----------------------------------------------------------------------------------------------
# Ops (written from llama.cpp's semantics; x is [n_tokens, width], weights are (out, in))
# ----------------------------------------------------------------------------------------------

class ActQuantWeight:
    """Diagnostic only (never used for a golden): a quantized weight whose matmul input is first
    rounded the way llama.cpp's CPU backend rounds activations for quantized dot products
    (the weight type's vec_dot_type: Q8_0, Q8_1 or Q8_K). Used to show that the gap between this
    reference and llama.cpp is llama.cpp's 8-bit activations and not a graph difference."""

    def __init__(self, arr, kind, mins=None):
        self.arr, self.kind, self.mins = arr, kind, mins
        self.dtype, self.shape, self.T = arr.dtype, arr.shape, None

    def __getitem__(self, idx):  # get_rows: the embedding lookup reads the weight as is
        return self.arr[idx]


VEC_DOT_TYPE = {"Q4_0": "Q8_0", "Q5_0": "Q8_0", "Q8_0": "Q8_0", "Q4_1": "Q8_1", "Q5_1": "Q8_1",
                "Q2_K": "Q8_K", "Q3_K": "Q8_K", "Q4_K": "Q8_K", "Q5_K": "Q8_K", "Q6_K": "Q8_K"}


def quantize_activations(x, kind, with_sum_error=False):
    """x rounded through ggml's quantize_row_q8_{0,1,K}_ref and back (q * d as the dot uses it;
    Q8_0/Q8_1 store d as f16; Q8_K keeps d = max / -127 in f32 and rounds with its signed max)."""
    dt = x.dtype
    shp = x.shape
    xf = np.asarray(x, dtype=np.float32)
    bs = 256 if kind == "Q8_K" else 32
    b = xf.reshape(-1, bs)
    if kind == "Q8_K":
        idx = np.argmax(np.abs(b), axis=1)
        mx = b[np.arange(b.shape[0]), idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            iscale = np.where(mx != 0, np.float32(-127.0) / mx, 0).astype(np.float32)
            q = np.minimum(127, np.rint(iscale[:, None] * b))  # nearest_int: round half to even
            d = np.where(mx != 0, 1 / iscale, 0).astype(np.float32)
    else:
        # ggml-cpu's x86 AVX path (arch/x86/quants.c quantize_row_q8_0 / q8_1): d = amax/127,
        # id = 127/amax (not 1/d), q = round half to even (_MM_ROUND_NEAREST).
        amax = np.max(np.abs(b), axis=1)
        d = (amax / np.float32(127)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            idv = np.where(amax != 0, np.float32(127) / amax, 0).astype(np.float32)
        v = (b * idv[:, None]).astype(np.float32)
        q = np.rint(v)
        s_stored = (np.sum(q, axis=1) * d).astype(np.float16).astype(np.float64)
        d = d.astype(np.float16).astype(np.float32)
        if with_sum_error:
            s_err = (s_stored - np.sum(q, axis=1) * d.astype(np.float64)).reshape(shp[:-1] + (-1,))
            return (q * d[:, None]).reshape(shp).astype(dt), s_err.astype(dt)
    if with_sum_error:
        return (q * d[:, None]).reshape(shp).astype(dt), np.zeros(shp[:-1] + (shp[-1] // bs,), dtype=dt)
    return (q * d[:, None]).reshape(shp).astype(dt)


def matmul(x, w, b=None):
    corr = None
    if isinstance(w, ActQuantWeight):
        xq, s_err = quantize_activations(x, w.kind, with_sum_error=True)
        if w.mins is not None:
            # Q4_1/Q5_1 . Q8_1: the weight block's min m multiplies the activation block's stored
            # s = f16(d * sum(q)) rather than the sum of the rounded activations.
            corr = s_err @ w.mins.T.astype(x.dtype)
        x, w = xq, w.arr
    y = x @ w.T
    if corr is not None:
        y = y + corr
    if b is not None:
        y = y + b
    return y


def rms_norm(x, w, eps):
    """ggml_rms_norm then multiply by the weight: x / sqrt(mean(x^2) + eps) * w (eps inside the sqrt)."""
    ms = np.mean(x * x, axis=-1, keepdims=True)
    y = x / np.sqrt(ms + x.dtype.type(eps))
    return y * w if w is not None else y


def layer_norm(x, w, b, eps):
    """ggml_norm (mean-centred, biased variance, eps inside the sqrt), then weight and bias."""
    mu = np.mean(x, axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    y = xc / np.sqrt(var + x.dtype.type(eps))
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    """ggml_gelu: the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    c = x.dtype.type(math.sqrt(2.0 / math.pi))
    return 0.5 * x * (1.0 + np.tanh(c * (x + x.dtype.type(0.044715) * x * x * x)))


def rope(x, pos, n_rot, base, neox, freq_scale=1.0, freq_factors=None, attn_factor=1.0):
    """ggml_rope_ext without YaRN (ext_factor 0). x: [n, heads, head_dim]; pos: [n] ints.

    Pair i (i = 0 .. n_rot/2-1) rotates by theta_i = pos * freq_scale * base^(-2i/n_rot) / ff_i.
    normal (GGML_ROPE_TYPE_NORMAL, llama): pairs (2i, 2i+1); NeoX (qwen2, phi3, gemma3, ...):
    pairs (i, i + n_rot/2). Dimensions from n_rot to head_dim pass through unchanged.
    """
    dt = x.dtype
    half = n_rot // 2
    i = np.arange(half, dtype=np.float64)
    inv = base ** (-2.0 * i / n_rot)
    if freq_factors is not None:
        inv = inv / np.asarray(freq_factors, dtype=np.float64)[:half]
    theta = np.asarray(pos, dtype=np.float64)[:, None] * inv[None, :] * freq_scale  # [n, half]
    cos = (np.cos(theta) * attn_factor).astype(dt)[:, None, :]
    sin = (np.sin(theta) * attn_factor).astype(dt)[:, None, :]
    out = x.copy()
    if neox:
        x0 = x[..., :half]
        x1 = x[..., half:n_rot]
        out[..., :half] = x0 * cos - x1 * sin
        out[..., half:n_rot] = x0 * sin + x1 * cos
    else:
        x0 = x[..., 0:n_rot:2]
        x1 = x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = x0 * cos - x1 * sin
        out[..., 1:n_rot:2] = x0 * sin + x1 * cos
    return out


def yarn_params(hp):
    """YaRN as llama.cpp derives it for rope.scaling.type == "yarn" (llama-context.cpp): ext_factor 1,
    beta_fast 32, beta_slow 1, attn_factor = mscale(s) / (1 + 0.1 ln s) * rope.scaling.attn_factor with
    mscale(s) = 0.1 ln s + 1 (s = rope.scaling.factor > 1) -- i.e. exactly 1 here, in exact arithmetic;
    n_ctx_orig = rope.scaling.original_context_length (else the training context). None otherwise."""
    if (hp.get("rope_scaling_type") or "linear") != "yarn":
        return None
    s = float(hp["rope_scaling_factor"] or 1.0)
    mscale = 1.0 if s <= 1.0 else 0.1 * math.log(s) + 1.0
    af = mscale / (1.0 + 0.1 * math.log(s)) * float(hp.get("rope_attn_factor") or 1.0)
    return dict(ext_factor=1.0, attn_factor=af, beta_fast=32.0, beta_slow=1.0,
                n_ctx_orig=int(hp.get("rope_orig_ctx") or hp["n_ctx_train"]))


def rope_yarn(x, pos, n_rot, base, freq_scale, yarn):
    """NeoX RoPE with ggml's rope_yarn (ggml-cpu/ops.cpp): for pair i, theta_extrap = p * base^(-2i/n_rot),
    theta_interp = freq_scale * theta_extrap, ramp_i = (1 - clip((i - lo) / max(0.001, hi - lo), 0, 1)) *
    ext_factor, theta = theta_interp (1 - ramp) + theta_extrap ramp; cos and sin are multiplied by
    attn_factor * (1 + 0.1 ln(1 / freq_scale)). lo, hi: ggml_rope_yarn_corr_dims, floor/ceil of
    n_rot ln(n_ctx_orig / (beta 2 pi)) / (2 ln base) for beta_fast / beta_slow, clamped to [0, n_rot - 1]."""
    dt = x.dtype
    half = n_rot // 2

    def corr(beta):
        return n_rot * math.log(yarn["n_ctx_orig"] / (beta * 2 * math.pi)) / (2 * math.log(base))
    lo = max(0.0, math.floor(corr(yarn["beta_fast"])))
    hi = min(n_rot - 1.0, math.ceil(corr(yarn["beta_slow"])))
    i = np.arange(half, dtype=np.float64)
    ramp = (1.0 - np.clip((i - lo) / max(0.001, hi - lo), 0.0, 1.0)) * yarn["ext_factor"]
    extrap = np.asarray(pos, dtype=np.float64)[:, None] * (base ** (-2.0 * i / n_rot))[None, :]
    theta = extrap * freq_scale * (1.0 - ramp) + extrap * ramp
    ms = yarn["attn_factor"] * (1.0 + 0.1 * math.log(1.0 / freq_scale)) if yarn["ext_factor"] != 0 \
        else yarn["attn_factor"]
    cos = (np.cos(theta) * ms).astype(dt)[:, None, :]
    sin = (np.sin(theta) * ms).astype(dt)[:, None, :]
    out = x.copy()
    x0 = x[..., :half]
    x1 = x[..., half:n_rot]
    out[..., :half] = x0 * cos - x1 * sin
    out[..., half:n_rot] = x0 * sin + x1 * cos
    return out


def attention(q, k, v, pos_q, pos_k, scale, window=None, softcap=None, sinks=None):
    """Causal multi-head attention with GQA. q: [n, H, d]; k: [t, Hkv, d]; v: [t, Hkv, dv].

    Query head h reads KV head h // (H / Hkv) (ggml's broadcast in mul_mat). A key at position p0
    is visible to a query at p1 when p0 <= p1 and, with a sliding window n_swa, p1 - p0 < n_swa
    (llama_hparams::is_masked_swa, LLAMA_SWA_TYPE_STANDARD). scores = q.k * scale, then
    optional soft-capping (tanh), softmax (with an optional per-head sink logit in the denominator).
    Returns [n, H * dv].
    """
    n, H, d = q.shape
    t, Hkv, dv = v.shape
    rep = H // Hkv
    kk = np.repeat(k, rep, axis=1)  # [t, H, d]
    vv = np.repeat(v, rep, axis=1)
    s = np.einsum("nhd,thd->hnt", q, kk) * q.dtype.type(scale)
    if softcap:
        s = np.tanh(s / softcap) * softcap
    pq = np.asarray(pos_q)[:, None]
    pk = np.asarray(pos_k)[None, :]
    mask = pk > pq
    if window:
        mask |= (pq - pk) >= window
    s = np.where(mask[None, :, :], -np.inf, s)
    m = np.max(s, axis=-1, keepdims=True)
    if sinks is not None:
        m = np.maximum(m, sinks[:, None, None])
    e = np.exp(s - m)
    den = np.sum(e, axis=-1, keepdims=True)
    if sinks is not None:
        den = den + np.exp(sinks[:, None, None] - m)
    p = e / den
    o = np.einsum("hnt,thd->nhd", p, vv)
    return o.reshape(n, H * dv)


class KVCache:
    def __init__(self, n_layer):
        self.k = [None] * n_layer
        self.v = [None] * n_layer
        self.n = 0

    def append(self, il, k, v):
        self.k[il] = k if self.k[il] is None else np.concatenate([self.k[il], k], axis=0)
        self.v[il] = v if self.v[il] is None else np.concatenate([self.v[il], v], axis=0)
        return self.k[il], self.v[il]


def no_tap(name, x):
    pass


def output_weight(W):
    """`output.weight` when present, else the tied token embedding (llama.cpp: TENSOR_DUPLICATED)."""
    return W["output"] if "output" in W else W["token_embd"]


# ----------------------------------------------------------------------------------------------
# Architectures: fn(W, hp, tokens, cache, tap) -> logits [n_new, n_vocab]
# tokens are the new ids; their positions are cache.n .. cache.n + len(tokens) - 1.
# ----------------------------------------------------------------------------------------------

def project_qkv(W, p, h, H, Hkv, dk, dv):
    """q/k/v projections (llm_graph_context::build_qkv): fused `attn_qkv` (rows q | k | v, with an
    optional fused bias) or separate `attn_q/k/v`, each with an optional bias."""
    n = h.shape[0]
    if p + "attn_qkv" in W:
        y = matmul(h, W[p + "attn_qkv"], W.get(p + "attn_qkv.bias"))
        if p + "attn_qkv.bias" not in W and all(p + f"attn_{t}.bias" in W for t in "qkv"):
            y = y + np.concatenate([W[p + "attn_q.bias"], W[p + "attn_k.bias"], W[p + "attn_v.bias"]])
        nq, nk = H * dk, Hkv * dk
        q, k, v = y[:, :nq], y[:, nq:nq + nk], y[:, nq + nk:nq + nk + Hkv * dv]
    else:
        q = matmul(h, W[p + "attn_q"], W.get(p + "attn_q.bias"))
        k = matmul(h, W[p + "attn_k"], W.get(p + "attn_k.bias"))
        v = matmul(h, W[p + "attn_v"], W.get(p + "attn_v.bias"))
    return q.reshape(n, H, dk), k.reshape(n, Hkv, dk), v.reshape(n, Hkv, dv)


def _llama_like(W, hp, tokens, cache, tap, neox, fused_up, freq_factors=None, attn_factor=1.0):
    """The pre-norm RMSNorm decoder shared by llama, qwen2 and phi3 (src/models/llama.cpp,
    qwen2.cpp, phi3.cpp): x += attn(rms_norm(x)); x += ffn(rms_norm(x)); logits = out(rms_norm(x)).
    Norm biases, q/k/v/o biases and an output bias are applied when the file has them.
    FFN: silu(ffn_gate x) * (ffn_up x) -> ffn_down, or with `fused_up` (phi3, LLM_FFN_SWIGLU):
    ffn_up gives 2*n_ff rows, silu(first half) * second half -> ffn_down."""
    n = len(tokens)
    pos = np.arange(cache.n, cache.n + n)
    x = W["token_embd"][np.asarray(tokens)]
    tap("token_embd", x)
    eps = hp["rms_eps"]
    dk, dv = hp["head_dim_k"], hp["head_dim_v"]
    fs = rope_freq_scale(hp)
    for il in range(hp["n_layer"]):
        H, Hkv = hp["n_head"][il], hp["n_head_kv"][il]
        p = f"blk.{il}."
        h = rms_norm(x, W[p + "attn_norm"], eps)
        if p + "attn_norm.bias" in W:
            h = h + W[p + "attn_norm.bias"]
        tap(p + "attn_norm", h)
        q, k, v = project_qkv(W, p, h, H, Hkv, dk, dv)
        q = rope(q, pos, hp["n_rot"], hp["rope_base"], neox=neox, freq_scale=fs, freq_factors=freq_factors,
                 attn_factor=attn_factor)
        k = rope(k, pos, hp["n_rot"], hp["rope_base"], neox=neox, freq_scale=fs, freq_factors=freq_factors,
                 attn_factor=attn_factor)
        K, V = cache.append(il, k, v)
        a = attention(q, K, V, pos, np.arange(K.shape[0]), 1.0 / math.sqrt(dk))
        a = matmul(a, W[p + "attn_output"], W.get(p + "attn_output.bias"))
        tap(p + "attn_out", a)
        x = x + a
        h = rms_norm(x, W[p + "ffn_norm"], eps)
        if p + "ffn_norm.bias" in W:
            h = h + W[p + "ffn_norm.bias"]
        tap(p + "ffn_norm", h)
        if fused_up:
            u = matmul(h, W[p + "ffn_up"], W.get(p + "ffn_up.bias"))
            half = u.shape[-1] // 2
            g = silu(u[:, :half]) * u[:, half:]
        else:
            g = silu(matmul(h, W[p + "ffn_gate"], W.get(p + "ffn_gate.bias"))) * \
                matmul(h, W[p + "ffn_up"], W.get(p + "ffn_up.bias"))
        f = matmul(g, W[p + "ffn_down"], W.get(p + "ffn_down.bias"))
        tap(p + "ffn_out", f)
        x = x + f
        tap(p + "l_out", x)
    cache.n += n
    x = rms_norm(x, W["output_norm"], eps)
    if "output_norm.bias" in W:
        x = x + W["output_norm.bias"]
    tap("result_norm", x)
    return matmul(x, output_weight(W), W.get("output.bias"))


def arch_llama(W, hp, tokens, cache, tap=no_tap):
    """llama (src/models/llama.cpp): RMSNorm; normal RoPE (adjacent pairs: the converter permutes
    HF's q/k rows so that GGUF holds the interleaved layout); optional llama3 `rope_freqs`
    factors; GQA; scale 1/sqrt(head_dim); SwiGLU; output or tied token_embd."""
    return _llama_like(W, hp, tokens, cache, tap, neox=False, fused_up=False, freq_factors=W.get("rope_freqs"))


def arch_qwen2(W, hp, tokens, cache, tap=no_tap):
    """qwen2 (src/models/qwen2.cpp): llama with q/k/v biases, NeoX RoPE, optional output bias,
    usually tied embeddings."""
    return _llama_like(W, hp, tokens, cache, tap, neox=True, fused_up=False)


def arch_phi3(W, hp, tokens, cache, tap=no_tap):
    """phi3 (src/models/phi3.cpp): fused attn_qkv (or separate), NeoX RoPE over rope.dimension_count
    dims, q scaled by 1/sqrt(head_dim), fused ffn_up (2*n_ff) with SwiGLU; sliding window disabled
    (llama.cpp sets swa_type NONE for phi3). Long-RoPE: `rope_factors_short` divides the
    frequencies (llama.cpp picks the short factors while the context is <= the original training
    context, rope.scaling.original_context_length, which holds for every case here), and
    rope.scaling.attn_factor multiplies cos and sin (ggml's mscale)."""
    ff = W.get("rope_factors_short", W.get("rope_freqs"))
    af = float(hp.get("rope_attn_factor") or 1.0)
    return _llama_like(W, hp, tokens, cache, tap, neox=True, fused_up=True, freq_factors=ff, attn_factor=af)


def arch_gpt2(W, hp, tokens, cache, tap=no_tap):
    """gpt2 (src/models/gpt2.cpp): token_embd + position_embd[pos]; pre-LayerNorm (weight and
    bias, eps attention.layer_norm_epsilon); attention (fused attn_qkv with bias, or separate), no
    RoPE, scale 1/sqrt(head_dim), attn_output with bias; FFN gelu_tanh(ffn_up x + b) -> ffn_down + b;
    final LayerNorm; output (or tied token_embd), no output bias."""
    n = len(tokens)
    pos = np.arange(cache.n, cache.n + n)
    x = W["token_embd"][np.asarray(tokens)] + W["position_embd"][pos]
    tap("token_embd", x)
    eps = hp["ln_eps"]
    dk, dv = hp["head_dim_k"], hp["head_dim_v"]
    for il in range(hp["n_layer"]):
        H, Hkv = hp["n_head"][il], hp["n_head_kv"][il]
        p = f"blk.{il}."
        h = layer_norm(x, W[p + "attn_norm"], W.get(p + "attn_norm.bias"), eps)
        tap(p + "attn_norm", h)
        q, k, v = project_qkv(W, p, h, H, Hkv, dk, dv)
        K, V = cache.append(il, k, v)
        a = attention(q, K, V, pos, np.arange(K.shape[0]), 1.0 / math.sqrt(dk))
        a = matmul(a, W[p + "attn_output"], W.get(p + "attn_output.bias"))
        tap(p + "attn_out", a)
        x = x + a
        h = layer_norm(x, W[p + "ffn_norm"], W.get(p + "ffn_norm.bias"), eps)
        tap(p + "ffn_norm", h)
        f = matmul(gelu_tanh(matmul(h, W[p + "ffn_up"], W.get(p + "ffn_up.bias"))), W[p + "ffn_down"],
                   W.get(p + "ffn_down.bias"))
        tap(p + "ffn_out", f)
        x = x + f
        tap(p + "l_out", x)
    cache.n += n
    x = layer_norm(x, W["output_norm"], W.get("output_norm.bias"), eps)
    tap("result_norm", x)
    return matmul(x, output_weight(W))


def gemma3_is_swa(hp, il):
    """llama_hparams::set_swa_pattern(n_pattern, dense_first=false): layer il is local (sliding
    window) when il % n_pattern < n_pattern - 1; gemma3 loads the pattern with default 6, so
    layers 5, 11, 17, ... are global. No sliding_window key (or 0) -> no local layers."""
    if not hp["sliding_window"]:
        return False
    pat = hp["sliding_window_pattern"]
    if isinstance(pat, (list, tuple)):
        return bool(pat[il])
    n_pattern = int(pat) if pat is not None else 6
    return n_pattern == 0 or (il % n_pattern) < (n_pattern - 1)


def arch_gemma3(W, hp, tokens, cache, tap=no_tap):
    """gemma3 (src/models/gemma3.cpp, conversion/gemma.py):
    * embedding rows scaled by sqrt(n_embd);
    * every RMSNorm weight already holds 1 + w (the converter adds 1.0 to each `*norm.weight`);
    * per-head RMSNorm of q and k (attn_q_norm / attn_k_norm, width head_dim) before RoPE;
    * NeoX RoPE; local (sliding-window) layers use rope.freq_base_swa (llama.cpp default 10000),
      global layers rope.freq_base;
    * q scaled by 1/sqrt(head_dim) (llama.cpp: f_attention_scale; 27B uses n_embd/n_head instead;
      `query_pre_attn_scalar` is not read);
    * attention output -> post_attention_norm -> residual add; ffn_norm -> GeGLU gelu_tanh(gate)*up
      -> ffn_down -> post_ffw_norm -> residual add;
    * final RMSNorm, output (or tied token_embd), optional final logit soft-capping."""
    dt = W["token_embd"].dtype
    n = len(tokens)
    pos = np.arange(cache.n, cache.n + n)
    x = W["token_embd"][np.asarray(tokens)] * dt.type(math.sqrt(hp["n_embd"]))
    tap("token_embd", x)
    eps = hp["rms_eps"]
    d = hp["head_dim_k"]
    n_layer = hp["n_layer"]
    if n_layer == 62:  # LLM_TYPE_27B in llama.cpp
        scale = 1.0 / math.sqrt(hp["n_embd"] / hp["n_head"][0])
    else:
        scale = 1.0 / math.sqrt(d)
    base_swa = float(hp["rope_base_swa"]) if hp["rope_base_swa"] is not None else 10000.0
    for il in range(n_layer):
        H, Hkv = hp["n_head"][il], hp["n_head_kv"][il]
        p = f"blk.{il}."
        swa = gemma3_is_swa(hp, il)
        base = base_swa if swa else hp["rope_base"]
        fs = 1.0 if swa else rope_freq_scale(hp)
        h = rms_norm(x, W[p + "attn_norm"], eps)
        tap(p + "attn_norm", h)
        q = matmul(h, W[p + "attn_q"]).reshape(n, H, d)
        k = matmul(h, W[p + "attn_k"]).reshape(n, Hkv, d)
        v = matmul(h, W[p + "attn_v"]).reshape(n, Hkv, hp["head_dim_v"])
        q = rms_norm(q, W[p + "attn_q_norm"], eps)
        k = rms_norm(k, W[p + "attn_k_norm"], eps)
        q = rope(q, pos, hp["n_rot"], base, neox=True, freq_scale=fs)
        k = rope(k, pos, hp["n_rot"], base, neox=True, freq_scale=fs)
        q = q * dt.type(scale)
        K, V = cache.append(il, k, v)
        a = attention(q, K, V, pos, np.arange(K.shape[0]), 1.0,
                      window=int(hp["sliding_window"]) if swa else None)
        a = matmul(a, W[p + "attn_output"])
        a = rms_norm(a, W[p + "post_attention_norm"], eps)
        tap(p + "attn_out", a)
        x = x + a
        h = rms_norm(x, W[p + "ffn_norm"], eps)
        tap(p + "ffn_norm", h)
        f = matmul(gelu_tanh(matmul(h, W[p + "ffn_gate"])) * matmul(h, W[p + "ffn_up"]), W[p + "ffn_down"])
        f = rms_norm(f, W[p + "post_ffw_norm"], eps)
        tap(p + "ffn_out", f)
        x = x + f
        tap(p + "l_out", x)
    cache.n += n
    x = rms_norm(x, W["output_norm"], eps)
    tap("result_norm", x)
    logits = matmul(x, output_weight(W))
    cap = hp["final_softcap"]
    if cap:
        logits = np.tanh(logits / cap) * cap
    return logits


def gpt_oss_is_swa(hp, il):
    """gpt-oss (openai-moe.cpp): load_swa_pattern(ml, 2) -> as gemma3_is_swa with period 2: even
    layers use the sliding window, odd layers are dense."""
    if not hp["sliding_window"]:
        return False
    pat = hp["sliding_window_pattern"]
    if isinstance(pat, (list, tuple)):
        return bool(pat[il])
    n_pattern = int(pat) if pat is not None else 2
    return n_pattern == 0 or (il % n_pattern) < (n_pattern - 1)


def swiglu_oai(g, u, alpha=1.702, limit=7.0):
    """ggml_swiglu_oai: x = min(g, limit), y = clamp(u, -limit, limit), x * sigmoid(alpha x) * (y + 1)."""
    dt = g.dtype
    x = np.minimum(g, dt.type(limit))
    y = np.clip(u, dt.type(-limit), dt.type(limit))
    return x / (dt.type(1.0) + np.exp(-dt.type(alpha) * x)) * (y + dt.type(1.0))


def moe_ffn(W, p, h, n_used, tap):
    """llm_graph_context::build_moe_ffn as gpt-oss calls it (LLM_FFN_SWIGLU_OAI_MOE,
    LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT, no weight normalisation, no scale): router logits
    = ffn_gate_inp h + bias; the n_used largest per token (ties: lower id); weights = softmax over
    those n_used logits; per chosen expert e: gate = W_gate[e] h + b_gate[e], up = W_up[e] h + b_up[e],
    down = W_down[e] swiglu_oai(gate, up) + b_down[e]; output = sum_j w_j down_j."""
    logits = matmul(h, W[p + "ffn_gate_inp"], W.get(p + "ffn_gate_inp.bias"))
    tap(p + "ffn_moe_logits", logits)
    Wg, Wu, Wd = W[p + "ffn_gate_exps"], W[p + "ffn_up_exps"], W[p + "ffn_down_exps"]
    bg, bu, bd = W.get(p + "ffn_gate_exps.bias"), W.get(p + "ffn_up_exps.bias"), W.get(p + "ffn_down_exps.bias")
    out = np.zeros((h.shape[0], Wd.shape[1]), dtype=h.dtype)
    for t in range(h.shape[0]):
        row = np.asarray(logits[t], dtype=np.float64)
        sel = np.argsort(-row, kind="stable")[:n_used]
        e = np.exp(logits[t][sel] - logits[t][sel[0]])
        w = e / np.sum(e)
        for j, x in enumerate(sel):
            g = h[t] @ Wg[x].T + (bg[x] if bg is not None else 0)
            u = h[t] @ Wu[x].T + (bu[x] if bu is not None else 0)
            d = swiglu_oai(g, u) @ Wd[x].T + (bd[x] if bd is not None else 0)
            out[t] += w[j] * d
    return out


def arch_gpt_oss(W, hp, tokens, cache, tap=no_tap):
    """gpt-oss (src/models/openai-moe.cpp, llama_model_openai_moe):
    * RMSNorm (attn_norm) -> q/k/v with optional biases -> NeoX RoPE with YaRN (rope.scaling.*,
      see rope_yarn); sliding-window layers (even ones, pattern 2) use rope.freq_base_swa (default:
      rope.freq_base) and the same scaling;
    * attention scale 1/sqrt(head_dim) (1/sqrt(n_rot) in llama.cpp; equal here), one sink logit per
      head (attn_sinks) in each softmax denominator, sliding window on SWA layers;
    * attn_output + bias -> residual; post_attention_norm (tap: ffn_norm) -> MoE (moe_ffn) ->
      residual; final RMSNorm; untied output."""
    n = len(tokens)
    pos = np.arange(cache.n, cache.n + n)
    x = W["token_embd"][np.asarray(tokens)]
    tap("token_embd", x)
    eps = hp["rms_eps"]
    dk, dv = hp["head_dim_k"], hp["head_dim_v"]
    fs = rope_freq_scale(hp)
    yarn = yarn_params(hp)
    base_swa = float(hp["rope_base_swa"]) if hp["rope_base_swa"] is not None else hp["rope_base"]
    n_used = int(hp["n_expert_used"])
    for il in range(hp["n_layer"]):
        H, Hkv = hp["n_head"][il], hp["n_head_kv"][il]
        p = f"blk.{il}."
        swa = gpt_oss_is_swa(hp, il)
        base = base_swa if swa else hp["rope_base"]
        h = rms_norm(x, W[p + "attn_norm"], eps)
        tap(p + "attn_norm", h)
        q, k, v = project_qkv(W, p, h, H, Hkv, dk, dv)
        if yarn is not None:
            q = rope_yarn(q, pos, hp["n_rot"], base, fs, yarn)
            k = rope_yarn(k, pos, hp["n_rot"], base, fs, yarn)
        else:
            q = rope(q, pos, hp["n_rot"], base, neox=True, freq_scale=fs)
            k = rope(k, pos, hp["n_rot"], base, neox=True, freq_scale=fs)
        K, V = cache.append(il, k, v)
        a = attention(q, K, V, pos, np.arange(K.shape[0]), 1.0 / math.sqrt(dk),
                      window=int(hp["sliding_window"]) if swa else None, sinks=W[p + "attn_sinks"])
        a = matmul(a, W[p + "attn_output"], W.get(p + "attn_output.bias"))
        tap(p + "attn_out", a)
        x = x + a
        h = rms_norm(x, W[p + "post_attention_norm"], eps)
        tap(p + "ffn_norm", h)
        f = moe_ffn(W, p, h, n_used, tap)
        tap(p + "ffn_out", f)
        x = x + f
        tap(p + "l_out", x)
    cache.n += n
    x = rms_norm(x, W["output_norm"], eps)
    tap("result_norm", x)
    return matmul(x, W["output"])


def rope_freq_scale(hp):
    """llama.cpp (llama-model.cpp, llama-context.cpp): rope.scaling.type defaults to linear, and
    freq_scale = 1/rope.scaling.factor when a factor is stored, else 1; type none -> 1. YaRN (which
    also changes the angles per dimension) is `rope_yarn`, used by gpt-oss."""
    t = hp.get("rope_scaling_type") or "linear"
    if t == "none":
        return 1.0
    if t not in ("linear", "longrope", "yarn"):
        raise NotImplementedError(f"rope scaling type {t!r} is not implemented in this recorder")
    f = hp.get("rope_scaling_factor")
    return 1.0 / float(f) if f else 1.0


ARCHS = {
    "llama": arch_llama,
    "qwen2": arch_qwen2,
    "phi3": arch_phi3,
    "gemma3": arch_gemma3,
    "gpt2": arch_gpt2,
    "gpt-oss": arch_gpt_oss,
}


# ----------------------------------------------------------------------------------------------
# Running a case
# ----------------------------------------------------------------------------------------------

def run_forward(model, dtype, tokens, taps=False, W=None):
    """Teacher-forced pass over `tokens` in one batch; returns (logits, taps dict, cache)."""
    W = model.weights(dtype) if W is None else W
    fn = ARCHS[model.arch]
    cache = KVCache(model.hp["n_layer"])
    collected = {}

    def tap(name, x):
        collected[name] = np.array(x, copy=True)
        if name.endswith(".l_out"):
            log(f"      {dtype.__name__ if hasattr(dtype, '__name__') else dtype} {name} done")

    logits = fn(W, model.hp, list(tokens), cache, tap if taps else _progress_tap(dtype))
    if taps:
        collected["logits"] = np.array(logits, copy=True)
    return logits, collected, cache


def _progress_tap(dtype):
    def tap(name, x):
        if name.endswith(".l_out"):
            log(f"      {np.dtype(dtype).name} {name}")
    return tap


def greedy(model, dtype, cache, last_logits, steps):
    """Greedy continuation from a filled cache: argmax (lowest id on exact ties) each step."""
    W = model.weights(dtype)
    fn = ARCHS[model.arch]
    ids, margins = [], []
    row = np.asarray(last_logits, dtype=np.float64)
    for s in range(steps):
        top2 = np.argsort(-row, kind="stable")[:2]
        tok = int(np.argmax(row))
        ids.append(tok)
        margins.append(float(row[top2[0]] - row[top2[1]]))
        if s + 1 < steps:
            row = np.asarray(fn(W, model.hp, [tok], cache)[-1], dtype=np.float64)
        log(f"      greedy step {s + 1}/{steps}: id {tok} margin {margins[-1]:.4f}")
    return ids, margins


def log_softmax(l):
    l = np.asarray(l, dtype=np.float64)
    m = np.max(l, axis=-1, keepdims=True)
    return l - (m + np.log(np.sum(np.exp(l - m), axis=-1, keepdims=True)))


def lse(l):
    l = np.asarray(l, dtype=np.float64)
    m = np.max(l, axis=-1)
    return m + np.log(np.sum(np.exp(l - m[:, None]), axis=-1))


def topk(l, k):
    """ids of the k largest per row, by logit descending then id ascending."""
    l = np.asarray(l, dtype=np.float64)
    ids = np.empty((l.shape[0], k), dtype=np.int32)
    vals = np.empty((l.shape[0], k), dtype=np.float64)
    for r in range(l.shape[0]):
        part = np.argpartition(-l[r], k)[:k + 1]
        # Include every id tied with the k-th value so the id tie-break is exact.
        kth = np.sort(l[r][part])[::-1][k - 1]
        cand = np.nonzero(l[r] >= kth)[0]
        order = np.lexsort((cand, -l[r][cand]))[:k]
        ids[r] = cand[order]
        vals[r] = l[r][cand[order]]
    return ids, vals


def compare_logits(ref, other, margin=0.1):
    """KL(ref || other) per row (as llama-perplexity --kl-divergence: base = reference), top-1
    agreement over all rows and over rows whose reference top-1/top-2 margin >= margin, and the
    max |dlogit| over the reference top-40."""
    lr, lo = log_softmax(ref), log_softmax(other)
    kl = np.sum(np.exp(lr) * (lr - lo), axis=-1)
    ref = np.asarray(ref, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    a1 = np.argmax(ref, axis=-1)
    b1 = np.argmax(other, axis=-1)
    srt = np.sort(ref, axis=-1)
    marg = srt[:, -1] - srt[:, -2]
    conf = marg >= margin
    ids, _ = topk(ref, TOP_K)
    d = np.abs(np.take_along_axis(ref, ids.astype(np.int64), -1) - np.take_along_axis(other, ids.astype(np.int64), -1))
    return dict(mean_kl=float(np.mean(kl)), max_kl=float(np.max(kl)), top1=float(np.mean(a1 == b1)),
                top1_conf=float(np.mean((a1 == b1)[conf])) if conf.any() else float("nan"),
                n_conf=int(conf.sum()), n=len(a1), max_abs_dlogit_top40=float(np.max(d)))


def nmse(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.sum((a - b) ** 2) / np.sum(b * b))


# ----------------------------------------------------------------------------------------------
# Tokenization
# ----------------------------------------------------------------------------------------------

_LLAMA_CPP = None


def llama_cpp_module():
    global _LLAMA_CPP
    if _LLAMA_CPP is None:
        try:
            import llama_cpp  # noqa: F401
            _LLAMA_CPP = llama_cpp
        except Exception:  # noqa: BLE001
            _LLAMA_CPP = False
    return _LLAMA_CPP or None


def add_bos_default(model):
    v = model.meta.get("tokenizer.ggml.add_bos_token")
    if v is not None:
        return bool(v)
    return model.meta.get("tokenizer.ggml.model") == "llama"  # llama.cpp: SPM adds BOS by default


def tokenize(model, text, special, use_llama_cpp=True):
    """(ids, source). add_special per the vocabulary (add_bos_token), parse_special = `special`."""
    add_bos = add_bos_default(model)
    lc = llama_cpp_module() if use_llama_cpp else None
    if lc is not None:
        llm = lc.Llama(model_path=str(model.path), vocab_only=True, verbose=False)
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
        ver = importlib.metadata.version("llama_cpp_python")
        del llm
        return [int(i) for i in ids], f"llama-cpp-python {ver} tokenize(add_bos={add_bos}, special={special})"
    ids = FallbackTokenizer.get(model).encode(text, special)
    if add_bos:
        ids = [int(model.meta["tokenizer.ggml.bos_token_id"])] + ids
    return ids, (f"record_models.py fallback tokenizer ({model.meta.get('tokenizer.ggml.model')}: "
                 f"llama.cpp's rules re-implemented; add_bos={add_bos}, special={special}) — llama_cpp was "
                 f"not importable")


class FallbackTokenizer:
    """llama.cpp's tokenizer rules for the two vocabulary types the real models use."""
    _cache = {}

    @classmethod
    def get(cls, model):
        key = str(model.path)
        if key not in cls._cache:
            cls._cache[key] = cls(model)
        return cls._cache[key]

    def __init__(self, model):
        self.kind = model.meta.get("tokenizer.ggml.model")
        self.pre = model.meta.get("tokenizer.ggml.pre")
        tokens, types, scores, merges = model.vocab_arrays()
        self.tokens = tokens
        self.types = types or [1] * len(tokens)
        self.scores = scores
        self.t2id = {}
        for i, t in enumerate(tokens):
            self.t2id[t] = i
        if merges is not None:
            self.ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(merges)}
        # special tokens: CONTROL (3) only with parse_special; USER_DEFINED (4) always
        # (llama_vocab::impl::tokenizer_st_partition), longest text first.
        self.specials = sorted([(t, i, ty) for i, (t, ty) in enumerate(zip(tokens, self.types)) if ty in (3, 4)],
                               key=lambda x: -len(x[0]))

    def partition(self, text, special):
        frags = [(text, None)]
        for t, i, ty in self.specials:
            if not t or (ty == 3 and not special):
                continue
            out = []
            for s, tid in frags:
                if tid is not None or t not in s:
                    out.append((s, tid))
                    continue
                parts = s.split(t)
                for j, part in enumerate(parts):
                    if part:
                        out.append((part, None))
                    if j + 1 < len(parts):
                        out.append((t, i))
            frags = out
        return frags

    def encode(self, text, special):
        ids = []
        for s, tid in self.partition(text, special):
            if tid is not None:
                ids.append(tid)
            elif self.kind == "gpt2":
                ids.extend(self.bpe(s))
            elif self.kind == "llama":
                ids.extend(self.spm(s))
            else:
                raise NotImplementedError(f"fallback tokenizer for {self.kind!r}")
        return ids

    # gpt2-style byte-level BPE
    @staticmethod
    def byte_map():
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
            list(range(ord("®"), ord("ÿ") + 1))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        return {b: chr(c) for b, c in zip(bs, cs)}

    def pretokenize(self, s):
        import regex
        if self.pre in ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"):
            exprs = [r"\p{N}",
                     r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"]
        elif self.pre in ("gpt-2", "gpt2", "default", None):
            exprs = [r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"]
        else:
            raise NotImplementedError(f"fallback pre-tokenizer {self.pre!r}")
        pieces = [s]
        for e in exprs:
            rx = regex.compile(e)
            out = []
            for p in pieces:
                last = 0
                for m in rx.finditer(p):
                    if m.start() > last:
                        out.append(p[last:m.start()])
                    if m.end() > m.start():
                        out.append(m.group(0))
                    last = m.end()
                if last < len(p):
                    out.append(p[last:])
            pieces = out
        return pieces

    def bpe(self, s):
        bm = self.byte_map()
        ids = []
        for piece in self.pretokenize(s):
            word = [bm[b] for b in piece.encode("utf-8")]
            while len(word) > 1:
                best, bi = None, -1
                for j in range(len(word) - 1):
                    r = self.ranks.get((word[j], word[j + 1]))
                    if r is not None and (best is None or r < best):
                        best, bi = r, j
                if best is None:
                    break
                word = word[:bi] + [word[bi] + word[bi + 1]] + word[bi + 2:]
            for w in word:
                ids.append(self.t2id[w])
        return ids

    # SPM: highest-score bigram merges (leftmost on ties), byte fallback
    def spm(self, s):
        s = s.replace(" ", "\u2581")
        sym = list(s)
        while len(sym) > 1:
            best, bi = None, -1
            for j in range(len(sym) - 1):
                tid = self.t2id.get(sym[j] + sym[j + 1])
                if tid is None:
                    continue
                sc = self.scores[tid]
                if best is None or sc > best:
                    best, bi = sc, j
            if best is None:
                break
            sym = sym[:bi] + [sym[bi] + sym[bi + 1]] + sym[bi + 2:]
        ids = []
        for t in sym:
            if t in self.t2id:
                ids.append(self.t2id[t])
            else:
                for b in t.encode("utf-8"):
                    ids.append(self.t2id[f"<0x{b:02X}>"])
        return ids


# ----------------------------------------------------------------------------------------------
# llama.cpp cross-check
# ----------------------------------------------------------------------------------------------

def _no_extra_bufts(lc):
    """Turn off llama.cpp's extra buffer types (weight repacking: AMX, CPU_REPACK). On this machine
    the AMX repack path of a native llama-cpp-python 0.3.36 build dies with SIGILL (the CPU flags
    advertise AMX but the VM does not grant it); the plain CPU path computes the same graph."""
    import llama_cpp.llama_cpp as C
    if getattr(C, "_orcd_patched", False):
        return
    orig = C.llama_model_default_params

    def patched():
        p = orig()
        p.use_extra_bufts = False
        return p
    C.llama_model_default_params = patched
    C._orcd_patched = True


def llama_cpp_logits(model, tokens):
    """llama.cpp's logits for `tokens`, teacher-forced in one batch, F32 KV cache, 2 threads."""
    lc = llama_cpp_module()
    if lc is None:
        return None
    _no_extra_bufts(lc)
    n = max(64, len(tokens) + 8)
    llm = lc.Llama(model_path=str(model.path), logits_all=True, n_ctx=n, n_batch=n, n_ubatch=n, n_threads=2,
                   type_k=0, type_v=0,  # GGML_TYPE_F32 KV cache
                   verbose=False)
    llm.reset()
    llm.eval(list(tokens))
    out = np.array(llm.scores[:len(tokens)], dtype=np.float64)
    del llm
    return out


def write_f32_copy(model, dst):
    """The same model with every tensor stored as F32 (gguf-py's dequantization), metadata copied.
    llama.cpp on this file computes the same graph without its quantized-matmul path (8-bit
    activations), which isolates graph semantics from quantization noise."""
    from gguf import GGUFValueType, GGUFWriter
    r = model.reader
    w = GGUFWriter(str(dst), model.arch)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k in ("general.architecture", "general.file_type"):
            continue
        t = f.types
        if t[0] == GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), GGUFValueType.ARRAY, sub_type=t[1])
        else:
            w.add_key_value(k, f.contents(), t[0])
    for t in r.tensors:
        name = t.name[:-len(".weight")] if t.name.endswith(".weight") else t.name
        w.add_tensor(t.name, model._w32[name])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ----------------------------------------------------------------------------------------------
# YAML
# ----------------------------------------------------------------------------------------------

def q(s):
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(s, ensure_ascii=False)


def flow_list(xs, fmt=str):
    return "[" + ", ".join(fmt(x) for x in xs) + "]"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# (name, command) of the synthetic fixture being recorded (--fixture): written instead of `file:`.
FIXTURE = None


def write_case(c):
    lines = [
        "# Recorded by goldens/recorders/record_models.py (float64 numpy forward pass); do not edit by hand.",
        "suite: models",
        f"name: {c['name']}",
        f"arch: {c['arch']}",
        *([f"fixture: {FIXTURE[0]}   # generated by orcd-fixtures (orcd_fixtures::synthetic), vocabulary of its arch",
           f"fixture_command: {q(FIXTURE[1])}"] if FIXTURE else [f"file: {c['file']}"]),
        f"file_sha256: {c['file_sha256']}",
        "numerics: exact",
        "reference: numpy float64 forward pass on gguf-py dequantized weights",
        f"reference_version: {q(c['reference_version'])}",
        f"command: {q(c['command'])}",
        f"prompt: {q(c['prompt']) if c['prompt'] is not None else 'null'}",
        f"prompt_ids_source: {q(c['prompt_ids_source'])}",
        f"tokens: {flow_list(c['tokens'])}",
        f"top_k: {TOP_K}",
        f"logits_topk_ids: {c['logits_topk_ids']}",
        f"logits_topk: {c['logits_topk']}",
        f"logits_lse: {c['logits_lse']}",
        f"greedy: {flow_list(c['greedy'])}",
        f"greedy_margins: {flow_list(c['greedy_margins'], lambda x: f'{x:.6g}')}",
        "thresholds:",
        "  top1_margin: 0.1        # issue 4 acceptance, --numerics exact: confident rows have margin >= 0.1",
        *(["  top1_min: 0.97          # issue 4 acceptance, gpt-oss: top-1 >= 97% (near-tied expert routing may flip a row)",
           "  mean_kl: 1.0e-3         # issue 4 acceptance, gpt-oss: mean KL <= 1e-3 (instead of max KL and max |dlogit|)"]
          if c["arch"] == "gpt-oss" else
          ["  top1_min: 1.0           # issue 4 acceptance: top-1 on confident rows 100%",
           "  max_kl: 1.0e-3          # issue 4 acceptance: max KL <= 1e-3",
           "  max_abs_dlogit: 0.1     # issue 4 acceptance: max |dlogit| over the reference top-40 <= 0.1"]),
        f"  tap_nmse: {c['tap_nmse']:.1e}        # max(100 x measured_f32_nmse_max, 1e-9), 1 significant digit: "
        f"an f32 pass of the same graph (this recorder's numpy float32 run) stays ~100x below it",
        f"measured_f32_nmse_max: {c['measured_f32_nmse_max']:.3e}   # max over taps of NMSE(numpy float32 pass, "
        f"float64 pass), short case of this model",
    ]
    if c.get("selfcheck"):
        lines.append("# Self-checks run while recording (numbers from this run; see record_models.py):")
        lines.extend(f"#   {x}" for x in c["selfcheck"])
    if c.get("taps"):
        lines.append("taps:")
        for k, v in c["taps"].items():
            lines.append(f"  {q(k)}: {v}")
    path = OUT / f"{c['name']}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import yaml  # the round-trip check only
    back = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert back["tokens"] == c["tokens"] and back["name"] == c["name"] and back["greedy"] == c["greedy"], path
    assert back["prompt"] == c["prompt"], (back["prompt"], c["prompt"])
    log(f"    wrote {path}")


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------

LONG_TEXT = (
    "The water cycle describes how water moves between the oceans, the atmosphere and the land. "
    "Heat from the sun evaporates water from the surface of seas and lakes, and plants release "
    "water vapour through their leaves. As the warm, moist air rises it cools, and the vapour "
    "condenses into tiny droplets that form clouds. When the droplets grow heavy enough they fall "
    "back to the ground as rain, snow or hail. Some of this water flows over the land in rivers "
    "and streams, some soaks into the soil to become groundwater, and some is stored for years in "
    "glaciers and ice sheets. Eventually almost all of it returns to the sea, and the cycle begins again."
)

REAL_MODELS = {
    "smollm2-135m-q4_1": dict(
        file="models/SmolLM2-135M-Instruct.Q4_1.gguf",
        prefix="llama-smollm2-135m-q4_1-exact",
        cases=[
            dict(kind="short", text="The capital of France is", special=False, taps=True),
            dict(kind="long", text=LONG_TEXT, special=False),
            dict(kind="chat", text="<|im_start|>user\nWhat are three good ways to save water at home?<|im_end|>\n"
                                   "<|im_start|>assistant\n", special=True),
        ]),
    "gemma-3-270m-q4_k_m": dict(
        file="models/gemma-3-270m-q4_k_m.gguf",
        prefix="gemma3-270m-q4_k_m-exact",
        cases=[
            dict(kind="short", text="The capital of France is", special=False, taps=True),
            dict(kind="long", text=LONG_TEXT, special=False),
            dict(kind="chat", text="<start_of_turn>user\nWhat are three good ways to save water at home?"
                                   "<end_of_turn>\n<start_of_turn>model\n", special=True),
        ]),
}


def versions():
    return f"gguf-py {importlib.metadata.version('gguf')}, numpy {np.__version__}"


def record_model(model, file_rel, prefix, cases, argv, use_llama_cpp, summary, f32_check=True):
    """Run every case of one model: f64 reference, f32 self-check, llama.cpp cross-check, write."""
    OUT.mkdir(parents=True, exist_ok=True)
    digest = sha256(model.path)
    log(f"  sha256 {digest}")
    model.hp["n_vocab"] = output_weight(model.weights(np.float32)).shape[0]
    prepared = []
    for c in cases:
        if c.get("tokens") is not None:
            ids, src, text = list(c["tokens"]), c.get("tokens_source", "given as token ids"), None
        else:
            ids, src = tokenize(model, c["text"], c["special"], use_llama_cpp)
            text = c["text"]
        prepared.append((c, ids, src, text))
        log(f"  case {c['kind']}: {len(ids)} tokens ({src})")

    # 1. Self-check on the taps case: float32 vs float64, per tap.
    measured = None
    tap_case = [p for p in prepared if p[0].get("taps")]
    f64_cache = {}
    if tap_case:
        c, ids, _, _ = tap_case[0]
        log(f"  [{prefix}] float64 pass with taps")
        l64, taps64, cache64 = run_forward(model, np.float64, ids, taps=True)
        log(f"  [{prefix}] float32 pass with taps (self-check)")
        l32, taps32, _ = run_forward(model, np.float32, ids, taps=True)
        worst = max(((nmse(taps32[k], taps64[k]), k) for k in taps64), key=lambda x: x[0])
        per_layer = {}
        for k in taps64:
            per_layer[k] = nmse(taps32[k], taps64[k])
        for k in list(taps64)[:1] + [k for k in taps64 if k.startswith("blk.0.")] + \
                [k for k in taps64 if k.startswith(f"blk.{model.hp['n_layer'] - 1}.")] + ["result_norm", "logits"]:
            log(f"    f32-vs-f64 NMSE {k:28s} {per_layer[k]:.3e}")
        log(f"    f32-vs-f64 NMSE worst: {worst[1]} {worst[0]:.3e}")
        measured = worst[0]
        summary.setdefault("f32_nmse", {})[prefix] = dict(worst_tap=worst[1], worst=worst[0], per_tap=per_layer)
        f64_cache[c["kind"]] = (l64, taps64, cache64)
        del l32, taps32
    tap_nmse = float(f"{max(measured * 100, 1e-9):.0e}") if measured is not None else 1e-6

    f32_copy = None
    tmpdir = None
    if use_llama_cpp and f32_check and llama_cpp_module() is not None:
        import tempfile
        tmpdir = tempfile.TemporaryDirectory(prefix="orcd-f32-")
        f32_copy = Path(tmpdir.name) / (model.path.stem + ".f32.gguf")
        log(f"  writing an F32 re-encoding for the llama.cpp graph check: {f32_copy}")
        write_f32_copy(model, f32_copy)

    for c, ids, src, text in prepared:
        name = prefix if c["kind"] == "tokens" else f"{prefix}-{c['kind']}"
        log(f"  [{name}] {len(ids)} tokens")
        if c["kind"] in f64_cache:
            l64, taps64, cache = f64_cache.pop(c["kind"])
        else:
            log(f"  [{name}] float64 pass")
            l64, taps64, cache = run_forward(model, np.float64, ids, taps=False)
        log(f"  [{name}] greedy {N_GREEDY} steps (float64)")
        g_ids, g_marg = greedy(model, np.float64, cache, l64[-1], N_GREEDY)
        del cache

        # f32 self-check of the logits over prompt + greedy tokens (teacher-forced)
        log(f"  [{name}] float32 pass over prompt + greedy (self-check)")
        full = list(ids) + g_ids[:-1]
        l32_full, _, _ = run_forward(model, np.float32, full, taps=False)
        m32 = compare_logits(l64, l32_full[:len(ids)])
        g32 = [int(x) for x in np.argmax(l32_full[len(ids) - 1:], axis=-1)]
        m32["greedy_equal"] = int(sum(1 for a, b in zip(g32, g_ids) if a == b))
        log(f"    f32 vs f64 logits: {m32}")
        del l32_full
        entry = dict(n_tokens=len(ids), f32_vs_f64=m32, greedy=g_ids, greedy_margins=g_marg)

        # llama.cpp cross-check on the same tokens: (a) the file as it is; (b) its F32 re-encoding
        if use_llama_cpp and llama_cpp_module() is not None and f32_copy is not None:
            log(f"  [{name}] llama.cpp logits on the F32 re-encoding (teacher-forced, F32 KV)")
            mf = Model.__new__(Model)
            mf.path = f32_copy
            lf = llama_cpp_logits(mf, ids)
            mfc = compare_logits(l64, lf)
            mfc["max_abs_dlogit_all"] = float(np.max(np.abs(l64 - lf)))
            log(f"    llama.cpp(F32 re-encoding) vs f64: {mfc}")
            entry["llama_cpp_f32_reencoding_vs_f64"] = mfc
            del lf
        if use_llama_cpp and llama_cpp_module() is not None:
            log(f"  [{name}] llama.cpp logits (teacher-forced, F32 KV)")
            lref = llama_cpp_logits(model, ids)
            mlc = compare_logits(l64, lref)
            mlc_rev = compare_logits(lref, l64)
            log(f"    llama.cpp vs f64 (KL(f64||llama.cpp)): {mlc}")
            entry["llama_cpp_vs_f64"] = mlc
            # Diagnostic: the same float64 graph with llama.cpp's 8-bit activation rounding.
            log(f"  [{name}] diagnostic: float64 pass with llama.cpp's 8-bit activations emulated")
            lq, _, _ = run_forward(model, np.float64, ids, W=model.weights_actq(np.float64))
            mq = compare_logits(lq, lref)
            log(f"    llama.cpp vs f64+q8-activations: {mq}")
            entry["llama_cpp_vs_f64_q8act"] = mq
            del lq
            entry["llama_cpp_vs_f64_klrev"] = dict(mean_kl=mlc_rev["mean_kl"], max_kl=mlc_rev["max_kl"])
        else:
            entry["llama_cpp_vs_f64"] = "llama_cpp not importable"
        summary.setdefault("cases", {})[name] = entry

        ids_k, vals_k = topk(l64, TOP_K)
        rel = {}
        for key, arr in (("logits_topk_ids", ids_k.astype(np.int32)),
                         ("logits_topk", vals_k.astype(np.float32)),
                         ("logits_lse", lse(l64).astype(np.float32))):
            fname = f"{name}.{ {'logits_topk_ids': 'topk_ids', 'logits_topk': 'topk_logits', 'logits_lse': 'lse'}[key] }.npy"
            np.save(OUT / fname, arr)
            rel[key] = fname
        taps_rel = None
        if c.get("taps"):
            tdir = OUT / f"{name}.taps"
            tdir.mkdir(exist_ok=True)
            for old in tdir.glob("*.npy"):
                old.unlink()
            taps_rel = {}
            for k, v in taps64.items():
                a = v.astype(np.float32)
                if k == "logits" and a.nbytes > FULL_LOGITS_MAX_BYTES:
                    log(f"    tap logits skipped ({a.nbytes} B > {FULL_LOGITS_MAX_BYTES} B)")
                    continue
                np.save(tdir / f"{k}.npy", a)
                taps_rel[k] = f"{name}.taps/{k}.npy"
        write_case(dict(
            name=name, arch=model.arch, file=file_rel, file_sha256=digest,
            reference_version=versions(), command=command(argv), prompt=text, prompt_ids_source=src,
            tokens=[int(x) for x in ids], greedy=g_ids, greedy_margins=g_marg,
            tap_nmse=tap_nmse, measured_f32_nmse_max=measured if measured is not None else float("nan"),
            taps=taps_rel, selfcheck=selfcheck_lines(entry), **rel))
    if tmpdir is not None:
        tmpdir.cleanup()


def selfcheck_lines(e):
    def fmt(m, top1=True):
        s = f"mean KL {m['mean_kl']:.2e}, max KL {m['max_kl']:.2e}"
        if top1:
            s += f", top-1 {100 * m['top1']:.1f}% (confident rows {100 * m['top1_conf']:.1f}% of {m['n_conf']})"
        return s + f", max |dlogit| over ref top-40 {m['max_abs_dlogit_top40']:.2e}"
    out = [f"numpy float32 pass vs float64 (prompt rows): {fmt(e['f32_vs_f64'])}; greedy steps equal "
           f"{e['f32_vs_f64']['greedy_equal']}/{N_GREEDY}"]
    if isinstance(e.get("llama_cpp_f32_reencoding_vs_f64"), dict):
        out.append("llama.cpp (llama-cpp-python 0.3.36, CPU, F32 KV, one batch) on this file re-encoded as F32 vs float64: "
                   + fmt(e["llama_cpp_f32_reencoding_vs_f64"]))
    if isinstance(e.get("llama_cpp_vs_f64"), dict):
        out.append("llama.cpp on this file as it is (8-bit activations for quantized matmuls) vs float64: "
                   + fmt(e["llama_cpp_vs_f64"]))
    else:
        out.append("llama.cpp comparison not run (llama_cpp not importable)")
    return out


def command(argv):
    argv = list(argv)
    if "--summary" in argv:  # where the self-check numbers go does not change the golden
        i = argv.index("--summary")
        del argv[i:i + 2]
    return " ".join(["python3", "goldens/recorders/record_models.py", *(shlex.quote(a) for a in argv)])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=str(CACHE / "models"))
    ap.add_argument("--only", default=None, help="record only real models whose key contains this")
    ap.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp tokenization and cross-check")
    ap.add_argument("--gguf", help="record one case on this GGUF file (e.g. a synthetic model)")
    ap.add_argument("--file-rel", help="the `file:` written for --gguf (relative to the fetch cache)")
    ap.add_argument("--name", help="case name prefix for --gguf (must contain the arch name)")
    ap.add_argument("--tokens", help="comma-separated token ids for --gguf")
    ap.add_argument("--taps", action="store_true", help="with --gguf: also write the taps")
    ap.add_argument("--summary", default=None, help="write the self-check numbers as JSON here")
    ap.add_argument("--no-f32-check", action="store_true",
                    help="skip llama.cpp on an F32 re-encoding of the file (needs disk: 4 bytes a weight)")
    ap.add_argument("--out", default=None, help="output folder (default goldens/models)")
    ap.add_argument("--fixture", nargs=2, metavar=("NAME", "COMMAND"), default=None,
                    help="with --gguf: the file is orcd-fixtures' NAME, made by COMMAND (written instead of file:)")
    args = ap.parse_args(argv)
    global OUT, FIXTURE
    FIXTURE = args.fixture
    if args.out:
        OUT = Path(args.out).resolve()
    use_lc = not args.no_llama_cpp
    log(f"llama_cpp importable: {bool(llama_cpp_module())}; {versions()}")
    summary = {}
    if args.gguf:
        model = Model(Path(args.gguf))
        if model.arch not in ARCHS:
            raise SystemExit(f"error: arch {model.arch!r} not implemented (have {sorted(ARCHS)})")
        assert args.name and args.tokens, "--gguf needs --name and --tokens"
        toks = [int(x) for x in args.tokens.split(",")]
        case = dict(kind="tokens", tokens=toks, taps=args.taps)
        prefix = args.name
        record_model(model, args.file_rel or f"models/{Path(args.gguf).name}", prefix, [case], argv, use_lc,
                     summary, f32_check=not args.no_f32_check)
    else:
        for key, spec in REAL_MODELS.items():
            if args.only and args.only not in key:
                continue
            path = Path(args.models_dir) / Path(spec["file"]).name
            if not path.exists():
                log(f"model {key}: {path} missing (python3 fixtures/fetch.py); skipped")
                continue
            log(f"model {key}: {path}")
            model = Model(path)
            record_model(model, spec["file"], spec["prefix"], spec["cases"], argv, use_lc, summary,
                         f32_check=not args.no_f32_check)
            del model
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=1, default=float))
    log(json.dumps({k: v for k, v in summary.items() if k != "f32_nmse"}, indent=1, default=float)[:20000])


if __name__ == "__main__":
    main()
