# Sourced by the one-call scripts on the GPU machine (ci/gpu-ab-batched.sh, ci/gpu-peer-qwen.sh,
# ci/gpu-ncu-steps.sh), from the repository root: $B is the build (ORCD_GPU_BIN, default
# target/gpu-min, unpacked from target/gpu-pack/bin.tar.xz unless it holds one already), exported
# as ORCD_GPU_BIN; prints the build's commit and the card.
B=${ORCD_GPU_BIN:-target/gpu-min}
[[ -x $B/worker-orcd ]] || { mkdir -p "$B" && tar -xJf target/gpu-pack/bin.tar.xz -C "$B"; }
export ORCD_GPU_BIN=$B
cat "$B/COMMIT"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
