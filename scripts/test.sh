#!/usr/bin/env bash
# Runs every goroscope test on a fresh machine: installs what the tests need (Go toolchains
# from the Python package index and, for 1.19, Debian's packages; the system tools the tests
# run; as root, a kernel core_pattern that leaves cores in the crashing process's directory),
# then `cargo test --features test-hooks`. A test whose prerequisite is missing fails; only a
# partial run (--quick) skips it, and the skips are listed at the end. Options:
#   --quick   only the newest Go toolchain, missing tools skipped (local iteration; CI runs
#             everything, and with CI=true any skip fails)
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
  export GOROSCOPE_GO_VERSIONS="${GO_VERSIONS[-1]}" GOROSCOPE_PARTIAL=1
else
  scripts/install-go.sh
fi
scripts/install-esbuild.sh

# System tools the tests run (tool:Debian package): a second tracer for the "already traced"
# cases (strace), qemu-aarch64 for the arm64 core tests, gdb (gcore, and opening written
# cores), util-linux's setpriv, unshare and nsenter and bsdutils' script (privileges,
# namespaces, a pseudo-terminal), man (man pages), zsh and fish (completion syntax), python3
# (a non-Go target), glibc's static libc for scripts/build-static.sh, and qemu-system-aarch64
# and cpio for the arm64 VM (scripts/arm64-vm.sh; scripts/build-static.sh installs the aarch64
# cross toolchain itself as root).
tools=(strace:strace qemu-aarch64:qemu-user qemu-system-aarch64:qemu-system-arm cpio:cpio gdb:gdb gcore:gdb setpriv:util-linux unshare:util-linux
  nsenter:util-linux script:bsdutils man:man-db zsh:zsh fish:fish python3:python3)
missing() {
  need=()
  local t
  for t in "${tools[@]}"; do
    command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
  done
  [ -e "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || need+=(libc6-dev)
  [ ${#need[@]} -eq 0 ] || mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
}
missing
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  missing
fi
# Kernel cores land in the crashing process's directory only with a plain core_pattern (not a
# pipe to systemd-coredump or apport, not a path): set `core` as root, and put it back after.
pattern_file=/proc/sys/kernel/core_pattern
pattern=$(cat "$pattern_file")
case "$pattern" in
  ''|'|'*|*/*)
    if [ "$(id -u)" = 0 ] && echo core 2>/dev/null > "$pattern_file"; then
      trap 'printf "%s\n" "$pattern" > "$pattern_file"' EXIT
    else
      need+=("kernel.core_pattern=core (now \"$pattern\"; root sets it)")
    fi ;;
esac
if [ ${#need[@]} -gt 0 ]; then
  if [ $quick = 1 ]; then
    echo "test.sh: missing (the tests that need it are skipped): ${need[*]}" >&2
  else
    echo "test.sh: missing, install as root (apt-get install) or run as root: ${need[*]}" >&2
    exit 1
  fi
fi

# Tests record what they skipped (a partial run only) in target/test-skips.txt, and one-line
# summaries of long runs (the arm64 VM's) in target/test-summary.txt.
skips=target/test-skips.txt
summaries=target/test-summary.txt
rm -f "$skips" "$summaries"
# The code is kept as rustfmt writes it and free of clippy warnings.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  command -v rustup >/dev/null && rustup component add rustfmt clippy >/dev/null 2>&1
fi
cargo fmt --check
cargo clippy --quiet --all-targets --features test-hooks -- -D warnings
cargo build --quiet --all-targets --features test-hooks
status=0
cargo test --quiet --no-fail-fast --features test-hooks -- --test-threads=2 || status=$?
if [ -s "$summaries" ]; then
  cat "$summaries" >&2
fi
if [ -s "$skips" ]; then
  { echo "$(wc -l < "$skips") skipped:"; sed 's/^/  /' "$skips"; } >&2
fi
exit $status
