#!/usr/bin/env bash
# Throwaway PostgreSQL + MariaDB servers for HubDr integration tests (Debian 12, run as root).
#
#   tests/servers/servers.sh start <workdir>   -> starts both (packages: tools/prerequisites.psd1), writes <workdir>/servers.env (0600)
#   tests/servers/servers.sh stop  <workdir>   -> stops both and removes <workdir> (idempotent)
#
# Never touches the machine's default clusters/services: fresh data dirs under <workdir>, own ports
# (PostgreSQL 127.0.0.1:55432, MariaDB 127.0.0.1:53306), unix sockets inside <workdir>, --no-defaults for MariaDB.
set -euo pipefail

PG_PORT="${HUBDR_PG_PORT:-55432}"
MY_PORT="${HUBDR_MYSQL_PORT:-53306}"
ADMIN_USER="hubdr_admin"

die() { echo "servers.sh: $*" >&2; exit 1; }

usage() { echo "usage: $0 start|stop <workdir>" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
CMD="$1"
WORK="$2"
[[ -n "$WORK" && "$WORK" != "/" ]] || die "refusing workdir '$WORK'"

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  [[ -n "$d" && -x "$d/initdb" ]] && echo "$d"
}

mariadbd_bin() {
  local b
  for b in /usr/sbin/mariadbd /usr/sbin/mysqld "$(command -v mariadbd 2>/dev/null || true)"; do
    [[ -n "$b" && -x "$b" ]] && { echo "$b"; return; }
  done
}

ensure_installed() {
  # The packages come from the one declared list (tools/prerequisites.psd1), which build.ps1 installs every run.
  [[ -n "$(pg_bindir)" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (install the Test packages of tools/prerequisites.psd1, e.g. via 'build.ps1 Test')"
  [[ -n "$(mariadbd_bin)" ]] || die "mariadbd not found (install the Test packages of tools/prerequisites.psd1)"
  local c
  for c in psql mariadb mariadb-install-db; do
    command -v "$c" >/dev/null || die "$c not found (install the Test packages of tools/prerequisites.psd1)"
  done
}

random_password() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }

stop_pg() {
  local bindir data="$WORK/pg/data"
  bindir="$(pg_bindir || true)"
  if [[ -n "$bindir" && -f "$data/postmaster.pid" ]]; then
    su postgres -s /bin/sh -c "'$bindir/pg_ctl' -D '$data' -m fast -w -t 30 stop" >/dev/null 2>&1 || true
    if [[ -f "$data/postmaster.pid" ]]; then
      local pid; pid="$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)"
      [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
    fi
  fi
}

stop_my() {
  local pidf="$WORK/mysql/mariadb.pid"
  if [[ -f "$pidf" ]]; then
    local pid; pid="$(cat "$pidf" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
}

do_stop() {
  [[ -d "$WORK" ]] || return 0
  stop_pg
  stop_my
  rm -rf "$WORK"
}

do_start() {
  ensure_installed
  local bindir mysqld
  bindir="$(pg_bindir)" || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
  mysqld="$(mariadbd_bin)" || die "mariadbd not found"

  # A previous run in the same workdir is cleaned first (fresh servers every start).
  do_stop
  local port
  for port in "$PG_PORT" "$MY_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port on 127.0.0.1 is already in use (servers from another workdir? stop them with '$0 stop <thatdir>', or set HUBDR_PG_PORT / HUBDR_MYSQL_PORT)"
    fi
  done
  mkdir -p "$WORK"
  chmod 0711 "$WORK"
  WORK="$(cd "$WORK" && pwd)"

  # ---- PostgreSQL ----
  local pgdir="$WORK/pg" pgpass mypass
  mkdir -p "$pgdir/data" "$pgdir/sock"
  chown -R postgres:postgres "$pgdir"
  chmod 0700 "$pgdir/data"
  su postgres -s /bin/sh -c "'$bindir/initdb' -D '$pgdir/data' -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256" >"$WORK/pg-initdb.log" 2>&1 \
    || { cat "$WORK/pg-initdb.log" >&2; die "initdb failed"; }
  su postgres -s /bin/sh -c "'$bindir/pg_ctl' -D '$pgdir/data' -l '$pgdir/server.log' -w -t 60 \
      -o \"-p $PG_PORT -k '$pgdir/sock' -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off\" start" \
      >/dev/null || { cat "$pgdir/server.log" >&2; die "PostgreSQL did not start"; }
  pgpass="$(random_password)"
  su postgres -s /bin/sh -c "'$bindir/psql' -X -q -v ON_ERROR_STOP=1 -h '$pgdir/sock' -p $PG_PORT -U postgres -d postgres" \
    <<<"CREATE ROLE $ADMIN_USER LOGIN SUPERUSER PASSWORD '$pgpass';" >/dev/null

  # ---- MariaDB ----
  local mydir="$WORK/mysql"
  mkdir -p "$mydir/data"
  chown -R mysql:mysql "$mydir"
  mariadb-install-db --no-defaults --datadir="$mydir/data" --user=mysql --skip-test-db \
      --auth-root-authentication-method=socket >"$WORK/mysql-install.log" 2>&1 \
    || { cat "$WORK/mysql-install.log" >&2; die "mariadb-install-db failed"; }
  # Own process group so a test runner's Ctrl+C does not leave it half-dead; --no-defaults ignores /etc/mysql.
  setsid "$mysqld" --no-defaults --user=mysql --datadir="$mydir/data" --port="$MY_PORT" --bind-address=127.0.0.1 \
      --socket="$mydir/mariadb.sock" --pid-file="$mydir/mariadb.pid" --log-error="$mydir/server.log" \
      --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_unicode_ci </dev/null >/dev/null 2>&1 &
  local ok=0
  for _ in $(seq 1 150); do
    if mariadb --no-defaults -uroot --socket="$mydir/mariadb.sock" -e 'SELECT 1' >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  [[ $ok -eq 1 ]] || { cat "$mydir/server.log" >&2 || true; die "MariaDB did not start"; }
  mypass="$(random_password)"
  mariadb --no-defaults -uroot --socket="$mydir/mariadb.sock" <<SQL
CREATE USER '$ADMIN_USER'@'127.0.0.1' IDENTIFIED BY '$mypass';
CREATE USER '$ADMIN_USER'@'localhost' IDENTIFIED BY '$mypass';
GRANT ALL PRIVILEGES ON *.* TO '$ADMIN_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$ADMIN_USER'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL

  local env="$WORK/servers.env"
  ( umask 077
    cat > "$env" <<ENV
HUBDR_TEST_PG_HOST=127.0.0.1
HUBDR_TEST_PG_PORT=$PG_PORT
HUBDR_TEST_PG_USER=$ADMIN_USER
HUBDR_TEST_PG_PASSWORD=$pgpass
HUBDR_TEST_PG_BINDIR=$bindir
HUBDR_TEST_MYSQL_HOST=127.0.0.1
HUBDR_TEST_MYSQL_PORT=$MY_PORT
HUBDR_TEST_MYSQL_USER=$ADMIN_USER
HUBDR_TEST_MYSQL_PASSWORD=$mypass
ENV
  )
  chmod 0600 "$env"
  echo "servers.sh: PostgreSQL on 127.0.0.1:$PG_PORT, MariaDB on 127.0.0.1:$MY_PORT; env in $env"
}

case "$CMD" in
  start) do_start ;;
  stop) do_stop ;;
  *) usage ;;
esac
