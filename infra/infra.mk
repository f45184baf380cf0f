# Infrastructure targets; included by the main Makefile (`include infra/infra.mk`),
# which provides VENV, PY, PYTHON and the `venv` target.
#
#   make configure STAGE=prod   write that stage of .chalice/config.json from infra/ outputs
#   make infra-check            terraform fmt -check, init -backend=false + validate, checkov
#   make rehearse               apply infra/ to moto's server, configure, package, destroy
#   make package STAGE=prod     the stage as a Terraform package in out/ (see README)
#   make deploy STAGE=prod      chalice deploy with the stage's environment, then the API's guard
#   make undeploy STAGE=prod    the API's guard destroyed, then chalice delete
#   make checkov-venv           checkov in its own venv (.venv-checkov): its pins clash with the app's

# Keep whatever default goal the main Makefile chose.
_infra_saved_default_goal := $(.DEFAULT_GOAL)

# A local provider mirror for `terraform init -plugin-dir`: deploy/infra.py looks
# for one (TF_PLUGIN_DIR, else /opt/tf-plugins, else a tf-plugins folder two levels
# below /); set TF_PLUGIN_DIR=/path to choose, or TF_PLUGIN_DIR= for a plain init.

CHECKOV_VENV := .venv-checkov
# deploy/infra.py runs $CHECKOV when set.
CHECKOV ?= $(abspath $(CHECKOV_VENV)/bin/checkov)
export CHECKOV

.PHONY: configure infra-check rehearse checkov-venv package deploy undeploy

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

# chalice deploy with the stage's environment (app.py reads some settings at import),
# then the API's guard (deploy/api_gateway.tf.json) applied to the API it made.
deploy: venv
	@test -n "$(STAGE)" || { echo "usage: make deploy STAGE=prod" >&2; exit 2; }
	$(PY) deploy/infra.py deploy --stage $(STAGE)

# The API's guard destroyed, then chalice delete.
undeploy: venv
	@test -n "$(STAGE)" || { echo "usage: make undeploy STAGE=prod" >&2; exit 2; }
	$(PY) deploy/infra.py undeploy --stage $(STAGE)

# The stage as Terraform (chalice package + overrides + log groups) in out/.
package: venv
	@test -n "$(STAGE)" || { echo "usage: make package STAGE=prod" >&2; exit 2; }
	$(PY) deploy/infra.py package --stage $(STAGE) --out out

.DEFAULT_GOAL := $(_infra_saved_default_goal)
