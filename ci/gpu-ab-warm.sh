#!/usr/bin/env bash
# There (the GPU machine), one call: the warm passes (MV_WARM, ATT_WARM: the code after the PDL
# wait run once before it as a dry pass; stop 50) — their `ops` values against the default's on
# the card (every metric of every case, report.json against report.json), then batch-1 decode
# interleaved with the default (tg128 after a 4-token prompt, fast and exact), then the batched
# bench on the defaults. Qwen2.5-0.5B-shape Q8_0 file; ratios only within this call.
#
#   OUT=dir bash ci/gpu-ab-warm.sh          (carry target/gpu-pack; the vocabulary assembled)
set -u
cd "$(dirname "$0")/.."
B=${ORCD_GPU_BIN:-target/gpu-min}
rm -rf "$B" && mkdir -p "$B" && tar -xJf target/gpu-pack/bin.tar.xz -C "$B"
export ORCD_GPU_BIN=$B
cat "$B/COMMIT"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
T0=$SECONDS
bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
VARIANTS=${VARIANTS:-"default MV=ORCD_NVRTC_DEFINES=MV_WARM ALL=ORCD_NVRTC_DEFINES=MV_WARM+ATT_WARM,ORCD_CUDA_PDL_MORE=attention"}
# Each define set's NVRTC compile (~60 s) outside the timed runs, in parallel.
for spec in $VARIANTS; do
    envs=(); [[ $spec == default ]] || IFS=, read -r -a envs <<< "${spec#*=}"
    env "${envs[@]}" timeout 300 "$B/worker-orcd" bench --model "$M" --backend cuda --prompt-tokens 4 --gen-tokens 2 \
        --repeats 1 >/dev/null 2>&1 &
done
wait
echo "compiled at $((SECONDS - T0)) s"
# The values: ops on both columns under every switch at once, against the default's.
OUT=$OUT/ops-default timeout 150 bash ci/gpu-run.sh gate ops >/dev/null 2>&1
ORCD_NVRTC_DEFINES=MV_WARM+ATT_WARM ORCD_CUDA_PDL_MORE=attention OUT=$OUT/ops-warm timeout 150 bash ci/gpu-run.sh gate ops 2>&1 | grep -E "^ops|orcd-gate:"
python3 - "$OUT/ops-default/report.json" "$OUT/ops-warm/report.json" <<'PY'
import json, sys
a, b = ({c["id"]: json.dumps(c["metrics"], sort_keys=True) for c in json.load(open(p))["cases"]} for p in sys.argv[1:])
diff = [k for k in a if k in b and a[k] != b[k]]
print(f"warm vs default: {len(set(a) & set(b))} cases in both, {len(diff)} with different metrics", diff[:5])
PY
echo "ops compared at $((SECONDS - T0)) s"
for round in 1 2; do
    for spec in $VARIANTS; do
        lab=${spec%%=*}; envs=(); [[ $spec == default ]] || IFS=, read -r -a envs <<< "${spec#*=}"
        for num in fast exact; do
            [[ $num == exact && $round == 2 ]] && continue
            env "${envs[@]}" timeout 60 "$B/worker-orcd" bench --model "$M" --backend cuda --numerics $num \
                --prompt-tokens 4 --gen-tokens 128 --repeats 3 --json > "$OUT/b1-$lab-$num-$round.json" 2>/dev/null
            python3 -c 'import json,sys
j=json.load(open(sys.argv[1])); print("%-8s %-5s r%s batch 1: tg %8.1f tok/s" % (sys.argv[2], sys.argv[3], sys.argv[4], j["decode_tok_s"]))' \
                "$OUT/b1-$lab-$num-$round.json" "$lab" "$num" "$round" || echo "b1 $lab $num r$round: no result"
        done
    done
done
echo "batch 1 done at $((SECONDS - T0)) s"
timeout 150 "$B/worker-orcd" bench --model "$M" --backend cuda --prompt-tokens 128 --gen-tokens 128 \
    --batch "${BATCH:-1,4,16,64}" --repeats 2 --json > "$OUT/batched.json" 2>/dev/null
python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["batched"]:
    print("defaults batch %3d: decode %8.1f tok/s, %6.2f ms a step" % (r["batch"], r["decode_tok_s"], r["step_ms"]))' \
    "$OUT/batched.json" || echo "batched: no result"
echo "done at $((SECONDS - T0)) s"
