#!/usr/bin/env python3
"""Record GGUF goldens with gguf-py (the independent reference reader and dequantizer).

For every GGUF file it is given (default: the two real models, every ggml-vocab-*.gguf of the
llama-cpp-python source distribution, and the synthetic valid fixtures of orcd-fixtures), it writes
  goldens/gguf/inspect/<name>.yaml  header, every metadata entry (scalars with exact bits, arrays as
                                    length + sha256 of their element encoding), every tensor info;
  goldens/gguf/tensors/<name>.yaml  per tensor: sha256 of gguf-py's float32 dequantization
                                    (little-endian, GGUF order), plus sum and first values to
                                    make a mismatch readable.

Reference: gguf-py (pip `gguf`, version pinned in requirements.txt). Files come from the fetch cache
(python3 fixtures/fetch.py); synthetic fixtures from `cargo run -p orcd-fixtures -- valid`.
Deterministic: same inputs, same goldens.

Usage: python3 goldens/recorders/record_gguf.py [--no-tensors] [--only NAME_SUBSTRING]
"""
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "goldens" / "gguf"
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))
COMMAND = "python3 goldens/recorders/record_gguf.py " + " ".join(sys.argv[1:])
VERSION = importlib.metadata.version("gguf")

SCALAR_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def header():
    return {
        "reference": "gguf-py",
        "reference_version": VERSION,
        "numpy_version": np.__version__,
        "command": COMMAND.strip(),
    }


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for b in iter(lambda: f.read(1 << 22), b""):
            h.update(b)
    return h.hexdigest()


def array_elements(field):
    """(element type, count, encoding of the elements) of an array field, from the raw parts gguf-py
    parsed: [key length, key, type, element type, count, elements...]. The elements' encoding is
    the concatenation of their parts (string lengths, bytes, nested headers), exactly as in the file."""
    etype = GGUFValueType(int(field.parts[3][0]))
    count = int(field.parts[4][0])
    body = b"".join(bytes(p.tobytes()) for p in field.parts[5:])
    return etype, count, body


def record_inspect(path: Path, name: str, source: dict):
    r = GGUFReader(path)
    meta = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        t = field.types[0]
        entry = {"key": key}
        if t == GGUFValueType.ARRAY:
            etype, n, body = array_elements(field)
            entry["type"] = f"array[{SCALAR_NAMES[etype]}; {n}]"
            entry["sha256"] = hashlib.sha256(body).hexdigest()
        elif t == GGUFValueType.STRING:
            entry["type"] = "string"
            entry["value"] = bytes(field.parts[field.data[0]]).decode("utf-8")
        else:
            arr = field.parts[field.data[0]]
            entry["type"] = SCALAR_NAMES[t]
            if t in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
                entry["bits"] = "0x" + arr.tobytes()[::-1].hex()
                entry["value"] = float(arr[0])
            elif t == GGUFValueType.BOOL:
                entry["value"] = bool(arr[0])
            else:
                entry["value"] = int(arr[0])
        meta.append(entry)
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset - r.data_offset),
        })
    doc = {
        "suite": "gguf",
        "check": "inspect",
        "name": f"inspect-{name}",
        **source,
        "file_sha256": sha256_file(path),
        "tolerance": "exact (every key, type, value bit, array hash, tensor info)",
        **header(),
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "metadata": meta,
        "tensors": tensors,
    }
    dst = OUT / "inspect" / f"{name}.yaml"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))
    return r


def record_tensors(r, path: Path, name: str, source: dict):
    if not r.tensors:
        return
    rows = []
    for i, t in enumerate(r.tensors):
        if (i + 1) % 50 == 0 or i + 1 == len(r.tensors):
            print(f"[record_gguf]   {name}: tensor {i + 1}/{len(r.tensors)}", flush=True)
        deq = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        b = np.ascontiguousarray(deq).astype("<f4").tobytes()
        flat = deq.reshape(-1)
        rows.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "n_elements": int(t.n_elements),
            "sha256": hashlib.sha256(b).hexdigest(),
            "sum": float(flat.astype(np.float64).sum()),
            "first": [float(x) for x in flat[:4]],
        })
    doc = {
        "suite": "gguf",
        "check": "tensors",
        "name": f"tensors-{name}",
        **source,
        "file_sha256": sha256_file(path),
        "tolerance": "bit-exact (sha256 of the f32 dequantization; gguf-py's quants are checked bit-exact against ggml)",
        **header(),
        "tensors": rows,
    }
    dst = OUT / "tensors" / f"{name}.yaml"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))


# Byte offsets of the f16 scale fields per K-quant block (ggml-common.h layouts); random block bytes
# get finite scales there so the dequantization is finite.
F16_FIELDS = {"Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def write_all_types(path: Path):
    """A GGUF written by gguf-py's own GGUFWriter holding one [256, 4] tensor of every type the
    engine dequantizes: quantizable types from seeded normal data via gguf.quants.quantize, K-quants
    as seeded random blocks with finite f16 scales. Checks our reader on an independent writer's file
    and `worker-orcd tensor` on every type."""
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.constants import GGML_QUANT_SIZES
    from gguf.quants import quantize

    rng = np.random.default_rng(20261126)
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name("orcd all-types fixture (written by gguf-py)")
    for name in ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4",
                 "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]:
        t = T[name]
        x = rng.standard_normal((4, 256)).astype(np.float32)
        if name == "F32":
            w.add_tensor(f"t.{name.lower()}", x)
            continue
        if name in F16_FIELDS:
            bs, ts = GGML_QUANT_SIZES[t]
            raw = rng.integers(0, 256, size=(4, 256 // bs * ts), dtype=np.uint8)
            blocks = raw.reshape(-1, ts)
            for off in F16_FIELDS[name]:
                scale = (rng.uniform(0.001, 0.1, size=blocks.shape[0])).astype(np.float16)
                blocks[:, off:off + 2] = scale.view(np.uint8).reshape(-1, 2)
            w.add_tensor(f"t.{name.lower()}", raw, raw_dtype=t)
        else:
            q = quantize(x, t)
            w.add_tensor(f"t.{name.lower()}", q, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def slug(s: str) -> str:
    return s.lower().replace(".gguf", "").replace("_", "-").replace(".", "-")


def main():
    no_tensors = "--no-tensors" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    jobs = []
    for m in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]:
        jobs.append((CACHE / "models" / m, slug(m), {"file": f"models/{m}"}, True))
    vocab_dir = CACHE / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "models"
    for v in sorted(vocab_dir.glob("ggml-vocab-*.gguf")):
        rel = v.relative_to(CACHE).as_posix()
        jobs.append((v, slug(v.name), {"file": rel}, False))
    files = OUT / "files"
    files.mkdir(parents=True, exist_ok=True)
    all_types = files / "all-types.gguf"
    write_all_types(all_types)
    jobs.append((all_types, "all-types", {"repo_file": "gguf/files/all-types.gguf"}, True))
    tmp = Path(tempfile.mkdtemp(prefix="orcd-valid-"))
    try:
        subprocess.run(["cargo", "run", "-q", "-p", "orcd-fixtures", "--", "valid", "--out", str(tmp), "--seed", "1"],
                       cwd=ROOT, check=True)
        for f in sorted(tmp.glob("*.gguf")):
            fixture = f.stem
            jobs.append((f, fixture, {"fixture": fixture}, True))
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"[record_gguf] skipping synthetic fixtures: {e}", flush=True)
    for path, name, source, tensors in jobs:
        if only and only not in name:
            continue
        if not path.exists():
            print(f"[record_gguf] skip (missing, run python3 fixtures/fetch.py): {path}", flush=True)
            continue
        print(f"[record_gguf] {name}", flush=True)
        r = record_inspect(path, name, source)
        if tensors and not no_tensors:
            record_tensors(r, path, name, source)


if __name__ == "__main__":
    main()
