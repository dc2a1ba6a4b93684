# make run   — set up, load the demo world and run web + worker + beat (embedded by default)
# make test  — set up (Debian's chromium included) and run the test suite (against whatever DATABASE_URL /
#              CELERY_BROKER_URL say)
# make test-quick — the same without the browser tests (no Chromium needed): the quick loop


PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LEDGER_BIND ?= 127.0.0.1:8000
DEMO_UNITS ?= 100000
# `make run` serves plain HTTP on localhost: no redirect to HTTPS, no HSTS, cookies without Secure.
LEDGER_PLAIN_HTTP ?= 1

CHROMIUM ?= /usr/bin/chromium

.PHONY: setup browser run test test-quick lint clean bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.installed

# The browser tests drive Debian's Chromium with Playwright (no browser download): install it once.
browser:
	@test -x $(CHROMIUM) || { \
		echo "Installing Debian's chromium for the browser tests (apt-get)"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
		|| { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
		|| { echo "could not install chromium: install Debian's chromium package, or set CHROMIUM"; exit 1; }; }
	@# A Chinese font, or the Simplified Chinese pages' screenshot shows empty boxes (the tests read text).
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
		echo "Installing a Chinese font for the pages' screenshots (apt-get)"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null 2>&1 \
		|| echo "could not install fonts-wqy-microhei: the Chinese screenshot will show empty boxes"; }

run: setup
	$(BIN)/python manage.py preflight
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo_load --units $(DEMO_UNITS)
	@echo
	@echo "Cell traceability ledger on http://$(LEDGER_BIND)/"
	@echo "  admin:        http://$(LEDGER_BIND)/admin/   (login above)"
	@echo "  API docs:     http://$(LEDGER_BIND)/api/v1/docs/"
	@echo "  health:       http://$(LEDGER_BIND)/health/"
	@echo "Web server, Celery worker and beat follow; Ctrl-C stops them all."
	@echo
	PATH="$(CURDIR)/$(BIN):$$PATH" LEDGER_BIND=$(LEDGER_BIND) LEDGER_PLAIN_HTTP=$(LEDGER_PLAIN_HTTP) $(BIN)/honcho start -f Procfile

test: setup browser
	LEDGER_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest

test-quick: setup
	$(BIN)/python -m pytest -m "not browser"

bench: setup
	$(BIN)/python -m bench
	$(BIN)/python -m bench.epcis_import

# Each must pass: ruff, the layout's import contracts (pyproject.toml) and mypy on the domain packages.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var
