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
	@echo "Portal: http://$(HOST):$(PORT)/portal/acme/  M-Pesa simulator: http://$(HOST):$(PORT)/dev/mpesa/"
	PUBLIC_URL=$${PUBLIC_URL:-http://$(HOST):$(PORT)} $(VENV)/bin/daphne -b $(HOST) -p $(PORT) config.asgi:application

# Production: uvicorn workers (docs/deployment.md, "Why uvicorn"). Several workers share events
# only through Redis, so without REDIS_URL there is one worker.
WORKERS ?= $(if $(REDIS_URL),2,1)
serve: $(STAMP)
	DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.production} \
	$(VENV)/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --no-access-log --proxy-headers

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
