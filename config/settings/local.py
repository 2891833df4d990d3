"""`make run`: SQLite + a process-local layer unless DATABASE_URL/REDIS_URL are set."""

import os

from .base import *  # noqa: F401,F403
from .base import env_bool
from .devkeys import DEV_PUSHER_APP_ID, DEV_PUSHER_APP_KEY, DEV_PUSHER_APP_SECRET, DEV_SECRET_KEY

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or DEV_SECRET_KEY  # noqa: F405
DEMO_DATA_ALLOWED = True
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", True)

# Dev-only Pusher app (printed by `make run`); production reads real ones from the environment.
PUSHER_APP_ID = PUSHER_APP_ID or DEV_PUSHER_APP_ID  # noqa: F405
PUSHER_APP_KEY = PUSHER_APP_KEY or DEV_PUSHER_APP_KEY  # noqa: F405
PUSHER_APP_SECRET = PUSHER_APP_SECRET or DEV_PUSHER_APP_SECRET  # noqa: F405

# daphne (a dev dependency) serves `make run`; its app makes `runserver` an ASGI server too.
# Production serves with uvicorn and has no daphne installed.
INSTALLED_APPS = ["daphne", *INSTALLED_APPS]  # noqa: F405

# Emails on the console unless EMAIL_URL points at an SMTP server.
if not EMAIL_URL:  # noqa: F405
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# M-Pesa without a Daraja account: the simulator this server serves under /dev/mpesa/.
MPESA_SIMULATOR = env_bool("MPESA_SIMULATOR", True)
MPESA_SIMULATOR_ALLOWED = True
PUBLIC_URL = PUBLIC_URL or "http://127.0.0.1:8000"  # noqa: F405
if not os.environ.get("MPESA_API_URL"):
    MPESA_API_URL = PUBLIC_URL + "/dev/mpesa"
PAYMENTS_ENCRYPTION_KEYS = PAYMENTS_ENCRYPTION_KEYS or [  # noqa: F405
    "ZGV2LW9ubHktcGF5bWVudHMta2V5LW5vdC1zZWNyZXQ="
]
