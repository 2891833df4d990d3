"""The tenant admin's M-Pesa (Daraja) form on /settings/: secrets are write-only."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import BootstrapFormMixin

from .models import DarajaCredentials

SECRET_HELP = _("Stored encrypted and never shown again; leave blank to keep the current one.")


class DarajaCredentialsForm(BootstrapFormMixin, forms.Form):
    prefix = "mpesa"
    shortcode = forms.CharField(max_length=10, label=_("Business shortcode"))
    account_type = forms.ChoiceField(
        label=_("Account type"), choices=DarajaCredentials.AccountType.choices
    )
    till_number = forms.CharField(max_length=10, required=False, label=_("Till number"))
    passkey = forms.CharField(required=False, widget=forms.PasswordInput, label=_("Passkey"))
    consumer_key = forms.CharField(
        required=False, widget=forms.PasswordInput, label=_("Consumer key")
    )
    consumer_secret = forms.CharField(
        required=False, widget=forms.PasswordInput, label=_("Consumer secret")
    )

    def __init__(self, *args, stored: DarajaCredentials | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from .crypto import mask_secret

        for name in ("passkey", "consumer_key", "consumer_secret"):
            current = mask_secret(getattr(stored, name)) if stored else ""
            self.fields[name].help_text = (
                _("Stored: {current}. {help}").format(current=current, help=SECRET_HELP)
                if current
                else _("Required.")
            )
