# Peer tools for the side-by-side benchmark (crates/engine/benches/peers/), pinned and kept under
# .tools/peers/: Singer's tap-stripe and a Singer Postgres target from PyPI, each in its own uv
# venv on the system Python, and Stripe's TypeScript @stripe/sync-engine from npm. Source it after
# common.sh and registries.sh (it uses say, die, ensure_uv and ensure_node), from the repository
# root, as the other scripts do.
#
# The target is pipelinewise-target-postgres: it installs and runs on Python 3.11 (psycopg2-binary
# 2.9.5 has cp311 wheels) and loads with COPY then a merge, the usual choice next to tap-stripe.

PEERS_DIR="$PWD/.tools/peers"
PEERS_PYTHON=${PEERS_PYTHON:-/usr/bin/python3}   # the system Python: no Python downloads here
TAP_STRIPE_VERSION=3.3.0
TARGET_POSTGRES_PACKAGE=pipelinewise-target-postgres
TARGET_POSTGRES_VERSION=2.1.2
STRIPE_SYNC_ENGINE_VERSION=1.0.32
# Its own dependencies, pinned too so that runs compare the same code (the package asks for
# stripe ^17.7.0 and pg ^8.16.3).
STRIPE_NODE_VERSION=17.7.0
NODE_PG_VERSION=8.23.1

# _peer_venv DIR PACKAGE VERSION: PACKAGE==VERSION alone in the uv venv DIR.
_peer_venv() {
  local dir=$1 package=$2 version=$3
  local have
  have=$("$dir/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))" 2>/dev/null) || true
  [ "$have" = "$version" ] && return 0
  say "installing $package==$version into $dir"
  [ -x "$PEERS_PYTHON" ] || die "$PEERS_PYTHON is missing: set PEERS_PYTHON to a Python 3.11"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  UV_PYTHON_DOWNLOADS=never "$UV" venv -q --python "$PEERS_PYTHON" "$dir" \
    || die "uv venv $dir failed"
  UV_PYTHON_DOWNLOADS=never "$UV" pip install -q --python "$dir/bin/python" "$package==$version" \
    || die "uv pip install $package==$version failed"
}

# ensure_peers: exports PEERS_DIR, TAP_STRIPE, TARGET_POSTGRES (executables) and
# STRIPE_SYNC_ENGINE_DIR (where node_modules/@stripe/sync-engine is).
ensure_peers() {
  ensure_uv
  ensure_node
  _peer_venv "$PEERS_DIR/tap-stripe" tap-stripe "$TAP_STRIPE_VERSION"
  _peer_venv "$PEERS_DIR/target-postgres" "$TARGET_POSTGRES_PACKAGE" "$TARGET_POSTGRES_VERSION"

  local npm_dir="$PEERS_DIR/stripe-sync-engine" have
  have=$(node -p "require('$npm_dir/node_modules/@stripe/sync-engine/package.json').version" 2>/dev/null) || true
  if [ "$have" != "$STRIPE_SYNC_ENGINE_VERSION" ]; then
    say "installing @stripe/sync-engine@$STRIPE_SYNC_ENGINE_VERSION into $npm_dir"
    rm -rf "$npm_dir"
    mkdir -p "$npm_dir"
    npm install --prefix "$npm_dir" --save-exact --no-audit --no-fund --loglevel=error \
      "@stripe/sync-engine@$STRIPE_SYNC_ENGINE_VERSION" "stripe@$STRIPE_NODE_VERSION" \
      "pg@$NODE_PG_VERSION" >/dev/null \
      || die "npm install @stripe/sync-engine@$STRIPE_SYNC_ENGINE_VERSION failed"
  fi

  export PEERS_DIR
  export TAP_STRIPE="$PEERS_DIR/tap-stripe/bin/tap-stripe"
  export TARGET_POSTGRES="$PEERS_DIR/target-postgres/bin/target-postgres"
  export STRIPE_SYNC_ENGINE_DIR="$npm_dir"
}
