from django.apps import AppConfig


class PacksConfig(AppConfig):
    name = "packs"
    verbose_name = "Products, units, packing and shipments"

    def ready(self) -> None:
        from packs import services  # noqa: F401  (registers the job handlers it defines)
