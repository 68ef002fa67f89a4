B=target/gpu-min; rm -rf $B && mkdir -p $B && tar -xJf target/gpu-pack/bin.tar.xz -C $B; export ORCD_GPU_BIN=$B
cat $B/COMMIT; nvidia-smi --query-gpu=name --format=csv,noheader
bash ci/gpu-run.sh assemble >/dev/null 2>&1; bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
for a in 1 0 1 0; do for nm in fast exact; do ORCD_CUDA_ATT_TILE=$a $B/worker-orcd bench --model $M --backend cuda --numerics $nm --prompt-tokens 512 --gen-tokens 16 --repeats 5 --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print("att_tile='$a' '$nm' pp512 %.0f" % j["prefill_tok_s"])'; done; done
ORCD_NVRTC_DEFINES=ATT_PROF $B/worker-orcd bench --model $M --backend cuda --numerics fast --prompt-tokens 512 --gen-tokens 0 --repeats 1 2>&1 | grep attprof | sort -k3n | awk 'NR%4==0'
