# sopsflow: `make demo` runs the end-to-end walkthrough, `make test` the checks.
# `make dist` builds the sdist and the wheel into dist/.
# All create .venv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# Ansible (for the community.sops client test) is large: its own venv, kept between runs.
ANSIBLE_VENV ?= .venv-ansible
ANSIBLE_VERSION ?= 12.3.0
ANSIBLE_STAMP := $(ANSIBLE_VENV)/.installed-ansible-$(ANSIBLE_VERSION)

.PHONY: all venv ansible-venv test lint typecheck pytest demo bench bench-all dist mutants clean

all: test

$(STAMP): pyproject.toml
	@command -v gpg >/dev/null 2>&1 || { echo "installing gnupg"; (apt-get update -qq && apt-get install -y -qq gnupg) >/dev/null; }
	@command -v git >/dev/null 2>&1 || { echo "installing git"; (apt-get update -qq && apt-get install -y -qq git) >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

$(ANSIBLE_STAMP):
	$(PYTHON) -m venv $(ANSIBLE_VENV)
	$(ANSIBLE_VENV)/bin/python -m pip install -q --upgrade pip
	$(ANSIBLE_VENV)/bin/python -m pip install -q 'ansible==$(ANSIBLE_VERSION)'
	@rm -f $(ANSIBLE_VENV)/.installed-ansible-*
	@touch $@

ansible-venv: $(ANSIBLE_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check sopsflow tests bench scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) $(ANSIBLE_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SOPSFLOW_ANSIBLE_VENV="$(CURDIR)/$(ANSIBLE_VENV)" \
		$(PY) -m pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck pytest

demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/demo.py

# `make bench`: the performance table (each row's ratio to sops, its target, the load);
# `make bench-all`: every bench script with its own full output.
bench: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/targets.py

bench-all: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/run_all.py

# The builder is the `build` package from the test extra; the build backend
# (setuptools) comes into an isolated environment of its own.
dist: $(STAMP)
	rm -rf dist build
	$(PY) -m build --outdir dist .

# Not part of `make test`: each patch in tests/mutants/ must make its named tests fail.
mutants: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/check_mutants.py

clean:
	rm -rf $(VENV) $(ANSIBLE_VENV) .pytest_cache .mypy_cache .ruff_cache dist build
