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
from tests.factories import CertificateFactory
from tests.trace_world import build_world
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
