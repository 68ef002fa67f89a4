#!/usr/bin/env bash
# Issue 12's serving benchmark with a maintained load tool: aiperf (NVIDIA's, pinned 0.13.0)
# against `worker-orcd serve` and llama.cpp's `llama-server` (ci/llamacpp-server.sh: the same
# llama-cpp-python 0.3.36 source), same GGUF, same threads, alternating, in one run.
#
#   bash engine/server/bench/serving.sh [MODEL.gguf]     # default: SmolLM2-135M-Instruct Q4_1
#
# Each round starts one server, runs aiperf at each concurrency (streamed /v1/completions, 32
# synthetic prompt tokens, 64 output tokens with ignore_eos, llama.cpp's default sampler
# settings sent explicitly so both sample alike), stops it, then the other. Results: one JSON
# export per (server, round, concurrency) under $OUT_DIR (default target/serving), and a table
# of medians over rounds (output tok/s, TTFT p50, ITL p50 / p99) on stdout. aiperf itself is
# several Python processes: on a small machine it takes CPU from the server it measures (kept to
# one worker and one record processor, no dashboard, no /metrics scraping).
# Environment: ROUNDS (3), CONC ("1 4 16"), REQS_PER_CONC (3: requests = 3 × concurrency),
# THREADS (2), AIPERF (default ~/.cache/orcd/venv-aiperf/bin/aiperf: `python3 -m venv` there,
# then `pip install aiperf==0.13.0`).
set -euo pipefail
cd "$(dirname "$0")/../../.."
CACHE="${ORCD_CACHE:-$HOME/.cache/orcd}"
MODEL="${1:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
ROUNDS="${ROUNDS:-3}"
CONC="${CONC:-1 4 16}"
REQS="${REQS_PER_CONC:-3}"
THREADS="${THREADS:-2}"
AIPERF="${AIPERF:-$CACHE/venv-aiperf/bin/aiperf}"
OUT_DIR="${OUT_DIR:-target/serving}"
OURS=target/release/worker-orcd
PEER=target/llamacpp-server/bin/llama-server
PORT=8093
die() {
    echo "error: $*" >&2
    exit 2
}
[[ -f "$MODEL" ]] || die "$MODEL not found (python3 fixtures/fetch.py)"
[[ -x "$AIPERF" ]] || die "no aiperf at $AIPERF (python3 -m venv $CACHE/venv-aiperf && $CACHE/venv-aiperf/bin/pip install aiperf==0.13.0)"
[[ -x "$OURS" ]] || die "no $OURS (cargo build --release -p worker-orcd)"
[[ -x "$PEER" ]] || die "no $PEER (bash ci/llamacpp-server.sh)"
TOK="$OUT_DIR/tokenizer"
mkdir -p "$OUT_DIR"
# aiperf sizes prompts and counts tokens with a HF tokenizer: the GGUF's own, written here.
"$(dirname "$AIPERF")/python" engine/server/bench/gguf_tokenizer.py "$MODEL" "$TOK" >/dev/null

start() {
    case $1 in
    ours) ORCD_THREADS=$THREADS "$OURS" serve --model "$MODEL" --backend cpu --numerics fast --ctx 512 \
        --parallel 16 --addr 127.0.0.1:$PORT >"$OUT_DIR/$1.log" 2>&1 & ;;
    llama-server) "$PEER" -m "$MODEL" -t "$THREADS" -tb "$THREADS" -c 8192 --parallel 16 --host 127.0.0.1 \
        --port $PORT >"$OUT_DIR/$1.log" 2>&1 & ;;
    esac
    PID=$!
    for _ in $(seq 600); do
        curl -sf "127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$1 did not become healthy (log: $OUT_DIR/$1.log)"
}

for r in $(seq "$ROUNDS"); do
    for srv in ours llama-server; do
        start $srv
        for c in $CONC; do
            d="$OUT_DIR/$srv-r$r-c$c"
            rm -rf "$d"
            "$AIPERF" profile --model smollm2 --url "127.0.0.1:$PORT" --endpoint-type completions --streaming \
                --concurrency "$c" --request-count $((REQS * c)) --warmup-request-count "$c" \
                --synthetic-input-tokens-mean 32 --synthetic-input-tokens-stddev 0 \
                --output-tokens-mean 64 --output-tokens-stddev 0 --extra-inputs ignore_eos:true \
                --extra-inputs temperature:0.8 --extra-inputs top_k:40 --extra-inputs top_p:0.95 \
                --extra-inputs min_p:0.05 --tokenizer "$TOK" --random-seed "$r" --no-auto-plot \
                --workers-max 1 --record-processors 1 --ui none --no-server-metrics \
                --output-artifact-dir "$d" >"$d.log" 2>&1 || { tail -5 "$d.log"; die "aiperf failed ($srv c$c)"; }
            echo "round $r $srv c$c done" >&2
        done
        kill $PID
        wait $PID 2>/dev/null || true
    done
done

python3 - "$OUT_DIR" "$ROUNDS" "$CONC" <<'PY'
import json, statistics, sys
out, rounds, conc = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def get(srv, r, c):
    j = json.load(open(f"{out}/{srv}-r{r}-c{c}/profile_export_aiperf.json"))
    return (j["output_token_throughput"]["avg"], j["time_to_first_token"]["p50"],
            j["inter_token_latency"]["p50"], j["inter_token_latency"]["p99"], j["error_summary"])
print("| concurrency | output tok/s ours | llama-server | ratio | TTFT p50 ms ours | llama-server | ITL p50 ms ours | llama-server | ITL p99 ms ours | llama-server |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in conc:
    o = [get("ours", r, c) for r in range(1, rounds + 1)]
    p = [get("llama-server", r, c) for r in range(1, rounds + 1)]
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    errs = [x[4] for x in o + p if x[4]]
    print(f"| {c} | {med(o,0):.1f} | {med(p,0):.1f} | {med(o,0)/med(p,0):.2f}x | {med(o,1):.0f} | {med(p,1):.0f} | "
          f"{med(o,2):.1f} | {med(p,2):.1f} | {med(o,3):.1f} | {med(p,3):.1f} |" + (f" errors: {errs}" if errs else ""))
    print(f"<!-- c{c} rounds, ours: {[round(x[0],1) for x in o]}, llama-server: {[round(x[0],1) for x in p]} -->")
PY
