# The two commands: `make up` runs the platform locally, `make test` runs every test.
# Both install what is missing first, so they work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TASKS_VENV ?= .venv-tasks
APT_STAMP := $(VENV)/.apt-installed

.PHONY: up test bench lint install test-deps clean

up: install
	$(PY) -m functions.cli up

test: test-deps
	$(VENV)/bin/ruff check .
	CI=$${CI:-} $(PY) -m pytest -q -p no:cacheprovider

bench: test-deps
	$(PY) -m bench.run

lint: test-deps
	$(VENV)/bin/ruff check .

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[env]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[env,cloud,test]'
	touch $@

install: $(VENV)/.installed

# Debian packages the tests drive: Chromium for the browser tests.
$(APT_STAMP): | $(PY)
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "install Debian's chromium package (apt-get install chromium)"; exit 1; fi; \
	fi
	touch $@

# The OpenID provider the sign-in tests run against (npm, pinned by the lockfile).
tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	touch $@

# gcloud-tasks-emulator pins an old protobuf, so it lives in a venv of its own.
$(TASKS_VENV)/.installed:
	$(PYTHON) -m venv $(TASKS_VENV)
	$(TASKS_VENV)/bin/pip install -q gcloud-tasks-emulator
	touch $@

test-deps: $(VENV)/.installed-test $(TASKS_VENV)/.installed $(APT_STAMP) tests/oidc/node_modules/.package-lock.json
	@command -v gcloud >/dev/null || { echo "gcloud (with the Firestore emulator) is needed"; exit 1; }

clean:
	rm -rf $(VENV) $(TASKS_VENV) tests/oidc/node_modules .cmbcluster artifacts
