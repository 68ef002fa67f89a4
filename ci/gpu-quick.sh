#!/usr/bin/env bash
# There (the GPU machine), one call on a fresh machine: unpack target/gpu-pack/bin.tar.xz (ci/gpu-pack.sh),
# then correctness (ops, models, generate — the real models where assembled —, graph replay, unit
# tests, memcheck and racecheck) while
# llama.cpp builds in the background, then the peer (llama-bench) and ours on the Qwen2.5-0.5B-shape
# Q8_0 file, alternating (docs/perf/GPU.md); per-kernel ncu tables (NCU=0: none). $OUT gets
# logs.tar.gz (and llamacpp-bin.tar.xz with PACK_PEER=1). MMQ=1 and BATCHED=1 (the defaults) add
# issue 13's prefill GEMM (its cases, the models' KL, pp512 with it) and the batched decode beside
# llama-batched-bench.

set -u
cd "$(dirname "$0")/.."
B=target/gpu-min
rm -rf $B && mkdir -p $B && tar -xJf target/gpu-pack/bin.tar.xz -C $B
export ORCD_GPU_BIN=$B
cat $B/COMMIT; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
bash ci/gpu-run.sh assemble >/dev/null 2>&1
bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
# PRECOMPILE="DEFS …" (each a '+' list of ORCD_NVRTC_DEFINES): those define sets' NVRTC compiles
# (~60 s each, one core) in the background now, beside the gate, instead of one after another
# before each switch's bench; the cubin cache keeps them (written to a temporary name, renamed).
# A call without the correctness gate compiles the default set here too: its first bench (60 s
# limit) otherwise spends the limit compiling and writes nothing (stop 43, calls 4 and 5).
[[ ${CORRECT:-1} == 1 ]] || ORCD_NVRTC_DEFINES= timeout 240 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 4 \
    --gen-tokens 2 --repeats 1 > /dev/null 2>&1 &
for d in ${PRECOMPILE:-}; do
    ORCD_NVRTC_DEFINES=$d timeout 240 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 4 --gen-tokens 2 \
        --repeats 1 > /dev/null 2>&1 &
done
T0=$SECONDS
# DEADLINE=s (seconds of this script; default none): the optional parts after the benches (the
# real models, the switches' sanitizer run, gate and benches) are skipped, each with a "not run"
# line, where they would leave less than RESERVE (the batched decode and the summary still to
# run) before it, so a call under the device's 600 s limit still ends with its summary and logs.
RESERVE=$(( ${BATCHED:-1} == 1 ? ${PEER:-1} == 1 ? 170 : 90 : 20 ))
room() { (( SECONDS - T0 + RESERVE + $1 < ${DEADLINE:-1000000} )) || { echo "$2: not run (DEADLINE ${DEADLINE:-} s: $((SECONDS - T0)) s gone)"; false; }; }
# PEER=0: no llama.cpp this call (its build is ~6 minutes of a short device budget; the ratio
# then needs the peer from another call, and says so).
# The peer's build process: its command line starts with the script (anchored: the device tool's
# own `bash -c` carries this call's whole command, which names the script too — unanchored, the
# wait below matched it and held stop 44's first two calls to their limits, ~1,100 s).
LB_PAT='^bash ci/llamacpp-cuda\.sh build'
if [[ ${PEER:-1} == 1 ]]; then
    # A build started by an earlier call of this machine (setsid nohup bash ci/llamacpp-cuda.sh
    # build &, while the model parts travel) is waited for after the correctness run, then reused.
    pgrep -f "$LB_PAT" >/dev/null && echo 0 > /tmp/lb.rc || ( bash ci/llamacpp-cuda.sh build > $OUT/llamacpp-build.log 2>&1; echo $? > /tmp/lb.rc ) &
fi
# SWITCH_CHECK=1: before any timing, the four-sequence check (rows batched vs each sequence
# alone, bit for bit, both columns) under the tensor-core batched mat-vec (ORCD_CUDA_MVT=1): the
# switch's values on the card (~110 s on an H200).
if [[ ${SWITCH_CHECK:-0} == 1 ]]; then
    ORCD_CUDA_MVT=1 timeout 150 $B/tests/multi_seq --test-threads 1 cuda_four_sequences_synthetic 2>&1 \
        | grep -E "test result|differ|cases:|panicked" | head -8 | sed 's/^/switch check (mvt): /'
fi
# CORRECT=0: measurements only (a call that follows one that checked the same build).
if [[ ${CORRECT:-1} == 1 ]]; then
timeout 300 bash ci/gpu-run.sh gate ${GATE_SUITES:-ops models generate} 2>&1 | grep -E "FAIL|pass|ops cuda|models cuda|generate cuda" | head -30
SMOL=~/.cache/orcd/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ -f $SMOL ]]; then  # issue 11: the CPU's greedy text on CUDA (the parts must have been assembled)
    # The generate golden's prompt (goldens/generate/smollm2-capital.yaml): confident margins, so
    # the exact column's text must match the CPU's exactly, the fast one's llama.cpp-CPU-vs-CUDA-like.
    for nm in exact fast; do
        for be in cpu cuda; do
            timeout 60 $B/worker-orcd generate --model $SMOL --prompt "What is the capital of France? Answer in one sentence." --chat \
                --temperature 0 --max-tokens 48 --backend $be --numerics $nm 2>&1 | sed 's/, seed [0-9]*, [0-9.]* tok\/s//' > $OUT/gen-$nm-$be.txt
        done
        cmp -s $OUT/gen-$nm-cpu.txt $OUT/gen-$nm-cuda.txt && echo "generate SmolLM2 $nm cuda == cpu: yes ($(head -c 60 $OUT/gen-$nm-cpu.txt))" || { echo "generate SmolLM2 $nm cuda == cpu: NO"; head -3 $OUT/gen-$nm-*.txt; }
    done
fi
# MMQ=1 (default): issue 13's prefill GEMM (on by default; ORCD_CUDA_MMQ=0 turns it off):
# its ops cases and the models' KL on cuda-fast (SmolLM2's prompts of 16+ tokens take it).
if [[ ${MMQ:-1} == 1 && ${MMQ_GATE:-1} == 1 ]]; then
    ORCD_CUDA_MMQ=1 OUT=$OUT/mmq timeout 300 bash ci/gpu-run.sh gate ops models --backend cuda-fast 2>&1 | grep -E "FAIL|pass|ops cuda|models cuda" | sed 's/^/mmq: /' | head -20
    for f in $OUT/mmq/*; do [[ -f $f ]] && mv "$f" "$OUT/mmq-$(basename "$f")"; done
fi
# ATT=1 (default): issue 13's prefill attention (attention_tile): every ops attention case through
# it (ORCD_CUDA_ATT_TILE=2: any batch of two or more rows) on both columns, then under memcheck
# and racecheck (its shared-memory scores and weights).
if [[ ${ATT:-1} == 1 ]]; then
    ORCD_CUDA_ATT_TILE=2 OUT=$OUT/att timeout 200 bash ci/gpu-run.sh gate ops --filter attention 2>&1 | grep -E "FAIL|pass|ops cuda" | sed 's/^/att-tile: /' | head -12
    for f in $OUT/att/*; do [[ -f $f ]] && mv "$f" "$OUT/att-$(basename "$f")"; done
    ORCD_CUDA_ATT_TILE=2 SANITIZE_FILTER=attention SANITIZE_TIMEOUT=100 bash ci/gpu-run.sh sanitize memcheck racecheck 2>&1 | tail -4 | sed 's/^/att-tile: /'
fi
# CORRECT_MIN=1: the gate alone (the multi-sequence, emulated-on-card and unit checks below take
# ~4 minutes; a call short of device time skips them).
if [[ ${CORRECT_MIN:-0} != 1 ]]; then
timeout 60 $B/tests/multi_seq --test-threads 1 cuda_graph_replay 2>&1 | grep "test result"
# Rows batched (4 sequences: a 22-row prefill, then 4-row decode steps: the once-rounded
# activation of matvecq_ / round_x) equal each sequence alone, bit for bit, on both columns.
timeout 120 $B/tests/multi_seq --test-threads 1 cuda_four_sequences_synthetic 2>&1 | grep -E "test result|differ|cases:" | head -8
# The emulated device's batched-vs-alone checks, run on the card itself (ORCD_CUDA_EMU set, not 1).
ORCD_CUDA_EMU=0 timeout 120 $B/tests/multi_seq --test-threads 1 --nocapture emulated 2>&1 | grep -E "test result|differ|cases:" | head -8
timeout 60 $B/tests/orcd_cuda --test-threads 1 2>&1 | grep -E "FAIL|test result|panicked" | head
fi
# With MMQ=1 the sanitizers also see the prefill GEMM (its shared-memory staging under racecheck);
# the ops cases of fewer than 16 rows keep the mat-vec either way.
[[ ${SAN:-110} == 0 ]] || ORCD_CUDA_MMQ=${MMQ:-1} SANITIZE_TIMEOUT=${SAN:-110} bash ci/gpu-run.sh sanitize ${SAN_TOOLS:-memcheck racecheck} 2>&1 | tail -6
fi
# GATE2="label:ENV=V,…": a second `ops` + `models` gate under those switches (a kernel switch's
# values on the card before it is timed), then, with GATE2_SAN=s, memcheck and racecheck under
# them for s seconds a tool (narrowed by GATE2_SAN_FILTER, an orcd-gate --filter).
if [[ -n ${GATE2:-} ]]; then
    g2=${GATE2%%:*}; IFS=, read -r -a g2env <<< "${GATE2#*:}"
    env "${g2env[@]}" OUT=$OUT/gate-$g2 timeout 240 bash ci/gpu-run.sh gate ops models 2>&1 | grep -E "FAIL|pass|ops cuda|models cuda" | sed "s/^/$g2: /" | head -12
    for f in $OUT/gate-$g2/*; do [[ -f $f ]] && mv "$f" "$OUT/gate-$g2-$(basename "$f")"; done
    [[ ${GATE2_SAN:-0} == 0 ]] || env "${g2env[@]}" OUT=$OUT/san-$g2 SANITIZE_FILTER=${GATE2_SAN_FILTER:-} \
        SANITIZE_TIMEOUT=$GATE2_SAN bash ci/gpu-run.sh sanitize memcheck racecheck 2>&1 | tail -4 | sed "s/^/$g2: /"
    for f in $OUT/san-$g2/*; do [[ -f $f ]] && mv "$f" "$OUT/san-$g2-$(basename "$f")"; done
fi
echo "correctness done at $((SECONDS-T0)) s"
wait
# Only a call that times the peer waits for its build (a background build from this call would
# otherwise hold a PEER=0 call to the build's end: 300 s of device time, stop 43).
[[ ${PEER:-1} == 1 ]] && { while pgrep -f "$LB_PAT" >/dev/null; do sleep 2; done; cp /tmp/lb-bg.log $OUT/ 2>/dev/null; }
[[ ${PEER:-1} == 1 ]] && { echo "llama.cpp build rc=$(cat /tmp/lb.rc) at $((SECONDS-T0)) s"; tail -n 2 $OUT/llamacpp-build.log; }
lb() { [[ ${PEER:-1} == 1 ]] || return 0; bash ci/llamacpp-cuda.sh bench $M > $OUT/llama-bench-$1.json 2>$OUT/llama-bench-$1.err
  python3 -c 'import json,sys
for r in json.load(open(sys.argv[1])):
    w = "pp%d" % r["n_prompt"] if r.get("n_gen",0)==0 else "tg%d" % r["n_gen"]
    s = sorted(r.get("samples_ts") or [r["avg_ts"]])
    # Ours is a median of repeats: so is the peer figure here (its mean carries a cold first sample, stop 44).
    print("llama.cpp %-6s %-3s median %8.1f tok/s (mean %.1f ± %.1f; samples %s)" % (w, sys.argv[2],
          s[len(s)//2], r["avg_ts"], r.get("stddev_ts",0), " ".join("%.0f" % v for v in r.get("samples_ts") or [])))' $OUT/llama-bench-$1.json $1 || tail -3 $OUT/llama-bench-$1.err; }
b() { local l=$1 nm=$2 p=$3; shift 3
  env "$@" timeout 60 ${BIN:-$B}/worker-orcd bench --model $M --backend cuda --numerics $nm --prompt-tokens $p --gen-tokens 128 --repeats 5 --json > $OUT/bench-$l.json 2>$OUT/bench-$l.err
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("ours %-22s pp %7.0f tg %7.1f  vram %s" % (sys.argv[2], j["prefill_tok_s"], j["decode_tok_s"], j.get("vram_bytes")))' $OUT/bench-$l.json $l || tail -2 $OUT/bench-$l.err; }
lb r1
b fast-p4 fast 4; b exact-p4 exact 4; [[ ${P512:-1} == 1 ]] && { b fast-p512 fast 512; b exact-p512 exact 512; }
[[ ${MMQ:-1} == 1 ]] && b fast-p512-mmq fast 512 ORCD_CUDA_MMQ=1
# The GEMM with 64-token tiles only (ORCD_CUDA_MMQ32=0): the A/B of mmq32_ in one build.
[[ ${MMQ:-1} == 1 ]] && b fast-p512-mmq64 fast 512 ORCD_CUDA_MMQ32=0
# The per-row attention for prefill too (ORCD_CUDA_ATT_TILE=0): the A/B of attention_tile.
[[ ${ATT:-1} == 1 ]] && { b fast-p512-att0 fast 512 ORCD_CUDA_ATT_TILE=0; b exact-p512-att0 exact 512 ORCD_CUDA_ATT_TILE=0; }
[[ ${PDL_AB:-0} == 1 ]] && for v in all rope attention; do b fast-p4-pdl-$v fast 4 ORCD_CUDA_PDL_MORE=$v; done
[[ ${EXTRA:-0} == 1 ]] && { b fast-p4-nopdl fast 4 ORCD_CUDA_PDL=0; b fast-p4-glu4 fast 4 ORCD_MV_GLU8=0; }
# target/gpu-pack-base/bin.tar.xz (an earlier build's pack, carried too): the same benches of it
# in the same call, the A/B of a change on one machine.
if [[ -f target/gpu-pack-base/bin.tar.xz ]]; then
    rm -rf target/gpu-base && mkdir -p target/gpu-base && tar -xJf target/gpu-pack-base/bin.tar.xz -C target/gpu-base
    echo "base build: $(cat target/gpu-base/COMMIT)"
    if [[ ${BASE_BENCH:-1} == 1 ]]; then  # BASE_BENCH=0: only the batched decode below
    BIN=target/gpu-base b base-fast-p4 fast 4; BIN=target/gpu-base b base-exact-p4 exact 4
    BIN=target/gpu-base b base-fast-p512 fast 512 ORCD_CUDA_MMQ=1
    fi
fi
# R2=0: no second round of the peer and the default (a call short of device time).
[[ ${R2:-1} == 1 ]] && { lb r2; b fast-p4-r2 fast 4; b exact-p4-r2 exact 4; }
# REAL=1 (default): issue 13's other two bars (≥ 2× tg128 on SmolLM2-135M Q4_1 and gemma-3-270m
# Q4_K_M): each real model assembled on this machine (ci/gpu-model-parts.sh, sent in parts over
# earlier calls) benched beside llama-bench on the same file, peer, ours, peer.
if [[ ${REAL:-1} == 1 ]]; then
    for rf in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
        RM=~/.cache/orcd/models/$rf; rl=${rf%%-*}
        [[ -f $RM ]] || { echo "real $rl: not run (the file is not on this machine)"; continue; }
        room 90 "real $rl" || continue
        [[ ${PEER:-1} == 1 ]] && M=$RM lb $rl-r1
        M=$RM b $rl-fast-p4 fast 4; M=$RM b $rl-exact-p4 exact 4; M=$RM b $rl-fast-p512 fast 512
        # REAL_P512="label:ENV=V,… …": prefill switches timed on each real file too (a switch of
        # a type the Qwen file has not: ORCD_CUDA_MMQ_K's Q4_K / Q6_K), each beside the default's
        # pp512 above and once more after it.
        for v in ${REAL_P512:-}; do
            lab=${v%%:*}; IFS=, read -r -a envs <<< "${v#*:}"
            M=$RM b $rl-fast-p512-$lab fast 512 "${envs[@]}"; M=$RM b $rl-fast-p512-$lab-r2 fast 512 "${envs[@]}"
        done
        [[ -n ${REAL_P512:-} ]] && M=$RM b $rl-fast-p512-r2 fast 512
        # REAL_TG="label:ENV=V,… …": decode switches timed on each real file (a switch of a
        # shape the Qwen file has not: gemma-3's post-norms), then the default's decode again.
        for v in ${REAL_TG:-}; do
            lab=${v%%:*}; IFS=, read -r -a envs <<< "${v#*:}"
            M=$RM b $rl-fast-p4-$lab fast 4 "${envs[@]}"
        done
        [[ -n ${REAL_TG:-} ]] && M=$RM b $rl-fast-p4-r2 fast 4
        [[ ${PEER:-1} == 1 ]] && M=$RM lb $rl-r2
    done
fi
# VARIANTS_DECODE / VARIANTS_PREFILL="label:ENV=V,ENV2=V2 …": switches of this one build (no
# second pack), each benched beside the default in the same call: a decode switch at prompt 4 on
# both numerics and (BATCHED=1) the batched decode at 16 and 64 sequences; a prefill switch pp512
# (fast) twice. VARIANT_GATE=1 also runs `ops` and `models` under each (a switch that changes a
# layout or a kernel must pass there too). The defaults (docs/perf/GPU.md, sixteenth block):
# decode — the A/Bs of this stop's defaults (no key staging in attention, the tensor-core batched
# mat-vec never / at every batch), the GGUF Q8_0 layout, and the switches not yet timed: the
# persistent batched mat-vec (4 blocks an SM), attention's L2 prefetch (alone, with PDL on
# attention), PDL on quant_x_q8; prefill — the GEMM's 64-row tiles for narrow projections
# (64 × 32 after 128 × 32; 64 × 64 instead of it), a norm's q, k and v in
# one GEMM launch (alone and with the 64-row tiles), Q8_0 grouped. ~50 s a decode switch, ~20 s a
# prefill one: the decode list is a call of its own (CORRECT=0 PEER=0 P512=0 MMQ=0 ATT=0 NCU=0
# BATCHED_MMQ=1 VARIANTS_PREFILL=), the prefill list another (… VARIANTS_DECODE= BATCHED=0).
VARIANTS_DECODE=${VARIANTS_DECODE-"stage0:ORCD_CUDA_ATT_STAGE=0 mvt-off:ORCD_CUDA_MVT=0 mvt-all:ORCD_CUDA_MVT=1 mvt-narrow:ORCD_CUDA_MVT=1,ORCD_CUDA_MVT_NARROW=1 split16:ORCD_CUDA_ATT_SPLIT=16 split8:ORCD_CUDA_ATT_SPLIT=8 gguf:ORCD_CUDA_Q8_GROUPED=0 persist4:ORCD_CUDA_MVQ_PERSIST=4 attpf:ORCD_NVRTC_DEFINES=ATT_PREFETCH attpf-pdl:ORCD_NVRTC_DEFINES=ATT_PREFETCH,ORCD_CUDA_PDL_MORE=attention qx-off:ORCD_NVRTC_DEFINES=QX_NO_PDL,ORCD_CUDA_QX_PDL=0"}
VARIANTS_PREFILL=${VARIANTS_PREFILL-"bm64:ORCD_CUDA_MMQ64=1 bm64h:ORCD_CUDA_MMQ64=2 qkv:ORCD_CUDA_MMQ_QKV=1 qkv-bm64:ORCD_CUDA_MMQ_QKV=1,ORCD_CUDA_MMQ64=1 gguf-pp:ORCD_CUDA_Q8_GROUPED=0"}
# The switches that move memory or add barriers under compute-sanitizer once (VARIANT_SAN=0: not):
# the batched mat-vec on a persistent grid (its blocks' turns share shared memory) over the
# grouped Q8_0 layout, the GEMM off so every batched matmul case takes it; then the GEMM's new
# tiles and fused q·k·v over the grouped layout.
if [[ -n "$VARIANTS_DECODE$VARIANTS_PREFILL" && ${VARIANT_SAN:-1} == 1 ]] && room 480 "variants' sanitizers"; then
    ORCD_CUDA_MVQ_PERSIST=1 ORCD_CUDA_MMQ=0 ORCD_CUDA_Q8_GROUPED=1 SANITIZE_BACKEND=cuda-fast SANITIZE_FILTER=matmul \
        SANITIZE_TIMEOUT=120 bash ci/gpu-run.sh sanitize memcheck racecheck 2>&1 | tail -4 | sed 's/^/variants (persistent): /'
    ORCD_CUDA_MMQ64=1 ORCD_CUDA_MMQ_QKV=1 ORCD_CUDA_Q8_GROUPED=1 SANITIZE_BACKEND=cuda-fast SANITIZE_FILTER=matmul \
        SANITIZE_TIMEOUT=120 bash ci/gpu-run.sh sanitize memcheck racecheck 2>&1 | tail -4 | sed 's/^/variants (gemm): /'
fi
# Every switch is value-neutral, so one `ops` + `models` gate with all of them on at once checks
# them together on the card (VARIANT_GATE_ALL=0: not; VARIANT_GATE=1 gates each alone instead).
if [[ -n "$VARIANTS_DECODE$VARIANTS_PREFILL" && ${VARIANT_GATE_ALL:-1} == 1 ]] && room 240 "all switches' gate"; then
    ORCD_CUDA_Q8_GROUPED=1 ORCD_CUDA_MVQ_PERSIST=4 ORCD_CUDA_MMQ64=1 ORCD_CUDA_MMQ_QKV=1 \
        ORCD_CUDA_MVT=1 ORCD_NVRTC_DEFINES="ATT_PREFETCH" ORCD_CUDA_PDL_MORE=all OUT=$OUT/gate-all timeout 300 \
        bash ci/gpu-run.sh gate ops models 2>&1 | grep -E "FAIL|pass|ops cuda|models cuda" | sed "s/^/all switches: /" | head -12
    for f in $OUT/gate-all/*; do [[ -f $f ]] && mv "$f" "$OUT/gate-all-$(basename "$f")"; done
fi
variant_prep() {  # $1 label, then the env: compile once (a new define set is a new NVRTC compile), gate
    local lab=$1; shift
    env "$@" timeout 180 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 4 --gen-tokens 2 --repeats 1 >/dev/null 2>&1
    if [[ ${VARIANT_GATE:-0} == 1 ]]; then
        env "$@" OUT=$OUT/gate-$lab timeout 240 bash ci/gpu-run.sh gate ops models 2>&1 | grep -E "FAIL|pass|ops cuda|models cuda" | sed "s/^/$lab: /" | head -12
        for f in $OUT/gate-$lab/*; do [[ -f $f ]] && mv "$f" "$OUT/gate-$lab-$(basename "$f")"; done
    fi
}
for v in $VARIANTS_DECODE; do
    lab=${v%%:*}; IFS=, read -r -a envs <<< "${v#*:}"
    room 60 "switch $lab" || continue
    variant_prep $lab "${envs[@]}"
    # VARIANT_B1=0: no batch-1 benches (switches of batched rows only).
    [[ ${VARIANT_B1:-1} == 1 ]] && { b fast-p4-$lab fast 4 "${envs[@]}"; b exact-p4-$lab exact 4 "${envs[@]}"; }
    # VARIANTS_NOBATCH="label …": switches timed at batch 1 only (the one-row anatomy defines).
    # VARIANT_BATCH=4,16,64: the batch sizes of each switch's batched decode (default 16,64).
    if [[ ${BATCHED:-1} == 1 && " ${VARIANTS_NOBATCH:-} " != *" $lab "* ]]; then
        env "${envs[@]}" timeout 150 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 128 --gen-tokens 128 --batch ${VARIANT_BATCH:-16,64} \
            --repeats 2 --json > $OUT/batched-$lab.json 2>$OUT/batched-$lab.err
        python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["batched"]:
    print("ours (%s) batch %3d: decode %8.1f tok/s, %6.2f ms a step" % (sys.argv[2], r["batch"], r["decode_tok_s"], r["step_ms"]))' $OUT/batched-$lab.json "$lab" || tail -3 $OUT/batched-$lab.err
    fi
done
[[ -n $VARIANTS_PREFILL ]] && { b fast-p512-v0 fast 512; }  # the default beside them, in this call
for v in $VARIANTS_PREFILL; do
    lab=${v%%:*}; IFS=, read -r -a envs <<< "${v#*:}"
    room 45 "switch $lab" || continue
    variant_prep $lab "${envs[@]}"
    b fast-p512-$lab fast 512 "${envs[@]}"; b fast-p512-$lab-r2 fast 512 "${envs[@]}"
done
[[ -n $VARIANTS_PREFILL ]] && { b fast-p512-v1 fast 512; }
if [[ ${NCU:-1} == 1 ]] && command -v ncu >/dev/null; then  # per-kernel µs of decode steps (graphs off; ranks kernels, overstates each)
  for nm in ${NCU_NUMERICS:-fast}; do
  ORCD_CUDA_GRAPHS=0 timeout 120 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
    --launch-skip 3000 --launch-count 260 --csv $B/worker-orcd bench --model $M --backend cuda --numerics $nm \
    --prompt-tokens 4 --gen-tokens 64 --repeats 1 > $OUT/ncu-$nm.csv 2>$OUT/ncu-$nm.err
  python3 - $OUT/ncu-$nm.csv $nm <<'PY' || tail -3 $OUT/ncu-$nm.err
import csv, sys, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
h = rows[0]; k = h.index("Kernel Name"); v = h.index("Metric Value"); u = h.index("Metric Unit")
scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
t = collections.defaultdict(list)
for r in rows[1:]:
    t[r[k].split("(")[0]].append(float(r[v].replace(",", "")) * scale.get(r[u], float("nan")))
tot = sum(sum(x) for x in t.values())
units = sorted({r[u] for r in rows[1:]})
print("ncu %s (%d launches, units %s): %.0f us" % (sys.argv[2], len(rows) - 1, units, tot))
for n, x in sorted(t.items(), key=lambda e: -sum(e[1])):
    print("ncu %-5s %-24s n %4d  mean %7.2f us  %5.1f%%" % (sys.argv[2], n[:24], len(x), sum(x) / len(x), 100 * sum(x) / tot))
PY
  done
fi
# NCU_DETAIL=1: one decode step per numerics with occupancy, DRAM and L1 counters per launch
# (raw csv under $OUT; graphs off), to place the time inside the kernels.
if [[ ${NCU_DETAIL:-0} == 1 ]] && command -v ncu >/dev/null; then
  for nm in fast exact; do
  ORCD_CUDA_GRAPHS=0 timeout 150 ncu --clock-control none --cache-control none --csv \
    --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__occupancy_limit_registers,launch__grid_size,smsp__inst_executed.sum,l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,dram__bytes_read.sum \
    --launch-skip 3000 --launch-count 130 $B/worker-orcd bench --model $M --backend cuda --numerics $nm \
    --prompt-tokens 4 --gen-tokens 64 --repeats 1 > $OUT/ncud-$nm.csv 2>$OUT/ncud-$nm.err
  echo "ncu detail $nm: $(grep -c '^"' $OUT/ncud-$nm.csv) rows"
  done
fi
# NCU_STALL=1: where a decode layer's kernels wait (warp-state sampling: stall reasons per
# kernel, speed of light, occupancy) over one layer's launches and the head, graphs off; the
# raw details page under $OUT and the top stall reasons printed per kernel.
if [[ ${NCU_STALL:-0} == 1 ]] && command -v ncu >/dev/null; then
  ORCD_CUDA_GRAPHS=0 timeout 150 ncu --clock-control none --csv --page details \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    --launch-skip ${NCU_STALL_SKIP:-3000} --launch-count ${NCU_STALL_COUNT:-12} $B/worker-orcd bench --model $M --backend cuda \
    --numerics fast --prompt-tokens 4 --gen-tokens 64 --repeats 1 > $OUT/ncus-fast.csv 2>$OUT/ncus-fast.err
  python3 ci/ncu_stall.py $OUT/ncus-fast.csv || tail -3 $OUT/ncus-fast.err
fi
# NCU_K="regex:skip:count:prompt:gen:batch …": ncu's stall reasons (as NCU_STALL) for chosen
# launches of any bench — e.g. the prefill GEMM "mmq_q8_0:0:2:512:0:" or a 16-row step's
# attention "attention:390:2:128:16:16" (batch empty: none; graphs off).
for nk in ${NCU_K:-}; do
  command -v ncu >/dev/null || break
  IFS=: read -r rx skip cnt pt gt bt <<<"$nk"
  tag=$(echo "$rx-$skip" | tr -c 'a-zA-Z0-9_-' _)
  ORCD_CUDA_GRAPHS=0 timeout 120 ncu --clock-control none --csv --page details \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    --kernel-name regex:"^($rx)\$" --launch-skip $skip --launch-count $cnt $B/worker-orcd bench --model $M --backend cuda \
    --numerics fast --prompt-tokens $pt --gen-tokens $gt ${bt:+--batch $bt} --repeats 1 > $OUT/ncuk-$tag.csv 2>$OUT/ncuk-$tag.err
  python3 ci/ncu_stall.py $OUT/ncuk-$tag.csv || tail -3 $OUT/ncuk-$tag.err
done
# NCU_SRC=1: one decode layer's kernels (q·k·v, attention, o, gate·up, down) under ncu's source
# counters: each launch's executed SASS (bytes of code fetched) and its most-stalled
# instructions (ci/ncu_src.py; the raw csv under $OUT).
if [[ ${NCU_SRC:-0} == 1 ]] && command -v ncu >/dev/null; then
  for nm in ${NCU_SRC_NUMERICS:-fast}; do
  ORCD_CUDA_GRAPHS=0 timeout 120 ncu --clock-control none --cache-control none --section SourceCounters \
    -k 'regex:^(attention|matvec8r_q8_0|matvec8_q8_0|matvec8g_q8_0|matvec2l_q8_0)$' --launch-skip 500 --launch-count 5 \
    --page source --print-source sass --csv $B/worker-orcd bench --model $M --backend cuda --numerics $nm \
    --prompt-tokens 4 --gen-tokens 16 --repeats 1 > $OUT/ncusrc-$nm.csv 2>$OUT/ncusrc-$nm.err
  python3 ci/ncu_src.py $OUT/ncusrc-$nm.csv | sed "s/^/$nm /" || tail -3 $OUT/ncusrc-$nm.err
  done
fi
# PROF=1: where a batch-1 decode step's one-row mat-vecs and attention spend their time, phase by
# phase (ORCD_NVRTC_DEFINES="MV_PROF ATT1_PROF": thread 0 of one block a launch prints its SM
# clock at each phase — the wait, the norm, the dots, the reduction, the store; attention's wait,
# query and staging, pass 1, pass 2, weights, pass 3), medians by ci/prof_sum.py. A new define set
# compiles first (~60 s).
if [[ ${PROF:-0} == 1 ]]; then
    echo "SM clock now / max: $(nvidia-smi --query-gpu=clocks.sm,clocks.max.sm --format=csv,noheader)"
    # PROF_EXTRA="SLIM …": defines added to the profiled build (a switch's phases). PROF_MODEL=path:
    # another file's phases (gemma-3's 256-wide heads); PROF_NUMERICS="fast": one column.
    for nm in ${PROF_NUMERICS:-fast exact}; do
        ORCD_NVRTC_DEFINES="MV_PROF ATT1_PROF ${PROF_EXTRA:-}" timeout 180 $B/worker-orcd bench --model ${PROF_MODEL:-$M} --backend cuda --numerics $nm \
            --prompt-tokens 4 --gen-tokens 16 --repeats 1 > $OUT/prof-$nm.txt 2>&1
        python3 ci/prof_sum.py --mhz ${PROF_MHZ:-1755} $OUT/prof-$nm.txt | sed "s/^/$nm /"
    done
fi
# ATT_PROF=1: attention_tile's phases in SM clocks (ORCD_NVRTC_DEFINES=ATT_PROF: thread 0 of
# each tile of layer 0, head 0 prints them; q load, pass 1 dots, pass 2 weights, pass 3 Σ w·v).
if [[ ${ATT_PROF:-0} == 1 ]]; then
    ORCD_NVRTC_DEFINES=ATT_PROF timeout 90 $B/worker-orcd bench --model $M --backend cuda --numerics fast --prompt-tokens 512 \
        --gen-tokens 0 --repeats 1 2>&1 | grep attprof | sort -k3n | awk 'NR % 4 == 0'
fi
# PROFILE_PP=1: where a 512-token prefill's time goes (ORCD_CUDA_PROFILE=1: every launch
# synchronised and timed, graphs off; each launch then costs ~10 us more).
if [[ ${PROFILE_PP:-0} == 1 ]]; then
    ORCD_CUDA_PROFILE=1 timeout 90 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 512 --gen-tokens 0 \
        --repeats 1 --json > $OUT/profile-pp512.json 2>$OUT/profile-pp512.err
    python3 -c 'import json,sys
j = json.load(open(sys.argv[1])); p = j.get("kernel_profile") or []; tot = sum(r["seconds"] for r in p)
print("profile pp512: %.0f tok/s, %d kernels, %.2f ms timed" % (j["prefill_tok_s"], sum(r["launches"] for r in p), tot * 1e3))
for r in p[:14]: print("profile %-22s n %5d  %8.3f ms  %5.1f%%" % (r["kernel"][:22], r["launches"], r["seconds"] * 1e3, 100 * r["seconds"] / max(tot, 1e-12)))' $OUT/profile-pp512.json || tail -3 $OUT/profile-pp512.err
fi
# PROFILE_B16=1: where a 16-sequence decode step's time goes — ncu's time of every launch of a
# `bench --batch 16` (graphs off), grouped by kernel and grid size (the grid separates the
# 16-row launches from the single sequence's and the prefills'), µs a step by class.
if [[ ${PROFILE_B16:-0} == 1 ]] && command -v ncu >/dev/null; then
    ORCD_CUDA_GRAPHS=0 timeout 150 ncu --clock-control none --cache-control none --csv \
        --metrics gpu__time_duration.sum,launch__grid_size $B/worker-orcd bench --model $M --backend cuda \
        --prompt-tokens 128 --gen-tokens ${B16_GEN:-16} --batch 16 --repeats 1 > $OUT/ncu-b16.csv 2>$OUT/ncu-b16.err
    python3 ci/ncu_grid.py $OUT/ncu-b16.csv ${B16_GEN:-16} || tail -3 $OUT/ncu-b16.err
fi
# BATCHED=1 (default): issue 13 item 5, 1/4/16/64 sequences a step (docs/perf/BATCHED.md):
# ours (each sequence its own KV length) and llama-batched-bench on the same file.
if [[ ${BATCHED:-1} == 1 ]]; then
    # ORCD_CUDA_MMQ=1 / 0: with / without the prefill GEMM (a decode step takes the mat-vec either way).
    # BATCHED_MVQ="1 0": also without the once-rounded batched mat-vec (ORCD_CUDA_MVQ=0), the A/B
    # of matvecq_ in one build (no second compile).
    for mv in ${BATCHED_MVQ:-1}; do
    for mq in ${BATCHED_MMQ:-1 0}; do
    ORCD_CUDA_MVQ=$mv ORCD_CUDA_MMQ=$mq timeout 200 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 128 --gen-tokens 128 --batch 1,4,16,64 \
        --repeats 3 --json > $OUT/batched-ours-mvq$mv-mmq$mq.json 2>$OUT/batched-ours-mvq$mv-mmq$mq.err
    python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["batched"]:
    print("ours (%s) batch %3d: decode %8.1f tok/s, %6.2f ms a step" % (sys.argv[2], r["batch"], r["decode_tok_s"], r["step_ms"]))' $OUT/batched-ours-mvq$mv-mmq$mq.json "mvq $mv mmq $mq" || tail -3 $OUT/batched-ours-mvq$mv-mmq$mq.err
    done
    done
    if [[ -d target/gpu-base && ${BATCHED_BASE:-1} == 1 ]]; then  # the base build's batched decode, same call
        timeout 200 target/gpu-base/worker-orcd bench --model $M --backend cuda --prompt-tokens 128 --gen-tokens 128 --batch 1,4,16,64 \
            --repeats 3 --json > $OUT/batched-base.json 2>$OUT/batched-base.err
        python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["batched"]:
    print("base batch %3d: decode %8.1f tok/s, %6.2f ms a step" % (r["batch"], r["decode_tok_s"], r["step_ms"]))' $OUT/batched-base.json || tail -3 $OUT/batched-base.err
    fi
    if [[ ${PEER:-1} == 1 ]]; then
        NPP=128 NTG=128 NPL=1,4,16,64 BATCHED_OUT=$OUT/batched-peer.jsonl timeout 300 bash ci/llamacpp-cuda.sh batched $M > /dev/null 2>$OUT/batched-peer.err
        python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print("llama.cpp batch %3d: decode %8.1f tok/s (S_TG)" % (r["pl"], r["speed_tg"]))' $OUT/batched-peer.jsonl || tail -3 $OUT/batched-peer.err
    fi
fi
# The switches against the default of the same call, one line each (medians of the bench's
# repeats; the default's two runs where there are two).
if [[ -n "$VARIANTS_DECODE$VARIANTS_PREFILL" ]]; then
    python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
def val(label, key):
    try:
        return json.load(open(os.path.join(out, "bench-%s.json" % label)))[key]
    except Exception:
        return None
def base(labels, key):
    v = [x for x in (val(l, key) for l in labels) if x]
    return statistics.mean(v) if v else None
def batched(label):
    try:
        return {r["batch"]: r["decode_tok_s"] for r in json.load(open(os.path.join(out, "batched-%s.json" % label)))["batched"]}
    except Exception:
        return {}
bases = {"fast-p4": base(["fast-p4", "fast-p4-r2"], "decode_tok_s"), "exact-p4": base(["exact-p4", "exact-p4-r2"], "decode_tok_s"),
         "fast-p512": base(["fast-p512-v0", "fast-p512-v1"], "prefill_tok_s")}
bb = batched("ours-mvq1-mmq1")
for f in sorted(glob.glob(os.path.join(out, "bench-*.json"))):
    lab = os.path.basename(f)[6:-5]
    for kind, key in (("fast-p4-", "decode_tok_s"), ("exact-p4-", "decode_tok_s"), ("fast-p512-", "prefill_tok_s")):
        if lab.startswith(kind) and lab[len(kind):] not in ("r2", "v0", "v1", "", "mmq", "mmq64", "att0") and bases.get(kind[:-1]):
            v = val(lab, key)
            if v:
                print("switch %-24s %9.1f tok/s  default %9.1f  %+6.1f%%" % (lab, v, bases[kind[:-1]], 100 * (v / bases[kind[:-1]] - 1)))
for f in sorted(glob.glob(os.path.join(out, "batched-*.json"))):
    lab = os.path.basename(f)[8:-5]
    if lab.startswith("ours-") or lab in ("base", "peer"):
        continue
    for n, v in sorted(batched(lab).items()):
        if bb.get(n):
            print("switch %-16s batch %3d %9.1f tok/s  default %9.1f  %+6.1f%%" % (lab, n, v, bb[n], 100 * (v / bb[n] - 1)))
PY
fi
# PACK_PEER=1: the peer's build packed under $OUT in 15 MiB parts (~40 MiB in all).
[[ ${PACK_PEER:-0} == 1 && ${PEER:-1} == 1 ]] && bash ci/llamacpp-cuda.sh pack-bin $OUT/llamacpp-bin.tar.xz
# What comes back is at most 8 files: the peer's binaries and one tarball of the rest.
cd $OUT && find . -maxdepth 1 -type f ! -name 'llamacpp-bin.tar.xz.part-*' ! -name logs.tar.gz -printf '%P\n' | tar -czf logs.tar.gz -T - && \
    find . -maxdepth 1 -type f ! -name 'llamacpp-bin.tar.xz.part-*' ! -name logs.tar.gz -delete; find . -mindepth 1 -type d -exec rm -rf {} + ; cd - >/dev/null
echo "all done at $((SECONDS-T0)) s"
