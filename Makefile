# Pulse: `make run` serves the whole app locally; `make test` checks it.
# Both install what is missing first (Debian/Ubuntu packages, a .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get
# Debian's chromium for the page tests (Playwright's own browser download
# cannot work offline); override with PULSE_CHROMIUM=/path/to/chromium.
PULSE_CHROMIUM ?= /usr/bin/chromium
export PULSE_CHROMIUM

.PHONY: help run test test-fast lint venv system-deps test-system-deps clean

include infra/infra.mk
.DEFAULT_GOAL := help

# Every target a user runs, as the README names them (tests/test_make_help.py checks).
help:
	@echo "make run                  - start the local stack and serve the app on http://127.0.0.1:$${PULSE_HTTP_PORT:-8000}"
	@echo "make test                 - lint and run every test"
	@echo "make test-fast            - lint and the tests without the deploy rehearsal or a browser"
	@echo "make lint                 - ruff check"
	@echo "make clean                - remove .venv and .local (local data)"
	@echo "make help                 - this list"
	@echo "make configure STAGE=prod - write that stage of .chalice/config.json from infra/'s outputs"
	@echo "make package STAGE=prod   - the stage as a Terraform package in out/ (after configure)"
	@echo "make deploy STAGE=prod    - chalice deploy with the stage's environment (after configure), then the API's key, throttling, WAF"
	@echo "make undeploy STAGE=prod  - remove what make deploy made"
	@echo "make rehearse             - apply infra/ to moto's server, configure, package, destroy"
	@echo "make infra-check          - terraform fmt and validate, and checkov, on infra/"

# Install a Debian package only when the command it provides is missing.
define need
command -v $(1) >/dev/null 2>&1 || echo $(2)
endef

system-deps:
	@missing="$$( $(call need,redis-server,redis-server); $(call need,redis-cli,redis-tools); \
	  $(call need,memcached,memcached); \
	  $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || echo python3-venv )"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	fi

test-system-deps: system-deps
	@if [ ! -x "$(PULSE_CHROMIUM)" ]; then \
	  echo "installing: chromium"; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq chromium; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt | system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: system-deps venv
	$(PY) -m local.stack

lint: venv
	$(VENV)/bin/ruff check .

# Two workers, one test file each at a time: the deploy rehearsal (half of the
# suite's time, mostly waiting on Terraform and moto) runs beside everything else.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

test: test-system-deps venv checkov-venv lint
	$(PY) -m pytest $(PYTEST_PARALLEL)

# The edit loop: everything but the deploy rehearsal (slow) and the Chromium page tests.
test-fast: system-deps venv lint
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow and not browser"

clean:
	rm -rf $(VENV) .local
