#!/usr/bin/env bash
# The CUDA acceptance run (issue 11), on the GPU machine after `gpu-run.sh assemble` has the
# models and vocabularies in $ORCD_CACHE (docs/GPU_RUNNER.md). Writes everything under $OUT and
# prints a short summary last:
#   1. orcd-gate: suites ops, models, generate on the cuda columns → $OUT/report.json (merge here)
#   2. the GPU test binaries (orcd-cuda unit tests, planted bugs, multi_seq: batched = alone,
#      graph replay = op by op) on the cuda columns
#   3. generate --backend cuda vs --backend cpu on SmolLM2 (greedy text must be equal)
#   4. INSUFFICIENT_VRAM: bench with a context larger than the card, exit 2 before allocating
#   5. bench --backend cuda (fast) on the Qwen2.5-0.5B-shape Q8_0 file beside llama-bench (peer)
set -uo pipefail
cd "$(dirname "$0")/.."
G=target/gpu/gpu-run.sh
B=target/gpu
OUT="${OUT:-target/gpu-out}"
export OUT
mkdir -p "$OUT"
CACHE="${ORCD_CACHE:-$HOME/.cache/orcd}"
SMOL="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
sum=()

bash $G gate ops models generate >"$OUT/gate.out" 2>&1
sum+=("gate: $(grep -E '^total' "$OUT/gate.out" | tail -1)")
for t in orcd_cuda planted_bugs multi_seq; do
    timeout 300 "$B/tests/$t" --test-threads 1 >"$OUT/test-$t.log" 2>&1
    sum+=("test $t: $(grep -E '^test result' "$OUT/test-$t.log" | tail -1)")
done

p="What is the capital of France?"
"$B/worker-orcd" generate --model "$SMOL" --prompt "$p" --chat --temperature 0 --max-tokens 48 --backend cpu >"$OUT/gen-cpu.txt" 2>&1
"$B/worker-orcd" generate --model "$SMOL" --prompt "$p" --chat --temperature 0 --max-tokens 48 --backend cuda >"$OUT/gen-cuda.txt" 2>&1
if cmp -s "$OUT/gen-cpu.txt" "$OUT/gen-cuda.txt"; then sum+=("generate SmolLM2 cuda == cpu: yes"); else sum+=("generate SmolLM2 cuda == cpu: NO"); fi
# The CPU backend on this host, with 2 threads (the CPU machine's count) and with every core.
RAYON_NUM_THREADS=2 "$B/worker-orcd" generate --model "$SMOL" --prompt "$p" --chat --temperature 0 --max-tokens 48 --backend cpu >"$OUT/gen-cpu-2t.txt" 2>&1
sum+=("generate SmolLM2 cpu 2 threads: $(head -c 120 "$OUT/gen-cpu-2t.txt" | tr '\n' ' ')")
sum+=("generate SmolLM2 cpu all cores: $(head -c 120 "$OUT/gen-cpu.txt" | tr '\n' ' ')")
sum+=("host: $(grep -m1 'model name' /proc/cpuinfo) flags: $(grep -m1 flags /proc/cpuinfo | grep -oE 'avx512[a-z_]*|avx_vnni|avx2|fma|f16c' | sort -u | tr '\n' ' ')")

"$B/worker-orcd" bench --model "$SMOL" --backend cuda --ctx 10000000 --prompt-tokens 8 --gen-tokens 8 >"$OUT/vram.txt" 2>&1
sum+=("bench --ctx 10000000: exit $? $(head -c 300 "$OUT/vram.txt")")

bash $G synth qwen2-real-q8_0 >"$OUT/synth.out" 2>&1
QW="$CACHE/synthetic/qwen2-real-q8_0.gguf"
for num in fast exact; do
    "$B/worker-orcd" bench --model "$QW" --backend cuda --numerics $num --prompt-tokens 512 --gen-tokens 128 --ctx 4096 --repeats 3 --json >"$OUT/bench-cuda-$num.json" 2>&1
    sum+=("bench cuda $num: $(cat "$OUT/bench-cuda-$num.json" | head -c 600)")
done
ORCD_CUDA_GRAPHS=0 "$B/worker-orcd" bench --model "$QW" --backend cuda --numerics fast --prompt-tokens 512 --gen-tokens 128 --ctx 4096 --repeats 3 --json >"$OUT/bench-cuda-fast-nographs.json" 2>&1
sum+=("bench cuda fast, no graphs: $(head -c 300 "$OUT/bench-cuda-fast-nographs.json")")
# The peer: llama.cpp CUDA (built in the background by an earlier call, or now).
for _ in $(seq 1 60); do [[ -x target/llamacpp/build/bin/llama-bench ]] && break; sleep 5; done
[[ -x target/llamacpp/build/bin/llama-bench ]] || bash ci/llamacpp-cuda.sh build >"$OUT/peer-build.log" 2>&1
bash ci/llamacpp-cuda.sh bench "$QW" >"$OUT/llama-bench.json" 2>"$OUT/llama-bench.log"
sum+=("llama-bench: $(python3 -c 'import json,sys; [print(r["n_prompt"], r["n_gen"], "median", sorted(r.get("samples_ts") or [r["avg_ts"]])[len(r.get("samples_ts") or [0])//2], "mean", round(r["avg_ts"],1), round(r["stddev_ts"],1)) for r in json.load(open(sys.argv[1]))]' "$OUT/llama-bench.json" 2>&1 | tr '\n' ';')")

echo "== summary"
printf '%s\n' "${sum[@]}" | tee "$OUT/summary.txt"
