"""/reports/ (tenant admins) and /system/reports/ (system admins): HTML, JSON and CSV.

One report, three renderings: the page (charts fed by json_script), `?format=json` (what the
page re-fetches when a payment completes) and `?format=csv&table=…` (each table, for Excel).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied as Http403
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views import View

from accounts.forms import BootstrapFormMixin
from accounts.views import PortalMixin, SystemAdminMixin
from config.money import format_money
from tenants.models import Tenant

from . import reports
from .reports import METHODS, ReportRange, Row

MAX_DAYS = 366
# Reports cover these dates only: at datetime's own ends, the zone's offset and the day after
# the end overflow (a 500); no payment of this platform lies outside them.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
FORMATS = ("html", "json", "csv")

# table → (title, first column(s) heading(s), how a row's key is written); the words are
# translated when a table is written (page, JSON and CSV in the reader's language)
TABLES: dict[str, tuple[str, list[str], Any]] = {
    "day": (gettext_noop("Revenue by day"), [gettext_noop("Date")], lambda k: [k[0].isoformat()]),
    "week": (
        gettext_noop("Revenue by week"),
        [gettext_noop("Week starting (Monday)")],
        lambda k: [k[0].isoformat()],
    ),
    "month": (
        gettext_noop("Revenue by month"),
        [gettext_noop("Month")],
        lambda k: [k[0].strftime("%Y-%m")],
    ),
    "method": (
        gettext_noop("Revenue by payment method"),
        [gettext_noop("Method")],
        lambda k: [_(METHODS[k[0]])],
    ),
    "package": (
        gettext_noop("Revenue by package"),
        [gettext_noop("Package"), gettext_noop("Tenant")],
        lambda k: [k[1], k[2]],
    ),
    "tenant": (gettext_noop("Revenue by tenant"), [gettext_noop("Tenant")], lambda k: [k[1]]),
}


class ReportForm(BootstrapFormMixin, forms.Form):
    """The date range (local calendar dates, both included) and, for system admins, a tenant."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), required=False, empty_label=gettext_lazy("Whole platform")
    )

    def __init__(self, *args: Any, system: bool = False, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if system:
            self.fields["tenant"].queryset = Tenant.objects.order_by("name")
        else:
            del self.fields["tenant"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        for given in (data.get("start"), data.get("end")):
            if given is not None and not FIRST_DAY <= given <= LAST_DAY:
                raise forms.ValidationError(
                    _("Choose dates between %(first)s and %(last)s.")
                    % {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()}
                )
        tz = reports.report_timezone(user=self.user, tenant=data.get("tenant"))
        today = timezone.localtime(timezone.now(), tz).date()
        end = data.get("end") or (
            data["start"] + timedelta(days=29) if data.get("start") else today
        )
        start = data.get("start") or end - timedelta(days=29)
        if start > end:
            raise forms.ValidationError(_("The start date must be on or before the end date."))
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(
                _("A report covers at most %(days)s days.") % {"days": MAX_DAYS}
            )
        data["range"] = ReportRange(start=start, end=end, tz=tz)
        return data


def _cells(name: str, row: Row) -> list[str]:
    return [*TABLES[name][2](row.key), str(row.sales), f"{row.revenue:.2f}", row.currency]


def report_tables(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each table as headings, rows of text cells and per-currency totals (page, JSON, CSV)."""
    out = {}
    for name, (title, heads, _key) in TABLES.items():
        if name not in report:
            continue
        rows: list[Row] = report[name]
        blank = [""] * (len(heads) - 1)
        out[name] = {
            "title": _(title),
            "columns": [*(_(h) for h in heads), _("Sales"), _("Revenue"), _("Currency")],
            "rows": [_cells(name, r) for r in rows],
            "totals": [
                [_("Total"), *blank, str(n), f"{amount:.2f}", currency]
                for currency, (n, amount) in reports.tally(rows).items()
            ],
        }
    return out


def report_json(report: dict[str, Any], rng: ReportRange) -> dict[str, Any]:
    return {
        "start": rng.start.isoformat(),
        "end": rng.end.isoformat(),
        "timezone": str(rng.tz),
        "totals": [
            {
                "currency": cur,
                "sales": t["sales"],
                "revenue": f"{t['revenue']:.2f}",
                "display": format_money(t["revenue"], cur),
            }
            for cur, t in report["totals"].items()
        ],
        "new_customers": report["new_customers"],
        "tables": report_tables(report),
    }


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")


def csv_cell(value: Any) -> str:
    """A cell Excel shows as text: package and tenant names are chosen by tenants, and one
    starting with = + - @ (or a tab/CR before them) would run as a formula on the reader's
    machine (OWASP "CSV injection"). Such text gets a leading quote; our numbers stay numbers."""
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not NUMBER_RE.match(text):
        return "'" + text
    return text


def csv_response(table: dict[str, Any], filename: str) -> HttpResponse:
    """UTF-8 with a BOM (Excel then reads it as UTF-8), CRLF lines, totals at the bottom."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in [table["columns"], *table["rows"], *table["totals"]]:
        writer.writerow([csv_cell(cell) for cell in row])
    response = HttpResponse(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _ReportView(PortalMixin, View):
    template_name = "payments/reports.html"
    system = False

    def get(self, request: HttpRequest) -> HttpResponse:
        fmt = request.GET.get("format", "html")
        form = ReportForm(request.GET or None, system=self.system, user=request.user)
        if fmt not in FORMATS:
            return self._bad(fmt, form, f"Unknown format {fmt[:20]!r}: use html, json or csv.")
        if request.GET and not form.is_valid():
            errors = [str(e) for errs in form.errors.values() for e in errs]
            return self._bad(fmt, form, " ".join(errors))
        if not request.GET:
            form = ReportForm({}, system=self.system, user=request.user)
            form.is_valid()
        rng: ReportRange = form.cleaned_data["range"]
        tenant = form.cleaned_data.get("tenant") if self.system else None
        report = reports.report_build(user=request.user, rng=rng, tenant=tenant)
        data = report_json(report, rng)
        if fmt == "json":
            return JsonResponse(data)
        if fmt == "csv":
            name = request.GET.get("table", "day")
            if name not in data["tables"]:
                choices = ", ".join(data["tables"])
                return self._bad(fmt, form, f"Unknown table {name[:20]!r}: use one of {choices}.")
            scope = f"-{tenant.slug}" if tenant else ("-platform" if self.system else "")
            filename = f"report{scope}-{name}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv"
            return csv_response(data["tables"][name], filename)
        query = request.GET.copy()
        query.pop("format", None)
        query.pop("table", None)
        query["start"], query["end"] = data["start"], data["end"]
        return render(
            request,
            self.template_name,
            {
                "form": form,
                "data": data,
                "query": query.urlencode(),
                "system": self.system,
                "tenant": tenant,
                "page_url": request.path,
            },
        )

    def _bad(self, fmt: str, form: ReportForm, message: str) -> HttpResponse:
        if fmt == "json":
            return JsonResponse({"error": message}, status=400)
        if fmt == "csv":
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        context = {"form": form, "data": None, "error": message, "system": self.system}
        return render(self.request, self.template_name, context, status=400)


class ReportView(_ReportView):
    """A tenant's own report: its admins only (staff see the dashboard, not the revenue)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        # Here rather than in dispatch: PortalMixin has signed out a blocked user first.
        if request.user.is_system_admin:
            return redirect(reverse("payments:system_reports") + "?" + request.GET.urlencode())
        if not request.user.is_tenant_admin:
            raise Http403(_("Reports are for the tenant's admins."))
        return super().get(request)


class SystemReportView(SystemAdminMixin, _ReportView):
    """The platform's report, or one tenant's (`?tenant=<id>`)."""

    system = True
