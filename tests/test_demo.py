"""The demo world: what make run loads. All or nothing, and loaded once."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from cells.models import Lot
from packs.models import Shipment, Unit, UnitPacking
from suppliers.models import Certificate, CertificateStatus, Membership, Organisation, Role
from tests.test_api_support import client_for, raise_finding
from traceability.demo.world import CONTAMINATED_LOT, DemoAlreadyLoaded, demo_world_load
from traceability.genealogy.models import Exposure, Segment, SegmentMember, Transformation
from traceability.ledger.models import LedgerEntry

pytestmark = pytest.mark.django_db


def test_demo_world_is_the_recall_scenario():
    # when
    summary = demo_world_load(units=2_000)
    # then
    assert summary.units == Unit.objects.count() == 2_000
    assert Organisation.objects.with_role(Role.DISTRIBUTOR).count() == 12
    assert Organisation.objects.filter(slug="anchorline").exists()
    assert (
        Unit.objects.filter(product_model__model_number="A1263", product_model__name="PowerCore 10000").count() == 1_000
    )
    suspended = Certificate.objects.get(status=CertificateStatus.SUSPENDED)
    assert (suspended.scheme, suspended.status_changes.get().to_status) == ("ccc", "suspended")
    contaminated = Lot.objects.get(code=CONTAMINATED_LOT)
    assert summary.contaminated_lot == contaminated.identity
    assert contaminated.inspections.get().outcome == "fail"
    # every unit has a build record or a work-order record, and is packed in exactly one carton
    assert SegmentMember.objects.values("unit").distinct().count() == 2_000
    assert UnitPacking.objects.count() == 2_000
    assert UnitPacking.objects.values("unit").distinct().count() == 2_000
    # both exposures occur: per-unit build records are definite, Sense 10 work orders potential
    assert set(Segment.objects.values_list("exposure", flat=True)) == {Exposure.DEFINITE, Exposure.POTENTIAL}
    # every pallet and loose carton went to a distributor
    assert Shipment.objects.filter(consignee__roles__role=Role.DISTRIBUTOR).count() == summary.shipments > 0
    assert LedgerEntry.objects.count() == 1
    assert (
        Transformation.objects.filter(recorded_position=summary.ledger_position).count()
        == Transformation.objects.count()
    )


def test_second_load_changes_nothing():
    # given
    demo_world_load(units=500)
    counts = (Unit.objects.count(), Lot.objects.count(), Organisation.objects.count())
    # when / then
    with pytest.raises(DemoAlreadyLoaded, match="already loaded \\(ledger position 1\\)"):
        demo_world_load(units=500)
    assert (Unit.objects.count(), Lot.objects.count(), Organisation.objects.count()) == counts


def test_interrupted_load_leaves_nothing_and_a_rerun_completes():
    # given a load interrupted half-way (Ctrl-C while units are written)
    def interrupt(phase, done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo_world_load(units=1_000, progress=interrupt)
    # then nothing of it is left
    assert (Organisation.objects.count(), Unit.objects.count(), LedgerEntry.objects.count()) == (0, 0, 0)
    # and a second run completes
    assert demo_world_load(units=1_000).units == 1_000


def test_demo_load_command_reports_and_is_idempotent(capsys, settings, tmp_path):
    # given
    settings.VAR_DIR = tmp_path
    # when
    call_command("demo_load", "--units", "300", "--no-progress")
    call_command("demo_load", "--units", "300", "--no-progress")
    # then
    out = capsys.readouterr().out
    assert "Demo world loaded at ledger position 1:" in out
    assert "the demo world is already loaded (ledger position 1); nothing to do." in out
    password = (tmp_path / "demo-admin-password").read_text().strip()
    assert out.count(f"Admin login: admin / {password}") == 2
    assert Membership.objects.get(user__username="admin").organisation.slug == "romax"
    assert out.count("In the API, admin acts for Romax") == 2
    assert Unit.objects.count() == 300


@pytest.mark.parametrize("form", ["urn", "digital_link"])
def test_demo_load_prints_the_contaminated_lot_in_the_forms_the_api_takes(form, capsys, settings, tmp_path):
    # given
    settings.VAR_DIR = tmp_path
    # when
    call_command("demo_load", "--units", "300", "--no-progress")
    call_command("demo_load", "--units", "300", "--no-progress")
    # then both runs name the lot as an EPC URN (Northwind's prefix is 7 digits) and a Digital Link
    out = capsys.readouterr().out
    printed = {"urn": re.findall(r"urn:epc:\S+", out), "digital_link": re.findall(r"https://id\.gs1\.org/\S+", out)}
    assert printed == {
        "urn": ["urn:epc:class:lgtin:6970011.000002.NWC-2306-17"] * 2,
        "digital_link": ["https://id.gs1.org/01/06970011000020/10/NWC-2306-17"] * 2,
    }
    assert "lgtin:06970011000020" not in out
    # and the API records a finding on what was printed, for the printed login
    response = raise_finding(client_for(get_user_model().objects.get(username="admin")), printed[form][0])
    assert response.status_code == 201, response.json()
    assert response.json()["subject"]["code"] == CONTAMINATED_LOT
