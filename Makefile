# H2H developer commands. Only python3 and make are needed; everything else is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The lock file for the interpreter that builds the venv (requirements/py311.txt, py313.txt): exact
# versions and hashes. `make lock` regenerates them from pyproject.toml.
LOCK := requirements/py$(shell $(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])').txt
LOCK_PYTHONS := 3.11 3.13

.PHONY: install lock run worker test lint migrate seed check-deploy clean

install: $(STAMP)

# From the lock file when there is one for this Python, else resolved from pyproject.toml.
$(STAMP): pyproject.toml $(wildcard $(LOCK))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if [ -f $(LOCK) ]; then \
		$(PY) -m pip install --quiet --require-hashes -r $(LOCK) && $(PY) -m pip install --quiet --no-deps -e . \
		&& { $(PY) -m pip check || { echo "$(LOCK) is behind pyproject.toml: run make lock" >&2; exit 1; }; }; \
	else \
		$(PY) -m pip install --quiet -e ".[dev]"; \
	fi
	touch $(STAMP)

# Regenerate the lock files after changing the dependencies in pyproject.toml. Versions already
# locked are kept where they still fit; `make lock UPGRADE=1` moves everything to the newest allowed.
# uv resolves for every supported Python from this one venv, and writes no index or host names.
# Needs only a venv with pip: `install` would refuse a lock that is behind pyproject.toml.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "uv>=0.4"
	mkdir -p requirements
	for version in $(LOCK_PYTHONS); do \
		$(PY) -m uv pip compile pyproject.toml --extra dev --universal --generate-hashes --quiet \
			--python-version $$version --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) \
			-o requirements/py$$(echo $$version | tr -d .).txt || exit 1; \
	done

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# The web server and a worker (jobs, timers, the periodic schedule) in one command; Ctrl-C stops both.
run: seed
	$(PY) manage.py audit_keygen --if-missing
	@$(PY) manage.py run_worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# Only the worker (e.g. a second one beside `make run`, or on another machine).
worker: install
	$(PY) manage.py run_worker

test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -rs
	$(PY) -m ruff check .

lint: install
	$(VENV)/bin/lint-imports
	$(PY) -m ruff check .

# The production settings' own check, with a throwaway key and an example host.
check-deploy: install
	DEBUG=0 SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		ALLOWED_HOSTS=h2h.example.com $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var staticfiles
