#!/usr/bin/env bash
# There (the GPU machine), one call: where a decode step's time goes on the defaults — ncu's time
# of every launch (graphs off: ranks kernels, overstates each), grouped by kernel and grid size
# (ci/ncu_grid.py), µs a step: STEPS_B1 batch-1 steps after a 4-token prompt, then STEPS_B64
# steps of 64 sequences after 128-token prompts (STEPS_B64=0: none). Qwen2.5-0.5B-shape Q8_0 (or
# MODEL=path: a real file assembled there), fast numerics; EXTRA_ENV="VAR=V …": a switch's step.
#   OUT=dir bash ci/gpu-ncu-steps.sh     (carry target/gpu-pack; the vocabulary assembled)
set -u
cd "$(dirname "$0")/.."
source ci/gpu-min.sh
bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=${MODEL:-~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf}
timeout 240 "$B/worker-orcd" bench --model "$M" --backend cuda --prompt-tokens 4 --gen-tokens 2 --repeats 1 >/dev/null 2>&1
prof() {  # label steps bench-args…
    local l=$1 s=$2; shift 2
    env ${EXTRA_ENV:-} ORCD_CUDA_GRAPHS=0 timeout 200 ncu --clock-control none --cache-control none --csv \
        --metrics gpu__time_duration.sum,launch__grid_size "$B/worker-orcd" bench --model "$M" --backend cuda \
        --numerics fast --repeats 1 "$@" > "$OUT/ncu-$l.csv" 2> "$OUT/ncu-$l.err"
    python3 ci/ncu_grid.py "$OUT/ncu-$l.csv" "$s" | sed "s/^/$l /" | head -${TOP:-24} || tail -3 "$OUT/ncu-$l.err"
}
prof b1 "${STEPS_B1:-16}" --prompt-tokens 4 --gen-tokens "${STEPS_B1:-16}"
[[ ${STEPS_B64:-8} == 0 ]] || prof b64 "${STEPS_B64:-8}" --prompt-tokens 128 --gen-tokens "${STEPS_B64:-8}" --batch 64
