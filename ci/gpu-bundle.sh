#!/usr/bin/env bash
# Build what a GPU runner needs and put it in target/gpu/ (runs on the CPU machine; the GPU
# machine has no cargo and no network: DESIGN §8, docs/GPU_RUNNER.md).
#
#   bash ci/gpu-bundle.sh             # orcd-gate, worker-orcd, orcd-fixtures (debug info stripped)
#   bash ci/gpu-bundle.sh --nextest   # also a nextest archive of the workspace's tests and the
#                                     # cargo-nextest binary (23 MB: for runners with more room)
#
# target/ is git-ignored: the call to the GPU machine carries it with `carry: ["target/gpu"]`
# and runs `bash ci/gpu-run.sh ...` there. A call carries the tracked tree (~33 MB) plus at most
# 64 MiB in all, so this warns when target/gpu passes 28 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

NEXTEST=0
for a in "$@"; do
    case "$a" in
        --nextest) NEXTEST=1 ;;
        -h | --help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "error: unknown argument $a (expected --nextest)" >&2
            exit 2
            ;;
    esac
done

WARN_MIB=28
OUT=target/gpu
BINS=(orcd-gate worker-orcd orcd-fixtures)

echo "== cargo build --release (orcd-gate, worker-orcd, orcd-fixtures)"
cargo build --release --locked -p orcd-conformance --bin orcd-gate -p worker-orcd --bin worker-orcd \
    -p orcd-fixtures --bin orcd-fixtures

mkdir -p "$OUT"
# Keep symbols (readable panics and backtraces there), drop DWARF: ~5x smaller.
for b in "${BINS[@]}"; do
    objcopy --strip-debug "target/release/$b" "$OUT/$b.tmp"
    mv "$OUT/$b.tmp" "$OUT/$b"
    chmod +x "$OUT/$b"
done
# The test binaries that need the GPU and are small enough to travel with every bundle: the CUDA
# crate's unit tests, the planted-bug tests (the CUDA NeoX RoPE plant) and multi_seq (batched =
# alone, graph replay = op by op, on the cuda columns). Run there as
# `target/gpu/tests/<name> --test-threads 1`.
echo "== cargo test --release --no-run (orcd-cuda unit tests, planted_bugs)"
rm -rf "$OUT/tests"
mkdir -p "$OUT/tests"
cargo test --release --locked --no-run -p orcd-cuda --lib -p orcd-conformance --test planted_bugs --test multi_seq \
    --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] and m["target"]["name"] != "orcd_conformance":
        print(m["target"]["name"], m["executable"])' |
    while read -r name exe; do
        objcopy --strip-debug "$exe" "$OUT/tests/$name"
        chmod +x "$OUT/tests/$name"
    done
cp ci/gpu-run.sh "$OUT/gpu-run.sh"
git rev-parse HEAD >"$OUT/COMMIT" 2>/dev/null || echo unknown >"$OUT/COMMIT"
if ! git diff --quiet HEAD 2>/dev/null; then
    echo "+dirty" >>"$OUT/COMMIT"
fi

if [[ $NEXTEST -eq 1 ]]; then
    echo "== cargo nextest archive --release --workspace"
    cargo nextest archive --release --locked --workspace --archive-file "$OUT/tests.tar.zst"
    nx=$(command -v cargo-nextest || true)
    [[ -n "$nx" ]] || {
        echo "error: cargo-nextest not on PATH (cargo install cargo-nextest --version 0.9.143 --locked)" >&2
        exit 2
    }
    cp "$nx" "$OUT/cargo-nextest"
else
    # A stale archive from an earlier --nextest run would ride along unasked.
    rm -f "$OUT/tests.tar.zst" "$OUT/cargo-nextest"
fi

echo "== $OUT"
total=0
while IFS= read -r f; do
    s=$(stat -c %s "$f")
    total=$((total + s))
    printf '  %-28s %10d bytes  %6.1f MiB\n' "${f#"$OUT"/}" "$s" "$(awk -v b="$s" 'BEGIN { print b / 1048576 }')"
done < <(find "$OUT" -type f | sort)
total_mib=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "  total $total bytes = $total_mib MiB"
if ((total > WARN_MIB * 1048576)); then
    echo "warning: $OUT is $total_mib MiB > $WARN_MIB MiB: with the tracked tree it may not fit one call's 64 MiB" >&2
    echo "         (drop --nextest, or carry tests.tar.zst and cargo-nextest in a call of their own)" >&2
fi
