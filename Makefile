# make run   - install, migrate and serve the site on http://127.0.0.1:8000
# make test  - the whole suite, against real Redis and PostgreSQL, and in Debian's Chromium
# make lint  - ruff and mypy
VENV := .venv
PYTHON := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install run test lint

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
	deploy/ensure-services.sh redis postgres nginx chromium
	$(VENV)/bin/pytest

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
