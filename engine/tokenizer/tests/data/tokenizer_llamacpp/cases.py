#!/usr/bin/env python3
"""Deterministic test texts for the llama.cpp tokenizer goldens (see record.sh).

usage: cases.py MODEL.gguf SUITES_DIR OUT N_RANDOM
Writes one case per line: "<add_special><parse_special>\t<text as hex>". The texts: every input
of llama.cpp's vocab suites (with add_special and parse_special on), then random and adversarial
texts built from the model's own special tokens, several scripts, white-space runs, digits,
contractions and fragments of special tokens, with random flags. Seeded: same output every run.
"""
import glob
import os
import random
import sys

from gguf import GGUFReader

model, suites, out, n_random = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rnd = random.Random(20261126)
reader = GGUFReader(model)
field = reader.fields["tokenizer.ggml.tokens"]
tokens = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
types_field = reader.fields.get("tokenizer.ggml.token_type")
types = [int(types_field.parts[i][0]) for i in types_field.data] if types_field else [1] * len(tokens)
special = [t for t, ty in zip(tokens, types) if ty in (2, 3, 4)]
normal = [t for t, ty in zip(tokens, types) if ty == 1]
named = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>",
         "<bos>", "<eos>", "<|user|>", "<|assistant|>", "<|end|>", "<|system|>", "<unused7>", "<mask>"]
scripts = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "éèàùçäöüßñÉ", "абвгдежзийклмБГД",
           "我想在工作天的一是不了人", "कखगघचछजझ्ािी", "ĠĊ▁", ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`", "🦙🚀😁✅🌫\u200d\ufe0f",
           "\u0301\u0308\u0327", "ـًٌٍَُِّْ", "กขฃคฅฆง่้๊", "\u00a0\u2009\u3000\u2028\u0085", "ﬁﬂＡＢｃ１２", "'sStTmMdDrReEvVlL"]
spaces = [" ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", " \n", "\r\n", "\n\n\n\n", "    ", ""]


def word():
    pool = rnd.choice(scripts)
    return "".join(rnd.choice(pool) for _ in range(rnd.randint(1, 8)))


def random_text():
    parts = []
    for _ in range(rnd.randint(1, 25)):
        x = rnd.random()
        if x < 0.08 and special:
            parts.append(rnd.choice(special))
        elif x < 0.12:
            parts.append(rnd.choice(named))
        elif x < 0.3 and normal:
            parts.append(rnd.choice(normal).replace("▁", " ").replace("Ġ", " ").replace("Ċ", "\n"))
        else:
            parts.append(word())
        parts.append(rnd.choice(spaces))
    return "".join(parts)


def adversarial_text():
    parts = []
    for _ in range(rnd.randint(1, 12)):
        x = rnd.random()
        if x < 0.25 and special:
            t = rnd.choice(special)
            if rnd.random() < 0.3:
                t = t[:rnd.randint(1, max(1, len(t) - 1))]
            parts.append(t)
        elif x < 0.4:
            parts.append(rnd.choice(["\n", "\t", " ", "\r\n", "\r", "\u3000", "\u00a0"]) * rnd.randint(1, 40))
        elif x < 0.5:
            parts.append("".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 20))))
        elif x < 0.6:
            parts.append(rnd.choice(["'s", "'S", "'re", "'RE", "'ll", "'Ll", "'ve", "'d", "'m", "'t", "'x", "'"]))
        elif x < 0.7:
            parts.append(rnd.choice(named))
        elif x < 0.8:
            parts.append(rnd.choice(["<", "<<", "|", ">", "<|", "|>", "<<<<<<<", "▁", "▁▁", "Ġ"]))
        else:
            parts.append(word())
    return "".join(parts)


texts = set()
for inp in sorted(glob.glob(os.path.join(suites, "ggml-vocab-*.gguf.inp"))):
    with open(inp, encoding="utf-8") as f:
        texts.update(c for c in f.read().split("\n__ggml_vocab_test__\n") if c)
lines = ["11\t" + t.encode().hex() for t in sorted(texts)]
for _ in range(n_random):
    lines.append(rnd.choice(["00", "01", "10", "11"]) + "\t" + random_text().encode().hex())
    lines.append(rnd.choice(["00", "01", "10", "11"]) + "\t" + adversarial_text().encode().hex())
for s in ["", " ", "\n", "<s>", " <s> ", "</s>", "<|im_start|>user\nhi<|im_end|>\n", "a<|endoftext|>b"]:
    for flags in ("00", "01", "10", "11"):
        lines.append(flags + "\t" + s.encode().hex())
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
