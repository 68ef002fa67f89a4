B=target/gpu-min; rm -rf $B && mkdir -p $B && tar -xJf target/gpu-pack/bin.tar.xz -C $B; export ORCD_GPU_BIN=$B
cat $B/COMMIT; nvidia-smi --query-gpu=name --format=csv,noheader
bash ci/gpu-run.sh assemble >/dev/null 2>&1; bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
for a in 1 0 1 0; do ORCD_CUDA_ATT_TILE=$a $B/worker-orcd bench --model $M --backend cuda --numerics fast --prompt-tokens 512 --gen-tokens 16 --repeats 5 --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print("att_tile='$a' pp512 %.0f" % j["prefill_tok_s"])'; done
ORCD_NVRTC_DEFINES=ATT_PROF $B/worker-orcd bench --model $M --backend cuda --numerics fast --prompt-tokens 512 --gen-tokens 0 --repeats 1 2>&1 | grep attprof | tail -40
ORCD_CUDA_PROFILE=1 $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 512 --gen-tokens 0 --repeats 1 --json 2>/dev/null | python3 -c 'import json,sys
j=json.load(sys.stdin); p=j.get("kernel_profile") or []
for r in p[:4]: print("profile %-22s n %5d  %8.3f ms" % (r["kernel"][:22], r["launches"], r["seconds"]*1e3))'
