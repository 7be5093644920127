#!/usr/bin/env bash
# Runs every goroscope test on a fresh machine: installs what the tests need (Go toolchains
# from the Python package index and, for 1.19, Debian's packages; strace, qemu-user for arm64 cores when used), then
# `cargo test`. Options:
#   --quick   only the newest Go toolchain (local iteration; CI runs everything)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. scripts/lib.sh

quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
  esac
done

export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
if [ $quick = 1 ]; then
  scripts/install-go.sh "${GO_VERSIONS[-1]}"
  export GOROSCOPE_GO_VERSIONS="${GO_VERSIONS[-1]}"
else
  scripts/install-go.sh
fi
scripts/install-esbuild.sh

# System tools some tests drive: a second tracer for the "already traced" case (strace),
# qemu-aarch64 for the arm64 core tests, gdb (gcore, and opening written cores).
need=()
command -v strace >/dev/null || need+=(strace)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v gcore >/dev/null || need+=(gdb)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test.sh: please install: ${need[*]}" >&2
  fi
fi

cargo build --quiet --all-targets
cargo test --quiet --no-fail-fast -- --test-threads=2
