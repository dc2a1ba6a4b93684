"""An affected unit's path on the QA console (issue 15): each step from the finding's subject through
the lots in between to the unit, in words and as a server-drawn SVG picture (definite links solid,
potential ones dashed). Read by whoever sees the unit in the run's units list, and by no one else:
a unit the caller may not see, one the run does not reach and one that does not exist answer 404 in
the same words, with nothing of theirs in the page.

The world (tests/trace_world.py) is brand A's: its finding is on material lot M1; U1 is reached by
definite links only (M1 → M2 → C1 → MOD1 → U1), U4 through potential ones (M2 + M3 → C2 + C3, then
C2 + C4 → U4..U6 in one work order). Brand B built U9 and U10 from C1 too.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from packs.models import Unit
from tests.factories import CellLotFactory, MaterialLotFactory, WorkOrderFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, raise_finding, urn
from tests.test_pages import _main, _member, _page_client, _text, chain  # noqa: F401  (chain is a fixture)
from tests.test_pages_investigation import _finish_run
from tests.trace_world import AT
from traceability.genealogy.commissioning import units_create
from traceability.genealogy.models import RecordKind
from traceability.genealogy.writes import UnitBuild, transformation_record, unit_builds_record
from traceability.investigations.models import TraceRun
from traceability.investigations.services import finding_record
from traceability.ledger.selectors import identifier_render
from traceability.ledger.services import ledger_append
from traceability.pages.picture import (
    BOX_HEIGHT,
    COLUMN_GAP,
    LABEL_CHARS,
    MARGIN,
    ROW_GAP,
    Arrow,
    Step,
    layers_of,
    picture_layout,
)

pytestmark = pytest.mark.django_db


@pytest.fixture()
def world(chain):  # noqa: F811  (the imported fixture: brand A's finding on M1, and a user of each party)
    _finish_run(chain)
    return chain


def _identity(w, number: int) -> str:
    return Unit.objects.get(pk=w.u[number]).identity


def _url(w, value: str) -> str:
    return f"/investigation/{w.investigation.pk}/unit/?{urlencode({'id': value})}"


def _svg(text: str) -> str:
    return text.split('<svg id="path-picture"', 1)[1].split("</svg>", 1)[0]


def _labels(svg: str) -> list[str]:
    return re.findall(r'<text class="label"[^>]*>([^<]*)</text>', svg)


def _links(svg: str) -> list[tuple[str, bool]]:
    """(record, dashed) of each arrow drawn."""
    lines = re.findall(r"<line class=\"link [a-z]+\"([^>]*)><title>[^“]*“([^”]*)”</title></line>", svg)
    return [(record, "stroke-dasharray" in attributes) for attributes, record in lines]


# --- the path in words and as a picture ---------------------------------------------------------------


def test_a_definitely_exposed_units_path_is_told_step_by_step_and_drawn_with_solid_arrows(world):
    # given
    w = world
    m1, m2, c1, mod1, u1 = w.m1.identity, w.m2.identity, w.c1.identity, w.mod1.identity, _identity(w, 1)
    # when
    response = _page_client(w.users["own"]).get(_url(w, u1))
    # then
    assert response.status_code == 200
    text = _main(_text(response))
    steps = re.findall(r"<li class=\"(definite|potential)\">From (lot|unit) <code>([^<]*)</code> into (lot|unit) "
                       r"<code>([^<]*)</code>, by the record “([^”]*)”", text)  # fmt: skip
    assert steps == [
        ("definite", "lot", m1, "lot", m2, "calcination"),
        ("definite", "lot", m2, "lot", c1, "cell line 1"),
        ("definite", "lot", c1, "lot", mod1, "module line"),
        ("definite", "lot", mod1, "unit", u1, "build U1"),
    ]
    assert text.count("<strong>Definite link</strong>: the record has one input or one output") == 4
    assert 'id="unit-exposure"><strong>Definite</strong>' in text
    assert "Definitely exposed: every link on this path is definite" in text
    svg = _svg(text)
    assert 'role="img" aria-labelledby="picture-title picture-desc"' in svg
    assert f"The path from {m1} to unit U1, drawn left to right" in svg
    assert "5 boxes joined by 4 arrows; solid arrows are definite links, dashed arrows (0) potential links." in svg
    assert _labels(svg) == [m1, m2, c1, mod1, u1]
    assert _links(svg) == [("calcination", False), ("cell line 1", False), ("module line", False), ("build U1", False)]
    assert ">Definite link</text>" in svg and ">Potential link</text>" in svg  # the legend


def test_a_potentially_exposed_units_path_says_why_and_draws_its_potential_links_dashed(world):
    # given
    w = world
    m1, m2, c2, u4 = w.m1.identity, w.m2.identity, w.c2.identity, _identity(w, 4)
    # when: named by its serial, as printed
    response = _page_client(w.users["own"]).get(_url(w, "U4"))
    # then
    text = _main(_text(response))
    assert response.status_code == 200
    assert re.findall(r'<li class="(definite|potential)">', text) == ["definite", "potential", "potential"]
    assert f"From lot <code>{m2}</code> into lot <code>{c2}</code>, by the record “cell line 2”." in text
    assert f"From lot <code>{c2}</code> into unit <code>{u4}</code>, by the record “{w.work_order.number}”." in text
    assert text.count("<strong>Potential link</strong>: the record has several inputs and several outputs") == 2
    assert 'id="unit-exposure">Potential<' in text
    assert "Potentially exposed: the path passes through at least one potential link" in text
    svg = _svg(text)
    assert _labels(svg) == [m1, m2, c2, u4]
    assert _links(svg) == [("calcination", False), ("cell line 2", True), (w.work_order.number, True)]
    assert "dashed arrows (2) potential links" in svg
    assert re.findall(r'<g class="node( marked)?"><title>([^<]*)</title>', svg)[0] == (" marked", m1)  # the subject


@pytest.mark.parametrize("caller", ["own", "regulator_all"])
def test_each_step_is_the_one_rests_units_page_gives_the_same_caller(world, caller):
    # given the run's units as REST lists them to the caller
    w = world
    run = TraceRun.objects.get(investigation=w.investigation)
    listed = client_for(w.users[caller]).get(f"/api/v1/runs/{run.pk}/units/", {"limit": 50}).json()["results"]
    client = _page_client(w.users[caller])
    for unit in listed:
        # when its page is read
        text = _main(_text(client.get(_url(w, unit["identity"]))))
        # then it tells the same steps
        told = re.findall(r'<li class="(definite|potential)">From (?:lot|unit) <code>([^<]*)</code> into (?:lot|unit) '
                          r"<code>([^<]*)</code>, by the record “([^”]*)”", text)  # fmt: skip
        assert told == [(s["exposure"], s["from"], s["to"], s["record"]) for s in unit["path"]], unit["serial"]
    assert len(listed) == {"own": 7, "regulator_all": 9}[caller]


def test_each_row_of_the_units_table_links_to_its_units_path(world):
    # given
    w = world
    client = _page_client(w.users["own"])
    # when
    table = _text(client.get(f"/investigation/{w.investigation.pk}/")).split('id="units"', 1)[1].split("</table>")[0]
    links = re.findall(r'<a href="([^"]*)">Path to (U\d+)</a>', table)
    # then each leads to its unit's page
    assert [serial for _href, serial in links] == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]
    for href, serial in links:
        assert href == _url(w, _identity(w, int(serial[1:])))
        assert f"How unit {serial} is reached" in _text(client.get(href))


def test_a_unit_is_named_by_its_digital_link_or_epc_urn_too(world):
    w = world
    client = _page_client(w.users["own"])
    for form in ("digital_link", "urn"):
        response = client.get(_url(w, identifier_render(_identity(w, 8), form=form)))
        assert response.status_code == 200 and "How unit U8 is reached" in _text(response)


def test_a_unit_reached_from_a_subject_unit_is_told_through_the_unit_link_and_the_subject_has_no_step(world):
    # given brand A's second finding, on U1 itself (U8 was refurbished from it)
    w = world
    client = _page_client(w.users["own"])
    finding = raise_finding(client_for(w.users["own"]), urn(_identity(w, 1))).json()
    run_job(TraceRun.objects.get(pk=finding["run"]).job)
    url = f"/investigation/{finding['investigation']}/unit/?"
    # when
    refurbished = _main(_text(client.get(url + urlencode({"id": "U8"}))))
    subject = client.get(url + urlencode({"id": "U1"}))
    # then
    u1, u8 = _identity(w, 1), _identity(w, 8)
    assert f"From unit <code>{u1}</code> into unit <code>{u8}</code>, by the record “refurbish U1”." in refurbished
    assert _labels(_svg(refurbished)) == [u1, u8]
    assert re.findall(
        r"<g class=\"node marked\"><title>[^<]*</title>\s*<rect[^>]*/>\s*<text[^>]*>([^<]*)<", refurbished
    ) == [
        "Subject",
        "Affected unit",
    ]
    # the subject itself is one of the run's units (reached with no step): no step, no picture
    assert subject.status_code == 200
    assert "there is no step to it" in _text(subject) and 'id="path-picture"' not in _text(subject)


def test_the_page_speaks_chinese(world):
    # given
    w = world
    client = _page_client(w.users["own"])
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/desk/"})
    # when
    text = _main(_text(client.get(_url(w, "U4"))))
    # then
    assert "路径文字说明" in text and "路径图示" in text and "可能关联" in text
    assert f"由批次 <code>{w.m1.identity}</code> 进入批次 <code>{w.m2.identity}</code>，依据记录“calcination”。" in text


# --- who reads it --------------------------------------------------------------------------------------

# caller: the units it is shown (None: the investigation itself is unknown to it)
SHOWN = {
    "own": (1, 2, 3, 4, 5, 6, 8),
    "regulator_all": (1, 2, 3, 4, 5, 6, 8, 9, 10),
    "regulator_jurisdiction_in": (1, 2, 3, 4, 5, 6, 8, 9, 10),
    "competitor": None,
    "supplier": None,
    "distributor": None,
    "regulator_out_of_scope": None,
}


@pytest.mark.parametrize(("caller", "shown"), list(SHOWN.items()))
def test_a_units_path_is_read_by_whoever_sees_the_unit_in_the_runs_list_and_by_no_one_else(world, caller, shown):
    # given
    w = world
    client = _page_client(w.users[caller])
    unknown_investigation = _main(_text(client.get(f"/investigation/{w.investigation.pk}/")))
    for number in (1, 4, 7, 8, 9, 10):
        # when
        response = client.get(_url(w, _identity(w, number)))
        text = _main(_text(response))
        # then
        if shown is None:  # the investigation is unknown to it: answered as the investigation's page is
            assert response.status_code == 404 and text == unknown_investigation, number
        elif number in shown:
            assert response.status_code == 200 and f"How unit U{number} is reached" in text, number
        else:  # not reached (U7), or another's: answered as a unit that does not exist
            assert response.status_code == 404, number
            words = "No affected unit you may see is known as “{}” in this investigation's latest run."
            assert words.format(_identity(w, number)) in text
            nowhere = _main(_text(client.get(_url(w, "sgtin:00000000000000:NOPE"))))
            assert text.replace(_identity(w, number), "sgtin:00000000000000:NOPE") == nowhere
            assert f"U{number} is reached" not in text and 'id="path-picture"' not in text


def test_nothing_of_another_brands_unit_is_in_the_page_of_one_that_shares_its_lots(world):
    # given brand B's U9, built from the same cell lot C1 as brand A's U1
    w = world
    foreign = Unit.objects.get(pk=w.u[9])
    # when brand A reads U1's path, and asks for U9's by serial, identity and Digital Link
    page = _text(_page_client(w.users["own"]).get(_url(w, _identity(w, 1))))
    asked = [
        _page_client(w.users["own"]).get(_url(w, value))
        for value in ("U9", foreign.identity, identifier_render(foreign.identity, form="digital_link"))
    ]
    # then
    assert [response.status_code for response in asked] == [404, 404, 404]
    for text in [page, *(_text(response) for response in asked[:2])]:
        assert w.other_brand.name not in text and w.other_distributor.name not in text
        assert "build U9" not in text and f"{foreign.gtin}:U10" not in text


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        ("", 400, "Type what to look for."),
        ("U1\x01", 400, "Control characters name nothing: type the identifier as printed."),
        ("x" * 301, 400, "That is too long to name anything."),
        ("urn:epc:id:sgtin:bogus", 400, "urn:epc:id:sgtin:bogus"),
        ("https://id.gs1.org/01/06990000000008/10/M1", 400, "names a LGTIN: trace a unit (SGTIN)"),
        ("M1", 404, "No affected unit you may see is known as “M1” in this investigation's latest run."),
    ],
)
def test_a_bad_or_unknown_name_says_why(world, value, status, message):
    response = _page_client(world.users["own"]).get(_url(world, value))
    assert response.status_code == status and message in _text(response)


def test_a_serial_of_several_units_the_caller_sees_asks_for_one_by_its_identity(world):
    # given brand B has a unit serialled U4 too
    w = world
    with transaction.atomic():
        (twin,) = units_create(
            owner=w.other_brand,
            product_model=w.other_order.product_model,
            work_order=w.other_order,
            serials=["U4"],
            produced_at=AT,
        )
    twin_identity = Unit.objects.get(pk=twin).identity
    # when the regulator, who sees both, names it by serial; brand A, who sees its own only
    regulator = _page_client(w.users["regulator_all"]).get(_url(w, "U4"))
    own = _page_client(w.users["own"]).get(_url(w, "U4"))
    # then
    assert regulator.status_code == 400
    assert f"“U4” names several units you may see: {_identity(w, 4)}, {twin_identity}; name one by its identity." in (
        _text(regulator)
    )
    assert own.status_code == 200 and twin_identity not in _text(own)


def test_before_a_run_has_finished_no_unit_has_a_path_to_show(chain):  # noqa: F811
    response = _page_client(chain.users["own"]).get(_url(chain, _identity(chain, 1)))
    assert response.status_code == 409
    assert "No trace run of this investigation has finished yet" in _text(response)


def test_anonymous_callers_are_sent_to_sign_in(world):
    from django.test import Client

    response = Client().get(_url(world, "U1"))
    assert response.status_code == 302 and response["Location"].startswith("/signin/")


# --- cost --------------------------------------------------------------------------------------------


def _chain_of(depth: int):
    """A material lot, ``depth`` cell lots each made from the one before (definite links), and a unit
    built from the last; brand's finding on the material lot, its run finished."""
    order = WorkOrderFactory()
    brand = order.owner
    lots = [MaterialLotFactory(), *(CellLotFactory() for _ in range(depth))]
    with transaction.atomic():
        (unit,) = units_create(
            owner=brand, product_model=order.product_model, work_order=order, serials=["S1"], produced_at=AT
        )
        entry = ledger_append(source="manual", summary="a chain")
        for made_from, made in zip(lots, lots[1:], strict=False):
            transformation_record(
                entry=entry,
                owner=brand,
                kind=RecordKind.MANUAL,
                reference=f"step {made.code}",
                occurred_at=AT,
                input_lot_ids=[made_from.pk],
                output_lot_ids=[made.pk],
            )
        unit_builds_record(
            entry=entry,
            owner=brand,
            builds=[UnitBuild(reference="build S1", unit_id=unit, lot_ids=frozenset({lots[-1].pk}), occurred_at=AT)],
        )
    finding = finding_record(
        owner=brand,
        subject=lots[0],
        category="metallic_debris",
        severity="critical",
        description="Fe 45 µm",
        submit=lambda job: None,
    )
    run_job(finding.investigation.runs.get().job)
    url = f"/investigation/{finding.investigation.pk}/unit/?{urlencode({'id': Unit.objects.get(pk=unit).identity})}"
    return _page_client(_member(brand)), url


def test_the_pages_queries_do_not_grow_with_the_paths_length():
    # given a path of two steps and one of nine
    counted = {}
    for depth in (1, 8):
        client, url = _chain_of(depth)
        client.get(url)  # the session and the caller read once, as on any page after the first
        # when
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        # then
        assert response.status_code == 200
        assert len(_labels(_svg(_text(response)))) == depth + 2
        counted[depth] = len(queries.captured_queries)
    assert counted[8] == counted[1] <= 16  # the caller, the investigation, its run, the unit, its path


# --- the picture's layout ----------------------------------------------------------------------------


def test_nodes_are_laid_out_in_layers_by_their_longest_distance_from_a_start():
    # given two paths to U that meet at C, one of them longer
    paths = [
        [Step("M", "C", True), Step("C", "U", False)],
        [Step("A", "B", True), Step("B", "C", True), Step("C", "U", True)],
    ]
    # when / then
    assert layers_of(paths) == [["M", "A"], ["B"], ["C"], ["U"]]
    assert layers_of([]) == []
    assert layers_of([[Step("X", "Y", True), Step("Y", "X", True)]]) == [["X"], ["Y"]]  # a cycle ends


def test_the_picture_places_boxes_left_to_right_and_draws_a_definite_link_over_a_potential_one():
    # given
    paths = [[Step("M", "C", True, "r1"), Step("C", "U", False, "r2")], [Step("C", "U", True, "r3")]]
    # when
    picture = picture_layout(paths)
    # then
    width = picture.boxes[0].width
    assert [(box.key, box.layer, box.x, box.y) for box in picture.boxes] == [
        ("M", 0, MARGIN, MARGIN),
        ("C", 1, MARGIN + width + COLUMN_GAP, MARGIN),
        ("U", 2, MARGIN + 2 * (width + COLUMN_GAP), MARGIN),
    ]
    middle = MARGIN + BOX_HEIGHT // 2
    assert picture.arrows == (
        Arrow("M", "C", True, "r1", MARGIN + width, middle, MARGIN + width + COLUMN_GAP, middle),
        Arrow("C", "U", True, "r3", MARGIN + 2 * width + COLUMN_GAP, middle, MARGIN + 2 * (width + COLUMN_GAP), middle),
    )
    assert (picture.width, picture.height, picture.potential) == (2 * MARGIN + 3 * width + 2 * COLUMN_GAP,
                                                                  2 * MARGIN + BOX_HEIGHT, 0)  # fmt: skip


def test_a_crowded_layer_draws_its_first_boxes_centred_and_says_how_many_it_leaves_out():
    # given 25 lots into one unit, and a long label
    long = "lgtin:" + "9" * 60
    paths = [[Step(f"L{n}", "U", False)] for n in range(24)] + [[Step(long, "U", False)]]
    # when
    picture = picture_layout(paths, cap=20)
    # then
    assert picture.left_out == ((0, 5),)
    assert [box.key for box in picture.boxes if box.layer == 0] == [f"L{n}" for n in range(20)]
    assert len(picture.arrows) == 20  # none to a box left out
    unit = next(box for box in picture.boxes if box.key == "U")
    assert unit.y == MARGIN + (20 * BOX_HEIGHT + 19 * ROW_GAP - BOX_HEIGHT) // 2  # centred on the tall layer
    assert picture.height == 2 * MARGIN + 20 * BOX_HEIGHT + 19 * ROW_GAP
    assert all(len(box.label) <= LABEL_CHARS for box in picture.boxes)
    cut = picture_layout([[Step(long, "U", True)]]).boxes[0]
    assert cut.label == long[: LABEL_CHARS - 1] + "…"
