#!/usr/bin/env bash
# Writes fuzz/corpus/<target>/ (seed corpora) and fuzz/data/ (the real tokenizer files the
# tok_text and server targets load) from the fixture cache (python3 fixtures/fetch.py fills it).
# Both are ignored by git: regenerated, never committed.
# Usage: fuzz/make_seeds.sh [CACHE_DIR]   (default: $ORCD_CACHE or ~/.cache/orcd)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${1:-${ORCD_CACHE:-$HOME/.cache/orcd}}"
cd "$here"
cargo run --quiet --release --example make_seeds -- "$cache" "$here"
