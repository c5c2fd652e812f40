#!/bin/sh
# PgBouncer's entry in docker-compose.scale.yml: writes the one login it knows,
# from the environment, to the auth_file its config names (so the password is
# never in the image), then runs PgBouncer in the foreground.
#
#   PGBOUNCER_USER=chat PGBOUNCER_PASSWORD=... deploy/pgbouncer/start.sh [pgbouncer.ini]
set -eu
config="${1:-/etc/pgbouncer/pgbouncer.ini}"
auth_file="$(sed -n 's/^auth_file *= *//p' "$config")"
# userlist.txt: "name" "password", a double quote inside one doubled.
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
umask 077
printf '%s %s\n' "$(quoted "$PGBOUNCER_USER")" "$(quoted "$PGBOUNCER_PASSWORD")" >"$auth_file"
exec pgbouncer "$config"
