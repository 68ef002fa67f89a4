#!/usr/bin/env bash
# Split fetched fixtures into parts that a GPU runner call can carry one at a time (runs on the
# CPU machine; docs/GPU_RUNNER.md). A call carries the tracked tree (~33 MB) plus at most 64 MiB in
# all, so a real model travels in parts over back-to-back calls to a warm machine, and
# `bash ci/gpu-run.sh assemble` there joins them and checks the sha256.
#
#   bash ci/gpu-model-parts.sh SmolLM2-135M-Instruct.Q4_1.gguf   # a file of $ORCD_CACHE/models
#   bash ci/gpu-model-parts.sh tokenizers/o200k_harmony-gpt-4o-vocab.gguf   # any cache-relative file
#   bash ci/gpu-model-parts.sh vocab      # the vocabularies the synthetic models copy (one tar)
#   bash ci/gpu-model-parts.sh --max-mib 20 gemma-3-270m-q4_k_m.gguf
#   bash ci/gpu-model-parts.sh --plan     # the calls: target/gpu, target/llamacpp-src and every part
#                                         # folder packed into as few carries as fit 64 MiB each
#
# Layout (target/ is git-ignored): target/parts/<label>/part-NN/{chunk,manifest}, one folder per
# call (`carry: ["target/parts/<label>/part-00"]`), plus target/parts/<label>/sha256 (sha256sum
# format, for reference here). Each manifest names the destination (relative to $ORCD_CACHE), the
# whole file's size and sha256, the part count, and this chunk's sha256, so every part folder is
# self-describing. Idempotent: a label whose parts already match the source's sha256 is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ORCD_CACHE:-$HOME/.cache/orcd}"
MAX_MIB=24
OUT_ROOT=target/parts

# The vocabularies `conformance/src/suites/gguf.rs::synthetic_vocab` gives the synthetic models
# (gemma3's is the real gemma-3-270m model: carry that one as a model).
VOCAB_FILES=(
    llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf
    llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf
    llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-phi-3.gguf
    llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf
    tokenizers/o200k_harmony-gpt-4o-vocab.gguf
)

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

die() {
    echo "error: $*" >&2
    exit 2
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# Bytes the tracked tree (and untracked, not ignored files) put in every call.
tree_bytes() {
    { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 -r stat -c %s -- 2>/dev/null |
        awk '{ s += $1 } END { print s + 0 }'
}

# split_file SRC DEST_REL LABEL
split_file() {
    local src="$1" dest="$2" label="$3"
    local dir="$OUT_ROOT/$label" size sha n part chunk_sha i
    size=$(stat -c %s "$src")
    echo "== $label: $src ($(mib "$size"))"
    sha=$(sha256sum "$src" | cut -d' ' -f1)
    if [[ -f "$dir/sha256" ]] && [[ "$(cut -d' ' -f1 "$dir/sha256")" == "$sha" ]] && [[ -f "$dir/part-00/manifest" ]] &&
        grep -qx "max_mib=$MAX_MIB" "$dir/part-00/manifest"; then
        echo "   kept (parts already match sha256 $sha)"
    else
        rm -rf "$dir"
        mkdir -p "$dir"
        local tmp="$dir/.split"
        mkdir -p "$tmp"
        split -d -a 2 -b "${MAX_MIB}M" "$src" "$tmp/chunk-"
        n=$(find "$tmp" -name 'chunk-*' | wc -l)
        for chunk in "$tmp"/chunk-*; do
            i="${chunk##*-}"
            part="$dir/part-$i"
            mkdir -p "$part"
            mv "$chunk" "$part/chunk"
            chunk_sha=$(sha256sum "$part/chunk" | cut -d' ' -f1)
            cat >"$part/manifest" <<EOF
dest=$dest
size=$size
sha256=$sha
parts=$n
part=$((10#$i))
part_sha256=$chunk_sha
max_mib=$MAX_MIB
EOF
        done
        rmdir "$tmp"
        echo "$sha  $dest" >"$dir/sha256"
    fi
    for part in "$dir"/part-*; do
        printf '   %-52s %s\n' "$part" "$(mib "$(stat -c %s "$part/chunk")")"
    done
}

# Pack what there is to carry into calls: each at most 64 MiB with the tree (1 MiB margin) and 8
# paths; target/gpu rides in the first call so that `info` and the ops suite can run at once.
plan() {
    local tree
    tree=$(tree_bytes)
    {
        for p in target/gpu target/llamacpp-src "$OUT_ROOT"/*/part-*; do
            [[ -e "$p" ]] || continue
            echo "$(find "$p" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') $p"
        done
    } | python3 -c '
import sys
tree = int(sys.argv[1])
cap = 64 * 2**20 - tree - 2**20
items = [(int(n), p) for n, p in (l.split(" ", 1) for l in sys.stdin.read().splitlines())]
mib = lambda b: f"{b / 2**20:.1f} MiB"
for n, p in items:
    if n > cap:
        sys.exit(f"error: {p} is {mib(n)}, more than a call can add ({mib(cap)}): re-split with a smaller --max-mib")
first = [x for x in items if x[1] == "target/gpu"]
rest = sorted((x for x in items if x[1] != "target/gpu"), key=lambda x: -x[0])
calls = [[x] for x in first]
for x in rest:
    for c in calls:
        if sum(n for n, _ in c) + x[0] <= cap and len(c) < 8:
            c.append(x)
            break
    else:
        calls.append([x])
print(f"tracked tree {mib(tree)}; a call may add {mib(cap)} (1 MiB margin); {len(calls)} calls, back to back:")
for i, c in enumerate(calls, 1):
    carry = ", ".join(chr(34) + p + chr(34) for _, p in c)
    cmd = "bash ci/gpu-run.sh info; bash ci/gpu-run.sh assemble" if i == 1 else "bash ci/gpu-run.sh assemble"
    print(f"call {i:2d}  {mib(sum(n for n, _ in c)):>9} + tree = {mib(tree + sum(n for n, _ in c)):>9}  carry: [{carry}]")
    print(f"          command: {cmd}")
print("then, carrying nothing: bash ci/gpu-run.sh gate / sanitize / peer (docs/GPU_RUNNER.md)")
' "$tree"
}

labels=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --plan)
            plan
            exit 0
            ;;
        --max-mib)
            MAX_MIB="${2:?--max-mib needs a number}"
            if ! [[ "$MAX_MIB" =~ ^[0-9]+$ ]] || ((MAX_MIB == 0)); then
                die "--max-mib: not a positive integer: $MAX_MIB"
            fi
            shift 2
            ;;
        -h | --help) usage ;;
        -*) die "unknown option $1" ;;
        *)
            labels+=("$1")
            shift
            ;;
    esac
done
[[ ${#labels[@]} -gt 0 ]] || usage

mkdir -p "$OUT_ROOT"
made=()
for arg in "${labels[@]}"; do
    if [[ "$arg" == vocab ]]; then
        # One tar of the vocabularies (paths relative to the cache): `assemble` unpacks it there.
        for f in "${VOCAB_FILES[@]}"; do
            [[ -f "$CACHE/$f" ]] || die "$CACHE/$f missing (run python3 fixtures/fetch.py)"
        done
        tarball="$OUT_ROOT/.vocab.tar.gz"
        # Deterministic bytes (fixed order, owner and mtime), so a re-run keeps the same sha256.
        tar -C "$CACHE" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
            -cf - "${VOCAB_FILES[@]}" | gzip -n -9 >"$tarball.tmp"
        mv "$tarball.tmp" "$tarball"
        split_file "$tarball" vocab.tar.gz vocab
        made+=(vocab)
        continue
    fi
    if [[ "$arg" == */* ]]; then
        rel="$arg"
    else
        rel="models/$arg"
    fi
    src="$CACHE/$rel"
    [[ -f "$src" ]] || die "$src not found (run python3 fixtures/fetch.py, or name a file under $CACHE)"
    label=$(basename "$rel")
    label="${label%.gguf}"
    split_file "$src" "$rel" "$label"
    made+=("$label")
done

tree=$(tree_bytes)
limit=$((64 * 1048576))
echo
echo "tracked tree (travels with every call): $(mib "$tree"); each call may add $(mib $((limit - tree)))"
echo "carry one part folder per call, back to back, each followed by: bash ci/gpu-run.sh assemble"
printf '%-56s %12s %s\n' "carry" "part" "call total"
for label in "${made[@]}"; do
    for part in "$OUT_ROOT/$label"/part-*; do
        b=$(stat -c %s "$part/chunk")
        total=$((tree + b))
        flag=""
        ((total > limit)) && flag="  OVER 64 MiB: use --max-mib $(((limit - tree) / 1048576 - 1))"
        printf '%-56s %12s %s%s\n' "$part" "$(mib "$b")" "$(mib "$total")" "$flag"
    done
done
