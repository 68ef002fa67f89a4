B=target/gpu-min; rm -rf $B && mkdir -p $B && tar -xJf target/gpu-pack/bin.tar.xz -C $B; export ORCD_GPU_BIN=$B
cat $B/COMMIT; nvidia-smi --query-gpu=name --format=csv,noheader
bash ci/gpu-run.sh assemble >/dev/null 2>&1; bash ci/gpu-run.sh synth qwen2-real-q8_0 | grep synth
M=~/.cache/orcd/synthetic/qwen2-real-q8_0.gguf
MET=l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,smsp__inst_executed.sum,smsp__inst_executed_pipe_fp64.sum,smsp__inst_executed_pipe_xu.sum,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed_pipe_lsu.sum,smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_mio_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_wait_per_issue_active.ratio,smsp__average_warps_issue_stalled_not_selected_per_issue_active.ratio,smsp__average_warps_issue_stalled_lg_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_dispatch_stall_per_issue_active.ratio,smsp__average_warps_issue_stalled_no_instruction_per_issue_active.ratio,smsp__average_warps_issue_stalled_branch_resolving_per_issue_active.ratio,gpu__time_duration.sum,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,launch__registers_per_thread,sm__maximum_warps_per_active_cycle_pct
for k in attention_tile:1 attention:0; do
  n=${k%%:*}; a=${k##*:}
  ORCD_CUDA_ATT_TILE=$a timeout 100 ncu --kernel-name regex:"^$n\$" --launch-skip 12 --launch-count 1 --metrics $MET --csv $B/worker-orcd bench --model $M --backend cuda --prompt-tokens 512 --gen-tokens 0 --repeats 1 > $OUT/ncu-$n.csv 2>$OUT/ncu-$n.err
  python3 - $OUT/ncu-$n.csv <<'PY' || tail -5 $OUT/ncu-$n.err
import csv, sys
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
h = rows[0]; k = h.index("Kernel Name"); m = h.index("Metric Name"); v = h.index("Metric Value")
for r in rows[1:]: print("%-14s %-80s %s" % (r[k][:14], r[m].replace("smsp__average_warps_issue_stalled_", "stall_"), r[v]))
PY
done
C=$(ls -t ~/.cache/orcd/cubin/*.cubin | head -1); cuobjdump -sass $C > /tmp/all.sass 2>&1; awk '/Function : attention_tile/{p=1} /Function : /{if(!/attention_tile/)p=0} p' /tmp/all.sass > $OUT/sass-attention_tile.txt; wc -l $OUT/sass-attention_tile.txt
grep -c "F2F.F64" $OUT/sass-attention_tile.txt; grep -c "STL\|LDL" $OUT/sass-attention_tile.txt
