# Everything a developer or CI runs. `make demo` and `make test` are the whole set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVICES ?= intake deadlines notify reporting

# KAFKA_BROKERS=3 (`make up KAFKA_BROKERS=3`): three KRaft brokers as production runs them, on 9092,
# 9192 and 9292 (deploy/local/kafka.sh). Every target then finds all three as bootstrap servers, and
# the services of `run`, `demo` and `migrate` create their topics with replication factor 3
# (min.insync.replicas=2), unless KAFKA_BOOTSTRAP_SERVERS/KAFKA_REPLICATION_FACTOR are set. Tests and
# benchmarks keep their own replication factor 1 topics (they create them before the services start).
KAFKA_BROKERS ?= 1
export KAFKA_BROKERS
ifneq ($(KAFKA_BROKERS),1)
KAFKA_PORT ?= 9092
export KAFKA_BOOTSTRAP_SERVERS ?= $(shell p=$(KAFKA_PORT); echo localhost:$$p,localhost:$$((p + 100)),localhost:$$((p + 200)))
run migrate demo: export KAFKA_REPLICATION_FACTOR ?= 3
endif

# The development key file and database password are accepted only with ENVIRONMENT=development
# set explicitly (shared/settings.py); these targets are the developer's machine and CI.
up run migrate test test-unit test-integration test-e2e test-faults demo bench: export ENVIRONMENT = development

.PHONY: help install up down status migrate run test test-unit test-integration test-e2e test-faults lint format bench demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(STAMP): requirements.lock pyproject.toml
	@echo "[install] creating $(VENV) with the locked versions of requirements.lock"
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV) || { echo "[install] ERROR: $(PYTHON_BIN) -m venv failed; install Python 3.11 with venv" >&2; exit 1; }
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q --progress-bar off -r requirements.lock
	@touch $(STAMP)
	@echo "[install] done"

install: $(STAMP) ## create the virtualenv with locked dependencies

up: install ## install missing Debian packages; fetch axe-core (npm) and veraPDF (Maven Central), once; start Kafka (KRaft, from Maven Central jars; KAFKA_BROKERS=3: three brokers), Postgres, Keycloak (the identity provider, 8180) and Jaeger (traces, 16686; built once from the Go module proxy)
	@bash deploy/local/packages.sh ensure
	@bash deploy/local/kafka.sh up
	@bash deploy/local/postgres.sh up
	@bash deploy/local/prometheus.sh ensure
	@PYTHON=$(PY) bash deploy/local/axe.sh ensure
	@bash deploy/local/verapdf.sh ensure
	@bash deploy/local/keycloak.sh up
	@bash deploy/local/jaeger.sh up

down: ## stop what `make up` and `make demo` started (by pid; every Kafka node, single or cluster; Keycloak; Jaeger)
	@test ! -x $(PY) || $(PY) -m demo stop
	@bash deploy/local/kafka.sh down
	@bash deploy/local/postgres.sh down
	@bash deploy/local/keycloak.sh down
	@bash deploy/local/jaeger.sh down

status: install ## show whether Kafka (each node `make up` started), Postgres, Keycloak and Jaeger answer
	@bash deploy/local/kafka.sh status; bash deploy/local/postgres.sh status; bash deploy/local/keycloak.sh status
	@bash deploy/local/jaeger.sh status

migrate: up ## apply every service's database migrations
	@for s in $(SERVICES); do $(PY) -m services.$$s migrate || exit 1; done

run: migrate ## run the services in the foreground (Ctrl-C stops them)
	@$(PY) -m deploy.local.run $(SERVICES)

# The unit layer must keep covering at least this share of services/ and shared/ (its figure on 2026-12-06: 76 %).
COVERAGE_FLOOR ?= 76

# Unit tests run UNIT_WORKERS at a time (one per core), then integration and e2e tests TEST_WORKERS at a
# time (pytest-xdist; each has its own topics, schemas and ports; they mostly wait on timers, brokers and
# browsers, so three share two cores: 481 -> 381 s here), then the tests that stop or load the shared
# Kafka (marker `exclusive`) on their own.
UNIT_WORKERS ?= 2
TEST_WORKERS ?= 3

test: up ## the whole suite: unit tests (with the coverage floor), then integration, e2e and fault tests on real parts
	@$(PY) -m pytest -m unit -q -n $(UNIT_WORKERS) --cov=services --cov=shared --cov-report= --cov-fail-under=$(COVERAGE_FLOOR)
	@$(PY) -m pytest -m "not unit and not exclusive" -n $(TEST_WORKERS) --dist loadfile --durations=25
	@$(PY) -m pytest -m exclusive --durations=5

test-unit: install ## unit tests only: no broker, no database
	@$(PY) -m pytest -m unit -q

test-integration: up
	@$(PY) -m pytest -m integration

test-e2e: up
	@$(PY) -m pytest -m e2e

test-faults: up ## the whole system under kill -9 of every service, Kafka and Postgres (about 4 minutes; part of make test)
	@$(PY) -m pytest -m faults -s

lint: install ## ruff (lint + format check) and mypy
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy

format: install
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

demo: up ## Kafka, Postgres, Prometheus, the services and simulated traffic; prints where to look (Ctrl-C stops it)
	@$(PY) -m demo

bench: up ## benchmarks; results as JSON under bench/results/
	@$(PY) -m bench

clean: ## remove the virtualenv (keeps the Kafka jars and data in .cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
