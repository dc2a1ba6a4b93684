from django.urls import path

from traceability.pages import finding, investigation, supplier, unit_path, views

app_name = "pages"

# Subjects are named in the query (?id=): a Digital Link holds slashes, and a URN colons.
urlpatterns = [
    path("signin/", views.SignInView.as_view(), name="signin"),
    path("signout/", views.SignOutView.as_view(), name="signout"),
    path("organisation/", views.organisation_switch, name="organisation"),
    path("desk/", views.desk, name="desk"),
    path("desk/audit/", views.audit_page, name="audit"),
    path("search/", views.search, name="search"),
    path("unit/", views.unit_page, name="unit"),
    path("lot/", views.lot_page, name="lot"),
    path("finding/new/", finding.finding_new, name="finding-new"),
    path("finding/subjects/", finding.finding_subjects, name="finding-subjects"),
    path("investigation/<int:number>/", investigation.investigation_page, name="investigation"),
    path("investigation/<int:number>/move/", investigation.investigation_move, name="investigation-move"),
    path("investigation/<int:number>/run/", investigation.investigation_rerun, name="investigation-rerun"),
    path("investigation/<int:number>/export/", investigation.investigation_export, name="investigation-export"),
    path("investigation/<int:number>/export/<uuid:job>/", investigation.export_download, name="investigation-download"),
    path("investigation/<int:number>/evidence/<int:attachment>/", finding.evidence_download, name="evidence"),
    path("investigation/<int:number>/unit/", unit_path.unit_path_page, name="investigation-unit"),
]
urlpatterns += [
    path("supplier/", supplier.portal, name="supplier"),
    path("supplier/findings/<int:finding>/response/", supplier.response_page, name="supplier_response"),
    path("supplier/limits/", supplier.limits_page, name="supplier_limits"),
    path("supplier/lot/inspections/", supplier.inspections_page, name="supplier_inspections"),
    path(
        "supplier/lot/inspections/<int:inspection>/document/",
        supplier.inspection_document,
        name="supplier_inspection_document",
    ),
]
