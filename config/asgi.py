"""HTTP and WebSocket entry point; both protocols share one process and one channel layer.

WebSocket handshakes pass the Origin check (config.wsorigin: scheme, host and port against
WS_ALLOWED_ORIGINS, default the site's own origin; Origin-less non-browser clients allowed),
then authentication (session cookie or simplejwt token, notifications.realtime.auth), then the
URL router.
Serve with uvicorn workers in production (docs/deployment.md); daphne for `make run`
(which sets DJANGO_SETTINGS_MODULE=config.settings.local).
"""

import gc
import os

from django.core.asgi import get_asgi_application

# A server started without DJANGO_SETTINGS_MODULE runs production settings: they refuse to start
# without SECRET_KEY and the Pusher credentials and have DEBUG off, so a forgotten variable can
# never serve the local settings' development keys and debug pages. `make run` and the tests
# name their settings explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from config.background import BackgroundMiddleware  # noqa: E402
from config.bodylimit import BodyLimitMiddleware  # noqa: E402
from config.wsorigin import SiteOriginValidator  # noqa: E402
from hotspot.radius_asgi import RadiusFastPath  # noqa: E402
from notifications.realtime.auth import SocketAuthMiddlewareStack  # noqa: E402
from notifications.routing import websocket_urlpatterns  # noqa: E402
from payments.api import MAX_CALLBACK_BYTES  # noqa: E402

# Bodies with a small limit of their own are refused while being read (config.bodylimit).
BODY_LIMITS = {"/api/payments/callback/": MAX_CALLBACK_BYTES}


def server_started() -> None:
    """Once per server process, at start-up (not at import: tests and the shell import this).

    Runs Django's system checks (notifications/checks.py: a layer that cannot be built, several
    workers without Redis, a bad NOTIFICATIONS_* value), so the server refuses to start instead
    of losing events, then tunes the GC for a process that holds many sockets.
    """
    from django.core import checks
    from django.core.exceptions import ImproperlyConfigured

    errors = [m for m in checks.run_checks() if m.is_serious() and not m.is_silenced()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{m.id}: {m.msg}" for m in errors))
    if settings.ASGI_TUNE_GC:
        tune_gc()


def tune_gc() -> None:
    """Keep the cyclic GC from stalling the event loop (measured: docs/deployment.md).

    Each forwarded event allocates two GC-tracked objects per socket (the layer's wake entry and
    the future the consumer waits on next) and frees them by reference counting; none form
    cycles (measured with bench/fanout.py --gc-trace, docs/deployment.md). CPython starts a
    young collection when allocations minus frees pass the young threshold: at CPython's 700
    (or 10,000) an event to 10,000 sockets crosses it mid-event, every time, and the collection
    walks the live young objects for nothing; the survivors are promoted and trigger full
    collections, which walk every tracked object (0.6-1.7 s at 10,000 sockets before the
    freezes below). With the threshold above one event's peak (settings.GC_THRESHOLD_YOUNG)
    steady fan-out never collects; handshakes, which keep objects, still do. Freezing what the
    import left (modules, settings, URL patterns: never garbage) removes it from every walk, and
    the sockets' own long-lived objects are frozen the same way once a burst of handshakes
    settles (notifications.realtime.mailbox SocketFreezer, settings.ASGI_FREEZE_SOCKETS). Cyclic
    garbage is still collected; only its timing changes. `ASGI_TUNE_GC=0` keeps CPython's
    defaults.
    """
    from notifications.realtime.mailbox import freezer

    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(settings.GC_THRESHOLD_YOUNG, older, oldest)
    freezer.enabled = settings.ASGI_FREEZE_SOCKETS


# BackgroundMiddleware (config/background.py) runs `server_started`, then this process's outbox
# publisher and its periodic runner (tasks: PERIODIC_TASKS, the email outbox among them): on the
# ASGI lifespan's startup on uvicorn, on the first connection on daphne.
application = BackgroundMiddleware(
    ProtocolTypeRouter(
        {
            # FreeRADIUS lookups skip the request cycle (hotspot/radius_asgi.py)
            "http": BodyLimitMiddleware(RadiusFastPath(django_asgi_app), BODY_LIMITS),
            "websocket": SiteOriginValidator(
                SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    ),
    on_startup=server_started,
)
