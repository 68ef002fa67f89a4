#!/usr/bin/env bash
# The test command of the README. Installs nothing but what it needs: the external fixtures
# (python3 -m pip download, cached in ~/.cache/orcd) and, where `cargo nextest` is missing,
# cargo-nextest itself, pinned (NEXTEST_VERSION, from crates.io with its lock file; needs Rust
# >= 1.91 to build).
set -euo pipefail
cd "$(dirname "$0")/.."

NEXTEST_VERSION=0.9.143
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "== install cargo-nextest $NEXTEST_VERSION (not found)"
    cargo install cargo-nextest --version "$NEXTEST_VERSION" --locked
fi

echo "== fetch external fixtures (cached)"
python3 fixtures/fetch.py

# The official OpenAI Python client, pinned: engine/worker-orcd/tests/openai_python.rs drives
# `worker-orcd serve` with it (an ignored trial, never a pass, where it is missing).
OPENAI_VERSION=1.109.1
if ! python3 -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
    echo "== install openai==$OPENAI_VERSION (Python client for the server tests)"
    python3 -m pip install --quiet "openai==$OPENAI_VERSION" || echo "warning: openai not installed: its test will be reported not run"
fi

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
