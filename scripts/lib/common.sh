# Shared helpers for scripts/*. Source it; it defines functions only.

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# need COMMAND HINT: fail with a clear message when a required command is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed. $2"
}

need_rust() {
  need cargo "Install Rust with rustup (https://rustup.rs), then rerun."
  cargo fmt --version >/dev/null 2>&1 || die "rustfmt is missing: run 'rustup component add rustfmt'."
  cargo clippy --version >/dev/null 2>&1 || die "clippy is missing: run 'rustup component add clippy'."
}

# The directory cargo builds into (honours CARGO_TARGET_DIR and .cargo/config).
target_dir() {
  cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
