# Two commands for a newcomer: `make run` and `make test`. Everything else is a helper.
#
# Installs come from the hash-locked requirements/ files (generated from pyproject.toml by
# `make lock`): requirements/dev.txt for `make run`/`make test` (.venv), requirements/runtime.txt
# for `make serve` (its own .venv-serve: no test tool, no daphne) and the container.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SERVE_VENV ?= .venv-serve
LOCK_DEV := requirements/dev.txt
LOCK_RUNTIME := requirements/runtime.txt
STAMP := $(VENV)/.installed-$(shell cat $(LOCK_DEV) pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
SERVE_STAMP := $(SERVE_VENV)/.installed-$(shell cat $(LOCK_RUNTIME) 2>/dev/null | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
# One interpreter version and every platform's hashes: the same lock serves a laptop, CI and the
# container (python:3.11-slim).
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock"

.PHONY: run serve test lint install install-serve lock lock-upgrade shell

# Exactly the locked versions (--require-hashes, --no-deps: the lock is complete), then the
# project itself, editable, without resolving anything again.
$(STAMP): $(LOCK_DEV) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK_DEV)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

$(SERVE_STAMP): $(LOCK_RUNTIME)
	@test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK_RUNTIME)
	@rm -f $(SERVE_VENV)/.installed-*
	@touch $(SERVE_STAMP)

install-serve: $(SERVE_STAMP)

# Refresh the lock from pyproject.toml: keeps every pin that still satisfies pyproject.toml and
# resolves only what is new or changed (from PyPI); the runtime lock is the dev lock's subset
# (same versions). `make lock-upgrade` moves every pin to the
# newest allowed release. Needs only a Python and PyPI: uv is installed into .venv if missing
# (the version requirements/dev.txt pins, so it works even while that venv is stale).
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet \
		"$$(grep -m1 -o '^uv==[0-9.]*' $(LOCK_DEV) 2>/dev/null || echo uv)"
	@mkdir -p requirements
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) $(LOCK_ARGS) -o $(LOCK_DEV)
	$(VENV)/bin/uv pip compile pyproject.toml -c $(LOCK_DEV) $(LOCK_FLAGS) -o $(LOCK_RUNTIME)

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --url http://$(HOST):$(PORT)/
	@$(PY) manage.py shell -v 0 -c "from django.conf import settings as s; print(f'Pusher (Echo): PUSHER_APP_ID={s.PUSHER_APP_ID} PUSHER_APP_KEY={s.PUSHER_APP_KEY} PUSHER_APP_SECRET={s.PUSHER_APP_SECRET}  host $(HOST) port $(PORT), auth /broadcasting/auth (docs/pusher.md)')"
	@echo "Serving on http://$(HOST):$(PORT)/  (Django admin: http://$(HOST):$(PORT)/admin/)"
	@echo "Portal: http://$(HOST):$(PORT)/portal/acme/  M-Pesa simulator: http://$(HOST):$(PORT)/dev/mpesa/"
	DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.local} \
	PUBLIC_URL=$${PUBLIC_URL:-http://$(HOST):$(PORT)} \
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) --websocket-max-message-size $(WS_MAX_SIZE) \
		config.asgi:application

# The largest WebSocket message either endpoint accepts: Pusher's 10,240 bytes
# (notifications.realtime.pusher.consumer.MAX_FRAME_BYTES; /ws/notifications/ takes 4,096). The server closes a
# bigger one (1009) before buffering it, instead of holding up to 16 MiB for us to refuse.
WS_MAX_SIZE ?= 10240

# Production: uvicorn workers (docs/deployment.md, "Why uvicorn") from the runtime lock only.
# Several workers share events only through Redis, so without REDIS_URL there is one worker.
# The workers share their Prometheus samples in PROMETHEUS_MULTIPROC_DIR, emptied at each start.
# Refuses to start on a deploy check error (e.g. a published development key); collects static
# files (without them every page is a 500). No access log: it would record `?token=<JWT>` of
# socket URLs. No --proxy-headers: the client address is config.clientip's
# (NUM_PROXIES/TRUSTED_PROXIES), read once, one way.
WORKERS ?= $(if $(REDIS_URL),2,1)
PROMETHEUS_MULTIPROC_DIR ?= $(SERVE_VENV)/prometheus
serve: $(SERVE_STAMP)
	rm -rf $(PROMETHEUS_MULTIPROC_DIR) && mkdir -p $(PROMETHEUS_MULTIPROC_DIR)
	export PROMETHEUS_MULTIPROC_DIR=$(abspath $(PROMETHEUS_MULTIPROC_DIR)); \
	export DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.production}; \
	export WEB_CONCURRENCY=$(WORKERS); \
	$(SERVE_VENV)/bin/python manage.py check --deploy && \
	$(SERVE_VENV)/bin/python manage.py collectstatic --noinput -v 0 && \
	exec $(SERVE_VENV)/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --no-access-log --ws config.wsprotocol:FrameProtocol --ws-per-message-deflate false \
		--ws-max-size $(WS_MAX_SIZE) \
		--timeout-keep-alive 5 --h11-max-incomplete-event-size 16384

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# A Django shell in the project's environment, with models, broadcast and catalog events imported.
shell: $(STAMP)
	$(PY) manage.py shell

# Static checks (.ci/run runs them before the tests): Python lint and format, migrations in step
# with the models, the Dockerfile (hadolint) and the compose file (Compose Specification schema).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run
	@if [ -f Dockerfile ]; then $(VENV)/bin/hadolint Dockerfile && echo "hadolint: Dockerfile clean"; fi
	@if [ -f deploy/compose.yaml ]; then $(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml; fi
