#!/usr/bin/env bash
# Benchmark: goroscope against a big process (testdata/fixture, scenario "many": N parked
# goroutines in five states at stack depths 1..20, plus 2 busy ones), for N = 1000, 10000,
# 100000 (and 1000000 with --big).
#   scripts/bench.sh [--big] [--startup | --no-startup] [--leaks | --no-leaks]
#                    [--threads | --no-threads] [--models | --no-models]  from any directory
# Builds goroscope in release mode and the fixture with Go 1.27.3 (into target/go-fixtures/bench,
# the way scripts/demo.sh does), then for each N starts `fixture many -n N` and reports:
#   wall ms     best of 3 `goroscope dump <pid> > /dev/null`, wall clock
#   CPU ms      goroscope's user+sys CPU time, best of the same 3 runs (wall minus CPU is time
#               spent waiting for a CPU: on a small machine the 2 busy goroutines take theirs)
#   pause ms    the pause goroscope itself reports ("target paused X ms"): the median of the 3
#               timed runs and a 4th (one run's pause moves by a few milliseconds)
#   pause max   the largest of those 4
#   gap ms      the target's largest gap between two ticks of a 1 ms ticker during that 4th run:
#               the pause as the target saw it, scheduling delays after the thaw included
#   gap3 ms     the same over the 3 timed runs
#   idle ms     the same over 1 s with no dump: the machine's own jitter
#   RSS MB      goroscope's peak RSS (the largest of the 3 runs, /usr/bin/time %M)
#   Stack ms    the target's own runtime.Stack(buf, true), best of 3 (stop-the-world)
#   wall/Stack, pause/Stack   goroscope's cost relative to the runtime printing itself
# Then start-up (skipped with --no-startup; --startup runs only this part): goroscope's time
# from its own start to its first copy of the target, i.e. reading the executable and discovering
# the runtime before anything is stopped (`startup` in `goroscope inspect`, Meta.startup_ns;
# exec and the dynamic loader come before it and are not counted), best of 3, on:
#   bigprog         a generated ~100 MB Go service (testdata/bigprog/gen.go, default build with
#                   DWARF; built once into target/go-fixtures/bigprog, a few minutes)
#   bigprog -s -w   the same program built with -ldflags='-s -w' (no symbols, no DWARF)
#   fixture         the small fixture above, scenario "sleep"
# next to a reference on the same file: the wall time of `cat FILE > /dev/null` (reading the
# whole executable once from the page cache, process start included), best of 3.
# Then leaks (skipped with --no-leaks; --leaks runs only this part): `goroscope leaks` against the
# fixture's "bigheap" scenario (M MiB of 64-byte pointer-holding objects reachable from a global,
# N parked goroutines, the "leaks" scenario's leaked ones), best of 3, for (M, N) = (256, 10000)
# and (1024, 100000): wall, the pause and the marking time goroscope reports, its peak RSS; next
# to a reference: the target's own runtime.GC() (a full mark of the same heap), best of 3.
# Then threads (skipped with --no-threads; --threads runs only this part): the pause of
# `goroscope dump` against the fixture's "threads" scenario with T = 10, 100 and 1000 OS threads
# (half in read(2), half running goroutines locked to them, 2 busy goroutines): the pause
# goroscope reports and the target's own largest tick gap, best and worst of 5, next to the
# target's runtime.Stack(all), best of 3.
# Then the model commands (skipped with --no-models; --models runs only this part): against
# "many" with N = 10000 and 100000, each command that builds the whole model or analyses it
# (`grs`, `dump --group`, `--format pprof`, `--format debug1`, `--format json`, `snapshot`,
# `show` of that snapshot file, `dump --blocked`, `deadlocks`: "many" holds a Mutex nobody
# releases, so a verdict that takes a second look to confirm), each run 5 times, each run
# right after a plain `dump` of the same target: the median wall, the peak RSS, the median of
# each run's wall relative to the dump
# just before it (pairs keep the ratio honest while the machine's speed drifts), and the median
# wall relative to the target's own runtime.Stack(all) (best of 3, asked again right before each
# command's pairs, so that the reference is measured beside the command it is compared with).
# GOROSCOPE_BIN=/path/to/goroscope skips the cargo build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
unset GOFLAGS GOROOT GOPATH GOOS GOARCH GOEXPERIMENT GODEBUG GOTRACEBACK GOMAXPROCS

sizes=(1000 10000 100000)
table=1
startup=1
leaks=1
threads=1
models=1
for a in "$@"; do
  case "$a" in
    --big) sizes+=(1000000) ;;
    --startup) table=0; leaks=0; threads=0; models=0 ;;
    --no-startup) startup=0 ;;
    --leaks) table=0; startup=0; threads=0; models=0 ;;
    --no-leaks) leaks=0 ;;
    --threads) table=0; startup=0; leaks=0; models=0 ;;
    --no-threads) threads=0 ;;
    --models) table=0; startup=0; leaks=0; threads=0 ;;
    --no-models) models=0 ;;
    *) echo "usage: scripts/bench.sh [--big] [--startup | --no-startup] [--leaks | --no-leaks] [--threads | --no-threads] [--models | --no-models]" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

version=1.27.3
build_fixture_for_script bench "$version"
[ "$startup" = 0 ] || build_bigprog_for_script "$version"

if [ -n "${GOROSCOPE_BIN:-}" ]; then
  goroscope=$GOROSCOPE_BIN
else
  (cd "$root" && cargo build --release -q)
  goroscope="${CARGO_TARGET_DIR:-$root/target}/release/goroscope"
  case "$goroscope" in /*) ;; *) goroscope="$root/$goroscope" ;; esac
fi

tmp=$(mktemp -d)
fixture_pid=
stop_fixture() {
  [ -n "$fixture_pid" ] || return 0
  { echo quit >&"${FIXTURE[1]}"; } 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$fixture_pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$fixture_pid" 2>/dev/null || true
  wait "$fixture_pid" 2>/dev/null || true
  fixture_pid=
}
cleanup() {
  stop_fixture
  rm -rf "$tmp"
}
trap cleanup EXIT

# ask CMD PREFIX: sends a command to the fixture and prints its answer without PREFIX.
ask() {
  local line
  echo "$1" >&"${FIXTURE[1]}"
  IFS= read -r -t 600 line <&"${FIXTURE[0]}" || { echo "bench: no answer to $1" >&2; cat "$tmp/fixture.err" >&2; exit 1; }
  case "$line" in
    "$2 "*) echo "${line#"$2 "}" ;;
    *) echo "bench: want $2 ..., got: $line" >&2; exit 1 ;;
  esac
}

now_ns() { date +%s%N; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# start_target CMD...: starts a program that prints "READY <pid>" and serves "quit" on stdin
# as a coprocess; sets $pid.
start_target() {
  coproc FIXTURE { exec "$@" 2>"$tmp/fixture.err"; }
  fixture_pid=$FIXTURE_PID
  pid=
  while IFS= read -r -t 600 line <&"${FIXTURE[0]}"; do
    case "$line" in
      INFO\ *) ;;
      READY\ *) pid=${line#READY }; break ;;
      *) echo "bench: unexpected line from $1: $line" >&2; exit 1 ;;
    esac
  done
  [ -n "$pid" ] || { echo "bench: $* did not get READY" >&2; cat "$tmp/fixture.err" >&2; exit 1; }
  [ "$pid" = "$fixture_pid" ] || { echo "bench: READY names pid $pid, started $fixture_pid" >&2; exit 1; }
}

model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "machine: $(nproc) CPUs, ${model:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
echo "target:  Go $version fixture \"many\" (N parked goroutines, depths 1..20, + 2 busy), goroscope $("$goroscope" --version | awk '{ print $2 }')"
if [ "$table" = 1 ]; then
  echo
  fmt='%8s %9s %8s %9s %9s %8s %8s %8s %8s %9s %10s %11s\n'
  # shellcheck disable=SC2059
  printf "$fmt" N "wall ms" "CPU ms" "pause ms" "pause max" "gap ms" "gap3 ms" "idle ms" "RSS MB" "Stack ms" wall/Stack pause/Stack

  for n in "${sizes[@]}"; do
    start_target "$fixture" many -n "$n"

    ask maxgap MAXGAP >/dev/null # starts the tick probe
    sleep 1
    idle_gap=$(ask maxgap MAXGAP) # the machine's own jitter over 1 s; also resets

    best_wall=
    best_cpu=
    peak_rss=0
    pauses=()
    # paused: the pause the last run reported (its stderr in $tmp/err), into $pauses.
    paused() {
      local p
      p=$(sed -n 's/.*target paused \([0-9.]*\) ms.*/\1/p' "$tmp/err" | tail -1)
      [ -n "$p" ] || { echo "bench: no pause report in: $(cat "$tmp/err")" >&2; exit 1; }
      pauses+=("$p")
    }
    for _ in 1 2 3; do
      t0=$(now_ns)
      if ! /usr/bin/time -f '%e %M %U %S' -o "$tmp/time" "$goroscope" dump "$pid" >/dev/null 2>"$tmp/err"; then
        echo "bench: goroscope dump $pid failed (N=$n):" >&2; cat "$tmp/err" >&2; exit 1
      fi
      paused
      wall=$(( $(now_ns) - t0 ))
      rss=$(awk 'END { print $2 }' "$tmp/time")
      cpu=$(awk 'END { printf "%.0f", ($3 + $4) * 1e9 }' "$tmp/time")
      if [ -z "$best_wall" ] || [ "$wall" -lt "$best_wall" ]; then best_wall=$wall; fi
      if [ -z "$best_cpu" ] || [ "$cpu" -lt "$best_cpu" ]; then best_cpu=$cpu; fi
      if [ "$rss" -gt "$peak_rss" ]; then peak_rss=$rss; fi
    done
    gap3=$(ask maxgap MAXGAP) # also resets
    "$goroscope" dump "$pid" >/dev/null 2>"$tmp/err" || { echo "bench: goroscope dump $pid failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    gap=$(ask maxgap MAXGAP)
    paused
    pause=$(echo "${pauses[*]}" | median)
    pause_max=$(echo "${pauses[*]}" | tr ' ' '\n' | sort -g | tail -1)
    read -r stack_ns stack_bytes <<<"$(ask stacktime STACKTIME)"
    stop_fixture

    pause_ns=$(awk -v p="$pause" 'BEGIN { printf "%.0f", p * 1e6 }')
    # shellcheck disable=SC2059
    printf "$fmt" \
      "$n" "$(ms "$best_wall")" "$(ms "$best_cpu")" "$pause" "$pause_max" "$(ms "$gap")" "$(ms "$gap3")" "$(ms "$idle_gap")" \
      "$(awk -v k="$peak_rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$(ms "$stack_ns")" \
      "$(ratio "$best_wall" "$stack_ns")" "$(ratio "$pause_ns" "$stack_ns")"
  done
fi

# Start-up: best of 3 `goroscope inspect` (its startup line) against each binary, and the
# reference.
if [ "$startup" = 1 ]; then
  echo
  echo "start-up: goroscope's start to its first copy of the target (reading the executable, discovery), best of 3;"
  echo "reference: reading the whole executable once (cat FILE > /dev/null, page cache warm), best of 3"
  sfmt='%-16s %9s %11s %9s %9s\n'
  # shellcheck disable=SC2059
  printf "$sfmt" binary "size MB" "startup ms" "read ms" startup/read
  for which in bigprog stripped fixture; do
    case "$which" in
      bigprog) exe=$bigprog label=bigprog; start_target "$exe" ;;
      stripped) exe=$bigprog_stripped label="bigprog -s -w"; start_target "$exe" ;;
      fixture) exe=$fixture label=fixture; start_target "$exe" sleep ;;
    esac
    best_startup=
    best_read=
    for _ in 1 2 3; do
      "$goroscope" inspect "$pid" >"$tmp/inspect" 2>"$tmp/err" || { echo "bench: goroscope inspect $pid failed:" >&2; cat "$tmp/err" >&2; exit 1; }
      ms_startup=$(awk '$1 == "startup" { print $2; exit }' "$tmp/inspect")
      [ -n "$ms_startup" ] || { echo "bench: no startup line in goroscope inspect" >&2; exit 1; }
      if [ -z "$best_startup" ] || awk -v a="$ms_startup" -v b="$best_startup" 'BEGIN { exit !(a < b) }'; then best_startup=$ms_startup; fi
      t0=$(now_ns)
      cat "$exe" >/dev/null
      read_ns=$(( $(now_ns) - t0 ))
      if [ -z "$best_read" ] || [ "$read_ns" -lt "$best_read" ]; then best_read=$read_ns; fi
    done
    stop_fixture
    # shellcheck disable=SC2059
    printf "$sfmt" "$label" "$(awk -v b="$(stat -c %s "$exe")" 'BEGIN { printf "%.1f", b / 1e6 }')" \
      "$(awk -v m="$best_startup" 'BEGIN { printf "%.1f", m }')" "$(ms "$best_read")" \
      "$(ratio "$(awk -v m="$best_startup" 'BEGIN { printf "%.0f", m * 1e6 }')" "$best_read")"
  done
fi

# Leaks: best of 3 `goroscope leaks` (exit 3: the scenario has leaked goroutines) against
# bigheap, and the target's runtime.GC().
if [ "$leaks" = 1 ]; then
  echo
  echo "leaks: goroscope leaks against \"bigheap\" (M MiB of pointer-holding objects, N parked goroutines), best of 3;"
  echo "reference: the target's own runtime.GC() (a full mark of the same heap), best of 3"
  lfmt='%8s %8s %9s %9s %9s %8s %8s %8s\n'
  # shellcheck disable=SC2059
  printf "$lfmt" "heap MiB" N "wall ms" "pause ms" "mark ms" "RSS MB" "GC ms" wall/GC
  for size in "256 10000" "1024 100000"; do
    read -r mb n <<<"$size"
    start_target "$fixture" bigheap -mb "$mb" -n "$n"
    best_wall= best_pause= best_mark= peak_rss=0
    for _ in 1 2 3; do
      t0=$(now_ns)
      status=0
      /usr/bin/time -f '%e %M' -o "$tmp/time" "$goroscope" leaks "$pid" >/dev/null 2>"$tmp/err" || status=$?
      wall=$(( $(now_ns) - t0 ))
      [ "$status" = 3 ] || { echo "bench: goroscope leaks $pid exited $status:" >&2; cat "$tmp/err" >&2; exit 1; }
      rss=$(awk 'END { print $2 }' "$tmp/time")
      pause=$(sed -n 's/.*target paused \([0-9.]*\) ms.*/\1/p' "$tmp/err" | tail -1)
      mark=$(sed -n 's/.*marking \([0-9.]*\) ms.*/\1/p' "$tmp/err" | tail -1)
      [ -n "$pause" ] && [ -n "$mark" ] || { echo "bench: no pause or marking time in: $(cat "$tmp/err")" >&2; exit 1; }
      if [ -z "$best_wall" ] || [ "$wall" -lt "$best_wall" ]; then best_wall=$wall; fi
      if [ -z "$best_pause" ] || awk -v a="$pause" -v b="$best_pause" 'BEGIN { exit !(a < b) }'; then best_pause=$pause; fi
      if [ -z "$best_mark" ] || awk -v a="$mark" -v b="$best_mark" 'BEGIN { exit !(a < b) }'; then best_mark=$mark; fi
      if [ "$rss" -gt "$peak_rss" ]; then peak_rss=$rss; fi
    done
    gc_ns=$(ask gctime GCTIME)
    stop_fixture
    # shellcheck disable=SC2059
    printf "$lfmt" "$mb" "$n" "$(ms "$best_wall")" "$best_pause" "$best_mark" \
      "$(awk -v k="$peak_rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$(ms "$gc_ns")" "$(ratio "$best_wall" "$gc_ns")"
  done
fi

# Threads: the pause of a dump as the target's thread count grows.
if [ "$threads" = 1 ]; then
  echo
  echo "threads: goroscope dump against \"threads\" (T OS threads: half in read(2), half locked to parked goroutines), 5 runs;"
  echo "pause: what goroscope reports; gap: the target's largest tick gap over each run; reference: runtime.Stack(all), best of 3"
  tfmt='%8s %14s %14s %9s\n'
  # shellcheck disable=SC2059
  printf "$tfmt" T "pause ms min-max" "gap ms min-max" "Stack ms"
  for t in 10 100 1000; do
    start_target "$fixture" threads -n "$t"
    ask maxgap MAXGAP >/dev/null # starts the tick probe
    pmin= pmax= gmin= gmax=
    for _ in 1 2 3 4 5; do
      ask maxgap MAXGAP >/dev/null
      "$goroscope" dump "$pid" >/dev/null 2>"$tmp/err" || { echo "bench: goroscope dump $pid failed:" >&2; cat "$tmp/err" >&2; exit 1; }
      gap=$(ms "$(ask maxgap MAXGAP)")
      pause=$(sed -n 's/.*target paused \([0-9.]*\) ms.*/\1/p' "$tmp/err" | tail -1)
      [ -n "$pause" ] || { echo "bench: no pause report in: $(cat "$tmp/err")" >&2; exit 1; }
      read -r pmin pmax <<<"$(awk -v v="$pause" -v a="${pmin:-$pause}" -v b="${pmax:-$pause}" 'BEGIN { print (v < a ? v : a), (v > b ? v : b) }')"
      read -r gmin gmax <<<"$(awk -v v="$gap" -v a="${gmin:-$gap}" -v b="${gmax:-$gap}" 'BEGIN { print (v < a ? v : a), (v > b ? v : b) }')"
    done
    read -r stack_ns _ <<<"$(ask stacktime STACKTIME)"
    stop_fixture
    # shellcheck disable=SC2059
    printf "$tfmt" "$t" "$pmin-$pmax" "$gmin-$gmax" "$(ms "$stack_ns")"
  done
fi

# Model commands: each next to a plain dump of the same target, in pairs.
if [ "$models" = 1 ]; then
  echo
  echo "model commands: against \"many\" (N parked goroutines), 5 pairs each: a plain dump, then the command; wall ms: median; RSS MB: largest; x dump: median of each pair's ratio to its dump; Stack ms: the target's runtime.Stack(all), best of 3, asked right before the command's pairs; x Stack: median wall relative to it (for dump: median of every pair's dump relative to its command's)"
  mfmt='%8s %-20s %9s %8s %8s %9s %8s\n'
  # shellcheck disable=SC2059
  printf "$mfmt" N command "wall ms" "RSS MB" "x dump" "Stack ms" "x Stack"
  # run_one CMD: one run of a command of the table; sets $wall (ns) and $rss (KiB).
  run_one() {
    local cmd=$1 args status
    case "$cmd" in
      snapshot) args=(snapshot -q "$pid" -o "$tmp/bench.gsnap") ;;
      show) args=(show -q "$tmp/bench.gsnap") ;;
      *) read -r -a args <<<"$cmd"; args=("${args[0]}" -q "${args[@]:1}" "$pid") ;;
    esac
    local t0
    t0=$(now_ns)
    status=0
    /usr/bin/time -f '%M' -o "$tmp/time" "$goroscope" "${args[@]}" >/dev/null 2>"$tmp/err" || status=$?
    wall=$(( $(now_ns) - t0 ))
    # deadlocks exits 3 when it finds one ("many" has one).
    if [ "$status" != 0 ] && ! { [ "$cmd" = deadlocks ] && [ "$status" = 3 ]; }; then
      echo "bench: goroscope ${args[*]} failed (N=$n):" >&2; cat "$tmp/err" >&2; exit 1
    fi
    rss=$(tail -1 "$tmp/time")
  }
  # With --big, 1,000,000 goroutines too (about 15 minutes more).
  model_sizes=(10000 100000)
  if [[ " ${sizes[*]} " == *" 1000000 "* ]]; then model_sizes+=(1000000); fi
  for n in "${model_sizes[@]}"; do
    start_target "$fixture" many -n "$n"
    dump_walls=() dump_stacks=() dump_peak=0 rows=()
    for cmd in grs "dump --group" "dump --format pprof" "dump --format debug1" "dump --format json" snapshot show "dump --blocked" deadlocks; do
      # The reference next to each command's runs, not once before them all: the machine's
      # speed drifts over the minutes of a size's runs.
      read -r stack_ns _ <<<"$(ask stacktime STACKTIME)"
      walls=() ratios=() peak=0
      for _ in 1 2 3 4 5; do
        # show reads the snapshot file: one is written before its first pair.
        if [ "$cmd" = show ] && [ ! -s "$tmp/bench.gsnap" ]; then run_one snapshot; fi
        run_one dump
        dump_wall=$wall
        dump_walls+=("$wall")
        dump_stacks+=("$(awk -v a="$wall" -v b="$stack_ns" 'BEGIN { printf "%.4f", a / b }')")
        if [ "$rss" -gt "$dump_peak" ]; then dump_peak=$rss; fi
        run_one "$cmd"
        walls+=("$wall")
        ratios+=("$(awk -v a="$wall" -v b="$dump_wall" 'BEGIN { printf "%.4f", a / b }')")
        if [ "$rss" -gt "$peak" ]; then peak=$rss; fi
      done
      med=$(echo "${walls[*]}" | median)
      rows+=("$(printf "$mfmt" "$n" "$cmd" "$(ms "$med")" "$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')" "$(echo "${ratios[*]}" | median | awk '{ printf "%.2f", $1 }')" "$(ms "$stack_ns")" "$(ratio "$med" "$stack_ns")")")
    done
    rm -f "$tmp/bench.gsnap"
    med=$(echo "${dump_walls[*]}" | median)
    # shellcheck disable=SC2059
    printf "$mfmt" "$n" dump "$(ms "$med")" "$(awk -v k="$dump_peak" 'BEGIN { printf "%.1f", k / 1024 }')" "1.00" - "$(echo "${dump_stacks[*]}" | median | awk '{ printf "%.2f", $1 }')"
    printf '%s\n' "${rows[@]}"
    stop_fixture
  done
fi
