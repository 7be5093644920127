# Shared settings for goroscope's scripts (sourced, not run).
# The Go versions fixtures are built with; keep in step with tests/support/toolchains.rs.
GO_VERSIONS=(1.19.8 1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3)
CACHE_DIR=${GOROSCOPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/goroscope}
GO_CACHE="$CACHE_DIR/go"
export GOTOOLCHAIN=local GOPROXY=off
