from django.urls import path

from traceability.api import audit, suppliers, views

app_name = "api"

urlpatterns = [
    path("findings/", views.FindingListView.as_view(), name="finding-list"),
    path("findings/<int:pk>/", views.FindingDetailView.as_view(), name="finding-detail"),
    path("findings/<int:pk>/attachments/", views.FindingAttachmentsView.as_view(), name="finding-attachments"),
    path(
        "findings/<int:pk>/attachments/<int:attachment>/",
        views.FindingAttachmentView.as_view(),
        name="finding-attachment",
    ),
    path("findings/<int:pk>/responses/", suppliers.FindingResponsesView.as_view(), name="finding-responses"),
    path("supplier/findings/", suppliers.ConcerningFindingsView.as_view(), name="supplier-findings"),
    path("investigations/<int:pk>/", views.InvestigationDetailView.as_view(), name="investigation-detail"),
    path(
        "investigations/<int:pk>/transitions/",
        views.InvestigationTransitionsView.as_view(),
        name="investigation-transitions",
    ),
    path("investigations/<int:pk>/runs/", views.InvestigationRunsView.as_view(), name="investigation-runs"),
    path("investigations/<int:pk>/exports/", views.InvestigationExportsView.as_view(), name="investigation-exports"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run-detail"),
    path("runs/<int:pk>/units/", views.RunUnitsView.as_view(), name="run-units"),
    path("runs/<int:pk>/consignees/", views.RunConsigneesView.as_view(), name="run-consignees"),
    path("runs/<int:pk>/breakdown/", views.RunBreakdownView.as_view(), name="run-breakdown"),
    # An identifier may contain slashes (a Digital Link), hence path: and the fixed suffixes.
    path("units/<path:ident>/backward/", views.UnitBackwardView.as_view(), name="unit-backward"),
    path("units/<path:ident>/siblings/", views.UnitSiblingsView.as_view(), name="unit-siblings"),
    path("units/<path:ident>/certificates/", views.UnitCertificatesView.as_view(), name="unit-certificates"),
    path("lots/<path:ident>/inspections/", suppliers.LotInspectionsView.as_view(), name="lot-inspections"),
    path(
        "lots/<path:ident>/inspections/<int:inspection>/document/",
        suppliers.LotInspectionDocumentView.as_view(),
        name="lot-inspection-document",
    ),
    path("jobs/<uuid:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("csv/<str:kind>/template/", views.CsvTemplateView.as_view(), name="csv-template"),
    path("csv/<str:kind>/", views.CsvImportView.as_view(), name="csv-import"),
    path("jobs/<uuid:pk>/download/", views.JobDownloadView.as_view(), name="job-download"),
    path("audit/", audit.AuditTrailView.as_view(), name="audit"),
]
