# Two commands do all the set-up on a fresh machine: `make plan` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: plan test lint bench policy-pack pack-check install tools lock clean

$(BIN)/mlp: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/mlp

## Offline plan of a stack (default dev): resource tree, no cloud needed.
plan: install
	$(BIN)/mlp plan $(STACK)

## Tools the tests need beyond PyPI: promtool (Debian's prometheus package) checks and unit-tests alert rules.
tools:
	@command -v promtool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus; }

## The test suite (pytest, offline, < 1 min).
test: install tools
	$(BIN)/pytest -q

## Benchmark (not part of the tests): plan time per stack as a ratio to importing the SDK alone.
bench: install
	$(BIN)/mlp bench

## The policy pack as `pulumi policy publish` uploads it: dist/policy-pack/, self-contained.
policy-pack: install
	$(BIN)/python -m infra.policy_pack build

## Install dist/policy-pack alone into a new venv (needs the package index), start it, list its rules.
pack-check: policy-pack
	$(BIN)/python -m infra.policy_pack check

## Static checks (ruff: pyflakes, bugbear, import order).
lint: install
	$(BIN)/ruff check catalog infra components policies tests evaluation
	$(BIN)/pip install --quiet --require-hashes --no-deps -r tools/lint.txt
	$(BIN)/zizmor --offline --persona=regular .github/workflows
	$(BIN)/actionlint .github/workflows/*.yml

## Re-resolve dependencies within pyproject's ranges and record them.
lock:
	rm -rf /tmp/mlp-lock && $(PYTHON) -m venv /tmp/mlp-lock
	/tmp/mlp-lock/bin/pip install --quiet '.[dev]'
	(echo "# Resolved versions CI and 'make' install with (pip install -c). Refresh: make lock"; \
	 /tmp/mlp-lock/bin/pip freeze | grep -vi -e '^ml-platform' -e '^# Editable') > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache dist
