# Infrastructure targets; included by the main Makefile (`include infra/infra.mk`),
# which provides VENV, PY, PYTHON and the `venv` target.
#
#   make configure STAGE=prod   write that stage of .chalice/config.json from infra/ outputs
#   make infra-check            terraform fmt -check, init -backend=false + validate, checkov
#   make rehearse               apply infra/ to moto's server, configure, package, destroy
#   make checkov-venv           checkov in its own venv (.venv-checkov): its pins clash with the app's

# Keep whatever default goal the main Makefile chose.
_infra_saved_default_goal := $(.DEFAULT_GOAL)

# A local provider mirror for `terraform init -plugin-dir`: /opt/tf-plugins, or
# the first tf-plugins folder two levels below /. Override with
# TF_PLUGIN_DIR=/path, or TF_PLUGIN_DIR= (empty) for a plain `terraform init`.
ifeq ($(origin TF_PLUGIN_DIR),undefined)
TF_PLUGIN_DIR := $(if $(wildcard /opt/tf-plugins),/opt/tf-plugins,$(firstword $(shell find / -maxdepth 2 -type d -name tf-plugins 2>/dev/null)))
endif
export TF_PLUGIN_DIR

CHECKOV_VENV := .venv-checkov
# deploy/infra.py runs $CHECKOV when set.
CHECKOV ?= $(abspath $(CHECKOV_VENV)/bin/checkov)
export CHECKOV

.PHONY: configure infra-check rehearse checkov-venv

checkov-venv: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: infra/requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(or $(PYTHON),python3) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check -r infra/requirements-checkov.txt
	@touch $@

configure: venv
	@test -n "$(STAGE)" || { echo "usage: make configure STAGE=prod" >&2; exit 2; }
	$(PY) deploy/configure.py --stage $(STAGE)

infra-check: venv checkov-venv
	$(PY) deploy/infra.py check

rehearse: venv
	$(PY) deploy/infra.py rehearse

.DEFAULT_GOAL := $(_infra_saved_default_goal)
