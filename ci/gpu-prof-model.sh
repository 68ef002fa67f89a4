#!/usr/bin/env bash
# There (the GPU machine): where a model's batch-1 decode and 512-token prefill spend their time —
# ncu's duration of every launch (graphs off, clocks and caches as they run), grouped by kernel
# and grid size by ci/ncu_grid.py (the grid tells a prompt's launches from a step's).
#
#   OUT=dir bash ci/gpu-prof-model.sh MODEL.gguf LABEL        # GEN=16 decode steps; PP=0: no prefill
#
# Needs ncu (the GPU machine's CUDA toolkit) and the unpacked binaries ($ORCD_GPU_BIN, default
# target/gpu-min from ci/gpu-quick.sh). Writes $OUT/ncu-LABEL-{tg,pp}.csv and prints the tables.
set -u
cd "$(dirname "$0")/.."
B=${ORCD_GPU_BIN:-target/gpu-min}
M=$1
L=$2
GEN=${GEN:-16}
NUM=${NUMERICS:-fast}
run() {  # $1 tag, then bench's arguments
    local tag=$1; shift
    ORCD_CUDA_GRAPHS=0 timeout ${NCU_TIMEOUT:-200} ncu --clock-control none --cache-control none --csv \
        --metrics gpu__time_duration.sum,launch__grid_size $B/worker-orcd bench --model "$M" --backend cuda \
        --numerics $NUM --repeats 1 "$@" > "$OUT/ncu-$L-$tag.csv" 2> "$OUT/ncu-$L-$tag.err"
}
run tg --prompt-tokens 4 --gen-tokens $GEN
python3 ci/ncu_grid.py "$OUT/ncu-$L-tg.csv" $GEN | head -${ROWS:-30} | sed "s/^/$L tg: /" || tail -3 "$OUT/ncu-$L-tg.err"
if [[ ${PP:-1} == 1 ]]; then
    run pp --prompt-tokens 512 --gen-tokens 0
    python3 ci/ncu_grid.py "$OUT/ncu-$L-pp.csv" | head -${ROWS:-30} | sed "s/^/$L pp512: /" || tail -3 "$OUT/ncu-$L-pp.err"
fi
