# The two commands of the README's quick start, and the checks CI runs.
# Each target creates the virtualenv and installs what it needs itself.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STACK  ?= dev
FORMAT ?= text

.PHONY: plan test lint typecheck schema docs init wheel bench clean box box-down docker-daemon

$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c "import pulumi, pulumi_aws, pulumi_cloudflare, pulumi_tls, pulumi_random, yaml, jinja2, ruamel.yaml, boto3"
	# The `leanstack` command in .venv/bin, running this checkout (editable: it reads this repository's stacks/).
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --disable-pip-version-check -e . 2>&1 | grep -v '^WARNING: Location' || true
	rm -rf build leanstack.egg-info
	$(VENV)/bin/leanstack --version
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c "import pytest, mypy, moto, boto3, pulumi_policy, setuptools"
	touch $@

## plan: the offline plan of one stack (make plan STACK=prod FORMAT=markdown); no cloud account needed
plan: $(VENV)/.runtime
	$(PY) -m leanstack plan $(STACK) --format $(FORMAT)

## test: lint, type-check and the whole test suite
test: lint typecheck docker-daemon
	$(PY) -m pytest

## lint: ruff, and deptry (every import the package makes is a declared dependency)
lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m deptry .

typecheck: $(VENV)/.dev
	$(PY) -m mypy

## schema: regenerate the JSON Schema for stacks/Pulumi.<stack>.yaml
schema: $(VENV)/.runtime
	$(PY) -m leanstack schema > stacks/stack-config.schema.json

## docs: regenerate docs/'s generated pages, then build the site strictly (warnings fail) into build/site
docs: $(VENV)/.dev
	$(PY) -m leanstack docs --write
	$(PY) -m sphinx -W --keep-going -q -b html docs build/site

## init: fill a fork's seven values into every stack file (asks for each; or pass ARGS="--domain ...")
init: $(VENV)/.runtime
	$(PY) -m leanstack init $(ARGS)

## wheel: the library as one package, leanstack, in dist/ (its dependencies are not copied; setuptools from the venv)
wheel: $(VENV)/.runtime
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --disable-pip-version-check -w dist .
	rm -rf build leanstack.egg-info
	@ls dist/leanstack-*.whl

bench: $(VENV)/.dev
	$(PY) bench/plan.py

## docker-daemon: start Debian's dockerd when none is running (CI has none); the box tests need it
docker-daemon:
	sh support/box/dockerd.sh

## box: boot the stack's host from its rendered user data in a systemd container (make box STACK=dev);
## writes build/box/box.env and leaves it running: docker exec -it leanstack-box-$(STACK) bash
box: $(VENV)/.dev docker-daemon
	STACK=$(STACK) $(PY) -m support.box up

## box-down: remove the box
box-down:
	STACK=$(STACK) $(PY) -m support.box down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist leanstack.egg-info
