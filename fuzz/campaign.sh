#!/usr/bin/env bash
# One fuzz campaign: every listed target at once, each with its share of the cores
# (libFuzzer -jobs/-workers: independent processes sharing the target's corpus directory), for a
# given time; then the corpus is merged (minimised), its coverage measured (-runs=0 over the
# merged corpus: libFuzzer's cov/ft), and a summary written. Used by ci/fuzz.sh here and, with a
# packed binary, on the campaign machine (fuzz/pack.sh).
#
# Usage: fuzz/campaign.sh BIN_DIR CORPUS_DIR OUT_DIR SECONDS TARGET:CORES...
#   BIN_DIR: holds one binary per target, or the multiplexing `all` (ORCD_FUZZ_TARGET picks)
#   CORPUS_DIR/<target>: the corpus, grown in place; OUT_DIR: logs, artifacts, merged corpora,
#   summary.tsv (target, seconds, cores, executions, cov, ft, corpus files, corpus bytes, findings)
# ORCD_FUZZ_DATA must name the data directory (tok_text and server load real tokenizer files).
set -uo pipefail
bin_dir="$(cd "$1" && pwd)"; corpus="$(cd "$2" && pwd)"; mkdir -p "$3"; out="$(cd "$3" && pwd)"; secs="$4"; shift 4

max_len() {
  case "$1" in
    tok_text) echo 4096 ;;
    server | tok_tiktoken) echo 8192 ;;
    chat_template) echo 20000 ;;
    *) echo 16384 ;;
  esac
}

binary() {
  if [ -x "$bin_dir/$1" ]; then echo "$bin_dir/$1"; else echo "$bin_dir/all"; fi
}

# Memory: -rss_limit_mb and -malloc_limit_mb at 2048 (the issue's bound); a unit slower than 10 s
# is a finding too (-timeout).
common=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1)

pids=()
for spec in "$@"; do
  t="${spec%%:*}"; cores="${spec##*:}"
  mkdir -p "$out/$t/artifacts" "$corpus/$t"
  (
    cd "$out/$t" || exit 1
    ORCD_FUZZ_TARGET="$t" "$(binary "$t")" "${common[@]}" -max_len="$(max_len "$t")" \
      -jobs="$cores" -workers="$cores" -max_total_time="$secs" \
      -artifact_prefix="$out/$t/artifacts/" "$corpus/$t" > "$out/$t/driver.log" 2>&1
  ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

# Merge (minimise) each grown corpus, then measure its coverage in one pass: all targets at once.
for spec in "$@"; do
  t="${spec%%:*}"
  (
    rm -rf "$out/$t/merged"; mkdir -p "$out/$t/merged"
    ORCD_FUZZ_TARGET="$t" "$(binary "$t")" "${common[@]}" -max_len="$(max_len "$t")" -merge=1 \
      "$out/$t/merged" "$corpus/$t" > "$out/$t/merge.log" 2>&1
    ORCD_FUZZ_TARGET="$t" "$(binary "$t")" "${common[@]}" -max_len="$(max_len "$t")" -runs=0 \
      "$out/$t/merged" > "$out/$t/cov.log" 2>&1
  ) &
done
wait

printf 'target\tseconds\tcores\texecutions\tcov\tft\tcorpus_files\tcorpus_bytes\tfindings\n' > "$out/summary.tsv"
for spec in "$@"; do
  t="${spec%%:*}"; cores="${spec##*:}"
  execs=$(cat "$out/$t"/fuzz-*.log 2>/dev/null | awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}')
  line=$(grep -E 'INITED|DONE' "$out/$t/cov.log" | tail -1)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<< "$line"); ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<< "$line")
  files=$(find "$out/$t/merged" -type f | wc -l); bytes=$(du -sb "$out/$t/merged" | cut -f1)
  findings=$(find "$out/$t/artifacts" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "$cores" "$execs" "${cov:-?}" "${ft:-?}" "$files" "$bytes" "$findings" >> "$out/summary.tsv"
done
column -t "$out/summary.tsv" 2>/dev/null || cat "$out/summary.tsv"
