#!/usr/bin/env python3
"""Bit-compare two worker-orcd binaries on every `models` case (issue 10's acceptance: a refactor
moves no bits). For each goldens/models/*.yaml: the case's file (a fetched model, or the synthetic
fixture regenerated with the case's `fixture_command`), its tokens and numerics; both binaries run
`logits --tokens ... --numerics N --out`, and the two .npy files must be byte-identical.

    python3 ci/compare_logits.py OLD_BIN NEW_BIN [--fixtures-bin target/release/orcd-fixtures]
Exit 0 when every case is identical; prints one line per case.
"""
import argparse, hashlib, os, re, shlex, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("ORCD_CACHE", Path.home() / ".cache" / "orcd"))


def field(text, key):
    m = re.search(rf"^{key}:\s*(.*?)\s*(#.*)?$", text, re.M)
    return m.group(1).strip().strip('"') if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--fixtures-bin", default=str(ROOT / "target/release/orcd-fixtures"))
    ap.add_argument("--filter", default="")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="orcd-cmp-"))
    same = differ = skipped = 0
    for case in sorted((ROOT / "goldens/models").glob("*.yaml")):
        if a.filter not in case.name:
            continue
        t = case.read_text()
        numerics = field(t, "numerics")
        tokens = re.search(r"^tokens:\s*\[(.*?)\]", t, re.M).group(1).replace(" ", "")
        f = field(t, "file")
        if f:
            path = CACHE / f
        else:
            cmd = field(t, "fixture_command")
            args = shlex.split(cmd.replace("~", str(Path.home())))
            out_i = args.index("--out") + 1
            path = tmp / (field(t, "fixture").split()[0] + ".gguf")
            args[out_i] = str(path)
            if not path.exists():
                subprocess.run([a.fixtures_bin] + args[1:], check=True, capture_output=True)
        if not path.exists():
            print(f"NOT RUN {case.stem}: {path} missing")
            skipped += 1
            continue
        outs = []
        for b, tag in ((a.old, "old"), (a.new, "new")):
            o = tmp / f"{case.stem}.{tag}.npy"
            r = subprocess.run([b, "logits", "--model", str(path), "--tokens", tokens, "--numerics", numerics,
                                "--backend", "cpu", "--out", str(o)], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL {case.stem}: {tag} binary: {r.stderr.strip()}")
                outs.append(None)
            else:
                outs.append(hashlib.sha256(o.read_bytes()).hexdigest())
        if outs[0] is not None and outs[0] == outs[1]:
            same += 1
            print(f"IDENTICAL {case.stem} ({numerics}) sha256 {outs[0][:16]}")
        else:
            differ += 1
            print(f"DIFFERENT {case.stem} ({numerics}) {outs}")
    print(f"{same} identical, {differ} different, {skipped} not run")
    sys.exit(1 if differ or skipped else 0)


if __name__ == "__main__":
    main()
