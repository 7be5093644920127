# Shared settings for goroscope's scripts (sourced, not run).
# The Go versions fixtures are built with; keep in step with tests/it/support/toolchains.rs.
GO_VERSIONS=(1.19.8 1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3)
CACHE_DIR=${GOROSCOPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/goroscope}
GO_CACHE="$CACHE_DIR/go"
export GOTOOLCHAIN=local GOPROXY=off

# parse_install_args DEFAULT... -- ARG...: the arguments of the install scripts: -v sets
# verbose=1, the others name the versions to install (else the DEFAULTs). Sets $verbose and the
# array $versions.
parse_install_args() {
  local defaults=() a
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    defaults+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  verbose=0
  versions=()
  for a in "$@"; do
    case "$a" in
      -v) verbose=1 ;;
      *) versions+=("$a") ;;
    esac
  done
  [ ${#versions[@]} -gt 0 ] || versions=("${defaults[@]}")
}

# build_fixture_for_script NAME VERSION: builds testdata/fixture with Go VERSION into
# target/go-fixtures/NAME/fixture the way the tests do (go.mod says the toolchain's Go
# version), installing the toolchain if missing; sets $fixture to the binary.
build_fixture_for_script() {
  local name=$1 version=$2 root dir go
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  go="$GO_CACHE/$version/go/bin/go"
  [ -x "$go" ] || "$root/scripts/install-go.sh" "$version"
  dir="$root/target/go-fixtures/$name"
  rm -rf "$dir/src"
  mkdir -p "$dir/src"
  cp "$root"/testdata/fixture/*.go "$dir/src/"
  printf 'module fixture\n\ngo %s\n' "${version%.*}" > "$dir/src/go.mod"
  (cd "$dir/src" && CGO_ENABLED=0 GOWORK=off "$go" build -o "../fixture.tmp-$$" . && mv "../fixture.tmp-$$" ../fixture)
  fixture="$dir/fixture"
}

# build_bigprog_for_script VERSION: generates a big Go program with testdata/bigprog/gen.go
# (about 100 MB built, DWARF included) into target/go-fixtures/bigprog/src and builds it with
# Go VERSION twice: target/go-fixtures/bigprog/bigprog (the default build) and
# bigprog-stripped (-ldflags='-s -w'). Both are kept and rebuilt only when gen.go or the toolchain
# is newer, or VERSION changed. Sets $bigprog and $bigprog_stripped. Takes a few minutes the first
# time (2 CPUs); Go's build cache makes the second link quick.
build_bigprog_for_script() {
  local version=$1 root dir go gen
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  go="$GO_CACHE/$version/go/bin/go"
  [ -x "$go" ] || "$root/scripts/install-go.sh" "$version"
  dir="$root/target/go-fixtures/bigprog"
  gen="$root/testdata/bigprog/gen.go"
  bigprog="$dir/bigprog"
  bigprog_stripped="$dir/bigprog-stripped"
  if [ -x "$bigprog" ] && [ -x "$bigprog_stripped" ] && [ "$bigprog" -nt "$gen" ] &&
    [ "$bigprog" -nt "$go" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "building a big Go program with Go $version into $dir (a few minutes)..." >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$root/testdata/bigprog" && BIGPROG_GO="$version" CGO_ENABLED=0 GOWORK=off "$go" run gen.go -out "$dir/src")
  (cd "$dir/src" && CGO_ENABLED=0 GOWORK=off "$go" build -o ../bigprog.tmp . && mv ../bigprog.tmp ../bigprog)
  (cd "$dir/src" && CGO_ENABLED=0 GOWORK=off "$go" build -ldflags='-s -w' -o ../bigprog-stripped.tmp . &&
    mv ../bigprog-stripped.tmp ../bigprog-stripped)
  echo "$version" > "$dir/version"
}
