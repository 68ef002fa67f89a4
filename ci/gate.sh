#!/usr/bin/env bash
# The main job of the README: fetch the external fixtures, build, run every suite with orcd-gate,
# write reports/report.{md,json} and reports/junit.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 fixtures/fetch.py
cargo build --release --locked -p orcd-conformance --bin orcd-gate -p worker-orcd --bin worker-orcd
# ORCD_PERF=1: the perf suite measures against its peer here (not run in the test run).
ORCD_PERF=1 ./target/release/orcd-gate run --out "${1:-reports}"
