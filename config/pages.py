"""Helpers every server-rendered list page shares: one page size, one way to page."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PAGE_SIZE = 25


def paginate(request: HttpRequest, rows: Any, per_page: int = PAGE_SIZE) -> Page:
    """The `?page=` page of `rows` (a bad or too high number gives the nearest real page)."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))
