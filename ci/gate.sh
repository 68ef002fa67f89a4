#!/usr/bin/env bash
# The main job of the README: fetch the external fixtures, build, run every suite with orcd-gate,
# write reports/report.{md,json} and reports/junit.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 fixtures/fetch.py
cargo build --release --locked -p orcd-conformance --bin orcd-gate -p worker-orcd --bin worker-orcd
# ORCD_PERF=1: the perf suite measures against its peer here (not run in the test run).
# A failed case still lets the bit check below run (its verdict is part of the gate): the
# job's status is the gate's, or the bit check's where the gate passed.
gate=0
ORCD_PERF=1 ./target/release/orcd-gate run --out "${1:-reports}" || gate=$?
# The fast path against llama.cpp built on this host, bit for bit (issue 14), where it is installed.
bits=0
if python3 -c "import llama_cpp" 2>/dev/null; then
    python3 goldens/recorders/record_llamacpp_logits.py --bits --only q2_k --only q3_k --only q4 --only q5 --only q6 --only q8 | tee "${1:-reports}/fast-bits.txt" || bits=$?
else
    echo "fast bits: not run (llama-cpp-python not installed)" | tee "${1:-reports}/fast-bits.txt"
fi
if [ "$gate" -ne 0 ]; then exit "$gate"; fi
exit "$bits"
