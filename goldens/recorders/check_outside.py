#!/usr/bin/env python3
"""Issue 4's acceptance items that are checked *outside* the repository, re-runnable.

Nothing here reads a golden of the repository or a file written by `orcd-fixtures`: the models
and prompts are made here, the engine is driven only through its public command line
(DESIGN §6: `worker-orcd logits`, `tokenize`, `generate`), and every number is measured against
an independent reference:

1. Model files written with gguf-py's own GGUFWriter (gguf 0.19.0) into a cache folder outside
   the repository (default ~/.cache/orcd/outside/models): llama, qwen2, phi3 (plus a phi3 variant
   with LongRoPE factors), gpt2 and gpt-oss, small random weights from --seed, llama.cpp's tensor
   names and metadata keys, the vocabulary (every `tokenizer.*` entry) copied from a llama.cpp
   vocab file (vendor/llama.cpp/models/ggml-vocab-*.gguf of the llama-cpp-python 0.3.36 sdist),
   in F32 and Q8_0 (gguf.quants.quantize; gpt-oss experts in MXFP4). Shapes and options are
   chosen to differ from orcd-fixtures' (3 layers, n_embd 96/128, MQA/GQA, partial rotary dims
   for phi3, untied/tied outputs, non-default RoPE bases and epsilons). llama.cpp
   (llama-cpp-python 0.3.36) must load each file: that is the file's acceptance test.
2. For each of those files and both real models (~/.cache/orcd/models: SmolLM2-135M-Instruct
   Q4_1, gemma-3-270m Q4_K_M), on prompts written here (not in the repository; one short, one of
   >= 100 tokens, one chat-formatted), `worker-orcd logits --tokens ... --numerics exact|fast`:
   * exact vs the float64 numpy forward pass of goldens/recorders/record_models.py (imported,
     not copied): top-1 on confident rows (margin >= 0.1) = 100%, max KL <= 1e-3, max |dlogit|
     over the reference top-40 <= 0.1, 24 greedy steps equal (the engine is run once on
     prompt + the reference's 23 first greedy tokens; step i must be the argmax of row
     n_prompt - 1 + i);
   * fast vs llama.cpp's default run (record_llamacpp_logits.py's helpers, imported: 2 threads,
     F16 KV cache, prompt in one batch, logits_all, use_extra_bufts=False against the AMX SIGILL
     of this VM): mean KL <= 5e-3, top-1 on confident rows (margin >= 0.5) >= 99%; greedy steps
     against llama.cpp's 24 greedy tokens are reported (informational, up to the first near-tie);
   * `ref-check` rows (informational, synthetic F32 files): llama.cpp teacher-forced with an F32
     KV cache vs the float64 reference — evidence that the reference graph is llama.cpp's graph for
     the file (they are not a check of the engine).
3. `worker-orcd generate --chat` on SmolLM2 (greedy: --temperature 0 --top-k 1, 48 tokens) vs
   llama.cpp greedy (default settings) on the same rendered prompt tokens: equal or the first
   divergence.

Not run is not passed: a check that cannot run prints `NOT RUN: <reason>` (e.g. the engine lacks
gpt-oss) and is listed in the report; the exit code is 0 only when every check that ran passed
and nothing required was not run.

Usage:
  cargo build --release -p worker-orcd --bin worker-orcd
  python3 goldens/recorders/check_outside.py [--out DIR] [--only SUBSTR] [--seed N]
                                              [--no-real] [--no-generate] [--types f32,q8_0]
Writes DIR/report.json and DIR/report.md (default ~/.cache/orcd/outside/report).
"""

import argparse
import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import record_llamacpp_logits as rl  # noqa: E402  llama.cpp default run + fast metrics
import record_models as rm  # noqa: E402  float64 reference + exact metrics

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT, GGUFReader, GGUFValueType, GGUFWriter  # noqa: E402

CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
VOCAB_DIR = CACHE / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "models"
EXE = ROOT / "target" / "release" / "worker-orcd"
N_GREEDY = 24

# Issue 4's acceptance thresholds (never loosened here).
EXACT_MARGIN, EXACT_TOP1, EXACT_MAX_KL, EXACT_MAX_DLOGIT = 0.1, 1.0, 1e-3, 0.1
FAST_MARGIN, FAST_TOP1, FAST_MEAN_KL = 0.5, 0.99, 5e-3
GPT_OSS_EXACT_MEAN_KL, GPT_OSS_EXACT_TOP1 = 1e-3, 0.97  # issue 4: near-tied expert routing


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Prompts (written here; none of them is in the repository)
# ----------------------------------------------------------------------------------------------

SHORT = "A loaf of sourdough bread needs flour, water, salt and"
LONG = (
    "Lighthouses were built along dangerous coasts to warn ships away from rocks and shallow "
    "sandbanks. Early towers burned wood or coal in an open fire at the top, which was hard to see "
    "in rain and fog. Later keepers used oil lamps with polished metal reflectors, and in the "
    "nineteenth century the Fresnel lens, made of many rings of glass prisms, bent the light into "
    "a narrow beam that could be seen more than twenty miles away. Each lighthouse flashed in its "
    "own pattern, so a captain counting the seconds between flashes could tell exactly which "
    "stretch of shore lay ahead. Keepers lived in small cottages beside the tower, trimmed the wicks "
    "every few hours through the night, and wound the clockwork that turned the lens. Today most "
    "lights are automatic and powered by electricity."
)
CHAT_MSG = "Why do cats purr, and what does it mean when they do it?"
GEN_MSG = "Give me two tips for keeping houseplants healthy in winter."


def render_chat(meta, msg):
    """(text, source): the user message rendered with the file's chat template (jinja2 with
    transformers' settings) or, for a vocabulary without one, the family's plain format."""
    tmpl = meta.get("tokenizer.chat_template")
    if tmpl:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(m):
            raise jinja2.TemplateError(m)
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        toks = meta.get("_tokens")
        bos = toks[meta["tokenizer.ggml.bos_token_id"]] if toks and "tokenizer.ggml.bos_token_id" in meta else ""
        eos = toks[meta["tokenizer.ggml.eos_token_id"]] if toks and "tokenizer.ggml.eos_token_id" in meta else ""
        text = env.from_string(tmpl).render(messages=[{"role": "user", "content": msg}], add_generation_prompt=True,
                                            bos_token=bos, eos_token=eos)
        if bos and text.startswith(bos) and rm.add_bos_default(_MetaOnly(meta)):
            text = text[len(bos):]  # the tokenizer adds BOS itself (add_special)
        return text, "the file's tokenizer.chat_template (jinja2)"
    pre = meta.get("tokenizer.ggml.model")
    if meta.get("general.architecture") == "gemma3":
        return f"<start_of_turn>user\n{msg}<end_of_turn>\n<start_of_turn>model\n", "gemma turn format"
    if pre == "llama":
        return f"[INST] {msg} [/INST]", "llama-2 [INST] format"
    return f"<|endoftext|>User: {msg}\nAssistant:", "plain User:/Assistant: after <|endoftext|>"


class _PathOnly:
    """What rm.llama_cpp_logits reads of a model (its path), cheap to hand to a forked child."""

    def __init__(self, path):
        self.path = path


class _MetaOnly:
    def __init__(self, meta):
        self.meta = meta


def prompts_for(model):
    meta = dict(model.meta)
    toks, _, _, _ = model.vocab_arrays()
    meta["_tokens"] = toks
    chat, how = render_chat(meta, CHAT_MSG)
    return [("short", SHORT, False, "plain text"), ("long", LONG, False, "plain text"),
            ("chat", chat, True, how)]


# ----------------------------------------------------------------------------------------------
# Synthetic files with gguf-py's GGUFWriter
# ----------------------------------------------------------------------------------------------

SPECS = {
    # name: arch, vocab, hyper-parameters
    "llama": dict(arch="llama", vocab="llama-spm", n_embd=128, n_layer=3, n_head=4, n_head_kv=2, head_dim=32,
                  n_ff=320, ctx=2048, rope_base=500000.0, eps=1e-5, tied=False),
    "qwen2": dict(arch="qwen2", vocab="qwen2", n_embd=128, n_layer=3, n_head=4, n_head_kv=1, head_dim=32,
                  n_ff=256, ctx=4096, rope_base=1000000.0, eps=1e-6, tied=True),
    "phi3": dict(arch="phi3", vocab="phi-3", n_embd=96, n_layer=3, n_head=3, n_head_kv=1, head_dim=32, n_rot=16,
                 n_ff=160, ctx=4096, rope_base=10000.0, eps=1e-5, tied=False),
    "phi3-longrope": dict(arch="phi3", vocab="phi-3", n_embd=96, n_layer=3, n_head=3, n_head_kv=1, head_dim=32,
                          n_rot=32, n_ff=160, ctx=4096, rope_base=10000.0, eps=1e-5, tied=False, longrope=True),
    "gpt2": dict(arch="gpt2", vocab="gpt-2", n_embd=128, n_layer=2, n_head=4, n_head_kv=4, head_dim=32,
                 n_ff=512, ctx=1024, eps=1e-5, tied=True),
    "gpt-oss": dict(arch="gpt-oss", vocab="gpt-2", n_embd=128, n_layer=2, n_head=4, n_head_kv=2, head_dim=32,
                    n_ff=128, n_expert=4, n_expert_used=2, ctx=4096, rope_base=150000.0, eps=1e-5, swa=32,
                    yarn_factor=4.0, yarn_orig_ctx=1024, tied=False),
}
ARCH_INDEX = {k: i for i, k in enumerate(SPECS)}


def vocab_kvs(vocab):
    """Every tokenizer.* entry of a llama.cpp vocab file, as (key, value, type, sub_type)."""
    r = GGUFReader(str(VOCAB_DIR / f"ggml-vocab-{vocab}.gguf"))
    out = []
    for k, f in r.fields.items():
        if not k.startswith("tokenizer."):
            continue
        t = f.types
        out.append((k, f.contents(), t[0], t[1] if t[0] == GGUFValueType.ARRAY else None))
    n_vocab = len(r.fields["tokenizer.ggml.tokens"].data)
    return out, n_vocab


def make_weights(name, s, n_vocab, seed):
    """name -> float32 array (numpy shape = GGUF dims reversed: (out, in) for matrices)."""
    rng = np.random.default_rng([seed, ARCH_INDEX[name]])
    arch = s["arch"]
    e, L, H, Hkv, d = s["n_embd"], s["n_layer"], s["n_head"], s["n_head_kv"], s["head_dim"]
    ff = s["n_ff"]
    W = {}

    def mat(rows, cols, gain=1.0):
        return (rng.standard_normal((rows, cols)) * gain / np.sqrt(cols)).astype(np.float32)

    def vec(n, mean, std):
        return (mean + rng.standard_normal(n) * std).astype(np.float32)

    W["token_embd.weight"] = (rng.standard_normal((n_vocab, e)) * (0.3 if s["tied"] else 1.0)).astype(np.float32)
    if arch == "gpt2":
        W["position_embd.weight"] = (rng.standard_normal((s["ctx"], e)) * 0.5).astype(np.float32)
    for il in range(L):
        p = f"blk.{il}."
        W[p + "attn_norm.weight"] = vec(e, 1.0, 0.1)
        if arch == "gpt2":
            W[p + "attn_norm.bias"] = vec(e, 0.0, 0.1)
            W[p + "attn_qkv.weight"] = mat(e + 2 * Hkv * d, e, 1.5)
            W[p + "attn_qkv.bias"] = vec(e + 2 * Hkv * d, 0.0, 0.2)
        elif arch == "phi3":
            W[p + "attn_qkv.weight"] = mat(H * d + 2 * Hkv * d, e, 1.5)
        else:
            W[p + "attn_q.weight"] = mat(H * d, e, 1.5)
            W[p + "attn_k.weight"] = mat(Hkv * d, e, 1.5)
            W[p + "attn_v.weight"] = mat(Hkv * d, e)
            if arch in ("qwen2", "gpt-oss"):
                W[p + "attn_q.bias"] = vec(H * d, 0.0, 0.3)
                W[p + "attn_k.bias"] = vec(Hkv * d, 0.0, 0.5)
                W[p + "attn_v.bias"] = vec(Hkv * d, 0.0, 0.3)
        W[p + "attn_output.weight"] = mat(e, H * d)
        if arch in ("gpt2", "gpt-oss"):
            W[p + "attn_output.bias"] = vec(e, 0.0, 0.1)
        if arch == "gpt-oss":
            W[p + "attn_sinks.weight"] = vec(H, 0.0, 1.0)
            W[p + "post_attention_norm.weight"] = vec(e, 1.0, 0.1)
            X = s["n_expert"]
            W[p + "ffn_gate_inp.weight"] = mat(X, e, 2.0)
            W[p + "ffn_gate_inp.bias"] = vec(X, 0.0, 0.2)
            W[p + "ffn_gate_exps.weight"] = (rng.standard_normal((X, ff, e)) / np.sqrt(e)).astype(np.float32)
            W[p + "ffn_gate_exps.bias"] = (rng.standard_normal((X, ff)) * 0.1).astype(np.float32)
            W[p + "ffn_up_exps.weight"] = (rng.standard_normal((X, ff, e)) / np.sqrt(e)).astype(np.float32)
            W[p + "ffn_up_exps.bias"] = (rng.standard_normal((X, ff)) * 0.1).astype(np.float32)
            W[p + "ffn_down_exps.weight"] = (rng.standard_normal((X, e, ff)) / np.sqrt(ff)).astype(np.float32)
            W[p + "ffn_down_exps.bias"] = (rng.standard_normal((X, e)) * 0.1).astype(np.float32)
            continue
        W[p + "ffn_norm.weight"] = vec(e, 1.0, 0.1)
        if arch == "gpt2":
            W[p + "ffn_norm.bias"] = vec(e, 0.0, 0.1)
            W[p + "ffn_up.weight"] = mat(ff, e, 1.5)
            W[p + "ffn_up.bias"] = vec(ff, 0.0, 0.2)
            W[p + "ffn_down.weight"] = mat(e, ff)
            W[p + "ffn_down.bias"] = vec(e, 0.0, 0.1)
        elif arch == "phi3":
            W[p + "ffn_up.weight"] = mat(2 * ff, e, 1.5)
            W[p + "ffn_down.weight"] = mat(e, ff)
        else:
            W[p + "ffn_gate.weight"] = mat(ff, e, 1.5)
            W[p + "ffn_up.weight"] = mat(ff, e, 1.5)
            W[p + "ffn_down.weight"] = mat(e, ff)
    W["output_norm.weight"] = vec(e, 1.0, 0.1)
    if arch == "gpt2":
        W["output_norm.bias"] = vec(e, 0.0, 0.1)
    if not s["tied"]:
        W["output.weight"] = mat(n_vocab, e, 3.0)
    if s.get("longrope"):
        half = s.get("n_rot", d) // 2
        W["rope_factors_short.weight"] = (1.0 + rng.random(half) * 3.0).astype(np.float32)
        W["rope_factors_long.weight"] = (1.0 + rng.random(half) * 30.0).astype(np.float32)
    return W


def qtype_for(tname, arr, ty):
    """The storage type of one tensor in a file of type `ty`: vectors, biases and the MoE router
    stay F32; weight matrices get Q8_0 when their rows are whole 32-blocks; gpt-oss experts are
    MXFP4 in the quantised file (as in the released gpt-oss GGUFs)."""
    if ty == "f32" or arr.ndim < 2 or not tname.endswith(".weight") or ".ffn_gate_inp." in tname:
        return QT.F32  # biases (add_id wants F32), norms, sinks, the MoE router
    if arr.shape[-1] % 32 != 0:
        return QT.F32
    if "_exps." in tname:
        return QT.MXFP4
    return {"q8_0": QT.Q8_0, "q4_0": QT.Q4_0}[ty]


def write_synthetic(name, ty, seed, out_dir):
    s = SPECS[name]
    kvs, n_vocab = vocab_kvs(s["vocab"])
    W = make_weights(name, s, n_vocab, seed)
    arch = s["arch"]
    path = out_dir / f"outside-{name}-{ty}-seed{seed}.gguf"
    w = GGUFWriter(str(path), arch)
    w.add_name(f"check_outside {name} {ty} seed {seed}")
    w.add_file_type({"f32": 0, "q8_0": 7, "q4_0": 2}[ty])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["n_embd"])
    w.add_block_count(s["n_layer"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    if arch == "gpt2":
        w.add_feed_forward_length(s["n_ff"])
        w.add_layer_norm_eps(s["eps"])
    else:
        w.add_layer_norm_rms_eps(s["eps"])
        w.add_rope_freq_base(s["rope_base"])
        w.add_rope_dimension_count(s.get("n_rot", s["head_dim"]))
        if arch == "gpt-oss":
            w.add_key_length(s["head_dim"])
            w.add_value_length(s["head_dim"])
            w.add_feed_forward_length(s["n_ff"])
            w.add_expert_feed_forward_length(s["n_ff"])
            w.add_expert_count(s["n_expert"])
            w.add_expert_used_count(s["n_expert_used"])
            w.add_sliding_window(s["swa"])
            w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            w.add_rope_scaling_factor(s["yarn_factor"])
            w.add_rope_scaling_orig_ctx_len(s["yarn_orig_ctx"])
        else:
            w.add_feed_forward_length(s["n_ff"])
        if s.get("longrope"):
            w.add_rope_scaling_orig_ctx_len(s["ctx"])  # llama.cpp picks the short factors (n_ctx <= it)
            w.add_rope_scaling_attn_factors(1.19)
    for k, v, t, sub in kvs:
        if t == GGUFValueType.ARRAY:
            w.add_key_value(k, v, t, sub_type=sub)
        else:
            w.add_key_value(k, v, t)
    types = {}
    for tname, arr in W.items():
        qt = qtype_for(tname, arr, ty)
        types[qt.name] = types.get(qt.name, 0) + 1
        if qt == QT.F32:
            w.add_tensor(tname, arr)
        else:
            w.add_tensor(tname, gguf.quants.quantize(arr, qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, dict(spec=s, n_vocab=n_vocab, tensor_types=types)


# ----------------------------------------------------------------------------------------------
# The engine through its CLI
# ----------------------------------------------------------------------------------------------

class EngineError(Exception):
    pass


def isolated(fn, *args):
    """fn(*args) in a forked child: a GGML_ASSERT abort inside llama.cpp becomes an exception here
    instead of ending this process."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    r, w = ctx.Pipe(duplex=False)

    def child():
        try:
            w.send(("ok", fn(*args)))
        except BaseException as e:  # noqa: BLE001 - reported by the parent
            w.send(("err", f"{type(e).__name__}: {e}"))
        finally:
            w.close()
    p = ctx.Process(target=child)
    p.start()
    w.close()
    try:
        kind, val = r.recv()
    except EOFError:
        p.join()
        raise RuntimeError(f"llama.cpp's process died (exit code {p.exitcode}; a GGML_ASSERT prints above)") from None
    p.join()
    if kind == "err":
        raise RuntimeError(val)
    return val


def llama_cpp_loads(path):
    rl.no_extra_bufts()
    import llama_cpp
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
    n = llm.n_vocab()
    del llm
    return n


def engine_logits(path, tokens, numerics):
    with tempfile.TemporaryDirectory(prefix="orcd-outside-") as d:
        out = Path(d) / "x.npy"
        cmd = [str(EXE), "logits", "--model", str(path), "--tokens", ",".join(str(t) for t in tokens),
               "--numerics", numerics, "--backend", "cpu", "--out", str(out)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise EngineError(f"exit {p.returncode}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ''}")
        a = np.load(out)
    if a.shape[0] != len(tokens):
        raise EngineError(f"logits shape {a.shape} for {len(tokens)} tokens")
    return a.astype(np.float64)


def engine_supports(path):
    """(True, '') when `worker-orcd logits` runs on the file, else (False, its error line)."""
    try:
        engine_logits(path, [0], "exact")
        return True, ""
    except EngineError as e:
        return False, str(e)


def engine_decode(path, text, numerics, n, ref_ids, ref_margins, eog, n_prompt):
    """The engine's own step-by-step greedy decode (`worker-orcd generate`, no --chat: the prompt
    is encoded with add_special, no special-token parsing — the same ids as the plain-text
    prompts here) against the reference's greedy ids. Returns (text for the table, ok, detail)."""
    cmd = [str(EXE), "generate", "--model", str(path), "--prompt", text, "--temperature", "0", "--top-k", "1",
           "--max-tokens", str(n), "--seed", "0", "--backend", "cpu", "--numerics", numerics, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return "error", False, dict(error=p.stderr.strip())
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    e_ids = [int(x["id"]) for x in lines if "id" in x]
    final = [x for x in lines if "stop_reason" in x][-1]
    k = 0
    for a, b in zip(e_ids, ref_ids):
        if a != b:
            break
        k += 1
    stopped_like_ref = final["stop_reason"] == "EOS" and k == len(e_ids) and k < len(ref_ids) and \
        int(ref_ids[k]) in eog
    ok = k == len(ref_ids) or stopped_like_ref
    if final.get("prompt_tokens") != n_prompt:  # the engine tokenized the text differently
        return f"prompt {final.get('prompt_tokens')} != {n_prompt} tokens", False, \
            dict(error=f"generate encoded the prompt as {final.get('prompt_tokens')} tokens, llama.cpp {n_prompt}")
    detail = dict(prompt_tokens=final.get("prompt_tokens"), stop_reason=final["stop_reason"], equal_steps=k)
    if not ok:
        detail.update(step=k, engine=e_ids[k] if k < len(e_ids) else "(stopped)", reference=int(ref_ids[k]),
                      ref_margin=float(ref_margins[k]) if ref_margins is not None else None)
    label = f"{k}/{len(ref_ids)}" + (" (EOS like ref)" if stopped_like_ref else "")
    return label, ok, detail


def greedy_steps(rows, ref_ids, ref_margins=None):
    """How many leading greedy steps agree (argmax of each engine row vs the reference's ids), and
    the first divergence (step, engine id, reference id, reference margin)."""
    got = [int(i) for i in np.argmax(rows, axis=-1)]
    n = 0
    for a, b in zip(got, ref_ids):
        if a != b:
            break
        n += 1
    div = None
    if n < len(ref_ids):
        div = dict(step=n, engine=got[n], reference=int(ref_ids[n]),
                   ref_margin=float(ref_margins[n]) if ref_margins is not None else None)
    return n, div


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------

RESULTS = []


def record(**r):
    RESULTS.append(r)
    status = r["status"]
    if status in ("PASS", "FAIL", "INFO"):
        mk = r.get("metrics", {})
        log(f"  {status:4s} {r['file']} {r['prompt']} {r['numerics']}: " +
            ", ".join(f"{k} {v:.3e}" if isinstance(v, float) else f"{k} {v}" for k, v in mk.items()))
    else:
        log(f"  {status} {r['file']} {r['prompt']} {r['numerics']}: {r.get('reason', '')}")


def check_file(label, path, model, is_gpt_oss=False, synthetic=False):
    """All prompts × both numerics on one file."""
    model.hp["n_vocab"] = rm.output_weight(model.weights(np.float32)).shape[0] if model.arch in rm.ARCHS else None
    ok_engine, why = engine_supports(path)
    ref_ok = model.arch in rm.ARCHS
    _, ttypes, _, _ = model.vocab_arrays()
    eog = {i for i, t in enumerate(ttypes or []) if t == 3}  # control tokens (EOS, <|im_end|>, ...)
    if "tokenizer.ggml.eos_token_id" in model.meta:
        eog.add(int(model.meta["tokenizer.ggml.eos_token_id"]))
    for kind, text, special, how in prompts_for(model):
        ids, src = rm.tokenize(model, text, special)
        base = dict(file=label, path=str(path), prompt=kind, prompt_source=how, n_tokens=len(ids),
                    tokens_source=src)
        log(f"[{label}] prompt {kind}: {len(ids)} tokens")
        # --- exact vs float64
        ref_check = synthetic and ref_ok and set(getattr(model, "tensor_types", {}).values()) == {"F32"}
        l64 = g = gm = None
        if ref_ok and (ok_engine or ref_check):
            t0 = time.time()
            l64, _, cache = rm.run_forward(model, np.float64, ids)
            g, gm = rm.greedy(model, np.float64, cache, l64[-1], N_GREEDY)
            del cache
        if not ok_engine:
            record(**base, numerics="exact", status="NOT RUN", reason=(f"engine lacks {model.arch}: {why}"
                   if is_gpt_oss else f"engine refused the file: {why}") +
                   ("" if ref_ok else f"; record_models.py has no float64 reference for {model.arch} either"))
        elif not ref_ok:
            record(**base, numerics="exact", status="NOT RUN",
                   reason=f"record_models.py has no float64 reference for {model.arch}")
        else:
            try:
                eng = engine_logits(path, list(ids) + g[:-1], "exact")
                m = rm.compare_logits(l64, eng[:len(ids)], margin=EXACT_MARGIN)
                n_eq, div = greedy_steps(eng[len(ids) - 1:], g, gm)
                metrics = dict(mean_kl=m["mean_kl"], max_kl=m["max_kl"], top1_conf=m["top1_conf"],
                               n_conf=m["n_conf"], rows=m["n"], max_dlogit_top40=m["max_abs_dlogit_top40"],
                               greedy=f"{n_eq}/{N_GREEDY}")
                dec_ok, dec = True, None
                if not special:
                    lab, dec_ok, dec = engine_decode(path, text, "exact", N_GREEDY, g, gm, eog, len(ids))
                    metrics["greedy_decode"] = lab
                if is_gpt_oss:
                    ok = m["mean_kl"] <= GPT_OSS_EXACT_MEAN_KL and m["top1"] >= GPT_OSS_EXACT_TOP1
                else:
                    ok = (m["top1_conf"] >= EXACT_TOP1 or m["n_conf"] == 0) and m["max_kl"] <= EXACT_MAX_KL and \
                        m["max_abs_dlogit_top40"] <= EXACT_MAX_DLOGIT and n_eq == N_GREEDY and dec_ok
                record(**base, numerics="exact", status="PASS" if ok else "FAIL", metrics=metrics,
                       greedy_divergence=div, decode=dec, reference="float64 numpy (record_models.py)",
                       seconds=round(time.time() - t0, 1))
            except EngineError as e:
                record(**base, numerics="exact", status="FAIL", reason=f"engine error: {e}")
        # reference sanity (informational, F32 files only, where llama.cpp has no 8-bit
        # activations): llama.cpp F32 KV, one batch, vs float64
        if ref_check and l64 is not None:
            try:
                lc = isolated(rm.llama_cpp_logits, _PathOnly(model.path), ids)
                m = rm.compare_logits(l64, lc, margin=EXACT_MARGIN)
                record(**base, numerics="ref-check", status="INFO",
                       metrics=dict(mean_kl=m["mean_kl"], max_kl=m["max_kl"], top1_conf=m["top1_conf"],
                                    n_conf=m["n_conf"], rows=m["n"],
                                    max_dlogit_top40=m["max_abs_dlogit_top40"], greedy="-"),
                       reference="llama.cpp F32 KV teacher-forced vs float64 (reference sanity only)")
            except Exception as e:  # noqa: BLE001
                record(**base, numerics="ref-check", status="INFO", reason=f"llama.cpp: {e}", metrics={})
        del l64
        # --- fast vs llama.cpp default run
        if not ok_engine:
            record(**base, numerics="fast", status="NOT RUN", reason=f"engine lacks {model.arch}: {why}"
                   if is_gpt_oss else f"engine refused the file: {why}")
            continue
        try:
            ref, lg, lm = isolated(rl.llama_logits, path, ids, N_GREEDY)
        except Exception as e:  # noqa: BLE001
            record(**base, numerics="fast", status="FAIL", reason=f"llama.cpp failed on the file: {e}")
            continue
        try:
            eng = engine_logits(path, list(ids) + lg[:-1], "fast")
        except EngineError as e:
            record(**base, numerics="fast", status="FAIL", reason=f"engine error: {e}")
            continue
        r = rl.compare(ref, eng[:len(ids)], margin=FAST_MARGIN)
        n_eq, div = greedy_steps(eng[len(ids) - 1:], lg, lm)
        ok = r["mean_kl"] <= FAST_MEAN_KL and r["top1"] >= FAST_TOP1
        metrics = dict(mean_kl=r["mean_kl"], max_kl=r["max_kl"], top1_conf=r["top1"], n_conf=r["confident"],
                       rows=r["rows"], max_dlogit_top40=r["max_dlogit_top40"], greedy=f"{n_eq}/{N_GREEDY}")
        dec = None
        if not special:
            lab, _, dec = engine_decode(path, text, "fast", N_GREEDY, lg, lm, eog, len(ids))
            metrics["greedy_decode"] = lab
        record(**base, numerics="fast", status="PASS" if ok else "FAIL", metrics=metrics, greedy_divergence=div,
               decode=dec, reference="llama.cpp default run (llama-cpp-python 0.3.36, 2 threads, F16 KV)")


def check_generate(path):
    """`worker-orcd generate --chat` on SmolLM2, greedy, vs llama.cpp greedy on the same tokens."""
    import llama_cpp
    model_meta = rm.Model.__new__(rm.Model)
    r = GGUFReader(str(path))
    meta = {}
    for k in ("tokenizer.chat_template", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
              "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model", "general.architecture"):
        if k in r.fields:
            meta[k] = r.fields[k].contents()
    f = r.fields["tokenizer.ggml.tokens"]
    meta["_tokens"] = [bytes(f.parts[i]).decode("utf-8", errors="replace") for i in f.data]
    model_meta.meta = meta
    rendered, how = render_chat(meta, GEN_MSG)
    n_gen = 48
    base = dict(file=path.name, path=str(path), prompt="generate-chat", numerics="fast (generate default)",
                prompt_source=how)
    # the rendered prompt's ids: llama.cpp and the engine's tokenizer
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    add_bos = rm.add_bos_default(model_meta)
    ids_l = [int(i) for i in llm.tokenize(rendered.encode("utf-8"), add_bos=add_bos, special=True)]
    del llm
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as tf:
        tf.write(rendered.encode("utf-8"))
    p = subprocess.run([str(EXE), "tokenize", "--model", str(path), "--text-file", tf.name, "--add-special",
                        "--parse-special"], capture_output=True, text=True)
    os.unlink(tf.name)
    ids_e = json.loads(p.stdout) if p.returncode == 0 else None
    cmd = [str(EXE), "generate", "--model", str(path), "--prompt", GEN_MSG, "--chat", "--temperature", "0",
           "--top-k", "1", "--max-tokens", str(n_gen), "--seed", "0", "--backend", "cpu", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        record(**base, status="FAIL", reason=f"generate failed: {p.stderr.strip()}")
        return
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    toks = [x for x in lines if "id" in x]
    final = [x for x in lines if "stop_reason" in x][-1]
    e_ids = [int(x["id"]) for x in toks]
    e_text = "".join(x["text"] for x in toks)
    _, l_ids, l_margins = isolated(rl.llama_logits, path, ids_l, n_gen)
    eos = {int(meta["tokenizer.ggml.eos_token_id"])}
    # llama.cpp's run ends where it first emits an end-of-generation token
    l_end = next((i for i, t in enumerate(l_ids) if t in eos), len(l_ids))
    l_cut = l_ids[:l_end]
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    l_text = llm.detokenize(l_cut).decode("utf-8", errors="replace")
    del llm
    n_eq = 0
    for a, b in zip(e_ids, l_cut):
        if a != b:
            break
        n_eq += 1
    stop_ok = (final["stop_reason"] == "EOS" and l_end == len(e_ids)) or \
        (final["stop_reason"] == "MAX_TOKENS" and l_end >= n_gen and len(e_ids) == n_gen)
    equal = e_ids == l_cut and stop_ok and e_text == l_text
    div = None
    if not equal:
        div = dict(step=n_eq, engine=e_ids[n_eq] if n_eq < len(e_ids) else "(stopped)",
                   llama_cpp=l_cut[n_eq] if n_eq < len(l_cut) else "(EOS)",
                   llama_cpp_margin=l_margins[n_eq] if n_eq < len(l_margins) else None)
    record(**base, status="PASS" if equal else "FAIL",
           metrics=dict(prompt_tokens_engine=final.get("prompt_tokens"), prompt_tokens_llama_cpp=len(ids_l),
                        prompt_ids_equal=ids_e == ids_l, tokens_equal=f"{n_eq}/{max(len(e_ids), len(l_cut))}",
                        stop_reason=final["stop_reason"], greedy=f"{n_eq}/{len(l_cut)}"),
           engine_text=e_text, llama_cpp_text=l_text, divergence=div, command=" ".join(shlex.quote(c) for c in cmd),
           reference="llama.cpp greedy (argmax), default settings, on llama.cpp's tokens of the rendered prompt")


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

def fmt(v, spec=".2e"):
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def table():
    hdr = ["file", "prompt", "tokens", "numerics", "mean KL", "max KL", "top-1 (conf rows)", "max |dlogit| top-40",
           "greedy batch / decode", "result"]
    rows = []
    for r in RESULTS:
        m = r.get("metrics", {})
        if r["prompt"] == "generate-chat":
            rows.append([r["file"], r["prompt"], fmt(m.get("prompt_tokens_llama_cpp")), r["numerics"], "-", "-", "-",
                         "-", fmt(m.get("greedy")), r["status"] + (f" ({r['reason']})" if r.get("reason") else "")])
            continue
        top1 = f"{100 * m['top1_conf']:.2f}% of {m['n_conf']}" if "top1_conf" in m else "-"
        res = r["status"] + (f": {r['reason']}" if r.get("reason") else "")
        if r.get("greedy_divergence") and r["status"] != "NOT RUN":
            dv = r["greedy_divergence"]
            res += f" (batch greedy diverges at step {dv['step']}: engine {dv['engine']} vs ref {dv['reference']}, " \
                   f"ref margin {fmt(dv['ref_margin'], '.3g')})"
        if r.get("decode") and "step" in r["decode"]:
            dv = r["decode"]
            res += f" (decode greedy diverges at step {dv['step']}: engine {dv['engine']} vs ref {dv['reference']}, " \
                   f"ref margin {fmt(dv['ref_margin'], '.3g')})"
        elif r.get("decode") and "error" in r["decode"]:
            res += f" (generate failed: {r['decode']['error']})"
        rows.append([r["file"], r["prompt"], str(r.get("n_tokens", "-")), r["numerics"], fmt(m.get("mean_kl")),
                     fmt(m.get("max_kl")), top1, fmt(m.get("max_dlogit_top40"), ".3g"),
                     fmt(m.get("greedy")) + (f" / {m['greedy_decode']}" if m.get("greedy_decode") else ""), res])
    return hdr, rows


def write_report(out_dir, argv, files_info, elapsed):
    out_dir.mkdir(parents=True, exist_ok=True)
    hdr, rows = table()
    md = ["# worker-orcd: issue 4 checks outside the repository", "",
          f"Command: `python3 goldens/recorders/check_outside.py {' '.join(shlex.quote(a) for a in argv)}`  ",
          f"Engine: `{EXE}` (built {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(EXE.stat().st_mtime))}; "
          f"tree at report time: git {git_rev()}); references: gguf {importlib.metadata.version('gguf')}, "
          f"numpy {np.__version__}, llama-cpp-python {importlib.metadata.version('llama_cpp_python')}; "
          f"{elapsed:.0f} s.", "",
          "Thresholds (issue 4): exact vs float64 — top-1 on rows with margin >= 0.1 = 100%, max KL <= 1e-3, "
          "max |dlogit| over the reference top-40 <= 0.1, 24 greedy steps equal; fast vs llama.cpp's default run — "
          "mean KL <= 5e-3, top-1 on rows with margin >= 0.5 >= 99% (greedy informational). `ref-check` rows: "
          "llama.cpp (F32 KV) vs the float64 reference, informational.", "",
          "| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    gens = [r for r in RESULTS if r["prompt"] == "generate-chat"]
    for g in gens:
        md += ["", f"## generate --chat on {g['file']}: {g['status']}", "", f"`{g.get('command', '')}`", "",
               f"- metrics: {json.dumps(g.get('metrics', {}))}", f"- divergence: {json.dumps(g.get('divergence'))}",
               f"- engine text: {json.dumps(g.get('engine_text'))}",
               f"- llama.cpp text: {json.dumps(g.get('llama_cpp_text'))}"]
    md += ["", "## Files", ""] + [f"- `{k}`: {json.dumps(v, default=str)}" for k, v in files_info.items()]
    (out_dir / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out_dir / "report.json").write_text(json.dumps(dict(command=argv, engine=str(EXE), git=git_rev(),
                                                         engine_built_utc=time.strftime(
                                                             "%Y-%m-%dT%H:%M:%SZ", time.gmtime(EXE.stat().st_mtime)),
                                                         results=RESULTS, files=files_info), indent=1,
                                                    default=str), encoding="utf-8")
    # console table
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    print("  ".join(h.ljust(w) for h, w in zip(hdr, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print(f"\nwrote {out_dir / 'report.md'} and {out_dir / 'report.json'}")


def git_rev():
    p = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return p.stdout.strip() + ("+dirty" if dirty else "")


def main():
    argv = sys.argv[1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(CACHE / "outside" / "report"), help="report folder (outside the repo)")
    ap.add_argument("--models-out", default=str(CACHE / "outside" / "models"), help="where the gguf-py files go")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--types", default="f32,q8_0", help="file types of the synthetic models (f32,q8_0,q4_0)")
    ap.add_argument("--only", default="", help="only files whose label contains this")
    ap.add_argument("--no-real", action="store_true", help="skip the two real models")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the gguf-py files")
    ap.add_argument("--no-generate", action="store_true", help="skip the generate --chat check")
    a = ap.parse_args()
    if not EXE.exists():
        raise SystemExit(f"error: {EXE} missing (cargo build --release -p worker-orcd --bin worker-orcd)")
    if str(Path(a.out).resolve()).startswith(str(ROOT)) or str(Path(a.models_out).resolve()).startswith(str(ROOT)):
        raise SystemExit("error: --out and --models-out must be outside the repository")
    t0 = time.time()
    files_info = {}
    mdir = Path(a.models_out)
    mdir.mkdir(parents=True, exist_ok=True)
    if not a.no_synthetic:
        for name in SPECS:
            for ty in a.types.split(","):
                label = f"{name}-{ty}"
                if a.only not in label:
                    continue
                path, info = write_synthetic(name, ty, a.seed, mdir)
                info["sha256"] = rm.sha256(path)
                info["bytes"] = path.stat().st_size
                files_info[path.name] = info
                log(f"wrote {path} ({info['bytes']} B, {info['tensor_types']})")
                # the file's acceptance test: llama.cpp loads it
                try:
                    isolated(llama_cpp_loads, path)
                    info["llama_cpp_loads"] = True
                except Exception as e:  # noqa: BLE001
                    info["llama_cpp_loads"] = f"no: {e}"
                    record(file=path.name, path=str(path), prompt="-", numerics="load", status="FAIL",
                           reason=f"llama.cpp does not load it: {e}")
                    continue
                is_oss = SPECS[name]["arch"] == "gpt-oss"
                model = rm.Model(path) if SPECS[name]["arch"] in rm.ARCHS else _OssModel(path)
                check_file(path.name, path, model, is_gpt_oss=is_oss, synthetic=True)
                del model
    if not a.no_real:
        for fname in ("SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"):
            if a.only not in fname:
                continue
            path = CACHE / "models" / fname
            if not path.exists():
                record(file=fname, path=str(path), prompt="-", numerics="-", status="NOT RUN",
                       reason="model not fetched (python3 fixtures/fetch.py)")
                continue
            files_info[fname] = dict(sha256=rm.sha256(path), bytes=path.stat().st_size)
            model = rm.Model(path)
            check_file(fname, path, model)
            del model
    if not a.no_generate and a.only in "SmolLM2-135M-Instruct.Q4_1.gguf":
        path = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.exists():
            check_generate(path)
        else:
            record(file=path.name, path=str(path), prompt="generate-chat", numerics="-", status="NOT RUN",
                   reason="model not fetched (python3 fixtures/fetch.py)")
    write_report(Path(a.out), argv, files_info, time.time() - t0)
    bad = [r for r in RESULTS if r["status"] in ("FAIL", "NOT RUN")]
    return 1 if bad else 0


class _OssModel:
    """gpt-oss until record_models.py has its float64 reference: metadata + tokenizer only (the
    exact check reports NOT RUN for it; the fast check needs only llama.cpp and the engine)."""

    def __init__(self, path):
        m = rm.Model.__new__(rm.Model)
        m.path = Path(path)
        m.reader = GGUFReader(str(path))
        m.meta = {}
        for k, f in m.reader.fields.items():
            if k.startswith("tokenizer.ggml.") and k not in ("tokenizer.ggml.model", "tokenizer.ggml.pre") and \
                    not k.endswith("_id") and not k.startswith("tokenizer.ggml.add_"):
                continue
            try:
                m.meta[k] = f.contents()
            except Exception:  # noqa: BLE001
                pass
        m.arch = m.meta["general.architecture"]
        m.hp = {}
        self.__dict__.update(m.__dict__)
        self._m = m

    def vocab_arrays(self):
        return self._m.vocab_arrays()

    def weights(self, dtype):
        return {}


if __name__ == "__main__":
    sys.exit(main())
