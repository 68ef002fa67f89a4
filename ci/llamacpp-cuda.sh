#!/usr/bin/env bash
# llama.cpp with CUDA, the GPU peer of DESIGN §9, built from the source that llama-cpp-python
# 0.3.36 vendors (fixtures/fetch.py unpacks it into $ORCD_CACHE/llama_cpp_python-0.3.36).
#
#   bash ci/llamacpp-cuda.sh prepare          # CPU machine: trimmed source → target/llamacpp-src/
#   bash ci/llamacpp-cuda.sh build            # GPU machine: cmake + nvcc → llama-bench (~290 s, 16 cores)
#   bash ci/llamacpp-cuda.sh bench MODEL.gguf # GPU machine: llama-bench -fa 1 -p 512 -n 128 -r 5 -o json
#   bash ci/llamacpp-cuda.sh pack-bin [FILE]  # GPU machine: the built llama-bench and its shared
#                                             # libraries, stripped, in 15 MiB parts FILE.part-NN (default
#                                             # $OUT/llamacpp-bin.tar.xz; ~40 MiB: bring them back, put them
#                                             # in target/llamacpp-bin/ and carry them so a fresh machine's
#                                             # `build` unpacks them instead of compiling; not yet tried)
#   bash ci/llamacpp-cuda.sh configure-cpu    # any machine with cmake: configure with -DGGML_CUDA=OFF
#                                             # (checks the trimmed tree is complete, compiles nothing)
#
# `prepare` copies only what the llama-bench build reads (CMakeLists.txt, LICENSE, cmake/, include/,
# src/, common/, vendor/, ggml/ with only its CPU and CUDA backends, tools/llama-bench; no models/,
# docs/, tests/) and packs it as target/llamacpp-src/llama.cpp.tar.xz (a few MiB; carry
# "target/llamacpp-src"). `build` unpacks it under target/llamacpp/ (ignored: a warm machine keeps
# it, and a build whose source is unchanged is reused), reduces tools/CMakeLists.txt to
# add_subdirectory(llama-bench), and builds the one target.
# Environment: ORCD_CACHE (default ~/.cache/orcd), LLAMACPP_JOBS (default: nproc),
# LLAMACPP_CUDA_ARCH (default 90a), BENCH_ARGS (default "-fa 1 -p 512 -n 128 -r 5").
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
KEEP=(CMakeLists.txt LICENSE cmake include src common vendor ggml tools/CMakeLists.txt tools/llama-bench)
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

# tools/CMakeLists.txt → llama-bench alone (the other tools pull in server, mtmd, audio...).
reduce_tools() {
    cat >"$1/tools/CMakeLists.txt" <<'EOF'
# reduced by worker-orcd ci/llamacpp-cuda.sh: llama-bench only
add_subdirectory(llama-bench)
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
        want="vendored:$VENDORED"
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
    if [[ -x "$bin" && -f "$WORK/build.key" && "$(cat "$WORK/build.key")" == "$key" ]]; then
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
    cmake --build "$WORK/build" -j "$JOBS" --target llama-bench
    [[ -x "$bin" ]] || die "the build finished without $bin"
    echo "$key" >"$WORK/build.key"
    echo "llama-bench: $bin (built in $((SECONDS - t0)) s with -j $JOBS, CUDA arch $ARCH)"
}

pack_bin() {
    local dest="${1:-${OUT:?}/llamacpp-bin.tar.xz}" stage
    [[ -x "$WORK/build/bin/llama-bench" && -f "$WORK/build.key" ]] || die "nothing built to pack"
    stage=$(mktemp -d)
    mkdir -p "$stage/bin"
    cp -a "$WORK/build/bin/llama-bench" "$WORK"/build/bin/*.so* "$stage/bin/"
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
    pack-bin)
        shift
        pack_bin "$@"
        ;;
    bench)
        shift
        bench "$@"
        ;;
    *)
        sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
