# make run        - install, migrate and serve the site on http://127.0.0.1:8000
#                   (SQLite, a private Redis, 2 workers; see deploy/run.sh)
# make test       - the whole suite: lint, the unit and socket tier on SQLite and on
#                   PostgreSQL side by side, then the tests of real processes (daphne
#                   workers, the `make run` path among them, nginx, HAProxy, PgBouncer and
#                   Debian's Chromium) in two processes of their own
# make test-fast  - the loop while you work, in under a minute with no service running:
#                   the unit and socket tests that need no Redis and start no process,
#                   on SQLite and the in-memory channel layer (chat/platform/memory.py)
# make test-sqlite, make test-postgres - the unit and socket tier on one database;
# make test-processes - the tests of real processes
#                   (each needs the services running: deploy/ensure-services.sh)
# make lint       - ruff and mypy
# make vendor-yjs - refresh static/chat/vendor/ (Yjs for the notes panel) from the npm registry
VENV := .venv
PYTHON := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# The unit and socket tier: no process of the site's own, any database.
UNIT_TESTS := tests --ignore=tests/integration --ignore=tests/browser
# Of those, the ones `make test-fast` leaves out: the tests marked as needing Redis
# or starting processes of their own (pyproject.toml). `make test` runs them all.
FAST_TESTS := $(UNIT_TESTS) -m "not redis and not processes"
# The test runs make databases of their own: a file in the temporary directory
# (SQLite) or test_chatsite_<pid> (PostgreSQL). These only choose the backend.
TEST_SQLITE_URL := sqlite:///$(CURDIR)/var/test.sqlite3
TEST_POSTGRES_URL := postgres://postgres:postgres@127.0.0.1:5432/chatsite

.PHONY: install run test test-sqlite test-postgres test-processes test-fast lint

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

run: install
	deploy/run.sh

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy chat chatsite
	deploy/ensure-services.sh redis postgres nginx haproxy pgbouncer chromium
	@echo "== the unit and socket tier on SQLite and on PostgreSQL, side by side"
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres
	$(MAKE) --no-print-directory test-processes

# The tiers wait more than they compute (sockets, sleeps, processes starting): `make
# test` runs the two database tiers at once, each one's output printed whole when it
# ends (--output-sync), failing if either fails; then the real processes, in two
# pytest processes. All three at once loaded 2 cores enough to fail timed waits.
test-sqlite:
	@echo "== unit and socket tier on SQLite"
	DATABASE_URL=$(TEST_SQLITE_URL) $(VENV)/bin/pytest $(UNIT_TESTS)

test-postgres:
	@echo "== unit and socket tier on PostgreSQL"
	DATABASE_URL=$(TEST_POSTGRES_URL) $(VENV)/bin/pytest $(UNIT_TESTS)

# Real daphne workers, make run, nginx, HAProxy, PgBouncer, Chromium: two processes,
# each taking whole files (a file's workers are started once for its tests).
test-processes:
	@echo "== real processes: daphne workers, make run, nginx, HAProxy, PgBouncer, Chromium"
	DATABASE_URL=$(TEST_POSTGRES_URL) $(VENV)/bin/pytest -n 2 --dist loadfile tests/integration tests/browser

# Redis is named at a closed port: a test that reaches for it without its mark fails here.
test-fast: install
	CHAT_TEST_LAYER=memory REDIS_URL=redis://127.0.0.1:1/0 DATABASE_URL=$(TEST_SQLITE_URL) \
	    $(VENV)/bin/pytest $(FAST_TESTS) -x

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy chat chatsite

# make bench - the fan-out benchmark (bench/README.md); writes bench/results/<date>/
.PHONY: bench
bench: install
	$(VENV)/bin/pip install -q -r bench/requirements.txt
	deploy/ensure-services.sh redis postgres
	$(PYTHON) bench/run.py

# make vendor-yjs - Yjs, lib0 and y-protocols at their pinned versions, as the page's
# ES modules with their licences (deploy/vendor_yjs.py); needs npm
.PHONY: vendor-yjs
vendor-yjs: install
	$(PYTHON) deploy/vendor_yjs.py
