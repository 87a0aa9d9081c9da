# Loopback package registries for the release tests (tests/release.rs): verdaccio (an npm
# registry) from npm, and uv (uvx) from PyPI, each pinned and kept under .tools/. Source it after
# common.sh.

VERDACCIO_VERSION=6.8.0   # 6.10 needs Node 22
UV_VERSION=0.13.9
VERDACCIO_DIR="$PWD/.tools/verdaccio"
UV_VENV="$PWD/.tools/uv"

# ensure_node: node and npm (Debian's, when missing and apt-get is usable).
ensure_node() {
  command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
    || die "node and npm are missing and cannot be installed here: install Node.js 18 or newer with npm."
  say "installing Debian's nodejs and npm (the release tests install the npm packages)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null \
    || die "apt-get install nodejs npm failed"
}

# ensure_verdaccio: exports VERDACCIO (its executable) for the tests.
ensure_verdaccio() {
  ensure_node
  local bin="$VERDACCIO_DIR/node_modules/.bin/verdaccio"
  if ! "$bin" --version 2>/dev/null | grep -q "$VERDACCIO_VERSION"; then
    say "installing verdaccio@$VERDACCIO_VERSION (a loopback npm registry for the release tests) into $VERDACCIO_DIR"
    rm -rf "$VERDACCIO_DIR"
    mkdir -p "$VERDACCIO_DIR"
    npm install --prefix "$VERDACCIO_DIR" --no-audit --no-fund --loglevel=error \
      "verdaccio@$VERDACCIO_VERSION" >/dev/null \
      || die "npm install verdaccio@$VERDACCIO_VERSION failed"
  fi
  export VERDACCIO="$bin"
}

# ensure_uv: exports UV (uv, whose `uv tool run` is uvx) for the tests.
ensure_uv() {
  local bin="$UV_VENV/bin/uv"
  if ! "$bin" --version 2>/dev/null | grep -q "uv $UV_VERSION"; then
    say "installing uv==$UV_VERSION (uvx, for the release tests) into $UV_VENV"
    rm -rf "$UV_VENV"
    mkdir -p "$(dirname "$UV_VENV")"
    python3 -m venv "$UV_VENV" || die "python3 -m venv failed"
    "$UV_VENV/bin/pip" install -q "uv==$UV_VERSION" || die "pip install uv==$UV_VERSION failed"
  fi
  export UV="$bin"
}
