"""pytest: fast hashing, fixed keys; DATABASE_URL/REDIS_URL still select the real servers."""

from .base import *  # noqa: F401,F403
from .devkeys import (
    TEST_PUSHER_APP_ID,
    TEST_PUSHER_APP_KEY,
    TEST_PUSHER_APP_SECRET,
    TEST_SECRET_KEY,
)

DEBUG = False
SECRET_KEY = TEST_SECRET_KEY
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEMO_DATA_ALLOWED = True
API_DOCS_PUBLIC = True
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
        "admin_login": "10000/min",
        "register": "10000/min",
    },
}

# Each run counts throttles under its own cache prefix, so runs never see each other's counts.
if CACHES["default"]["BACKEND"].endswith("RedisCache"):  # noqa: F405
    import uuid as _uuid

    CACHES["default"]["KEY_PREFIX"] = f"test-{_uuid.uuid4().hex[:8]}"  # noqa: F405

PUSHER_APP_ID = TEST_PUSHER_APP_ID
PUSHER_APP_KEY = TEST_PUSHER_APP_KEY
PUSHER_APP_SECRET = TEST_PUSHER_APP_SECRET

# Closing a socket removes its presence at once in tests (the grace has tests of its own).
NOTIFICATIONS_PRESENCE_GRACE = env_number("NOTIFICATIONS_PRESENCE_GRACE", "0")  # noqa: F405
# Presence keys (notifications/realtime/presence/) under a prefix of this run's own; server
# processes started by the tests inherit it through the environment, so they share one namespace.
NOTIFICATIONS_PRESENCE_PREFIX = os.environ.setdefault(  # noqa: F405
    "NOTIFICATIONS_PRESENCE_PREFIX", f"test-presence-{__import__('uuid').uuid4().hex[:8]}"
)

# The live-server tests serve with daphne (a dev dependency), as `make run` does.
INSTALLED_APPS = ["daphne", *INSTALLED_APPS]  # noqa: F405

# Servers the tests start (tests/browser, liveserver) keep emails in memory; the email tests
# point the SMTP backend at an aiosmtpd of their own.
if not EMAIL_URL:  # noqa: F405
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
EMAIL_RETRY_SECONDS = 0.2
EMAIL_RETRY_MAX_SECONDS = 1.0

# RADIUS: the tests start FreeRADIUS themselves (tests/hotspot/radius_harness.py); a router
# change reaches it within 2 s, rejects come at once, Disconnect-Requests retry quickly.
RADIUS_API_TOKEN = "test-radius-token-0123456789"
RADIUS_CLIENT_LIFETIME = 2
RADIUS_REJECT_DELAY = 0
RADIUS_COA_TIMEOUT = 1.0
RADIUS_COA_RETRIES = 3
# the FreeRADIUS fixture (tests/hotspot/conftest.py) points this at its own cache listener
RADIUS_CACHE_SERVERS: list[str] = []

PUBLIC_URL = "http://testserver"
PAYMENTS_ENCRYPTION_KEYS = ["dGVzdC1vbmx5LXBheW1lbnRzLWtleS0wMTIzNDU2Nzg="]
PERIODIC_ENABLED = os.environ.get("PERIODIC_ENABLED", "") == "1"  # noqa: F405
MPESA_SIMULATOR_ALLOWED = True
