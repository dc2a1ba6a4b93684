from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    name = "traceability"
    verbose_name = "Genealogy and ledger"

    def ready(self) -> None:
        # Importing these registers the job handlers they define (trace runs, exports, captures).
        from traceability import exports, investigations, lookups  # noqa: F401  (lookups: the __any lookup)
        from traceability.epcis import services  # noqa: F401
