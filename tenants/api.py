"""Tenants API: system admins run the life cycle; a tenant's own admins read and edit it."""

from __future__ import annotations

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import IsAdminRole, IsSystemAdmin, StrictSerializer

from . import selectors, services
from .models import Tenant


class TenantSerializer(serializers.ModelSerializer):
    """A tenant as the API shows it (never its payment secret)."""

    class Meta:
        model = Tenant
        fields = [
            "id",
            *services.DETAIL_FIELDS,
            "status",
            "suspension_reason",
            "approved_at",
            "suspended_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TenantCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.CharField(
        max_length=60, required=False, allow_blank=True, default="", help_text="Default: from name."
    )
    contact_email = serializers.EmailField(max_length=254)
    contact_phone = serializers.CharField(
        max_length=20, required=False, allow_blank=True, default=""
    )
    status = serializers.ChoiceField(
        choices=[Tenant.Status.ACTIVE, Tenant.Status.PENDING], default=Tenant.Status.ACTIVE
    )


class TenantUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    contact_email = serializers.EmailField(max_length=254, required=False)
    contact_phone = serializers.CharField(max_length=20, required=False, allow_blank=True)


class TenantSuspendSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500, help_text="Shown to the tenant's users.")


class TenantFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Tenant.Status.choices)

    class Meta:
        model = Tenant
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(summary="Tenants (system admins: all; tenant users: their own)"),
    retrieve=extend_schema(summary="One tenant (404 if it is not yours to see)"),
    create=extend_schema(
        summary="Create a tenant (system admins)",
        request=TenantCreateSerializer,
        responses={201: TenantSerializer},
    ),
    partial_update=extend_schema(
        summary="Edit contact details (system admins, the tenant's own admins)",
        request=TenantUpdateSerializer,
    ),
)
class TenantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TenantSerializer
    filterset_class = TenantFilter
    search_fields = ["name", "slug", "contact_email"]
    ordering_fields = ["name", "created_at", "status"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.tenant_list(user=self.request.user)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in {"create", "approve", "suspend", "reactivate"}:
            return [permissions.IsAuthenticated(), IsSystemAdmin()]
        if self.action == "partial_update":
            return [permissions.IsAuthenticated(), IsAdminRole()]
        return [permissions.IsAuthenticated()]

    def _out(self, tenant: Tenant, code: int = status.HTTP_200_OK) -> Response:
        return Response(TenantSerializer(tenant).data, status=code)

    def create(self, request: Request) -> Response:
        serializer = TenantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_create(**serializer.validated_data, by=request.user)
        return self._out(tenant, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        tenant = self.get_object()
        serializer = TenantUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_update(
            tenant=tenant, data=serializer.validated_data, by=request.user
        )
        return self._out(tenant)

    @extend_schema(summary="Approve a pending tenant (system admins)", request=None)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._out(services.tenant_approve(tenant=self.get_object(), by=request.user))

    @extend_schema(
        summary="Suspend an active tenant (system admins)", request=TenantSuspendSerializer
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        tenant = self.get_object()
        serializer = TenantSuspendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_suspend(
            tenant=tenant, reason=serializer.validated_data["reason"], by=request.user
        )
        return self._out(tenant)

    @extend_schema(summary="Reactivate a suspended tenant (system admins)", request=None)
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str | None = None) -> Response:
        return self._out(services.tenant_reactivate(tenant=self.get_object(), by=request.user))
