"""The REST API under /api/: one router for the resources, the token endpoints, the payment
provider's callback, the OpenAPI schema and its interactive docs. Unknown paths answer JSON 404.
"""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api import TokenObtainView, TokenRefreshView, TokenVerifyView, UserViewSet
from config.api import ApiDocsAccess, api_not_found
from hotspot.api import (
    HotspotSessionViewSet,
    HotspotUserViewSet,
    PackageViewSet,
    RouterViewSet,
)
from notifications.api import NotificationViewSet
from payments.api import PaymentCallbackView, PaymentViewSet
from tenants.api import TenantViewSet

router = DefaultRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("users", UserViewSet, basename="user")
router.register("packages", PackageViewSet, basename="package")
router.register("hotspot-users", HotspotUserViewSet, basename="hotspot-user")
router.register("routers", RouterViewSet, basename="router")
router.register("hotspot-sessions", HotspotSessionViewSet, basename="hotspot-session")
router.register("payments", PaymentViewSet, basename="payment")
router.register("notifications", NotificationViewSet, basename="notification")


def docs_page_access(view):
    """The docs page (a browser page): anonymous visitors sign in first unless API_DOCS_PUBLIC."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.API_DOCS_PUBLIC and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


# Swagger UI's init script is served from the page's own URL (?script), not inline: CSP.
docs_view = SpectacularSwaggerSplitView.as_view(
    url_name="api:schema", permission_classes=[ApiDocsAccess]
)

app_name = "api"
urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/token/verify/", TokenVerifyView.as_view(), name="token-verify"),
    path("payments/callback/", PaymentCallbackView.as_view(), name="payment-callback"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[ApiDocsAccess]), name="schema"),
    path("docs/", docs_page_access(docs_view), name="docs"),
    path("", include(router.urls)),
    re_path(r"^[\s\S]*$", api_not_found),  # any path, newlines included
]
