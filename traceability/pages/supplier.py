"""The supplier portal (issue 15): the findings others recorded about the caller's lots, with how
many units of each of its customers they reach (its share, as the access policy allows); its 8D
response to each, revised and kept with its history; and the inspection results and certificates
of analysis it records on its own lots. Who may read and write each is the access policy's answer
(``findings_concerning``, ``response_access``, ``lot_writable``); a finding or lot the caller may
not open is answered as an unknown one: 404, in the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from cells.models import Lot, Spec
from cells.selectors import lot_inspections, lot_specs
from cells.services import Measured, inspection_record
from suppliers.models import Organisation
from traceability.access.permissions import subject_lookup
from traceability.access.policy import (
    Actor,
    ResponseAccess,
    findings_concerning,
    lot_inspections_readable,
    lot_writable,
    response_access,
)
from traceability.core.errors import DomainError
from traceability.core.files import AttachmentRefused
from traceability.investigations.models import EIGHT_D_STEPS, Finding, Investigation, ResponseStatus
from traceability.investigations.responses import (
    IncompleteResponse,
    investigation_responses,
    response_latest,
    response_revise,
    responses_standing,
)
from traceability.investigations.selectors import findings_shares
from traceability.ledger.selectors import SubjectError
from traceability.pages.caller import PageCaller, member_page
from traceability.pages.forms import InspectionForm, ResponseForm, SearchForm
from traceability.pages.views import PAGE_ROWS, _subject_url

# --- the portal's home ------------------------------------------------------------------------------------


@require_http_methods(["GET"])
@member_page
def portal(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """The findings about the caller's lots, newest first, each with its customers' counts (its share
    of the latest finished run) and where its response stands; and its own lots."""
    actor = page.caller.actor
    findings = list(
        Finding.objects.filter(findings_concerning(actor))
        .select_related("investigation", "subject_lot", "owner")
        .order_by("-raised_at", "-pk")[:PAGE_ROWS]
    )
    party = actor.organisation_id
    ids = [finding.pk for finding in findings]
    shares = findings_shares(finding_ids=ids, party_id=party) if party is not None else {}
    standing = responses_standing(finding_ids=ids, responder_id=party) if party is not None else {}
    slugs = {other["organisation"] for share in shares.values() for other in share["others"]}
    names = dict(Organisation.objects.filter(slug__in=slugs).values_list("slug", "name")) if slugs else {}
    rows = []
    for finding in findings:
        share = shares.get(finding.pk)
        lot = finding.subject_lot
        rows.append(
            {
                "finding": finding,
                "subject": lot.code if lot is not None else "",
                "subject_link": _subject_url("pages:lot", lot.identity, lot.code) if lot is not None else None,
                "status": finding.investigation.get_status_display() if hasattr(finding, "investigation") else "",
                "share": None
                if share is None
                else {
                    "own": (share["definite_units"], share["potential_units"]),
                    "others": [
                        {
                            "organisation": names.get(other["organisation"], other["organisation"]),
                            "definite": other["definite_units"],
                            "potential": other["potential_units"],
                        }
                        for other in share["others"]
                    ],
                },
                "response": standing.get(finding.pk),
            }
        )
    lots = Lot.objects.filter(owner_id=party).order_by("code")[:PAGE_ROWS] if party is not None else []
    return render(
        request,
        "pages/supplier.html",
        {
            "form": SearchForm(),
            "findings": rows,
            "lots": [
                {
                    "lot": lot,
                    "link": _subject_url("pages:lot", lot.identity, lot.code),
                    "upload": _inspections_url(lot) if lot_writable(actor, lot) else None,
                }
                for lot in lots
                if lot_inspections_readable(actor, lot)
            ],
        },
    )


def _inspections_url(lot: Lot) -> str:
    return _subject_url("pages:supplier_inspections", lot.identity, lot.code)


# --- a finding's 8D response ----------------------------------------------------------------------------


def _unknown(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "pages/refused.html", {"message": message, "form": SearchForm()}, status=404)


@require_http_methods(["GET", "POST"])
@member_page
def response_page(request: HttpRequest, page: PageCaller, finding: int) -> HttpResponse:
    """The caller's 8D response to a finding about its lots: the form (a draft, or submitted once
    every step from containment to prevention is answered) and every revision below it. The
    investigation's owner and a covering regulator read every response here and answer none, as
    the supplier's viewers read its own; anyone else is answered as for an unknown finding."""
    actor = page.caller.actor
    investigation = Investigation.objects.select_related("finding__subject_lot").filter(finding__pk=finding).first()
    access = response_access(actor, investigation) if investigation is not None else ResponseAccess.NONE
    if investigation is None or access is ResponseAccess.NONE:
        return _unknown(request, _("No finding %(id)s is known.") % {"id": finding})
    shown = list(investigation_responses(investigation=investigation, shown=access.shown(actor)))
    status = 200
    form = None
    if access is ResponseAccess.OWN and page.caller.may_write:
        latest = response_latest(shown[0]) if shown else None  # its own, the one shown
        initial = {field: getattr(latest, field) for field in ResponseForm.base_fields} if latest else {}
        form = ResponseForm(request.POST if request.method == "POST" else None, initial=initial)
        if request.method == "POST":
            if form.is_valid():
                changes = dict(form.cleaned_data)
                changes["status"] = ResponseStatus.SUBMITTED if "submit" in request.POST else ResponseStatus.DRAFT
                try:
                    response_revise(
                        investigation=investigation, responder=page.organisation, changes=changes, by=request.user
                    )
                except DomainError as refused:
                    form.add_error(refused.field if isinstance(refused, IncompleteResponse) else None, refused.message)
                else:
                    return HttpResponseRedirect(request.path)
            status = 400
    elif request.method == "POST":
        message = (
            _("Your role reads responses; a QA engineer or an admin of your organisation answers.")
            if access is ResponseAccess.OWN
            else _(
                "This finding is read by your organisation, not answered by it: the suppliers whose lots it"
                " concerns respond to it."
            )
        )
        return render(request, "pages/refused.html", {"message": message, "form": SearchForm()}, status=403)
    lot = investigation.finding.subject_lot
    labels = {name: field.label for name, field in ResponseForm.base_fields.items()} | {"status": _("status")}
    return render(
        request,
        "pages/supplier_response.html",
        {
            "form": SearchForm(),
            "finding": investigation.finding,
            "investigation": investigation,
            "subject": lot.code if lot is not None else "",
            "response_form": form,
            "responses": [
                {
                    "responder": response.owner.name,
                    "revisions": [
                        {
                            "revision": revision,
                            "steps": [(labels[field], getattr(revision, field)) for field in EIGHT_D_STEPS],
                            "changed": [labels.get(field, field) for field in revision.changed],
                        }
                        for revision in reversed(list(response.revisions.all()))
                    ],
                }
                for response in shown
            ],
        },
        status=status,
    )


# --- a lot's inspection results and certificates of analysis -------------------------------------------


@require_http_methods(["GET", "POST"])
@member_page
def inspections_page(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """Record inspection results or a certificate of analysis of the caller's lot (``?id=``): the
    file and a value per property the lot has a limit for, each checked against it (a value outside
    is kept, failing); a malformed one is refused beside its field, with nothing kept. The lot's
    inspections follow, newest first. Another's lot is answered as an unknown one."""
    found = _own_lot(request, page, lot_writable)
    if isinstance(found, HttpResponse):
        return found
    lot = found
    specs: QuerySet[Spec] = lot_specs(lot=lot).order_by("property")
    form = InspectionForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        specs=list(specs),
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data.get("file")
            measured = form.measured()
            try:
                inspection_record(
                    lot=lot,
                    results=[Measured(prop, value, unit) for prop, value, unit in measured],
                    inspected_at=form.cleaned_data["inspected_at"],
                    method=form.cleaned_data["method"],
                    file=upload,
                    name=upload.name if upload is not None else "",
                    sample_size=form.cleaned_data.get("sample_size"),
                    notes=form.cleaned_data.get("notes", ""),
                    by=request.user,
                )
            except DomainError as refused:
                at = "file" if isinstance(refused, AttachmentRefused) else form.field_of(refused.field, measured)
                form.add_error(at, refused.message)
            else:
                return HttpResponseRedirect(request.get_full_path())
        status = 400
    return render(
        request,
        "pages/supplier_inspections.html",
        {
            "form": SearchForm(),
            "lot": lot,
            "lot_link": _subject_url("pages:lot", lot.identity, lot.code),
            "lot_query": urlencode({"id": request.GET["id"].strip()}),
            "inspection_form": form,
            "rows": [
                row | {"minimum": _number(row["spec"].minimum), "maximum": _number(row["spec"].maximum)}
                for row in form.rows()
            ],
            "inspections": [
                {
                    "inspection": inspection,
                    "results": [
                        {
                            "property": m.property,
                            "value": _number(m.value),
                            "unit": m.unit,
                            "minimum": _number(m.minimum),
                            "maximum": _number(m.maximum),
                            "passed": m.passed,
                        }
                        for m in inspection.results.all()
                    ],
                }
                for inspection in lot_inspections(lot=lot)[:PAGE_ROWS]
            ],
        },
        status=status,
    )


@require_http_methods(["GET"])
@member_page
def inspection_document(request: HttpRequest, page: PageCaller, inspection: int) -> HttpResponse:
    """The document an inspection of the caller's lot (``?id=``) came in, as uploaded; 404 for
    another's lot, an inspection without one, and a file gone from storage, each saying which."""
    found = _own_lot(request, page, lot_inspections_readable)
    if isinstance(found, HttpResponse):
        return found
    kept = lot_inspections(lot=found).filter(pk=inspection).exclude(attachment="").first()
    if kept is None:
        message = _("Lot %(code)s has no inspection %(id)s with a document.") % {"code": found.code, "id": inspection}
        return _unknown(request, message)
    try:
        content = kept.attachment.open("rb")
    except FileNotFoundError:
        return _unknown(request, _("The document of inspection %(id)s is gone from storage.") % {"id": inspection})
    return FileResponse(
        content, as_attachment=True, filename=kept.attachment_name, content_type=kept.attachment_content_type
    )


def _own_lot(request: HttpRequest, page: PageCaller, allowed: Callable[[Actor, Lot], bool]) -> Lot | HttpResponse:
    """The lot ``?id=`` names if the access policy ``allowed`` the caller it; else 404, in the same
    words for an unknown lot and another's."""
    ident = request.GET.get("id", "").strip()
    try:
        found = subject_lookup(ident=ident, caller=page.caller) if ident else None
    except SubjectError:
        found = None
    if not isinstance(found, Lot) or not allowed(page.caller.actor, found):
        return _unknown(request, _("No lot of yours is known as “%(value)s”.") % {"value": ident[:300]})
    return found


def _number(value: Decimal | None) -> str:
    """A stored decimal as written: no trailing zeros, never in exponent form ("…" for no limit)."""
    return "…" if value is None else format(value.normalize(), "f")
