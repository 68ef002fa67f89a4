"""The official `openai` Python client against `worker-orcd serve` (run by tests/openai_python.rs).

Usage: openai_client.py BASE_URL EXPECTED_CHAT_TEXT  (openai==1.109.1, pinned in ci/test.sh)
EXPECTED_CHAT_TEXT is `worker-orcd generate --chat` at temperature 0 for QUESTION (max 24 tokens).
Exits non-zero with a message on the first failed check.
"""
import sys

import openai

QUESTION = "What is the capital of France?"


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)


def main():
    base, expected = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base + "/v1", api_key="k-test", max_retries=0, timeout=60)
    models = client.models.list()
    model = models.data[0].id
    msgs = [{"role": "user", "content": QUESTION}]

    # Chat, streamed, greedy: the CLI's text; one id; role once; usage when asked.
    stream = client.chat.completions.create(
        model=model, messages=msgs, temperature=0, max_tokens=24, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text == expected, f"stream text {text!r} != generate --chat {expected!r}")
    check(len({c.id for c in chunks}) == 1, "one id across chunks")
    check(sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1, "role once")
    check(chunks[-1].choices == [] and chunks[-1].usage is not None, "a last usage chunk")
    check(all(c.usage is None for c in chunks[:-1]), "usage null before the last chunk")

    # Not streamed: the same text, usage, finish_reason.
    r = client.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=24)
    check(r.choices[0].message.content == expected, "non-stream chat text")
    check(r.usage.completion_tokens == chunks[-1].usage.completion_tokens, "usage equal")
    check(r.choices[0].finish_reason in ("stop", "length"), "finish_reason")

    # Completions with usage; seed reproducible; logprobs.
    kw = dict(model=model, prompt="Once upon a time", max_tokens=12, temperature=0.9, seed=1234)
    a = client.completions.create(**kw)
    b = client.completions.create(**kw)
    check(a.usage.prompt_tokens > 0 and a.usage.completion_tokens > 0, "completion usage")
    check(a.choices[0].text == b.choices[0].text, "same seed, same text")
    s = "".join(c.choices[0].text for c in client.completions.create(**kw, stream=True) if c.choices)
    check(s == a.choices[0].text, "stream text == non-stream text")

    r = client.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=8, logprobs=True,
                                       top_logprobs=3)
    lp = r.choices[0].logprobs.content
    check("".join(t.token for t in lp) == r.choices[0].message.content, "logprob tokens make the text")
    check(all(t.logprob <= 0 and len(t.top_logprobs) == 3 for t in lp), "logprobs <= 0, 3 alternatives")

    # Errors: the client raises its typed errors from our envelope.
    try:
        client.chat.completions.create(model=model, messages=msgs, temperature=5)
        check(False, "temperature 5 accepted")
    except openai.BadRequestError as e:
        check(e.body and e.body.get("param") == "temperature", f"error body {e.body}")
    bad = openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0)
    try:
        bad.models.list()
        check(False, "wrong key accepted")
    except openai.AuthenticationError:
        pass
    print("openai client: all checks passed")


main()
