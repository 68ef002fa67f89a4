#!/usr/bin/env python3
"""Sum up the phase clocks that ops.cu prints under ORCD_NVRTC_DEFINES="MV_PROF ATT1_PROF".

Reads a bench's output (stdin or a file), groups the `mvprof` lines by kernel shape (C, R, PAIR,
U, k, norm, rope) and the `att1prof` lines as one group, and prints the median SM clocks of each
phase (and µs at --mhz). The first --skip lines of each group (the prefill and warm-up) are
dropped. Thread 0 of one block a launch: a phase's clocks are that thread's, not the kernel's.
"""
import argparse
import collections
import re
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", help="bench output (default stdin)")
    ap.add_argument("--mhz", type=float, default=1755.0, help="SM clock for the µs column")
    ap.add_argument("--skip", type=int, default=8, help="lines of each group dropped first")
    a = ap.parse_args()
    src = open(a.file, encoding="utf-8", errors="replace") if a.file else sys.stdin
    groups: dict[str, list[dict[str, int]]] = collections.defaultdict(list)
    for line in src:
        line = line.strip()
        if line.startswith("mvprof ") or line.startswith("att1prof "):
            toks = line.split()
            kind, rest = toks[0], toks[1:]
            shape = [t for t in rest if re.fullmatch(r"[CRPU]\d+", t)]
            pairs = [t for t in rest if not re.fullmatch(r"[CRPU]\d+", t)]
            vals = dict(zip(pairs[0::2], (int(v) for v in pairs[1::2])))
            if kind == "mvprof":
                key = "mv %s k=%d norm=%d rope=%d" % ("".join(shape), vals.pop("k"), vals.pop("norm"), vals.pop("rope"))
            else:
                vals.pop("staged", None)
                key = "attention (1 row)"
            groups[key].append(vals)
    if not groups:
        print("prof: no mvprof / att1prof lines")
        return 1
    for key, rows in sorted(groups.items()):
        rows = rows[a.skip:] or rows
        phases = [p for p in rows[0] if p != "nk"]
        med = {p: statistics.median(r[p] for r in rows if p in r) for p in phases}
        tot = sum(med.values())
        extra = " nk %d..%d" % (min(r["nk"] for r in rows), max(r["nk"] for r in rows)) if "nk" in rows[0] else ""
        print("prof %-34s n %4d%s: %s | total %.0f clk = %.2f us" % (
            key, len(rows), extra, " ".join("%s %.0f" % (p, v) for p, v in med.items()), tot, tot / a.mhz))
    return 0


if __name__ == "__main__":
    sys.exit(main())
