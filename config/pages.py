"""Helpers every server-rendered list page shares: one page size, one way to page."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

PAGE_SIZE = 25
TOTAL_HEADER = "X-List-Total"


def paginate(request: HttpRequest, rows: Any, per_page: int = PAGE_SIZE) -> Page:
    """The `?page=` page of `rows` (a bad or too high number gives the nearest real page)."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def live_row(
    request: HttpRequest, rows: Any, template: str, context: dict[str, Any]
) -> HttpResponse | None:
    """`?row=<id>` of a live list (`data-live-rows`, static/js/notifications.js): the one row's
    HTML when the page's own filter and permissions (`rows`) still show it, else 204 (the
    browser takes it off the page). None when the request is for the whole page.

    Either answer carries `X-List-Total`, the filtered list's count now, which the browser writes
    into the list's "1–25 of 312" (partials/pagination.html).

    `context` holds what the row partial needs besides the row itself, which it gets as `row`
    (and as `rows`, a list of one, for tags that read a whole page's rows at once).
    """
    raw = request.GET.get("row")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        return HttpResponseBadRequest("row must be a record id", content_type="text/plain")
    obj = rows.filter(pk=int(raw)).first()
    if obj is None:
        response = HttpResponse(status=204)
    else:
        response = render(request, template, {**context, "row": obj, "rows": [obj]})
    # How many rows the page's filter shows now: the count under the list follows its rows.
    response[TOTAL_HEADER] = str(rows.count())
    response["Cache-Control"] = "no-store"
    return response
