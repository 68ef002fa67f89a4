#!/usr/bin/env python3
"""Summarise ncu's source page (`--page source --print-source sass --csv`, the SourceCounters
section) for the decode kernels: per kernel launch, how many SASS instructions its text has, how
many it executed (and their bytes: the code a launch fetches, 16 bytes an instruction), and the
instructions with the most warp-stall samples. The question behind it (GPU.md seventeenth block):
does a decode layer's executed code fit the SM's instruction cache (kernels/probe/icache.cu: a
32 KB kernel stays cached across launches, 64 KB does not)? Used by ci/gpu-quick.sh NCU_SRC=1."""
import csv
import sys

def read_tables(path):
    """ncu's source page as one table per profiled kernel: {"name", "hdr", "rows"}. ncu prints
    each after a `"Kernel Name","…"` line; a table starts at its header row (holding "Address"
    and "Source"), and its rows are the lines of the header's width."""
    tables, name, cur = [], "?", None
    for line in open(path, errors="replace").read().splitlines():
        if not line.startswith('"'):
            if line.strip():
                name = line.strip()[:90]
            continue
        row = next(csv.reader([line]))
        if row and row[0] == "Kernel Name":
            name = (row[1] if len(row) > 1 else "?")[:90]
            continue
        if any("Address" in c for c in row) and any("Source" in c for c in row):
            cur = {"name": name, "hdr": row, "rows": []}
            tables.append(cur)
        elif cur is not None and len(row) == len(cur["hdr"]):
            cur["rows"].append(row)
    return tables


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


def main():
    blocks = read_tables(sys.argv[1])
    for b in blocks:
        h = b["hdr"]
        src = col(h, "Source")
        ex = col(h, "Instructions Executed", "Warp Instructions Executed")
        st = col(h, "Warp Stall Sampling (All Samples)", "Warp Stall Sampling (All Cycles)", "Sampling Data (All)")
        rows = b["rows"]
        n_ex = sum(1 for r in rows if ex is not None and num(r[ex]) > 0)
        print("src %-60s sass %6d  executed %6d (%6.1f KB)" % (b["name"][:60], len(rows), n_ex, n_ex * 16 / 1024))
        # The kernel's stall samples by reason (ncu's per-instruction `stall_*` columns, summed).
        reasons = [(i, c) for i, c in enumerate(h) if c.startswith("stall_") and "Not Issued" not in c]
        rs = sorted(((sum(num(r[i]) for r in rows), c[6:]) for i, c in reasons), reverse=True)
        rt = sum(v for v, _ in rs) or 1.0
        if rs:
            print("      stalls: " + ", ".join("%s %.0f%%" % (c, 100 * v / rt) for v, c in rs[:6]))
        if st is not None:
            tot = sum(num(r[st]) for r in rows) or 1.0
            for r in sorted(rows, key=lambda r: -num(r[st]))[:8]:
                print("      %5.1f%%  %s" % (100 * num(r[st]) / tot, (r[src] if src is not None else "?")[:80]))
    if not blocks:
        print("src: no source tables in %s" % sys.argv[1])


if __name__ == "__main__":
    main()
