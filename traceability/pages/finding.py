"""Recording a finding (issue 15): its subject a lot or unit (by EPC URN, Digital Link, a scanned GS1
barcode or an own code, offered as it is typed), every lot of a supplier, or every lot of a site in
a production window, as REST's POST /findings/ records one; files of evidence with it, kept as
REST's attachments are; and the evidence on the investigation's page, each file downloaded through
the access policy.

Nothing is recorded unless everything is right: the files are checked before the finding is, so a
refused file leaves no finding behind, and kept in the finding's transaction, so a file the storage
could not keep leaves none either. A subject the caller may not trace is answered as an unknown
one, next to its field; a lot or unit is offered as it is typed only if it is the caller's own.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from traceability.access.policy import readable_through_investigation, subject_check, subjects_offered
from traceability.core.errors import DomainError
from traceability.core.files import AttachmentRefused
from traceability.core.limits import EVIDENCE
from traceability.investigations.evidence import EvidenceNotStored, evidence_check
from traceability.investigations.models import FindingAttachment, Investigation
from traceability.investigations.services import finding_record, finding_subject_lots
from traceability.ledger.selectors import SubjectError, UnknownSubject, subject_codes_starting, subject_find
from traceability.pages.caller import PageCaller, body_limited, member_page
from traceability.pages.forms import FindingForm, SubjectKind
from traceability.tasks import job_submit

# Lots and units offered for a typed prefix.
OFFERED = 10


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "pages/refused.html", {"message": message}, status=status)


def _may_record(request: HttpRequest, page: PageCaller) -> HttpResponse | None:
    """None when the caller records findings; else the answer saying why not (403)."""
    if not page.caller.actor.opens_findings:
        message = _(
            "Your organisation is told of findings on what it received; those who make lots and units record them."
        )
        return _refused(request, message, 403)
    # As REST's writes on findings: QA engineers and admins, a regulator's on its own inquiries.
    if not (page.caller.may_write or page.caller.may_inquire):
        return _refused(
            request, _("Your role reads only: ask your organisation's admin for the QA engineer role."), 403
        )
    return None


def _shown(value: str) -> str:
    """A typed value as a message quotes it: a scanner's group separators as the symbol ␝."""
    return "".join(c if c.isprintable() else "\u241d" for c in value)


@require_http_methods(["GET", "POST"])
@body_limited(
    EVIDENCE,
    gettext_lazy(
        "The files of evidence sent with a finding may be at most %(limit)s together, each at most %(each)s:"
        " nothing was recorded."
    ),
)
@member_page
def finding_new(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """Record a finding, as REST's POST /findings/ does: it opens its investigation with the preview
    counted and starts its run, and keeps the files of evidence given with it; the page then follows
    the run."""
    if (refusal := _may_record(request, page)) is not None:
        return refusal
    posted = request.method == "POST"
    form = FindingForm(request.POST if posted else None, request.FILES if posted else None)
    if not posted or not form.is_valid():
        return _form(request, form, status=400 if posted else 200)
    fields = form.cleaned_data
    # The files first: a refused one is said beside the field, and nothing is recorded.
    evidence = []
    for file in fields["evidence"]:
        try:
            evidence.append(evidence_check(file=file, name=file.name))
        except AttachmentRefused as refused:
            form.add_error("evidence", refused.message)
    found = _subject(form, page)
    if form.errors or found is None:
        return _form(request, form, status=400)
    subject, check = found
    try:
        finding = finding_record(
            owner=page.organisation,
            subject=subject,
            category=fields["category"],
            severity=fields["severity"],
            description=fields["description"],
            raised_by=request.user,
            window_from=fields.get("window_from") if form.named() != "subject" else None,
            window_to=fields.get("window_to") if form.named() != "subject" else None,
            inquiry=page.caller.regulator,
            traced=check.forward,
            evidence=evidence,  # kept in the finding's transaction: both or neither
            submit=job_submit,
        )
    except EvidenceNotStored:
        form.add_error(
            "evidence", _("The files of evidence could not be stored, so nothing was recorded: try again later.")
        )
        return _form(request, form, status=503)
    except DomainError as refused:
        form.add_error(None, refused.message)
        return _form(request, form, status=409)
    return HttpResponseRedirect(reverse("pages:investigation", args=[finding.investigation.pk]))


def _form(request: HttpRequest, form: FindingForm, *, status: int) -> HttpResponse:
    kind = form.data.get("subject_kind") if form.is_bound else None
    context = {
        "finding_form": form.marked(),
        "kind": kind if kind in SubjectKind.values else SubjectKind.ITEM,
        "offered": OFFERED,
    }
    return render(request, "pages/finding_new.html", context, status=status)


def _subject(form: FindingForm, page: PageCaller) -> tuple[Any, Any] | None:
    """The subject the form names and the access policy's check of it; None, with the error beside
    its field, for one the caller may not trace, an unknown one and a malformed one."""
    fields, actor = form.cleaned_data, page.caller.actor
    named = form.named()
    if named == "subject":
        value = _shown(fields["subject"])
        # An unknown subject, and one the caller may not trace, are answered alike: whether it exists
        # is not this organisation's to learn.
        unknown = _("No lot or unit is known as “%(value)s”.") % {"value": value}
        try:
            subject: Any = subject_find(fields["subject"], owner=page.organisation)
        except UnknownSubject:
            form.add_error("subject", unknown)
            return None
        except SubjectError as refused:  # malformed, ambiguous, or naming neither a lot nor a unit: says why
            form.add_error("subject", _shown(refused.message))
            return None
        check = subject_check(actor, subject)
        if not check.allowed:
            form.add_error("subject", unknown)
            return None
        return subject, check
    subject = fields[named]
    lot_ids = finding_subject_lots(subject, window_from=fields.get("window_from"), window_to=fields.get("window_to"))
    check = subject_check(actor, subject, lot_ids=lot_ids)
    # A supplier or site is in the directory; its lots, and whether it has any in the window, are the
    # ledger's: one answer whether it has none or only lots the caller may not trace (REST's).
    if not check.allowed:
        name = subject.name
        if named == "supplier":
            message = (
                _("No lot of supplier “%(name)s” is known to be within your grants.")
                if actor.regulator
                else _("No lot of supplier “%(name)s” is known to you.")
            )
        else:
            message = (
                _("No lot of site “%(name)s” is known to be within your grants.")
                if actor.regulator
                else _("No lot of site “%(name)s” is known to you.")
            )
        form.add_error(named, message % {"name": name})
        return None
    if lot_ids == []:  # only one who may see every lot gets here and learns that a supplier or site has none
        form.add_error(named, _("%(name)s has no lots in the window given.") % {"name": subject.name})
        return None
    return subject, check


@require_GET
@member_page
def finding_subjects(request: HttpRequest, page: PageCaller) -> HttpResponse:
    """The caller's own lots and units whose code starts with what was typed (``?q=``, or the
    form's ``subject`` as htmx sends it), ``OFFERED`` at most: never another's, whatever the prefix
    (``access.policy.subjects_offered``)."""
    if (refusal := _may_record(request, page)) is not None:
        return refusal
    typed = (request.GET.get("q") or request.GET.get("subject") or "").strip()
    offered = []
    # A scanned barcode, a URN or a link names its subject in full: nothing to offer.
    if typed and len(typed) <= 20 and typed.isprintable():
        allowed = subjects_offered(page.caller.actor)
        offered = subject_codes_starting(prefix=typed, lots=allowed, units=allowed, limit=OFFERED)
    return render(request, "pages/_finding_subjects.html", {"offered": offered, "typed": typed})


# --- the evidence on the investigation's page ---------------------------------------------------------


def evidence_section(investigation: Investigation) -> dict[str, Any]:
    """The files of evidence of the investigation's finding (one query), each with its download."""
    files = FindingAttachment.objects.filter(finding_id=investigation.finding_id).order_by("uploaded_at", "pk")
    return {
        "evidence": [
            {
                "name": file.name,
                "content_type": file.content_type,
                "size": file.size,
                "uploaded_at": file.uploaded_at,
                "download": reverse("pages:evidence", args=[investigation.pk, file.pk]),
            }
            for file in files
        ]
    }


@require_GET
@member_page
def evidence_download(request: HttpRequest, page: PageCaller, number: int, attachment: int) -> HttpResponse:
    """A file of evidence as uploaded, as REST's attachment download: to those who read the finding
    (its owner, regulators whose grants cover its investigation); anyone else, and an attachment of
    another finding, 404 in the same words."""
    readable = readable_through_investigation(
        page.caller.actor, owner="finding__owner_id", investigation="finding__investigation"
    )
    found = FindingAttachment.objects.filter(readable, finding__investigation__pk=number, pk=attachment).first()
    if found is None:
        message = _("Investigation %(number)s has no evidence you may read numbered %(attachment)s.") % {
            "number": number,
            "attachment": attachment,
        }
        return _refused(request, message, 404)
    try:
        content = found.file.open("rb")
    except FileNotFoundError:
        return _refused(request, _("That file of evidence is gone from storage."), 404)
    return FileResponse(content, as_attachment=True, filename=found.name, content_type=found.content_type)
