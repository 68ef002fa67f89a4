#!/usr/bin/env bash
# There (the GPU machine), a short call: one switch of the batched decode against the default of the
# same build, interleaved (default, switch, default, switch) on the Qwen2.5-0.5B-shape Q8_0 file,
# after the switch's own `ops` cases and the four-sequence batched-vs-alone check under it.
#
#   SWITCH="ORCD_CUDA_BATCH_ROPE=1" FILTER=norm_qkv_rope OUT=dir bash ci/gpu-ab-batched.sh
#
# BATCH (default 4,16,64): the sequences of each bench. B1_SWITCH="ENV=V,… …": switches of the
# batch-1 decode timed the same way (tg128 after a 4-token prompt, fast). MULTI=0: no
# four-sequence check (a short call). Unpacks target/gpu-pack/bin.tar.xz into
# target/gpu-min unless ORCD_GPU_BIN already holds a build. Ratios only within this call.
set -u
cd "$(dirname "$0")/.."
source ci/gpu-min.sh
bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
IFS=, read -r -a sw <<< "${SWITCH:?SWITCH=ENV=V,…}"
# The first compile (NVRTC, ~60 s) outside the timed runs.
timeout 240 "$B/worker-orcd" bench --model "$M" --backend cuda --prompt-tokens 4 --gen-tokens 2 --repeats 1 >/dev/null 2>&1
if [[ -n ${FILTER:-} ]]; then
    env "${sw[@]}" OUT=$OUT/gate timeout 200 bash ci/gpu-run.sh gate ops --filter "$FILTER" 2>&1 | grep -E "FAIL|ops cuda" | head -8
    [[ ${MULTI:-1} == 0 ]] || env "${sw[@]}" timeout 150 "$B/tests/multi_seq" --test-threads 1 \
        cuda_four_sequences_synthetic 2>&1 | grep -E "test result|differ|cases:" | head -4
fi
# B1_SWITCH may name several switches, space-separated ("ENV=V,… ENV2=V …"): each round runs the
# default, then each of them.
if [[ -n ${B1_SWITCH:-} ]]; then
    for round in 1 2; do
        for spec in default $B1_SWITCH; do
            envs=(); [[ $spec == default ]] || IFS=, read -r -a envs <<< "$spec"
            lab=${spec#ORCD_}; lab=${lab//[=,]/-}
            env "${envs[@]}" timeout 60 "$B/worker-orcd" bench --model "$M" --backend cuda --numerics fast \
                --prompt-tokens 4 --gen-tokens 128 --repeats 3 --json > "$OUT/b1-$lab-$round.json" 2>/dev/null
            python3 -c 'import json,sys
j=json.load(open(sys.argv[1])); print("%-18s r%s batch   1: tg %8.1f tok/s" % (sys.argv[2], sys.argv[3], j["decode_tok_s"]))' \
                "$OUT/b1-$lab-$round.json" "$lab" "$round" || echo "b1 $lab r$round: no result"
        done
    done
fi
for round in 1 2; do
    for lab in default switch; do
        envs=(); [[ $lab == switch ]] && envs=("${sw[@]}")
        env "${envs[@]}" timeout 150 "$B/worker-orcd" bench --model "$M" --backend cuda --prompt-tokens 128 \
            --gen-tokens 128 --batch "${BATCH:-4,16,64}" --repeats 2 --json > "$OUT/batched-$lab-$round.json" 2>/dev/null
        python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["batched"]:
    print("%-8s r%s batch %3d: decode %8.1f tok/s, %6.2f ms a step" % (sys.argv[2], sys.argv[3], r["batch"], r["decode_tok_s"], r["step_ms"]))' \
            "$OUT/batched-$lab-$round.json" "$lab" "$round" || echo "$lab r$round: no result"
    done
done
