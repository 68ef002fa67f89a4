#!/usr/bin/env python3
"""ncu's per-launch time (gpu__time_duration, launch__grid_size; --csv, one row per metric)
grouped by kernel and grid size: launches, mean µs, total ms, and µs a decode step where the
second argument gives the steps (a class's launches / steps ≈ its launches a step).

Usage: ncu_grid.py ncu.csv [steps]
"""
import collections
import csv
import sys

SCALE = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}


def main() -> None:
    rows = [r for r in csv.reader(line for line in open(sys.argv[1]) if line.startswith('"'))]
    if not rows:
        sys.exit("no ncu rows")
    h = rows[0]
    k, i, n, v, u = (h.index(c) for c in ("Kernel Name", "ID", "Metric Name", "Metric Value", "Metric Unit"))
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    per = collections.defaultdict(dict)
    for r in rows[1:]:
        val = float(r[v].replace(",", ""))
        if r[n] == "gpu__time_duration.sum":
            val *= SCALE.get(r[u], float("nan"))
        per[r[i]][r[n]] = val
        per[r[i]]["kernel"] = r[k].split("(")[0]
    g = collections.defaultdict(list)
    for m in per.values():
        if "gpu__time_duration.sum" in m:
            g[(m["kernel"], int(m.get("launch__grid_size", 0)))].append(m["gpu__time_duration.sum"])
    tot = sum(sum(x) for x in g.values())
    print("ncu grid: %d launches, %.2f ms" % (sum(len(x) for x in g.values()), tot / 1e3))
    for (kn, gs), x in sorted(g.items(), key=lambda e: -sum(e[1]))[:40]:
        line = "ncu %-22s grid %7d n %5d mean %8.2f us total %8.3f ms" % (kn[:22], gs, len(x), sum(x) / len(x), sum(x) / 1e3)
        if steps:
            line += "  %7.1f us/step" % (sum(x) / steps)
        print(line)


if __name__ == "__main__":
    main()
