"""Admin plumbing shared by every domain app's admin: changes go through the services.

- ServiceFormMixin: an admin ModelForm whose validation ends by calling the domain service, so
  the service's refusals show as form errors and its signals fire (the admin's change view wraps
  form validation and saving in one transaction, so events still wait for the commit).
- ReadOnlyAdminMixin: a model that is only looked at in the admin (rows made by the code).
- run_for_each / ask_reason_then: admin actions that call a service per selected object, with a
  success message and one error message per refused object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.http import HttpRequest
from django.template.response import TemplateResponse

from config.errors import DomainError


class ServiceFormMixin:
    """Mix into a ModelForm; `run_service()` performs the change and returns the saved object."""

    acting_user: Any = None  # set per request by ServiceAdminMixin.get_form
    #: service error field → form field, for names that differ (e.g. password → password1)
    service_field_names: dict[str, str] = {}

    def run_service(self) -> models.Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self._errors:  # type: ignore[attr-defined]
            return
        try:
            self.instance = self.run_service()
        except ValidationError as exc:
            self.add_service_errors(exc)
        except DomainError as exc:
            self.add_error(None, exc.message)  # type: ignore[attr-defined]

    def add_service_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)  # type: ignore[attr-defined]
            return
        for field, errors in exc.message_dict.items():
            name = self.service_field_names.get(field, field)
            if name in self.fields and name != NON_FIELD_ERRORS:  # type: ignore[attr-defined]
                self.add_error(name, errors)  # type: ignore[attr-defined]
            else:
                label = "" if field == NON_FIELD_ERRORS else f"{field.replace('_', ' ')}: "
                self.add_error(None, [f"{label}{e}" for e in errors])  # type: ignore[attr-defined]


class ServiceAdminMixin:
    """ModelAdmin side: hands the acting user to the form; the service has already saved."""

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> type[forms.Form]:
        form = super().get_form(request, obj, **kwargs)  # type: ignore[misc]
        form.acting_user = request.user  # a fresh class per call (modelform_factory)
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Nothing left to do: the form ran the service (create/update) when it validated."""


class ReadOnlyAdminMixin:
    """ModelAdmin side: no add or change (the code makes these rows); `deletable = False`: no
    delete either."""

    deletable = True

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)  # type: ignore[misc]


def run_for_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: models.QuerySet,
    call: Callable[[Any], Any],
    done: str,
) -> int:
    """Call `call(obj)` for each object; a success message, one error per refused object."""
    succeeded = []
    for obj in queryset:
        try:
            call(obj)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{obj}: {' '.join(exc.messages)}", messages.ERROR)
        except DomainError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
        else:
            succeeded.append(str(obj))
    if succeeded:
        modeladmin.message_user(
            request, f"{done} {len(succeeded)}: {', '.join(succeeded)}.", messages.SUCCESS
        )
    return len(succeeded)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Shown to the people affected.",
        error_messages={"required": "Give a reason."},
    )


def ask_reason_then(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: models.QuerySet,
    *,
    action: str,
    title: str,
    call: Callable[[Any, str], Any],
    done: str,
) -> TemplateResponse | None:
    """First show a page asking for the reason; on its submit, run the service for each object."""
    if "apply" in request.POST:
        form = ReasonForm(request.POST)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            run_for_each(modeladmin, request, queryset, lambda obj: call(obj, reason), done)
            return None  # back to the change list, with the messages
    else:
        form = ReasonForm()
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "objects": list(queryset),
        "action": action,
        "opts": opts,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/reason_action.html", context)
