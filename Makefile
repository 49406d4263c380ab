# The marketplace's everyday commands. GNU make.
#
#   make run    create .venv, install requirements.txt, migrate, seed the demo, run web + worker + beat
#   make test   install requirements-dev.txt, ruff, mypy, the suite on the embedded default, and again
#               on PostgreSQL + Redis when they answer (required when CI=true)

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
BOOT_PYTHON ?= $(shell command -v python3.11 || command -v python3)
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check

PORT ?= 8000
export PORT

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export TEST_DATABASE_URL TEST_REDIS_URL
PYTEST_ARGS ?=

# Browser tests drive Debian's Chromium. Without it they are skipped with a reason, except in CI,
# where REQUIRE_BROWSER=1 turns a missing browser into a failure.
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH
ifeq ($(CI),true)
export REQUIRE_BROWSER := 1
endif

# The suite picks its own settings (pyproject.toml); nothing from the caller's shell may redirect
# the embedded run to a real service or to production settings.
EMBEDDED_ENV := env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL -u CACHE_URL -u DJANGO_SETTINGS_MODULE
SERVICES_ENV := env -u CELERY_BROKER_URL -u CACHE_URL -u DJANGO_SETTINGS_MODULE \
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL)

# Do PostgreSQL and Redis answer? Exit 0 if both do; otherwise print which does not.
define SERVICES_CHECK
import os, sys
import psycopg, redis
problems = []
db_url, redis_url = os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"]
try:
    psycopg.connect(db_url, connect_timeout=3).close()
except Exception as exc:
    problems.append(f"PostgreSQL at {db_url}: {str(exc).strip()}")
try:
    redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3).ping()
except Exception as exc:
    problems.append(f"Redis at {redis_url}: {exc}")
for problem in problems:
    print("  not answering:", problem)
sys.exit(1 if problems else 0)
endef
export SERVICES_CHECK

# Runs pytest and turns "no tests collected" (exit 5) into a visible failure.
define run_pytest
rc=0; $(1) $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests; that counts as a failure."; fi; \
exit $$rc
endef

.PHONY: help run test lint typecheck test-embedded test-services migrate seed shell clean distclean install install-dev
.PHONY: docs-screens
.PHONY: bench bench-queries bench-checkout bench-delivery bench-scale bench-balance

help:
	@echo "make run            web + worker + beat on http://127.0.0.1:$(PORT) (PORT=...), demo data seeded"
	@echo "make test           lint, types, the suite on the embedded default and on PostgreSQL + Redis"
	@echo "make lint           ruff check, mypy and lint-imports (the layers)"
	@echo "make test-embedded  the suite on SQLite and the filesystem broker"
	@echo "make test-services  the suite on TEST_DATABASE_URL and TEST_REDIS_URL"
	@echo "make bench          the benchmarks of bench/README.md (minutes; never part of make test)"
	@echo "make docs-screens   screenshots of the main pages (Chromium) into docs/screens/ for docs/tour.md"
	@echo "make migrate | seed | shell | clean | distclean"

# --- the virtualenv --------------------------------------------------------------------------
$(PY):
	@test -n "$(BOOT_PYTHON)" || { echo "Need python3.11 (or python3) on PATH."; exit 1; }
	@echo ">> creating $(VENV) with $(BOOT_PYTHON)"
	$(BOOT_PYTHON) -m venv $(VENV)

# Stamps: pip runs again only when a requirements file changes.
$(VENV)/.installed-runtime: requirements.txt | $(PY)
	@echo ">> installing requirements.txt"
	$(PIP_INSTALL) -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	@echo ">> installing requirements-dev.txt"
	$(PIP_INSTALL) -r requirements-dev.txt
	@touch $@ $(VENV)/.installed-runtime

install: $(VENV)/.installed-runtime
install-dev: $(VENV)/.installed-dev

# --- running ---------------------------------------------------------------------------------
run: install
	$(PY) manage.py migrate --noinput
	SITE_URL="$${SITE_URL:-http://127.0.0.1:$(PORT)}" $(PY) manage.py seed_demo
	$(PY) manage.py run_embedded --port $(PORT)

migrate: install
	$(PY) manage.py migrate --noinput

seed: install
	SITE_URL="$${SITE_URL:-http://127.0.0.1:$(PORT)}" $(PY) manage.py seed_demo

shell: install
	$(PY) manage.py shell

# --- checks ----------------------------------------------------------------------------------
lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m mypy .
	$(VENV)/bin/lint-imports

typecheck: install-dev
	$(PY) -m mypy .

test-embedded: install-dev
	@echo ">> pytest on the embedded default (SQLite, filesystem broker)"
	@$(call run_pytest,$(EMBEDDED_ENV))

test-services: install-dev
	@echo ">> checking PostgreSQL ($(TEST_DATABASE_URL)) and Redis ($(TEST_REDIS_URL))"
	@if ! $(PY) -c "$$SERVICES_CHECK"; then \
		if [ "$(CI)" = "true" ]; then \
			echo "ERROR: PostgreSQL and Redis are required when CI=true; the services run failed."; exit 1; \
		fi; \
		echo "SKIPPED: the test run on PostgreSQL + Redis was skipped because they do not answer."; \
		echo "         Start them, or set TEST_DATABASE_URL / TEST_REDIS_URL, and run: make test-services"; \
	else \
		echo ">> pytest on PostgreSQL + Redis"; \
		$(call run_pytest,$(SERVICES_ENV)); \
	fi

# Every step runs even after one fails, so one run shows everything; any failure fails the whole.
test: install-dev
	@failed=""; \
	echo ">> ruff check"; $(PY) -m ruff check . || failed="$$failed ruff"; \
	echo ">> mypy ."; $(PY) -m mypy . || failed="$$failed mypy"; \
	echo ">> lint-imports (the layers of .importlinter)"; $(VENV)/bin/lint-imports || failed="$$failed lint-imports"; \
	$(MAKE) --no-print-directory test-embedded || failed="$$failed test-embedded"; \
	$(MAKE) --no-print-directory test-services || failed="$$failed test-services"; \
	if [ -n "$$failed" ]; then echo "make test FAILED:$$failed"; exit 1; fi; \
	echo "make test: all steps passed"

# --- benchmarks: print figures, never part of `make test` (bench/README.md) -----------------------
# The service benchmarks make a throwaway database on BENCH_DATABASE_URL's server and use BENCH_REDIS_URL;
# the scale benchmark keeps its generated orders in the database of BENCH_SCALE_DATABASE_URL, the balance
# benchmark its generated ledger in BENCH_LEDGER_DATABASE_URL's.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/12
BENCH_SCALE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench
BENCH_LEDGER_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_ledger
BENCH_ARGS ?=
BENCH_ENV := env -u DJANGO_SETTINGS_MODULE -u CELERY_BROKER_URL -u CACHE_URL \
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL)

bench-queries: install-dev
	$(BENCH_ENV) $(PY) -m bench.bench_queries $(BENCH_ARGS)

bench-checkout: install-dev
	$(BENCH_ENV) $(PY) -m bench.bench_checkout_throughput $(BENCH_ARGS)

bench-delivery: install-dev
	$(BENCH_ENV) $(PY) -m bench.bench_paid_to_delivered $(BENCH_ARGS)

bench-scale: install-dev
	env -u DJANGO_SETTINGS_MODULE -u REDIS_URL DATABASE_URL=$(BENCH_SCALE_DATABASE_URL) \
		$(PY) -m bench.bench_order_list_scale $(BENCH_ARGS)

bench-balance: install-dev
	env -u DJANGO_SETTINGS_MODULE -u REDIS_URL DATABASE_URL=$(BENCH_LEDGER_DATABASE_URL) \
		$(PY) -m bench.bench_balance $(BENCH_ARGS)

bench: bench-queries bench-checkout bench-delivery bench-scale bench-balance

# --- docs ------------------------------------------------------------------------------------
docs-screens: install-dev
	$(EMBEDDED_ENV) $(PY) scripts/docs_screens.py

# --- housekeeping ----------------------------------------------------------------------------
clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
