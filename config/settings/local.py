"""`make run`: SQLite + a process-local layer unless DATABASE_URL/REDIS_URL are set."""

from .base import *  # noqa: F401,F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-do-not-use-in-production"  # noqa: F405
DEMO_DATA_ALLOWED = True

# Dev-only Pusher app (printed by `make run`); production reads real ones from the environment.
PUSHER_APP_ID = PUSHER_APP_ID or "100001"  # noqa: F405
PUSHER_APP_KEY = PUSHER_APP_KEY or "hotspot-local-key"  # noqa: F405
PUSHER_APP_SECRET = PUSHER_APP_SECRET or "hotspot-local-secret-not-for-production"  # noqa: F405

# Emails on the console unless EMAIL_URL points at an SMTP server.
if not EMAIL_URL:  # noqa: F405
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
