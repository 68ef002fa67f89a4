#!/usr/bin/env python3
"""Summarise an ncu `--page details --csv` file (SpeedOfLight, WarpStateStats, Occupancy,
LaunchStats and the per-issue stall ratios): one line a launch (duration, DRAM and memory
throughput, occupancy, grid, registers), then its six largest stall reasons. Used by
ci/gpu-quick.sh (NCU_STALL=1) and ci/gpu-prof-batched.sh."""
import collections
import csv
import sys

rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
h = rows[0]
ki, ii, mi, vi = h.index("Kernel Name"), h.index("ID"), h.index("Metric Name"), h.index("Metric Value")
per = collections.OrderedDict()
for r in rows[1:]:
    per.setdefault((r[ii], r[ki].split("(")[0]), {})[r[mi]] = r[vi]
for (i, k), m in per.items():
    dur = m.get("Duration", "?"); mem = m.get("Memory Throughput", "?"); dram = m.get("DRAM Throughput", "?")
    occ = m.get("Achieved Occupancy", "?"); grid = m.get("Grid Size", "?"); regs = m.get("Registers Per Thread", "?")
    st = sorted(((float(v.replace(",", "")), n) for n, v in m.items() if "issue_stalled" in n or "Warp Cycles Per" in n), reverse=True)[:6]
    print("stall %-3s %-22s dur %-7s dram%% %-6s mem%% %-6s occ %-6s grid %-6s regs %-4s" % (i, k[:22], dur, dram, mem, occ, grid, regs))
    for v, n in st:
        print("      %-50s %s" % (n.replace("smsp__average_warps_issue_stalled_", "")[:50], v))
