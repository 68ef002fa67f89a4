#!/usr/bin/env bash
# Runs on the GPU machine (no cargo, no network), from the repository root, with the binaries that
# ci/gpu-bundle.sh put in target/gpu/ (DESIGN §8, docs/GPU_RUNNER.md has the whole flow).
#
#   bash ci/gpu-run.sh info                      GPU, driver, nvcc, compute-sanitizer, binaries, cache
#   bash ci/gpu-run.sh assemble                  join target/parts/*/part-NN into $ORCD_CACHE, check sha256
#   bash ci/gpu-run.sh gate [SUITE...] [opts]    orcd-gate run on the cuda columns (default suites:
#                                                ops models generate) → $OUT/report.json for `orcd-gate merge`
#        opts: --backend COL (repeatable; default cuda + cuda-fast), --all-backends, --filter S
#   bash ci/gpu-run.sh sanitize [TOOL...]        compute-sanitizer --tool memcheck|racecheck|initcheck
#                                                --error-exitcode 1 over orcd-gate run --suite ops (cuda
#                                                columns), ORCD_CUDA_EXACT_ALLOC=1; logs to $OUT
#   bash ci/gpu-run.sh synth [NAME...]           synthetic models with orcd-fixtures (default
#                                                qwen2-real-q8_0: the Qwen2.5-0.5B shape) → $ORCD_CACHE/synthetic
#   bash ci/gpu-run.sh peer [MODEL]              llama.cpp CUDA (ci/llamacpp-cuda.sh build) + llama-bench
#                                                -fa 1 -p 512 -n 128 -r 5 -o json on MODEL (default: synth
#                                                qwen2-real-q8_0), then worker-orcd bench --backend cuda on it
#
# Environment: OUT (default target/gpu-out; the tool's $OUT comes back), ORCD_CACHE (default
# ~/.cache/orcd), ORCD_GPU_BIN (default target/gpu), SANITIZE_TIMEOUT (s per tool, default 180),
# SANITIZE_LEAK_CHECK=1 (memcheck --leak-check full), SANITIZE_BACKEND (one cuda column),
# SANITIZE_FILTER (orcd-gate --filter).
# Output: full logs under $OUT (at most 8 files come back: each subcommand writes ≤ 5), terse
# console, and a summary table last (the tool returns the last 12,000 characters only).
set -euo pipefail

# The repository root: the first folder above this script that holds goldens/ (the script also
# rides in target/gpu/).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
while [[ ! -d "$ROOT/goldens" && "$ROOT" != / ]]; do ROOT=$(dirname "$ROOT"); done
[[ -d "$ROOT/goldens" ]] || {
    echo "error: no goldens/ above $0: run from the repository" >&2
    exit 2
}
cd "$ROOT"

export ORCD_ROOT="$ROOT"
export ORCD_CACHE="${ORCD_CACHE:-$HOME/.cache/orcd}"
OUT="${OUT:-$ROOT/target/gpu-out}"
BIN="${ORCD_GPU_BIN:-$ROOT/target/gpu}"
# Reports name the commit the binaries were built from (the pack's COMMIT), not this copy's git
# HEAD, which on the GPU machine can be an older repository (stop 43: call 5's report said 00b32df
# for 86bf675's binaries).
[[ -s "$BIN/COMMIT" ]] && export ORCD_BUILD_COMMIT="$(cat "$BIN/COMMIT")"
WORK="$ROOT/target/gpu-work"
mkdir -p "$OUT" "$WORK" "$ORCD_CACHE"
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
    [[ -d "$d" && ":$PATH:" != *":$d:"* ]] && PATH="$PATH:$d"
done
export PATH

CMD="${1:-}"
[[ $# -gt 0 ]] && shift
SUMMARY=()
RC=0

row() { SUMMARY+=("$(printf '%-32s %-8s %s' "$1" "$2" "$3")"); }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
fail_rc() { ((RC == 0)) && RC="$1" || true; }

summary() {
    local f="$OUT/summary-${CMD:-none}.txt"
    {
        echo
        echo "== summary: gpu-run.sh ${CMD:-} (exit $RC)"
        printf '%-32s %-8s %s\n' step status detail
        local r
        for r in "${SUMMARY[@]}"; do echo "$r"; done
        echo "logs: $OUT"
    } | tee "$f"
}
trap 'rc=$?; ((RC == 0)) && RC=$rc; summary; exit $RC' EXIT

need_bin() {
    local b="$BIN/$1"
    if [[ ! -x "$b" ]]; then
        row "binary $1" missing "$b (build with bash ci/gpu-bundle.sh, carry target/gpu)"
        fail_rc 2
        exit 2
    fi
}

# ---------------------------------------------------------------- info
cmd_info() {
    local f="$OUT/info.txt"
    {
        echo "== nvidia-smi"
        nvidia-smi || echo "(nvidia-smi failed)"
        echo "== nvidia-smi --query-gpu"
        nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,compute_cap,clocks.max.sm --format=csv ||
            true
        echo "== nvcc --version"
        nvcc --version || echo "(no nvcc)"
        echo "== compute-sanitizer --version"
        compute-sanitizer --version || echo "(no compute-sanitizer)"
        echo "== CUDA libraries"
        ldconfig -p | grep -E 'libcuda\.so|libnvrtc\.so|libcublas\.so|libcublasLt\.so' || echo "(none in ldconfig)"
        echo "== host"
        uname -a
        nproc
        free -g || true
        ldd --version | head -1
        echo "== binaries ($BIN)"
        ls -la "$BIN" || true
        cat "$BIN/COMMIT" 2>/dev/null || true
        echo "== cache ($ORCD_CACHE)"
        find "$ORCD_CACHE" -maxdepth 5 -type f -printf '%10s  %p\n' 2>/dev/null | sort -k2 | head -50
    } >"$f" 2>&1
    local gpu drv cap nv cs
    gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
    drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || true)
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 || true)
    nv=$(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || true)
    cs=$(compute-sanitizer --version 2>/dev/null | grep -io 'version [0-9.]*' | head -1 || true)
    row gpu "$([[ -n "$gpu" ]] && echo ok || echo MISSING)" "${gpu:-nvidia-smi failed} cc ${cap:-?}"
    row driver "$([[ -n "$drv" ]] && echo ok || echo MISSING)" "${drv:-?}"
    row nvcc "$([[ -n "$nv" ]] && echo ok || echo MISSING)" "${nv:-not found}"
    row compute-sanitizer "$([[ -n "$cs" ]] && echo ok || echo MISSING)" "${cs:-not found}"
    local libs
    libs=$(ldconfig -p | grep -oE 'lib(cuda|nvrtc|cublas)\.so[.0-9]*' | sort -u | tr '\n' ' ' || true)
    row "libcuda/nvrtc/cublas" "$([[ "$libs" == *libcuda* ]] && echo ok || echo MISSING)" "${libs:-none}"
    local b
    for b in orcd-gate worker-orcd orcd-fixtures; do
        if [[ -x "$BIN/$b" ]]; then
            if "$BIN/$b" --version >/dev/null 2>&1; then
                row "binary $b" ok "$(mib "$(stat -c %s "$BIN/$b")") $(tr '\n' ' ' <"$BIN/COMMIT" 2>/dev/null)"
            else
                row "binary $b" BROKEN "$("$BIN/$b" --version 2>&1 | head -1)"
            fi
        else
            row "binary $b" missing "carry target/gpu (bash ci/gpu-bundle.sh)"
        fi
    done
    cache_rows
}

# Rows for what the suites read from the cache.
cache_rows() {
    local v missing=() m
    for v in llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-{llama-spm,qwen2,phi-3,gpt-2}.gguf \
        tokenizers/o200k_harmony-gpt-4o-vocab.gguf; do
        [[ -f "$ORCD_CACHE/$v" ]] || missing+=("$(basename "$v")")
    done
    if ((${#missing[@]} == 0)); then
        row "vocab (synthetic models)" ok "5/5 in $ORCD_CACHE"
    else
        row "vocab (synthetic models)" missing "${missing[*]} (carry target/parts/vocab/part-00, assemble)"
    fi
    for m in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
        if [[ -f "$ORCD_CACHE/models/$m" ]]; then
            row "model ${m%%.*}" ok "$(mib "$(stat -c %s "$ORCD_CACHE/models/$m")")"
        else
            row "model ${m%%.*}" missing "its cases report not run (ci/gpu-model-parts.sh, assemble)"
        fi
    done
}

# ---------------------------------------------------------------- assemble
cmd_assemble() {
    local log="$OUT/assemble.log"
    : >"$log"
    shopt -s nullglob
    local manifests=(target/parts/*/part-*/manifest)
    if ((${#manifests[@]} == 0)); then
        row assemble nothing "no target/parts/*/part-*/manifest here (carry one part folder per call)"
        cache_rows
        return
    fi
    # Group the part folders by their whole file's sha256.
    local -A dest_of=() count_of=() size_of=()
    local m sha
    for m in "${manifests[@]}"; do
        sha=$(sed -n 's/^sha256=//p' "$m")
        dest_of[$sha]=$(sed -n 's/^dest=//p' "$m")
        count_of[$sha]=$(sed -n 's/^parts=//p' "$m")
        size_of[$sha]=$(sed -n 's/^size=//p' "$m")
    done
    local dest n have i part target tmp got label
    for sha in "${!dest_of[@]}"; do
        dest=${dest_of[$sha]}
        n=${count_of[$sha]}
        label=$(basename "$dest")
        target="$ORCD_CACHE/$dest"
        if [[ -f "$target.sha256" && "$(cat "$target.sha256")" == "$sha" && -f "$target" ]]; then
            row "$label" ok "assembled earlier ($(mib "${size_of[$sha]}"))"
            continue
        fi
        # The part folders of this file, by part number, each checked against its own sha256.
        local -a paths=()
        have=0
        for m in "${manifests[@]}"; do
            [[ "$(sed -n 's/^sha256=//p' "$m")" == "$sha" ]] || continue
            i=$(sed -n 's/^part=//p' "$m")
            part=$(dirname "$m")
            got=$(sha256sum "$part/chunk" | cut -d' ' -f1)
            if [[ "$got" != "$(sed -n 's/^part_sha256=//p' "$m")" ]]; then
                echo "$part/chunk: sha256 $got does not match its manifest" | tee -a "$log"
                row "$label" BAD "part $i corrupt ($part)"
                fail_rc 1
                continue 2
            fi
            paths[i]="$part/chunk"
            have=$((have + 1))
        done
        if ((have < n)); then
            local missing=()
            for ((i = 0; i < n; i++)); do [[ -n "${paths[i]:-}" ]] || missing+=("$(printf 'part-%02d' "$i")"); done
            row "$label" partial "$have/$n parts here; still to carry: ${missing[*]}"
            continue
        fi
        mkdir -p "$(dirname "$target")"
        tmp="$target.partial"
        for ((i = 0; i < n; i++)); do cat "${paths[i]}"; done >"$tmp"
        got=$(sha256sum "$tmp" | cut -d' ' -f1)
        if [[ "$got" != "$sha" ]]; then
            echo "$tmp: sha256 $got, expected $sha" | tee -a "$log"
            row "$label" BAD "joined file's sha256 $got != $sha"
            rm -f "$tmp"
            fail_rc 1
            continue
        fi
        mv "$tmp" "$target"
        echo "$sha" >"$target.sha256"
        echo "$target: $n parts, sha256 $sha ok" >>"$log"
        if [[ "$dest" == *.tar.gz ]]; then
            tar -C "$ORCD_CACHE" -xzf "$target"
            tar -tzf "$target" | sed "s|^|  unpacked $ORCD_CACHE/|" >>"$log"
            row "$label" ok "$n part(s), sha256 ok, unpacked into $ORCD_CACHE"
        else
            row "$label" ok "$n part(s), sha256 ok → $target"
        fi
    done
    cache_rows
}

# ---------------------------------------------------------------- gate
# Pretty rows from an orcd-gate report.json: totals, per suite × backend, the first failures.
report_rows() {
    python3 - "$1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
t = j["totals"]
st = "FAIL" if t["fail"] else ("ok" if t["pass"] else "NONE-RAN")
print(f"total|{st}|{t['pass']} pass, {t['fail']} fail, {t['not_run']} not run of {t['total']}")
for s in j["suites"]:
    st = "FAIL" if s["fail"] else ("ok" if s["pass"] else "not-run")
    print(f"{s['suite']} {s['backend']}|{st}|{s['pass']} pass, {s['fail']} fail, {s['not_run']} not run")
fails = [c["id"] for c in j["cases"] if c["outcome"] == "fail"]
for c in fails[:15]:
    print(f"  {c}|FAIL|")
if len(fails) > 15:
    print(f"  ...|FAIL|{len(fails) - 15} more in report.json")
reasons = {}
for c in j["cases"]:
    if c["outcome"] == "not_run":
        reasons[c.get("reason", "")] = reasons.get(c.get("reason", ""), 0) + 1
for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:5]:
    print(f"  not run x{n}|-|{r[:90]}")
EOF
}

cmd_gate() {
    need_bin orcd-gate
    local suites=() backends=() filter=() all=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --backend)
                backends+=(--backend "${2:?--backend needs a column}")
                shift 2
                ;;
            --all-backends)
                all=1
                shift
                ;;
            --filter)
                filter=(--filter "${2:?--filter needs a substring}")
                shift 2
                ;;
            -*)
                echo "error: gate: unknown option $1" >&2
                exit 2
                ;;
            *)
                suites+=("$1")
                shift
                ;;
        esac
    done
    ((${#suites[@]} > 0)) || suites=(ops models generate)
    if ((all == 0 && ${#backends[@]} == 0)); then backends=(--backend cuda --backend cuda-fast); fi
    local suite_args=() s
    for s in "${suites[@]}"; do suite_args+=(--suite "$s"); done
    # The suites generate their synthetic models in process from the vocabularies in the cache
    # (conformance/src/suites/gguf.rs): nothing to write beforehand, but say what is missing.
    cache_rows
    local dir="$WORK/gate" log="$OUT/gate.log" rc=0 t0=$SECONDS
    rm -rf "$dir"
    echo "== orcd-gate run ${suite_args[*]} ${backends[*]} ${filter[*]} (progress in $log)"
    "$BIN/orcd-gate" run --out "$dir" "${suite_args[@]}" "${backends[@]}" "${filter[@]}" >"$log" 2>&1 || rc=$?
    # Failures with their messages (bounded), then the summary.
    grep -A6 -E '\.\.\. FAIL' "$log" | head -c 6000 || true
    tail -n 2 "$log"
    if [[ -f "$dir/report.json" ]]; then
        cp "$dir/report.json" "$OUT/report.json"
        tar -C "$WORK" -czf "$OUT/gate-reports.tar.gz" gate
        while IFS='|' read -r a b c; do row "$a" "$b" "$c"; done < <(report_rows "$dir/report.json")
        row "orcd-gate" "$([[ $rc -eq 0 ]] && echo ok || echo "rc=$rc")" "$((SECONDS - t0)) s; $OUT/report.json → orcd-gate merge"
        # On a GPU runner a run where nothing ran (no device, no libcuda) is a broken setup.
        if python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["totals"]; sys.exit(t["pass"] + t["fail"] == 0)' \
            "$dir/report.json"; then :; else
            echo "error: no case ran (every case not run: see the reasons above)" >&2
            fail_rc 3
        fi
    else
        row "orcd-gate" "rc=$rc" "no report.json: see the end of $log"
        tail -n 5 "$log"
    fi
    fail_rc "$rc"
}

# ---------------------------------------------------------------- sanitize
cmd_sanitize() {
    need_bin orcd-gate
    command -v compute-sanitizer >/dev/null || {
        row compute-sanitizer MISSING "not on PATH (nor /usr/local/cuda/bin)"
        fail_rc 2
        return
    }
    local tools=("$@") tool
    ((${#tools[@]} > 0)) || tools=(memcheck racecheck initcheck)
    local limit="${SANITIZE_TIMEOUT:-180}"
    export ORCD_CUDA_EXACT_ALLOC=1
    # SANITIZE_BACKEND (one column; default both) and SANITIZE_FILTER (orcd-gate --filter) narrow
    # a run to the kernels a change touched, within one call's time.
    local cols=(--backend cuda --backend cuda-fast) filt=()
    [[ -n "${SANITIZE_BACKEND:-}" ]] && cols=(--backend "$SANITIZE_BACKEND")
    [[ -n "${SANITIZE_FILTER:-}" ]] && filt=(--filter "$SANITIZE_FILTER")
    for tool in "${tools[@]}"; do
        case "$tool" in memcheck | racecheck | initcheck | synccheck) ;; *)
            echo "error: sanitize: unknown tool $tool" >&2
            exit 2
            ;;
        esac
        local log="$OUT/$tool.log" run_log="$WORK/sanitize-$tool.out" extra=() rc=0 t0=$SECONDS
        [[ "$tool" == memcheck && "${SANITIZE_LEAK_CHECK:-0}" == 1 ]] && extra=(--leak-check full)
        rm -rf "$WORK/sanitize-$tool"
        echo "== compute-sanitizer --tool $tool (≤ $limit s): orcd-gate run --suite ops ${cols[*]} ${filt[*]}"
        timeout --signal=INT --kill-after=15 "$limit" compute-sanitizer --tool "$tool" --error-exitcode 1 \
            "${extra[@]}" --log-file "$log" \
            "$BIN/orcd-gate" run --suite ops "${cols[@]}" "${filt[@]}" --out "$WORK/sanitize-$tool" \
            >"$run_log" 2>&1 || rc=$?
        # The harness's own verdict goes into the same log, after the sanitizer's.
        {
            echo
            echo "== orcd-gate output (exit $rc)"
            grep -A4 -E '\.\.\. FAIL' "$run_log" | head -c 20000 || true
            tail -n 3 "$run_log"
        } >>"$log"
        local errs cases
        # memcheck/initcheck print "ERROR SUMMARY: N errors", racecheck "RACECHECK SUMMARY: N
        # hazards displayed (E errors, W warnings)".
        errs=$(grep -oE 'ERROR SUMMARY: [0-9]+ error|RACECHECK SUMMARY: [0-9]+ hazard' "$log" | tail -1 |
            grep -oE '[0-9]+' || true)
        cases=$(tail -n 1 "$run_log")
        local status=ok
        if ((rc == 124 || rc == 130 || rc == 137)); then
            status=TIMEOUT # partial log: run this tool alone with a larger SANITIZE_TIMEOUT
        elif [[ -n "$errs" && "$errs" != 0 ]]; then
            status=FAIL # the sanitizer found errors
        elif ((rc != 0)); then
            status=GATE-FAIL # no sanitizer error, but cases failed (or the run broke) under it
        elif [[ "$cases" == "0 passed, 0 failed,"* ]]; then
            status=NONE-RAN # every case not run: nothing was checked
        fi
        row "sanitize $tool" "$status" "${errs:-?} errors, $((SECONDS - t0)) s, gate: ${cases:-?} (exit $rc)"
        [[ "$status" == ok ]] || fail_rc 1
        if [[ -n "$errs" && "$errs" != 0 ]]; then
            echo "-- first reports of $tool:"
            grep -m 12 -E '^========= (Invalid|Uninitialized|Race|Error|Program hit|Leaked|Host API|ERROR)' "$log" || true
        fi
        # A log past the tool's 16 MiB per file does not come back: keep it compressed.
        if (($(stat -c %s "$log") > 15 * 1048576)); then gzip -f "$log"; fi
    done
}

# ---------------------------------------------------------------- synth
# NAME = <arch>-<size>-<type>[-seed<N>], e.g. qwen2-real-q8_0 (the Qwen2.5-0.5B shape of DESIGN §9).
synth_path() { echo "$ORCD_CACHE/synthetic/$1.gguf"; }

synth_one() {
    local name="$1" arch size ty seed=1 vocab out
    local body="$name"
    if [[ "$body" =~ ^(.*)-seed([0-9]+)$ ]]; then
        body="${BASH_REMATCH[1]}"
        seed="${BASH_REMATCH[2]}"
    fi
    ty="${body##*-}"
    body="${body%-*}"
    size="${body##*-}"
    arch="${body%-*}"
    case "$arch" in
        llama) vocab=llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf ;;
        qwen2) vocab=llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf ;;
        phi3 | phi3lr) vocab=llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-phi-3.gguf ;;
        gpt2) vocab=llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf ;;
        gpt-oss) vocab=tokenizers/o200k_harmony-gpt-4o-vocab.gguf ;;
        gemma3) vocab=models/gemma-3-270m-q4_k_m.gguf ;;
        *)
            row "synth $name" BAD "unknown arch $arch (NAME = arch-size-type[-seedN])"
            fail_rc 2
            return
            ;;
    esac
    out=$(synth_path "$name")
    if [[ -f "$out" ]]; then
        row "synth $name" ok "exists ($(mib "$(stat -c %s "$out")"))"
        return
    fi
    if [[ ! -f "$ORCD_CACHE/$vocab" ]]; then
        row "synth $name" missing "vocabulary $vocab (carry target/parts/vocab/part-00, assemble)"
        fail_rc 2
        return
    fi
    local t0=$SECONDS
    if "$BIN/orcd-fixtures" model --arch "$arch" --size "$size" --type "$ty" --seed "$seed" \
        --vocab "$ORCD_CACHE/$vocab" --out "$out" >>"$OUT/synth.log" 2>&1; then
        row "synth $name" ok "$(mib "$(stat -c %s "$out")") in $((SECONDS - t0)) s → $out"
    else
        row "synth $name" FAIL "$(tail -n 1 "$OUT/synth.log")"
        fail_rc 2
    fi
}

cmd_synth() {
    need_bin orcd-fixtures
    local names=("$@") n
    ((${#names[@]} > 0)) || names=(qwen2-real-q8_0)
    for n in "${names[@]}"; do synth_one "$n"; done
}

# ---------------------------------------------------------------- peer
cmd_peer() {
    local model="${1:-qwen2-real-q8_0}"
    if [[ ! -f "$model" ]]; then
        if [[ -f "$ORCD_CACHE/models/$model" ]]; then
            model="$ORCD_CACHE/models/$model"
        else
            need_bin orcd-fixtures
            synth_one "$model"
            model=$(synth_path "$model")
        fi
    fi
    [[ -f "$model" ]] || {
        row peer missing "no model $model"
        fail_rc 2
        return
    }
    local blog="$OUT/llamacpp-build.log" rc=0 t0=$SECONDS
    echo "== llama.cpp CUDA build (log: $blog)"
    bash ci/llamacpp-cuda.sh build >"$blog" 2>&1 || rc=$?
    if ((rc != 0)); then
        tail -n 25 "$blog"
        row "llama.cpp build" FAIL "exit $rc after $((SECONDS - t0)) s; see $blog"
        fail_rc "$rc"
        return
    fi
    row "llama.cpp build" ok "$((SECONDS - t0)) s; $(tail -n 1 "$blog")"
    if (($(stat -c %s "$blog") > 4 * 1048576)); then gzip -f "$blog"; fi
    local bj="$OUT/llama-bench.json" berr="$OUT/llama-bench.log"
    t0=$SECONDS
    echo "== llama-bench ${BENCH_ARGS:--fa 1 -p 512 -n 128 -r 5} -m $model"
    if bash ci/llamacpp-cuda.sh bench "$model" >"$bj" 2>"$berr"; then
        while IFS='|' read -r a b c; do row "$a" "$b" "$c"; done < <(python3 - "$bj" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1])):
    what = f"pp{r['n_prompt']}" if r.get("n_gen", 0) == 0 else f"tg{r['n_gen']}"
    s = sorted(r.get("samples_ts") or [r["avg_ts"]])  # the median, as ours: the mean carries a cold first sample
    print(f"llama.cpp {what}|ok|median {s[len(s) // 2]:.0f} (mean {r['avg_ts']:.0f} ± {r.get('stddev_ts', 0):.0f}) tok/s ({r.get('type_k', '')} fa={r.get('flash_attn', '')}, {r.get('gpu_info', r.get('backends', ''))})")
EOF
        )
    else
        tail -n 15 "$berr"
        row llama-bench FAIL "see $berr"
        fail_rc 1
    fi
    # Ours on the same file, when the CUDA backend is in the carried build.
    if [[ -x "$BIN/worker-orcd" ]]; then
        local oj="$OUT/worker-orcd-bench.json"
        echo "== worker-orcd bench --backend cuda --numerics fast --prompt-tokens 512 --gen-tokens 128"
        if "$BIN/worker-orcd" bench --model "$model" --backend cuda --numerics fast --prompt-tokens 512 \
            --gen-tokens 128 --repeats 5 --json >"$oj" 2>"$WORK/worker-orcd-bench.err"; then
            row "worker-orcd cuda" ok "$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("pp512 %.0f tok/s, tg128 %.0f tok/s" % (j["prefill_tok_s"], j["decode_tok_s"]))' "$oj" 2>/dev/null || head -c 200 "$oj")"
        else
            row "worker-orcd cuda" FAIL "$(head -n 1 "$WORK/worker-orcd-bench.err")"
            rm -f "$oj"
            fail_rc 1
        fi
    fi
    row "bench" ok "$((SECONDS - t0)) s on $model"
}

case "$CMD" in
    info) cmd_info ;;
    assemble) cmd_assemble ;;
    gate) cmd_gate "$@" ;;
    sanitize) cmd_sanitize "$@" ;;
    synth) cmd_synth "$@" ;;
    peer) cmd_peer "$@" ;;
    *)
        trap - EXIT
        sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
