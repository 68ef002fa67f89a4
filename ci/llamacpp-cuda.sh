#!/usr/bin/env bash
# llama.cpp with CUDA, the GPU peer of DESIGN §9, built from the source that llama-cpp-python
# 0.3.36 vendors (fixtures/fetch.py unpacks it into $ORCD_CACHE/llama_cpp_python-0.3.36).
#
#   bash ci/llamacpp-cuda.sh prepare          # CPU machine: trimmed source → target/llamacpp-src/
#   bash ci/llamacpp-cuda.sh build            # GPU machine: cmake + nvcc → llama-bench, llama-batched-bench
#                                             # (~290 s, 16 cores)
#   bash ci/llamacpp-cuda.sh bench MODEL.gguf # GPU machine: llama-bench -fa 1 -p 512 -n 128 -r 5 -o json
#   bash ci/llamacpp-cuda.sh build-cpu        # any machine: -DGGML_CUDA=OFF, native CPU flags → the same
#                                             # two tools in target/llamacpp/build-cpu-native/ (2 cores: ~10 min)
#   bash ci/llamacpp-cuda.sh batched MODEL.gguf  # llama-batched-bench -c CTX -b 2048 -ub 512 -npp 128
#                                             # -ntg 128 -npl 1,4,16,64 --output-format jsonl: the CUDA
#                                             # build's (-ngl 99) when built, else the CPU build's; jsonl
#                                             # lines on stdout, also saved (docs/perf/BATCHED.md)
#   bash ci/llamacpp-cuda.sh pack-bin [FILE]  # GPU machine: the built llama-bench and its shared
#                                             # libraries, stripped, in 15 MiB parts FILE.part-NN (default
#                                             # $OUT/llamacpp-bin.tar.xz; ~40 MiB: bring them back, put them
#                                             # in target/llamacpp-bin/ and carry them so a fresh machine's
#                                             # `build` unpacks them instead of compiling; not yet tried)
#   bash ci/llamacpp-cuda.sh configure-cpu    # any machine with cmake: configure with -DGGML_CUDA=OFF
#                                             # (checks the trimmed tree is complete, compiles nothing)
#
# `prepare` copies only what the llama-bench build reads (CMakeLists.txt, LICENSE, cmake/, include/,
# src/, common/, vendor/, ggml/ with only its CPU and CUDA backends, tools/llama-bench,
# tools/batched-bench; no models/,
# docs/, tests/) and packs it as target/llamacpp-src/llama.cpp.tar.xz (a few MiB; carry
# "target/llamacpp-src"). `build` unpacks it under target/llamacpp/ (ignored: a warm machine keeps
# it, and a build whose source is unchanged is reused), reduces tools/CMakeLists.txt to
# add_subdirectory(llama-bench) and add_subdirectory(batched-bench), and builds the two targets.
# Environment: ORCD_CACHE (default ~/.cache/orcd), LLAMACPP_JOBS (default: nproc),
# LLAMACPP_CUDA_ARCH (default 90a), BENCH_ARGS (default "-fa 1 -p 512 -n 128 -r 5");
# for `batched`: NPP (128), NTG (128), NPL (1,4,16,64), THREADS (-t; default llama.cpp's own),
# CTX (default max(NPL) × (NPP + NTG): llama.cpp splits a non-unified cache evenly among the
# sequences), BATCHED_EXTRA (more flags), LLAMACPP_BIN (the binary to run), BATCHED_OUT (file for the
# jsonl; default $OUT/llama-batched-bench.jsonl when $OUT is set, else target/llamacpp/batched.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ORCD_CACHE:-$HOME/.cache/orcd}"
VENDORED="$CACHE/llama_cpp_python-0.3.36/vendor/llama.cpp"
SRC_DIR=target/llamacpp-src
TARBALL="$SRC_DIR/llama.cpp.tar.xz"
WORK=target/llamacpp
JOBS="${LLAMACPP_JOBS:-$(nproc)}"
ARCH="${LLAMACPP_CUDA_ARCH:-90a}"

die() {
    echo "error: $*" >&2
    exit 2
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
dir_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# What the build reads, relative to llama.cpp/ (ggml/src is trimmed below).
KEEP=(CMakeLists.txt LICENSE cmake include src common vendor ggml tools/CMakeLists.txt tools/llama-bench
    tools/batched-bench)
# Bumped when KEEP or reduce_tools change: a tree copied earlier under another revision is copied anew.
TREE_REV=2
# ggml/src/<backend> folders kept: the CPU backend (always built) and CUDA.
KEEP_GGML_BACKENDS=(ggml-cpu ggml-cuda)

prepare() {
    [[ -f "$VENDORED/CMakeLists.txt" ]] || die "$VENDORED not found (run python3 fixtures/fetch.py)"
    local stage
    stage=$(mktemp -d)
    STAGE="$stage"
    trap 'rm -rf "${STAGE:-}"' EXIT
    local t="$stage/llama.cpp"
    mkdir -p "$t/tools"
    for p in "${KEEP[@]}"; do
        [[ -e "$VENDORED/$p" ]] || die "$VENDORED/$p missing: the vendored tree changed, revise KEEP"
        cp -a "$VENDORED/$p" "$t/$p"
    done
    # Every ggml backend folder but CPU and CUDA: ggml_add_backend() only enters enabled ones.
    for d in "$t"/ggml/src/ggml-*/; do
        local name keep=0
        name=$(basename "$d")
        for k in "${KEEP_GGML_BACKENDS[@]}"; do [[ "$name" == "$k" ]] && keep=1; done
        [[ $keep -eq 1 ]] || rm -rf "$d"
    done
    # ggml's own tests and examples are off unless ggml is the top-level project.
    rm -rf "$t/ggml/tests" "$t/ggml/examples"
    reduce_tools "$t"
    local raw
    raw=$(dir_bytes "$t")
    mkdir -p "$SRC_DIR"
    rm -rf "${SRC_DIR:?}"/*
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' -cf - llama.cpp |
        xz -T0 -6 >"$TARBALL.tmp"
    mv "$TARBALL.tmp" "$TARBALL"
    (cd "$SRC_DIR" && sha256sum llama.cpp.tar.xz >llama.cpp.tar.xz.sha256)
    if [[ "${KEEP_TREE:-0}" == 1 ]]; then
        rm -rf "$WORK/src"
        mkdir -p "$WORK"
        cp -a "$t" "$WORK/src"
    fi
    echo "vendored tree:   $(mib "$(dir_bytes "$VENDORED")")  ($VENDORED)"
    echo "trimmed tree:    $(mib "$raw")  ($(find "$t" -type f | wc -l) files)"
    echo "carried tarball: $(mib "$(stat -c %s "$TARBALL")")  ($TARBALL; carry \"$SRC_DIR\")"
    rm -rf "$stage"
}

# tools/CMakeLists.txt → llama-bench and batched-bench alone (the other tools pull in server, mtmd,
# audio...).
reduce_tools() {
    cat >"$1/tools/CMakeLists.txt" <<'EOF'
# reduced by worker-orcd ci/llamacpp-cuda.sh: llama-bench and llama-batched-bench only
add_subdirectory(llama-bench)
add_subdirectory(batched-bench)
EOF
}

# Unpack the carried tarball (or copy the fetched tree) into $WORK/src, unless already there.
source_tree() {
    mkdir -p "$WORK"
    local stamp="$WORK/src.sha256" want
    if [[ -f "$TARBALL" ]]; then
        want=$(sha256sum "$TARBALL" | cut -d' ' -f1)
        if [[ -f "$WORK/src/CMakeLists.txt" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
            echo "source: $WORK/src (unpacked earlier from $TARBALL)"
            return
        fi
        rm -rf "$WORK/src" "$WORK/unpack"
        mkdir -p "$WORK/unpack"
        if command -v xz >/dev/null; then
            tar -C "$WORK/unpack" -xJf "$TARBALL"
        else
            python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$TARBALL" "$WORK/unpack"
        fi
        mv "$WORK/unpack/llama.cpp" "$WORK/src"
        rmdir "$WORK/unpack"
        echo "$want" >"$stamp"
        echo "source: $WORK/src (from $TARBALL)"
    elif [[ -f "$VENDORED/CMakeLists.txt" ]]; then
        want="vendored:$VENDORED rev=$TREE_REV"
        if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
            echo "source: $WORK/src (copied earlier from $VENDORED)"
            return
        fi
        rm -rf "$WORK/src"
        mkdir -p "$WORK/src/tools"
        for p in "${KEEP[@]}"; do cp -a "$VENDORED/$p" "$WORK/src/$p"; done
        echo "$want" >"$stamp"
        echo "source: $WORK/src (from $VENDORED)"
    else
        die "no llama.cpp source: carry $SRC_DIR (made by 'bash ci/llamacpp-cuda.sh prepare' on the CPU machine) or run python3 fixtures/fetch.py"
    fi
    reduce_tools "$WORK/src"
}

CMAKE_FLAGS=(-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DCMAKE_BUILD_TYPE=Release)

build() {
    command -v cmake >/dev/null || die "cmake not found"
    command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]] || die "nvcc not found (CUDA toolkit)"
    command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
    source_tree
    local bin="$WORK/build/bin/llama-bench" key
    key="$(cat "$WORK/src.sha256") arch=$ARCH"
    if [[ -x "$bin" && -x "$WORK/build/bin/llama-batched-bench" && -f "$WORK/build.key" &&
        "$(cat "$WORK/build.key")" == "$key" ]]; then
        echo "llama-bench: $bin (built earlier from the same source)"
        return
    fi
    local pre=target/llamacpp-bin/llamacpp-bin.tar.xz
    # Brought back in parts (a file from the device is at most 16 MiB): join them first.
    if [[ ! -f "$pre" ]] && compgen -G "$pre.part-*" >/dev/null; then cat "$pre".part-* >"$pre"; fi
    if [[ -f "$pre" ]] && [[ "$(tar -xJOf "$pre" build.key 2>/dev/null)" == "$key" ]]; then
        rm -rf "$WORK/build" && mkdir -p "$WORK/build"
        tar -C "$WORK/build" -xJf "$pre"
        echo "$key" >"$WORK/build.key"
        echo "llama-bench: $bin (unpacked from $pre, built earlier from the same source and arch)"
        return
    fi
    local t0=$SECONDS
    cmake -S "$WORK/src" -B "$WORK/build" -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${CMAKE_FLAGS[@]}"
    cmake --build "$WORK/build" -j "$JOBS" --target llama-bench llama-batched-bench
    [[ -x "$bin" ]] || die "the build finished without $bin"
    [[ -x "$WORK/build/bin/llama-batched-bench" ]] || die "the build finished without llama-batched-bench"
    echo "$key" >"$WORK/build.key"
    echo "llama-bench: $bin (built in $((SECONDS - t0)) s with -j $JOBS, CUDA arch $ARCH)"
}

pack_bin() {
    local dest="${1:-${OUT:?}/llamacpp-bin.tar.xz}" stage
    [[ -x "$WORK/build/bin/llama-bench" && -f "$WORK/build.key" ]] || die "nothing built to pack"
    stage=$(mktemp -d)
    mkdir -p "$stage/bin"
    cp -a "$WORK/build/bin/llama-bench" "$WORK"/build/bin/*.so* "$stage/bin/"
    if [[ -x "$WORK/build/bin/llama-batched-bench" ]]; then
        cp -a "$WORK/build/bin/llama-batched-bench" "$stage/bin/"
    fi
    strip --strip-unneeded "$stage"/bin/* 2>/dev/null || true
    cp "$WORK/build.key" "$stage/build.key"
    # The libraries' RUNPATH names $WORK/build/bin: `build` unpacks there.
    tar -C "$stage" -cf - build.key bin | xz -T0 -9 >"$dest"
    rm -rf "$stage"
    # Parts of 15 MiB: what a device call brings back is at most 16 MiB a file (copy them here
    # into target/llamacpp-bin/, carry them over two calls; `build` joins them).
    split -b 15M -d -a 2 "$dest" "$dest.part-"
    rm -f "$dest"
    echo "packed: $(ls "$dest".part-* | wc -l) parts of $dest ($(cat "$dest".part-* | wc -c) bytes)"
}

configure_cpu() {
    command -v cmake >/dev/null || die "cmake not found"
    if [[ ! -f "$WORK/src/CMakeLists.txt" || -f "$TARBALL" ]]; then source_tree; fi
    rm -rf "$WORK/build-cpu"
    cmake -S "$WORK/src" -B "$WORK/build-cpu" -DGGML_CUDA=OFF "${CMAKE_FLAGS[@]}"
    echo "configure (GGML_CUDA=OFF) of the trimmed tree: ok"
}

# The CPU build (no CUDA; llama.cpp's default GGML_NATIVE=ON: this machine's ISA), for the
# peer of docs/perf/BATCHED.md on the CPU machine. Its own folder: configure-cpu's is wiped each time.
CPU_BUILD="$WORK/build-cpu-native"
build_cpu() {
    command -v cmake >/dev/null || die "cmake not found (pip install cmake ninja)"
    source_tree
    local key bin="$CPU_BUILD/bin/llama-batched-bench"
    key="$(cat "$WORK/src.sha256") cpu-native"
    if [[ -x "$bin" && -x "$CPU_BUILD/bin/llama-bench" && -f "$CPU_BUILD.key" &&
        "$(cat "$CPU_BUILD.key")" == "$key" ]]; then
        echo "llama-batched-bench: $bin (built earlier from the same source)"
        return
    fi
    local gen=() t0=$SECONDS
    command -v ninja >/dev/null && gen=(-G Ninja)
    rm -rf "$CPU_BUILD" "$CPU_BUILD.key"
    cmake -S "$WORK/src" -B "$CPU_BUILD" "${gen[@]}" -DGGML_CUDA=OFF -DGGML_NATIVE=ON "${CMAKE_FLAGS[@]}"
    cmake --build "$CPU_BUILD" -j "$JOBS" --target llama-bench llama-batched-bench
    [[ -x "$bin" ]] || die "the build finished without $bin"
    echo "$key" >"$CPU_BUILD.key"
    echo "llama-batched-bench: $bin (CPU, built in $((SECONDS - t0)) s with -j $JOBS)"
}

batched() {
    local model="${1:-}"
    [[ -n "$model" ]] || die "batched needs a model file"
    [[ -f "$model" ]] || die "$model not found"
    local bin="${LLAMACPP_BIN:-}" gpu=()
    if [[ -z "$bin" ]]; then
        if [[ -x "$WORK/build/bin/llama-batched-bench" ]]; then
            bin="$WORK/build/bin/llama-batched-bench"
        else
            bin="$CPU_BUILD/bin/llama-batched-bench"
        fi
    fi
    [[ -x "$bin" ]] || die "$bin not built (bash ci/llamacpp-cuda.sh build, or build-cpu)"
    [[ "$bin" == "$WORK/build/bin/"* ]] && gpu=(-ngl 99)
    local npp="${NPP:-128}" ntg="${NTG:-128}" npl="${NPL:-1,4,16,64}" ctx="${CTX:-}" max_pl=0 max_pp=0 max_tg=0 v
    for v in ${npl//,/ }; do ((v > max_pl)) && max_pl=$v; done
    for v in ${npp//,/ }; do ((v > max_pp)) && max_pp=$v; done
    for v in ${ntg//,/ }; do ((v > max_tg)) && max_tg=$v; done
    [[ -n "$ctx" ]] || ctx=$((max_pl * (max_pp + max_tg)))
    local threads=()
    [[ -n "${THREADS:-}" ]] && threads=(-t "$THREADS")
    local out="${BATCHED_OUT:-}"
    if [[ -z "$out" ]]; then
        if [[ -n "${OUT:-}" ]]; then out="$OUT/llama-batched-bench.jsonl"; else out="$WORK/batched.jsonl"; fi
    fi
    mkdir -p "$(dirname "$out")"
    local cmd=("$bin" -m "$model" -c "$ctx" -b 2048 -ub 512 -npp "$npp" -ntg "$ntg" -npl "$npl" "${threads[@]}"
        "${gpu[@]}" --output-format jsonl)
    # shellcheck disable=SC2206 # BATCHED_EXTRA is a list of flags
    cmd+=(${BATCHED_EXTRA:-})
    echo "+ ${cmd[*]}" >&2
    # The jsonl rows are on stdout (the log, the model's and the timings' lines on stderr).
    "${cmd[@]}" | tee "$out.tmp"
    grep '^{' "$out.tmp" >"$out" || die "no jsonl rows from $bin"
    rm -f "$out.tmp"
    echo "saved: $out" >&2
}

bench() {
    local model="${1:-}"
    [[ -n "$model" ]] || die "bench needs a model file"
    [[ -f "$model" ]] || die "$model not found"
    local bin="$WORK/build/bin/llama-bench"
    [[ -x "$bin" ]] || die "$bin not built (bash ci/llamacpp-cuda.sh build)"
    # shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
    "$bin" -m "$model" ${BENCH_ARGS:--fa 1 -p 512 -n 128 -r 5} -o json
}

case "${1:-}" in
    prepare) prepare ;;
    build) build ;;
    configure-cpu) configure_cpu ;;
    build-cpu) build_cpu ;;
    batched)
        shift
        batched "$@"
        ;;
    pack-bin)
        shift
        pack_bin "$@"
        ;;
    bench)
        shift
        bench "$@"
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
