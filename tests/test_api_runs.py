"""GET /runs/{id}/ and its affected units, consignees and breakdown, from the run's stored result."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from packs.models import Shipment, Unit
from suppliers.models import Membership
from suppliers.services import api_token_create
from tests.factories import SiteFactory
from tests.jobs_support import run_job
from tests.test_api_support import callers, client_for, member, more_units, raise_finding, traced, urn, written
from tests.trace_world import build_world
from traceability import genealogy
from traceability.api import selectors as api_selectors
from traceability.api.serializers import UnitsPageSerializer, scoped_counts
from traceability.investigations.models import TraceRun
from traceability.ledger.selectors import PrefixLength

pytestmark = pytest.mark.django_db


def _step(source, target, record, exposure="definite"):
    return {"from": source.identity, "to": target, "record": record, "exposure": exposure}


def test_a_page_of_affected_units_names_each_with_its_path_and_consignee():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    gtin = w.work_order.product_model.gtin
    # when
    response = client.get(f"/api/v1/runs/{run}/units/", {"limit": 1})
    # then
    assert response.status_code == 200
    assert response.json() == {
        "run": run,
        "position": 1,
        "next": f"http://testserver/api/v1/runs/{run}/units/?after={w.u[1]}&limit=1",
        "results": [
            {
                "serial": "U1",
                "gtin": gtin,
                "identity": f"sgtin:{gtin}:U1",
                "epc": urn(f"sgtin:{gtin}:U1"),
                "digital_link": f"https://id.gs1.org/01/{gtin}/21/U1",
                "exposure": "definite",
                "product_model": w.work_order.product_model.model_number,
                "work_order": w.work_order.number,
                "path": [
                    _step(w.m1, w.m2.identity, "calcination"),
                    _step(w.m2, w.c1.identity, "cell line 1"),
                    _step(w.c1, w.mod1.identity, "module line"),
                    _step(w.mod1, f"sgtin:{gtin}:U1", "build U1"),
                ],
                "consignees": [{"organisation": w.d1.slug, "name": w.d1.name, "shipped_at": "2024-03-03T08:00:00Z"}],
            }
        ],
    }


def test_a_page_of_units_answers_exactly_what_its_documented_serializer_gives():
    # given a run whose units went to distributors
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    # when
    body = client.get(f"/api/v1/runs/{run}/units/", {"limit": 3}).json()
    # then
    filters = api_selectors.AffectedUnitFilter(data={}, queryset=Unit.objects.none())
    assert filters.is_valid()
    page = api_selectors.run_units_page(
        TraceRun.objects.get(pk=run),
        after=0,
        limit=3,
        filters=filters,
        prefix_length=PrefixLength(),
        shown=lambda: genealogy.units_of(w.brand.pk),
        party_id=w.brand.pk,
    )
    assert any(unit["consignees"] for unit in page.units)
    payload = {"run": run, "position": body["position"], "next": body["next"], "results": page.units}
    assert body == json.loads(JSONRenderer().render(UnitsPageSerializer(payload).data))


def test_pages_follow_the_cursor_to_the_end():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    # when
    pages, url = [], f"/api/v1/runs/{run}/units/?limit=3"
    while url:
        body = client.get(url).json()
        pages.append([(u["serial"], u["exposure"]) for u in body["results"]])
        url = body["next"]
    # then
    assert pages == [
        [("U1", "definite"), ("U2", "definite"), ("U3", "definite")],
        [("U4", "potential"), ("U5", "potential"), ("U6", "potential")],
        [("U8", "definite")],
    ]


def test_a_unit_reached_through_refurbishment_is_explained_through_the_unit_it_was_made_from():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    gtin = w.work_order.product_model.gtin
    # when
    u8 = client.get(f"/api/v1/runs/{run}/units/", {"after": w.u[6]}).json()["results"]
    # then
    assert [u["serial"] for u in u8] == ["U8"]
    assert u8[0]["path"][-2:] == [
        _step(w.mod1, f"sgtin:{gtin}:U1", "build U1"),
        {"from": f"sgtin:{gtin}:U1", "to": f"sgtin:{gtin}:U8", "record": "refurbish U1", "exposure": "definite"},
    ]
    assert u8[0]["consignees"] == []


@pytest.mark.parametrize(
    ("query", "serials"),
    [
        ({"exposure": "potential"}, ["U4", "U5", "U6"]),
        ({"exposure": "definite"}, ["U1", "U2", "U3", "U8"]),
        ({"consignee": "D1"}, ["U1", "U2", "U3"]),
        ({"consignee": "D2", "exposure": "definite"}, []),
        ({"product_model": "MODEL"}, ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]),
        ({"product_model": "nope"}, []),
        ({"work_order": "WO"}, ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]),
        ({"work_order": "WO-nope", "exposure": "definite"}, []),
    ],
)
def test_affected_units_are_filtered(query, serials):
    # given
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    names = {
        "D1": w.d1.slug,
        "D2": w.d2.slug,
        "MODEL": w.work_order.product_model.model_number,
        "WO": w.work_order.number,
    }
    # when
    response = client.get(f"/api/v1/runs/{run}/units/", {k: names.get(v, v) for k, v in query.items()})
    # then
    assert response.status_code == 200
    assert ([u["serial"] for u in response.json()["results"]], response.json()["next"]) == (serials, None)


def test_a_filtered_page_is_filled_across_batches_and_continues_where_it_stopped():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    # when
    first = client.get(f"/api/v1/runs/{run}/units/", {"exposure": "potential", "limit": 2}).json()
    second = client.get(first["next"]).json()
    # then
    assert [u["serial"] for u in first["results"]] == ["U4", "U5"]
    assert first["next"] == f"http://testserver/api/v1/runs/{run}/units/?after={w.u[5]}&exposure=potential&limit=2"
    assert ([u["serial"] for u in second["results"]], second["next"]) == (["U6"], None)


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"exposure": "maybe"}, "invalid_choice", "exposure"),
        ({"limit": 0}, "min_value", "limit"),
        ({"after": "x"}, "invalid", "after"),
    ],
)
def test_bad_page_parameters_are_refused(query, code, field):
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    response = client.get(f"/api/v1/runs/{run}/units/", query)
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)


def test_the_page_size_is_capped_at_1000():
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    response = client.get(f"/api/v1/runs/{run}/units/", {"limit": 5000})
    assert (response.status_code, len(response.json()["results"]), response.json()["next"]) == (200, 7, None)


def test_a_page_of_units_costs_the_same_queries_at_5_or_50_units():
    # given a run over 7 + 60 units
    w = build_world()
    more_units(w, 60)
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    # when
    with CaptureQueriesContext(connection) as five:
        small = client.get(f"/api/v1/runs/{run}/units/", {"limit": 5})
    with CaptureQueriesContext(connection) as fifty:
        large = client.get(f"/api/v1/runs/{run}/units/", {"limit": 50})
    # then
    assert (len(small.json()["results"]), len(large.json()["results"])) == (5, 50)
    shipped = [u for u in large.json()["results"] if u["serial"].startswith("X")]
    assert len(shipped) == 43 and all(u["consignees"] and u["path"] and u["epc"] for u in shipped)
    assert len(fifty) == len(five)


def test_a_filtered_page_costs_the_same_queries_at_5_or_50_units():
    # given
    w = build_world()
    more_units(w, 60)
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    query = {"consignee": w.d2.slug, "exposure": "definite"}
    # when
    with CaptureQueriesContext(connection) as five:
        small = client.get(f"/api/v1/runs/{run}/units/", {**query, "limit": 5})
    with CaptureQueriesContext(connection) as fifty:
        large = client.get(f"/api/v1/runs/{run}/units/", {**query, "limit": 50})
    # then
    assert (len(small.json()["results"]), len(large.json()["results"])) == (5, 50)
    assert len(fifty) == len(five)


def test_a_run_still_tracing_has_no_units_yet():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    run = raise_finding(client, urn(w.m1.identity)).json()["run"]
    # when
    responses = [client.get(f"/api/v1/runs/{run}/{part}/") for part in ("units", "consignees", "breakdown")]
    # then
    for response in responses:
        assert response.status_code == 409
        assert response.json() == {
            "code": "run_not_finished",
            "message": f"run {run} has not finished (its job is queued, 0%):"
            " its result is complete once the job has succeeded",
        }


def test_a_run_shows_its_position_counts_and_job_progress():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    created = traced(client, w)
    # when
    body = client.get(f"/api/v1/runs/{created['run']}/").json()
    # then
    assert {k: body[k] for k in ("id", "investigation", "position", "definite_units", "potential_units")} == {
        "id": created["run"],
        "investigation": created["investigation"],
        "position": 1,
        "definite_units": 4,
        "potential_units": 3,
    }
    assert (body["consignees"], body["job"]["status"], body["job"]["percent"], body["job"]["phase"]) == (
        2,
        "succeeded",
        100,
        "traced",
    )


def test_consignees_of_a_run_with_counts_and_shipping_dates():
    # given
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    # when
    response = client.get(f"/api/v1/runs/{run}/consignees/")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "previous": None,
        "results": [
            {
                "organisation": d.slug,
                "name": d.name,
                "roles": ["distributor"],
                "pgln": urn(f"pgln:{d.pgln}"),
                "units": 3,
                "first_shipped_at": shipped,
                "last_shipped_at": shipped,
                "ship_to_countries": [],
            }
            for d, shipped in ((w.d1, "2024-03-03T08:00:00Z"), (w.d2, "2024-03-04T08:00:00Z"))
        ],
    }


@pytest.mark.parametrize("caller", ["owner", "regulator"])
def test_consignees_name_the_countries_their_shipments_were_addressed_to(caller):
    # given D1's shipment addressed to its warehouse in Italy, D2's to no site; the owner's share is
    # counted from the result, the regulator's whole run read as stored: both name the same countries
    w = build_world()
    Shipment.objects.filter(consignee=w.d1).update(ship_to=SiteFactory(owner=w.d1, country="IT"))
    client = callers(w)[caller]
    run = traced(client_for(member(w.brand)), w)["run"]
    # when
    response = client.get(f"/api/v1/runs/{run}/consignees/")
    # then
    assert response.status_code == 200
    assert [(c["organisation"], c["ship_to_countries"]) for c in response.json()["results"]] == [
        (w.d1.slug, ["IT"]),
        (w.d2.slug, []),
    ]


def test_consignees_come_a_page_at_a_time_like_every_list():
    # given a run whose units reached two distributors, one with more of them
    w = build_world()
    more_units(w, 2)
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    # when
    first = client.get(f"/api/v1/runs/{run}/consignees/", {"limit": 1}).json()
    second = client.get(first["next"]).json()
    back = client.get(second["previous"]).json()
    # then most units first, one a page, and back again
    assert [(c["organisation"], c["units"]) for c in first["results"]] == [(w.d2.slug, 5)]
    assert [(c["organisation"], c["units"]) for c in second["results"]] == [(w.d1.slug, 3)]
    assert (first["previous"], second["next"]) == (None, None)
    assert back == first


def test_breakdown_counts_each_affected_unit_once_by_model_work_order_site_month_and_consignee():
    # given 7 units of March 2024 and 60 more of April on the same work order
    w = build_world()
    more_units(w, 60)
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    model = w.work_order.product_model
    # when
    response = client.get(f"/api/v1/runs/{run}/breakdown/")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "product_models": [
            {"model_number": model.model_number, "name": model.name, "units": 67, "definite": 64, "potential": 3}
        ],
        "work_orders": [{"number": w.work_order.number, "units": 67, "definite": 64, "potential": 3}],
        "sites": [
            {"site": w.work_order.site_id, "name": w.work_order.site.name, "units": 67, "definite": 64, "potential": 3}
        ],
        "production_months": [
            {"month": "2024-04", "units": 60, "definite": 60, "potential": 0},
            {"month": "2024-03", "units": 7, "definite": 4, "potential": 3},
        ],
        "consignees": [
            {"organisation": w.d2.slug, "name": w.d2.name, "units": 63},
            {"organisation": w.d1.slug, "name": w.d1.name, "units": 3},
        ],
    }


def test_a_run_from_a_unit_lists_the_unit_and_what_was_made_from_it():
    # given a finding on unit U1 (overheating), traced
    w = build_world()
    client = client_for(member(w.brand))
    created = raise_finding(client, "U1", category="overheating_incident").json()
    run_job(TraceRun.objects.get(pk=created["run"]).job)
    # when
    units = client.get(f"/api/v1/runs/{created['run']}/units/").json()["results"]
    breakdown = client.get(f"/api/v1/runs/{created['run']}/breakdown/").json()
    # then
    assert [(u["serial"], u["exposure"], len(u["path"])) for u in units] == [
        ("U1", "definite", 0),
        ("U8", "definite", 1),
    ]
    assert breakdown["work_orders"] == [{"number": w.work_order.number, "units": 2, "definite": 2, "potential": 0}]
    assert breakdown["consignees"] == [{"organisation": w.d1.slug, "name": w.d1.name, "units": 1}]


def test_reading_a_run_writes_nothing():
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    before = written()
    for part in ("", "units/", "consignees/", "breakdown/"):
        assert client.get(f"/api/v1/runs/{run}/{part}").status_code == 200
    assert written() == before


def test_a_brands_page_of_its_units_costs_the_same_queries_at_any_size_its_token_included_and_writes_nothing():
    # given a brand's run over its 7 + 60 units (a carton of them shipped), read with its QA engineer's token
    w = build_world()
    more_units(w, 60)
    user = member(w.brand)
    run = traced(client_for(user), w)["run"]
    _, key = api_token_create(membership=Membership.objects.get(user=user), scope="read")
    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    # when
    with CaptureQueriesContext(connection) as one:
        small = client.get(f"/api/v1/runs/{run}/units/", {"limit": 1})
    with CaptureQueriesContext(connection) as fifty:
        large = client.get(f"/api/v1/runs/{run}/units/", {"limit": 50})
    # then a fixed number of queries whatever the page's size
    assert (len(small.json()["results"]), len(large.json()["results"])) == (1, 50)
    assert all(u["consignees"] for u in large.json()["results"] if u["serial"].startswith("X"))
    assert small.json()["results"][0] == large.json()["results"][0]
    if connection.vendor == "postgresql":
        # three: the token (one query), the run, and the page (the brand received nothing, so one
        # statement reads its part, its units, their paths named, their shipments at any depth and
        # the company prefixes to write their URNs with: ``finished_run_party_page``)
        assert [len(one), len(fifty)] == [3, 3], "\n".join(q["sql"] for q in fifty)
        assert sum(q["sql"].startswith("WITH linked") for q in fifty) == 1
    else:
        # 13: the token, the run, what the brand received, the party's part of the result (its
        # segments with their bounds in one query, the units linked alone), the page's member rows,
        # paths, units, shipments at any depth, lots, records, prefixes; plus one probe of the
        # segments' first members per growing step (a longer page may reach into more segments' unit ranges)
        def fixed(queries: CaptureQueriesContext) -> list[str]:
            probes = ("WITH page_firsts", "SELECT unit_id FROM traceability_segmentmember")
            return [q["sql"] for q in queries if not q["sql"].startswith(probes)]

        assert len(fixed(one)) == len(fixed(fifty)) == 13
        assert len(one) <= len(fifty) <= 15
    # and a read writes nothing (no "last used" stamp on the token, no audit entry for a brand's read)
    assert not [q for q in fifty if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_a_result_with_no_stored_share_shows_nothing_to_a_party_and_all_only_to_the_policys_full_view():
    # given a run's counts, and no party view counted for its reader
    counts = {"definite_units": 4, "potential_units": 3, "consignees": 2}
    nothing = {"definite_units": 0, "potential_units": 0, "consignees": 0, "others": []}
    # when / then: no answer from the policy, or a party's, shows nothing; only an explicit full view all
    assert scoped_counts(counts, None, {}) == nothing
    assert scoped_counts(counts, None, {"full_view": False}) == nothing
    assert scoped_counts(counts, None, {"full_view": 1}) == nothing
    assert scoped_counts(counts, None, {"full_view": True}) == {**counts, "others": []}


def test_a_party_reading_a_run_whose_share_was_not_stored_is_shown_none_of_its_units():
    # given the brand's finished run, its stored party view gone (a run from before views were stored)
    w = build_world()
    client = client_for(member(w.brand))
    run = traced(client, w)["run"]
    TraceRun.objects.filter(pk=run).update(party_view={})
    # when
    body = client.get(f"/api/v1/runs/{run}/").json()
    # then
    assert [body[k] for k in ("definite_units", "potential_units", "consignees", "others")] == [0, 0, 0, []]
