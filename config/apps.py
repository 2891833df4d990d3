import os

from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project package as an app: its own table (the periodic lease) is migrated, and its
    ready() prepares the metrics' directory."""

    name = "config"
    verbose_name = "Project"

    def ready(self) -> None:
        """Create PROMETHEUS_MULTIPROC_DIR if missing.

        prometheus-client opens its files there as config.metrics declares the metrics, so a
        process started before anyone created the directory (the image's collectstatic, a
        fresh tmpfs) failed on its first import. That import comes from a later app's ready()
        ("config" stands before the domain apps in INSTALLED_APPS), so here is early enough,
        and importing config.metrics itself touches no directory.
        """
        path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if path:
            os.makedirs(path, exist_ok=True)
