"""`make run`: SQLite + a process-local layer unless DATABASE_URL/REDIS_URL are set."""

import os

from .base import *  # noqa: F401,F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-do-not-use-in-production"  # noqa: F405
DEMO_DATA_ALLOWED = True

# Dev-only Pusher app (printed by `make run`); production reads real ones from the environment.
PUSHER_APP_ID = PUSHER_APP_ID or "100001"  # noqa: F405
PUSHER_APP_KEY = PUSHER_APP_KEY or "hotspot-local-key"  # noqa: F405
PUSHER_APP_SECRET = PUSHER_APP_SECRET or "hotspot-local-secret-not-for-production"  # noqa: F405

# M-Pesa without a Daraja account: the simulator this server serves under /dev/mpesa/.
MPESA_SIMULATOR = env_bool("MPESA_SIMULATOR", True)
MPESA_SIMULATOR_ALLOWED = True
PUBLIC_URL = PUBLIC_URL or "http://127.0.0.1:8000"  # noqa: F405
if not os.environ.get("MPESA_API_URL"):
    MPESA_API_URL = PUBLIC_URL + "/dev/mpesa"
PAYMENTS_ENCRYPTION_KEYS = PAYMENTS_ENCRYPTION_KEYS or [  # noqa: F405
    "ZGV2LW9ubHktcGF5bWVudHMta2V5LW5vdC1zZWNyZXQ="
]
