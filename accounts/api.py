"""Accounts API: JWT token endpoints and tenant-scoped user management.

Tokens: `/api/auth/token/` (obtain), `/api/auth/token/refresh/`, `/api/auth/token/verify/`.
Blocked users (accounts.services.login_block_reason) get neither a token nor a refreshed one, with
the reason as the message. Writes go through accounts.services, which enforce who may manage whom.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, update_session_auth_hash
from django_filters import rest_framework as filters
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.rest_framework_simplejwt import (
    SimpleJWTScheme,
    TokenObtainPairSerializerExtension,
    TokenRefreshSerializerExtension,
)
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from config.api import IdFilter, IsAdminRole, StrictSerializer
from config.clientip import client_ip
from config.throttling import AuthRateThrottle
from tenants.models import Tenant
from tenants.selectors import tenant_list

from . import selectors, services
from .api_auth import BlockAwareSessionAuthentication, refuse_if_blocked
from .models import User

# --- Tokens ------------------------------------------------------------------------------------


class SignInLocked(exceptions.APIException):
    """429 `sign_in_locked`: too many failures from this address (or for this account)."""

    status_code = 429
    default_code = "sign_in_locked"

    def __init__(self, lock: services.SignInLock) -> None:
        code = "sign_in_unavailable" if lock.kind == "unavailable" else "sign_in_locked"
        if lock.kind == "unavailable":
            self.status_code = 503
        super().__init__(lock.message, code=code)
        self.wait = lock.retry_after


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    """Username + password → access and refresh tokens, unless the sign-in rule refuses."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        request = self.context.get("request")
        user = authenticate(
            request=request,
            username=attrs[self.username_field],
            password=attrs["password"],
        )  # a wrong password counts towards the lockout (accounts.receivers)
        if user is None:
            lock = getattr(request, "sign_in_lock", None)
            if lock is not None:  # decided before the password was looked at: no oracle
                raise SignInLocked(lock)
            raise exceptions.AuthenticationFailed(
                "Wrong username or password.", code="invalid_credentials"
            )
        refuse_if_blocked(user)  # only after the password checked out: no status oracle
        self.user = user
        services.user_record_login_success(user=user, address=client_ip(request))
        refresh = self.get_token(user)
        return {"refresh": str(refresh), "access": str(refresh.access_token)}


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """Refresh token → new access token, re-checking the user as it is *now*."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])  # TokenError → 401 token_not_valid
        user = User.objects.filter(pk=refresh.payload.get(jwt_settings.USER_ID_CLAIM)).first()
        if user is None:
            raise exceptions.AuthenticationFailed(
                "This account no longer exists.", code="user_not_found"
            )
        if jwt_settings.CHECK_REVOKE_TOKEN and refresh.payload.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise exceptions.AuthenticationFailed(
                "The password was changed since this token was issued; sign in again.",
                code="password_changed",
            )
        refuse_if_blocked(user)
        return super().validate(attrs)


_TOKEN_ERRORS = {
    400: OpenApiResponse(description="Missing or malformed fields (`error.fields`)."),
    401: OpenApiResponse(
        description="Wrong credentials, invalid/expired token, or the account may not sign in "
        "now (`error.code` = `account_blocked`, `error.message` says why)."
    ),
    429: OpenApiResponse(description="Too many attempts from this address; see Retry-After."),
}


@extend_schema(tags=["auth"], responses={200: TokenObtainPairSerializer, **_TOKEN_ERRORS})
class TokenObtainView(jwt_views.TokenObtainPairView):
    """Sign in: a short-lived access token and a longer-lived refresh token."""

    serializer_class = TokenObtainPairSerializer
    throttle_classes = [AuthRateThrottle]


@extend_schema(tags=["auth"], responses={200: TokenRefreshSerializer, **_TOKEN_ERRORS})
class TokenRefreshView(jwt_views.TokenRefreshView):
    """A new access token, refused once the user or their tenant is suspended."""

    serializer_class = TokenRefreshSerializer
    throttle_classes = [AuthRateThrottle]


@extend_schema(
    tags=["auth"], responses={200: OpenApiResponse(description="Valid."), **_TOKEN_ERRORS}
)
class TokenVerifyView(jwt_views.TokenVerifyView):
    """Is this token (access or refresh) genuine and unexpired? Says nothing about the user."""

    throttle_classes = [AuthRateThrottle]


class _BlockAwareJWTScheme(SimpleJWTScheme):
    target_class = "accounts.api_auth.BlockAwareJWTAuthentication"


class _BlockAwareSessionScheme(SessionScheme):
    target_class = "accounts.api_auth.BlockAwareSessionAuthentication"


class _TokenObtainSchema(TokenObtainPairSerializerExtension):
    target_class = "accounts.api.TokenObtainPairSerializer"


class _TokenRefreshSchema(TokenRefreshSerializerExtension):
    target_class = "accounts.api.TokenRefreshSerializer"


# --- Users -------------------------------------------------------------------------------------


class UserSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="null for system admins."
    )
    is_suspended = serializers.BooleanField(read_only=True)
    email = serializers.CharField(read_only=True, help_text="May be empty.")

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "phone",
            "role",
            "tenant",
            "status",
            "is_suspended",
            "suspension_reason",
            "suspended_until",
            "date_joined",
            "last_login",
        ]
        read_only_fields = fields


def _visible_tenants(context: dict[str, Any]) -> Any:
    request = context.get("request")
    return tenant_list(user=request.user if request else None)


class UserCreateSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        write_only=True, max_length=128, style={"input_type": "password"}
    )
    role = serializers.ChoiceField(choices=User.Role.choices)
    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.none(),
        required=False,
        allow_null=True,
        help_text="Tenant admins: defaults to (and must be) their own tenant.",
    )
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = _visible_tenants(self.context)


class ProfileUpdateSerializer(StrictSerializer):
    """Fields anyone may change on their own account (all optional)."""

    email = serializers.EmailField(required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True)


class UserUpdateSerializer(ProfileUpdateSerializer):
    """What an admin may change on an account of their tenant (all optional)."""

    role = serializers.ChoiceField(choices=User.Role.choices, required=False)


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, help_text="Shown to the suspended party.")


class PasswordChangeSerializer(StrictSerializer):
    old_password = serializers.CharField(max_length=128, style={"input_type": "password"})
    new_password = serializers.CharField(max_length=128, style={"input_type": "password"})


class UserFilter(filters.FilterSet):
    role = filters.ChoiceFilter(choices=User.Role.choices)
    status = filters.ChoiceFilter(choices=User.Status.choices)
    tenant = IdFilter(field_name="tenant_id")

    class Meta:
        model = User
        fields = ["role", "status", "tenant"]


@extend_schema_view(
    list=extend_schema(summary="Users you may see (system admins: all; others: your tenant's)"),
    retrieve=extend_schema(summary="One user (404 if it is not yours to see)"),
    create=extend_schema(
        summary="Create a user (admins)",
        request=UserCreateSerializer,
        responses={201: UserSerializer},
    ),
    partial_update=extend_schema(
        summary="Update a user's profile or role (admins)", request=UserUpdateSerializer
    ),
    destroy=extend_schema(summary="Delete a user (admins)"),
)
class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Tenant-scoped user accounts; staff may read them and edit only their own profile."""

    serializer_class = UserSerializer
    filterset_class = UserFilter
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering_fields = ["username", "date_joined", "last_login"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.user_list(user=self.request.user)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in {"create", "partial_update", "destroy", "suspend", "activate"}:
            return [permissions.IsAuthenticated(), IsAdminRole()]
        return [permissions.IsAuthenticated()]

    def _out(self, user: User, code: int = status.HTTP_200_OK) -> Response:
        return Response(
            UserSerializer(user, context=self.get_serializer_context()).data, status=code
        )

    def create(self, request: Request) -> Response:
        serializer = UserCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data.get("tenant") is None and not request.user.is_system_admin:
            data["tenant"] = request.user.tenant
        user = services.user_create(**data, by=request.user)
        return self._out(user, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(user=user, data=serializer.validated_data, by=request.user)
        return self._out(user)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.user_delete(user=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Suspend a user (admins)", request=ReasonSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_suspend(
            user=user, reason=serializer.validated_data["reason"], by=request.user
        )
        return self._out(user)

    @extend_schema(summary="Reactivate a suspended user (admins)", request=None)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        user = services.user_activate(user=self.get_object(), by=request.user)
        return self._out(user)

    @extend_schema(
        methods=["GET"], summary="Your own account", request=None, responses=UserSerializer
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Update your own profile",
        request=ProfileUpdateSerializer,
        responses=UserSerializer,
    )
    @action(detail=False, methods=["get", "patch"], pagination_class=None, filter_backends=[])
    def me(self, request: Request) -> Response:
        if request.method == "PATCH":
            serializer = ProfileUpdateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            user = services.user_update(
                user=request.user, data=serializer.validated_data, by=request.user
            )
            return self._out(user)
        return self._out(request.user)

    @extend_schema(
        summary="Change your own password",
        description="Every token issued before the change stops working; sign in again.",
        request=PasswordChangeSerializer,
        responses={204: None},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="me/password",
        pagination_class=None,
        filter_backends=[],
    )
    def change_password(self, request: Request) -> Response:
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not request.user.check_password(serializer.validated_data["old_password"]):
            raise exceptions.ValidationError({"old_password": ["Your current password is wrong."]})
        user = services.user_change_password(
            user=request.user,
            new_password=serializer.validated_data["new_password"],
            by=request.user,
        )
        if isinstance(request.successful_authenticator, BlockAwareSessionAuthentication):
            update_session_auth_hash(request._request, user)  # keep this browser signed in
        return Response(status=status.HTTP_204_NO_CONTENT)
