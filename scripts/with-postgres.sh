#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster: Debian's server binaries, initdb and pg_ctl run as
# the postgres user (runuser, so this needs root) in a temporary directory, listening on 127.0.0.1 on a
# free port; PROXIMITY_TEST_POSTGRES holds the admin URL. The cluster and its directory go when the
# command ends. Without the binaries: PROXIMITY_POSTGRES_INSTALL=1 apt-installs postgresql, else this
# says so and exits 0 without running the command (a skip; CI sets the variable, so there it cannot skip),
# or with PROXIMITY_POSTGRES_OPTIONAL=1 runs the command without PostgreSQL.
set -euo pipefail
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
pgbin=$(find_bin)
if [ -z "$pgbin" ]; then
    if [ "${PROXIMITY_POSTGRES_INSTALL:-0}" != 1 ]; then
        echo "with-postgres: SKIPPED: no PostgreSQL server binaries (PROXIMITY_POSTGRES_INSTALL=1 installs Debian's postgresql)"
        if [ "${PROXIMITY_POSTGRES_OPTIONAL:-0}" = 1 ]; then exec "$@"; fi  # run without PostgreSQL
        exit 0
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pgbin=$(find_bin)
    [ -n "$pgbin" ] || { echo "with-postgres: postgresql installed but no server binaries found" >&2; exit 1; }
fi
if [ "$(id -u)" != 0 ]; then
    echo "with-postgres: must run as root (initdb and pg_ctl run as the postgres user via runuser)" >&2
    exit 1
fi
dir=$(mktemp -d /tmp/proximity-pg.XXXXXX)
chown postgres: "$dir"
chmod 700 "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() {
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
runuser -u postgres -- "$pgbin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 ${PROXIMITY_POSTGRES_OPTIONS:-}" \
    start >/dev/null
echo "with-postgres: PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)"
export PROXIMITY_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$port/postgres"
"$@"
