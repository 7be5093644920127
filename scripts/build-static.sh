#!/usr/bin/env bash
# Builds one statically linked goroscope for x86_64 Linux (glibc, crt-static: no dynamic loader,
# no shared libraries, so it runs in a scratch or distroless container and can be copied into a
# pod), plus its shell completions and man pages, generated from the binary's own clap
# definitions, into DIST (default: dist/ in the repository, git-ignored):
#
#   DIST/goroscope                          the binary
#   DIST/completions/goroscope.bash|.zsh|.fish
#   DIST/man/goroscope.1, goroscope-<command>.1
#
# Offline once the crates are in cargo's cache (any earlier build fetched them): --locked, and
# no rustup target to add (x86_64-unknown-linux-gnu is the host's; glibc's libc.a comes with
# libc6-dev). Honours CARGO_TARGET_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dist="${1:-$root/dist}"
triple=x86_64-unknown-linux-gnu

if [ "$(uname -m)" != x86_64 ]; then
    echo "build-static.sh: builds for x86_64 on an x86_64 host; this is $(uname -m)" >&2
    exit 1
fi

cd "$root"
# --target keeps build scripts and proc macros dynamic (RUSTFLAGS apply to the target only)
# and the static artifacts apart from the ordinary ones.
# Debug info stripped: a third of the size, for copying into pods (panics still name functions).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked --target "$triple" --bin goroscope
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/$triple/release/goroscope"

mkdir -p "$dist/completions" "$dist/man"
cp "$bin" "$dist/goroscope.tmp"
mv "$dist/goroscope.tmp" "$dist/goroscope"
for shell in bash zsh fish; do
    "$dist/goroscope" completions "$shell" > "$dist/completions/goroscope.$shell"
done
"$dist/goroscope" man --dir "$dist/man"

if file_out="$(file -b "$dist/goroscope" 2>/dev/null)"; then
    echo "$dist/goroscope: $file_out"
else
    echo "$dist/goroscope"
fi
ls "$dist/completions" "$dist/man" | sed 's/^/  /'
