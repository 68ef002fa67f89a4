#!/usr/bin/env python3
"""Write goldens/server/*.yaml (suite `server`, conformance/src/suites/server.rs).

Nothing here comes from worker-orcd. Two kinds of case:
- golden cases name a `generate` golden (record_generate.py: llama.cpp via llama-cpp-python
  0.3.36, greedy) and the HTTP API to ask it through; the text and stop reason are llama.cpp's;
- contract cases are one request each, with the expectation written from the sentence of
  ../shared/DESIGN.md §7 (the HTTP contract) or the OpenAI API reference quoted in `reference`;
  the /tokenize case's ids are read from goldens/tokenizer/strings-qwen2.yaml (llama.cpp's ids,
  record_tokenizer_strings.py), the vocabulary its synthetic model carries.

Run: python3 goldens/recorders/record_server_cases.py   (PyYAML; idempotent)
"""
import json
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "server"
FIXTURE = "model-qwen2-tiny-q8_0-seed1"

GOLDEN = [  # (case, generate golden, api)
    ("smollm2-capital-chat", "smollm2-capital", "chat"),
    ("smollm2-multi-turn-chat", "smollm2-multi-turn", "chat"),
    ("smollm2-haiku-chat", "smollm2-haiku", "chat"),
    ("gemma3-story-execute", "gemma3-story", "execute"),
    ("gemma3-capital-completions", "gemma3-capital", "completions"),
]


def qwen2_ids(text):
    """llama.cpp's ids for `text` (add_special false, parse_special false)."""
    d = yaml.safe_load((ROOT / "tokenizer" / "strings-qwen2.yaml").read_text())
    for c in d["cases"]:
        if c["text"] == text and not c["add_special"] and not c["parse_special"]:
            return c["ids"]
    raise SystemExit(f"{text!r} is not in strings-qwen2.yaml")


TOK_TEXT = "Привет, мир!"
TOK_IDS = qwen2_ids(TOK_TEXT)

CONTRACT = [  # (name, reference, api_key, request, expect)
    ("execute-invalid-field", "DESIGN §7: Validation failure → 400 {errors:[{field, constraint, message}]} (never echo the prompt)", None,
     {"method": "POST", "path": "/execute", "body": '{"job_id": "j1", "prompt": "SECRET-PROMPT-TEXT", "temperature": 9}'},
     {"status": 400, "json": {"/errors/0/field": "temperature"}, "json_present": ["/errors/0/constraint", "/errors/0/message"], "absent": ["SECRET-PROMPT-TEXT"]}),
    ("execute-malformed-json", "DESIGN §7: Validation failure → 400 {errors:[{field, constraint, message}]}", None,
     {"method": "POST", "path": "/execute", "body": '{"job_id": '},
     {"status": 400, "json_present": ["/errors/0/message"]}),
    ("execute-stream", "DESIGN §7: POST /execute → SSE with named events started {job_id, model, started_at}, token {t, i}, metrics, then exactly one of end {tokens_out, decode_time_ms, stop_reason, seed} or error", None,
     {"method": "POST", "path": "/execute", "body": '{"job_id": "j2", "prompt": "Hello", "max_tokens": 4, "temperature": 0}'},
     {"status": 200, "first_event": "started", "last_event": "end", "json_present": ["/tokens_out", "/decode_time_ms", "/stop_reason", "/seed"]}),
    ("cancel-unknown-job", "DESIGN §7: POST /cancel {job_id} → 202, idempotent", None,
     {"method": "POST", "path": "/cancel", "body": '{"job_id": "no-such-job"}'}, {"status": 202}),
    ("health", "DESIGN §7: GET /health → status, model, backend, resident, quant kind, vram bytes used, tokenizer kind, vocab size, context length, uptime", None,
     {"method": "GET", "path": "/health"}, {"status": 200, "json_present": ["/status", "/model", "/backend"]}),
    ("api-key-guards", "DESIGN §7: --api-key protects everything but /health (OpenAI API reference: a missing key is 401 with an error envelope)", "key-1",
     {"method": "POST", "path": "/v1/completions", "body": '{"prompt": "Hi", "max_tokens": 2}'},
     {"status": 401, "json_present": ["/error/message", "/error/type"]}),
    ("api-key-accepted", "DESIGN §7: --api-key protects everything but /health; OpenAI API reference: Authorization: Bearer <key>, a completion object is {object: text_completion, choices: [{text, index, finish_reason}]}", "key-1",
     {"method": "POST", "path": "/v1/completions", "body": '{"prompt": "Hi", "max_tokens": 2, "temperature": 0}', "headers": {"authorization": "Bearer key-1"}},
     {"status": 200, "json": {"/object": "text_completion", "/choices/0/index": 0}, "json_present": ["/choices/0/text", "/choices/0/finish_reason"]}),
    ("api-key-health-open", "DESIGN §7: --api-key protects everything but /health", "key-1",
     {"method": "GET", "path": "/health"}, {"status": 200}),
    ("openai-error-envelope", 'DESIGN §7: Errors in OpenAI\'s envelope {"error": {message, type, param, code}}', None,
     {"method": "POST", "path": "/v1/chat/completions", "body": '{"messages": "not-a-list"}'},
     {"status": 400, "json_present": ["/error/message", "/error/type", "/error/param", "/error/code"]}),
    ("chat-stream-done", "DESIGN §7: SSE data: {...} chunks ending in data: [DONE]; OpenAI API reference: each chunk is a chat.completion.chunk", None,
     {"method": "POST", "path": "/v1/chat/completions", "body": '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 0, "stream": true}'},
     {"status": 200, "last_event": "[DONE]", "json": {"/object": "chat.completion.chunk"}}),
    ("models-list", "DESIGN §7: GET /v1/models; OpenAI API reference: {object: list, data: [{id, object: model, ...}]}", None,
     {"method": "GET", "path": "/v1/models"},
     {"status": 200, "json": {"/object": "list", "/data/0/object": "model"}, "json_present": ["/data/0/id"]}),
    ("tokenize-llamacpp-ids", "DESIGN §7: POST /tokenize (vLLM's shape: {count, max_model_len, tokens}); ids: llama.cpp's, goldens/tokenizer/strings-qwen2.yaml", None,
     {"method": "POST", "path": "/tokenize", "body": json.dumps({"prompt": TOK_TEXT, "add_special_tokens": False}, ensure_ascii=False)},
     {"status": 200, "json": {"/tokens": TOK_IDS, "/count": len(TOK_IDS)}, "json_present": ["/max_model_len"]}),
]

HEAD = "# Written by goldens/recorders/record_server_cases.py; do not edit by hand.\n"


def dump(name, doc):
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    (OUT / f"{name}.yaml").write_text(HEAD + text)


def main():
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.yaml"):
        old.unlink()
    for name, golden, api in GOLDEN:
        dump(name, {"suite": "server", "name": name,
                    "reference": f"llama.cpp's greedy generation in ../generate/{golden}.yaml (record_generate.py)",
                    "golden": f"../generate/{golden}.yaml", "api": api})
    for name, ref, key, req, exp in CONTRACT:
        doc = {"suite": "server", "name": f"contract-{name}", "reference": ref, "fixture": FIXTURE}
        if key:
            doc["api_key"] = key
        doc["request"] = req
        doc["expect"] = exp
        dump(f"contract-{name}", doc)
    print(f"wrote {len(GOLDEN) + len(CONTRACT)} cases under {OUT}")


if __name__ == "__main__":
    main()
