"""Settings shared by every environment; everything that varies is read from the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "accounts.admin_config.PlatformAdminConfig",  # django.contrib.admin, system admins only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us (no CDN at run time)
    "django_filters",
    "accounts",
    "tenants",
    "hotspot",
    "payments",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.BlockedUserLogoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "notifications.middleware.SocketIdMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "notifications.context_processors.notifications_ui",
            ],
        },
    },
]

# Embedded default: SQLite next to manage.py. DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the server and a `manage.py shell` write concurrently.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Channel layer (notifications/layers.py): one Redis pub/sub subscription per group per server
# process and a local fan-out to that process's sockets. REDIS_URL shares events between every
# server process; without it the layer is process-local (other processes reach it via the outbox).
REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNELS_PREFIX = os.environ.get("CHANNELS_PREFIX", "hotspot")
# Presence (who is online; notifications/presence.py): Redis keys under this prefix when
# REDIS_URL is set, else process memory. An entry lapses after TTL seconds without a heartbeat.
NOTIFICATIONS_PRESENCE_PREFIX = os.environ.get("NOTIFICATIONS_PRESENCE_PREFIX", "")
NOTIFICATIONS_PRESENCE_TTL = float(os.environ.get("NOTIFICATIONS_PRESENCE_TTL", "30"))
# A closed page's entry lingers this long, so moving to the next page is not "leaving".
NOTIFICATIONS_PRESENCE_GRACE = float(os.environ.get("NOTIFICATIONS_PRESENCE_GRACE", "3"))
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "notifications.layers."
        + ("FanoutChannelLayer" if REDIS_URL else "LocalFanoutChannelLayer"),
        "CONFIG": {
            **({"hosts": [REDIS_URL]} if REDIS_URL else {}),
            "prefix": CHANNELS_PREFIX,
            # Messages a socket may fall behind before it is disconnected (4408, "too slow").
            "capacity": int(os.environ.get("CHANNELS_CAPACITY", "1000")),
        },
    }
}

# The cache holds API throttle counts (and sessions' helpers): shared through Redis when several
# server processes run, so a client cannot multiply its rate by the number of workers.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHANNELS_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Pusher-protocol endpoint (/app/<key>, /broadcasting/auth; docs/pusher.md).
PUSHER_APP_ID = os.environ.get("PUSHER_APP_ID", "")
PUSHER_APP_KEY = os.environ.get("PUSHER_APP_KEY", "")
PUSHER_APP_SECRET = os.environ.get("PUSHER_APP_SECRET", "")
# Client events (`client-*`, Echo's whisper) between the sockets of one private/presence channel.
PUSHER_CLIENT_EVENTS = env_bool("PUSHER_CLIENT_EVENTS", False)

# Domain rules.
CURRENCY = os.environ.get("CURRENCY", "KES")
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_LOCKOUT_MINUTES = int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "30"))

# --- payments (docs/portal.md) ------------------------------------------------------------
# The platform's public base URL: Daraja's CallBackURL is built from it (PUBLIC_URL + a
# per-payment secret path). Empty under local settings means "the address the request came to".
PUBLIC_URL = os.environ.get("PUBLIC_URL", "").rstrip("/")
# Which provider starts a customer's payment on the portal: "daraja" (M-Pesa STK push).
PAYMENT_PROVIDERS = {
    "daraja": "payments.providers.daraja.DarajaProvider",
    "cash": "payments.providers.cash.CashProvider",
}
PAYMENT_PROVIDER = os.environ.get("PAYMENT_PROVIDER", "daraja")
MPESA_API_URL = os.environ.get("MPESA_API_URL", "https://api.safaricom.co.ke").rstrip("/")
MPESA_HTTP_TIMEOUT = float(os.environ.get("MPESA_HTTP_TIMEOUT", "10"))
# A pending STK push without a callback is asked about after this, and failed after that.
MPESA_QUERY_AFTER_SECONDS = int(os.environ.get("MPESA_QUERY_AFTER_SECONDS", "45"))
MPESA_TIMEOUT_SECONDS = int(os.environ.get("MPESA_TIMEOUT_SECONDS", "180"))
# How often the periodic runner looks for payments to query / time out.
MPESA_SWEEP_SECONDS = float(os.environ.get("MPESA_SWEEP_SECONDS", "10"))
# The simulator under /dev/mpesa/ (local settings only; a system check refuses it elsewhere).
MPESA_SIMULATOR = False
MPESA_SIMULATOR_ALLOWED = False  # only local and test settings allow it
# Fernet key(s) for the tenants' Daraja secrets (comma-separated: first encrypts, all decrypt).
PAYMENTS_ENCRYPTION_KEYS = env_list("PAYMENTS_ENCRYPTION_KEYS", [])
# A portal pay link (its token) stops working this long after the payment started.
PORTAL_TOKEN_HOURS = int(os.environ.get("PORTAL_TOKEN_HOURS", "24"))
# STK pushes a phone number / a client address may start per window (abuse: phones that ring).
PORTAL_STK_LIMIT_PER_PHONE = int(os.environ.get("PORTAL_STK_LIMIT_PER_PHONE", "3"))
PORTAL_STK_LIMIT_PER_IP = int(os.environ.get("PORTAL_STK_LIMIT_PER_IP", "10"))
PORTAL_STK_LIMIT_WINDOW_SECONDS = int(os.environ.get("PORTAL_STK_LIMIT_WINDOW_SECONDS", "900"))

# Wrong voucher codes one client address may try per PORTAL_STK_LIMIT_WINDOW_SECONDS.
PORTAL_VOUCHER_ATTEMPTS = int(os.environ.get("PORTAL_VOUCHER_ATTEMPTS", "10"))

# Customers get their WiFi login by SMS (payments/sms.py): a backend chosen like EMAIL_BACKEND.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "payments.sms.ConsoleBackend")
AFRICASTALKING_API_URL = os.environ.get(
    "AFRICASTALKING_API_URL", "https://api.africastalking.com"
).rstrip("/")
AFRICASTALKING_USERNAME = os.environ.get("AFRICASTALKING_USERNAME", "")
AFRICASTALKING_API_KEY = os.environ.get("AFRICASTALKING_API_KEY", "")
AFRICASTALKING_SENDER = os.environ.get("AFRICASTALKING_SENDER", "")  # "from"; empty: default
SMS_MAX_ATTEMPTS = int(os.environ.get("SMS_MAX_ATTEMPTS", "5"))
SMS_RETRY_SECONDS = float(os.environ.get("SMS_RETRY_SECONDS", "30"))  # doubled on each retry

# Periodic work inside the server processes, once across them (config/periodic.py).
PERIODIC_TASKS = {
    "payments.stk_query": {
        "task": "payments.tasks.query_pending_stk_payments",
        "every": MPESA_SWEEP_SECONDS,
    },
    "payments.stk_timeout": {
        "task": "payments.tasks.fail_timed_out_stk_payments",
        "every": MPESA_SWEEP_SECONDS,
    },
    "payments.sms": {"task": "payments.sms.send_queued", "every": 5.0},
}
PERIODIC_ENABLED = env_bool("PERIODIC_ENABLED", True)

REST_FRAMEWORK = {
    # Both refuse users who became blocked (accounts.services.login_block_reason) at once.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api_auth.BlockAwareJWTAuthentication",
        "accounts.api_auth.BlockAwareSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.WriteRateThrottle"],
    # Counted in the default cache: Redis (shared by all processes) when REDIS_URL is set.
    "DEFAULT_THROTTLE_RATES": {
        "write": os.environ.get("API_THROTTLE_WRITE", "120/min"),
        "auth": os.environ.get("API_THROTTLE_AUTH", "20/min"),
        "payment_callback": os.environ.get("API_THROTTLE_CALLBACK", "600/min"),
    },
    "EXCEPTION_HANDLER": "config.api.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api.ApiAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=int(os.environ.get("JWT_REFRESH_DAYS", "7"))),
    "USER_AUTHENTICATION_RULE": "accounts.auth.user_authentication_rule",
    "TOKEN_OBTAIN_SERIALIZER": "accounts.api.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "accounts.api.TokenRefreshSerializer",
    # Tokens carry a hash of the password hash: changing the password ends every older token.
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Hotspot Billing API",
    "DESCRIPTION": (
        "Multi-tenant WiFi-hotspot billing platform. Authenticate with a JWT access token "
        "(`Authorization: Bearer <token>`, from `/api/auth/token/`) or the browser session "
        "(with the CSRF token on writes). Every error has the body "
        '`{"error": {"code", "message", "fields"?}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every model has its own `Status`; name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.Tenant.Status",
        "UserStatusEnum": "accounts.models.User.Status",
        "UserRoleEnum": "accounts.models.User.Role",
        "HotspotUserStatusEnum": "hotspot.models.HotspotUser.Status",
        "PaymentStatusEnum": "payments.models.Payment.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}


def require_secret_key() -> None:
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment.")


def require_pusher_credentials() -> None:
    missing = [
        name
        for name in ("PUSHER_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_SECRET")
        if not globals()[name]
    ]
    if missing:
        raise ImproperlyConfigured(f"{', '.join(missing)} must be set in the environment.")
