#!/usr/bin/env bash
# There (the GPU machine), a fresh machine's first call (~450 s on an H100): the vocabulary and
# the synthetic Qwen2.5-0.5B-shape Q8_0 file; every switch's NVRTC build at once; the batch-1
# A/B of SWITCHES against the default (ci/gpu-ab-b1.sh, fast and exact); then the default gate
# (ops, models) beside the `ops` suite under each of GATE_UNDER (its failures listed). Carry
# ["target/gpu-pack", "target/parts/vocab/part-00"].
#
#   SWITCHES="ORCD_NVRTC_DEFINES=ATT_AHEAD ORCD_CUDA_ATT_STAGE_WIDE=1 ORCD_CUDA_ONE_NUMERICS=1" \
#   GATE_UNDER="ORCD_NVRTC_DEFINES=ATT_AHEAD ORCD_CUDA_ONE_NUMERICS=1" bash ci/gpu-first-call.sh
#
# Every build is split in ORCD_NVRTC_SPLIT programs (default the machine's threads up to 8): the
# gate runs the kernels from those modules.
set -u
export ORCD_GPU_BIN=target/gpu-min
source ci/gpu-min.sh
: "${SWITCHES:?SWITCHES=ENV=V,…}"
GATE_UNDER=${GATE_UNDER:-$SWITCHES}
T0=$SECONDS
bash ci/gpu-run.sh assemble > /tmp/assemble.log 2>&1; tail -1 /tmp/assemble.log
bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
# Every module the A/B and the gates use, built outside the timed runs: each spec's fast
# numerics at once, then its exact (ORCD_CUDA_ONE_NUMERICS builds a module a numerics; the others
# share one, cached by then).
for nm in fast exact; do
    for spec in default $SWITCHES; do
        envs=(); [[ $spec == default ]] || IFS=, read -r -a envs <<< "$spec"
        env "${envs[@]}" timeout 300 "$B/worker-orcd" bench --model "$M" --backend cuda --numerics $nm \
            --prompt-tokens 4 --gen-tokens 2 --repeats 1 > /dev/null 2>&1 &
    done
    wait
done
echo "modules built at $((SECONDS - T0)) s"
SWITCHES="$SWITCHES" NUMERICS="fast exact" OUT=$OUT timeout 240 bash ci/gpu-ab-b1.sh 2>&1 | grep -v "^ *$" | tail -16
echo "A/B done at $((SECONDS - T0)) s"
left=$((570 - (SECONDS - T0)))
n=0
for spec in $GATE_UNDER; do
    n=$((n + 1))
    envs=(); IFS=, read -r -a envs <<< "$spec"
    (env "${envs[@]}" timeout $left "$B/orcd-gate" run --suite ops --backend cuda --backend cuda-fast --out /tmp/ops-$n \
        > /tmp/ops-$n.log 2>&1; echo "rc $?" >> /tmp/ops-$n.log) &
done
mkdir -p "$OUT/g"
OUT=$OUT/g timeout $left bash ci/gpu-run.sh gate ops models 2>&1 | tail -14
wait
n=0
for spec in $GATE_UNDER; do
    n=$((n + 1))
    echo "== ops under $spec"; tail -2 /tmp/ops-$n.log; grep -m5 "FAIL" /tmp/ops-$n.log
done
echo "done at $((SECONDS - T0)) s"
