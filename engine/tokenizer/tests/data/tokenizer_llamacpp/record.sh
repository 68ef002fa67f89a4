#!/usr/bin/env bash
# Re-record the llama.cpp tokenizer goldens in this folder (engine/tokenizer/tests/tokenizer_vocab.rs reads
# them). The reference is llama.cpp as vendored in llama-cpp-python 0.3.36 (fetched into the cache
# by `python3 fixtures/fetch.py`), built vocab-only with cmake; tok.cpp drives it.
# Needs: cmake, a C++17 compiler, python3 with gguf==0.19.0. Usage: record.sh [build dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${ORCD_CACHE:-$HOME/.cache/orcd}
src=$cache/llama_cpp_python-0.3.36/vendor/llama.cpp
build=${1:-${TMPDIR:-/tmp}/orcd-llamacpp-vocab}

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_BUILD_COMMON=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_OPENMP=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_BACKEND_DL=OFF >/dev/null
cmake --build "$build" --target llama -j"$(nproc)"
g++ -O1 -std=c++17 -I"$src/include" -I"$src/ggml/include" "$here/tok.cpp" "$build/src/libllama.a" \
  "$build/ggml/src/libggml.a" "$build/ggml/src/libggml-cpu.a" "$build/ggml/src/libggml-base.a" \
  -lpthread -ldl -lm -o "$build/tok"

record() { # name model-path
  python3 "$here/cases.py" "$2" "$src/models" "$build/$1.cases" 60
  "$build/tok" "$2" "$build/$1.cases" "$build/$1.out"
  {
    echo "# llama.cpp tokenizer golden: llama-cpp-python 0.3.36 vendored llama.cpp, vocab-only; model $(basename "$2")"
    echo "# recorded by engine/tokenizer/tests/data/tokenizer_llamacpp/record.sh; columns: flags (add_special parse_special), text hex, ids, detokenized hex"
    cat "$build/$1.out"
  } > "$here/$1.tsv"
  echo "wrote $here/$1.tsv ($(wc -l < "$here/$1.tsv") lines)"
}
record gemma-3-270m "$cache/models/gemma-3-270m-q4_k_m.gguf"
record smollm2-135m "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
for v in qwen2 llama-spm phi-3 llama-bpe gemma-4 deepseek-llm bert-bge; do
  record "vocab-$v" "$src/models/ggml-vocab-$v.gguf"
done
