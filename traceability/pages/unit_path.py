"""One affected unit of an investigation's latest finished run (issue 15): how it is exposed, and the
path that reaches it from the finding's subject through the lots in between, step by step in words
and as a picture (``picture.picture_layout``, drawn as SVG by the server: readable without script).

Who reads it is who sees the unit in the run's units list on the investigation's page: the
investigation read as there (``investigation._readable``), the unit among those the caller's scope
of the run shows (``investigation_scope``). The path is the one REST's and GraphQL's units pages give
(``investigations.selectors.finished_run_unit``): identities, records and exposures, nothing more. A
unit the caller may not see, one the run does not reach and one that does not exist are answered
alike, 404 in the same words.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from packs.models import Unit
from traceability.access.policy import investigation_scope
from traceability.core.models import JobStatus
from traceability.genealogy.models import Exposure
from traceability.investigations.models import Investigation, TraceRun
from traceability.investigations.selectors import AffectedUnitRow, finished_run_unit
from traceability.ledger.selectors import SubjectError, UnknownSubject, subject_find
from traceability.pages.caller import PageCaller, member_page
from traceability.pages.forms import SearchForm
from traceability.pages.investigation import _readable, _refused, _unknown
from traceability.pages.picture import LAYER_CAP, Step, picture_layout
from traceability.pages.views import _investigation_row, _subject_url

# A serial may name a unit of several organisations: this many are named when it does.
NAMED = 5
LOT, UNIT = gettext_lazy("lot"), gettext_lazy("unit")


@require_GET
@member_page
def unit_path_page(request: HttpRequest, page: PageCaller, number: int) -> HttpResponse:
    """The unit ``?id=`` names (its identity, EPC URN, Digital Link or serial) in the investigation's
    latest finished run, as the caller sees it there."""
    investigation = _readable(page, number)
    if investigation is None:
        return _unknown(request, number)
    form = SearchForm({"q": request.GET.get("id", "")})
    if not form.is_valid():
        return _refused(request, form.errors["q"][0], 400)
    value: str = form.cleaned_data["q"]
    run = (
        investigation.runs.filter(job__status=JobStatus.SUCCEEDED)
        .select_related("job", "investigation")
        .order_by("-created_at", "-pk")
        .first()
    )
    if run is None:
        message = _("No trace run of this investigation has finished yet: its affected units are listed once one has.")
        return _refused(request, message, 409)
    scope = investigation_scope(page.caller.actor, investigation)
    shown = None if scope.full else scope.units_shown()
    unknown = _("No affected unit you may see is known as “%(value)s” in this investigation's latest run.") % {
        "value": value
    }
    unit_id = _named(value, shown=shown)
    if isinstance(unit_id, str):
        return _refused(request, unit_id, 400)
    row = None
    if unit_id is not None:
        party_id = None if scope.full else scope.organisation_id
        row = finished_run_unit(run=run, unit_id=unit_id, party_id=party_id, shown=shown)
    if row is None:
        return _refused(request, unknown, 404)
    return render(request, "pages/investigation_unit.html", _context(investigation, run, row))


def _named(value: str, *, shown: Q | None) -> int | str | None:
    """The id of the unit ``value`` names among those the caller sees (None: none of them), or why it
    names none: a URN or Digital Link that does not parse or names no unit, a serial of several."""
    if value[:4].lower() == "urn:" or value.lower().startswith(("http://", "https://")):
        try:
            found = subject_find(value, units_only=True)
        except UnknownSubject:
            return None
        except SubjectError as refused:  # malformed, or naming what is no unit: says why
            return refused.message
        return found.pk
    # The caller's units only: another's serial is unknown here, as it is in the units list.
    units = Unit.objects.filter(Q(identity=value) | Q(serial=value))
    named = list(units.filter(shown if shown is not None else Q()).order_by("pk").values_list("pk", "identity")[:NAMED])
    if len(named) > 1:
        identities = ", ".join(identity for _pk, identity in named)
        return _("“%(value)s” names several units you may see: %(identities)s; name one by its identity.") % {
            "value": value,
            "identities": identities,
        }
    return named[0][0] if named else None


def _context(investigation: Investigation, run: TraceRun, row: AffectedUnitRow) -> dict[str, Any]:
    finding = investigation.finding
    subject = finding.subject_lot or finding.subject_unit
    steps = [
        {
            "source": step.source,
            "source_kind": _kind(step.source),
            "target": step.target,
            "target_kind": _kind(step.target),
            "record": step.record,
            "definite": step.exposure == Exposure.DEFINITE,
        }
        for step in row.path
    ]
    start = row.path[0].source if row.path else row.identity
    picture = picture_layout([[Step(s.source, s.target, s.exposure == Exposure.DEFINITE, s.record) for s in row.path]])
    captions = {
        box.key: _("Subject")
        if subject is not None and box.key == subject.identity
        else _("Affected unit")
        if box.key == row.identity
        else _kind(box.key)
        for box in picture.boxes
    }
    return {
        "investigation": investigation,
        "row": _investigation_row(investigation),
        "run": run,
        "unit": row,
        "unit_link": _subject_url("pages:unit", row.identity, row.serial),
        "units_link": reverse("pages:investigation", args=[investigation.pk]) + "#units-heading",
        "definite": row.exposure == Exposure.DEFINITE,
        "exposure": Exposure(row.exposure).label,
        "steps": steps,
        "start": start,
        "picture": picture,
        "cap": LAYER_CAP,
        "boxes": [
            {"box": box, "caption": captions[box.key], "marked": box.key in (row.identity, start)}
            for box in picture.boxes
        ],
        "legend_y": picture.height + 8,
        "picture_height": picture.height + 40,
        "picture_width": max(picture.width, 420),
    }


def _kind(identity: str) -> Any:
    """A path's node is a lot or a unit: its canonical identity says which (``lgtin:``,
    ``own-lot:``; ``sgtin:``, ``own-serial:``)."""
    return LOT if identity.startswith(("lgtin:", "own-lot:")) else UNIT
