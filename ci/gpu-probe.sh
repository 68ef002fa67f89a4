#!/usr/bin/env bash
# There (the GPU machine): build and run the probes of kernels/probe/ with the machine's nvcc
# (sm_90a) and print their tables; logs under $OUT/probe-*. ~30 s.
#   OUT=$OUT bash ci/gpu-probe.sh            (PROBES="kernels/probe/icache.cu": only those)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/probe-out}
mkdir -p "$OUT"
for cu in ${PROBES:-kernels/probe/*.cu}; do
    n=$(basename "$cu" .cu)
    if nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o "$OUT/probe-$n" "$cu" > "$OUT/probe-$n.build.log" 2>&1; then
        timeout 120 "$OUT/probe-$n" ${PROBE_REPS:-30} 2>&1 | tee "$OUT/probe-$n.log" | sed "s/^/probe $n: /"
    else
        echo "probe $n: build failed"; tail -20 "$OUT/probe-$n.build.log"
    fi
    rm -f "$OUT/probe-$n"
done
