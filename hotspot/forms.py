"""Forms for packages and hotspot users."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.forms import BootstrapFormMixin

from .models import Package


class PackageForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(max_length=80)
    price = forms.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    duration_minutes = forms.IntegerField(label="Duration (minutes)", min_value=1)
    data_limit_mb = forms.IntegerField(
        label="Data limit (MB)", min_value=1, required=False, help_text="Empty means unlimited."
    )
    speed_limit = forms.CharField(
        max_length=32, required=False, help_text="Router rate limit, e.g. 5M/2M (rx/tx)."
    )
    is_active = forms.BooleanField(label="On sale", required=False, initial=True)


class HotspotUserForm(BootstrapFormMixin, forms.Form):
    package = forms.ModelChoiceField(queryset=Package.objects.none(), empty_label=None)
    phone = forms.CharField(
        max_length=20, required=False, help_text="The customer's phone, e.g. 254712345678."
    )
    username = forms.CharField(max_length=64, required=False, help_text="Generated if left empty.")
    cash = forms.BooleanField(
        label="Paid in cash at the counter (records the payment)", required=False, initial=True
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = Package.objects.for_user(user).filter(is_active=True)


class RouterForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(max_length=80)
    address = forms.GenericIPAddressField(
        help_text="The IP address the router's RADIUS requests come from."
    )
    secret = forms.CharField(
        max_length=128, help_text="RADIUS shared secret, the same as on the router."
    )
    coa_port = forms.IntegerField(
        label="CoA port",
        min_value=1,
        max_value=65535,
        initial=3799,
        help_text="Where the router accepts Disconnect-Requests (MikroTik: 3799).",
    )
