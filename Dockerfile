# syntax=docker/dockerfile:1
# The platform's image: uvicorn workers on the runtime lock only (no test tools, no daphne),
# running as an unprivileged user. Build: docker build -t hotspot-billing .
# Settings come from the environment (docs/deployment.md); compose: deploy/compose.yaml.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a venv with exactly the locked, hash-checked versions ------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements/runtime.txt /tmp/runtime.txt
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/runtime.txt

# --- run -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    LOG_FORMAT=json \
    WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
# The workers' shared metric files (compose mounts a fresh tmpfs here; docs/operations.md).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent app \
    && mkdir -p /tmp/prometheus && chown 10001:10001 /tmp/prometheus
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Source owned by root, read-only for the app user.
COPY manage.py ./
COPY config ./config
COPY accounts ./accounts
COPY tenants ./tenants
COPY hotspot ./hotspot
COPY payments ./payments
COPY notifications ./notifications
COPY templates ./templates
COPY static ./static
COPY locale ./locale
# Static files with their hashed names (whitenoise serves them); the build-only values satisfy
# production settings' start-up checks and are not kept in the image.
RUN SECRET_KEY=collectstatic-only PUSHER_APP_ID=0 PUSHER_APP_KEY=0 PUSHER_APP_SECRET=0 \
    python manage.py collectstatic --noinput -v 0
USER 10001:10001
EXPOSE 8000
# Liveness only (the process answers); load balancers poll /readyz (docs/operations.md).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# Workers: WEB_CONCURRENCY (uvicorn reads it). The client address behind the reverse proxy comes
# from X-Forwarded-For's right hop only (NUM_PROXIES / TRUSTED_PROXIES, config/clientip.py), so
# no --proxy-headers. The flags are make serve's (docs/deployment.md explains each).
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--lifespan", "on", "--no-access-log", \
     "--ws", "config.wsprotocol:FrameProtocol", "--ws-per-message-deflate", "false", "--ws-max-size", "10240", "--ws-ping-interval", "20", "--ws-ping-timeout", "20", \
     "--timeout-keep-alive", "5", "--h11-max-incomplete-event-size", "16384", \
     "--timeout-graceful-shutdown", "10"]
