#!/usr/bin/env bash
# There (the GPU machine), one call: batch-1 decode switches against the default of the same build,
# interleaved (default, each switch; two rounds), on several files — tg128 after a 4-token prompt,
# `worker-orcd bench --repeats 3` medians, tok/s; last, each switch's mean against the default's and
# the default's own spread (`summary` lines).
#
#   SWITCHES="ORCD_CUDA_ROPE_TAB=1 ORCD_X=1,ORCD_Y=2" MODELS="qwen /root/.cache/orcd/models/gemma-3-270m-q4_k_m.gguf" \
#       NUMERICS="fast exact" OUT=dir bash ci/gpu-ab-b1.sh
#
# MODELS: paths, or `qwen` (the synthetic Qwen2.5-0.5B-shape Q8_0, written here). Carry
# target/gpu-pack (unpacked by ci/gpu-min.sh) and the vocabulary (assembled first). Ratios only
# within this call.
set -u
cd "$(dirname "$0")/.."
source ci/gpu-min.sh
: "${SWITCHES:?SWITCHES=ENV=V,…}"
for m in ${MODELS:-qwen}; do
    if [[ $m == qwen ]]; then
        bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
        m=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
    fi
    [[ -s $m ]] || { echo "$m: missing"; continue; }
    lab_m=$(basename "$m" .gguf)
    # Every spec's first compile (NVRTC: ORCD_NVRTC_DEFINES makes a build of its own, ~110 s on an
    # H100) outside the timed runs, all at once (one NVRTC thread each; the cache is written to a
    # temporary name and renamed, so two runs of one spec only compile twice).
    for spec in default $SWITCHES; do
        envs=(); [[ $spec == default ]] || IFS=, read -r -a envs <<< "$spec"
        env "${envs[@]}" timeout 240 "$B/worker-orcd" bench --model "$m" --backend cuda --prompt-tokens 4 \
            --gen-tokens 2 --repeats 1 >/dev/null 2>&1 &
    done
    wait
    for num in ${NUMERICS:-fast}; do
        for round in 1 2; do
            for spec in default $SWITCHES; do
                envs=(); [[ $spec == default ]] || IFS=, read -r -a envs <<< "$spec"
                lab=${spec#ORCD_}; lab=${lab//[=,]/-}
                f="$OUT/b1-$lab_m-$num-$lab-$round.json"
                env "${envs[@]}" timeout 90 "$B/worker-orcd" bench --model "$m" --backend cuda --numerics "$num" \
                    --prompt-tokens 4 --gen-tokens 128 --repeats 3 --json > "$f" 2>/dev/null
                python3 -c 'import json,sys
j=json.load(open(sys.argv[1])); print("%-28s %-5s %-22s r%s tg %8.1f tok/s" % (sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], j["decode_tok_s"]))' \
                    "$f" "$lab_m" "$num" "$lab" "$round" || echo "$lab_m $num $lab r$round: no result"
            done
        done
    done
done
# Each spec's mean over its rounds against the default's, per file and numerics (the default's own
# spread beside it: a switch inside it has not been shown to move anything).
python3 - "$OUT" <<'PY'
import glob, json, os, re, sys
runs = {}
for f in glob.glob(os.path.join(sys.argv[1], "b1-*.json")):
    m = re.match(r"b1-(.+)-(fast|exact)-(.+)-(\d+)\.json$", os.path.basename(f))
    try:
        v = json.load(open(f))["decode_tok_s"]
    except (OSError, ValueError, KeyError):
        continue
    if m:
        runs.setdefault((m[1], m[2]), {}).setdefault(m[3], []).append(v)
for (model, num), specs in sorted(runs.items()):
    d = specs.get("default")
    if not d:
        continue
    base = sum(d) / len(d)
    spread = (max(d) - min(d)) / base * 100
    print(f"summary {model} {num}: default {base:.1f} tok/s (its rounds {spread:.1f}% apart)")
    for spec, v in sorted(specs.items()):
        if spec != "default":
            mean = sum(v) / len(v)
            print(f"summary {model} {num}: {spec:<40} {mean:8.1f} tok/s {100 * (mean / base - 1):+6.1f}%")
PY
