"""The `trace` command's fixed JSON contract, its readable output and its refusals."""

import datetime as dt
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from cells.models import Inspection
from suppliers.models import Membership, Role
from tests.factories import CertificateFactory, OrganisationFactory
from tests.test_api_support import member
from tests.trace_world import add_competitor, build_world
from traceability.ledger.selectors import identifier_render

pytestmark = pytest.mark.django_db


def trace(*args):
    out = StringIO()
    call_command("trace", *args, stdout=out)
    return out.getvalue()


def test_forward_json_contract():
    # given
    w = build_world()
    urn = identifier_render(w.m1.identity, form="epc")
    # when
    result = json.loads(trace("forward", urn, "--json"))
    # then
    assert result["subject"] == w.m1.identity
    assert {u["epc"]: u["exposure"] for u in result["units"]} == {
        identifier_render(f"sgtin:{w.work_order.product_model.gtin}:U{i}", form="epc"): exposure
        for i, exposure in [(1, "definite"), (2, "definite"), (3, "definite"), (8, "definite")]
        + [(4, "potential"), (5, "potential"), (6, "potential")]
    }
    assert all(u["epc"].startswith("urn:epc:id:sgtin:") for u in result["units"])
    assert sorted(result["consignees"]) == sorted(identifier_render(f"pgln:{d.pgln}", form="epc") for d in (w.d1, w.d2))
    assert all(c.startswith("urn:epc:id:pgln:") for c in result["consignees"])
    u2 = next(u for u in result["units"] if u["serial"] == "U2")
    assert [step["record"] for step in u2["path"]] == ["calcination", "cell line 1", "module line", "build U2"]


def test_forward_accepts_a_digital_link_or_a_lot_code_and_gives_the_same_answer():
    w = build_world()
    gtin, lot = w.m1.identity.split(":")[1:]
    by_urn = json.loads(trace("forward", identifier_render(w.m1.identity, form="epc"), "--json"))
    by_link = json.loads(trace("forward", f"https://id.gs1.org/01/{gtin}/10/{lot}", "--json"))
    by_code = json.loads(trace("forward", "M1", "--json"))
    assert by_urn == by_link == by_code


def test_backward_json_lists_every_upstream_lot():
    # given
    w = build_world()
    # when
    result = json.loads(trace("backward", "U8", "--json"))
    # then
    assert result["subject"] == f"sgtin:{w.work_order.product_model.gtin}:U8"
    expected = {identifier_render(lot.identity, form="epc") for lot in (w.mod1, w.c1, w.m2, w.m1)}
    assert set(result["lots"]) == expected
    assert all(lot.startswith("urn:epc:class:lgtin:") for lot in result["lots"])
    assert [d["level"] for d in result["details"]] == sorted(d["level"] for d in result["details"])


def test_backward_json_lists_a_lots_inspections_newest_first_and_its_suppliers_certificates():
    # given C1 inspected three times, two of them at the same hour, by a certified cell maker
    w = build_world()
    for method, day in (("ocv", 20), ("xray", 10), ("ct", 20)):
        Inspection.objects.create(
            owner=w.c1.owner,
            lot=w.c1,
            method=method,
            outcome="pass",
            inspected_at=dt.datetime(2024, 2, day, tzinfo=dt.UTC),
        )
    CertificateFactory(owner=w.c1.owner, scheme="un38.3", number="UN-1", status="suspended")
    # when
    result = json.loads(trace("backward", "U2", "--json"))
    # then
    c1 = next(detail for detail in result["details"] if detail["identity"] == w.c1.identity)
    assert [(i["method"], i["at"]) for i in c1["inspections"]] == [
        ("ocv", "2024-02-20T00:00:00+00:00"),
        ("ct", "2024-02-20T00:00:00+00:00"),
        ("xray", "2024-02-10T00:00:00+00:00"),
    ]
    assert c1["certificates"] == [{"scheme": "un38.3", "number": "UN-1", "status": "suspended"}]
    assert c1["supplier"] == {"name": w.c1.owner.name, "party": f"own-party:{w.c1.owner.slug}"}


def test_readable_output_summarises_and_tabulates():
    build_world()
    text = trace("forward", "M1")
    assert "4 units definitely and 3 potentially exposed" in text
    assert "U2 " in text and "Consignees" in text


@pytest.mark.parametrize(
    ("ident", "message"),
    [
        ("NOPE-1", "no lot or unit is known as 'NOPE-1'"),
        ("urn:epc:id:sgtin:0614141.112345", "is not a valid"),
        ("urn:epc:id:sscc:0614141.1234567890", "names a SSCC: trace a lot (LGTIN) or a unit (SGTIN)"),
    ],
)
def test_unknown_or_malformed_ident_is_refused(ident, message):
    build_world()
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        trace("forward", ident, "--json")


def test_cli_exits_non_zero_with_one_line_on_stderr(tmp_path):
    # given an empty embedded ledger
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["LEDGER_VAR_DIR"] = str(tmp_path)
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True, timeout=300)
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "trace", "forward", "urn:epc:class:lgtin:4012345.012345.998877", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "CommandError: no lot or unit is known as 'urn:epc:class:lgtin:4012345.012345.998877'"
        " (lgtin:04012345123456:998877)"
    ]


# --- acting as a user: what the access policy lets their organisation trace and see -------------------


def _serials(result):
    return {u["serial"]: u["exposure"] for u in result["units"]}


def _pgln(organisation):
    return identifier_render(f"pgln:{organisation.pgln}", form="epc")


def _unknown(urn, canonical):
    return f"no lot or unit is known as {urn!r} ({canonical})"


def test_as_the_brand_a_forward_trace_lists_its_own_units_and_consignees_only():
    # given brand A's units U1..U8 and a second brand's U9, U10 carry the precursor lot M1
    w = add_competitor(build_world())
    member(w.brand, "qa-a")
    urn = identifier_render(w.m1.identity, form="epc")
    # when
    operator = json.loads(trace("forward", urn, "--json"))
    as_brand = json.loads(trace("forward", urn, "--json", "--as", "qa-a"))
    # then the operator sees both brands' units and has no "others"; the brand its own, in full
    assert set(operator) == {"subject", "position", "units", "consignees", "counts"}
    assert sorted(_serials(operator)) == ["U1", "U10", "U2", "U3", "U4", "U5", "U6", "U8", "U9"]
    assert operator["counts"] == {"definite": 6, "potential": 3}
    assert _serials(as_brand) == {
        "U1": "definite", "U2": "definite", "U3": "definite", "U8": "definite",
        "U4": "potential", "U5": "potential", "U6": "potential",
    }  # fmt: skip
    assert as_brand["counts"] == {"definite": 4, "potential": 3}
    assert sorted(as_brand["consignees"]) == sorted([_pgln(w.d1), _pgln(w.d2)])
    assert as_brand["others"] == []
    assert as_brand["subject"] == operator["subject"] == w.m1.identity


def test_as_a_competitor_another_brands_lot_or_unit_is_unknown_and_the_shared_lot_shows_its_own_units():
    # given the second brand's units carry cell lot C1 (and so M1), none of them M3 or brand A's U2
    w = add_competitor(build_world())
    member(w.other_brand, "qa-b")
    m3 = identifier_render(w.m3.identity, form="epc")
    u2 = identifier_render(f"sgtin:{w.work_order.product_model.gtin}:U2", form="epc")
    nowhere = "urn:epc:class:lgtin:4012345.012345.998877"
    # when
    refusals = {}
    for args in (
        ("forward", m3),
        ("forward", u2),
        ("backward", u2),
        ("forward", "M3"),
        ("forward", nowhere),
        ("forward", "NOPE-1"),
    ):
        with pytest.raises(CommandError) as refused:
            trace(*args, "--json", "--as", "qa-b")
        refusals[args] = (str(refused.value), refused.value.returncode)
    shared = json.loads(trace("forward", identifier_render(w.c1.identity, form="epc"), "--json", "--as", "qa-b"))
    # then each is refused as a lot or unit nobody ever recorded is, with the same exit status
    assert refusals == {
        ("forward", m3): (_unknown(m3, w.m3.identity), 1),
        ("forward", u2): (_unknown(u2, f"sgtin:{w.work_order.product_model.gtin}:U2"), 1),
        ("backward", u2): (_unknown(u2, f"sgtin:{w.work_order.product_model.gtin}:U2"), 1),
        ("forward", "M3"): ("no lot or unit is known as 'M3'", 1),
        ("forward", nowhere): (_unknown(nowhere, "lgtin:04012345123456:998877"), 1),
        ("forward", "NOPE-1"): ("no lot or unit is known as 'NOPE-1'", 1),
    }
    assert _serials(shared) == {"U9": "definite", "U10": "definite"}
    assert shared["counts"] == {"definite": 2, "potential": 0}
    assert shared["consignees"] == [f"own-party:{w.other_distributor.slug}"]
    assert shared["others"] == []


def test_as_the_lots_supplier_no_unit_is_listed_and_its_customers_units_are_counted():
    # given the material supplier of M1, whose lot went into both brands' units
    w = add_competitor(build_world())
    member(w.m1.owner, "qa-supplier")
    # when
    result = json.loads(trace("forward", "M1", "--json", "--as", "qa-supplier"))
    text = trace("forward", "M1", "--as", "qa-supplier")
    # then
    assert result["units"] == [] and result["consignees"] == []
    assert result["counts"] == {"definite": 0, "potential": 0}
    assert result["others"] == [  # by organisation id: brand A was made first
        {"organisation": w.brand.slug, "definite": 4, "potential": 3},
        {"organisation": w.other_brand.slug, "definite": 2, "potential": 0},
    ]
    assert "0 units of yours definitely and 0 potentially exposed\n" in text
    assert "segments" not in text and "U1 " not in text
    assert f"  {w.brand.name:<40} {4:>9,} definite {3:>9,} potential" in text


def test_as_a_distributor_only_the_units_it_received_are_listed_and_traced_back():
    # given distributor D1 received U1..U3 (in carton K1 on pallet P1); U8 was rebuilt from U1, U4 went to D2
    w = add_competitor(build_world())
    member(w.d1, "viewer-d1")
    gtin = w.work_order.product_model.gtin
    u2, u4, u8 = (identifier_render(f"sgtin:{gtin}:U{i}", form="epc") for i in (2, 4, 8))
    # when
    forward = json.loads(trace("forward", identifier_render(w.c1.identity, form="epc"), "--json", "--as", "viewer-d1"))
    backward = json.loads(trace("backward", u2, "--json", "--as", "viewer-d1"))
    refused = {}
    for urn in (u4, u8):
        with pytest.raises(CommandError) as error:
            trace("backward", urn, "--json", "--as", "viewer-d1")
        refused[urn] = str(error.value)
    # then
    assert _serials(forward) == {"U1": "definite", "U2": "definite", "U3": "definite"}
    assert forward["counts"] == {"definite": 3, "potential": 0}
    assert forward["consignees"] == [_pgln(w.d1)]
    assert forward["others"] == []
    assert set(backward["lots"]) == {identifier_render(lot.identity, form="epc") for lot in (w.mod1, w.c1, w.m2, w.m1)}
    assert refused == {u4: _unknown(u4, f"sgtin:{gtin}:U4"), u8: _unknown(u8, f"sgtin:{gtin}:U8")}


def test_a_user_of_several_organisations_names_the_one_trace_acts_for():
    # given a user of brand A and of distributor D1 (which received U1..U3 of the contaminated lot's units)
    w = build_world()
    user = member(w.brand, "qa-ad")
    Membership.objects.create(user=user, organisation=w.d1, role="viewer")
    lot = identifier_render(w.c1.identity, form="epc")
    # when
    with pytest.raises(CommandError) as unnamed:
        trace("forward", lot, "--json", "--as", "qa-ad")
    as_brand = json.loads(trace("forward", lot, "--json", "--as", "qa-ad", "--organisation", w.brand.slug))
    as_d1 = json.loads(trace("forward", lot, "--json", "--as", "qa-ad", "--organisation", w.d1.slug))
    # then each acts for the organisation named, which sees its own units or the ones it received
    choices = ", ".join(sorted((w.brand.slug, w.d1.slug)))
    assert str(unnamed.value) == (
        f"user 'qa-ad' acts for several organisations: name one with --organisation ({choices})"
    )
    assert len(as_brand["units"]) > len(as_d1["units"]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--as", "nobody"), "no user is named 'nobody'"),
        (("--as", "loner"), "user 'loner' acts for no organisation: make them a member of one"),
        (("--as", "qa-a", "--organisation", "elsewhere"), "user 'qa-a' is not a member of 'elsewhere'"),
        (("--organisation", "elsewhere"), "--organisation names the organisation a user acts for"),
    ],
)
def test_acting_as_an_unknown_user_or_for_an_organisation_not_theirs_is_refused(args, message):
    # given
    w = build_world()
    member(w.brand, "qa-a")
    member(None, "loner")
    # when / then
    with pytest.raises(CommandError, match=message):
        trace("forward", "M1", "--json", *args)


def test_as_a_regulator_a_trace_its_jurisdiction_covers_is_shown_whole_and_another_is_unknown():
    # given D1 (U1..U3) is in Germany, D2 (U4..U6) in France; a regulator granted Germany
    w = build_world()
    for distributor, country in ((w.d1, "DE"), (w.d2, "FR")):
        distributor.country = country
        distributor.save(update_fields=["country"])
    regulator = OrganisationFactory(slug="bnetza", role=Role.REGULATOR, all_grant=False)
    call_command("grant", "add", "bnetza", "--jurisdiction", "DE", stderr=StringIO())
    member(regulator, "officer")
    m1, c4 = (identifier_render(lot.identity, form="epc") for lot in (w.m1, w.c4))
    # when
    as_regulator = json.loads(trace("forward", m1, "--json", "--as", "officer"))
    with pytest.raises(CommandError) as refused:
        trace("forward", c4, "--json", "--as", "officer")
    # then M1 reached Germany: every unit, every consignee; C4 went to France only
    assert as_regulator["counts"] == {"definite": 4, "potential": 3}
    assert sorted(_serials(as_regulator)) == ["U1", "U2", "U3", "U4", "U5", "U6", "U8"]
    assert sorted(as_regulator["consignees"]) == sorted([_pgln(w.d1), _pgln(w.d2)])
    assert str(refused.value) == _unknown(c4, w.c4.identity)
