#!/usr/bin/env bash
# Demo: a small hung Go service (testdata/fixture, scenario "demo": an HTTP handler that takes
# an RWMutex read lock twice while a writer waits, clients stuck behind it, a leaked sender),
# and what goroscope shows about it from the outside.
#   scripts/demo.sh        works from any directory
# Installs Go 1.27.3 with scripts/install-go.sh if it is missing, builds the fixture into
# target/go-fixtures/demo and goroscope in release mode, starts the service, waits for READY,
# runs `goroscope dump <pid>` and `goroscope grs <pid>`, and ends with goroscope's verdict on
# it, `goroscope deadlocks <pid>` (exit status 3: a deadlock found), then stops the service.
# GOROSCOPE_BIN=/path/to/goroscope skips the cargo build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
unset GOFLAGS GOROOT GOPATH GOOS GOARCH GOEXPERIMENT

version=1.27.3
build_fixture_for_script demo "$version"

# GOROSCOPE_BIN=path uses that binary instead of building one.
if [ -n "${GOROSCOPE_BIN:-}" ]; then
  goroscope=$GOROSCOPE_BIN
else
  (cd "$root" && cargo build --release -q)
  goroscope="${CARGO_TARGET_DIR:-$root/target}/release/goroscope"
  case "$goroscope" in /*) ;; *) goroscope="$root/$goroscope" ;; esac
fi

# The service reads commands on stdin and exits on EOF, so run it as a coprocess.
coproc FIXTURE { exec "$fixture" demo; }
fixture_pid=$FIXTURE_PID
cleanup() {
  kill "$fixture_pid" 2>/dev/null || true
  wait "$fixture_pid" 2>/dev/null || true
}
trap cleanup EXIT

pid=
while IFS= read -r -t 30 line <&"${FIXTURE[0]}"; do
  case "$line" in
    INFO\ *) echo "fixture: ${line#INFO }" ;;
    READY\ *) pid=${line#READY }; break ;;
    *) echo "fixture: unexpected line: $line" >&2; exit 1 ;;
  esac
done
[ -n "$pid" ] || { echo "demo: the fixture did not get READY within 30 s" >&2; exit 1; }
[ "$pid" = "$fixture_pid" ] || { echo "demo: READY names pid $pid, started $fixture_pid" >&2; exit 1; }

echo
echo "\$ goroscope dump $pid"
"$goroscope" dump "$pid"
echo
echo "\$ goroscope grs $pid"
"$goroscope" grs "$pid"
echo
echo "\$ goroscope deadlocks $pid"
status=0
"$goroscope" deadlocks "$pid" || status=$?
echo "(exit status $status)"
[ "$status" = 3 ] || { echo "demo: goroscope deadlocks found no deadlock in the hung service" >&2; exit 1; }
