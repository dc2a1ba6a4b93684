from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from traceability.api.views import api_not_found
from traceability.epcis.views import epcis_not_found
from traceability.gql.views import graphql_view
from traceability.views import health, home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("traceability.pages.urls")),
    path("api/v1/", include("traceability.api.urls")),
    path("epcis/", include("traceability.epcis.urls")),
    path("graphql/", graphql_view, name="graphql"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    # The split view serves Swagger UI's start-up script from its own URL: no inline script for the CSP.
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="openapi-schema"), name="api-docs"),
    # Last: whatever else is under an interface's prefix is answered in that interface's format.
    re_path(r"^api/v1/", api_not_found),
    re_path(r"^epcis/", epcis_not_found),
]
