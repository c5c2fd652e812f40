#!/bin/sh
# The one way a worker starts, on every path: supervisord (`make run`), the
# Dockerfile and docker-compose.yml. It runs the site's server (chat/platform/server.py:
# daphne with an access log that never writes a token, and frames written to the
# socket at once) with the socket limits of deploy/daphne.args. Arguments are
# daphne's, for where to listen:
#
#   deploy/daphne.sh --fd 0                                  # supervisord's shared socket
#   deploy/daphne.sh --proxy-headers -b 0.0.0.0 -p 8000      # a container behind nginx
#
# `python` is the one on PATH: the virtualenv's under `make run`, the image's in Docker.
set -eu
cd "$(dirname "$0")/.."
# shellcheck disable=SC2046  # daphne.args is one line of words
exec python -m chat.platform.server $(cat deploy/daphne.args) "$@" chatsite.asgi:application
