#!/usr/bin/env python3
"""Record the quant goldens (suite `quant`) with gguf-py's `gguf.quants`.

For every case it writes into goldens/quant/
  <name>.yaml                 the case (schema below; paths relative to this folder)
  <name>.input.npy            quantize: float32 input, numpy shape (ne1, ne0);
                              dequantize: the raw blocks, uint8, 1-D
  <name>.quantized.npy        quantize only: gguf-py's bytes, uint8, 1-D
  <name>.expected.npy         gguf-py's float32 dequantization, numpy shape (ne1, ne0)

Cases:
  quantize   every type gguf-py quantizes (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4):
             seeded normal data of three shapes, uniform data with outliers, and hand-made
             blocks (all zeros, one nonzero, ~1e-30, rounding ties, constant, signed max ties,
             NaN payloads and f16/bf16 rounding ties for the float types); MXFP4 also gets the
             float32 log2 boundaries of its shared exponent.
  dequantize every type gguf-py dequantizes that the engine supports: seeded random blocks whose
             f16 scale fields are finite (normal and subnormal f16), three shapes; F16 and BF16
             also exhaustively (all 65,536 bit patterns); MXFP4 every E8M0 exponent; plus the first
             two rows of one tensor of each type in the real models (skipped with a message when
             the models are not fetched: python3 fixtures/fetch.py).

Reference: gguf-py (pip `gguf`, pinned in requirements.txt), whose quants are tested bit-exact
against ggml. Deterministic: seeded numpy generators, same inputs → same bytes.

Usage (from anywhere; paths are resolved from this file):
  python3 goldens/recorders/record_quant.py [--models-dir DIR]
"""
import argparse
import importlib.metadata
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "quant"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
MODELS = ("gemma-3-270m-q4_k_m.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf")

QUANTIZABLE = [QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.MXFP4]
DEQUANTIZABLE = [QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.Q2_K, QT.Q3_K,
                 QT.Q4_K, QT.Q5_K, QT.Q6_K, QT.IQ4_NL, QT.MXFP4]

# Byte offsets of the f16 scale fields in each block (ggml layouts).
F16_FIELDS = {
    QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2], QT.Q8_0: [0], QT.IQ4_NL: [0],
    QT.Q2_K: [80, 82], QT.Q3_K: [108], QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208],
}

TOLERANCE_COMMENT = ("# bit-exact: gguf-py's quants are checked bit-exact against ggml, and the engine "
                     "mirrors their float32 operation order")


def version() -> str:
    v = getattr(gguf, "__version__", None)
    return v if v else importlib.metadata.version("gguf")


def command(argv) -> str:
    return " ".join(["python3", "goldens/recorders/record_quant.py", *(shlex.quote(a) for a in argv)])


def yaml_scalar(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(str(int(x)) for x in v) + "]"
    s = str(v)
    plain_ok = (s and s.strip() == s and not s[0] in "!&*[]{},#|>@`'\"%-?:" and ": " not in s and " #" not in s
                and s.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "~"))
    try:
        float(s)
        plain_ok = False
    except ValueError:
        pass
    return s if plain_ok else '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Recorder:
    def __init__(self, argv):
        self.command = command(argv)
        self.names = set()
        self.counts = {}

    def write(self, name, op, qtype, shape, source, inp, expected, quantized=None, note=None):
        assert name == name.lower() and name not in self.names, name
        self.names.add(name)
        files = {"input": f"{name}.input.npy", "expected": f"{name}.expected.npy"}
        np.save(OUT / files["input"], inp, allow_pickle=False)
        np.save(OUT / files["expected"], np.ascontiguousarray(expected, dtype=np.float32), allow_pickle=False)
        if quantized is not None:
            files["expected_quantized"] = f"{name}.quantized.npy"
            np.save(OUT / files["expected_quantized"], quantized, allow_pickle=False)
        lines = [
            "# Recorded by goldens/recorders/record_quant.py with gguf-py; do not edit by hand.",
            "suite: quant",
            f"name: {yaml_scalar(name)}",
            f"op: {op}",
            f"type: {qtype.name}",
            f"shape: {yaml_scalar(list(shape))}",
            f"source: {yaml_scalar(source)}",
            f"input: {yaml_scalar(files['input'])}",
        ]
        if quantized is not None:
            lines.append(f"expected_quantized: {yaml_scalar(files['expected_quantized'])}")
        lines += [
            f"expected: {yaml_scalar(files['expected'])}",
            TOLERANCE_COMMENT,
            "tolerance: bit-exact",
            "reference: gguf-py",
            f"reference_version: {yaml_scalar(version())}",
            f"numpy_version: {yaml_scalar(np.__version__)}",
            f"command: {yaml_scalar(self.command)}",
        ]
        if note:
            lines.append(f"description: {yaml_scalar(note)}")
        (OUT / f"{name}.yaml").write_text("\n".join(lines) + "\n")
        key = (qtype.name, op)
        self.counts[key] = self.counts.get(key, 0) + 1

    def quantize_case(self, qtype, tag, source, data, note=None):
        """data: float32, numpy shape (ne1, ne0)."""
        data = np.ascontiguousarray(data, dtype=np.float32)
        ne1, ne0 = data.shape
        q = np.asarray(quantize(data, qtype))
        qbytes = np.ascontiguousarray(q).view(np.uint8).reshape(-1)
        bs, ts = GGML_QUANT_SIZES[qtype]
        assert qbytes.size == ne1 * ne0 // bs * ts
        deq = np.asarray(dequantize(qbytes.reshape(ne1, -1), qtype), dtype=np.float32).reshape(ne1, ne0)
        name = f"{qtype.name.lower()}-quantize-{tag}-{ne0}x{ne1}"
        self.write(name, "quantize", qtype, [ne0, ne1], source, data, deq, quantized=qbytes, note=note)

    def dequantize_case(self, qtype, name_tag, source, raw, ne0, ne1, note=None):
        """raw: uint8 bytes of ne1 rows of ne0 elements."""
        raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
        bs, ts = GGML_QUANT_SIZES[qtype]
        assert raw.size == ne1 * ne0 // bs * ts, (qtype.name, raw.size, ne0, ne1)
        deq = np.asarray(dequantize(raw.reshape(ne1, -1), qtype), dtype=np.float32).reshape(ne1, ne0)
        name = f"{qtype.name.lower()}-dequantize-{name_tag}"
        self.write(name, "dequantize", qtype, [ne0, ne1], source, raw, deq, note=note)


# ---------------------------------------------------------------- quantize inputs

def f32_bits(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


def tie_blocks(qtype):
    """Blocks whose codes land exactly on rounding ties of `qtype` (exact float32 scales)."""
    if qtype == QT.Q4_0:  # max -8 → d = 1, id = 1: x + 8.5 truncated
        a = np.concatenate([[-8.0], np.arange(-8, 8) + 0.5, [7.5, 6.5, -7.5, 0.0, 0.5] + [-0.5] * 10])[:32]
        b = -a * 0.25  # max 2 → d = -0.25: power-of-two scales keep the ties exact
        return [a, b]
    if qtype == QT.Q5_0:  # max -16 → d = 1
        a = np.concatenate([[-16.0], np.arange(-16, 15) + 0.5])[:32]
        return [a, a * 0.5]
    if qtype == QT.Q4_1:  # min 0, max 15 → d = 1: x + 0.5 truncated
        a = np.concatenate([[0.0, 15.0], np.arange(0, 15) + 0.5, np.arange(0, 15) + 0.25])[:32]
        return [a, a * 0.125 - 1.0]
    if qtype == QT.Q5_1:  # min 0, max 31 → d = 1
        a = np.concatenate([[0.0, 31.0], np.arange(0, 30) + 0.5])[:32]
        return [a, a * 2.0 - 3.0]
    if qtype == QT.Q8_0:  # amax 127 → d = 1: halves round away from zero
        a = np.concatenate([[127.0, -126.5], np.arange(-15, 15) + 0.5])[:32]
        return [a, a * 0.5, a * -4.0]
    if qtype == QT.MXFP4:  # amax 7 → e = 127, d = 0.5: grid 0 .5 1 1.5 2 3 4 6; midpoints tie
        mids = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], dtype=np.float32)
        a = np.concatenate([[7.0, 6.0, 0.0], mids, -mids, [-7.0, 5.5, -5.5], mids * 0.999, [1e-3] * 6])[:32]
        b = np.concatenate([[4.0], mids * 0.5, -mids * 0.5, [3.0, -3.0, 0.1] * 6])[:32]  # amax 4 = 2^2 exactly
        c = b.copy()
        c[0] = np.nextafter(np.float32(4.0), np.float32(0.0))  # just below a power of two
        return [a, b, c]
    return []


def special_blocks(qtype, rng):
    """Hand-made 32-element blocks: edge cases every quantizer must agree on."""
    blocks = []
    blocks.append(np.zeros(32))                                   # all zeros → zero scale
    one = np.zeros(32)
    one[5] = 3.7
    blocks.append(one)                                            # a single nonzero value
    one = np.zeros(32)
    one[31] = -0.02
    blocks.append(one)                                            # a single negative value, last
    blocks.append(rng.standard_normal(32) * 1e-30)                # tiny (normal float32) values
    blocks.append(np.full(32, 0.3))                               # constant block (max == min)
    sym = rng.uniform(-1, 1, 32)
    sym[3], sym[20] = -2.0, 2.0
    blocks.append(sym)                                            # largest magnitude twice, both signs
    out = rng.uniform(-1, 1, 32)
    out[17] = 40.0
    blocks.append(out)                                            # one outlier
    blocks.append(rng.standard_normal(32) * 1000.0)               # large values (f16 scale still finite)
    blocks += tie_blocks(qtype)
    return np.stack([np.asarray(b, dtype=np.float32).reshape(32) for b in blocks])


def float_special(qtype):
    """Edge values for the plain float types: NaN payloads, infinities, rounding ties."""
    parts = [np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 1e-30, -1e-45, 3.4028235e38], dtype=np.float32)]
    parts.append(f32_bits([0x7F800001, 0x7FA00000, 0x7FC00000, 0xFFC12345, 0x7F802000, 0xFFFFFFFF, 0x7FBFFFFF]))
    if qtype == QT.F16:
        ulp = 2.0 ** -10
        parts.append(np.array([1 + ulp / 2, 1 + 3 * ulp / 2, 1 + ulp / 2 + 2 ** -20, 2 ** -24, 2 ** -25,
                               3 * 2 ** -25, 5 * 2 ** -25, 2 ** -14 - 2 ** -25, 65504.0, 65519.0, 65520.0,
                               -65520.0, 2 ** -15 * 1.5, 6.1e-5, 1e5], dtype=np.float32))
    if qtype == QT.BF16:
        parts.append(f32_bits([0x3F808000, 0x3F818000, 0x3F808001, 0xBF808000, 0x7F7FFFFF, 0x007F8000,
                               0x00008000, 0x80018000, 0x7F7F8000, 0x7F7F7FFF]))
    v = np.concatenate(parts)
    out = np.full(-(-v.size // 32) * 32, np.float32(0.125), dtype=np.float32)
    out[: v.size] = v
    return out.reshape(-1, 32)


def log2_boundaries(rng):
    """MXFP4: amax at the float32 log2 boundaries numpy's floor(log2(x)) sees, for every binade
    whose exponent stays in range: the smallest x below 2^k whose float32 log2 rounds to k, and
    the float32 just below it."""
    rows = []
    for k in range(-124, 129):
        hi = np.uint32(0x7F800000 if k == 128 else (k + 127) << 23)  # bits of 2^k (inf for k = 128)
        lo = np.uint32((k + 126) << 23)  # bits of 2^(k-1)
        lo_b, hi_b = int(lo), int(hi) - 1
        # smallest b in [lo_b, hi_b] with floor(log2) == k (monotone), else none
        def fl(b):
            return np.floor(np.log2(np.array([b], dtype=np.uint32).view(np.float32)))[0]
        if fl(hi_b) < k:
            thresholds = [hi_b]
        else:
            a, b = lo_b, hi_b
            while a < b:
                m = (a + b) // 2
                if fl(m) >= k:
                    b = m
                else:
                    a = m + 1
            thresholds = [a, a - 1]
        for t in thresholds:
            amax = np.array([t], dtype=np.uint32).view(np.float32)[0]
            row = (rng.uniform(-1, 1, 32) * amax).astype(np.float32)
            row[int(rng.integers(0, 32))] = -amax if rng.integers(0, 2) else amax
            rows.append(row)
    return np.stack(rows)


def record_quantize(rec: Recorder):
    for qtype in QUANTIZABLE:
        seed = 1000 * int(qtype)  # one seed per case: seed + case number

        def rng(i):
            return np.random.default_rng(seed + i), f"seed{seed + i}"

        r, s = rng(1)
        rec.quantize_case(qtype, "normal", f"random-normal-{s}", r.standard_normal((1, 32)))
        r, s = rng(2)
        rec.quantize_case(qtype, "normal", f"random-normal-{s}", r.standard_normal((4, 256)) * 0.02,
                          note="normal(0, 0.02)")
        r, s = rng(3)
        row_scale = 10.0 ** r.uniform(-3, 2, (2, 1))
        rec.quantize_case(qtype, "normal", f"random-normal-{s}", r.standard_normal((2, 4096)) * row_scale,
                          note="normal(0, 1) times a row scale 10^uniform(-3, 2)")
        r, s = rng(4)
        u = r.uniform(-1, 1, (3, 1024))
        u[r.random(u.shape) < 0.01] *= 30.0
        rec.quantize_case(qtype, "uniform-outliers", f"random-uniform-outliers-{s}", u,
                          note="uniform(-1, 1) with 1% outliers x30")
        if qtype in (QT.F32, QT.F16, QT.BF16):
            rec.quantize_case(qtype, "special", "handmade-float-edges", float_special(qtype),
                              note="NaN payloads (signalling included), infinities, signed zeros, rounding ties")
        else:
            r, s = rng(5)
            rec.quantize_case(qtype, "special", f"handmade-blocks-{s}", special_blocks(qtype, r),
                              note="one block each: zeros, one nonzero (twice), ~1e-30, constant, signed max tie, "
                                   "outlier, large values, then exact rounding ties of this type")
        if qtype == QT.MXFP4:
            r, s = rng(6)
            rec.quantize_case(qtype, "log2-boundaries", f"handmade-log2-boundaries-{s}", log2_boundaries(r),
                              note="amax at the float32 log2 boundaries of the shared exponent, every binade")


# ---------------------------------------------------------------- dequantize inputs

def random_f16_scales(rng, n):
    """Finite f16 scales: mostly normal magnitudes, 10% subnormal, both signs."""
    vals = (rng.standard_normal(n) * 0.05).astype(np.float16).view(np.uint16)
    sub = rng.random(n) < 0.1
    vals[sub] = rng.integers(1, 0x400, sub.sum()).astype(np.uint16)
    vals |= (rng.random(n) < 0.2).astype(np.uint16) << np.uint16(15)
    assert np.isfinite(vals.view(np.float16)).all()
    return vals


def random_blocks(qtype, rng, n_blocks):
    bs, ts = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (n_blocks, ts), dtype=np.uint8)
    for off in F16_FIELDS.get(qtype, []):
        raw[:, off:off + 2] = random_f16_scales(rng, n_blocks).reshape(-1, 1).view(np.uint8)
    if qtype == QT.MXFP4:
        raw[:, 0] = rng.integers(100, 156, n_blocks)  # shared exponents 2^-28 .. 2^27: finite results
    return raw


def record_dequantize_random(rec: Recorder):
    for qtype in DEQUANTIZABLE:
        bs, ts = GGML_QUANT_SIZES[qtype]
        seed = 3000 + 10 * int(qtype)
        base = max(bs, 32)
        shapes = [(base, 1), (256 if bs <= 32 else 512, 4), (4096, 2)]
        for i, (ne0, ne1) in enumerate(shapes, start=1):
            rng = np.random.default_rng(seed + i)
            n_blocks = ne0 * ne1 // bs
            if bs == 1:  # plain floats: random bit patterns (NaNs with payloads, infinities, subnormals)
                raw = rng.integers(0, 256, (n_blocks * ts,), dtype=np.uint8)
                note = "random bit patterns"
            else:
                raw = random_blocks(qtype, rng, n_blocks)
                note = "random bytes with finite f16 scales" if qtype != QT.MXFP4 else "random bytes, e in 100..155"
            rec.dequantize_case(qtype, f"random-{ne0}x{ne1}-s{seed + i}", f"random-blocks-seed{seed + i}",
                                raw, ne0, ne1, note=note)
    for qtype in (QT.F16, QT.BF16):
        raw = np.arange(65536, dtype=np.uint16).view(np.uint8)
        rec.dequantize_case(qtype, "exhaustive-65536x1", "exhaustive", raw, 65536, 1,
                            note="every 16-bit pattern once")
    rng = np.random.default_rng(4000)
    raw = random_blocks(QT.MXFP4, rng, 256)
    raw[:, 0] = np.arange(256, dtype=np.uint8)
    rec.dequantize_case(QT.MXFP4, "every-exponent-32x256", "random-blocks-seed4000", raw, 32, 256,
                        note="block i has shared exponent e = i (0..255, infinities included)")


def record_dequantize_models(rec: Recorder, models_dir: Path):
    for fname in MODELS:
        path = models_dir / fname
        if not path.exists():
            print(f"skip: {path} not found (fetch it with: python3 fixtures/fetch.py)", file=sys.stderr)
            continue
        reader = GGUFReader(str(path))
        seen = set()
        short = fname.split(".gguf")[0].split("-q4")[0].split(".Q4")[0].lower()
        for t in reader.tensors:
            qtype = QT(int(t.tensor_type))
            if qtype in seen:
                continue
            seen.add(qtype)
            if qtype not in DEQUANTIZABLE:
                print(f"skip: {fname}: {t.name}: {qtype.name} not handled by the engine", file=sys.stderr)
                continue
            dims = [int(x) for x in t.shape]  # GGUF order, ne0 first
            ne0 = dims[0]
            n_rows_total = int(np.prod(dims[1:])) if len(dims) > 1 else 1
            rows = min(2, n_rows_total)
            raw = np.asarray(t.data).view(np.uint8).reshape(n_rows_total, -1)[:rows]
            tag = t.name.replace(".weight", "").replace(".", "_").lower()
            rec.dequantize_case(qtype, f"model-{short}-{tag}-rows0-{rows}",
                                f"model:{fname}:{t.name}:rows0-{rows}", raw, ne0, rows,
                                note=f"first {rows} row(s) of a real tensor of shape {dims}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=CACHE / "models")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for p in list(OUT.glob("*.yaml")) + list(OUT.glob("*.npy")):
        p.unlink()
    rec = Recorder(sys.argv[1:])
    # Overflow to inf is part of some cases (f16 65520, MXFP4 at the top exponents): no warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        record_quantize(rec)
        record_dequantize_random(rec)
        record_dequantize_models(rec, args.models_dir)
    total = sum(p.stat().st_size for p in OUT.iterdir() if p.is_file())
    for (ty, op), n in sorted(rec.counts.items()):
        print(f"{ty:7s} {op:10s} {n}")
    print(f"{len(rec.names)} cases, {total / 1e6:.2f} MB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
