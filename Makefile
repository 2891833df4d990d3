# Two commands for a newcomer: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test lint install

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --url http://$(HOST):$(PORT)/
	@$(PY) manage.py shell -v 0 -c "from django.conf import settings as s; print(f'Pusher (Echo): PUSHER_APP_ID={s.PUSHER_APP_ID} PUSHER_APP_KEY={s.PUSHER_APP_KEY} PUSHER_APP_SECRET={s.PUSHER_APP_SECRET}  host $(HOST) port $(PORT), auth /broadcasting/auth (docs/pusher.md)')"
	@echo "Serving on http://$(HOST):$(PORT)/  (Django admin: http://$(HOST):$(PORT)/admin/)"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) --websocket-max-message-size $(WS_MAX_SIZE) \
		config.asgi:application

# The largest WebSocket message either endpoint accepts: Pusher's 10,240 bytes
# (notifications.pusher.MAX_FRAME_BYTES; /ws/notifications/ takes 4,096). The server closes a
# bigger one (1009) before buffering it, instead of holding up to 16 MiB for us to refuse.
WS_MAX_SIZE ?= 10240
WORKERS ?= $(if $(REDIS_URL),2,1)

# Production: uvicorn workers (docs/deployment.md, "Why uvicorn"). Several workers share events
# only through Redis, so without REDIS_URL there is one worker. Refuses to start on a deploy
# check error (e.g. a published development key); collects static files (without them every page
# is a 500). No access log: it would record `?token=<JWT>` of socket URLs. No --proxy-headers:
# the client address is config.clientip's (NUM_PROXIES/TRUSTED_PROXIES), read once, one way.
serve: $(STAMP)
	export DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.production}; \
	$(PY) manage.py check --deploy && \
	$(PY) manage.py collectstatic --noinput -v 0 && \
	exec $(VENV)/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --no-access-log --ws-max-size $(WS_MAX_SIZE) \
		--timeout-keep-alive 5 --h11-max-incomplete-event-size 16384

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
