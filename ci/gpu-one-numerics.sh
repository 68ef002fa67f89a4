#!/usr/bin/env bash
# There (the GPU machine), one call on a fresh machine (~400 s on an H100): NVRTC builds of the
# device's module and both one-numerics modules at once; the batch-1 A/B of
# ORCD_CUDA_ONE_NUMERICS=1 on the Qwen2.5-0.5B-shape Q8_0 file (ci/gpu-ab-b1.sh, fast and exact);
# then the ops suite under it beside the default gate (ops, models). Carry
# ["target/gpu-pack", "target/parts/vocab/part-00"]; written in stop 54 for a card that did not
# come (docs/perf/GPU.md, twenty-ninth block).
set -u
export ORCD_GPU_BIN=target/gpu-min
source ci/gpu-min.sh
T0=$SECONDS
bash ci/gpu-run.sh assemble > /tmp/assemble.log 2>&1; tail -1 /tmp/assemble.log
bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
for v in 1:fast 1:exact 0:fast; do
    ORCD_CUDA_ONE_NUMERICS=${v%%:*} timeout 300 "$B/worker-orcd" bench --model "$M" --backend cuda --numerics ${v#*:} \
        --prompt-tokens 4 --gen-tokens 2 --repeats 1 > /tmp/pre-${v/:/-}.log 2>&1 &
done
wait
echo "modules built at $((SECONDS - T0)) s"
SWITCHES="ORCD_CUDA_ONE_NUMERICS=1" NUMERICS="fast exact" OUT=$OUT timeout 200 bash ci/gpu-ab-b1.sh 2>&1 | grep -v "^ *$" | tail -14
echo "A/B done at $((SECONDS - T0)) s"
left=$((560 - (SECONDS - T0)))
(ORCD_CUDA_ONE_NUMERICS=1 timeout $left "$B/orcd-gate" run --suite ops --backend cuda --backend cuda-fast --out /tmp/ops-one > /tmp/ops-one.log 2>&1; echo "rc $?" >> /tmp/ops-one.log) &
mkdir -p "$OUT/g"
OUT=$OUT/g timeout $left bash ci/gpu-run.sh gate ops models 2>&1 | tail -14
wait
echo "== ops under ORCD_CUDA_ONE_NUMERICS=1"; tail -2 /tmp/ops-one.log; grep -m5 "FAIL" /tmp/ops-one.log
echo "done at $((SECONDS - T0)) s"
