#!/usr/bin/env bash
# Builds statically linked goroscope binaries for x86_64 and aarch64 Linux (glibc, crt-static: no
# dynamic loader, no shared libraries, so they run in a scratch or distroless container and can be
# copied into a pod), plus shell completions and man pages, generated from the binary's own clap
# definitions, into DIST (default: dist/ in the repository, git-ignored):
#
#   DIST/goroscope                          the x86_64 binary
#   DIST/goroscope-aarch64                  the aarch64 binary
#   DIST/completions/goroscope.bash|.zsh|.fish
#   DIST/man/goroscope.1, goroscope-<command>.1
#
# Offline once the crates are in cargo's cache (any earlier build fetched them): --locked, and
# no rustup target to add (x86_64-unknown-linux-gnu is the host's; glibc's libc.a comes with
# libc6-dev). Honours CARGO_TARGET_DIR.
#
# The aarch64 binary is cross-built with Debian's own Rust (rustc-web and cargo-web, which come
# with an aarch64 standard library as libstd-rust-web-dev:arm64) and the aarch64 GNU cross
# toolchain; as root the script installs these Debian packages when they are missing. It builds
# into its own target directory (CARGO_TARGET_DIR/debian-cross) so it never touches the host
# build's artifacts. ONLY=x86_64 or ONLY=aarch64 builds just one of the two.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dist="${1:-$root/dist}"
triple=x86_64-unknown-linux-gnu

if [ "$(uname -m)" != x86_64 ]; then
    echo "build-static.sh: builds for x86_64 on an x86_64 host; this is $(uname -m)" >&2
    exit 1
fi

only="${ONLY:-}"
case "$only" in "" | x86_64 | aarch64) ;; *)
    echo "build-static.sh: ONLY must be x86_64 or aarch64, not $only" >&2
    exit 1
    ;;
esac
target_dir="${CARGO_TARGET_DIR:-$root/target}"

# Installs the Debian packages the aarch64 cross build needs, when missing.
install_cross_toolchain() {
    local missing=() pkg
    for pkg in rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "build-static.sh: the aarch64 build needs the Debian packages ${missing[*]}; run as root" \
            "to install them (dpkg --add-architecture arm64; apt-get install ${missing[*]})," \
            "or set ONLY=x86_64" >&2
        exit 1
    fi
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

cd "$root"
mkdir -p "$dist/completions" "$dist/man"
if [ "$only" != x86_64 ]; then
    install_cross_toolchain
    a64=aarch64-unknown-linux-gnu
    # Debian's cargo and rustc by full path: a rustup toolchain earlier on PATH has no aarch64 std.
    RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$target_dir/debian-cross" \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=debuginfo \
        /usr/bin/cargo build --release --locked --target "$a64" --bin goroscope
    cp "$target_dir/debian-cross/$a64/release/goroscope" "$dist/goroscope-aarch64.tmp"
    mv "$dist/goroscope-aarch64.tmp" "$dist/goroscope-aarch64"
    if file_out="$(file -b "$dist/goroscope-aarch64" 2>/dev/null)"; then
        echo "$dist/goroscope-aarch64: $file_out"
    else
        echo "$dist/goroscope-aarch64"
    fi
    [ "$only" = aarch64 ] && exit 0
fi

# --target keeps build scripts and proc macros dynamic (RUSTFLAGS apply to the target only)
# and the static artifacts apart from the ordinary ones.
# Debug info stripped: a third of the size, for copying into pods (panics still name functions).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked --target "$triple" --bin goroscope
bin="$target_dir/$triple/release/goroscope"

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
