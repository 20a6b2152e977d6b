#!/usr/bin/env bash
# Coverage-guided fuzzing of tally's parsers with libFuzzer, on nightly Rust. The targets are the
# functions of `tally::fuzz` (the same ones tests/fuzz.rs runs on stable in every test run).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 120 s, every target)
#
# Each target starts from its kept corpus fuzz/corpus/<target>/ (read only) and a scratch corpus
# fuzz/work/<target>/; crashes go to fuzz/artifacts/<target>/. At the end, inputs that reach new
# code are merged (minimised: libFuzzer's -merge=1) into the kept corpus, to be committed.
# Builds without cargo-fuzz: the same instrumentation flags, given to cargo directly.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-120}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pixel_query user_agent field_key log_line event_body forwarded)

triple=$(rustc +nightly -vV | awk '/^host:/ {print $2}')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
# --target keeps the flags off build scripts and proc macros, as cargo-fuzz does.
cargo +nightly build --release --target "$triple" --bins

for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  echo "== $t: $secs s" >&2
  "target/$triple/release/$t" "work/$t" "corpus/$t" \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+ +DONE|stat::|==|SUMMARY|INFO: -max_len)' || true
  before=$(ls "corpus/$t" | wc -l)
  "target/$triple/release/$t" -merge=1 "corpus/$t" "work/$t" >/dev/null 2>&1
  echo "$t: corpus $before -> $(ls "corpus/$t" | wc -l) inputs" >&2
done
