#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the test suite.
#
#   eval "$(scripts/test-postgres.sh start)"   # prints the variables the tests read
#   scripts/test-postgres.sh stop
#
# TEST_DATABASE_URL is the cluster's maintenance database (each test creates its
# own database in it); TEST_PG_CTL is a pg_ctl for this cluster, which the
# outage test uses to stop and start the server. Needs Debian's postgresql package.
set -euo pipefail
PORT=${TEST_PG_PORT:-54329}
DATA=${TEST_PG_DATA:-/tmp/ollama-gate-test-pg}
CTL="$DATA.ctl"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$BIN" ]; then
  echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
# PostgreSQL refuses to run as root: as root, run it as the package's postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-start}" in
start)
  if [ -f "$DATA/postmaster.pid" ]; then as_owner "$BIN/pg_ctl" -D "$DATA" stop -m immediate >/dev/null 2>&1 || true; fi
  rm -rf "$DATA"
  mkdir -p "$DATA"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; fi
  as_owner "$BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null
  cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
max_connections = 400
fsync = ${TEST_PG_FSYNC:-off}
CONF
  cat > "$CTL" <<CTL
#!/usr/bin/env bash
if [ "\$(id -u)" = 0 ]; then exec runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w "\$@"; fi
exec "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w "\$@"
CTL
  chmod +x "$CTL"
  "$CTL" start >/dev/null
  echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
  echo "export TEST_PG_CTL=$CTL"
  ;;
stop)
  if [ -x "$CTL" ]; then "$CTL" stop -m fast >/dev/null || true; fi
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
