#!/usr/bin/env bash
# There (the GPU machine), after carrying ["target/gpu-pack", "target/parts/vocab"]: where a
# 16-sequence decode step's time goes (issue 13 item 5; docs/perf/GPU.md, twelfth block). The
# Qwen2.5-0.5B-shape Q8_0 file, `bench --batch 16 --prompt-tokens 128 --gen-tokens 32`:
#   1. ncu (graphs off) on the batched mat-vec launches: time, DRAM bytes, L2 bytes, instructions,
#      warps active, registers, grouped by kernel and grid size;
#   2. the same for attention, rope, quant_x_q8, the head and argmax (grid size separates the
#      16-row decode launches from the prefill's and the single-sequence bench's);
#   3. ORCD_CUDA_PROFILE=1 (every launch synchronised and timed: ~10 us added to each);
#   4. the step unprofiled;
#   5. ncu's stall reasons for the batched mat-vec and a 16-row attention launch (the grid size
#      printed says which launch it caught).
# CSVs under $OUT (or /tmp).
# Written in stop 37 and checked against a made-up ncu CSV here; not yet run on a card.
set -u
cd "$(dirname "$0")/.."
O=${OUT:-/tmp}; B=target/gpu-min; rm -rf $B && mkdir -p $B && tar -xJf target/gpu-pack/bin.tar.xz -C $B; export ORCD_GPU_BIN=$B
nvidia-smi --query-gpu=name --format=csv,noheader; cat $B/COMMIT
bash ci/gpu-run.sh assemble >/dev/null 2>&1; bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
run() { $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 128 --gen-tokens 32 --batch 16 --repeats 1 "$@"; }
met=launch__grid_size,gpu__time_duration.sum,dram__bytes_read.sum,lts__t_bytes.sum,smsp__inst_executed.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread
p() { python3 - "$1" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
h = rows[0]; k = h.index("Kernel Name"); n = h.index("Metric Name"); v = h.index("Metric Value"); i = h.index("ID")
per = collections.defaultdict(lambda: collections.defaultdict(list))
for r in rows[1:]:
    per[(r[k].split("(")[0], r[i])][r[n]].append(float(r[v].replace(",", "")))
g = collections.defaultdict(lambda: collections.defaultdict(list))
for (kn, _), m in per.items():
    for a, b in m.items(): g[(kn, m["launch__grid_size"][0])][a] += b
per = g
for (kn, gs), m in sorted(per.items()):
    print("%-16s grid %6d n %3d " % (kn[:16], gs, len(m["gpu__time_duration.sum"])) + "  ".join("%s %.4g" % (a.split("__")[1][:18], sum(b)/len(b)) for a, b in m.items()))
PY
}
ORCD_CUDA_GRAPHS=0 timeout 60 ncu --clock-control none --cache-control none --csv --metrics $met --kernel-name regex:'^(matvecq_q8_0|matvecqg_q8_0)$' --launch-count 96 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 128 --gen-tokens 32 --batch 16 --repeats 1 > $O/n1.csv 2>/dev/null; p $O/n1.csv
ORCD_CUDA_GRAPHS=0 timeout 60 ncu --clock-control none --cache-control none --csv --metrics $met --kernel-name regex:'^(attention|rope|quant_x_q8|argmax_part|matvecq1_q8_0|argmax_final)$' --launch-skip 1500 --launch-count 500 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 128 --gen-tokens 32 --batch 16 --repeats 1 > $O/n2.csv 2>/dev/null; p $O/n2.csv
ORCD_CUDA_PROFILE=1 timeout 40 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 128 --gen-tokens 32 --batch 16 --repeats 1 --json > $O/pr.json 2>/dev/null
python3 -c 'import json,sys
j = json.load(open(sys.argv[1])); p = j.get("kernel_profile") or []
print("b16:", j.get("batched"))
for r in p[:16]: print("profile %-20s n %6d  %8.3f ms" % (r["kernel"][:20], r["launches"], r["seconds"] * 1e3))' $O/pr.json
run --json | python3 -c 'import json,sys; print("plain", json.load(sys.stdin)["batched"])'
# Stall reasons of the batched mat-vec and of a 16-row attention launch (warp-state sampling).
for sel in "matvecq_q8_0|matvecqg_q8_0:0:4" "attention:780:2"; do
  IFS=: read -r rx skip cnt <<<"$sel"
  ORCD_CUDA_GRAPHS=0 timeout 90 ncu --clock-control none --csv --page details --section SpeedOfLight --section WarpStateStats \
    --section Occupancy --section LaunchStats --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    --kernel-name regex:"^($rx)\$" --launch-skip $skip --launch-count $cnt $B/worker-orcd bench --model $M --backend cuda \
    --prompt-tokens 128 --gen-tokens 32 --batch 16 --repeats 1 > $O/stall-$skip.csv 2>/dev/null; python3 ci/ncu_stall.py $O/stall-$skip.csv
done
