"""Settings shared by every environment; everything that varies is read from the environment."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import dj_email_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_list, env_number  # noqa: F401 (the settings use them)
from config.request_log import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
PRODUCTION = False  # True in config.settings.production (config.checks)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Cross-origin API calls (django-cors-headers), /api/ only: browser apps on these exact origins
# may call the API with a bearer token. No cookies cross-site (the session is for our own pages).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = False
CORS_PREFLIGHT_MAX_AGE = 3600
# Pages that may open a WebSocket (config.wsorigin): exact scheme://host[:port] origins.
# Empty: the site's own origin only (the handshake's Host, one of ALLOWED_HOSTS).
WS_ALLOWED_ORIGINS = env_list("WS_ALLOWED_ORIGINS", [])

INSTALLED_APPS = [
    "accounts.admin_config.PlatformAdminConfig",  # django.contrib.admin, system admins only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us (no CDN at run time)
    "django_filters",
    "config",  # the project's own table: the periodic runner's lease (config/models.py)
    "accounts",
    "tenants",
    "hotspot",
    "payments",
    "notifications",
]

MIDDLEWARE = [
    # /healthz and /readyz (config/health.py): answered first, before the host check and the
    # HTTPS redirect, so a load balancer can poll each worker by its address.
    "config.health.HealthCheckMiddleware",
    # GET /metrics for Prometheus (config/metrics.py): allowed addresses or a bearer token.
    "config.metrics.MetricsMiddleware",
    # A request id for every later log line, and one access-log line per request.
    "config.request_log.RequestLogMiddleware",
    # A NUL byte in the path or query string: 400 (PostgreSQL refuses it: a 500 otherwise).
    "config.nulbytes.NulByteMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware (it can answer itself)
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the set_language cookie, else the browser's Accept-Language...
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # ...unless the signed-in user chose one on /accounts/profile/ (User.language).
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.BlockedUserLogoutMiddleware",
    # Times in the signed-in user's tenant's zone (system admins: TIME_ZONE).
    "tenants.middleware.TenantTimeZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "notifications.middleware.SocketIdMiddleware",
]

# Content-Security-Policy on every response (django-csp): our own files only, no inline script;
# the few inline <style> blocks (Swagger UI's page, an admin template) carry the request's nonce.
# WebSockets are same-origin ('self' covers ws/wss of this host). docs/security.md.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Permissions-Policy (django-permissions-policy): no page needs a device or sensor.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
        "serial",
        "hid",
        "bluetooth",
        "browsing-topics",
        "interest-cohort",
    )
}
# /api/schema/ and /api/docs/ for anonymous visitors (False: signed-in users only; the schema
# lists every endpoint and field, which is no secret but need not be public). docs/security.md.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", False)

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
                "django.template.context_processors.i18n",  # LANGUAGE_CODE for <html lang>
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "notifications.context_processors.notifications_ui",
            ],
            # {% translate %} / {% blocktranslate %} in every template, no {% load i18n %}
            "builtins": ["config.templatetags", "django.templatetags.i18n"],
        },
    },
]

# Embedded default: SQLite next to manage.py. DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_number("DB_CONN_MAX_AGE", "0", int),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the server and a `manage.py shell` write concurrently.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# ModelBackend behind the sign-in lockout (accounts.auth; docs/security.md).
AUTHENTICATION_BACKENDS = ["accounts.auth.SignInGuardBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Languages shipped (locale/<code>/LC_MESSAGES/django.po, compiled .mo committed): English is
# the source language; a user's choice (User.language), else the set_language cookie, else the
# browser's Accept-Language picks one. README "Languages" says how to add one.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("sw", "Kiswahili"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The platform's zone: system admins' pages and platform reports, and new tenants' default
# (each tenant has its own, Tenant.time_zone; tenants.middleware activates it).
TIME_ZONE = os.environ.get("TIME_ZONE", "Africa/Nairobi")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")  # collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]

# Redis (notifications/realtime/connections.py builds every connection from these): one server
# (REDIS_URL, redis:// or rediss:// for TLS with the REDIS_TLS_* files), or Redis Sentinel
# (REDIS_SENTINELS host:port list + REDIS_SENTINEL_MASTER; REDIS_URL then optional, for the
# master's db/password/TLS). docs/deployment.md, "Redis"; notifications.checks rejects a bad mix.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_SENTINELS = env_list("REDIS_SENTINELS", [])
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "")
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
# TLS to the sentinels themselves (true/false; the REDIS_TLS_* files); the text is checked.
REDIS_SENTINEL_TLS = os.environ.get("REDIS_SENTINEL_TLS", "")
REDIS_TLS_CA_CERTS = os.environ.get("REDIS_TLS_CA_CERTS", "")
REDIS_TLS_CERTFILE = os.environ.get("REDIS_TLS_CERTFILE", "")
REDIS_TLS_KEYFILE = os.environ.get("REDIS_TLS_KEYFILE", "")
REDIS_TLS_CHECK_HOSTNAME = env_bool("REDIS_TLS_CHECK_HOSTNAME", True)
# The layer PINGs its subscription after this many quiet seconds and declares it dead when no
# answer comes within as long again: a dead subscription is found within twice this.
REDIS_HEALTH_CHECK_SECONDS = os.environ.get("REDIS_HEALTH_CHECK_SECONDS", "") or "2"


def _redis_host() -> dict | None:
    from notifications.realtime.connections import SETTING_NAMES, host_spec

    try:
        return host_spec({name: globals()[name] for name in SETTING_NAMES})
    except ValueError:  # a bad value: notifications.checks stops the server at start-up
        return None


#: The channels_redis-style host spec of the above (None: no Redis; the embedded default).
REDIS_HOST = _redis_host()
CHANNELS_PREFIX = os.environ.get("CHANNELS_PREFIX", "hotspot")
# Channel layer (notifications/realtime/layers.py): one Redis pub/sub subscription per group per
# server process and a local fan-out to that process's sockets. Redis shares events between
# every server process; without it the layer is process-local (other processes reach it via the
# outbox).
# Every NOTIFICATIONS_* setting (presence TTL, socket limits, publisher timings...) is declared
# once, with its default, in notifications/conf.py; each is read from this module if set here,
# else from the environment variable of the same name (docs/deployment.md lists them).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "notifications.realtime.layers."
        + ("FanoutChannelLayer" if REDIS_HOST else "LocalFanoutChannelLayer"),
        "CONFIG": {
            **(
                {"hosts": [REDIS_HOST], "health_check_interval": REDIS_HEALTH_CHECK_SECONDS}
                if REDIS_HOST
                else {}
            ),
            "prefix": CHANNELS_PREFIX,
            # Messages a socket may fall behind before it is disconnected (4408, "too slow").
            "capacity": env_number("CHANNELS_CAPACITY", "1000", int),
        },
    }
}

# The cyclic GC of a server process holding many sockets, set once when it starts (config.asgi
# tune_gc; measured in docs/deployment.md). ASGI_TUNE_GC=0 leaves CPython's defaults.
ASGI_TUNE_GC = env_bool("ASGI_TUNE_GC", True)
# Net new GC-tracked objects (allocations minus frees) before a young collection; CPython's
# default is 700. One event to N sockets holds ~2 N new objects at its peak and frees them by
# reference counting (none are cyclic): a threshold above that peak keeps steady fan-out from
# ever collecting (10,000 collected 1.5 times per event at 10,000 sockets; 100,000 never).
GC_THRESHOLD_YOUNG = env_number("GC_THRESHOLD_YOUNG", "100000", int)
# Freeze the sockets' long-lived objects once a burst of handshakes settles (mailbox.SocketFreezer).
ASGI_FREEZE_SOCKETS = env_bool("ASGI_FREEZE_SOCKETS", True)

# The cache holds API throttle counts (and sessions' helpers): shared through Redis when several
# server processes run, so a client cannot multiply its rate by the number of workers. Its
# connections are built like the layer's (config/cache.py: URL, TLS or Sentinel).
if REDIS_HOST:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": "redis-host-spec",
            "OPTIONS": {"host": REDIS_HOST},
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

# Readiness (/readyz, config/health.py): not ready when the oldest event still to be published is
# older than this, or when a check takes longer than the timeout.
HEALTH_OUTBOX_MAX_AGE_SECONDS = env_number("HEALTH_OUTBOX_MAX_AGE_SECONDS", "60")
HEALTH_CHECK_TIMEOUT_SECONDS = env_number("HEALTH_CHECK_TIMEOUT_SECONDS", "3")
# Not ready when this worker's periodic runner has been inside one tick longer than this (the
# default is the task lease, config/periodic.py: a run that long is assumed dead).
HEALTH_PERIODIC_STALL_SECONDS = env_number("HEALTH_PERIODIC_STALL_SECONDS", "300")

# Prometheus metrics at /metrics (config/metrics.py): served to these addresses/networks, or to
# `Authorization: Bearer <METRICS_TOKEN>`. PROMETHEUS_MULTIPROC_DIR (read by prometheus-client
# itself) makes a scrape of any worker report all workers.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
for _network in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_exc}") from None
# Email (notifications/emails.py, notifications/mailer.py). EMAIL_URL selects SMTP in any
# settings (dj-email-url: smtp://host:1025, submission://user:pass@host:587 for STARTTLS,
# smtps://... for TLS, ?timeout=N); without it local settings print emails on the console.
EMAIL_URL = os.environ.get("EMAIL_URL", "")


def parse_email_url(url: str) -> dict[str, object]:
    """Django's EMAIL_* settings from EMAIL_URL; a URL nobody can send with stops the start."""
    try:
        parsed = dj_email_url.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"EMAIL_URL is not a valid email URL: {exc}") from exc
    if "EMAIL_BACKEND" not in parsed:
        scheme = url.split("://", 1)[0]
        raise ImproperlyConfigured(
            f"EMAIL_URL has an unknown scheme {scheme!r}; use smtp://, submission:// (STARTTLS) "
            "or smtps:// (TLS), e.g. smtp://127.0.0.1:1025."
        )
    return {key: value for key, value in parsed.items() if value is not None}


if EMAIL_URL:
    globals().update(parse_email_url(EMAIL_URL))
EMAIL_TIMEOUT = globals().get("EMAIL_TIMEOUT") or 10  # seconds; a hung SMTP server never stalls
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Hotspot Billing <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where links in emails point (the set-password page, sign-in): the site's public address.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The email outbox retries a failed send after EMAIL_RETRY_SECONDS, doubling up to
# EMAIL_RETRY_MAX_SECONDS, and gives up after EMAIL_MAX_ATTEMPTS tries.
EMAIL_RETRY_SECONDS = env_number("EMAIL_RETRY_SECONDS", "30")
EMAIL_RETRY_MAX_SECONDS = env_number("EMAIL_RETRY_MAX_SECONDS", "3600")
EMAIL_MAX_ATTEMPTS = env_number("EMAIL_MAX_ATTEMPTS", "12", int)
EMAIL_KEEP_DAYS = env_number("EMAIL_KEEP_DAYS", "30", int)  # the outbox's record of sent ones

# Domain rules. The currency new tenants bill in (each tenant then has its own,
# Tenant.currency, an ISO 4217 code of config.money.CURRENCIES; config.checks checks this one).
CURRENCY = os.environ.get("CURRENCY", "KES")
# Sign-in guessing (accounts.services, docs/security.md): failures per (username, address) and per
# address lock that pair / that address for LOGIN_LOCKOUT_MINUTES (never the account itself);
# past LOGIN_ACCOUNT_FAILURE_LIMIT failures of one account from anywhere, one attempt per
# LOGIN_ACCOUNT_SLOWDOWN_SECONDS. Counted in the default cache (Redis when REDIS_URL is set).
LOGIN_FAILURE_LIMIT = env_number("LOGIN_FAILURE_LIMIT", "5", int)
LOGIN_LOCKOUT_MINUTES = env_number("LOGIN_LOCKOUT_MINUTES", "30", int)
LOGIN_ADDRESS_FAILURE_LIMIT = env_number("LOGIN_ADDRESS_FAILURE_LIMIT", "20", int)
LOGIN_ACCOUNT_FAILURE_LIMIT = env_number("LOGIN_ACCOUNT_FAILURE_LIMIT", "20", int)
LOGIN_ACCOUNT_SLOWDOWN_SECONDS = env_number("LOGIN_ACCOUNT_SLOWDOWN_SECONDS", "10", int)

# The client address (config.clientip): believed from X-Forwarded-For only as far as our own
# proxies wrote it. NUM_PROXIES: how many proxies of ours stand in front (nginx alone: 1).
# TRUSTED_PROXIES: their addresses/CIDRs instead. Default: none trusted, the header is ignored.
NUM_PROXIES = env_number("NUM_PROXIES", "0", int)
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])

# RADIUS (docs/radius.md). FreeRADIUS's rlm_rest sends this token (HTTP Basic, user
# "freeradius") to /radius/; without it every RADIUS endpoint refuses.
RADIUS_API_TOKEN = os.environ.get("RADIUS_API_TOKEN", "")
# Acct-Interim-Interval sent on every Access-Accept; a session silent for 3x this is stale.
RADIUS_INTERIM_INTERVAL = env_number("RADIUS_INTERIM_INTERVAL", "300", int)
# How long FreeRADIUS caches a router (dynamic client): a change takes effect within this.
RADIUS_CLIENT_LIFETIME = env_number("RADIUS_CLIENT_LIFETIME", "60", int)
# Seconds FreeRADIUS waits before sending an Access-Reject (slows password guessing).
RADIUS_REJECT_DELAY = env_number("RADIUS_REJECT_DELAY", "1")
# Disconnect-Request (RFC 5176): seconds to wait for an answer, and how many tries.
RADIUS_COA_TIMEOUT = env_number("RADIUS_COA_TIMEOUT", "2")
RADIUS_COA_RETRIES = env_number("RADIUS_COA_RETRIES", "3", int)
# A cut-off still "sent" this long after it was asked for is sent again (hotspot/coa.py).
RADIUS_COA_RESEND_AFTER = env_number("RADIUS_COA_RESEND_AFTER", "60")
# A router not heard from for this long is reported ("not heard from") once.
RADIUS_ROUTER_SILENT_AFTER = env_number("RADIUS_ROUTER_SILENT_AFTER", "900", int)
# Customers (their tenant) are told when this share of the data limit is used.
RADIUS_DATA_WARNING_PERCENT = env_number("RADIUS_DATA_WARNING_PERCENT", "80", int)
# Seconds FreeRADIUS answers a repeated Access-Request from its own memory (rlm_cache) before
# asking the platform again; every change drops the answers it affects at once, this is the
# safety net (docs/radius.md). 0: no cache (`manage.py radius_config` writes none).
RADIUS_CACHE_TTL = env_number("RADIUS_CACHE_TTL", "30", int)
# The FreeRADIUS cache listeners (host:port) the platform drops answers through; the port is
# `radius_config --cache-port` (default 18120, on 127.0.0.1). Empty: none (no cache to drop).
RADIUS_CACHE_SERVERS = env_list("RADIUS_CACHE_SERVERS", ["127.0.0.1:18120"])
# Seconds the background sender waits for a cache listener to confirm a drop packet, and how
# many tries before it backs off and sends the drop again later (hotspot/radius_cache.py).
RADIUS_CACHE_TIMEOUT = env_number("RADIUS_CACHE_TIMEOUT", "0.5")
RADIUS_CACHE_RETRIES = env_number("RADIUS_CACHE_RETRIES", "3", int)
# Seconds a committed change (a request, an admin save) waits at most for every listener to
# confirm its drops before it returns: confirmed within it, the very next login is answered
# from the new state; past it the drop is still delivered, later (docs/radius.md, "The cache").
RADIUS_CACHE_DROP_WAIT = env_number("RADIUS_CACHE_DROP_WAIT", "0.25")
# Drops at most waiting for one cache listener (one per change): past it, new drops are
# discarded (logged, counted) rather than held in memory for a listener gone for good.
RADIUS_CACHE_QUEUE_MAX = env_number("RADIUS_CACHE_QUEUE_MAX", "10000", int)

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
MPESA_HTTP_TIMEOUT = env_number("MPESA_HTTP_TIMEOUT", "10")
# A pending STK push without a callback is asked about after this, and failed after that.
MPESA_QUERY_AFTER_SECONDS = env_number("MPESA_QUERY_AFTER_SECONDS", "45", int)
MPESA_TIMEOUT_SECONDS = env_number("MPESA_TIMEOUT_SECONDS", "180", int)
# How often the periodic runner looks for payments to query / time out.
MPESA_SWEEP_SECONDS = env_number("MPESA_SWEEP_SECONDS", "10")
# The simulator under /dev/mpesa/ (local settings only; a system check refuses it elsewhere).
MPESA_SIMULATOR = False
MPESA_SIMULATOR_ALLOWED = False  # only local and test settings allow it
# Fernet key(s) for the tenants' Daraja secrets (comma-separated: first encrypts, all decrypt).
PAYMENTS_ENCRYPTION_KEYS = env_list("PAYMENTS_ENCRYPTION_KEYS", [])
# A portal pay link (its token) stops working this long after the payment started.
PORTAL_TOKEN_HOURS = env_number("PORTAL_TOKEN_HOURS", "24", int)
# STK pushes a phone number / a client address may start per window (abuse: phones that ring).
PORTAL_STK_LIMIT_PER_PHONE = env_number("PORTAL_STK_LIMIT_PER_PHONE", "3", int)
PORTAL_STK_LIMIT_PER_IP = env_number("PORTAL_STK_LIMIT_PER_IP", "10", int)
PORTAL_STK_LIMIT_WINDOW_SECONDS = env_number("PORTAL_STK_LIMIT_WINDOW_SECONDS", "900", int)

# Unknown voucher codes one client address may try per PORTAL_STK_LIMIT_WINDOW_SECONDS (used or
# disabled codes do not count: payments/vouchers.py, VoucherSpent).
PORTAL_VOUCHER_ATTEMPTS = env_number("PORTAL_VOUCHER_ATTEMPTS", "10", int)

# Customers get their WiFi login by SMS (payments/sms.py): a backend chosen like EMAIL_BACKEND.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "payments.sms.ConsoleBackend")
AFRICASTALKING_API_URL = os.environ.get(
    "AFRICASTALKING_API_URL", "https://api.africastalking.com"
).rstrip("/")
AFRICASTALKING_USERNAME = os.environ.get("AFRICASTALKING_USERNAME", "")
AFRICASTALKING_API_KEY = os.environ.get("AFRICASTALKING_API_KEY", "")
AFRICASTALKING_SENDER = os.environ.get("AFRICASTALKING_SENDER", "")  # "from"; empty: default
SMS_MAX_ATTEMPTS = env_number("SMS_MAX_ATTEMPTS", "5", int)
SMS_RETRY_SECONDS = env_number("SMS_RETRY_SECONDS", "30")  # doubled on each retry

# Periodic work inside the server processes, once across them (config/periodic.py). One dict:
# the hotspot's and the payments' tasks (a second assignment would silently drop the first).
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
    # the email outbox (notifications/mailer.py); kicked after each commit that queues one
    "emails": {"task": "notifications.mailer.send_due", "every": 5.0},
    "hotspot_expire_users": {"task": "hotspot.services.expire_due_hotspot_users", "every": 60},
    "hotspot_close_stale_sessions": {"task": "hotspot.radius.close_stale_sessions", "every": 60},
    "hotspot_silent_routers": {"task": "hotspot.radius.find_silent_routers", "every": 300},
    "hotspot_resend_disconnects": {"task": "hotspot.coa.resend_stuck_disconnects", "every": 30},
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
        # Django pages' POSTs, per address (config.throttling.throttle_posts).
        "admin_login": os.environ.get("THROTTLE_ADMIN_LOGIN", "10/min"),
        "register": os.environ.get("THROTTLE_REGISTER", "10/hour"),
    },
    "EXCEPTION_HANDLER": "config.api.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api.ApiAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_number("JWT_ACCESS_MINUTES", "15", int)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_number("JWT_REFRESH_DAYS", "7", int)),
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
        "HotspotSessionStatusEnum": "hotspot.models.HotspotSession.Status",
        "DisconnectEnum": "hotspot.models.HotspotSession.Disconnect",
    },
}

# LOG_FORMAT=json: one JSON object per line. Every line logged during a request carries its
# request_id and tenant_id; each request gets one line on config.requests (config/request_log.py).
LOGGING = logging_config(os.environ.get("LOG_FORMAT", "plain"), os.environ.get("LOG_LEVEL", "INFO"))


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
