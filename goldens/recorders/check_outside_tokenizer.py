#!/usr/bin/env python3
"""Issue 3's outside check: several hundred strings that are not in the repository, tokenized with
the 7 vocabularies (qwen2, gpt-2, llama-spm, phi-3, llama-bpe, gemma3, SmolLM2) by llama.cpp and by
the engine, with and without BOS (add_special) and special-token parsing.

1. Generates N strings from --seed (never written into the repo): random compositions of pieces
   from many scripts and shapes — ASCII words and capitalisation, digit runs, whitespace runs (tabs,
   CR/LF, NBSP, ideographic space), punctuation, code and URLs, Latin accents as precomposed and
   combining characters, Greek, Cyrillic, CJK, Hangul, Arabic, Hebrew, Devanagari, Thai, emoji with
   ZWJ sequences, flags and skin tones, zero-width characters, and special-token look-alikes of each
   vocabulary (<s>, <|im_start|>, <start_of_turn>, [INST], partial ones).
2. Records llama.cpp's ids (llama-cpp-python 0.3.36) with record_tokenizer_strings.py into a goldens
   folder outside the repo (--work).
3. Runs the harness on that folder: `orcd-gate run --goldens DIR --suite tokenizer` (build it first:
   cargo build --release -p orcd-conformance --bin orcd-gate) and prints the pass counts.

Usage: python3 goldens/recorders/check_outside_tokenizer.py [--n 400] [--seed 20261126] [--work DIR]
"""

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PIECES = {
    "ascii": ["the", "The", "THE", "quick", "Brown", "fox", "jumps", "over", "lazy", "dog", "I'm", "you're", "it's",
              "can't", "we'll", "they'd", "O'Neil", "e-mail", "co-op", "AI", "GPU", "llama", "tokenizer"],
    "digits": ["0", "7", "42", "123", "2024", "1234567", "3.14", "1e-9", "0xFF", "1,234", "99%", "12:30"],
    "space": [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2009"],
    "punct": [".", ",", "!", "?", "...", "--", "—", "(", ")", "[", "]", "{", "}", "\"", "'", "`", ";", ":", "/",
              "\\", "#", "@", "&", "*", "_", "~", "|", "^", "+=", "->", "=>", "::", "!="],
    "code": ["def f(x):", "return x", "if (a && b) {", "} else {", "let v = vec![1, 2];", "#include <stdio.h>",
             "SELECT id FROM t;", "<div>", "</div>", "x[i] += y[j];", "    indent", "\tcol"],
    "url": ["https://a.example/p?q=1&r=2", "http://localhost:8080/", "user@host.org", "C:\\path\\f.txt",
            "~/.cache/x", "v1.2.3"],
    "latin": ["café", "naïve", "résumé", "Ångström", "straße", "ẞ", "Œuvre", "façade", "e\u0301", "a\u0308",
              "n\u0303", "Z\u0351\u0352", "ǅ", "ﬁ"],
    "greek_cyr": ["Ελληνικά", "λόγος", "Привет", "мир", "Ёж", "Україна"],
    "cjk": ["日本語", "東京", "中文", "分词", "测试", "한국어", "문장", "カタカナ", "ひらがな", "漢字かな交じり"],
    "rtl": ["مرحبا", "العالم", "שלום", "עולם", "۱۲۳", "٣٤٥"],
    "indic_thai": ["नमस्ते", "दुनिया", "हिन्दी", "ภาษาไทย", "สวัสดี", "தமிழ்", "বাংলা"],
    "emoji": ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "❤️", "🧑🏿‍💻", "✌🏻", "🤖"],
    "zero": ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060"],
    "special": ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<start_of_turn>",
                "<end_of_turn>", "<bos>", "<eos>", "[INST]", "[/INST]", "<|user|>", "<|assistant|>", "<|end|>",
                "<|im_start", "im_end|>", "< s >", "<pad>", "<|begin_of_text|>", "<|eot_id|>"],
}


def strings(n, seed):
    rng = random.Random(seed)
    kinds = list(PIECES)
    out = ["", " ", "\n"]
    while len(out) < n:
        k = rng.randint(1, 12)
        pick = rng.sample(kinds, rng.randint(1, 3))
        parts = []
        for _ in range(k):
            parts.append(rng.choice(PIECES[rng.choice(pick)]))
            if rng.random() < 0.6:
                parts.append(rng.choice([" ", " ", "", "\n", "  "]))
        s = "".join(parts)
        if rng.random() < 0.1:
            s = s * rng.randint(2, 6)
        if s not in out:
            out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "orcd" / "outside" / "tokenizer"))
    a = ap.parse_args()
    work = Path(a.work).resolve()
    if ROOT in work.parents or work == ROOT:
        raise SystemExit("error: --work must be outside the repository")
    gold = work / "goldens" / "tokenizer"
    gold.mkdir(parents=True, exist_ok=True)
    for f in gold.glob("*.yaml"):
        f.unlink()
    sfile = work / "strings.json"
    sfile.write_text(json.dumps(strings(a.n, a.seed), ensure_ascii=False), encoding="utf-8")
    print(f"{a.n} strings (seed {a.seed}) -> {sfile}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, str(ROOT / "goldens/recorders/record_tokenizer_strings.py"),
                    "--strings-file", str(sfile), "--out", str(gold)], check=True)
    gate = ROOT / "target" / "release" / "orcd-gate"
    if not gate.exists():
        raise SystemExit(f"error: {gate} missing: cargo build --release -p orcd-conformance --bin orcd-gate")
    rep = work / "report"
    r = subprocess.run([str(gate), "run", "--goldens", str(work / "goldens"), "--suite", "tokenizer",
                        "--out", str(rep)], env={**os.environ})
    data = json.loads((rep / "report.json").read_text(encoding="utf-8"))
    total = {"pass": 0, "fail": 0, "not_run": 0}
    for c in data.get("cases", []):
        total[c["outcome"]] = total.get(c["outcome"], 0) + 1
        if "::strings-" in c["id"] or c["outcome"] != "pass":
            print(f"{c['outcome'].upper():8} {c['id']}: {(c.get('detail') or c.get('message') or c.get('reason') or '')[:160]}")
    print(f"tokenizer trials (7 strings files + llama.cpp's vocab suites): {total}; report {rep / 'report.md'}")
    return 0 if r.returncode == 0 and total["fail"] == 0 and total["not_run"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
