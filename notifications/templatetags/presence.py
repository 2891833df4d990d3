"""`{% load presence %}`: presence on server-rendered pages (notifications/selectors.py)."""

from __future__ import annotations

from typing import Any

from django import template

from notifications import selectors

register = template.Library()


def _user(context: template.Context) -> Any:
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


@register.simple_tag(takes_context=True)
def online_now(context: template.Context) -> list[dict[str, Any]]:
    """`{% online_now as online %}`: who is online in the viewer's tenant (viewer included)."""
    return selectors.online_now(_user(context))


@register.simple_tag(takes_context=True)
def presence_channel(context: template.Context) -> str:
    """`{% presence_channel as channel %}`: the viewer's tenant presence channel."""
    return selectors.presence_channel(_user(context))


@register.simple_tag
def online_counts(objects: Any) -> dict[int, int]:
    """`{% online_counts tenants as online %}`: people online per tenant, one store call."""
    return selectors.online_counts(obj.pk for obj in objects)


@register.filter
def online_of(counts: dict[int, int], obj: Any) -> int:
    """`{{ online|online_of:tenant }}`: that tenant's count (0 if unknown)."""
    return counts.get(getattr(obj, "pk", obj), 0)


@register.simple_tag(takes_context=True)
def view_record(context: template.Context, kind: str, pk: Any) -> str | None:
    """`{% view_record "user" target.pk as view_record %}`: the record the page announces, or
    None when the viewer may not edit it (the socket checks again)."""
    if pk in (None, ""):
        return None
    return selectors.view_record(_user(context), kind, pk)
