import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from traceability.access.policy import operates_deployment

logger = logging.getLogger(__name__)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Where the admin's "View site" link and a newcomer's browser land: the ways in, one link each."""
    return render(request, "traceability/home.html")


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and docker-compose health checks:
    ``ok`` (200) or ``unavailable`` (503) to anyone, and what the database is only to an operator
    (``access.policy.operates_deployment``): it tells an attacker what to try. Why the database is
    unreachable goes to the log (an operator's session is in that database, so it cannot be asked)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("health: the database is unreachable")
        return JsonResponse({"status": "unavailable"}, status=503)
    body: dict[str, object] = {"status": "ok"}
    if operates_deployment(request.user):
        body["database"] = connection.vendor
    return JsonResponse(body)
