"""REST API of the notification inbox: list, unread count, mark read, mark all read.

The same functions as the /notifications/ page (notifications.inbox); each user sees only the
events meant for them, whatever ids they send.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ErrorSerializer, StrictSerializer
from notifications import inbox
from notifications.events.catalog import CATEGORIES, iso
from notifications.models import StoredEvent


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField(source="name")
    category = serializers.CharField()
    level = serializers.CharField()
    title = serializers.CharField()
    message = serializers.CharField()
    data = serializers.JSONField()
    occurred_at = serializers.SerializerMethodField()
    read = serializers.SerializerMethodField()

    def get_occurred_at(self, event: StoredEvent) -> str:
        return iso(event.occurred_at)

    def get_read(self, event: StoredEvent) -> bool:
        return event.id in self.context.get("read_ids", set())


class UnreadSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


MAX_ID = 2**63 - 1  # a BigAutoField id; larger ones would overflow the database driver


class IdListField(serializers.ListField):
    """A list of 1–500 positive integer ids; one flat error message (the API's error shape)."""

    child = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    def to_internal_value(self, data: Any) -> list[int]:
        if (
            not isinstance(data, list)
            or not 1 <= len(data) <= 500
            or not all(
                isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in data
            )
        ):
            raise serializers.ValidationError("A list of 1 to 500 notification ids is required.")
        return data


class MarkReadSerializer(StrictSerializer):
    ids = IdListField()


class ListQuerySerializer(StrictSerializer):
    ignored_fields = frozenset({"page", "page_size"})
    category = serializers.ChoiceField(choices=CATEGORIES, required=False)


class NotificationViewSet(viewsets.GenericViewSet):
    """The signed-in user's inbox."""

    serializer_class = NotificationSerializer

    def get_queryset(self) -> Any:
        return inbox.visible_events(self.request.user)

    @extend_schema(
        summary="My notifications, newest first (filter: category)",
        parameters=[OpenApiParameter("category", str, enum=list(CATEGORIES))],
    )
    def list(self, request: Request) -> Response:
        query = ListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = inbox.visible_events(request.user, category=query.validated_data.get("category"))
        page = self.paginate_queryset(events)
        context = {"read_ids": inbox.read_ids(request.user, page)}
        return self.get_paginated_response(
            NotificationSerializer(page, many=True, context=context).data
        )

    @extend_schema(summary="How many of my notifications are unread", responses=UnreadSerializer)
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request: Request) -> Response:
        return Response({"unread": inbox.unread_count(request.user)})

    @extend_schema(
        summary="Mark notifications read (syncs all my tabs)",
        request=MarkReadSerializer,
        responses={
            200: UnreadSerializer,
            404: OpenApiResponse(
                ErrorSerializer, description="An id is not among your notifications."
            ),
        },
    )
    @action(detail=False, methods=["post"], url_path="read")
    def mark_read(self, request: Request) -> Response:
        body = MarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        unread = inbox.mark_read(user=request.user, event_ids=body.validated_data["ids"])
        return Response({"unread": unread})

    @extend_schema(
        summary="Mark all my notifications read (syncs all my tabs)",
        request=None,
        responses=UnreadSerializer,
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def mark_all_read(self, request: Request) -> Response:
        return Response({"unread": inbox.mark_all_read(user=request.user)})
