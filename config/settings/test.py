"""pytest: fast hashing, fixed keys; DATABASE_URL/REDIS_URL still select the real servers."""

from .base import *  # noqa: F401,F403

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEMO_DATA_ALLOWED = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# A file, not ":memory:", so a second process (fire_event, a live server) sees the test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}  # noqa: F405

# Throttles stay on but out of the way; the throttle tests set small rates itself.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        "write": "10000/min",
        "auth": "10000/min",
        "payment_callback": "10000/min",
    },
}

# Each run counts throttles under its own cache prefix, so runs never see each other's counts.
if CACHES["default"]["BACKEND"].endswith("RedisCache"):  # noqa: F405
    import uuid as _uuid

    CACHES["default"]["KEY_PREFIX"] = f"test-{_uuid.uuid4().hex[:8]}"  # noqa: F405

PUSHER_APP_ID = "4242"
PUSHER_APP_KEY = "test-key"
PUSHER_APP_SECRET = "test-secret-0123456789"

# Closing a socket removes its presence at once in tests (the grace has tests of its own).
NOTIFICATIONS_PRESENCE_GRACE = float(os.environ.get("NOTIFICATIONS_PRESENCE_GRACE", "0"))  # noqa: F405
# Presence keys (notifications/presence.py) under a prefix of this run's own; server processes
# started by the tests inherit it through the environment, so they share one namespace.
NOTIFICATIONS_PRESENCE_PREFIX = os.environ.setdefault(  # noqa: F405
    "NOTIFICATIONS_PRESENCE_PREFIX", f"test-presence-{__import__('uuid').uuid4().hex[:8]}"
)

PUBLIC_URL = "http://testserver"
PAYMENTS_ENCRYPTION_KEYS = ["dGVzdC1vbmx5LXBheW1lbnRzLWtleS0wMTIzNDU2Nzg="]
PERIODIC_ENABLED = os.environ.get("PERIODIC_ENABLED", "") == "1"  # noqa: F405
MPESA_SIMULATOR_ALLOWED = True
