"""The QA console's investigation page (issue 15) as each party of a chain sees it: read as REST's
investigation detail is (the owner, and regulators whose grants cover it; anyone else 404 as for an
unknown number), its affected units as the caller may see them, its run's progress asked again by
htmx until the run finishes, status moves and exports its owner makes, refusals saying why and
changing nothing.

The world (tests/trace_world.py) is brand A's: U1..U8 built from material lot M1 (through cell lot C1)
and cell lot C4, shipped to distributors D1 (Germany) and D2 (France). Brand B built U9 and U10 from
the same cell lot C1. Brand A's finding is on M1.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from packs.models import Unit
from suppliers.models import MemberRole
from tests.jobs_support import run_job
from tests.test_api_support import urn
from tests.test_pages import _main, _member, _page_client, _text, chain  # noqa: F401  (chain is a fixture)
from traceability.core.models import Job, JobKind, JobStatus
from traceability.genealogy.models import Exposure
from traceability.investigations.models import Investigation, InvestigationStatus, InvestigationTransition, TraceRun
from traceability.ledger.selectors import identifier_render
from traceability.pages import investigation as investigation_pages

pytestmark = pytest.mark.django_db


@pytest.fixture()
def world(chain):  # noqa: F811  (the imported fixture: brand A's finding on M1, and a user of each party)
    return chain


def _url(w, suffix: str = "") -> str:
    return f"/investigation/{w.investigation.pk}/{suffix}"


def _finish_run(w) -> TraceRun:
    run = TraceRun.objects.select_related("job").get(investigation=w.investigation)
    assert run_job(run.job).status == JobStatus.SUCCEEDED
    w.investigation.refresh_from_db()
    return run


def _serials(w, *numbers: int) -> set[str]:
    return {
        f">{serial}<"
        for serial in Unit.objects.filter(pk__in=[w.u[n] for n in numbers]).values_list("serial", flat=True)
    }


# --- the matrix --------------------------------------------------------------------------------------

# caller: (status, the units it is shown in full)
READ = {
    "own": (200, (1, 2, 3, 4, 5, 6, 8)),
    "competitor": (404, ()),
    "supplier": (404, ()),
    "distributor": (404, ()),
    "regulator_all": (200, (1, 2, 3, 4, 5, 6, 8, 9, 10)),
    "regulator_jurisdiction_in": (200, (1, 2, 3, 4, 5, 6, 8, 9, 10)),  # its units were sold into Germany
    "regulator_out_of_scope": (404, ()),
}


@pytest.mark.parametrize(("caller", "expected"), list(READ.items()))
def test_an_investigation_is_read_by_its_owner_and_regulators_in_scope_and_by_no_one_else(world, caller, expected):
    # given
    w = world
    _finish_run(w)
    status, shown = expected
    # when
    response = _page_client(w.users[caller]).get(_url(w))
    # then
    assert response.status_code == status
    text = _main(_text(response))
    every = _serials(w, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    assert {s for s in every if s in text} == (_serials(w, *shown) if shown else set())
    if status == 404:
        assert f"No investigation you may read is numbered {w.investigation.pk}." in text
        assert "Fe 45" not in text  # nothing of the finding
        assert (
            _main(_text(_page_client(w.users[caller]).get("/investigation/999999/"))).replace(
                "999999", str(w.investigation.pk)
            )
            == text
        )  # an unknown number in the same words


def test_anonymous_callers_are_sent_to_sign_in(world):
    before = world.investigation.transitions.count()
    responses = [
        Client().get(_url(world)),
        Client().post(_url(world, "move/"), {"to": "closed"}),
        Client().post(_url(world, "export/"), {"format": "csv"}),
    ]
    assert all(r.status_code == 302 and r["Location"].startswith("/signin/") for r in responses)
    assert world.investigation.transitions.count() == before  # nothing moved
    assert not Job.objects.filter(kind=JobKind.EXPORT).exists()


def _counted(text: str) -> tuple[str, str, str]:
    return tuple(
        text.split(f'id="{name}">', 1)[1].split("<", 1)[0]
        for name in ("definite-units", "potential-units", "consignees")
    )


def test_the_owner_is_counted_its_share_and_a_regulator_the_whole_run(world):
    # given
    w = world
    run = _finish_run(w)
    run.refresh_from_db()
    # when
    own = _main(_text(_page_client(w.users["own"]).get(_url(w))))
    regulator = _main(_text(_page_client(w.users["regulator_all"]).get(_url(w))))
    # then
    assert "Counted by the latest finished run." in own
    share = run.party_view
    assert _counted(own) == (str(share["definite_units"]), str(share["potential_units"]), str(share["consignees"]))
    assert _counted(regulator) == (str(run.definite_units), str(run.potential_units), str(run.consignees))
    assert int(_counted(regulator)[0]) + int(_counted(regulator)[1]) > int(_counted(own)[0]) + int(_counted(own)[1])


# --- the run's progress ------------------------------------------------------------------------------


def test_the_runs_section_is_asked_again_until_the_run_finishes_then_lists_the_units(world):
    # given: the finding's run is queued, not traced
    w = world
    client = _page_client(w.users["own"])
    page = _text(client.get(_url(w)))
    assert 'hx-trigger="every 1s"' in page and 'id="run-percent">0%' in page
    assert "Counted when the finding was recorded" in page  # the preview's counts at once
    assert 'id="units"' not in page
    # when the run finishes, htmx asks for the section alone
    _finish_run(w)
    section = _text(client.get(_url(w), {"section": "run"}, headers={"HX-Request": "true"}))
    # then it no longer asks, and shows the units
    assert section.startswith('<section aria-labelledby="run-heading" id="run"')
    assert "<html" not in section and "hx-trigger" not in section
    assert 'id="run-percent">100%' in section
    assert _serials(w, 1) <= {s for s in _serials(w, 1) if s in section}


# --- affected units: filter and cursor ----------------------------------------------------------------


def test_affected_units_are_filtered_by_exposure_and_paged_by_cursor(world, monkeypatch):
    # given
    w = world
    _finish_run(w)
    client = _page_client(w.users["regulator_all"])
    every = _serials(w, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    # when: a page of three at a time, followed to the end
    monkeypatch.setattr(investigation_pages, "UNIT_ROWS", 3)
    seen, url, pages = [], _url(w), 0
    while url:
        text = _text(client.get(url))
        seen += [s for s in sorted(every) if s in _main(text)]
        pages += 1
        url = (
            text.split('id="next-units"', 1)[0].rsplit('href="', 1)[1].split("#", 1)[0]
            if 'id="next-units"' in text
            else None
        )
    # then every unit the run reached, once
    assert sorted(seen) == sorted(_serials(w, 1, 2, 3, 4, 5, 6, 8, 9, 10)) and pages >= 3
    # and filtered: each exposure's units, each marked so, together the run's
    monkeypatch.setattr(investigation_pages, "UNIT_ROWS", 50)
    listed = {}
    for exposure in (Exposure.DEFINITE, Exposure.POTENTIAL):
        text = _main(_text(client.get(_url(w), {"exposure": exposure})))
        rows = text.split('id="units"', 1)[1].split("</tbody>", 1)[0].split("<tr>")[2:]
        assert rows and all(f">{Exposure(exposure).label}<" in row for row in rows)
        listed[exposure] = {s for s in every if s in text}
    assert listed[Exposure.DEFINITE] and listed[Exposure.POTENTIAL]
    assert not listed[Exposure.DEFINITE] & listed[Exposure.POTENTIAL]
    assert listed[Exposure.DEFINITE] | listed[Exposure.POTENTIAL] == set(seen)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"exposure": "maybe"}, "Exposure is “definite” or “potential”, not “maybe”."),
        ({"after": "x1"}, "The page to continue from is a unit number: “x1” is none."),
        ({"after": "²"}, "The page to continue from is a unit number: “²” is none."),
        ({"after": "9" * 19}, f"The page to continue from is a unit number: “{'9' * 19}” is none."),
    ],
)
def test_a_bad_filter_or_cursor_says_why(world, query, message):
    _finish_run(world)
    response = _page_client(world.users["own"]).get(_url(world), query)
    assert response.status_code == 400 and message in _text(response)


# --- moves --------------------------------------------------------------------------------------------


def test_the_owner_moves_a_traced_investigation_to_review_with_a_note(world):
    # given
    w = world
    _finish_run(w)
    client = _page_client(w.users["own"])
    assert w.investigation.status == InvestigationStatus.TRACED
    assert 'value="under_review"' in _text(client.get(_url(w)))
    # when
    response = client.post(_url(w, "move/"), {"to": "under_review", "note": "8D asked of the supplier"})
    # then
    assert response.status_code == 302 and response["Location"] == _url(w)
    w.investigation.refresh_from_db()
    assert w.investigation.status == InvestigationStatus.UNDER_REVIEW
    last = InvestigationTransition.objects.filter(investigation=w.investigation).latest("at", "pk")
    assert (last.to_status, last.note, last.by) == ("under_review", "8D asked of the supplier", w.users["own"])
    assert "8D asked of the supplier" in _text(client.get(_url(w)))


@pytest.mark.parametrize(
    ("caller", "body", "status", "message"),
    [
        ("competitor", {"to": "closed"}, 404, "No investigation you may read is numbered"),
        ("regulator_all", {"to": "closed"}, 403, "You read this investigation through your grants"),
        ("viewer", {"to": "closed"}, 403, "Your role reads only"),
        ("own", {"to": "traced"}, 400, "“traced” is no status a person moves an investigation to."),
        ("own", {"to": "closed", "note": "x" * 2001}, 400, "A note is 2,000 characters at most."),
        ("own_open", {"to": "under_review"}, 409, "cannot go from"),
    ],
)
def test_a_move_refused_says_why_and_changes_nothing(world, caller, body, status, message):
    # given
    w = world
    if caller != "own_open":
        _finish_run(w)
    users = {**w.users, "viewer": _member(w.brand, MemberRole.VIEWER), "own_open": w.users["own"]}
    before = list(InvestigationTransition.objects.values_list("pk", flat=True))
    status_before = w.investigation.status
    # when
    response = _page_client(users[caller]).post(_url(w, "move/"), body)
    # then
    assert response.status_code == status and message in _text(response)
    w.investigation.refresh_from_db()
    assert w.investigation.status == status_before
    assert list(InvestigationTransition.objects.values_list("pk", flat=True)) == before


# --- exports ------------------------------------------------------------------------------------------


def test_the_owner_exports_its_units_as_csv_and_downloads_them_and_no_one_else_may(world):
    # given
    w = world
    client = _page_client(w.users["own"])
    refused = client.post(_url(w, "export/"), {"format": "csv"})
    assert refused.status_code == 409 and "no finished trace run" in _text(refused)
    assert not Job.objects.filter(kind=JobKind.EXPORT).exists()
    _finish_run(w)
    # when
    response = client.post(_url(w, "export/"), {"format": "csv"})
    # then
    assert response.status_code == 302
    job = Job.objects.get(kind=JobKind.EXPORT)
    page = _text(client.get(_url(w)))
    assert 'hx-get="' + _url(w) + '?section=exports"' in page and "Download" not in _main(page).split('id="exports"')[1]
    run_job(job)
    section = _text(client.get(_url(w), {"section": "exports"}, headers={"HX-Request": "true"}))
    assert "hx-trigger" not in section and "100%" in section
    download = _url(w, f"export/{job.pk}/")
    assert f'href="{download}"' in section
    answer = client.get(download)
    assert answer.status_code == 200 and answer["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    serials = {serial for serial in Unit.objects.filter(owner=w.brand).values_list("serial", flat=True)}
    assert {row["serial"] for row in rows} <= serials and len(rows) == 7  # U1..U6 and U8, none of brand B's
    for caller in ("competitor", "regulator_out_of_scope", "distributor"):
        assert _page_client(w.users[caller]).get(download).status_code == 404


def test_a_bad_export_format_says_why_and_starts_nothing(world):
    _finish_run(world)
    response = _page_client(world.users["own"]).post(_url(world, "export/"), {"format": "xls"})
    assert response.status_code == 400 and "unknown export format" in _text(response)
    assert not Job.objects.filter(kind=JobKind.EXPORT).exists()


def test_the_desk_links_each_investigation_to_its_page(world):
    text = _text(_page_client(world.users["own"]).get("/desk/"))
    assert f'href="/investigation/{world.investigation.pk}/"' in text


# --- recording a finding ------------------------------------------------------------------------------


def test_a_qa_engineer_records_a_finding_by_digital_link_and_lands_on_its_investigation(world):
    # given
    w = world
    client = _page_client(w.users["own"])
    form = _text(client.get("/finding/new/"))
    assert 'id="finding"' in form and 'name="csrfmiddlewaretoken"' in form
    before = set(Investigation.objects.values_list("pk", flat=True))
    # when
    response = client.post(
        "/finding/new/",
        {
            "subject": identifier_render(w.c4.identity, form="digital_link"),
            "category": "metallic_debris",
            "severity": "high",
            "description": "Burr on the tab",
        },
    )
    # then
    (opened,) = Investigation.objects.exclude(pk__in=before).select_related("finding")
    assert response.status_code == 302 and response["Location"] == f"/investigation/{opened.pk}/"
    assert (opened.owner, opened.finding.subject_lot_id, opened.finding.severity) == (w.brand, w.c4.pk, "high")
    assert opened.finding.raised_by == w.users["own"] and opened.runs.count() == 1
    page = _text(client.get(response["Location"]))
    assert "Burr on the tab" in page and 'hx-trigger="every 1s"' in page


@pytest.mark.parametrize(
    ("caller", "subject", "status", "field", "message"),
    [
        ("own", "", 400, "subject", "Name the lot or unit found defective."),
        ("own", "urn:epc:id:sgtin:0614141.812345.6789", 400, "subject", "No lot or unit is known as"),
        ("own", "urn:epc:id:sgtin:bad", 400, "subject", "not a valid"),
        ("competitor", "U1", 400, "subject", "No lot or unit is known as “U1”."),  # brand A's serial, not B's
        ("own", "U1\x07", 400, "subject", "Control characters name nothing"),
        ("supplier_writes", "M1", 400, "description", "Describe what was found."),
        ("distributor", "U1", 403, None, "those who make lots and units record them"),
        ("viewer", "U1", 403, None, "Your role reads only"),
    ],
)
def test_a_finding_refused_says_why_next_to_the_field_and_records_nothing(
    world, caller, subject, status, field, message
):
    # given
    w = world
    users = {**w.users, "viewer": _member(w.brand, MemberRole.VIEWER), "supplier_writes": w.users["supplier"]}
    body = {"subject": subject, "category": "metallic_debris", "severity": "critical", "description": "Fe"}
    if caller == "supplier_writes":
        body["description"] = ""
    before = (Investigation.objects.count(), Job.objects.count())
    # when
    response = _page_client(users[caller]).post("/finding/new/", body)
    # then
    text = _text(response)
    assert response.status_code == status
    if field is not None:
        error = text.split(f'id="{field}-error"', 1)[1].split("</small>", 1)[0]
        assert message in error
        assert f'aria-describedby="{field}-error"' in text
    else:
        assert message in text
    assert (Investigation.objects.count(), Job.objects.count()) == before


def test_a_unit_another_brand_owns_is_refused_in_the_words_of_an_unknown_one(world):
    w = world
    client = _page_client(w.users["competitor"])
    unit = Unit.objects.get(pk=w.u[1])
    body = {"category": "metallic_debris", "severity": "critical", "description": "Fe"}
    other = client.post("/finding/new/", {**body, "subject": urn(unit.identity)})
    unknown = client.post("/finding/new/", {**body, "subject": urn(unit.identity).replace(unit.serial, "NOSUCH1")})
    assert other.status_code == unknown.status_code == 400
    said = [_text(r).split('id="subject-error"', 1)[1].split("</small>", 1)[0] for r in (other, unknown)]
    assert said[0].replace(unit.serial, "NOSUCH1") == said[1]


def test_a_regulator_exports_an_investigation_its_grants_cover_as_its_own_and_the_brand_never_sees_it(world):
    # given
    w = world
    _finish_run(w)
    regulator = _page_client(w.users["regulator_jurisdiction_in"])
    # when
    assert regulator.post(_url(w, "export/"), {"format": "csv"}).status_code == 302
    job = run_job(Job.objects.get(kind=JobKind.EXPORT))
    # then the file is the regulator's, with every brand's units the run reached
    download = _url(w, f"export/{job.pk}/")
    answer = regulator.get(download)
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert {row["serial"] for row in rows} >= set(
        Unit.objects.filter(owner=w.other_brand).values_list("serial", flat=True)
    )
    # and the brand is neither listed it nor given it
    own = _page_client(w.users["own"])
    assert str(job.pk) not in _text(own.get(_url(w))) and own.get(download).status_code == 404


def test_a_viewer_reads_the_page_without_the_buttons_that_write(world):
    _finish_run(world)
    text = _main(_text(_page_client(_member(world.brand, MemberRole.VIEWER)).get(_url(world))))
    assert 'id="units"' in text
    assert 'id="move"' not in text and 'id="export"' not in text


def test_the_page_costs_the_same_queries_whatever_the_number_of_units_and_exports_listed(world, monkeypatch):
    # given a traced investigation, read with a page of two units and one export, then of every unit and two
    w = world
    _finish_run(w)
    client = _page_client(w.users["own"])
    counted = []
    for rows, export in ((2, "csv"), (50, "json")):
        monkeypatch.setattr(investigation_pages, "UNIT_ROWS", rows)
        assert client.post(_url(w, "export/"), {"format": export}).status_code == 302
        # when
        with CaptureQueriesContext(connection) as queries:
            text = _text(client.get(_url(w)))
        units = text.split('id="units"', 1)[1].split("</tbody>", 1)[0].count("<tr>") - 1
        exports = text.split('id="export-rows"', 1)[1].split("</ul>", 1)[0].count("<li>")
        counted.append((len(queries), units, exports))
    # then
    assert [(units, exports) for _, units, exports in counted] == [(2, 1), (7, 2)]
    assert counted[0][0] == counted[1][0], counted


def test_a_regulator_records_an_inquiry_and_closes_it_but_never_moves_a_brands_investigation(world):
    # given
    w = world
    regulator = _page_client(w.users["regulator_all"])
    body = {"category": "metallic_debris", "severity": "critical", "description": "Market sample"}
    # when
    response = regulator.post("/finding/new/", {**body, "subject": urn(Unit.objects.get(pk=w.u[1]).identity)})
    inquiry = Investigation.objects.select_related("finding").get(finding__description="Market sample")
    run_job(inquiry.runs.get().job)
    closed = regulator.post(f"/investigation/{inquiry.pk}/move/", {"to": "closed", "note": "sample passed"})
    brands = regulator.post(_url(w, "move/"), {"to": "closed"})
    # then
    regulator_organisation = w.users["regulator_all"].memberships.get().organisation
    assert response.status_code == 302 and inquiry.finding.inquiry and inquiry.owner == regulator_organisation
    assert closed.status_code == 302
    inquiry.refresh_from_db()
    assert inquiry.status == InvestigationStatus.CLOSED
    assert brands.status_code == 403
    w.investigation.refresh_from_db()
    assert w.investigation.status != InvestigationStatus.CLOSED
