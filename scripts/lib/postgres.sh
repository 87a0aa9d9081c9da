# ensure_postgres: makes sure a Postgres server is reachable and exports DATABASE_URL.
#
# Order: an explicit DATABASE_URL (must answer); the default 127.0.0.1:5432 if it answers;
# start the machine's Debian cluster (pg_ctlcluster); initialise a throwaway trust-auth cluster
# with the server binaries under /usr/lib/postgresql/*/bin (installing Debian's postgresql
# package first when there are none and apt-get is usable).

PG_DEFAULT_URL="postgres://postgres@127.0.0.1:5432/postgres"

pg_answers() { # URL
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$1" -t 3
  else
    local hostport host port
    hostport=$(printf '%s' "$1" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')
    host=${hostport%%:*}; port=${hostport##*:}; [ "$port" = "$hostport" ] && port=5432
    (exec 3<>"/dev/tcp/${host:-127.0.0.1}/$port") 2>/dev/null
  fi
}

pg_wait() { # URL SECONDS
  local i
  for ((i = 0; i < $2 * 4; i++)); do
    pg_answers "$1" && return 0
    sleep 0.25
  done
  return 1
}

pg_start_debian_cluster() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  local line version name port
  line=$(pg_lsclusters --no-header 2>/dev/null | head -n 1)
  [ -n "$line" ] || return 1
  read -r version name port _ <<<"$line"
  say "starting the local Postgres cluster $version/$name on port $port"
  pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start >/dev/null 2>&1 || pg_ctlcluster "$version" "$name" start || return 1
  PG_STARTED_URL="postgres://postgres@127.0.0.1:$port/postgres"
  pg_wait "$PG_STARTED_URL" 30
}

pg_server_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_install_server() {
  command -v apt-get >/dev/null 2>&1 || return 1
  [ "$(id -u)" = 0 ] || { say "not root: cannot install the postgresql package"; return 1; }
  say "installing Debian's postgresql package (no Postgres server found)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

pg_free_port() {
  local port
  for port in 5432 54329 54330 54331 54332; do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  return 1
}

pg_start_throwaway() {
  local bindir port dir as=()
  bindir=$(pg_server_bindir)
  [ -n "$bindir" ] || return 1
  port=$(pg_free_port) || return 1
  dir="${TMPDIR:-/tmp}/stripe-sync-pg-$port"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres || return 1
    as=(runuser -u postgres --)
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    say "initialising a throwaway Postgres cluster in $dir"
    rm -rf "$dir"; mkdir -p "$dir"
    [ ${#as[@]} -gt 0 ] && chown postgres "$dir"
    "${as[@]}" "$bindir/initdb" -D "$dir" --auth=trust --username=postgres -E UTF8 >/dev/null || return 1
  fi
  say "starting the throwaway Postgres cluster on port $port"
  "${as[@]}" "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null || return 1
  PG_STARTED_URL="postgres://postgres@127.0.0.1:$port/postgres"
  pg_wait "$PG_STARTED_URL" 30
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    pg_wait "$DATABASE_URL" 10 || die "DATABASE_URL is set but the server does not answer. Start it, or unset DATABASE_URL to let this script start a local one."
    export DATABASE_URL
    return 0
  fi
  if pg_answers "$PG_DEFAULT_URL"; then
    export DATABASE_URL="$PG_DEFAULT_URL"
    return 0
  fi
  PG_STARTED_URL=""
  if pg_start_debian_cluster || pg_start_throwaway || { pg_install_server && pg_start_throwaway; }; then
    export DATABASE_URL="$PG_STARTED_URL"
    say "Postgres is up at $DATABASE_URL"
    return 0
  fi
  die "no Postgres server is reachable and none could be started. Install PostgreSQL (apt-get install postgresql) or set DATABASE_URL to a server you can use."
}

# ensure_postgres_server_binaries: tests that run a cluster of their own (TLS with their own
# certificates) need initdb and pg_ctl even when DATABASE_URL points elsewhere.
ensure_postgres_server_binaries() {
  [ -n "$(pg_server_bindir)" ] && return 0
  pg_install_server && [ -n "$(pg_server_bindir)" ] && return 0
  die "no Postgres server binaries under /usr/lib/postgresql/*/bin, and they could not be installed (apt-get install postgresql)."
}
