"""Template tags available in every template (TEMPLATES' `builtins`): no `{% load %}` needed."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def page_url(context: dict[str, Any], number: int) -> str:
    """This page's URL with `page=number`, every other filter (status, q, …) kept."""
    query = context["request"].GET.copy()
    query["page"] = number
    return "?" + query.urlencode()


@register.filter
def role_label(value: str) -> str:
    """A role's label ("Tenant admin") for its stored value ("tenant_admin")."""
    from accounts.models import User

    return dict(User.Role.choices).get(value, value)


@register.simple_tag
def role_labels_json() -> str:
    """Every role's label by value, for scripts that render people (presence lists)."""
    from accounts.models import User

    return json.dumps({value: str(label) for value, label in User.Role.choices})


@register.filter
def record_url(event: Any, user: Any) -> str:
    """The page of the record a notification is about, for `user` ("" if none)."""
    from notifications.links import record_url as url_of

    return url_of(event, user)


@register.filter
def record_label(event: Any, user: Any) -> str:
    """The words of that link ("View payment")."""
    from notifications.links import record_label as label_of

    return label_of(event, user)


@register.filter
def money(amount: Any, currency: str) -> str:
    """`{{ payment.amount|money:payment.currency }}` → "NGN 1,500.00" (config.money)."""
    from config.money import format_money

    return format_money(amount, currency)


@register.simple_tag
def current_time_zone() -> str:
    """The active zone's name (the tenant's, tenants.middleware), for scripts' Intl formats."""
    from django.utils import timezone

    return timezone.get_current_timezone_name()
