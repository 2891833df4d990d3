"""HTTP and WebSocket entry point; both protocols share one process and one channel layer.

WebSocket handshakes pass the Origin check (ALLOWED_HOSTS; Origin-less non-browser clients
allowed), then authentication (session cookie or simplejwt token, notifications.auth), then the
URL router. Serve with uvicorn workers in production (docs/deployment.md); daphne for `make run`.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.periodic import PeriodicMiddleware  # noqa: E402
from notifications.auth import (  # noqa: E402
    AllowedHostsOriginValidator,
    SocketAuthMiddlewareStack,
)
from notifications.publisher import PublisherMiddleware  # noqa: E402
from notifications.routing import websocket_urlpatterns  # noqa: E402

# PublisherMiddleware runs this process's outbox publisher and PeriodicMiddleware (outermost) its
# periodic tasks (config/periodic.py): started by the ASGI lifespan on uvicorn, on the first
# connection on daphne.
application = PeriodicMiddleware(
    PublisherMiddleware(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": AllowedHostsOriginValidator(
                    SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
                ),
            }
        )
    )
)


def tune_gc() -> None:
    """Keep the cyclic GC from stalling the event loop (measured: docs/deployment.md).

    Every forwarded event leaves, per socket, a new receive task, its future and `asyncio.wait`
    bookkeeping that live until the next event. With CPython's default thresholds (700, 10, 10)
    they are promoted to the old generation, which triggers a full collection every few events;
    a full collection walks every tracked object (~300 per socket plus ~100k of Django) and held
    the loop 140-220 ms at 1,000 sockets. A larger young generation (10,000; 50,000 measured
    slower in bursts) lets those objects die young, and freezing what the import left (modules,
    settings, URL patterns: never garbage) removes it from every walk. Cyclic garbage is still
    collected; only its timing changes. `ASGI_TUNE_GC=0` restores CPython's defaults.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_YOUNG, 10, 10)


GC_THRESHOLD_YOUNG = int(os.environ.get("GC_THRESHOLD_YOUNG", "10000"))

if os.environ.get("ASGI_TUNE_GC", "1") != "0":
    tune_gc()
