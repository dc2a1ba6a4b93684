"""The pages: each asks the access policy who calls and what it may open (``caller.member_page``,
``access.permissions``), then renders the domain's read models. An unknown subject and one the
caller may not open are answered alike: 404, in the same words.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

from django.contrib.auth import views as auth_views
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from cells.models import Lot
from packs.models import Unit
from packs.selectors import unit_certificates
from suppliers.models import CertificateScheme, Organisation
from traceability import genealogy
from traceability.access.audit import audit_entries_visible, audit_reader
from traceability.access.permissions import (
    subject_lookup,
    subjects_coded,
    units_in_container,
    units_of_gtin,
    units_readable,
)
from traceability.access.policy import (
    Actor,
    downstream_scope,
    finding_read_in_full,
    findings_readable,
    investigation_scopes,
    job_progress,
)
from traceability.access.policy import investigations_readable as investigations_readable_q
from traceability.core import signin
from traceability.core.audit import AuditAction
from traceability.core.models import AuditEntry, JobStatus
from traceability.gs1 import identifiers
from traceability.investigations.models import Finding, Investigation
from traceability.investigations.selectors import investigations_latest_runs
from traceability.ledger.selectors import (
    AmbiguousSubject,
    MalformedSubject,
    PrefixLength,
    SubjectError,
    UnknownSubject,
    UnsupportedSubject,
    identifier_links,
)
from traceability.pages.caller import SESSION_KEY, PageCaller, member_page, page_caller
from traceability.pages.forms import SearchForm, SignInForm

# A unit's standing under a scheme (``packs.selectors.Standing``), as the pages say it.
STANDINGS = {
    "valid": gettext_lazy("valid"),
    "suspended": gettext_lazy("suspended"),
    "revoked": gettext_lazy("revoked"),
    "expired": gettext_lazy("expired"),
    "none": gettext_lazy("no certificate"),
}

# A page lists this many rows at most (investigations, findings, siblings, audit entries, units of a
# GTIN or container); the REST API and GraphQL page through the rest.
PAGE_ROWS = 50


# --- signing in and out, and the organisation acted for -------------------------------------------------


class SignInView(auth_views.LoginView):
    """Sign-in for every role (the admin's form is for staff). Failed attempts are counted per
    client address (``core.signin``), as the API's are: past the limit, refused with 429."""

    template_name = "pages/signin.html"
    authentication_form = SignInForm

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        address = signin.client_address(request)
        if (seconds := signin.wait(address)) is not None:
            response = render(request, "pages/signin.html", {"form": self.get_form(), "wait": seconds}, status=429)
            response["Retry-After"] = str(seconds)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        signin.failed(signin.client_address(self.request))
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        self.request.session.pop(SESSION_KEY, None)  # the first of its organisations, until it picks one
        return response


class SignOutView(auth_views.LogoutView):
    next_page = "pages:signin"


@require_POST
def organisation_switch(request: HttpRequest) -> HttpResponse:
    """Act for another of the user's organisations (kept in the session). One the user does not
    belong to is refused (400), in the same words whether it exists or not, and nothing changes."""
    found = page_caller(request)
    if found is None:
        return HttpResponseRedirect(reverse("pages:signin"))
    wanted = request.POST.get("organisation", "").strip()
    if wanted not in {m.organisation.slug for m in found.memberships}:
        return render(
            request,
            "pages/refused.html",
            {"message": _("You are not a member of an organisation called “%(slug)s”.") % {"slug": wanted[:100]}},
            status=400,
        )
    request.session[SESSION_KEY] = wanted
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("pages:desk")
    return HttpResponseRedirect(target)


# --- the desk ---------------------------------------------------------------------------------------


@require_GET
@member_page
def desk(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """Where a member lands: the search, the investigations it reads (for a regulator, every brand's
    its grants cover), its grants, and the way to its audit trail and GraphiQL."""
    actor = page.caller.actor
    investigations = list(_investigations(actor).order_by("-opened_at", "-pk")[:PAGE_ROWS])
    rows = _run_rows(actor, investigations)
    live = {"investigations": rows, "live": True, "tracing": any(row.tracing for row in rows)}
    if request.htmx and request.GET.get("section") == "investigations":  # type: ignore[attr-defined]
        return render(request, "pages/_desk_investigations.html", live)
    return render(
        request,
        "pages/desk.html",
        {
            "form": SearchForm(),
            **live,
            "regulator": actor.regulator,
            "grants": _grants(page),
            "reads_audit": audit_reader(page.caller),
        },
    )


def _investigations(actor: Actor) -> QuerySet[Investigation]:
    """The investigations ``actor`` reads (its own, and those its grants cover), with what a row shows."""
    return Investigation.objects.filter(investigations_readable_q(actor)).select_related(
        "owner",
        "finding__subject_lot",
        "finding__subject_unit",
        "finding__subject_organisation",
        "finding__subject_site",
    )


def _run_rows(actor: Actor, investigations: list[Investigation]) -> list[InvestigationRow]:
    """The desk's rows, each with its latest run's progress as the investigation's page shows it
    (``job_progress`` in the caller's scope of it; 100 once finished): the runs in one query, the
    scopes in at most one more, whatever the number of rows."""
    runs = investigations_latest_runs(investigation_ids=[investigation.pk for investigation in investigations])
    scopes = investigation_scopes(actor, sorted(runs)) if runs else {}
    rows = []
    for investigation in investigations:
        row = _investigation_row(investigation)
        if (run := runs.get(investigation.pk)) is not None:
            status = run.job.status
            if status == JobStatus.SUCCEEDED:
                percent = 100
            else:
                done, total, _phase = job_progress(run.job, full=scopes[investigation.pk].full)
                percent = min(99, done * 100 // total) if total else 0
            row = dataclasses.replace(
                row,
                percent=percent,
                tracing=status in (JobStatus.QUEUED, JobStatus.RUNNING),
                failed=status == JobStatus.FAILED,
            )
        rows.append(row)
    return rows


def _grants(page: PageCaller) -> dict[str, Any] | None:
    actor = page.caller.actor
    if not actor.regulator:
        return None
    return {
        "all": actor.grants_all,
        "jurisdictions": sorted(actor.jurisdictions),
        "investigations": sorted(actor.investigation_ids),
    }


@dataclass(frozen=True)
class InvestigationRow:
    id: int
    owner: str
    subject: str
    subject_link: str | None
    category: str
    severity: str
    status: str
    inquiry: bool
    opened_at: Any
    # Its latest run's progress, whether it still traces or failed (the desk's live rows).
    percent: int | None = None
    tracing: bool = False
    failed: bool = False


def _investigation_row(investigation: Investigation) -> InvestigationRow:
    finding = investigation.finding
    subject: Lot | Unit | Organisation | Any = (
        finding.subject_lot or finding.subject_unit or finding.subject_organisation or finding.subject_site
    )
    link = None
    if isinstance(subject, Lot):
        name, link = subject.code, _subject_url("pages:lot", subject.identity, subject.code)
    elif isinstance(subject, Unit):
        name, link = subject.serial, _subject_url("pages:unit", subject.identity, subject.serial)
    else:
        name = str(getattr(subject, "name", subject))
    return InvestigationRow(
        id=investigation.pk,
        owner=investigation.owner.name,
        subject=name,
        subject_link=link,
        category=finding.get_category_display(),
        severity=finding.get_severity_display(),
        status=investigation.get_status_display(),
        inquiry=finding.inquiry,
        opened_at=investigation.opened_at,
    )


def _subject_url(name: str, identity: str, code: str) -> str:
    """A page's address for a stored identity: its Digital Link when it is a GS1 key (any caller
    finds it by that; written from the digits alone, no company prefix asked), else its ``code``
    (an organisation's own, found among the caller's)."""
    spelt = code
    if not identity.startswith("own-"):
        with contextlib.suppress(identifiers.InvalidIdentifier):
            spelt = identifiers.to_digital_link(identifiers.from_canonical(identity))
    return f"{reverse(name)}?{_query(spelt)}"


def _query(value: str) -> str:
    return urlencode({"id": value})


# --- search -----------------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d{8}|\d{12,14}|\d{18}")


@require_GET
@member_page
def search(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """One box for every identifier: a serial or lot code, an EPC URN or Digital Link of a unit or a
    lot (its page), a GTIN (the caller's units of that trade item) or an SSCC (the caller's units
    packed in that carton or pallet). A bad or unknown one is answered on the page, saying why.
    A party's bare code is its own; a regulator's is every organisation's its grants cover
    (the regulator's desk: one found opens, several are listed with their owners to pick from)."""
    form = SearchForm(request.GET)
    if not form.is_valid():
        return render(request, "pages/search.html", {"form": form}, status=400)
    value = form.cleaned_data["q"]
    key = _trade_item_or_container(value)
    if key is not None:
        return _units_of_key(request, page, form, key)
    if page.caller.regulator and not _gs1_named(value):
        return _coded(request, page, form, value)
    try:
        found = subject_lookup(ident=value, caller=page.caller)
    except SubjectError as refused:
        return _refused_search(request, form, value, refused)
    view = "pages:unit" if isinstance(found, Unit) else "pages:lot"
    return HttpResponseRedirect(f"{reverse(view)}?{_query(value)}")


def _gs1_named(value: str) -> bool:
    return value[:4].lower() == "urn:" or value.lower().startswith(("http://", "https://"))


def _coded(request: HttpRequest, page: PageCaller, form: SearchForm, value: str) -> HttpResponse:
    """A regulator's bare serial or lot code: the units and lots of every organisation its grants
    cover known by it (the access policy's ``codes_readable``; a fixed number of queries). One opens
    its page; several are listed, each with its owner and its trade item, to pick from."""
    found = subjects_coded(code=value, caller=page.caller)
    if not found:
        message = _("Nothing you may open is known as “%(value)s”.") % {"value": value}
        return render(request, "pages/search.html", {"form": form, "error": message}, status=404)
    if len(found) == 1:
        view = "pages:unit" if isinstance(found[0], Unit) else "pages:lot"
        return HttpResponseRedirect(f"{reverse(view)}?{_query(value)}")
    rows = [
        {
            "code": subject.serial if isinstance(subject, Unit) else subject.code,
            "kind": _("Unit") if isinstance(subject, Unit) else _("Lot"),
            "owner": subject.owner.name,
            "gtin": subject.gtin or "",
            "link": _subject_url(
                "pages:unit" if isinstance(subject, Unit) else "pages:lot",
                subject.identity,
                subject.serial if isinstance(subject, Unit) else subject.code,
            ),
        }
        for subject in found
    ]
    heading = _("Everything known as “%(value)s” within your grants") % {"value": value}
    return render(request, "pages/search.html", {"form": form, "heading": heading, "matches": rows})


def _trade_item_or_container(value: str) -> identifiers.GtinClass | identifiers.Sscc | None:
    """A GTIN or an SSCC, typed as digits or named by a URN or Digital Link; None for anything else
    (a malformed key is refused by the lookup that follows, saying why)."""
    if _DIGITS.fullmatch(value):
        try:
            if len(value) == 18:
                return identifiers.Sscc(sscc=value)
            return identifiers.GtinClass(gtin=value.zfill(14))
        except identifiers.InvalidIdentifier:
            return None
    if value[:4].lower() == "urn:" or value.lower().startswith(("http://", "https://")):
        try:
            identity = identifiers.parse(value).identity
        except identifiers.InvalidIdentifier:
            return None
        if isinstance(identity, identifiers.GtinClass | identifiers.Sscc):
            return identity
    return None


def _units_of_key(
    request: HttpRequest, page: PageCaller, form: SearchForm, key: identifiers.GtinClass | identifiers.Sscc
) -> HttpResponse:
    if isinstance(key, identifiers.Sscc):
        units: QuerySet[Unit] = units_in_container(sscc=key.sscc, caller=page.caller)
        heading = _("Units packed in SSCC %(sscc)s") % {"sscc": key.sscc}
    else:
        units = units_of_gtin(gtin=key.gtin, caller=page.caller)
        heading = _("Units of GTIN %(gtin)s") % {"gtin": key.gtin}
    shown = list(units.select_related("product_model").order_by("pk")[: PAGE_ROWS + 1])
    if not shown:
        message = _("No unit you may see is known by “%(value)s”.") % {"value": form.cleaned_data["q"]}
        return render(request, "pages/search.html", {"form": form, "error": message}, status=404)
    rows = [
        {"serial": u.serial, "model": u.product_model.name, "link": _subject_url("pages:unit", u.identity, u.serial)}
        for u in shown[:PAGE_ROWS]
    ]
    return render(
        request,
        "pages/search.html",
        {"form": form, "heading": heading, "units": rows, "more": len(shown) > PAGE_ROWS},
    )


def _refused_search(request: HttpRequest, form: SearchForm, value: str, refused: SubjectError) -> HttpResponse:
    if isinstance(refused, UnknownSubject):
        message, status = _("Nothing you may open is known as “%(value)s”.") % {"value": value}, 404
    elif isinstance(refused, MalformedSubject):
        message = _("“%(value)s” is not a valid identifier: %(reason)s") % {"value": value, "reason": refused.message}
        status = 400
    elif isinstance(refused, UnsupportedSubject):
        message, status = _("That identifier names neither a unit, a lot, a GTIN nor an SSCC."), 400
    elif isinstance(refused, AmbiguousSubject):
        message = _("“%(value)s” names several things: search by EPC URN or Digital Link. %(detail)s") % {
            "value": value,
            "detail": refused.message,
        }
        status = 400
    else:
        message, status = refused.message, 400
    return render(request, "pages/search.html", {"form": form, "error": message}, status=status)


# --- a unit's and a lot's story ---------------------------------------------------------------------------


def _subject(request: HttpRequest, page: PageCaller, model: type[Lot] | type[Unit]) -> Lot | Unit | HttpResponse:
    """The lot or unit ``?id=`` names, if the caller may open it; else the answer to give (404 for an
    unknown one and a forbidden one alike, 400 for one that names nothing at all)."""
    form = SearchForm({"q": request.GET.get("id", "")})
    if not form.is_valid():
        return render(request, "pages/search.html", {"form": form}, status=400)
    value = form.cleaned_data["q"]
    try:
        found = subject_lookup(ident=value, caller=page.caller)
    except SubjectError as refused:
        return _refused_search(request, form, value, refused)
    if not isinstance(found, model):  # a lot's code asked for as a unit: as unknown, not redirected
        return _refused_search(request, form, value, UnknownSubject(value))
    return found


@require_GET
@member_page
def unit_page(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """A unit: what it is, its standing under each certification scheme, every lot upstream of it
    (supplier, site, window, inspections, certificates) as a tree, and its siblings the caller reads
    in full, a page at a time (htmx asks for the next page's section alone)."""
    found = _subject(request, page, Unit)
    if isinstance(found, HttpResponse):
        return found
    unit = Unit.objects.select_related("owner", "product_model", "work_order", "site").get(pk=found.pk)
    siblings = _siblings(request, page, unit)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "pages/_siblings.html", siblings)
    upstream = genealogy.upstream_read(subject=unit)
    # Only the unit's own URN needs its company prefix: every link is a Digital Link.
    prefix_length = PrefixLength()
    prefix_length.prepare([unit.identity])
    context = {
        "form": SearchForm(),
        "unit": unit,
        "links": identifier_links(unit.identity, prefix_length=prefix_length),
        "certificates": [
            {
                "scheme": CertificateScheme(answer.scheme).label,
                "standing": STANDINGS.get(answer.standing, answer.standing),
                "number": answer.certificate.number if answer.certificate is not None else None,
            }
            for answer in unit_certificates(unit, schemes=None, on=timezone.localdate())
        ],
        "tree": _tree(upstream),
        # As GraphQL's Unit.investigations: those the caller reads whose finding names the unit or a
        # lot it was made from.
        "investigations": [
            _investigation_row(investigation)
            for investigation in _investigations(page.caller.actor)
            .filter(
                Q(finding__subject_unit_id=unit.pk)
                | Q(finding__subject_lot_id__in=[found.lot.id for found in upstream.lots])
            )
            .order_by("-opened_at", "-pk")[:PAGE_ROWS]
        ],
        "upstream_units": upstream.units,
        "position": upstream.position,
        **siblings,
    }
    return render(request, "pages/unit.html", context)


def _siblings(request: HttpRequest, page: PageCaller, unit: Unit) -> dict[str, Any]:
    """A page of the unit's siblings among the units the caller reads in full (``?after=``: the
    cursor; anything but a whole number starts from the first)."""
    after = request.GET.get("after", "0")
    found = genealogy.siblings_page(
        unit=unit,
        visible_units=Unit.objects.filter(units_readable(page.caller.actor)),
        after=int(after) if after.isdigit() else 0,
        limit=PAGE_ROWS,
    )
    return {
        "siblings": [
            {
                "serial": s.unit.serial,
                "link": _subject_url("pages:unit", s.unit.identity, s.unit.serial),
                "shared": ", ".join(lot.code for lot in s.shared_lots),
            }
            for s in found.siblings
        ],
        "shared_lots": found.shared_lots,
        "next_siblings": (
            None
            if found.next_after is None
            else f"{request.path}?{urlencode({'id': request.GET['id'], 'after': found.next_after})}"
        ),
    }


@dataclass
class TreeNode:
    lot: dict[str, Any]
    children: list[TreeNode]


def _upstream_lot(found: genealogy.UpstreamLot) -> dict[str, Any]:
    return {
        "code": found.lot.code,
        "kind": found.lot.kind,
        "identity": found.lot.identity,
        "link": _subject_url("pages:lot", found.lot.identity, found.lot.code),
        "level": found.level,
        "exposure": found.exposure,
        "supplier": found.supplier.name,
        "site": found.site.name if found.site else None,
        "produced_from": found.produced_from,
        "produced_to": found.produced_to,
        "inspections": found.inspections,
        "certificates": found.certificates,
    }


def _tree(upstream: genealogy.Upstream) -> list[TreeNode]:
    """The upstream lots as a tree: each under the lot or unit its path reached it from (the read
    model gives one shortest path per lot, so each lot appears once)."""
    nodes = {found.lot.identity: TreeNode(_upstream_lot(found), []) for found in upstream.lots}
    roots: list[TreeNode] = []
    for found in upstream.lots:
        parent = nodes.get(found.path[-1].source) if found.path else None
        (parent.children if parent is not None else roots).append(nodes[found.lot.identity])
    return roots


@require_GET
@member_page
def lot_page(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """A lot: what it is, its inspections, the lots upstream of it, how many units downstream carry
    it (as the caller may count them: its own in full, others' per organisation), and the findings
    about it the caller reads."""
    found = _subject(request, page, Lot)
    if isinstance(found, HttpResponse):
        return found
    lot = Lot.objects.select_related("owner", "site").get(pk=found.pk)
    actor = page.caller.actor
    upstream = genealogy.upstream_read(subject=lot)
    prefix_length = PrefixLength()
    prefix_length.prepare([lot.identity])
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    scope = downstream_scope(actor, forward)
    if scope.full:
        definite, potential = genealogy.affected_counts(forward)
    else:
        view = scope.view
        definite, potential = (view.definite_units, view.potential_units) if view is not None else (0, 0)
    names = dict(
        Organisation.objects.filter(pk__in=[c.organisation_id for c in scope.others]).values_list("pk", "name")
    )
    findings = (
        Finding.objects.filter(findings_readable(actor), subject_lot=lot)
        .select_related("owner", "investigation")
        .order_by("-raised_at", "-pk")[:PAGE_ROWS]
    )
    context = {
        "form": SearchForm(),
        "lot": lot,
        "links": identifier_links(lot.identity, prefix_length=prefix_length),
        "inspections": lot.inspections.order_by("inspected_at", "pk"),
        "lots": [_upstream_lot(found) for found in upstream.lots],
        "full": scope.full,
        "definite": definite,
        "potential": potential,
        "others": [
            {
                "organisation": names.get(c.organisation_id, "?"),
                "definite": c.definite_units,
                "potential": c.potential_units,
            }
            for c in scope.others
        ],
        "findings": [
            {
                "finding": f,
                "owner": f.owner.name if finding_read_in_full(actor, f.owner_id) else None,
                "status": f.investigation.get_status_display() if hasattr(f, "investigation") else "",
            }
            for f in findings
        ],
        "position": forward.snapshot.position,
    }
    return render(request, "pages/lot.html", context)


# --- the audit of the caller's own reads ---------------------------------------------------------------


@require_GET
@member_page
def audit_page(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """The caller's organisation's reads through every interface, newest first (an organisation's
    admins and regulators read the trail; anyone else is answered as for an unknown page)."""
    if not audit_reader(page.caller):
        return render(request, "pages/refused.html", {"message": _("There is no such page.")}, status=404)
    reads = [AuditAction.READ_API, AuditAction.READ_EPCIS, AuditAction.READ_GRAPHQL, AuditAction.READ_PAGES]
    entries = audit_entries_visible(
        AuditEntry.objects.filter(organisation=page.organisation, action__in=reads), page.caller
    ).order_by("-at", "-id")[:PAGE_ROWS]
    rows = [
        {
            "at": entry.at,
            "username": entry.username,
            "source": entry.get_source_display(),
            "what": _read_asked(entry.detail),
            "status": entry.detail.get("status", ""),
        }
        for entry in entries
    ]
    return render(request, "pages/audit.html", {"form": SearchForm(), "entries": rows})


def _read_asked(detail: dict[str, Any]) -> str:
    """The path and query an entry recorded, as a person reads them: the query decoded (it is kept
    as it came, percent-encoded), anything unprintable shown as U+FFFD."""
    query = unquote_plus(str(detail.get("query", "")))
    asked = str(detail.get("path", "")) + (f"?{query}" if query else "")
    return "".join(c if c.isprintable() else "\ufffd" for c in asked)
