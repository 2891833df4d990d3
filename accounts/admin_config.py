"""The Django admin app config pointing at the platform's admin site (system admins only).

Kept apart from accounts/apps.py (one AppConfig per module) and free of model imports, since
INSTALLED_APPS imports it before the app registry is ready.
"""

from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.PlatformAdminSite"
