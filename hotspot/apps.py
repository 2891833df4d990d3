from django.apps import AppConfig


class HotspotConfig(AppConfig):
    name = "hotspot"
    verbose_name = "Hotspot"

    def ready(self) -> None:
        from . import radius_cache

        radius_cache.connect()
