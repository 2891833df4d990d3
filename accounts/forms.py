"""Forms of the account pages; they validate input, the services decide and change."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import User
from .services import login_block_reason


class BootstrapFormMixin:
    """Bootstrap classes on every widget, and `is-invalid` + aria on fields with errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
            widget.attrs.setdefault("aria-describedby", f"id_{name}_error")

    def add_error(self, field: str | None, error: Any) -> None:
        if field is not None and field not in self.fields:  # e.g. a service's model field
            field = None
        super().add_error(field, error)
        if field:
            attrs = self.fields[field].widget.attrs
            if "is-invalid" not in attrs.get("class", ""):
                attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
            attrs["aria-invalid"] = "true"

    def apply_service_error(self, exc: ValidationError, renames: dict[str, str] | None = None):
        """Put a service's ValidationError on the matching fields (or on the form)."""
        renames = renames or {}
        if hasattr(exc, "error_dict"):
            for name, errors in exc.error_dict.items():
                self.add_error(renames.get(name, name), errors)
        else:
            self.add_error(None, exc)


class SignInLockMixin:
    """Sign-in forms: a locked attempt (accounts.auth.SignInGuardBackend) says it is locked.

    The same words for a known or an unknown username, whatever the password: the lock is decided
    before the password is looked at. Otherwise Django's own "wrong username or password".
    """

    def get_invalid_login_error(self) -> ValidationError:
        lock = getattr(self.request, "sign_in_lock", None)
        if lock is not None:
            return ValidationError(lock.message, code="locked")
        return super().get_invalid_login_error()


class LoginForm(SignInLockMixin, BootstrapFormMixin, AuthenticationForm):
    """Django's sign-in form; blocked users are told why (accounts.services.login_block_reason)."""

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        reason = login_block_reason(user)
        if reason:
            raise ValidationError(reason, code="blocked")


class PasswordChangeForm(BootstrapFormMixin, forms.Form):
    old_password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password_confirm = forms.CharField(
        label=_("New password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_old_password(self) -> str:
        value = self.cleaned_data["old_password"]
        if not self.user.check_password(value):
            raise ValidationError(_("Your current password is not correct."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        new, again = data.get("new_password"), data.get("new_password_confirm")
        if new and again and new != again:
            self.add_error("new_password_confirm", _("The two new passwords do not match."))
        return data


class ProfileForm(BootstrapFormMixin, forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=20,
        required=False,
        help_text=_("Digits, with country code, e.g. 254712345678."),
    )


class OwnProfileForm(ProfileForm):
    """The person's own profile: also the language of their pages, toasts and emails."""

    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("As my browser says"))] + list(settings.LANGUAGES),
        help_text=_("Pages, notifications and emails are shown in this language."),
    )


TENANT_ROLES = [
    (User.Role.TENANT_ADMIN.value, User.Role.TENANT_ADMIN.label),
    (User.Role.STAFF.value, User.Role.STAFF.label),
]


class UserEditForm(ProfileForm):
    role = forms.ChoiceField(label=_("Role"), choices=TENANT_ROLES)


class UserCreateForm(UserEditForm):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not a common or all-digit password."),
    )
    field_order = ["username", "first_name", "last_name", "email", "phone", "role", "password"]


class SuspendForm(BootstrapFormMixin, forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": _("Why (shown to them)")}),
    )


class UserSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
