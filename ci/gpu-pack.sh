#!/usr/bin/env bash
# Here (the CPU machine), after `bash ci/gpu-bundle.sh`: pack what `ci/gpu-quick.sh` needs there
# (orcd-gate, worker-orcd, orcd-fixtures, gpu-run.sh, COMMIT, the multi_seq and orcd_cuda test
# binaries) into target/gpu-pack/bin.tar.xz (~4.5 MiB instead of ~23), so one call carries it
# with the vocabularies and the llama.cpp source: carry ["target/gpu-pack", "target/parts/vocab",
# "target/llamacpp-src"] and run `bash ci/gpu-quick.sh` (docs/GPU_RUNNER.md).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x target/gpu/worker-orcd ]] || { echo "error: no target/gpu/worker-orcd: run ci/gpu-bundle.sh first" >&2; exit 2; }
stage=target/gpu-pack/stage
rm -rf target/gpu-pack && mkdir -p "$stage/tests"
cp target/gpu/{orcd-gate,worker-orcd,orcd-fixtures,gpu-run.sh,COMMIT} "$stage/"
cp target/gpu/tests/{multi_seq,orcd_cuda} "$stage/tests/"
tar -C "$stage" -cJf target/gpu-pack/bin.tar.xz .
rm -rf "$stage"
ls -l target/gpu-pack/bin.tar.xz
