#!/usr/bin/env bash
# Make sure the services the site and its tests talk to answer: Redis (at
# REDIS_URL) and, for the tests, PostgreSQL on 127.0.0.1:5432. A service that
# does not answer is started; a server that is not installed is installed
# from Debian's packages first. `chromium` installs Debian's browser for the
# browser tests (Playwright drives /usr/bin/chromium and never downloads one),
# and a color emoji font. `nginx`, `haproxy` and `pgbouncer` are only
# installed: the tests start their own, from the configs in deploy/.
#
#   deploy/ensure-services.sh redis                       # only Redis
#   deploy/ensure-services.sh redis postgres nginx haproxy pgbouncer chromium
#                                                         # what make test needs
set -euo pipefail

REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
VAR_DIR="$(cd "$(dirname "$0")/.." && pwd)/var"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  echo "installing $* from Debian's packages" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

redis_answers() {
  python3 - "$REDIS_URL" <<'PY'
import socket, sys
from urllib.parse import urlsplit
url = urlsplit(sys.argv[1])
try:
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=2) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(64).startswith((b"+PONG", b"-NOAUTH")) else 1)
except OSError:
    sys.exit(1)
PY
}

ensure_redis() {
  if redis_answers; then return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  local port
  port="$(python3 -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).port or 6379)' "$REDIS_URL")"
  mkdir -p "$VAR_DIR"
  echo "starting redis-server on 127.0.0.1:$port" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$VAR_DIR" --logfile "$VAR_DIR/redis-$port.log" --pidfile "$VAR_DIR/redis-$port.pid"
  for _ in $(seq 50); do redis_answers && return; sleep 0.1; done
  echo "redis-server did not answer on port $port" >&2
  exit 1
}

postgres_answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if ! postgres_answers; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    echo "starting PostgreSQL $version" >&2
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 50); do postgres_answers && break; sleep 0.2; done
  fi
  # The tests log in as postgres/postgres; a fresh Debian cluster wants a password.
  if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
}

for service in "${@:-redis}"; do
  case "$service" in
    redis) ensure_redis ;;
    nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx-light ;;
    haproxy) command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || apt_install haproxy ;;
    pgbouncer) command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer ;;
    postgres) ensure_postgres ;;
    # With a color emoji font: reactions are emoji, and the screenshots show them.
    chromium)
      [ -x /usr/bin/chromium ] || apt_install chromium
      [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || apt_install fonts-noto-color-emoji
      ;;
    *) echo "unknown service: $service" >&2; exit 2 ;;
  esac
done
