"""Hotspot API: a tenant's packages and the hotspot users (router credentials) sold from them."""

from __future__ import annotations

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from config.api import IdFilter, IsAdminRole, StrictSerializer
from tenants.models import Tenant
from tenants.selectors import tenant_list

from . import selectors, services
from .models import HotspotSession, HotspotUser, Package, Router

MAX_INT = 2_147_483_647  # the widest PositiveIntegerField every database accepts


def _tenant_for_write(user: User, tenant: Tenant | None) -> Tenant:
    """Tenant users act on their own tenant; system admins must say which."""
    if user.is_system_admin:
        if tenant is None:
            raise serializers.ValidationError({"tenant": ["System admins must choose a tenant."]})
        return tenant
    return user.tenant


class PackageSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Package
        fields = [
            "id",
            "tenant",
            "name",
            "price",
            "currency",
            "duration_minutes",
            "data_limit_mb",
            "speed_limit",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PackageUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80, required=False)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False)
    duration_minutes = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)
    data_limit_mb = serializers.IntegerField(
        min_value=0, max_value=MAX_INT, required=False, allow_null=True, help_text="null: unlimited"
    )
    speed_limit = serializers.CharField(max_length=32, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class PackageCreateSerializer(PackageUpdateSerializer):
    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.none(),
        required=False,
        allow_null=True,
        help_text="System admins only (required for them); others always use their own tenant.",
    )
    name = serializers.CharField(max_length=80)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    duration_minutes = serializers.IntegerField(min_value=1, max_value=MAX_INT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["tenant"].queryset = tenant_list(user=request.user if request else None)


class PackageFilter(filters.FilterSet):
    is_active = filters.BooleanFilter()
    tenant = IdFilter(field_name="tenant_id")

    class Meta:
        model = Package
        fields = ["is_active", "tenant"]


@extend_schema_view(
    list=extend_schema(summary="Packages of your tenant (system admins: all)"),
    retrieve=extend_schema(summary="One package (404 if it is not yours to see)"),
    create=extend_schema(
        summary="Create a package (admins)",
        request=PackageCreateSerializer,
        responses={201: PackageSerializer},
    ),
    partial_update=extend_schema(
        summary="Edit a package (admins)", request=PackageUpdateSerializer
    ),
)
class PackageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PackageSerializer
    filterset_class = PackageFilter
    search_fields = ["name"]
    ordering_fields = ["name", "price", "duration_minutes", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.package_list(user=self.request.user)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in {"create", "partial_update"}:
            return [permissions.IsAuthenticated(), IsAdminRole()]
        return [permissions.IsAuthenticated()]

    def create(self, request: Request) -> Response:
        serializer = PackageCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tenant = _tenant_for_write(request.user, data.pop("tenant", None))
        package = services.package_create(tenant=tenant, **data, by=request.user)
        return Response(PackageSerializer(package).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        package = self.get_object()
        serializer = PackageUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        package = services.package_update(
            package=package, data=serializer.validated_data, by=request.user
        )
        return Response(PackageSerializer(package).data)


class HotspotUserSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)
    package = serializers.PrimaryKeyRelatedField(read_only=True)
    payment = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    masked_phone = serializers.CharField(read_only=True, help_text="The customer's phone, masked.")

    class Meta:
        model = HotspotUser
        fields = [
            "id",
            "tenant",
            "username",
            "password",
            "package",
            "masked_phone",
            "payment",
            "status",
            "starts_at",
            "expires_at",
            "data_used_mb",
            "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {"password": {"help_text": "What the customer types on the captive portal."}}


class HotspotUserCreateSerializer(StrictSerializer):
    package = serializers.PrimaryKeyRelatedField(queryset=Package.objects.none())
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    username = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", help_text="Default: generated."
    )
    password = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", help_text="Default: generated."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["package"].queryset = selectors.package_list(
            user=request.user if request else None
        )


class HotspotUserFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=HotspotUser.Status.choices)
    package = IdFilter(field_name="package_id")
    tenant = IdFilter(field_name="tenant_id")

    class Meta:
        model = HotspotUser
        fields = ["status", "package", "tenant"]


@extend_schema_view(
    list=extend_schema(summary="Hotspot users of your tenant (system admins: all)"),
    retrieve=extend_schema(summary="One hotspot user (404 if it is not yours to see)"),
    create=extend_schema(
        summary="Give a customer router credentials for a package (tenant members)",
        request=HotspotUserCreateSerializer,
        responses={201: HotspotUserSerializer},
    ),
)
class HotspotUserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = HotspotUserSerializer
    filterset_class = HotspotUserFilter
    search_fields = ["username"]
    ordering_fields = ["created_at", "expires_at", "username"]

    def get_queryset(self) -> Any:
        return selectors.hotspot_user_list(user=self.request.user)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action == "disable":
            return [permissions.IsAuthenticated(), IsAdminRole()]
        return [permissions.IsAuthenticated()]

    def create(self, request: Request) -> Response:
        serializer = HotspotUserCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        package = data.pop("package")
        hotspot_user = services.hotspot_user_create(
            tenant=package.tenant, package=package, **data, by=request.user
        )
        return Response(HotspotUserSerializer(hotspot_user).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Disable an active hotspot user (admins)", request=None)
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str | None = None) -> Response:
        hotspot_user = services.hotspot_user_disable(
            hotspot_user=self.get_object(), by=request.user
        )
        return Response(HotspotUserSerializer(hotspot_user).data)


class RouterSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Router
        fields = [
            "id",
            "tenant",
            "name",
            "address",
            "secret",
            "coa_port",
            "last_seen",
            "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {"secret": {"help_text": "RADIUS shared secret (admins only; staff: null)."}}

    def to_representation(self, instance: Router) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if not (user and (user.is_system_admin or user.is_tenant_admin)):
            data["secret"] = None
        return data


class RouterUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80, required=False)
    address = serializers.IPAddressField(required=False)
    secret = serializers.CharField(max_length=128, required=False)
    coa_port = serializers.IntegerField(min_value=1, max_value=65535, required=False)


class RouterCreateSerializer(RouterUpdateSerializer):
    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.none(),
        required=False,
        allow_null=True,
        help_text="System admins only (required for them); others always use their own tenant.",
    )
    name = serializers.CharField(max_length=80)
    address = serializers.IPAddressField()
    secret = serializers.CharField(max_length=128)
    coa_port = serializers.IntegerField(min_value=1, max_value=65535, default=3799)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["tenant"].queryset = tenant_list(user=request.user if request else None)


class RouterFilter(filters.FilterSet):
    tenant = IdFilter(field_name="tenant_id")

    class Meta:
        model = Router
        fields = ["tenant"]


@extend_schema_view(
    list=extend_schema(summary="Routers (RADIUS clients) of your tenant (system admins: all)"),
    retrieve=extend_schema(summary="One router (404 if it is not yours to see)"),
    create=extend_schema(
        summary="Add a router (admins); FreeRADIUS accepts it without a restart",
        request=RouterCreateSerializer,
        responses={201: RouterSerializer},
    ),
    partial_update=extend_schema(summary="Edit a router (admins)", request=RouterUpdateSerializer),
    destroy=extend_schema(summary="Remove a router (admins)"),
)
class RouterViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = RouterSerializer
    filterset_class = RouterFilter
    search_fields = ["name", "address"]
    ordering_fields = ["name", "created_at", "last_seen"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.router_list(user=self.request.user)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in {"create", "partial_update", "destroy"}:
            return [permissions.IsAuthenticated(), IsAdminRole()]
        return [permissions.IsAuthenticated()]

    def create(self, request: Request) -> Response:
        serializer = RouterCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tenant = _tenant_for_write(request.user, data.pop("tenant", None))
        router = services.router_create(tenant=tenant, **data, by=request.user)
        return Response(
            RouterSerializer(router, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        router = self.get_object()
        serializer = RouterUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        router = services.router_update(
            router=router, data=serializer.validated_data, by=request.user
        )
        return Response(RouterSerializer(router, context={"request": request}).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.router_delete(router=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HotspotSessionSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)
    router = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    router_name = serializers.CharField(source="router.name", read_only=True, default=None)
    hotspot_user = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = HotspotSession
        fields = [
            "id",
            "tenant",
            "router",
            "router_name",
            "hotspot_user",
            "username",
            "acct_session_id",
            "mac",
            "ip",
            "status",
            "started_at",
            "last_heard",
            "stopped_at",
            "input_octets",
            "output_octets",
            "session_time",
            "terminate_cause",
            "disconnect",
        ]
        read_only_fields = fields


class HotspotSessionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=HotspotSession.Status.choices)
    router = IdFilter(field_name="router_id")
    tenant = IdFilter(field_name="tenant_id")

    class Meta:
        model = HotspotSession
        fields = ["status", "router", "tenant"]


@extend_schema_view(
    list=extend_schema(
        summary="Hotspot sessions of your tenant, active first (system admins: all)"
    ),
    retrieve=extend_schema(summary="One hotspot session (404 if it is not yours to see)"),
)
class HotspotSessionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = HotspotSessionSerializer
    filterset_class = HotspotSessionFilter
    search_fields = ["username", "mac"]
    ordering_fields = ["started_at", "last_heard", "status"]

    def get_queryset(self) -> Any:
        return selectors.hotspot_session_list(user=self.request.user)
