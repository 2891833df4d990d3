"""Forms of the tenant pages: public registration, settings, and the system admin's actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import BootstrapFormMixin
from config.money import CURRENCY_CHOICES, time_zone_choices


class RegistrationForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Business name"), max_length=120)
    slug = forms.SlugField(
        label=_("Short name"),
        max_length=60,
        required=False,
        help_text=_("Letters, digits and dashes; made from the business name if left empty."),
    )
    contact_email = forms.EmailField(label=_("Contact email"))
    contact_phone = forms.CharField(
        label=_("Contact phone"), max_length=20, required=False, help_text=_("e.g. 254712345678")
    )
    admin_first_name = forms.CharField(label=_("Your first name"), max_length=150, required=False)
    admin_last_name = forms.CharField(label=_("Your last name"), max_length=150, required=False)
    admin_username = forms.CharField(label=_("Your username"), max_length=150)
    admin_password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not a common or all-digit password."),
    )
    admin_password_confirm = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        pw, again = data.get("admin_password"), data.get("admin_password_confirm")
        if pw and again and pw != again:
            self.add_error("admin_password_confirm", _("The two passwords do not match."))
        return data


class TenantSettingsForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Business name"), max_length=120)
    contact_email = forms.EmailField(label=_("Contact email"))
    contact_phone = forms.CharField(label=_("Contact phone"), max_length=20, required=False)
    # Not sent (an older form, an API-like post): left as they are.
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        required=False,
        choices=time_zone_choices,
        help_text=_("Times on your pages, toasts, emails and reports (where a day starts)."),
    )
    currency = forms.ChoiceField(
        label=_("Currency"),
        required=False,
        choices=CURRENCY_CHOICES,
        help_text=_("Your packages' prices are in it; payments already made keep theirs."),
    )


class TenantSuspendForm(BootstrapFormMixin, forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500)
