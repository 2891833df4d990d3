from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project package as an app: only so its own table (the periodic lease) is migrated."""

    name = "config"
    verbose_name = "Project"
