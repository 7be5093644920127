#!/usr/bin/env bash
# Runs goroscope's cargo-fuzz targets (fuzz/, one a parser of untrusted bytes) for a bounded
# time each, seeded from real files:
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default 60 s per target, every target
# Targets: pclntab buildinfo go_binary core_file snapshot_file text_dump values value_decode unwind runtime_walk.
# cargo-fuzz wants a nightly compiler for its flags; on a stable toolchain RUSTC_BOOTSTRAP=1
# lets stable accept them. The seeds are the smoke test's (tests/it/fuzz_smoke.rs, which builds
# the fixture with the newest Go): it writes them to fuzz/corpus/<target>/. A crash is left in
# fuzz/artifacts/<target>/; once fixed, copy it to testdata/fuzz/<target>/ (replayed by
# `cargo test --test it fuzz_smoke::regressions`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
. scripts/lib.sh

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pclntab buildinfo go_binary core_file snapshot_file text_dump values value_decode unwind runtime_walk)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
GOROSCOPE_GO_VERSIONS="${GO_VERSIONS[0]},${GO_VERSIONS[-1]}" GOROSCOPE_FUZZ_CORPUS="$root/fuzz/corpus" \
  cargo test -q --test it fuzz_smoke:: -- --test-threads=2 >/dev/null
export GOROSCOPE_FUZZ_EXE="$root/target/go-fixtures/${GO_VERSIONS[-1]}/default/fixture"
export RUSTC_BOOTSTRAP=1
logs="${CARGO_TARGET_DIR:-$root/target}/fuzz-logs"
mkdir -p "$logs"
status=0
for t in "${targets[@]}"; do
  # Whole binaries and pclntabs are megabytes: past libFuzzer's default 1 MB cap.
  case "$t" in go_binary|pclntab) max_len=(-max_len=4194304) ;; *) max_len=() ;; esac
  if cargo fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "${max_len[@]}" \
      -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    echo "$t: ok, $(grep -E '^stat::number_of_executed_units' "$logs/$t.log" | awk '{print $2}') runs in $secs s, peak RSS $(grep -E '^stat::peak_rss_mb' "$logs/$t.log" | awk '{print $2}') MB"
  else
    status=1
    echo "$t: FAILED (log: $logs/$t.log)"
    grep -E 'panicked|SUMMARY|Test unit written|timeout|out-of-memory' "$logs/$t.log" | head -5 || true
  fi
done
exit $status
