"""HTTP and WebSocket entry point; both protocols share one process and one channel layer.

WebSocket handshakes pass the Origin check (ALLOWED_HOSTS; Origin-less non-browser clients
allowed), then authentication (session cookie or simplejwt token, notifications.auth), then the
URL router. Serve with uvicorn workers in production (docs/deployment.md); daphne for `make run`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from notifications.auth import (  # noqa: E402
    AllowedHostsOriginValidator,
    SocketAuthMiddlewareStack,
)
from notifications.publisher import PublisherMiddleware  # noqa: E402
from notifications.routing import websocket_urlpatterns  # noqa: E402

# PublisherMiddleware (outermost) runs this process's outbox publisher: started by the ASGI
# lifespan on uvicorn, on the first connection on daphne.
application = PublisherMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
