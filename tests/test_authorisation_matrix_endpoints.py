"""Who may read and write what, over every EPCIS endpoint and the REST endpoints outside an
investigation's reads (issue 12's authorisation matrix; tests/test_authorisation_matrix.py holds
the investigation reads and recording findings).

The world, built once through capture itself (EPCIS and CSV), under registered company prefixes:

- the supplier S (a cell maker) makes cell lot CL-SHARED-1 from a material lot at its plant, and
  inspects it;
- brand A builds PBA-0001 and PBA-0002 from it in work order WO-A-17 (CSV) and PBA-0003 (a CSV
  build record), packs the first two in a carton from its plant to distributor D, and ships
  PBA-0003 loose to its other distributor DA2;
- brand B, the competitor, builds PBB-0001 and PBB-0002 from the same cell lot in work order
  WO-B-9 (one TransformationEvent) and ships PBB-0001 to its distributor DB from its plant;
- A and B each record a finding on the shared lot, trace it and export it; A attaches a report.

Each actor asks as itself; every answer is checked for its status and for what it must not carry:
another party's serials, work orders, sites, consignees, event IDs and counts. Refusals of access
answer as unknown (404), in the same words as for what does not exist.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from cells.models import Inspection, Lot, MaterialLot, Measurement, Spec
from packs.models import Unit
from suppliers.models import MemberRole, Membership, Organisation, Role
from tests.factories import OrganisationFactory
from tests.jobs_support import run_job
from tests.test_api_support import client_for, member, raise_finding
from tests.test_epcis_capture import capture
from tests.test_write_integrity import CONTEXT, aggregation, document, lot_shipping, shipping, transformation
from traceability.access.models import Grant
from traceability.access.services import grant_add
from traceability.core.models import Job
from traceability.events.csv_import import TEMPLATES, csv_document
from traceability.events.models import EpcisCapture, EpcisEvent
from traceability.gs1 import keys
from traceability.investigations.models import (
    Finding,
    FindingAttachment,
    SupplierResponse,
    SupplierResponseRevision,
    TraceRun,
)

pytestmark = pytest.mark.django_db

# Company prefixes, each registered by its organisation (M, the material maker, by nobody).
A, B, S, M = "4021212", "4098765", "4011111", "4033333"
D, DA2, DB = "4055555", "4066666", "4077777"
CELL_ITEM, UNIT_ITEM = 22222, 11111
B_NAMESPACE = "https://brand-b.example/epcis/"


def sgtin(prefix: str, serial: str) -> str:
    return f"urn:epc:id:sgtin:{prefix}.0{UNIT_ITEM}.{serial}"


def lgtin(prefix: str, lot: str) -> str:
    return f"urn:epc:class:lgtin:{prefix}.0{CELL_ITEM}.{lot}"


def sscc(prefix: str, serial: int) -> str:
    return f"urn:epc:id:sscc:{prefix}.{serial:0{17 - len(prefix)}d}"


def pgln(prefix: str) -> str:
    return f"urn:epc:id:pgln:{prefix}.{'0' * (11 - len(prefix))}1"


def sgln(prefix: str, plant: int) -> str:
    return f"urn:epc:id:sgln:{prefix}.{plant:0{12 - len(prefix)}d}.0"


SHARED_LOT = lgtin(S, "CL-SHARED-1")
A1, A2, A3 = (sgtin(A, f"PBA-000{i}") for i in (1, 2, 3))
B1, B2 = (sgtin(B, f"PBB-000{i}") for i in (1, 2))
A_CARTON = sscc(A, 1)


def at_plant(event: dict[str, Any], prefix: str, plant: int) -> dict[str, Any]:
    return event | {"bizLocation": {"id": sgln(prefix, plant)}}


def csv_file(kind: str, *rows: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, [c.name for c in TEMPLATES[kind].columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _csv_capture(owner: Organisation, kind: str, *rows: dict[str, str]) -> EpcisCapture:
    return capture(owner, csv_document(kind, csv_file(kind, *rows)))


def _organisation(slug: str, prefix: str, role: str) -> Organisation:
    return OrganisationFactory(
        slug=slug, name=f"Org {slug}", role=role, gs1_company_prefix=prefix, pgln=keys.gln(prefix, 1)
    )


def _member(organisation: Organisation | None, role: str = MemberRole.QA, **fields: Any) -> Any:
    user = member(None) if not fields else get_user_model().objects.create_user(**fields)
    if organisation is not None:
        Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


def _events_of(owner: Organisation) -> set[str]:
    return set(EpcisEvent.objects.filter(capture__owner=owner).values_list("event_id", flat=True))


def _build() -> SimpleNamespace:
    w = SimpleNamespace()
    w.a, w.b = _organisation("brand-a", A, Role.BRAND), _organisation("brand-b", B, Role.BRAND)
    w.s = _organisation("cells-s", S, Role.CELL_MAKER)
    w.d = _organisation("dist-d", D, Role.DISTRIBUTOR)
    Organisation.objects.filter(pk=w.d.pk).update(country="DE")  # the market a jurisdiction grant covers
    w.da2 = _organisation("dist-a-two", DA2, Role.DISTRIBUTOR)
    w.db = _organisation("dist-b", DB, Role.DISTRIBUTOR)
    made = capture(
        w.s,
        document(
            at_plant(
                transformation("urn:uuid:s-make", lots=[lgtin(M, "MAT-1")], output_lots=[SHARED_LOT], at="01"), S, 7
            ),
            {
                "type": "ObjectEvent",
                "eventID": "urn:uuid:s-inspect",
                "eventTime": "2024-02-02T08:00:00Z",
                "eventTimeZoneOffset": "+00:00",
                "action": "OBSERVE",
                "bizStep": "inspecting",
                "quantityList": [{"epcClass": SHARED_LOT, "quantity": 20, "uom": "KGM"}],
            },
            # What the brands build from the lot is what S shipped them (a transformation consumes
            # what its capturer owns or was shipped).
            lot_shipping("urn:uuid:s-ship-a", [SHARED_LOT], to=pgln(A), desadv="DA-S-A", at="02"),
            lot_shipping("urn:uuid:s-ship-b", [SHARED_LOT], to=pgln(B), desadv="DA-S-B", at="02"),
        ),
    )
    cell_gtin, unit_gtin = keys.gtin14(S, CELL_ITEM), keys.gtin14(A, UNIT_ITEM)
    work_order = {"work_order": "WO-A-17", "at": "2024-02-03T08:00:00Z"}
    a_built = _csv_capture(
        w.a,
        "work_orders",
        work_order | {"role": "input", "gtin": cell_gtin, "lot_or_serial": "CL-SHARED-1"},
        work_order | {"role": "output", "gtin": unit_gtin, "lot_or_serial": "PBA-0001"},
        work_order | {"role": "output", "gtin": unit_gtin, "lot_or_serial": "PBA-0002"},
    )
    a_assigned = _csv_capture(
        w.a,
        "assignments",
        {
            "unit_gtin": unit_gtin,
            "unit_serial": "PBA-0003",
            "lot_gtin": cell_gtin,
            "lot": "CL-SHARED-1",
            "built_at": "2024-02-03T09:00:00Z",
        },
    )
    w.a_capture = capture(
        w.a,
        document(
            aggregation("urn:uuid:a-pack", "ADD", A_CARTON, [A1, A2], at="05"),
            at_plant(
                shipping("urn:uuid:a-ship-d", [A_CARTON], source=pgln(A), to=pgln(D), desadv="DA-A-1", at="06"), A, 17
            ),
            shipping("urn:uuid:a-ship-a2", [A3], source=pgln(A), to=pgln(DA2), desadv="DA-A-2", at="07"),
        ),
    )
    b_built = capture(
        w.b,
        document(
            transformation(
                "urn:uuid:b-build", lots=[SHARED_LOT], outputs=[B1, B2], tid="urn:ledger:work-order:WO-B-9", at="04"
            )
            | {"bx:line": "B-LINE-7"},  # an extension field, under B's own namespace
            at_plant(shipping("urn:uuid:b-ship", [B1], source=pgln(B), to=pgln(DB), desadv="DA-B-1", at="08"), B, 29),
        )
        | {"@context": [*CONTEXT, {"bx": B_NAMESPACE}]},
    )
    for done in (made, a_built, a_assigned, w.a_capture, b_built):
        assert (done.problems, done.captured) == ([], done.events), done.problems
    w.events = {"a": _events_of(w.a), "b": _events_of(w.b), "s": _events_of(w.s)}
    # What names what, to know the events that name the shared lot or a unit D received.
    w.a_wo_input = EpcisEvent.objects.get(capture=a_built, body__inputQuantityList__isnull=False).event_id
    w.a_outputs = {
        serial: EpcisEvent.objects.get(capture__in=[a_built, a_assigned], body__icontains=serial).event_id
        for serial in ("PBA-0001", "PBA-0002", "PBA-0003")
    }
    return w


def _findings(w: SimpleNamespace, users: dict[str, Any]) -> None:
    """A's and B's findings on the shared lot, traced and exported; A's report attached to its own."""
    for name, qa in (("a", users["own_qa"]), ("b", users["competitor"])):
        client = client_for(qa)
        created = raise_finding(client, SHARED_LOT)
        assert created.status_code == 201, created.json()
        run_job(TraceRun.objects.get(pk=created.json()["run"]).job)
        export = client.post(
            f"/api/v1/investigations/{created.json()['investigation']}/exports/", {"format": "csv"}, format="json"
        )
        assert export.status_code == 202, export.json()
        run_job(Job.objects.get(pk=export.json()["id"]))
        setattr(w, f"{name}_finding", created.json()["id"])
        setattr(w, f"{name}_run_job", str(TraceRun.objects.get(pk=created.json()["run"]).job_id))
        setattr(w, f"{name}_export_job", export.json()["id"])
    report = SimpleUploadedFile("XRF PBA-0001.pdf", b"%PDF-1.7\n%%EOF\n", content_type="application/pdf")
    attached = client_for(users["own_qa"]).post(
        f"/api/v1/findings/{w.a_finding}/attachments/", {"file": report}, format="multipart"
    )
    assert attached.status_code == 201, attached.json()
    w.a_attachment = attached.json()["id"]


@pytest.fixture(scope="module")
def module_world(module_db, django_db_blocker, tmp_path_factory) -> Iterator[tuple[SimpleNamespace, dict[str, Any]]]:
    with override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media")), django_db_blocker.unblock():
        w = _build()
        in_scope = OrganisationFactory(slug="regulator-in", role=Role.REGULATOR, all_grant=False)
        grant_add(regulator=in_scope, scope="all")
        # Out of scope under any sane rule: a regulator whose only grant was revoked.
        out_of_scope = OrganisationFactory(slug="regulator-out", role=Role.REGULATOR, all_grant=False)
        revoked = grant_add(regulator=out_of_scope, scope="all").record
        Grant.objects.filter(pk=revoked.pk).update(revoked_at=revoked.granted_at)
        users = {
            "anonymous": None,
            "own_viewer": _member(w.a, MemberRole.VIEWER),
            "own_qa": _member(w.a, MemberRole.QA),
            "own_admin": _member(w.a, MemberRole.ADMIN),
            "competitor": _member(w.b, MemberRole.QA),
            "supplier": _member(w.s, MemberRole.QA),
            "distributor": _member(w.d, MemberRole.QA),
            "stranger": _member(OrganisationFactory(slug="stranger", role=Role.BRAND), MemberRole.QA),
            "regulator_in_scope": _member(in_scope, MemberRole.QA),
            "regulator_out_of_scope": _member(out_of_scope, MemberRole.ADMIN),
        }
        _findings(w, users)
        # Regulators with narrower grants: Germany, where D sold A's carton; and A's investigation.
        germany = OrganisationFactory(slug="regulator-de", role=Role.REGULATOR, all_grant=False)
        grant_add(regulator=germany, scope="jurisdiction", jurisdiction="DE")
        inquiring = OrganisationFactory(slug="regulator-inv", role=Role.REGULATOR, all_grant=False)
        grant_add(
            regulator=inquiring, scope="investigation", investigation=Finding.objects.get(pk=w.a_finding).investigation
        )
        users["regulator_jurisdiction"] = _member(germany, MemberRole.QA)
        users["regulator_investigation"] = _member(inquiring, MemberRole.VIEWER)
        yield w, users


@pytest.fixture()
def world(module_world) -> tuple[SimpleNamespace, dict[str, Any]]:
    return module_world


# --- what each actor must not read ----------------------------------------------------------------------

A_UNITS, B_UNITS = {"PBA-0001", "PBA-0002", "PBA-0003"}, {"PBB-0001", "PBB-0002"}
A_OWN = {*A_UNITS, "WO-A-17", f"{A}.00017", keys.gln(A, 17), "DA-A-"}  # units, work order, plant, despatches
B_OWN = {*B_UNITS, "WO-B-9", f"{B}.00029", keys.gln(B, 29), "DA-B-", B, "B-LINE-7", B_NAMESPACE}
S_OWN = {f"{S}.00007", keys.gln(S, 7), "MAT-1", M}  # its plant, its material lot
D_CONSIGNEE, DA2_CONSIGNEE, DB_CONSIGNEE = {"dist-d", D}, {"dist-a-two", DA2}, {"dist-b", DB}
BRAND_UNIT_KEYS = {f"{p}.0{UNIT_ITEM}" for p in (A, B)} | {keys.gtin14(p, UNIT_ITEM) for p in (A, B)}
EVERYTHING = A_OWN | B_OWN | S_OWN | D_CONSIGNEE | DA2_CONSIGNEE | DB_CONSIGNEE | {"CL-SHARED-1", A, S}

# What is upstream of a party's units (the supplier's material lot, the record that made the cell lot)
# is the party's to know: a unit's backward trace shows it; the supplier's plant and events are not.
UPSTREAM = {"MAT-1", M, "urn:uuid:s-make"}
FOREIGN: dict[str, set[str]] = {
    "own": B_OWN | S_OWN - UPSTREAM | DB_CONSIGNEE,
    "competitor": A_OWN | S_OWN - UPSTREAM | D_CONSIGNEE | DA2_CONSIGNEE | {A},
    # the lot's maker: how many units of each customer carry it, never their serials or distributors
    # (its customers' party GLNs are in its own shipments of the lot to them: its own units' keys not)
    "supplier": A_OWN | B_OWN - {B} | D_CONSIGNEE | DA2_CONSIGNEE | DB_CONSIGNEE | BRAND_UNIT_KEYS,
    # the units it received, in full; nothing of the unit it did not, nor of the other consignees
    "distributor": {"PBA-0003", f"{A}.00017"} | B_OWN | S_OWN - UPSTREAM | DA2_CONSIGNEE | DB_CONSIGNEE,
    "stranger": EVERYTHING,
    "regulator_out_of_scope": EVERYTHING,
    "regulator_in_scope": set(),
    # Germany's: A's two units D sold there, their carton, and the lots upstream of them (the shared
    # lot and its material lot), in part: not A's third unit (sold in China), B's units, work orders,
    # plants, despatch advices or the other consignees
    "regulator_jurisdiction": {"PBA-0003", "WO-A-17", f"{A}.00017", keys.gln(A, 17), "DA-A-"}
    | B_OWN
    | S_OWN - UPSTREAM
    | DA2_CONSIGNEE
    | DB_CONSIGNEE,
    # A's investigation's: its subject (the shared lot) and the five units and the carton it reached,
    # in part: not the lot's material lot upstream, work orders, plants, despatch advices, consignees
    "regulator_investigation": {"WO-A-17", f"{A}.00017", keys.gln(A, 17), "DA-A-"}
    | {"WO-B-9", f"{B}.00029", keys.gln(B, 29), "DA-B-", "B-LINE-7", B_NAMESPACE}
    | S_OWN
    | D_CONSIGNEE
    | DA2_CONSIGNEE
    | DB_CONSIGNEE,
}


def foreign_to(actor: str, w: SimpleNamespace) -> set[str]:
    """What ``actor`` must never read: tokens of others' units, work orders, plants, consignees, and
    the IDs of events and jobs it may not see."""
    party = "own" if actor.startswith("own_") else actor
    tokens = set(FOREIGN.get(party, EVERYTHING))
    if party != "regulator_in_scope":
        unreadable = set().union(*w.events.values()) - readable_events(actor, w)
        if party in ("own", "competitor", "distributor"):
            unreadable -= UPSTREAM
        tokens |= unreadable
        tokens |= {w.a_export_job, w.a_run_job, w.b_export_job, w.b_run_job} - set(
            {"own": (w.a_export_job, w.a_run_job), "competitor": (w.b_export_job, w.b_run_job)}.get(party, ())
        )
    return tokens


def readable_events(actor: str, w: SimpleNamespace) -> set[str]:
    """The events each actor reads (those it captured, and those naming what it owns or received)."""
    party = "own" if actor.startswith("own_") else actor
    names_shared_lot = {w.a_wo_input, w.a_outputs["PBA-0003"], "urn:uuid:b-build"}
    received = {w.a_outputs["PBA-0001"], w.a_outputs["PBA-0002"], "urn:uuid:a-pack", "urn:uuid:a-ship-d"}
    shared_lot = names_shared_lot | {"urn:uuid:s-make", "urn:uuid:s-inspect", "urn:uuid:s-ship-a", "urn:uuid:s-ship-b"}
    return {
        "own": w.events["a"],
        "competitor": w.events["b"],
        "supplier": w.events["s"] | names_shared_lot,
        "distributor": received,
        "regulator_in_scope": set().union(*w.events.values()),
        "regulator_jurisdiction": received | shared_lot,
        "regulator_investigation": set().union(*w.events.values()),
    }.get(party, set())


def leaked(body: str, actor: str, w: SimpleNamespace, *, asked: tuple[str, ...] = ()) -> set[str]:
    """The tokens ``actor`` may not read that ``body`` carries (the values it asked with aside: a
    refusal may repeat what it was asked)."""
    for value in asked:
        body = body.replace(value, "")
    return {token for token in foreign_to(actor, w) if token in body}


def text(response: Any) -> str:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


# --- reads: every endpoint × actor --------------------------------------------------------------------

ACTORS = (
    "anonymous",
    "own_viewer",
    "own_qa",
    "own_admin",
    "competitor",
    "supplier",
    "distributor",
    "stranger",
    "regulator_in_scope",
    "regulator_out_of_scope",
)
# endpoint                               anon  view   qa  admin comp  supp  dist  strg  r-in  r-out
MATRIX = {
    "GET /epcis/events": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /epcis/events?MATCH_anyEPC={a1}": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /epcis/events?MATCH_outputEPC={b1}": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /epcis/events?EQ_transformationID=urn:ledger:work-order:WO-B-9": (
        401, 200, 200, 200, 200, 200, 200, 200, 200, 200,
    ),
    "GET /epcis/events/{a_ship_a2}": (401, 200, 200, 200, 404, 404, 404, 404, 200, 404),
    "GET /epcis/events/{a_ship_d}": (401, 200, 200, 200, 404, 404, 200, 404, 200, 404),
    "GET /epcis/events/{b_build}": (401, 404, 404, 404, 200, 200, 404, 404, 200, 404),
    "GET /epcis/events/{s_inspect}": (401, 404, 404, 404, 404, 200, 404, 404, 200, 404),
    "GET /epcis/epcs/{a1}/events": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /epcis/eventTypes": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /epcis/capture": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /epcis/capture/{a_capture}": (401, 200, 200, 200, 404, 404, 404, 404, 200, 404),
    "GET /api/v1/units/{a1}/backward/": (401, 200, 200, 200, 404, 404, 200, 404, 200, 404),
    "GET /api/v1/units/{a3}/backward/": (401, 200, 200, 200, 404, 404, 404, 404, 200, 404),
    "GET /api/v1/units/{b1}/backward/": (401, 404, 404, 404, 200, 404, 404, 404, 200, 404),
    "GET /api/v1/units/{a1}/siblings/": (401, 200, 200, 200, 404, 404, 200, 404, 200, 404),
    "GET /api/v1/units/{b1}/siblings/?limit=1": (401, 404, 404, 404, 200, 404, 404, 404, 200, 404),
    "GET /api/v1/jobs/{a_capture_job}/": (401, 200, 200, 200, 404, 404, 404, 404, 200, 404),
    "GET /api/v1/jobs/{a_run_job}/": (401, 200, 200, 200, 404, 404, 404, 404, 200, 404),
    "GET /api/v1/jobs/{b_export_job}/": (401, 404, 404, 404, 200, 404, 404, 404, 200, 404),
    "GET /api/v1/jobs/{a_export_job}/download/": (401, 200, 200, 200, 404, 404, 404, 404, 200, 404),
    "GET /api/v1/jobs/{b_export_job}/download/": (401, 404, 404, 404, 200, 404, 404, 404, 200, 404),
    "GET /api/v1/csv/assignments/template/": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/findings/{a_finding}/attachments/{a_attachment}/": (
        401, 200, 200, 200, 404, 404, 404, 404, 200, 404,
    ),
    # an organisation's admins read its own entries: the out-of-scope regulator's user is its admin
    "GET /api/v1/audit/": (401, 403, 403, 200, 403, 403, 403, 403, 200, 200),
    # the suppliers' 8D responses: the investigation's owner and a regulator in scope read every one,
    # the supplier whose lot is the subject its own; anyone else, as for an unknown finding
    "GET /api/v1/findings/{a_finding}/responses/": (401, 200, 200, 200, 404, 200, 404, 404, 200, 404),
    "GET /api/v1/findings/{b_finding}/responses/": (401, 404, 404, 404, 200, 200, 404, 404, 200, 404),
    # the findings about the caller's lots: each reads its own list (empty but for the supplier)
    "GET /api/v1/supplier/findings/": (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # a lot's inspections and certificates: its owner's, and a regulator's who reads everything
    "GET /api/v1/lots/{shared_lot}/inspections/": (401, 404, 404, 404, 404, 200, 404, 404, 200, 404),
}  # fmt: skip


def _ids(w: SimpleNamespace) -> dict[str, Any]:
    """What the endpoints name, by placeholder."""
    return {
        "a1": A1,
        "a3": A3,
        "b1": B1,
        "a_ship_a2": "urn:uuid:a-ship-a2",
        "a_ship_d": "urn:uuid:a-ship-d",
        "b_build": "urn:uuid:b-build",
        "b_ship": "urn:uuid:b-ship",
        "s_inspect": "urn:uuid:s-inspect",
        "a_capture": w.a_capture.pk,
        "a_capture_job": w.a_capture.job_id,
        "a_run_job": w.a_run_job,
        "b_export_job": w.b_export_job,
        "a_export_job": w.a_export_job,
        "a_finding": w.a_finding,
        "b_finding": w.b_finding,
        "a_attachment": w.a_attachment,
        "shared_lot": SHARED_LOT,
    }


# The same places, naming nothing the ledger has: a refusal must read as these do.
UNKNOWN = {
    "a1": sgtin(A, "PBA-9991"),
    "a3": sgtin(A, "PBA-9993"),
    "b1": sgtin(B, "PBB-9991"),
    "a_ship_a2": "urn:uuid:never-1",
    "a_ship_d": "urn:uuid:never-2",
    "b_build": "urn:uuid:never-3",
    "b_ship": "urn:uuid:never-5",
    "s_inspect": "urn:uuid:never-4",
    "a_capture": 999_001,
    "a_capture_job": "00000000-0000-4000-8000-000000000001",
    "a_run_job": "00000000-0000-4000-8000-000000000002",
    "b_export_job": "00000000-0000-4000-8000-000000000003",
    "a_export_job": "00000000-0000-4000-8000-000000000004",
    "a_finding": 999_002,
    "b_finding": 999_004,
    "a_attachment": 999_003,
    "shared_lot": lgtin(S, "CL-NEVER-1"),
}


def _path(endpoint: str, ids: dict[str, Any]) -> str:
    return endpoint.removeprefix("GET ").format(**{name: quote(str(value), safe="") for name, value in ids.items()})


def _words(body: str, ids: dict[str, Any], endpoint: str) -> str:
    """The body with the values the endpoint named taken out: what is left are the answer's words."""
    for name, value in ids.items():
        if "{" + name + "}" in endpoint:
            body = re.sub(rf"(?<![\w.-]){re.escape(str(value))}(?![\w.-])", "<named>", body)
    return body


@pytest.mark.parametrize(
    ("endpoint", "actor", "status"),
    [(endpoint, actor, status) for endpoint, row in MATRIX.items() for actor, status in zip(ACTORS, row, strict=True)],
)
def test_every_read_answers_each_actor_and_carries_nothing_foreign(world, endpoint, actor, status):
    _read_checked(world, endpoint, actor, status)


# Regulators with narrower grants, over the EPCIS query interface: the events naming what their grants
# cover (Germany's: units sold there and the lots upstream of them; the investigation's: its subject and
# what it reached), each in part.
GRANTED = ("regulator_jurisdiction", "regulator_investigation")
# endpoint                                                         Germany  investigation
EPCIS_GRANTED = {
    "GET /epcis/events": (200, 200),
    "GET /epcis/events?MATCH_anyEPC={a1}": (200, 200),
    "GET /epcis/events?MATCH_outputEPC={b1}": (200, 200),
    "GET /epcis/events?EQ_transformationID=urn:ledger:work-order:WO-B-9": (200, 200),
    "GET /epcis/events/{a_ship_a2}": (404, 200),
    "GET /epcis/events/{a_ship_d}": (200, 200),
    "GET /epcis/events/{b_build}": (200, 200),
    "GET /epcis/events/{b_ship}": (404, 200),
    "GET /epcis/events/{s_inspect}": (200, 200),
    "GET /epcis/epcs/{a1}/events": (200, 200),
    "GET /epcis/epcs/{b1}/events": (200, 200),
    "GET /epcis/eventTypes": (200, 200),
    "GET /epcis/capture": (200, 200),
    "GET /epcis/capture/{a_capture}": (404, 404),
}  # fmt: skip


@pytest.mark.parametrize(
    ("endpoint", "actor", "status"),
    [
        (endpoint, actor, status)
        for endpoint, row in EPCIS_GRANTED.items()
        for actor, status in zip(GRANTED, row, strict=True)
    ],
)
def test_every_epcis_read_answers_a_regulator_within_its_grants_and_carries_nothing_beyond(
    world, endpoint, actor, status
):
    _read_checked(world, endpoint, actor, status)


def _read_checked(world: tuple[SimpleNamespace, dict[str, Any]], endpoint: str, actor: str, status: int) -> None:
    # given
    w, users = world
    ids = _ids(w)
    path = _path(endpoint, ids)
    # when
    response = client_for(users[actor]).get(path)
    # then
    assert response.status_code == status, text(response)
    body = text(response)
    named = tuple(str(value) for name, value in ids.items() if "{" + name + "}" in endpoint)
    assert not leaked(body, actor, w, asked=named), path
    if status == 404:  # answered as unknown, in the very words for what does not exist
        twin = client_for(users[actor]).get(_path(endpoint, UNKNOWN))
        assert twin.status_code == 404
        assert _words(body, ids, endpoint) == _words(text(twin), UNKNOWN, endpoint)


# --- the EPCIS query: exactly the events each actor may read, and only its part of another's --------------


def _event_ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.json()
    return {e["eventID"] for e in response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]}


@pytest.mark.parametrize("actor", [a for a in ACTORS + GRANTED if a != "anonymous"])
def test_the_event_list_is_exactly_what_the_actor_captured_or_what_names_its_own(world, actor):
    # given
    w, users = world
    # when
    response = client_for(users[actor]).get("/epcis/events?perPage=100")
    # then
    assert _event_ids(response) == readable_events(actor, w)


@pytest.mark.parametrize(
    ("actor", "query", "expected"),
    [
        # the competitor's events name the shared lot and B1: the supplier may not find them by B1 or B's
        # work order (the answer would say that B1 exists and what it was made in)
        ("supplier", f"MATCH_outputEPC={B1}", set()),
        ("supplier", "EQ_transformationID=urn:ledger:work-order:WO-B-9", set()),
        (
            "supplier",
            f"MATCH_anyEPCClass={SHARED_LOT}",
            {"urn:uuid:b-build", "urn:uuid:s-make", "urn:uuid:s-inspect", "urn:uuid:s-ship-a", "urn:uuid:s-ship-b"},
        ),
        ("competitor", f"MATCH_outputEPC={B1}", {"urn:uuid:b-build"}),
        ("competitor", "EQ_transformationID=urn:ledger:work-order:WO-B-9", {"urn:uuid:b-build"}),
        ("competitor", f"MATCH_anyEPC={A1}", set()),
        ("distributor", f"MATCH_anyEPC={A3}", set()),
        ("distributor", f"MATCH_epc={A_CARTON}", {"urn:uuid:a-ship-d"}),
        ("regulator_in_scope", f"MATCH_outputEPC={B1}", {"urn:uuid:b-build"}),
        # Germany's regulator: not through B1 or A3 (sold in China), nor by B's work order; its part of
        # B's build is the shared lot, upstream of A's units sold in Germany
        ("regulator_jurisdiction", f"MATCH_outputEPC={B1}", set()),
        ("regulator_jurisdiction", f"MATCH_anyEPC={A3}", set()),
        ("regulator_jurisdiction", "EQ_transformationID=urn:ledger:work-order:WO-B-9", set()),
        ("regulator_jurisdiction", f"MATCH_epc={A_CARTON}", {"urn:uuid:a-ship-d"}),
        ("regulator_jurisdiction", f"MATCH_parentID={A_CARTON}", {"urn:uuid:a-pack"}),
        ("regulator_investigation", f"MATCH_outputEPC={B1}", {"urn:uuid:b-build"}),
        ("regulator_investigation", f"MATCH_epc={B1}", {"urn:uuid:b-ship"}),
    ],
)
def test_a_query_selects_anothers_events_only_through_what_the_actor_may_see(world, actor, query, expected):
    # given
    w, users = world
    # when
    response = client_for(users[actor]).get(f"/epcis/events?{query.replace('|', '%7C')}")
    # then
    found = _event_ids(response)
    if actor == "supplier" and "EPCClass" in query:
        expected = expected | {w.a_wo_input, w.a_outputs["PBA-0003"]}
    assert found == expected


def test_the_supplier_reads_its_customers_build_of_its_lot_with_nothing_of_theirs_but_its_lot(world):
    # given the competitor's work-order event: the shared lot in, B1 and B2 out, in WO-B-9
    w, users = world
    # when
    response = client_for(users["supplier"]).get(f"/epcis/events/{quote('urn:uuid:b-build', safe='')}")
    # then the event, its time and step, and the supplier's own lot as its input; no more
    assert response.status_code == 200
    event = response.json()
    assert event["inputQuantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{keys.gtin14(S, CELL_ITEM)}/10/CL-SHARED-1", "quantity": 10, "uom": "KGM"}
    ]
    assert "outputEPCList" not in event and "transformationID" not in event
    assert "bx:line" not in event and event["@context"] == [
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    ]
    assert (event["type"], event["bizStep"], event["eventTime"]) == (
        "TransformationEvent",
        "commissioning",
        "2024-02-04T08:00:00Z",
    )


def test_the_distributor_reads_the_shipment_to_it_and_not_where_it_left_from(world):
    # given A's shipment of the carton to D, from A's plant 17
    w, users = world
    # when
    response = client_for(users["distributor"]).get(f"/epcis/events/{quote('urn:uuid:a-ship-d', safe='')}")
    owner = client_for(users["own_viewer"]).get(f"/epcis/events/{quote('urn:uuid:a-ship-d', safe='')}")
    # then D reads the carton and the two parties; A reads its own event whole
    assert response.status_code == 200
    event = response.json()
    assert event["epcList"] == [f"https://id.gs1.org/00/{keys.sscc(A, 1)}"]
    assert event["sourceList"] == [{"type": "owning_party", "source": pgln(A)}]
    assert event["destinationList"] == [{"type": "owning_party", "destination": pgln(D)}]
    assert "bizLocation" not in event
    assert owner.json()["bizLocation"] == {"id": sgln(A, 17)}


def _queries(client: Any, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("actor", "path", "most"),
    [
        ("supplier", "/epcis/events?perPage={n}", 13),  # others' events, each shown in part
        ("distributor", "/epcis/events?perPage={n}", 13),
        # a regulator's grants are read once for the request: Germany's, the units sold there (their
        # shipments and the containers' levels), the lots upstream of them (segment inputs, one walk),
        # the containers shipped there; an investigation's, its finding and one forward trace
        ("regulator_jurisdiction", "/epcis/events?perPage={n}", 16),
        ("regulator_investigation", "/epcis/events?perPage={n}", 16),
        ("distributor", f"/api/v1/units/{quote(A1, safe='')}/siblings/?limit={{n}}", 13),
        ("regulator_in_scope", f"/api/v1/units/{quote(B1, safe='')}/siblings/?limit={{n}}", 13),
    ],
)
def test_a_scoped_page_costs_the_same_queries_whatever_its_size(world, actor, path, most):
    w, users = world
    client = client_for(users[actor])
    assert _queries(client, path.format(n=5)) == _queries(client, path.format(n=100)) <= most


# --- units: siblings of what the actor may see ----------------------------------------------------------


def _siblings(response: Any) -> list[str]:
    assert response.status_code == 200, response.json()
    return [s["serial"] for s in response.json()["siblings"]]


@pytest.mark.parametrize(
    ("actor", "unit", "expected"),
    [
        ("own_qa", A1, ["PBA-0002", "PBA-0003"]),  # not B's two, which share the lot too
        ("distributor", A1, ["PBA-0002"]),  # the other unit it received, not PBA-0003
        ("competitor", B1, ["PBB-0002"]),
        ("regulator_in_scope", B1, ["PBA-0001", "PBA-0002", "PBA-0003", "PBB-0002"]),
    ],
)
def test_a_units_siblings_are_those_the_actor_may_see(world, actor, unit, expected):
    w, users = world
    response = client_for(users[actor]).get(f"/api/v1/units/{quote(unit, safe='')}/siblings/")
    assert _siblings(response) == expected


def test_a_page_of_siblings_is_cut_among_the_visible_ones_only(world):
    # given B1's siblings in id order are A's three units, then B2
    w, users = world
    client = client_for(users["competitor"])
    # when
    first = client.get(f"/api/v1/units/{quote(B1, safe='')}/siblings/?limit=1")
    # then the first page is B2, and no cursor points past A's hidden units
    assert _siblings(first) == ["PBB-0002"]
    assert first.json()["next"] is None


# --- jobs and exports: the figures of the whole trace only to who sees all --------------------------------


def test_the_competitors_export_job_counts_only_what_it_wrote(world):
    # given B's export of its finding on the shared lot: B's two units of the five the lot reached
    w, users = world
    # when
    job = client_for(users["competitor"]).get(f"/api/v1/jobs/{w.b_export_job}/").json()
    download = text(client_for(users["competitor"]).get(f"/api/v1/jobs/{w.b_export_job}/download/"))
    regulator = client_for(users["regulator_in_scope"]).get(f"/api/v1/jobs/{w.b_export_job}/").json()
    # then B's job counts B's two units, for B and the regulator alike: what its file holds
    assert (job["status"], job["percent"], job["done"], job["total"], job["phase"]) == (
        "succeeded",
        100,
        2,
        2,
        "exported",
    )
    assert sorted(row[0] for row in list(csv.reader(io.StringIO(download)))[1:]) == ["PBB-0001", "PBB-0002"]
    assert (regulator["done"], regulator["total"]) == (2, 2)
    assert Job.objects.get(pk=w.b_export_job).done == 5  # the chunks' cursor walked all five


def test_a_trace_runs_job_counts_in_percent_for_a_party_and_whole_for_the_regulator(world):
    # given A's run of the shared lot, which reached B's units too
    w, users = world
    row = Job.objects.get(pk=w.a_run_job)
    # when
    own = client_for(users["own_qa"]).get(f"/api/v1/jobs/{w.a_run_job}/").json()
    regulator = client_for(users["regulator_in_scope"]).get(f"/api/v1/jobs/{w.a_run_job}/").json()
    # then
    assert (own["done"], own["total"], own["percent"], own["phase"]) == (100, 100, 100, "traced")
    assert (regulator["done"], regulator["total"], regulator["phase"]) == (row.done, row.total, row.phase)


# --- the operator: the command line without --as sees all ------------------------------------------------


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_operator_traces_everything_the_shared_lot_reached(world):
    # when
    answer = json.loads(_command("trace", "forward", SHARED_LOT, "--json"))
    # then both brands' units and all three consignees
    assert sorted(u["epc"] for u in answer["units"]) == sorted([A1, A2, A3, B1, B2])
    assert sorted(answer["consignees"]) == sorted(pgln(p) for p in (D, DA2, DB))


def test_the_operator_exports_any_organisations_events_and_the_whole_audit_trail(world):
    # given
    w, users = world
    # when
    exported = json.loads(_command("export_epcis", "--owner", "brand-b"))
    trail = _command("audit", "export")
    # then
    assert {e["eventID"] for e in exported["epcisBody"]["eventList"]} == w.events["b"]
    assert {"brand-a", "brand-b", "cells-s"} <= {row["organisation"] for row in csv.DictReader(io.StringIO(trail))}


# --- a superuser over REST is a user like any other: it acts for its memberships -------------------------


def test_a_superuser_without_membership_acts_for_no_organisation(world):
    # given
    w, users = world
    root = client_for(get_user_model().objects.create_superuser(username="root-none", password="x"))
    # when
    answers = [root.get(path) for path in ("/epcis/events", "/api/v1/audit/", f"/api/v1/jobs/{w.a_export_job}/")]
    # then
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert answers[1].json()["code"] == "no_organisation"


def test_a_superuser_member_of_the_competitor_reads_as_the_competitor(world):
    # given
    w, users = world
    root = get_user_model().objects.create_superuser(username="root-b", password="x")
    Membership.objects.create(user=root, organisation=w.b, role=MemberRole.VIEWER)
    client = client_for(root)
    # when
    events = client.get("/epcis/events?perPage=100")
    capture_of_a = client.get(f"/epcis/capture/{w.a_capture.pk}")
    backward = client.get(f"/api/v1/units/{quote(A1, safe='')}/backward/")
    # then
    assert _event_ids(events) == w.events["b"]
    assert (capture_of_a.status_code, backward.status_code) == (404, 404)


# --- writes as each actor ----------------------------------------------------------------------------------


def _observation(event_id: str, epc: str) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": event_id,
        "eventTime": "2024-03-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "epcList": [epc],
    }


READ_ONLY = {
    "own_viewer": "your role in your organisation is viewer",
    "regulator_in_scope": "regulators have read-only access",
    "regulator_out_of_scope": "regulators have read-only access",
}
WRITES = {"anonymous": 401, "own_qa": 202, "competitor": 202, **dict.fromkeys(READ_ONLY, 403)}


def _written() -> tuple[int, ...]:
    return (EpcisCapture.objects.count(), EpcisEvent.objects.count(), Unit.objects.count(), Job.objects.count())


@pytest.mark.parametrize(("actor", "status"), list(WRITES.items()))
def test_capturing_a_document(world, actor, status):
    # given
    w, users = world
    before = _written()
    own = {"own_qa": A1, "competitor": B1}.get(actor, A1)
    body = json.dumps(document(_observation(f"urn:uuid:observe-{actor}", own)))
    # when
    response = client_for(users[actor]).post("/epcis/capture", body, content_type="application/json")
    # then
    assert response.status_code == status, text(response)
    if status == 202:
        captured = EpcisCapture.objects.get(pk=response.headers["Location"].rsplit("/", 1)[1])
        assert captured.owner.slug == {"own_qa": "brand-a", "competitor": "brand-b"}[actor]
        done = run_job(captured.job)
        captured.refresh_from_db()
        assert (done.status, captured.captured, captured.problems) == ("succeeded", 1, [])
        return
    assert _written() == before
    if actor in READ_ONLY:
        assert response.json()["type"] == "epcisException:SecurityException"
        assert READ_ONLY[actor] in response.json()["detail"]


@pytest.mark.parametrize(("actor", "status"), [*WRITES.items(), ("distributor", 201), ("supplier", 201)])
def test_capturing_one_event(world, actor, status):
    # given
    w, users = world
    before = _written()
    status = 201 if status == 202 else status
    own = {"competitor": B1, "supplier": SHARED_LOT, "distributor": A1}.get(actor, A1)
    event = _observation(f"urn:uuid:one-{actor}", own)
    if own == SHARED_LOT:
        event = {**event, "epcList": [], "quantityList": [{"epcClass": SHARED_LOT, "quantity": 1, "uom": "KGM"}]}
    # when
    response = client_for(users[actor]).post("/epcis/events", json.dumps(event), content_type="application/json")
    # then
    assert response.status_code == status, text(response)
    if status != 201:
        assert _written() == before
        if actor in READ_ONLY:
            assert READ_ONLY[actor] in response.json()["detail"]


def test_a_foreign_event_id_is_a_new_event_of_the_sender_and_says_nothing_of_the_first(world):
    # given A's shipment to DA2; B sends an event of its own under the same eventID
    w, users = world
    before = _written()
    event = _observation("urn:uuid:a-ship-a2", B1)
    # when
    response = client_for(users["competitor"]).post("/epcis/events", json.dumps(event), content_type="application/json")
    # then it is B's event, answered as any new one (eventIDs are unique per capturing organisation)
    assert response.status_code == 201, text(response)
    assert not leaked(text(response), "competitor", w, asked=("urn:uuid:a-ship-a2",))
    assert _written()[1] == before[1] + 1
    owners = EpcisEvent.objects.filter(event_id="urn:uuid:a-ship-a2").values_list("owner__slug", flat=True)
    assert sorted(owners) == ["brand-a", "brand-b"]
    # and A's event is as it was
    assert EpcisEvent.objects.get(event_id="urn:uuid:a-ship-a2", owner__slug="brand-a").capture == w.a_capture


@pytest.mark.parametrize(("actor", "status"), list(WRITES.items()))
def test_importing_a_csv_file(world, actor, status):
    # given a build record of a new unit of the actor's own from the shared lot
    w, users = world
    before = _written()
    prefix = B if actor == "competitor" else A
    row = {
        "unit_gtin": keys.gtin14(prefix, UNIT_ITEM),
        "unit_serial": f"NEW-{actor}",
        "lot_gtin": keys.gtin14(S, CELL_ITEM),
        "lot": "CL-SHARED-1",
        "built_at": "2024-03-01T08:00:00Z",
    }
    # when
    response = client_for(users[actor]).post(
        "/api/v1/csv/assignments/", csv_file("assignments", row), content_type="text/csv"
    )
    # then
    assert response.status_code == status, text(response)
    if status == 202:
        captured = EpcisCapture.objects.get(pk=response.json()["capture"])
        run_job(captured.job)
        captured.refresh_from_db()
        assert (captured.captured, captured.problems) == (1, [])
        assert (
            Unit.objects.get(serial=f"NEW-{actor}").owner.slug == {"own_qa": "brand-a", "competitor": "brand-b"}[actor]
        )
        return
    assert _written() == before
    if actor in READ_ONLY:
        assert response.json()["code"] == "read_only"


ATTACH = {
    "anonymous": 401,
    "own_viewer": 403,
    "own_qa": 201,
    "competitor": 404,
    "supplier": 404,
    "distributor": 404,
    "regulator_in_scope": 403,
    # a regulator whose grants do not cover the finding does not see it: as if it were not there
    "regulator_out_of_scope": 404,
}


@pytest.mark.parametrize(("actor", "status"), list(ATTACH.items()))
def test_attaching_evidence_to_brand_as_finding(world, actor, status, settings, tmp_path):
    # given
    settings.MEDIA_ROOT = tmp_path
    w, users = world
    before = FindingAttachment.objects.count()
    upload = SimpleUploadedFile(f"{actor}.pdf", f"%PDF-1.7\n% {actor}\n%%EOF\n".encode(), "application/pdf")
    # when
    response = client_for(users[actor]).post(
        f"/api/v1/findings/{w.a_finding}/attachments/", {"file": upload}, format="multipart"
    )
    # then
    assert response.status_code == status, response.json()
    if status == 404:
        assert response.json()["code"] == "not_found"
    if status == 403:
        assert response.json()["code"] == "read_only"
    assert FindingAttachment.objects.count() == before + (status == 201)
    assert len(list(tmp_path.rglob("*.pdf"))) == (status == 201)


def test_the_lot_is_known_to_the_ledger(world):
    """The world's shared lot is the supplier's, though both brands named it first in their captures."""
    w, users = world
    assert Lot.objects.get(code="CL-SHARED-1").owner == w.s
    assert Unit.objects.filter(owner=w.a).count() == 3 and Unit.objects.filter(owner=w.b).count() == 2


# --- the supplier's side of a finding: its 8D response, its lot's inspections ----------------------------

RESPOND = {
    "anonymous": 401,
    "own_viewer": 403,  # read_only: a viewer writes nothing anywhere
    "own_qa": 403,  # not_a_responder: the investigation is A's own
    "competitor": 404,
    "supplier": 201,
    "distributor": 404,
    "stranger": 404,
    "regulator_in_scope": 403,
    "regulator_out_of_scope": 403,
}


@pytest.mark.parametrize(("actor", "status"), list(RESPOND.items()))
def test_responding_to_brand_as_finding(world, actor, status):
    # given
    w, users = world
    before = (SupplierResponse.objects.count(), SupplierResponseRevision.objects.count())
    path = f"/api/v1/findings/{w.a_finding}/responses/"
    # when
    response = client_for(users[actor]).post(path, {"containment": f"held by {actor}"}, format="json")
    # then
    assert response.status_code == status, text(response)
    body = text(response)
    assert not leaked(body, actor, w)
    if status == 404:
        twin = client_for(users[actor]).post(
            f"/api/v1/findings/{UNKNOWN['a_finding']}/responses/", {"containment": "x"}, format="json"
        )
        assert (twin.status_code, twin.json()["code"]) == (404, "not_found")
    after = (SupplierResponse.objects.count(), SupplierResponseRevision.objects.count())
    if status == 201:
        assert response.json()["responder"] == w.s.slug
        assert after == (before[0] + 1, before[1] + 1)
    else:
        assert after == before


INSPECT = {
    "anonymous": 401,
    "own_viewer": 403,
    "own_qa": 404,
    "competitor": 404,
    "supplier": 201,
    "distributor": 404,
    "stranger": 404,
    "regulator_in_scope": 403,
    "regulator_out_of_scope": 403,
}


@pytest.mark.parametrize(("actor", "status"), list(INSPECT.items()))
def test_recording_an_inspection_of_the_shared_lot(world, actor, status, settings, tmp_path):
    # given the lot's limit of its open-circuit voltage
    settings.MEDIA_ROOT = tmp_path
    w, users = world
    # (captured through EPCIS, the shared lot is a lot of the material its capture named)
    lot = MaterialLot.objects.get(code="CL-SHARED-1")
    Spec.objects.create(
        owner=lot.owner, material=lot.material, property="ocv", unit="V", minimum=Decimal("3.6"), maximum=Decimal("3.7")
    )
    before = Inspection.objects.count(), Measurement.objects.count()
    body = {
        "file": SimpleUploadedFile(f"{actor}.pdf", f"%PDF-1.7\n% {actor}\n%%EOF\n".encode(), "application/pdf"),
        "results": json.dumps([{"property": "ocv", "value": "3.65", "unit": "V"}]),
        "inspected_at": "2024-03-01T08:00:00Z",
    }
    # when
    response = client_for(users[actor]).post(f"/api/v1/lots/{quote(SHARED_LOT, safe='')}/inspections/", body)
    # then
    assert response.status_code == status, text(response)
    assert not leaked(text(response), actor, w, asked=(SHARED_LOT,))
    if status == 201:
        assert response.json()["outcome"] == "pass"
        assert (Inspection.objects.count(), Measurement.objects.count()) == (before[0] + 1, before[1] + 1)
    else:
        assert (Inspection.objects.count(), Measurement.objects.count()) == before
        assert list(tmp_path.rglob("*.pdf")) == []
