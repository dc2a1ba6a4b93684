from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Where the admin's "View site" link and a newcomer's browser land: the ways in, one link each."""
    return render(request, "traceability/home.html")


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and docker-compose health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
