#!/usr/bin/env bash
# Installs the real Go 1.20 programs tests/it/go120.rs reads: esbuild's stripped static Linux builds
# from the npm registry (0.17.19, built by go1.20.4, and 0.18.20, by go1.20.7; no Go 1.20
# toolchain is installable here). `npm pack` fetches each package (checked against the
# registry's integrity hash); package/bin/esbuild of @esbuild/linux-x64 is kept as
# <cache>/esbuild/<version>/esbuild, that of @esbuild/linux-arm64 (read from qemu-user cores) as
# <cache>/esbuild/<version>/esbuild-arm64. Idempotent: a binary already present is not fetched
# again.
#   scripts/install-esbuild.sh            both versions
#   scripts/install-esbuild.sh 0.18.20    only the named ones
# Prints nothing but errors unless -v is given. The cache directory is that of
# scripts/install-go.sh ($GOROSCOPE_CACHE, else $XDG_CACHE_HOME/goroscope, else ~/.cache/goroscope).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# Keep in step with ESBUILD_VERSIONS in tests/it/go120.rs.
ESBUILD_VERSIONS=(0.17.19 0.18.20)

parse_install_args "${ESBUILD_VERSIONS[@]}" -- "$@"

root="$CACHE_DIR/esbuild"
mkdir -p "$root"
for v in "${versions[@]}"; do
  for pkg in linux-x64:esbuild linux-arm64:esbuild-arm64; do
    platform=${pkg%%:*}
    name=${pkg#*:}
    dir="$root/$v"
    if [ -x "$dir/$name" ]; then
      [ $verbose = 1 ] && echo "esbuild $v $platform: present in $dir/$name"
      continue
    fi
    command -v npm >/dev/null || { echo "install-esbuild: npm is needed to fetch @esbuild/$platform@$v" >&2; exit 1; }
    tmp="$root/.tmp-$v-$platform-$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if ! tgz=$(cd "$tmp" && npm pack --silent "@esbuild/$platform@$v" 2>"$tmp/npm.err"); then
      cat "$tmp/npm.err" >&2
      rm -rf "$tmp"
      echo "install-esbuild: npm pack @esbuild/$platform@$v failed" >&2
      exit 1
    fi
    tar -xzf "$tmp/$tgz" -C "$tmp"
    if [ ! -f "$tmp/package/bin/esbuild" ]; then
      rm -rf "$tmp"
      echo "install-esbuild: @esbuild/$platform@$v has no package/bin/esbuild" >&2
      exit 1
    fi
    chmod 755 "$tmp/package/bin/esbuild"
    mkdir -p "$dir"
    mv "$tmp/package/bin/esbuild" "$dir/$name"
    rm -rf "$tmp"
    [ $verbose = 1 ] && echo "esbuild $v $platform: installed in $dir/$name"
  done
done
exit 0
