from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    name = "traceability"
    verbose_name = "Genealogy and ledger"

    def ready(self) -> None:
        from traceability import investigations  # noqa: F401  (registers the trace-run job handler)
        from traceability import exports  # noqa: F401  (registers the export job handler)
