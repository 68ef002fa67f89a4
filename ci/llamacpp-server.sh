#!/usr/bin/env bash
# llama.cpp's `llama-server` for the CPU, the serving peer of issue 12 (docs/SERVING.md), built
# on this machine from the source llama-cpp-python 0.3.36 vendors (fixtures/fetch.py unpacks it
# into $ORCD_CACHE/llama_cpp_python-0.3.36) with llama.cpp's default native CPU flags.
#
#   bash ci/llamacpp-server.sh            # → target/llamacpp-server/bin/llama-server (reused when built)
#
# Needs cmake and a C++ compiler (`pip install cmake ninja` gives the first). No web UI (the
# prebuilt one is downloaded at build time; a benchmark needs none) and no curl (models are
# local files). On 2 cores: about 10–15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${ORCD_CACHE:-$HOME/.cache/orcd}"
SRC="$CACHE/llama_cpp_python-0.3.36/vendor/llama.cpp"
BUILD=target/llamacpp-server
die() {
    echo "error: $*" >&2
    exit 2
}
[[ -f "$SRC/CMakeLists.txt" ]] || die "$SRC not found (run python3 fixtures/fetch.py)"
command -v cmake >/dev/null || die "cmake not found (pip install cmake ninja)"
if [[ -x "$BUILD/bin/llama-server" ]]; then
    echo "llama-server: $BUILD/bin/llama-server (already built)"
    exit 0
fi
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
t0=$SECONDS
cmake -S "$SRC" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$BUILD.configure.log" 2>&1 ||
    { tail -20 "$BUILD.configure.log"; die "configure failed"; }
cmake --build "$BUILD" -j "$(nproc)" --target llama-server
echo "llama-server: $BUILD/bin/llama-server (built in $((SECONDS - t0)) s)"
