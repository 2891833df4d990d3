"""Forms for packages and hotspot users."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import BootstrapFormMixin

from .models import Package


class PackageForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    price = forms.DecimalField(label=_("Price"), max_digits=10, decimal_places=2, min_value=0)
    duration_minutes = forms.IntegerField(label=_("Duration (minutes)"), min_value=1)
    data_limit_mb = forms.IntegerField(
        label=_("Data limit (MB)"),
        min_value=1,
        required=False,
        help_text=_("Empty means unlimited."),
    )
    speed_limit = forms.CharField(
        label=_("Speed limit"),
        max_length=32,
        required=False,
        help_text=_("Router rate limit, e.g. 5M/2M (rx/tx)."),
    )
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)


class HotspotUserForm(BootstrapFormMixin, forms.Form):
    package = forms.ModelChoiceField(
        label=_("Package"), queryset=Package.objects.none(), empty_label=None
    )
    phone = forms.CharField(
        label=_("Phone"),
        max_length=20,
        required=False,
        help_text=_("The customer's phone, e.g. 254712345678."),
    )
    username = forms.CharField(
        label=_("Username"),
        max_length=64,
        required=False,
        help_text=_("Generated if left empty."),
    )
    cash = forms.BooleanField(
        label=_("Paid in cash at the counter (records the payment)"), required=False, initial=True
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = Package.objects.for_user(user).filter(is_active=True)


class RouterForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    address = forms.GenericIPAddressField(
        label=_("Address"), help_text=_("The IP address the router's RADIUS requests come from.")
    )
    secret = forms.CharField(
        label=_("Secret"),
        max_length=128,
        help_text=_("RADIUS shared secret, the same as on the router."),
    )
    coa_port = forms.IntegerField(
        label=_("CoA port"),
        min_value=1,
        max_value=65535,
        initial=3799,
        help_text=_("Where the router accepts Disconnect-Requests (MikroTik: 3799)."),
    )
