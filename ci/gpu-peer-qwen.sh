#!/usr/bin/env bash
# There (the GPU machine), one call: the peer and ours on the Qwen2.5-0.5B-shape Q8_0 file in the
# same call — llama-bench -fa 1 (pp512, tg128, -r 5) and llama-batched-bench (-npp 128 -ntg 128
# -npl 1,4,16,64) beside `worker-orcd bench` at the same settings, peer / ours / peer / ours.
# The peer comes from target/llamacpp-bin/ (parts packed back by an earlier call: `build` joins
# and unpacks them; compiles only when they are missing). Unpacks target/gpu-pack/bin.tar.xz into
# target/gpu-min unless it holds a build already. Ratios only within this call.
set -u
cd "$(dirname "$0")/.."
source ci/gpu-min.sh
T0=$SECONDS
bash ci/llamacpp-cuda.sh build 2>&1 | tail -1
# MODEL=path: another file (a real model assembled from its parts), without the batched benches.
if [[ -z ${MODEL:-} ]]; then
    bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
    M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
else
    M=$MODEL
fi
# The default define set's NVRTC compile outside the timed runs.
timeout 240 "$B/worker-orcd" bench --model "$M" --backend cuda --prompt-tokens 4 --gen-tokens 2 --repeats 1 >/dev/null 2>&1
echo "ready at $((SECONDS - T0)) s"
lb() {
    bash ci/llamacpp-cuda.sh bench "$M" > "$OUT/llama-bench-$1.json" 2> "$OUT/llama-bench-$1.err"
    python3 -c 'import json,sys
for r in json.load(open(sys.argv[1])):
    w = "pp%d" % r["n_prompt"] if r.get("n_gen", 0) == 0 else "tg%d" % r["n_gen"]
    s = sorted(r.get("samples_ts") or [r["avg_ts"]])
    print("llama.cpp %-6s %-3s median %8.1f tok/s (mean %.1f ± %.1f)" % (w, sys.argv[2], s[len(s)//2], r["avg_ts"], r.get("stddev_ts", 0)))' \
        "$OUT/llama-bench-$1.json" "$1" || tail -3 "$OUT/llama-bench-$1.err"
}
ours() {
    local l=$1 nm=$2 p=$3
    timeout 60 "$B/worker-orcd" bench --model "$M" --backend cuda --numerics "$nm" --prompt-tokens "$p" --gen-tokens 128 \
        --repeats 5 --json > "$OUT/bench-$l.json" 2>/dev/null
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("ours %-12s pp %8.0f tg %8.1f" % (sys.argv[2], j["prefill_tok_s"], j["decode_tok_s"]))' \
        "$OUT/bench-$l.json" "$l" || echo "ours $l: no result"
}
ours_batched() {
    timeout 150 "$B/worker-orcd" bench --model "$M" --backend cuda --prompt-tokens 128 --gen-tokens 128 \
        --batch 1,4,16,64 --repeats 2 --json > "$OUT/batched-$1.json" 2>/dev/null
    python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["batched"]:
    print("ours batched %s %3d sequences: %8.1f tok/s, %6.2f ms a step" % (sys.argv[2], r["batch"], r["decode_tok_s"], r["step_ms"]))' \
        "$OUT/batched-$1.json" "$1" || echo "ours batched $1: no result"
}
pb() {
    OUT=$OUT bash ci/llamacpp-cuda.sh batched "$M" > "$OUT/peer-batched-$1.jsonl" 2> "$OUT/peer-batched-$1.err"
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    l = l.strip()
    if not l.startswith("{"): continue
    r = json.loads(l)
    print("llama-batched-bench %s %3d sequences: S_TG %8.1f tok/s" % (sys.argv[2], r["pl"], r["speed_tg"]))' \
        "$OUT/peer-batched-$1.jsonl" "$1" || tail -3 "$OUT/peer-batched-$1.err"
}
lb r1; ours fast-p4 fast 4; ours exact-p4 exact 4; ours fast-p512 fast 512
[[ -z ${MODEL:-} ]] && { pb r1; ours_batched r1; }
lb r2; ours fast-p4-r2 fast 4
[[ -z ${MODEL:-} ]] && { pb r2; ours_batched r2; }
echo "done at $((SECONDS - T0)) s"
