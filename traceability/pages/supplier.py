"""The supplier portal (issue 15): the findings others recorded about the caller's lots, with how
many units of each of its customers they reach (its share, as the access policy allows); its 8D
response to each, revised and kept with its history; its own lots, and the certificates it holds or
that cover its lots and sites; the inspection results and certificates of analysis it records on
its own lots; and the limits its materials and cell models hold their lots to. Each list is paged
by cursor past ``PAGE_ROWS`` rows, a "Next" link carrying on from the last row shown. Who may read
and write each is the access policy's answer (``findings_concerning``, ``response_access``,
``lot_writable``, ``limits_readable``, ``limits_writable``); a finding, lot, material or cell model
the caller may not open is answered as an unknown one: 404, in the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.db.models import Model, Q, QuerySet, Subquery
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from cells.models import Lot, Spec
from cells.selectors import cell_models_limits, lot_inspections, lot_specs, materials_limits
from cells.services import Measured, inspection_record, spec_set
from packs.selectors import certificate_standing, certificates_concerning
from suppliers.models import Organisation
from traceability.access.permissions import subject_lookup
from traceability.access.policy import (
    Actor,
    ResponseAccess,
    findings_concerning,
    limits_readable,
    limits_writable,
    lot_inspections_readable,
    lot_writable,
    response_access,
)
from traceability.core.errors import DomainError
from traceability.core.files import AttachmentRefused
from traceability.core.limits import ATTACHMENT
from traceability.investigations.models import (
    EIGHT_D_STEPS,
    Finding,
    Investigation,
    InvestigationStatus,
    ResponseStatus,
)
from traceability.investigations.responses import (
    IncompleteResponse,
    investigation_responses,
    response_latest,
    response_revise,
    responses_standing,
)
from traceability.investigations.selectors import findings_shares
from traceability.ledger.selectors import SubjectError
from traceability.pages.caller import PageCaller, body_limited, member_page
from traceability.pages.forms import InspectionForm, LimitForm, ResponseForm, SearchForm
from traceability.pages.views import PAGE_ROWS, STANDINGS, _subject_url

M = TypeVar("M", bound=Model)


class BadCursor(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _cursor(request: HttpRequest, name: str) -> int | None:
    """The row a list carries on after (``?<name>=``, a row's number), None for the first page."""
    value = request.GET.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 18):  # a row id: within a bigint
        message = _("“%(name)s” is the number of the row to carry on after: “%(value)s” is none.")
        raise BadCursor(message % {"name": name, "value": value[:50]})
    return int(value)


def _keyset_page(
    rows: QuerySet[M], *, order: Sequence[str], after: int | None, limit: int
) -> tuple[list[M], int | None]:
    """A page of ``rows`` in ``order`` (fields, each ``-`` for descending, the last ``pk``) after
    the row numbered ``after``, and the number to carry on after (None on the last page): one
    query. The row carried on after is looked for among ``rows`` themselves, so a number naming a
    row the caller does not read gives an empty page, and tells nothing of where that row sorts."""
    page = rows.order_by(*order)
    if after is not None:
        anchor = rows.order_by().prefetch_related(None).filter(pk=after)
        keys = [(name.lstrip("-"), name.startswith("-")) for name in order]
        later = Q(pk__in=[])
        for i, (name, descending) in enumerate(keys):
            step = Q(**{f"{name}__{'lt' if descending else 'gt'}": Subquery(anchor.values(name)[:1])})
            for same, _descending in keys[:i]:
                step &= Q(**{same: Subquery(anchor.values(same)[:1])})
            later |= step
        page = page.filter(later)
    found = list(page[: limit + 1])
    return found[:limit], (found[limit - 1].pk if len(found) > limit else None)


def _next_url(request: HttpRequest, name: str, after: int | None) -> str | None:
    """The page's address with the list ``name`` carried on after ``after``, the others' kept."""
    if after is None:
        return None
    query = request.GET.copy()
    query[name] = str(after)
    return f"{request.path}?{query.urlencode()}"


# --- the portal's home ------------------------------------------------------------------------------------


@require_http_methods(["GET"])
@member_page
def portal(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """The findings about the caller's lots, newest first, each with its customers' counts (its share
    of the latest finished run) and where its response stands; its own lots; and the certificates it
    holds or that cover its lots and sites. Each list carries on past ``PAGE_ROWS`` rows by its own
    cursor (``?findings_after=``, ``?lots_after=``, ``?certificates_after=``), the others' kept."""
    actor = page.caller.actor
    try:
        cursors = {name: _cursor(request, name) for name in ("findings_after", "lots_after", "certificates_after")}
    except BadCursor as refused:
        return render(request, "pages/refused.html", {"message": refused.message, "form": SearchForm()}, status=400)
    findings, next_finding = _keyset_page(
        Finding.objects.filter(findings_concerning(actor)).select_related("investigation", "subject_lot", "owner"),
        order=("-raised_at", "-pk"),
        after=cursors["findings_after"],
        limit=PAGE_ROWS,
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
                # Traced, yet no share: a supplier told because its lot is upstream of the subject (the
                # result is counted from the subject on, so none of it is counted as its lots'), or one
                # told through an earlier run. "Not traced yet" would be untrue.
                "counted_apart": hasattr(finding, "investigation")
                and finding.investigation.status not in (InvestigationStatus.OPEN, InvestigationStatus.TRACING),
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
    lots: list[Lot] = []
    certificates: list[Any] = []
    next_lot = next_certificate = None
    if party is not None:
        lots, next_lot = _keyset_page(
            Lot.objects.filter(owner_id=party), order=("code", "pk"), after=cursors["lots_after"], limit=PAGE_ROWS
        )
        certificates, next_certificate = _keyset_page(
            certificates_concerning(organisation_id=party),
            order=("scheme", "number", "pk"),
            after=cursors["certificates_after"],
            limit=PAGE_ROWS,
        )
    return render(
        request,
        "pages/supplier.html",
        {
            "form": SearchForm(),
            "findings": rows,
            "next_findings": _next_url(request, "findings_after", next_finding),
            "lots": [
                {
                    "lot": lot,
                    "link": _subject_url("pages:lot", lot.identity, lot.code),
                    "upload": _inspections_url(lot) if lot_writable(actor, lot) else None,
                }
                for lot in lots
                if lot_inspections_readable(actor, lot)
            ],
            "next_lots": _next_url(request, "lots_after", next_lot),
            "certificates": _certificate_rows(certificates, party=party),
            "next_certificates": _next_url(request, "certificates_after", next_certificate),
        },
    )


def _certificate_rows(certificates: list[Any], *, party: int | None) -> list[dict[str, Any]]:
    """Each certificate as the portal shows it: its standing today (expired past its validity
    whatever its recorded status says, as a unit's certificate check answers) and what it covers."""
    today = timezone.localdate()
    return [
        {
            "certificate": certificate,
            "holder": None if certificate.owner_id == party else certificate.owner.name,
            "issuer": certificate.issued_by.name if certificate.issued_by is not None else certificate.issuer,
            "standing": STANDINGS[certificate_standing(certificate, on=today)],
            "product_models": [m.model_number for m in certificate.product_models.all()],
            "cell_models": [m.name for m in certificate.cell_models.all()],
            "sites": [site.name for site in certificate.sites.all()],
        }
        for certificate in certificates
    ]


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
@body_limited(ATTACHMENT, gettext_lazy("The file of an inspection may be at most %(limit)s: nothing was recorded."))
@member_page
def inspections_page(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """Record inspection results or a certificate of analysis of the caller's lot (``?id=``): the
    file and a value per property the lot has a limit for, each checked against it (a value outside
    is kept, failing); a malformed one is refused beside its field, with nothing kept. The lot's
    inspections follow, newest first, ``PAGE_ROWS`` at a time (``?after=``). Another's lot is
    answered as an unknown one."""
    found = _own_lot(request, page, lot_writable)
    if isinstance(found, HttpResponse):
        return found
    lot = found
    try:
        after = _cursor(request, "after")
    except BadCursor as refused:
        return render(request, "pages/refused.html", {"message": refused.message, "form": SearchForm()}, status=400)
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
    inspections, next_inspection = _keyset_page(
        lot_inspections(lot=lot), order=("-inspected_at", "-pk"), after=after, limit=PAGE_ROWS
    )
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
                for inspection in inspections
            ],
            "next_inspections": _next_url(request, "after", next_inspection),
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


# --- the limits of the caller's materials and cell models -------------------------------------------------

# What a limit's form names its material or cell model by, and how the page speaks of each.
_PRODUCTS = ("material", "cell_model")


@require_http_methods(["GET", "POST"])
@member_page
def limits_page(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """The caller's own materials and cell models, each with the limits its lots are held to
    (property, unit, minimum, maximum), and to its QA engineers and admins a form on each to add a
    limit or change one (``cells.services.spec_set``): the next inspection of its lots is checked
    against it, those recorded before keep the limits they were judged against. A form names its
    product (``material=`` or ``cell_model=``, its id): another's is answered as an unknown one
    (404); a viewer's write is refused saying why (403); a bad value beside its field (400); each
    with nothing changed. Four queries, whatever the number of products and limits."""
    actor = page.caller.actor
    readable = limits_readable(actor)
    products = {
        "material": list(materials_limits(within=readable)),
        "cell_model": list(cell_models_limits(within=readable)),
    }
    writable = {product.owner_id for kind in _PRODUCTS for product in products[kind]}
    writable = {owner for owner in writable if limits_writable(actor, owner)}
    bound: tuple[str, int, LimitForm] | None = None
    status = 200
    if request.method == "POST":
        named = [(kind, request.POST[kind].strip()) for kind in _PRODUCTS if kind in request.POST]
        if len(named) != 1:
            message = _("A limit is of one material or of one cell model: the form names %(count)s.")
            return render(
                request,
                "pages/refused.html",
                {"message": message % {"count": len(named)}, "form": SearchForm()},
                status=400,
            )
        kind, value = named[0]
        product = next((p for p in products[kind] if value.isascii() and value.isdigit() and str(p.pk) == value), None)
        if product is None:
            unknown = (
                _("No material of yours is known as “%(value)s”.")
                if kind == "material"
                else _("No cell model of yours is known as “%(value)s”.")
            )
            return _unknown(request, unknown % {"value": value[:50]})
        if product.owner_id not in writable:
            message = _("Your role reads limits; a QA engineer or an admin of your organisation sets them.")
            return render(request, "pages/refused.html", {"message": message, "form": SearchForm()}, status=403)
        form = LimitForm(request.POST, prefix=f"{kind}-{product.pk}")
        if form.is_valid():
            try:
                spec_set(
                    owner=product.owner_id,
                    **{kind: product},
                    property=form.cleaned_data["property"],
                    unit=form.cleaned_data["unit"],
                    minimum=form.cleaned_data["minimum"],
                    maximum=form.cleaned_data["maximum"],
                    by=request.user,
                )
            except DomainError as refused:
                at = refused.field if refused.field in LimitForm.base_fields else None
                form.add_error(at, refused.message)
            else:
                return HttpResponseRedirect(f"{request.path}#{kind}-{product.pk}")
        bound = (kind, product.pk, form)
        status = 400
    sections = {
        kind: [
            {
                "product": product,
                "anchor": f"{kind}-{product.pk}",
                "limits": [
                    {"spec": spec, "minimum": _number(spec.minimum), "maximum": _number(spec.maximum)}
                    for spec in product.specs.all()
                ],
                "form": (
                    bound[2]
                    if bound is not None and bound[:2] == (kind, product.pk)
                    else LimitForm(prefix=f"{kind}-{product.pk}")
                )
                if product.owner_id in writable
                else None,
            }
            for product in products[kind]
        ]
        for kind in _PRODUCTS
    }
    return render(
        request,
        "pages/supplier_limits.html",
        {"form": SearchForm(), "materials": sections["material"], "cell_models": sections["cell_model"]},
        status=status,
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
