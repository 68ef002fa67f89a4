#!/usr/bin/env python3
"""Record chat-template goldens with Python jinja2, rendered the way transformers'
`apply_chat_template` does (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, the
loopcontrols extension, `raise_exception`, `strftime_now`, `tojson` with ensure_ascii=False).

Templates: SmolLM2-135M-Instruct (from its GGUF), and from the llama-cpp-python 0.3.36 source
distribution's models/templates/: Qwen2.5-7B-Instruct, Phi-3.5-mini-instruct, gpt-oss-120b and
gemma-2-2b-it (gemma-3-270m is a base model whose GGUF carries no template; gemma 2's is the family's
turn format). Each template is copied into goldens/chat_template/templates/ so CI needs no cache.
Per template × message set × add_generation_prompt: goldens/chat_template/<name>.yaml with the
rendered text, or the exception text when the template raises.

Usage: python3 goldens/recorders/record_chat_templates.py
"""
import importlib.metadata
import os
import sys
from datetime import datetime
from pathlib import Path

import jinja2
import yaml
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "chat_template"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
TEMPLATES = CACHE / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "models" / "templates"

SOURCES = {
    "smollm2": ("gguf", CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf", "<|im_start|>", "<|im_end|>"),
    "qwen2.5": ("file", TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>"),
    "phi3.5": ("file", TEMPLATES / "microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>"),
    "gpt-oss": ("file", TEMPLATES / "openai-gpt-oss-120b.jinja", "<|startoftext|>", "<|return|>"),
    "gemma3": ("file", TEMPLATES / "google-gemma-2-2b-it.jinja", "<bos>", "<eos>"),
}

MESSAGES = {
    "user": [{"role": "user", "content": "What is the capital of France?"}],
    "system-user": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name three primes."},
    ],
    "multi-turn": [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello. How can I help?"},
        {"role": "user", "content": "  Tell me a joke about ü and 日本.  "},
    ],
    "assistant-first": [{"role": "assistant", "content": "I start."}],
}


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(fmt):
    # Fixed date so goldens are deterministic (the harness passes the same).
    return datetime(2026, 1, 1).strftime(fmt)


def env():
    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    e.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False, ensure_ascii=False: __import__(
        "json").dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    e.globals["raise_exception"] = raise_exception
    e.globals["strftime_now"] = strftime_now
    return e


def template_text(kind, path):
    if kind == "gguf":
        from gguf import GGUFReader
        r = GGUFReader(path)
        f = r.fields["tokenizer.chat_template"]
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return path.read_text(encoding="utf-8")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    version = importlib.metadata.version("jinja2")
    n = 0
    for name, (kind, path, bos, eos) in SOURCES.items():
        if not path.exists():
            print(f"[record_chat_templates] skip {name}: {path} missing (run python3 fixtures/fetch.py)", flush=True)
            continue
        text = template_text(kind, path)
        tfile = OUT / "templates" / f"{name}.jinja"
        tfile.write_text(text, encoding="utf-8")
        tmpl = env().from_string(text)
        for mname, msgs in MESSAGES.items():
            for agp in (True, False):
                case = f"{name}-{mname}-{'gen' if agp else 'nogen'}"
                try:
                    rendered, error = tmpl.render(messages=msgs, add_generation_prompt=agp, bos_token=bos,
                                                  eos_token=eos), None
                except jinja2.exceptions.TemplateError as e:
                    rendered, error = None, str(e)
                doc = {
                    "suite": "chat_template",
                    "name": case,
                    "template": f"templates/{name}.jinja",
                    "template_source": str(path.relative_to(CACHE)) if kind == "file" else
                    f"{path.relative_to(CACHE)}:tokenizer.chat_template",
                    "messages": msgs,
                    "add_generation_prompt": agp,
                    "bos_token": bos,
                    "eos_token": eos,
                    "expected": rendered,
                    "expected_error": error,
                    "tolerance": "exact text (what transformers' apply_chat_template renders)",
                    "reference": "jinja2 (transformers' apply_chat_template environment)",
                    "reference_version": version,
                    "command": "python3 goldens/recorders/record_chat_templates.py",
                }
                (OUT / f"{case}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))
                n += 1
        print(f"[record_chat_templates] {name}: {len(MESSAGES) * 2} cases", flush=True)
    print(f"[record_chat_templates] {n} cases in {OUT}", flush=True)


if __name__ == "__main__":
    main()
