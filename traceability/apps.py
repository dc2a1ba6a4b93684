from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    name = "traceability"
    verbose_name = "Genealogy and ledger"

    def ready(self) -> None:
        # Importing these registers the job handlers they define (trace runs, exports, captures,
        # commissioning) and the __any lookup.
        from traceability.core import db  # noqa: F401
        from traceability.events import services  # noqa: F401
        from traceability.genealogy import commissioning  # noqa: F401
        from traceability.investigations import exports  # noqa: F401
        from traceability.investigations import services as investigation_services  # noqa: F401
