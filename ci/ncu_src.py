#!/usr/bin/env python3
"""Summarise ncu's source page (`--page source --print-source sass --csv`, the SourceCounters
section) for the decode kernels: per kernel launch, how many SASS instructions its text has, how
many it executed (and their bytes: the code a launch fetches, 16 bytes an instruction), and the
instructions with the most warp-stall samples. The question behind it (GPU.md seventeenth block):
does a decode layer's executed code fit the SM's instruction cache (kernels/probe/icache.cu: a
32 KB kernel stays cached across launches, 64 KB does not)? Used by ci/gpu-quick.sh NCU_SRC=1."""
import csv
import sys

text = open(sys.argv[1], errors="replace").read().splitlines()
# ncu prints one table per profiled kernel, each after a line naming the kernel; keep it simple:
# split on header rows (those holding "Address" or "# Address") and remember the last non-CSV
# line before each as the kernel's name.
blocks, name, cur = [], "?", None
for line in text:
    if not line.startswith('"'):
        if line.strip():
            name = line.strip()[:90]
        continue
    row = next(csv.reader([line]))
    if any("Address" in c for c in row) and any("Source" in c for c in row):
        cur = {"name": name, "hdr": row, "rows": []}
        blocks.append(cur)
    elif cur is not None:
        cur["rows"].append(row)


def col(hdr, *keys):
    for k in keys:
        for i, c in enumerate(hdr):
            if c.strip().lower() == k.lower():
                return i
    for k in keys:
        for i, c in enumerate(hdr):
            if k.lower() in c.lower():
                return i
    return None


def num(v):
    try:
        return float(v.replace(",", ""))
    except (ValueError, AttributeError):
        return 0.0


for b in blocks:
    h = b["hdr"]
    src = col(h, "Source")
    ex = col(h, "Instructions Executed", "Warp Instructions Executed")
    st = col(h, "Warp Stall Sampling (All Samples)", "Warp Stall Sampling (All Cycles)", "Sampling Data (All)")
    rows = b["rows"]
    n_ex = sum(1 for r in rows if ex is not None and num(r[ex]) > 0)
    print("src %-60s sass %6d  executed %6d (%6.1f KB)" % (b["name"][:60], len(rows), n_ex, n_ex * 16 / 1024))
    if st is not None:
        tot = sum(num(r[st]) for r in rows) or 1.0
        for r in sorted(rows, key=lambda r: -num(r[st]))[:8]:
            print("      %5.1f%%  %s" % (100 * num(r[st]) / tot, (r[src] if src is not None else "?")[:80]))
if not blocks:
    print("src: no source tables in %s" % sys.argv[1])
