#!/usr/bin/env python3
"""Record the sampler goldens (suite `sampler`) from llama.cpp's tests/test-sampling.cpp.

Reference: the published test vectors of llama.cpp's `tests/test-sampling.cpp`, from the llama.cpp
vendored in the llama-cpp-python 0.3.36 source distribution (fetched by python3 fixtures/fetch.py
into ~/.cache/orcd/llama_cpp_python-0.3.36/vendor/llama.cpp). Nothing here runs our engine or
computes an expected vector: the recorder PARSES the .cpp file — every `test_*(...)` call in
`main()` — and writes each call's arguments (inputs, parameters, and the expected probability
vectors written in the call) into one case file. Each case records the source line and the call
text verbatim, so it can be checked against the .cpp by eye.

Numbers: C literals are evaluated as C evaluates them, in float32 — `0.1f` is the float nearest to
0.1 (exact decimal rounding), a double literal such as `1e-12` passed to a float parameter is
rounded to double then to float, and `0.2f/0.9f` is a float32 division. Values are written as the
shortest decimal of the exact float32 value seen as a float64 (e.g. 0.10000000149011612), so a
reader that parses to f64 and casts to f32 gets the same bits as the C program.

What each test function does is transcribed into `steps` (the samplers it applies, in order, with
the parameters the C++ passes, e.g. `min_keep = 0` for top-p/min-p, `dist(0)` after most of them),
following the function bodies in test-sampling.cpp:
  test_temp, test_temp_ext, test_top_k, test_top_p, test_min_p, test_top_n_sigma:  sampler, dist(0)
  test_penalties (history = last_tokens, window = its length), test_dry:           sampler, dist(0)
  test_xtc (min_keep 0, seed 0), test_typical (min_keep 0):                        sampler only
and the check compares the candidates' probabilities, in list order, with `expected_probs`
(|Δ| < 1e-5, test-sampling.cpp's own `check()`).

`test_sampler_queue` calls carry no vectors — the C++ checks sizes and end tokens with formulas.
Their cases (`check: queue`) carry the call's parameters; the suite runner transcribes those
formulas (see conformance/src/suites/sampler.rs). `test_dist_singleton_rng` becomes
`check: dist_singleton_rng` (the RNG stays aligned after a draw from a single candidate).
`test_perf` (a benchmark, no assertion) is not a case.

Usage (from anywhere; paths are resolved from this file):
  python3 goldens/recorders/record_sampler.py [--source PATH/TO/test-sampling.cpp]
"""
import argparse
import os
import re
import shlex
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "sampler"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
SDIST = "llama_cpp_python-0.3.36"
DEFAULT_SOURCE = CACHE / SDIST / "vendor" / "llama.cpp" / "tests" / "test-sampling.cpp"
REFERENCE = "llama.cpp tests/test-sampling.cpp"
REFERENCE_VERSION = "llama-cpp-python 0.3.36 (vendor/llama.cpp)"
TOLERANCE = {
    "probs": "1e-5 (test-sampling.cpp's own)",
    "queue": "exact sizes and end tokens (test-sampling.cpp's test_sampler_queue)",
    "dist_singleton_rng": "exact token equality (test-sampling.cpp's test_dist_singleton_rng)",
}

# ---------------------------------------------------------------------------------------------
# C literal evaluation (float32).


def f32_of_decimal(text):
    """The float32 nearest to the decimal `text` (round half to even), as C rounds `0.1f`."""
    exact = Fraction(text)
    guess = np.float32(float(text))
    best = None
    for cand in (np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))):
        err = abs(Fraction(float(cand)) - exact)
        key = (err, int(np.array(cand).view(np.uint32)) & 1)  # ties: even mantissa
        if best is None or key < best[0]:
            best = (key, cand)
    return np.float32(best[1])


def c_literal(tok):
    tok = tok.strip()
    if re.fullmatch(r"[0-9.]+(e[-+]?[0-9]+)?f", tok):
        return f32_of_decimal(tok[:-1])
    if re.fullmatch(r"[0-9.]+(e[-+]?[0-9]+)?", tok):
        # int or double literal, converted to float where a float is expected
        return np.float32(float(tok))
    raise ValueError(f"unsupported C literal {tok!r}")


def c_expr(text):
    """A float expression of the forms used in test-sampling.cpp: literal or literal/literal."""
    parts = text.split("/")
    val = c_literal(parts[0])
    for p in parts[1:]:
        val = np.float32(val / c_literal(p))
    return val


def split_args(s):
    """Split a C argument list at top-level commas (braces nest)."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def brace_list(arg):
    arg = arg.strip()
    if not (arg.startswith("{") and arg.endswith("}")):
        raise ValueError(f"expected a braced list, got {arg!r}")
    return split_args(arg[1:-1])


def floats(arg):
    return [c_expr(x) for x in brace_list(arg)]


def ints(arg):
    return [int(x) for x in brace_list(arg)]


def scalar(arg):
    return c_expr(arg)


def integer(arg):
    return int(arg.strip())


# ---------------------------------------------------------------------------------------------
# YAML output (hand-written: flat, deterministic, f32 values exact).


def fnum(x):
    return repr(float(np.float32(x)))


def flist(xs):
    return "[" + ", ".join(fnum(x) for x in xs) + "]"


def ilist(xs):
    return "[" + ", ".join(str(int(x)) for x in xs) + "]"


def yaml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def step(op, **kw):
    fields = [f"op: {op}"]
    for k, v in kw.items():
        if isinstance(v, list):
            if v and isinstance(v[0], list):
                v = "[" + ", ".join(ilist(x) for x in v) + "]"
            else:
                v = ilist(v)
        elif isinstance(v, (np.floating, float)):
            v = fnum(v)
        fields.append(f"{k}: {v}")
    return "  - { " + ", ".join(fields) + " }"


DIST0 = step("dist", seed=0)


def case_from_call(fn, args):
    """(check, fields, steps) for one call, following the test function's body."""
    a = split_args(args)
    if fn == "test_temp":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("temp", t=scalar(a[2])), DIST0]
    if fn == "test_temp_ext":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("temp_ext", t=scalar(a[2]), delta=scalar(a[3]), exponent=scalar(a[4])), DIST0]
    if fn == "test_top_k":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("top_k", k=integer(a[2])), DIST0]
    if fn == "test_top_p":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("top_p", p=scalar(a[2]), min_keep=0), DIST0]
    if fn == "test_min_p":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("min_p", p=scalar(a[2]), min_keep=0), DIST0]
    if fn == "test_xtc":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("xtc", probability=scalar(a[2]), threshold=scalar(a[3]), min_keep=0, seed=0)]
    if fn == "test_typical":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("typical", p=scalar(a[2]), min_keep=0)]
    if fn == "test_penalties":
        history = ints(a[1])
        return "probs", dict(input_probs=floats(a[0]), history=history, expected_probs=floats(a[2])), [
            step("penalties", last_n=len(history), repeat=scalar(a[3]), frequency=scalar(a[4]),
                 presence=scalar(a[5])), DIST0]
    if fn == "test_dry":
        breakers = [ints(b) for b in brace_list(a[7])]
        return "probs", dict(input_probs=floats(a[0]), history=ints(a[1]), expected_probs=floats(a[2])), [
            step("dry", multiplier=scalar(a[3]), base=scalar(a[4]), allowed_length=integer(a[5]),
                 last_n=integer(a[6]), sequence_breakers=breakers), DIST0]
    if fn == "test_top_n_sigma":
        return "probs", dict(input_probs=floats(a[0]), expected_probs=floats(a[1])), [
            step("top_n_sigma", n=scalar(a[2])), DIST0]
    if fn == "test_sampler_queue":
        seq = a[1].strip()
        assert seq.startswith('"') and seq.endswith('"'), seq
        return "queue", dict(n_vocab=integer(a[0]), sequence=seq[1:-1], top_k=integer(a[2]),
                             top_p=scalar(a[3]), min_p=scalar(a[4])), []
    raise ValueError(f"no transcription for {fn}")


SHORT = {
    "test_temp": "temp", "test_temp_ext": "temp_ext", "test_top_k": "top_k", "test_top_p": "top_p",
    "test_min_p": "min_p", "test_xtc": "xtc", "test_typical": "typical", "test_penalties": "penalties",
    "test_dry": "dry", "test_top_n_sigma": "top_n_sigma", "test_sampler_queue": "queue",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = ap.parse_args()
    src = args.source
    if not src.is_file():
        sys.exit(f"error: {src} not found (python3 fixtures/fetch.py downloads the llama-cpp-python sdist)")
    lines = src.read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("int main("))
    command = "python3 goldens/recorders/record_sampler.py" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.yaml"):
        old.unlink()

    counters = {}
    written = []
    skipped = []
    for ln in range(start, len(lines)):
        line = lines[ln]
        if line.startswith("}"):
            break
        m = re.match(r"\s*(test_\w+)\((.*)\);", line)
        if not m:
            continue
        fn, call_args = m.group(1), m.group(2)
        call = line.strip()
        if fn == "test_perf":
            skipped.append((ln + 1, call, "benchmark without assertions"))
            continue
        counters[fn] = counters.get(fn, 0) + 1
        if fn == "test_dist_singleton_rng":
            name = "dist_singleton_rng"
            check, fields, steps = "dist_singleton_rng", dict(seed=4242), []
            # The seed is inside the function body (llama_sampler_init_dist(4242)); check it.
            body = "\n".join(lines)
            assert "llama_sampler_init_dist(4242)" in body, "test_dist_singleton_rng changed"
        else:
            check, fields, steps = case_from_call(fn, call_args)
            name = f"{SHORT[fn]}-{counters[fn]:02d}"
            if check == "queue":
                name += "-" + fields["sequence"]
        out = [
            "# Recorded by goldens/recorders/record_sampler.py from llama.cpp's test-sampling.cpp; do not edit by hand.",
            "suite: sampler",
            f"name: {name}",
            f"check: {check}",
            f"reference: {REFERENCE}",
            f"reference_version: {REFERENCE_VERSION}",
            f"source_line: {ln + 1}",
            f"source_call: {yaml_str(call)}",
            f"command: {command}",
            f"tolerance: {TOLERANCE[check]}",
        ]
        for k, v in fields.items():
            if isinstance(v, list):
                v = ilist(v) if k == "history" else flist(v)
            elif isinstance(v, (np.floating, float)):
                v = fnum(v)
            elif isinstance(v, str):
                v = yaml_str(v)
            out.append(f"{k}: {v}")
        if steps:
            out.append("steps:")
            out.extend(steps)
        path = OUT / f"{name}.yaml"
        path.write_text("\n".join(out) + "\n")
        written.append(name)

    by_kind = {}
    for fn, n in counters.items():
        by_kind[fn] = n
    print(f"wrote {len(written)} cases to {OUT.relative_to(ROOT)}/ from {src}")
    for fn, n in by_kind.items():
        print(f"  {fn}: {n}")
    for ln, call, why in skipped:
        print(f"  skipped line {ln}: {call} ({why})")


if __name__ == "__main__":
    main()
