"""Account pages (sign-in, profile, password) and tenant user management.

Also home of the small access mixins every page uses, so the rules live in one place:
signed in, allowed to sign in *now* (login_block_reason), and the right role.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as Http403
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import get_language_from_request
from django.utils.translation import gettext as _
from django.views import View

from config.errors import DomainError, NotFound
from config.errors import PermissionDenied as DomainPermissionDenied
from config.pages import live_row, paginate

from . import selectors, services
from .forms import (
    LoginForm,
    OwnProfileForm,
    PasswordChangeForm,
    SuspendForm,
    UserCreateForm,
    UserEditForm,
)
from .models import User

# ---------------------------------------------------------------- access mixins


class PortalMixin(LoginRequiredMixin):
    """Signed in and still allowed in: a user blocked since sign-in is signed out, told why."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            reason = services.login_block_reason(user)
            if reason:
                logout(request)
                messages.error(request, reason)
                return redirect_to_login(request.get_full_path())
        try:
            return super().dispatch(request, *args, **kwargs)
        except DomainPermissionDenied as exc:
            raise Http403(str(exc)) from exc
        except NotFound as exc:  # another tenant's rows do not exist for this user
            raise Http404(str(exc)) from exc


class TenantMemberMixin(PortalMixin):
    """Pages of one tenant: its admins and staff (system admins use the system pages)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and request.user.is_system_admin:
            raise Http403(_("This page is for a tenant's own admins and staff."))
        return super().dispatch(request, *args, **kwargs)

    @property
    def tenant(self):
        return self.request.user.tenant


class SystemAdminMixin(PortalMixin):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not request.user.is_system_admin:
            raise Http403(_("This page is for system admins."))
        return super().dispatch(request, *args, **kwargs)


def refuse_with_message(request: HttpRequest, exc: DomainError, to: str) -> HttpResponse:
    """A refused transition (e.g. already suspended): say why, change nothing, go back."""
    messages.error(request, str(exc))
    return redirect(to)


# ---------------------------------------------------------------- sign-in, profile, password


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's LogoutView refuses GET)."""


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The link in the "account created" email: choose a password with a one-time token.

    Django's view checks the token; the new password goes through the service, so it is
    validated and announced (password_changed) like every other change of password.
    """

    template_name = "accounts/set_password.html"
    post_reset_login = False

    def form_valid(self, form: Any) -> HttpResponse:
        try:
            services.user_change_password(
                user=self.user, new_password=form.cleaned_data["new_password1"], by=self.user
            )
        except ValidationError as exc:
            for message in exc.message_dict.get("new_password", exc.messages):
                form.add_error("new_password2", message)
            return self.form_invalid(form)
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        messages.success(self.request, _("Your password is set. Sign in with it now."))
        return redirect("accounts:login")


class PasswordChangeView(PortalMixin, View):
    template_name = "accounts/password_change.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": PasswordChangeForm(user=request.user)})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = PasswordChangeForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                user = services.user_change_password(
                    user=request.user,
                    new_password=form.cleaned_data["new_password"],
                    by=request.user,
                )
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                update_session_auth_hash(request, user)
                messages.success(request, _("Your password has been changed."))
                return redirect("accounts:profile")
        return render(request, self.template_name, {"form": form}, status=400)


class ProfileView(PortalMixin, View):
    template_name = "accounts/profile.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        initial = {f: getattr(request.user, f) for f in services.PROFILE_FIELDS}
        initial["language"] = request.user.language
        return render(request, self.template_name, {"form": OwnProfileForm(initial=initial)})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = OwnProfileForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            language = data.pop("language", "")
            try:
                with transaction.atomic():
                    services.user_update(user=request.user, data=data, by=request.user)
                    services.user_set_language(user=request.user, language=language)
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                # The saved message already speaks the chosen language.
                translation.activate(language or get_language_from_request(request))
                messages.success(request, _("Your profile has been saved."))
                return redirect("accounts:profile")
        return render(request, self.template_name, {"form": form}, status=400)


# ---------------------------------------------------------------- tenant users


class UserManagementMixin(TenantMemberMixin):
    """Admins and staff see the tenant's users; only those who may manage them change them."""

    write = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (
            self.write
            and request.user.is_authenticated
            and not request.user.is_system_admin
            and not services.can_manage_users(request.user, request.user.tenant_id)
        ):
            raise Http403(_("Only the tenant's admins can change its users."))
        return super().dispatch(request, *args, **kwargs)

    def get_target(self, pk: int) -> User:
        return selectors.user_get(user=self.request.user, user_id=pk)


class UserListView(UserManagementMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        query = (request.GET.get("q") or "").strip()[:100]
        users = selectors.user_list(user=request.user, search=query).exclude(
            role=User.Role.SYSTEM_ADMIN
        )
        extra = {"can_manage": services.can_manage_users(request.user, request.user.tenant_id)}
        if (row := live_row(request, users, "accounts/_user_row.html", extra)) is not None:
            return row
        page = paginate(request, users)
        return render(
            request,
            "accounts/user_list.html",
            {
                "page": page,
                "users": page.object_list,
                "q": query,
                **extra,
                "suspend_form": SuspendForm(),
            },
        )


class UserCreateView(UserManagementMixin, View):
    write = True
    template_name = "accounts/user_form.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = UserCreateForm(initial={"role": User.Role.STAFF})
        return render(request, self.template_name, {"form": form, "creating": True})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = UserCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = services.user_create(
                    username=data["username"],
                    password=data["password"],
                    role=data["role"],
                    tenant=self.tenant,
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    phone=data["phone"],
                    by=request.user,
                )
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(
                    request, _("{name} has been added.").format(name=user.display_name)
                )
                return redirect("accounts:user_list")
        return render(request, self.template_name, {"form": form, "creating": True}, status=400)


class UserEditView(UserManagementMixin, View):
    write = True
    template_name = "accounts/user_form.html"

    def context(self, form: UserEditForm, target: User) -> dict[str, Any]:
        # The page announces the record on its socket ("view") so others editing it are named:
        # the template's `view_record` tag (notifications' presence tags) decides who may.
        return {"form": form, "target": target}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self.get_target(pk)
        initial = {f: getattr(target, f) for f in services.UPDATABLE_FIELDS}
        return render(
            request, self.template_name, self.context(UserEditForm(initial=initial), target)
        )

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self.get_target(pk)
        form = UserEditForm(request.POST)
        if form.is_valid():
            try:
                services.user_update(user=target, data=form.cleaned_data, by=request.user)
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, _("{name} has been saved.").format(name=target.username))
                return redirect("accounts:user_list")
        return render(request, self.template_name, self.context(form, target), status=400)


class UserSuspendView(UserManagementMixin, View):
    write = True

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self.get_target(pk)
        form = SuspendForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Give a reason to suspend an account."))
            return redirect("accounts:user_list")
        try:
            services.user_suspend(user=target, reason=form.cleaned_data["reason"], by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except DomainPermissionDenied:
            raise
        except DomainError as exc:
            return refuse_with_message(request, exc, reverse("accounts:user_list"))
        else:
            messages.success(request, _("{name} has been suspended.").format(name=target.username))
        return redirect("accounts:user_list")


class UserActivateView(UserManagementMixin, View):
    write = True

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self.get_target(pk)
        try:
            services.user_activate(user=target, by=request.user)
        except DomainPermissionDenied:
            raise
        except DomainError as exc:
            return refuse_with_message(request, exc, reverse("accounts:user_list"))
        messages.success(request, _("{name} has been activated.").format(name=target.username))
        return redirect("accounts:user_list")


class UserDeleteView(UserManagementMixin, View):
    write = True

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return render(request, "accounts/user_confirm_delete.html", {"target": self.get_target(pk)})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self.get_target(pk)
        name = target.username
        try:
            services.user_delete(user=target, by=request.user)
        except DomainPermissionDenied:
            raise
        except DomainError as exc:
            return refuse_with_message(request, exc, reverse("accounts:user_list"))
        messages.success(request, _("{name} has been deleted.").format(name=name))
        return redirect("accounts:user_list")
