"""`make run`: SQLite + a process-local layer unless DATABASE_URL/REDIS_URL are set."""

from .base import *  # noqa: F401,F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-do-not-use-in-production"  # noqa: F405
DEMO_DATA_ALLOWED = True
