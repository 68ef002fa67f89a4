#!/usr/bin/env python3
"""Write a Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json) from a GGUF's
byte-level BPE vocabulary, so that a load tool that sizes prompts and counts tokens with a HF
tokenizer (aiperf, guidellm) can run on a machine that cannot download one.

The vocabulary, merges and special tokens are the GGUF's own (read with llama.cpp's gguf-py, the
copy llama-cpp-python 0.3.36 vendors); pre-tokenization is the Hugging Face form of llama.cpp's
`tokenizer.ggml.pre` for the pre-tokenizers known here (`smollm`, `gpt-2`: digits split one by one
for smollm, then byte-level with GPT-2's regex). Anything else is refused: a load tool counting
with a wrong tokenizer would report wrong rates.

    python3 engine/server/bench/gguf_tokenizer.py MODEL.gguf OUT_DIR

Needs the `tokenizers` package (aiperf brings it).
"""
import json
import os
import sys
from pathlib import Path

CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
sys.path.insert(0, str(CACHE / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "gguf-py"))


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    if len(f.data) == 1 and f.types and f.types[0].name != "ARRAY":
        v = f.parts[f.data[0]]
        return bytes(v).decode("utf-8") if f.types[0].name == "STRING" else v.tolist()[0]
    return [bytes(f.parts[i]).decode("utf-8") if f.types[-1].name == "STRING" else f.parts[i].tolist()[0]
            for i in f.data]


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    reader = GGUFReader(sys.argv[1])
    out = Path(sys.argv[2])
    kind, pre = field(reader, "tokenizer.ggml.model"), field(reader, "tokenizer.ggml.pre")
    if kind != "gpt2" or pre not in ("smollm", "gpt-2"):
        print(f"error: {kind} / {pre}: only byte-level BPE with the smollm or gpt-2 pre-tokenizer", file=sys.stderr)
        return 2
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    steps = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if pre == "smollm":
        steps.insert(0, pre_tokenizers.Digits(individual_digits=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    # Control tokens (type 3) are special: never split, never produced from text by the BPE.
    special = [tokens[i] for i, t in enumerate(types) if t == 3]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1 << 30}
    for key, name in (("bos", "bos_token"), ("eos", "eos_token")):
        i = field(reader, f"tokenizer.ggml.{key}_token_id")
        if i is not None:
            cfg[name] = tokens[i]
    template = field(reader, "tokenizer.chat_template")
    if template:
        cfg["chat_template"] = template
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    print(f"{out}: {len(tokens)} tokens, {len(merges)} merges, {len(special)} special, pre {pre}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
