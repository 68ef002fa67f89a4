#!/usr/bin/env python3
"""Record the `generate` goldens: greedy chat completions of the real models by llama.cpp.

Reference (DESIGN §4): llama.cpp through llama-cpp-python 0.3.36 with its default settings
(2 threads, F16 KV cache, prompt in one batch, then one token at a time; `use_extra_bufts = False`
because the AMX repack path dies with SIGILL on this VM — see record_llamacpp_logits.py). The
prompt of a chat model is its own `tokenizer.chat_template` rendered by Python jinja2 the way transformers'
`apply_chat_template` does (record_chat_templates.py's environment, fixed date 2026-01-01), with
the generation prompt; a leading BOS text is dropped when the vocabulary adds BOS itself (as
llama.cpp's chat path does, so BOS is not doubled); then llama.cpp tokenizes it with special tokens
added and parsed. A model without a template (gemma-3-270m, a base model) gets plain-text prompts,
tokenized with BOS per the vocabulary and no special-token parsing. Greedy decoding: argmax at each step (ties to the lowest id), up to MAX_TOKENS or
the first end-of-generation token (kept in `greedy`, stop_reason EOS). The text is llama.cpp's
detokenization of the generated tokens without the end-of-generation token.

Per case goldens/generate/<name>.yaml: messages, prompt text and ids, greedy ids, the reference's
top-1/top-2 margin at each step, the text and the stop reason.

Usage: python3 goldens/recorders/record_generate.py
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record_chat_templates as rct  # noqa: E402
import record_llamacpp_logits as rll  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "generate"
MAX_TOKENS = 48
MODELS = {
    "smollm2": ("models/SmolLM2-135M-Instruct.Q4_1.gguf",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "gemma3": ("models/gemma-3-270m-q4_k_m.gguf",
               "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}
CHATS = {
    "capital": [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
    "haiku": [{"role": "user", "content": "Write a haiku about autumn rain."}],
    "multi-turn": [
        {"role": "user", "content": "Hi! Can you help me with a list?"},
        {"role": "assistant", "content": "Of course. What kind of list?"},
        {"role": "user", "content": "Three fruits that are red."},
    ],
}

PROMPTS = {
    "capital": "The capital of France is",
    "story": "Once upon a time, in a small village by the sea,",
}


def piece(llm, tok_id):
    return llm.detokenize([tok_id], special=True).decode("utf-8", errors="replace") if tok_id >= 0 else ""


def record(key, rel, sha, llama_cpp):
    path = rll.CACHE / rel
    if not path.exists():
        rll.log(f"NOT RUN {key}: {path} missing (python3 fixtures/fetch.py)")
        return
    rll.no_extra_bufts()
    llm = llama_cpp.Llama(model_path=str(path), n_threads=2, n_threads_batch=2, n_ctx=1024, verbose=False)
    raw = llama_cpp.llama_model_chat_template(llm._model.model, None)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    bos_id, eos_id = llama_cpp.llama_vocab_bos(vocab), llama_cpp.llama_vocab_eos(vocab)
    bos, eos = piece(llm, bos_id), piece(llm, eos_id)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    n_vocab = llm.n_vocab()

    def last_logits():
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,)).copy()
    # A model without a chat template (gemma-3-270m is a base model) gets plain-text prompts.
    cases = CHATS if raw else PROMPTS
    tmpl = rct.env().from_string(raw.decode("utf-8")) if raw else None
    for chat, msgs in cases.items():
        name = f"{key}-{chat}"
        if tmpl is not None:
            text = tmpl.render(messages=msgs, add_generation_prompt=True, bos_token=bos, eos_token=eos)
            if add_bos and bos and text.startswith(bos):
                text = text[len(bos):]
        else:
            text = msgs
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=tmpl is not None)
        llm.reset()
        llm.eval(ids)
        greedy, margins, stop = [], [], "MAX_TOKENS"
        last = last_logits()
        for _ in range(MAX_TOKENS):
            order = np.argsort(-last, kind="stable")[:2]
            t = int(order[0])
            greedy.append(t)
            margins.append(float(last[order[0]] - last[order[1]]))
            if llama_cpp.llama_vocab_is_eog(vocab, t):
                stop = "EOS"
                break
            llm.eval([t])
            last = last_logits()
        body = greedy[:-1] if stop == "EOS" else greedy
        out_text = llm.detokenize(body).decode("utf-8", errors="replace")
        q = lambda s: json.dumps(s, ensure_ascii=False)
        lines = [
            "# Recorded by goldens/recorders/record_generate.py (llama.cpp); do not edit by hand.",
            "suite: generate",
            f"name: {name}",
            f"file: {rel}",
            f"file_sha256: {sha}",
            "numerics: fast",
            "reference: llama.cpp (llama-cpp-python), default settings, greedy",
            f"reference_version: {q('llama-cpp-python ' + llama_cpp.__version__ + ', n_threads 2, F16 KV cache, use_extra_bufts false; prompt rendered by jinja2 ' + rct.jinja2.__version__)}",
            f"command: {q('python3 goldens/recorders/record_generate.py')}",
            *(["messages:", *[f"  - {{role: {q(m['role'])}, content: {q(m['content'])}}}" for m in msgs],
               "chat_date: 2026-01-01"] if tmpl is not None else [f"prompt: {q(text)}"]),
            f"prompt_text: {q(text)}",
            f"prompt_tokens: [{', '.join(map(str, ids))}]",
            f"max_tokens: {MAX_TOKENS}",
            f"greedy: [{', '.join(map(str, greedy))}]",
            f"greedy_margins: [{', '.join(f'{m:.6g}' for m in margins)}]",
            f"stop_reason: {stop}",
            f"text: {q(out_text)}",
            "thresholds:",
            "  near_tie: 0.5   # issue 4, --numerics fast: rows with a reference top-1/top-2 margin < 0.5 are not confident;",
            "                  # the first divergence is excused only at such a step (vLLM-style greedy comparison)",
        ]
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rll.log(f"{name}: {len(ids)} prompt tokens, {len(greedy)} generated ({stop}): {out_text[:70]!r}")
    del llm


def main():
    import llama_cpp
    for key, (rel, sha) in MODELS.items():
        record(key, rel, sha, llama_cpp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
