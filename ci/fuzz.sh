#!/usr/bin/env bash
# Coverage-guided fuzzing of every untrusted input (issue 15; docs/RELIABILITY.md): builds the
# cargo-fuzz targets of fuzz/ (libFuzzer, stable toolchain, --sanitizer none, release), writes the
# seed corpora and data from the fixture cache if missing (fuzz/make_seeds.sh), then runs each
# target for SECONDS with FUZZ_CORES processes (default 1), all targets at once, under
# -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 (fuzz/campaign.sh). Corpora grow in
# fuzz/corpus/<target>; logs, crash artifacts, merged corpora and summary.tsv (executions, cov,
# ft, corpus, findings) go to OUT (default target/fuzz-out). Exits non-zero on any finding.
#
# Usage: ci/fuzz.sh [SECONDS] [TARGET...]
#   targets: gguf_inspect dequant tok_gguf tok_json tok_tiktoken tok_text chat_template server
# Needs: cargo-fuzz (cargo install cargo-fuzz --locked), a C++ compiler, the fixture cache
# (python3 fixtures/fetch.py). The campaign machine variant: fuzz/pack.sh (no cargo there).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf_inspect dequant tok_gguf tok_json tok_tiktoken tok_text chat_template server)
cores="${FUZZ_CORES:-1}"
out="${OUT:-$root/target/fuzz-out}"

cd "$root/fuzz"
for t in "${targets[@]}"; do cargo +stable fuzz build --sanitizer none -O --fuzz-dir . "$t"; done
[ -d corpus ] && [ -d data ] || ./make_seeds.sh
export ORCD_FUZZ_DATA="$root/fuzz/data"
specs=(); for t in "${targets[@]}"; do specs+=("$t:$cores"); done
./campaign.sh target/x86_64-unknown-linux-gnu/release corpus "$out" "$secs" "${specs[@]}"
findings=$(awk 'NR > 1 {s += $9} END {print s + 0}' "$out/summary.tsv")
if [ "$findings" -gt 0 ]; then
  echo "fuzz: $findings finding(s): see $out/*/artifacts and the logs beside them" >&2
  exit 1
fi
