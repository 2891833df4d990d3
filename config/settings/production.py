"""Production: every secret from the environment; passes `manage.py check --deploy` cleanly."""

from .base import *  # noqa: F401,F403
from .base import env_bool, env_number, require_pusher_credentials, require_secret_key

require_secret_key()
require_pusher_credentials()
DEBUG = env_bool("DEBUG", False)
DEMO_DATA_ALLOWED = False
PRODUCTION = True  # config.checks refuses published development keys (an error, not a warning)
# Refused by payments.E001 (the simulator takes no money).
MPESA_SIMULATOR = env_bool("MPESA_SIMULATOR", False)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", "31536000", int)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
