#!/usr/bin/env python3
"""Record llama.cpp's ids for the `gpt-4o` pre-tokenizer (tokenizer.ggml.pre = "gpt-4o", gpt-oss's
GGUF vocabulary) with llama-cpp-python 0.3.36 (`Llama(vocab_only=True).tokenize(text, add_bos,
special)`), on the vocab-only GGUF that fixtures/fetch.py derives from o200k_base.tiktoken
(tokenizers/o200k_harmony-gpt-4o-vocab.gguf, sha256-pinned there).

This checks the GGUF path (llama.cpp's semantics, its collapsed-category regex and its gpt-oss
token-attribute rules), not tiktoken's: the two differ on purpose where llama.cpp approximates.
Strings: those of record_tokenizer_files.py (record_tokenizer_strings.py's STRINGS, Unicode edge
cases, harmony transcripts), every add_special x parse_special combination.

Writes goldens/tokenizer/strings-o200k_harmony-gpt-4o.yaml.
Usage: python3 goldens/recorders/record_tokenizer_gpt4o.py   (after python3 fixtures/fetch.py)
"""
import importlib.metadata
import sys
from pathlib import Path

import yaml
import llama_cpp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record_tokenizer_files as files  # noqa: E402  (shared strings and paths; imports nothing heavy)

REL = "tokenizers/o200k_harmony-gpt-4o-vocab.gguf"


def main():
    path = files.CACHE / REL
    if not path.exists():
        raise SystemExit(f"{path} missing: run python3 fixtures/fetch.py")
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    strings = files.uniq(files.base_strings() + files.UNICODE_EDGES + files.HARMONY)
    cases = []
    for s in strings:
        for add_special in (False, True):
            for parse_special in (False, True):
                ids = llm.tokenize(s.encode("utf-8"), add_bos=add_special, special=parse_special)
                cases.append({"text": s, "add_special": add_special, "parse_special": parse_special,
                              "ids": [int(i) for i in ids]})
    doc = {
        "suite": "tokenizer",
        "name": "strings-o200k_harmony-gpt-4o",
        "file": REL,
        "tolerance": "exact ids",
        "reference": "llama.cpp via llama-cpp-python (Llama(vocab_only=True).tokenize(text, add_bos, special))",
        "reference_version": importlib.metadata.version("llama_cpp_python"),
        "command": "python3 goldens/recorders/record_tokenizer_gpt4o.py",
        "cases": cases,
    }
    out = files.OUT / "strings-o200k_harmony-gpt-4o.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))
    print(f"[record_tokenizer_gpt4o] {len(cases)} cases -> {out}", flush=True)


if __name__ == "__main__":
    main()
