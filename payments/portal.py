"""The captive portal: /portal/<slug>/ (buy), /portal/<slug>/pay/<token>/ (follow), status JSON.

Public pages for the tenant's customers on phones. The router's hand-off parameters
(link-login-only, link-orig, mac, ip, chap-id, chap-challenge) are validated and carried through
the whole flow, so the pay page can sign the device in when the payment completes.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from config.clientip import client_ip
from config.errors import DomainError
from hotspot.models import Package
from tenants.models import Tenant

from . import selectors, services

HANDOFF_KEYS = ("link-login-only", "link-orig", "mac", "ip", "chap-id", "chap-challenge")
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2}){1,64}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def clean_handoff(params: Any) -> dict[str, str]:
    """The router's parameters that are well-formed; anything else is dropped."""
    out: dict[str, str] = {}
    for key in HANDOFF_KEYS:
        value = str(params.get(key, "") or "").strip()
        if not value or len(value) > 1000 or CONTROL_RE.search(value):
            continue  # a NUL reached PostgreSQL's JSON column (a 500); CR/LF has no place here
        if key in ("link-login-only", "link-orig"):
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                continue
        elif key == "mac":
            if not MAC_RE.match(value):
                continue
        elif key == "ip":
            try:
                ipaddress.ip_address(value)
            except ValueError:
                continue
        elif not HEX_RE.match(value):  # chap-id / chap-challenge, hex (deploy/mikrotik/login.html)
            continue
        out[key] = value
    return out


def duration_words(minutes: int) -> str:
    """ "1 hour", "2 days"... in the active language (customers read it on the portal)."""
    units = (
        (10080, lambda n: ngettext("{n} week", "{n} weeks", n)),
        (1440, lambda n: ngettext("{n} day", "{n} days", n)),
        (60, lambda n: ngettext("{n} hour", "{n} hours", n)),
    )
    for size, words in units:
        if minutes >= size and minutes % size == 0:
            n = minutes // size
            return words(n).format(n=n)
    if minutes > 60:
        return _("{hours} h {minutes} min").format(hours=minutes // 60, minutes=minutes % 60)
    return ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)


def data_words(mb: int | None) -> str:
    if mb is None:
        return _("Unlimited data")
    if mb >= 1024 and mb % 1024 == 0:
        return f"{mb // 1024} GB"
    return f"{mb} MB"


class BuyForm(forms.Form):
    package = forms.TypedChoiceField(
        coerce=int, error_messages={"required": gettext_lazy("Choose a package.")}
    )
    phone = forms.CharField(
        max_length=20,
        error_messages={"required": gettext_lazy("Enter your M-Pesa phone number.")},
    )

    def __init__(self, *args: Any, packages: list[Package], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["package"].choices = [(p.pk, p.name) for p in packages]
        self.fields["package"].error_messages["invalid_choice"] = _("Choose one of the packages.")

    def clean_phone(self) -> str:
        try:
            return services.normalize_mpesa_phone(self.cleaned_data["phone"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


def _unavailable(request: HttpRequest, tenant: Tenant | None, reason: str, status: int):
    return render(
        request,
        "payments/portal_unavailable.html",
        {"tenant": tenant, "reason": reason},
        status=status,
    )


def _portal_tenant(slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def _limits_text() -> str:
    minutes = max(settings.PORTAL_STK_LIMIT_WINDOW_SECONDS // 60, 1)
    return _(
        "To protect your phone, we send at most {count} M-Pesa prompts to one number every "
        "{minutes} minutes."
    ).format(count=settings.PORTAL_STK_LIMIT_PER_PHONE, minutes=minutes)


def open_portal(request: HttpRequest, slug: str):
    """(tenant, active packages, None), or a refusal page (unknown, closed, nothing on sale)."""
    tenant = _portal_tenant(slug)
    if tenant is None:
        return (
            None,
            None,
            _unavailable(request, None, _("There is no hotspot at this address."), 404),
        )
    if tenant.status != Tenant.Status.ACTIVE:
        reason = (
            _("{name} is not open for business yet.").format(name=tenant.name)
            if tenant.status == Tenant.Status.PENDING
            else _("{name} is not selling WiFi access right now.").format(name=tenant.name)
        )
        return tenant, None, _unavailable(request, tenant, reason, 503)
    packages = list(Package.objects.filter(tenant=tenant, is_active=True).order_by("price", "name"))
    if not packages:
        return (
            tenant,
            None,
            _unavailable(
                request,
                tenant,
                _("{name} has no package on sale right now.").format(name=tenant.name),
                503,
            ),
        )
    return tenant, packages, None


class PortalView(View):
    """GET: the tenant's packages and the buy form. POST: start the STK push."""

    def _context(self, tenant: Tenant, packages: list[Package], form: BuyForm, handoff: dict):
        rows = [
            {
                "package": p,
                "duration": duration_words(p.duration_minutes),
                "data": data_words(p.data_limit_mb),
            }
            for p in packages
        ]
        return {
            "tenant": tenant,
            "rows": rows,
            "form": form,
            "handoff": handoff,
            "limits": _limits_text(),
            "selected": str(form["package"].value() or ""),
        }

    def _open(self, slug: str):
        return open_portal(self.request, slug)

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        tenant, packages, refusal = self._open(slug)
        if refusal is not None:
            return refusal
        handoff = clean_handoff(request.GET)
        form = BuyForm(packages=packages)
        return render(
            request, "payments/portal.html", self._context(tenant, packages, form, handoff)
        )

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        tenant, packages, refusal = self._open(slug)
        if refusal is not None:
            return refusal
        handoff = clean_handoff(request.POST)
        form = BuyForm(request.POST, packages=packages)
        status = 400
        if form.is_valid():
            package = next(p for p in packages if p.pk == form.cleaned_data["package"])
            try:
                payment = services.payment_start_stk(
                    tenant=tenant,
                    package=package,
                    phone=form.cleaned_data["phone"],
                    client_ip=client_ip(request),
                    handoff=handoff,
                    public_url=request.build_absolute_uri("/").rstrip("/"),
                )
            except ValidationError as exc:
                for field, errors in getattr(exc, "error_dict", {None: exc.error_list}).items():
                    form.add_error(field if field in form.fields else None, errors)
            except services.RateLimited as exc:
                form.add_error(None, exc.message)
                status = 429
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("payments:portal_pay", slug=tenant.slug, token=payment.token)
        return render(
            request,
            "payments/portal.html",
            self._context(tenant, packages, form, handoff),
            status=status,
        )


@never_cache
def _render_pay(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The pay page; its sign-in form posts to the router's login URL (link-login-only), so
    that origin is added to the page's CSP form-action (otherwise 'self' only)."""
    credentials = context["state"].get("credentials")
    if credentials:  # shown before (or without) portal.js: in the hotspot's zone, not in UTC
        expires = datetime.fromisoformat(credentials["expires_at"])
        local = timezone.localtime(expires, context["tenant"].tzinfo)
        context = {**context, "expires_shown": f"{local:%Y-%m-%d %H:%M}"}
    response = render(request, "payments/portal_pay.html", context)
    login = context["handoff"].get("link-login-only")
    if login:  # validated by clean_handoff; only its origin (no user info) joins the policy
        parts = urlsplit(login)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 literal
        origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        response._csp_update = {"form-action": [origin]}  # django-csp's per-response update
    return response


@require_GET
def pay_page(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    payment = selectors.payment_for_token(token)
    if payment is None or payment.tenant.slug != slug:
        return _unavailable(
            request, _portal_tenant(slug), _("This payment link is unknown or has expired."), 404
        )
    state = selectors.payment_public_state(payment=payment)
    handoff = clean_handoff(payment.handoff or {})
    return _render_pay(
        request,
        {
            "tenant": payment.tenant,
            "payment": payment,
            "state": state,
            "handoff": handoff,
            "retry_url": f"/portal/{payment.tenant.slug}/"
            + (f"?{urlencode(handoff)}" if handoff else ""),
        },
    )


@never_cache
@require_GET
def status_json(request: HttpRequest, token: str) -> JsonResponse:
    """The pay page's fallback when its socket is blocked: the same dict as the socket frame."""
    payment = selectors.payment_for_token(token)
    if payment is None:
        return JsonResponse(
            {"error": {"code": "not_found", "message": "Unknown or expired payment link."}},
            status=404,
        )
    return JsonResponse(selectors.payment_public_state(payment=payment))


class VoucherForm(forms.Form):
    code = forms.CharField(
        max_length=40, error_messages={"required": gettext_lazy("Enter the voucher code.")}
    )


@require_POST
def redeem(request: HttpRequest, slug: str) -> HttpResponse:
    """form#voucher-form: redeem a code → the credentials page (or the portal with the error)."""
    from .vouchers import VoucherGuessing, VoucherRefused, voucher_redeem

    tenant, packages, refusal = open_portal(request, slug)
    if refusal is not None:
        return refusal
    handoff = clean_handoff(request.POST)
    voucher_form = VoucherForm(request.POST)
    status = 400
    if voucher_form.is_valid():
        try:
            voucher = voucher_redeem(
                tenant=tenant,
                code=voucher_form.cleaned_data["code"],
                client_ip=client_ip(request),
                handoff=handoff,
            )
        except VoucherGuessing as exc:
            voucher_form.add_error("code", exc.message)
            status = 429
        except (VoucherRefused, DomainError) as exc:
            voucher_form.add_error("code", exc.message)
        except ValidationError as exc:
            voucher_form.add_error("code", " ".join(exc.messages))
        else:
            return redirect("payments:portal_voucher", slug=tenant.slug, token=voucher.token)
    view = PortalView()
    view.request = request
    context = view._context(tenant, packages, BuyForm(packages=packages), handoff)
    return render(
        request, "payments/portal.html", {**context, "voucher_form": voucher_form}, status=status
    )


@never_cache
@require_GET
def voucher_page(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """The credentials a redeemed voucher gave; signs the device in like a paid purchase."""
    from .models import Voucher

    voucher = (
        Voucher.objects.select_related("tenant", "package", "hotspot_user")
        .filter(token=token if isinstance(token, str) else "", tenant__slug=slug)
        .exclude(hotspot_user=None)
        .first()
    )
    if voucher is None or len(token) < 20:
        return _unavailable(request, _portal_tenant(slug), _("This link is unknown."), 404)
    user = voucher.hotspot_user
    state = {
        "type": "payment",
        "state": "completed",
        "message": _("Voucher accepted — you are online"),
        "reason": "",
        "package": voucher.package.name,
        "amount": str(voucher.package.price),
        "currency": voucher.package.currency,
        "phone": "",
        "credentials": {
            "username": user.username,
            "password": user.password,
            "expires_at": user.expires_at.isoformat(),
        },
    }
    handoff = clean_handoff(voucher.handoff or {})
    return _render_pay(
        request,
        {
            "tenant": voucher.tenant,
            "state": state,
            "handoff": handoff,
            "token": "",
            "voucher": voucher,
        },
    )
