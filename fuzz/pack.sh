#!/usr/bin/env bash
# Packs what a campaign needs on a machine without cargo into target/fuzz-pack (ignored by git,
# small enough to travel, compressed): the multiplexing `all` binary (release, instrumented, debug info
# stripped), libstdc++ (libFuzzer's runtime) in case the machine lacks it, the data directory,
# the seed corpora and campaign.sh. There: `target/fuzz-pack/run.sh OUT SECONDS TARGET:CORES...`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pack="$root/target/fuzz-pack"
cd "$root/fuzz"
cargo +stable fuzz build --sanitizer none -O --fuzz-dir . all
rm -rf "$pack"; mkdir -p "$pack/bin" "$pack/lib"
strip --strip-debug -o "$pack/bin/all" target/x86_64-unknown-linux-gnu/release/all
gzip -9 "$pack/bin/all"
cp "$(g++ -print-file-name=libstdc++.so.6)" "$pack/lib/" 2>/dev/null || true
tar -C . -czhf "$pack/data.tar.gz" data
tar -C . -czf "$pack/corpus.tar.gz" corpus
cp campaign.sh "$pack/"
cat > "$pack/run.sh" <<'RUN'
#!/usr/bin/env bash
# run.sh OUT SECONDS TARGET:CORES...: unpack the corpora (a newer corpus.tar.gz beside may
# replace them), run the campaign, and leave logs + summary + merged corpora under OUT.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; out="$1"; shift
work=/tmp/fuzz-work; mkdir -p "$work"
[ -x "$here/bin/all" ] || { gunzip -c "$here/bin/all.gz" > "$here/bin/all" && chmod +x "$here/bin/all"; }
[ -d "$here/data" ] || tar -C "$here" -xzf "$here/data.tar.gz"
tar -C "$work" -xzf "$here/corpus.tar.gz"
ldd "$here/bin/all" | grep -q 'not found' && export LD_LIBRARY_PATH="$here/lib"
export ORCD_FUZZ_DATA="$here/data"
"$here/campaign.sh" "$here/bin" "$work/corpus" "$out/c" "$@"
RUN
chmod +x "$pack/run.sh"
du -sh "$pack"
