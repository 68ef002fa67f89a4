#!/usr/bin/env python3
"""Record tokenizer goldens with llama.cpp (llama-cpp-python 0.3.36, `vocab_only=True`) on strings
of our own, for the two real models' vocabularies and five ggml-vocab files.

Each string is tokenized with every combination of add_special (llama.cpp adds BOS/EOS only where
the vocabulary asks) and parse_special. Writes goldens/tokenizer/strings-<vocab>.yaml.

Usage: python3 goldens/recorders/record_tokenizer_strings.py
       python3 goldens/recorders/record_tokenizer_strings.py --strings-file S.json --out DIR
           (strings held outside the repository, goldens written outside it: see
           check_outside_tokenizer.py)
"""
import argparse
import importlib.metadata
import json
import os
from pathlib import Path

import yaml
import llama_cpp

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "tokenizer"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
VOCABS = CACHE / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "models"

FILES = {
    "smollm2": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "models/gemma-3-270m-q4_k_m.gguf",
    "qwen2": "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf",
    "gpt-2": "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf",
    "llama-spm": "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf",
    "phi-3": "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-phi-3.gguf",
    "llama-bpe": "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-bpe.gguf",
}

STRINGS = [
    "", " ", "  ", "\t", "\n", "\n\n\n", " \n \t ", "Hello", " Hello", "Hello, world!", "hello   world  ",
    "The quick brown fox jumps over the lazy dog.", "1", "12", "123", "1234567890", "3.14159", "1,000,000",
    "-42", "2024-11-26T18:22:28Z", "0x1F600", "v1.2.3-rc.4",
    "def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }", "fn main() { println!(\"hi\"); }",
    "<div class=\"a\">&amp;</div>", "SELECT * FROM t WHERE id = 1;", "https://example.com/a/b?c=d&e=f#g",
    "user@example.org", "C:\\Users\\me\\file.txt", "café", "naïve résumé", "Ångström", "ß ẞ", "Ελληνικά", "Привет, мир!",
    "日本語のテキスト", "中文分词测试", "한국어 문장", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "ภาษาไทย",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "e\u0301", "a\u0300\u0301\u0302", "Z\u0351\u0352\u0353",
    "<s>", "</s>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>", "<start_of_turn>user", "<bos>", "<unk>",
    "< s >", "<|im_start", "[INST] hi [/INST]", "'s 've 're 'll 'd 'm 't", "I'm can't won't", "ALLCAPS lower MiXeD",
    "a\u00a0b\u2009c\u3000d", "\u200b\u200c\u200d", "tab\there", "\r\n", "...", "!!!???", "$$$ €€€ ¥¥¥", "%%%",
    "   leading", "trailing   ", "x" * 200, "ab" * 60, " ".join(["word"] * 50),
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strings-file", help="a JSON list of strings to use instead of STRINGS")
    ap.add_argument("--out", default=str(OUT), help="output folder (default goldens/tokenizer)")
    a = ap.parse_args()
    out = Path(a.out)
    strings = json.loads(Path(a.strings_file).read_text(encoding="utf-8")) if a.strings_file else STRINGS
    command = "python3 goldens/recorders/record_tokenizer_strings.py" + (
        f" --strings-file {a.strings_file} --out {a.out}" if a.strings_file else "")
    out.mkdir(parents=True, exist_ok=True)
    version = importlib.metadata.version("llama_cpp_python")
    for name, rel in FILES.items():
        path = CACHE / rel
        if not path.exists():
            print(f"[record_tokenizer_strings] skip {name}: {path} missing (run python3 fixtures/fetch.py)")
            continue
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        cases = []
        for s in strings:
            for add_special in (False, True):
                for parse_special in (False, True):
                    ids = llm.tokenize(s.encode("utf-8"), add_bos=add_special, special=parse_special)
                    cases.append({"text": s, "add_special": add_special, "parse_special": parse_special,
                                  "ids": [int(i) for i in ids]})
        doc = {
            "suite": "tokenizer",
            "name": f"strings-{name}",
            "file": rel,
            "tolerance": "exact ids",
            "reference": "llama.cpp via llama-cpp-python (Llama(vocab_only=True).tokenize(text, add_bos, special))",
            "reference_version": version,
            "command": command,
            "cases": cases,
        }
        (out / f"strings-{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))
        print(f"[record_tokenizer_strings] {name}: {len(cases)} cases", flush=True)


if __name__ == "__main__":
    main()
