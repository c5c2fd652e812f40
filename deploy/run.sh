#!/usr/bin/env bash
# `make run`: migrate, collect static files, then serve the site on
# http://$HOST:$PORT with $WORKERS daphne processes under supervisord
# (deploy/supervisord.conf). With REDIS_URL unset, supervisord also runs a
# private Redis on $REDIS_PORT for this run. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}" WORKERS="${WORKERS:-2}"
mkdir -p var/supervisor.d
rm -f var/supervisor.d/*.conf

# A local secret, made once: the site runs with debug off, as in production.
# (manage.py reads the same file, so that createsuperuser needs nothing set.)
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  [ -s var/secret_key ] || .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key
  DJANGO_SECRET_KEY="$(cat var/secret_key)"
  export DJANGO_SECRET_KEY
fi
export DJANGO_ALLOWED_HOSTS="${DJANGO_ALLOWED_HOSTS:-localhost,127.0.0.1,[::1],$HOST}"
# The workers (deploy/daphne.sh) run the virtualenv's python.
export PATH="$PWD/.venv/bin:$PATH"

if [ -z "${REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  }
  export REDIS_PORT="${REDIS_PORT:-6390}"
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  cp deploy/supervisor-redis.conf var/supervisor.d/redis.conf
fi

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v 0

cat <<MSG

  Chat is on http://$HOST:$PORT/ ($WORKERS daphne workers, Redis at $REDIS_URL)
  Sign up at http://$HOST:$PORT/accounts/signup/, or log in if you have an account.
  For the admin (/admin/): .venv/bin/python manage.py createsuperuser
  Ctrl-C stops it.

MSG
exec .venv/bin/supervisord -c deploy/supervisord.conf
