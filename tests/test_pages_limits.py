"""The limits page of the supplier portal (``/supplier/limits/``): a material's or cell model's owner
sets the limits its lots are held to, and the next inspection uploaded is checked against them;
those recorded before keep the limits they were judged against. Its viewers read them; anyone else
is answered as for an unknown material, and no refusal changes anything.

The world: supplier S (a material supplier and cell maker) with material "NCM powder" (moisture at
most 200 ppm) and its lot L1, and cell model "CELL-S"; another supplier O with its own material.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cells.models import Inspection, Measurement, Spec
from cells.selectors import lot_specs
from cells.services import LimitRefused, NotTheOwner, spec_set
from suppliers.models import MemberRole, Role
from tests.factories import CellModelFactory, MaterialFactory, MaterialLotFactory, OrganisationFactory, SpecFactory
from tests.test_pages_supplier import _client, _main, _member, _text
from traceability.core.models import AuditEntry
from traceability.ledger.selectors import identifier_render

pytestmark = pytest.mark.django_db

PATH = "/supplier/limits/"


@pytest.fixture()
def world() -> SimpleNamespace:
    w = SimpleNamespace()
    w.supplier = OrganisationFactory(name="Qinghai Precursors", roles=[Role.MATERIAL_SUPPLIER, Role.CELL_MAKER])
    w.material = MaterialFactory(owner=w.supplier, name="NCM powder")
    w.moisture = SpecFactory(material=w.material, property="moisture", unit="ppm", maximum=Decimal("200"))
    w.lot = MaterialLotFactory(material=w.material, code="L1")
    w.cell_model = CellModelFactory(owner=w.supplier, name="CELL-S")
    w.other = OrganisationFactory(name="Other Minerals", role=Role.MATERIAL_SUPPLIER)
    w.other_material = MaterialFactory(owner=w.other, name="Graphite G7")
    w.other_spec = SpecFactory(material=w.other_material, property="ash", unit="%", maximum=Decimal("0.05"))
    w.users = {
        "qa": _member(w.supplier),
        "admin": _member(w.supplier, MemberRole.ADMIN),
        "viewer": _member(w.supplier, MemberRole.VIEWER),
        "other": _member(w.other),
        "attacker": _member(OrganisationFactory(name="Nobody Ltd", role=Role.MATERIAL_SUPPLIER)),
        "regulator": _member(OrganisationFactory(role=Role.REGULATOR)),
    }
    return w


def _limit(kind: str, product, **values: str) -> dict[str, str]:
    prefix = f"{kind}-{product.pk}"
    fields = {"property": "moisture", "unit": "ppm", "minimum": "", "maximum": "100"} | values
    return {kind: str(product.pk)} | {f"{prefix}-{name}": value for name, value in fields.items()}


def _kept() -> list[tuple]:
    """Every limit and every write's audit entry, as they are: a refusal leaves both as they were (a
    regulator's read is appended to the trail, as every one is)."""
    specs = list(
        Spec.objects.order_by("pk").values_list(
            "pk", "material", "cell_model", "property", "unit", "minimum", "maximum"
        )
    )
    return specs + [("audit", AuditEntry.objects.exclude(action__startswith="read.").count())]


def _upload(client, lot, **values: str) -> Inspection:
    """An inspection of ``lot`` uploaded on its inspections page, a value per property its limits
    name (in their order on the form, by property); the inspection it recorded."""
    path = "/supplier/lot/inspections/?" + urlencode({"id": identifier_render(lot.identity, form="digital_link")})
    specs = list(lot_specs(lot=lot).order_by("property"))
    body = {"inspected_at": "2024-06-03T08:00", "method": "analysis"}
    for index, spec in enumerate(specs):
        body |= {f"value_{index}": values.get(spec.property, ""), f"unit_{index}": spec.unit}
    response = client.post(path, body)
    assert response.status_code == 302, _text(response)
    return Inspection.objects.latest("pk")


# --- the owner sets its limits -------------------------------------------------------------------------


def test_the_owner_adds_a_limit_and_changes_one_and_the_next_inspection_is_checked_against_the_new_one(world):
    client = _client(world.users["qa"])
    # given an inspection of L1 uploaded and judged against moisture ≤ 200 ppm
    before = _upload(client, world.lot, moisture="150")
    assert before.outcome == "pass"
    # when the owner adds a limit of Fe particles and tightens moisture to 100 ppm
    added = client.post(PATH, _limit("material", world.material, property="fe_particle", unit="µm", maximum="50"))
    changed = client.post(PATH, _limit("material", world.material, minimum="10", maximum="100"))
    # then each is kept, the moisture limit changed in place
    assert (added.status_code, added["Location"]) == (302, f"{PATH}#material-{world.material.pk}")
    assert changed.status_code == 302
    assert sorted(world.material.specs.values_list("property", "unit", "minimum", "maximum")) == [
        ("fe_particle", "µm", None, Decimal("50")),
        ("moisture", "ppm", Decimal("10"), Decimal("100")),
    ]
    assert world.material.specs.get(property="moisture").pk == world.moisture.pk
    # and each write is in the audit trail, the change with the limit as it was
    entries = list(AuditEntry.objects.filter(action="spec.set").order_by("pk"))
    assert [(e.organisation_id, e.username, e.source) for e in entries] == [
        (world.supplier.pk, world.users["qa"].username, "pages")
    ] * 2
    assert entries[1].detail == {
        "property": "moisture",
        "before": {"unit": "ppm", "minimum": None, "maximum": "200"},
        "after": {"unit": "ppm", "minimum": "10", "maximum": "100"},
    }
    assert entries[1].identifiers == [
        f"material:{world.material.pk}",
        f"spec:{world.moisture.pk}",
        f"gtin:{world.material.gtin}",
    ]
    # the next inspection uploaded, of the same value, fails against the new limit; the one before still passes
    after = _upload(client, world.lot, moisture="150", fe_particle="30")
    assert after.outcome == "fail"
    assert list(
        Measurement.objects.filter(inspection=after).values_list("property", "minimum", "maximum", "passed")
    ) == [("fe_particle", None, Decimal("50"), True), ("moisture", Decimal("10"), Decimal("100"), False)]
    before.refresh_from_db()
    assert before.outcome == "pass"
    assert list(Measurement.objects.filter(inspection=before).values_list("minimum", "maximum", "passed")) == [
        (None, Decimal("200"), True)
    ]
    # and the page shows the limits as they are now
    text = _main(_text(client.get(PATH)))
    row = text.split(f'id="material-{world.material.pk}-moisture"', 1)[1].split("</tr>", 1)[0]
    assert "<td>ppm</td><td>10</td><td>100</td>" in row
    row = text.split(f'id="material-{world.material.pk}-fe_particle"', 1)[1].split("</tr>", 1)[0]
    assert "<td>µm</td><td>…</td><td>50</td>" in row


def test_an_admin_sets_a_limit_of_a_cell_model_and_the_page_shows_it_under_its_cell_models(world):
    client = _client(world.users["admin"])
    # when
    response = client.post(
        PATH, _limit("cell_model", world.cell_model, property="ocv", unit="V", minimum="3.55", maximum="3.75")
    )
    # then
    assert response.status_code == 302
    assert list(world.cell_model.specs.values_list("owner", "property", "unit", "minimum", "maximum")) == [
        (world.supplier.pk, "ocv", "V", Decimal("3.55"), Decimal("3.75"))
    ]
    text = _main(_text(client.get(PATH)))
    cell_models = text.split('id="cell-models-heading"', 1)[1]
    assert "CELL-S" in cell_models and f'id="cell_model-{world.cell_model.pk}-ocv"' in cell_models
    assert "<td>V</td><td>3.55</td><td>3.75</td>" in cell_models


def test_the_portal_links_to_the_limits_and_the_page_lists_only_the_callers_own(world):
    client = _client(world.users["qa"])
    # when
    portal = _main(_text(client.get("/supplier/")))
    page = _main(_text(client.get(PATH)))
    # then
    assert f'<a href="{PATH}" id="limits-link">Limits of your materials and cell models</a>' in portal
    assert "NCM powder" in page and "CELL-S" in page
    assert f'id="material-{world.material.pk}-form"' in page and f'id="cell_model-{world.cell_model.pk}-form"' in page
    assert f'id="cell_model-{world.cell_model.pk}-none"' in page
    assert "Graphite G7" not in page and "Other Minerals" not in page and ">ash<" not in page


def test_anonymous_callers_are_sent_to_sign_in_and_nothing_is_changed(world):
    kept = _kept()
    # when
    read = Client().get(PATH)
    written = Client().post(PATH, _limit("material", world.material))
    # then
    assert (read.status_code, read["Location"]) == (302, f"/signin/?next={PATH}")
    assert written.status_code in (302, 403)
    assert _kept() == kept


# --- who may not ---------------------------------------------------------------------------------------


def test_a_viewer_reads_the_limits_but_a_write_is_refused_saying_why_and_nothing_is_changed(world):
    client = _client(world.users["viewer"])
    kept = _kept()
    # when
    page = client.get(PATH)
    response = client.post(PATH, _limit("material", world.material, maximum="1"))
    # then it reads them, with no form
    text = _main(_text(page))
    assert page.status_code == 200
    assert f'id="material-{world.material.pk}-moisture"' in text and "<form" not in text.split("<h1>", 1)[1]
    # and its write is refused
    assert response.status_code == 403
    assert "Your role reads limits; a QA engineer or an admin of your organisation sets them." in _text(response)
    assert _kept() == kept


@pytest.mark.parametrize("caller", ["other", "attacker", "regulator"])
def test_anothers_material_is_unknown_to_the_caller_and_nothing_is_changed(world, caller):
    client = _client(world.users[caller])
    kept = _kept()
    # when
    page = _main(_text(client.get(PATH)))
    response = client.post(PATH, _limit("material", world.material, maximum="1"))
    missing = client.post(PATH, _limit("material", world.material, maximum="1") | {"material": "999999"})
    # then the page shows nothing of S's, and a write naming S's material reads as one that does not exist
    assert "NCM powder" not in page and ">moisture<" not in page
    assert response.status_code == missing.status_code == 404
    refused = _main(_text(response))
    assert f"No material of yours is known as “{world.material.pk}”." in refused
    assert "No material of yours is known as “999999”." in _main(_text(missing))
    assert "NCM powder" not in refused and "Qinghai" not in refused
    assert _kept() == kept


def test_a_cell_model_of_anothers_is_unknown_too(world):
    kept = _kept()
    # when
    response = _client(world.users["other"]).post(PATH, _limit("cell_model", world.cell_model, property="ocv"))
    # then
    assert response.status_code == 404
    assert f"No cell model of yours is known as “{world.cell_model.pk}”." in _text(response)
    assert _kept() == kept


# --- bad values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"property": ""}, "property", "Name the property, as results name it."),
        ({"property": "Fe particle"}, "property", "A property is named with letters, digits, “_” and “-”"),
        ({"property": "p" * 65}, "property", "A property's name is at most 64 characters."),
        ({"unit": "  "}, "unit", "Give the unit values are given in."),
        ({"unit": "parts per million"}, "unit", "A unit is at most 16 characters."),
        ({"unit": "pp\x07m"}, "unit", "A unit is written in printable characters"),
        ({"maximum": ""}, "minimum", "A limit has a minimum, a maximum or both: give at least one."),
        ({"minimum": "300", "maximum": "200"}, "maximum", "The maximum is below the minimum"),
        ({"minimum": "ten"}, "minimum", "Give a number, such as 0.5, or leave it blank for no minimum."),
        ({"maximum": "1e400"}, "maximum", "Ensure that there are no more than 20 digits in total."),
        ({"maximum": "0.0000001"}, "maximum", "Ensure that there are no more than 6 decimal places."),
        ({"maximum": "123456789012345"}, "maximum", "Ensure that there are no more than 14 digits before"),
    ],
)
def test_a_bad_value_is_refused_beside_its_field_and_nothing_is_changed(world, values, field, words):
    kept = _kept()
    # when
    response = _client(world.users["qa"]).post(PATH, _limit("material", world.material, **values))
    # then
    assert response.status_code == 400
    text = _main(_text(response))
    error = text.split(f'id="id_material-{world.material.pk}-{field}_error"', 1)[1].split("</small>", 1)[0]
    assert words in error
    assert f'{field}_error" id="id_material-{world.material.pk}-{field}">' in text  # its aria-describedby
    # the form is open again with what was typed, the other products' forms blank
    assert f'id="material-{world.material.pk}-form"' in text.split("<details open>", 1)[1].split("</details>", 1)[0]
    assert text.count("<details open>") == 1
    assert _kept() == kept


@pytest.mark.parametrize(
    ("named", "count"), [({}, 0), ({"material": "1", "cell_model": "1"}, 2)], ids=["neither", "both"]
)
def test_a_form_naming_no_product_or_two_is_refused_saying_so(world, named, count):
    kept = _kept()
    body = {k: v for k, v in _limit("material", world.material).items() if k != "material"} | named
    # when
    response = _client(world.users["qa"]).post(PATH, body)
    # then
    assert response.status_code == 400
    message = f"A limit is of one material or of one cell model: the form names {count}."
    assert message in _text(response)
    assert _kept() == kept


# --- the domain's own checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind", "field", "words"),
    [
        ({"owner": "other"}, NotTheOwner, "material", "the organisation owns no material"),
        ({"property": "fe particle"}, LimitRefused, "property", "is not a property name"),
        ({"unit": ""}, LimitRefused, "unit", "a limit names the unit its values are given in"),
        ({"maximum": None}, LimitRefused, "minimum", "a limit has a minimum, a maximum or both"),
        ({"minimum": Decimal("3")}, LimitRefused, "maximum", "the minimum 3 is above the maximum 2"),
        ({"maximum": Decimal("NaN")}, LimitRefused, "maximum", "is not a number"),
        ({"maximum": Decimal("0.0000001")}, LimitRefused, "maximum", "has more digits than a measured value keeps"),
        ({"cell_model": "cell_model"}, LimitRefused, "material", "a limit is of one material or of one cell model"),
    ],
)
def test_the_service_refuses_what_a_limit_cannot_be_and_keeps_nothing(world, values, kind, field, words):
    kept = _kept()
    arguments = {
        "owner": world.supplier,
        "material": world.material,
        "property": "moisture",
        "unit": "ppm",
        "minimum": None,
        "maximum": Decimal("2"),
    }
    arguments |= {
        name: world.other if value == "other" else world.cell_model if value == "cell_model" else value
        for name, value in values.items()
    }
    # when
    with pytest.raises(kind) as refused:
        spec_set(**arguments)
    # then
    assert refused.value.field == field
    assert words in refused.value.message
    assert _kept() == kept


def test_a_limit_added_by_another_request_at_the_same_moment_is_refused_saying_so_and_nothing_is_kept(
    world, monkeypatch
):
    kept = _kept()
    # given another request inserts the moisture limit after this one looked for it (it found none)
    monkeypatch.setattr(QuerySet, "first", lambda self: None)
    # when
    with pytest.raises(LimitRefused) as refused:
        spec_set(
            owner=world.supplier,
            material=world.material,
            property="moisture",
            unit="ppm",
            minimum=None,
            maximum=Decimal("1"),
        )
    # then the database's constraint stands, and the refusal says what to do
    assert refused.value.field == "property"
    assert refused.value.message == (
        "the limit of moisture was set by another request at the same moment: send it again to change it"
    )
    monkeypatch.undo()
    assert _kept() == kept


# --- cost ------------------------------------------------------------------------------------------------


def test_the_page_reads_as_many_queries_whatever_the_number_of_materials_and_limits(world):
    client = _client(world.users["qa"])
    client.get(PATH)  # the session and the caller read once
    with CaptureQueriesContext(connection) as one:
        assert client.get(PATH).status_code == 200
    # given five more materials and two more cell models, each with two limits
    for n in range(5):
        material = MaterialFactory(owner=world.supplier, name=f"Material {n}")
        SpecFactory(material=material, property="moisture")
        SpecFactory(material=material, property="ash", unit="%")
    for n in range(2):
        cell_model = CellModelFactory(owner=world.supplier, name=f"CELL-{n}")
        SpecFactory(material=None, cell_model=cell_model, property="ocv", unit="V")
        SpecFactory(material=None, cell_model=cell_model, property="ir", unit="mΩ")
    # when
    with CaptureQueriesContext(connection) as more:
        response = client.get(PATH)
    # then
    text = _main(_text(response))
    assert text.count('class="limits"') == 9 and text.count('<th scope="row">') == 15
    assert len(more) == len(one)


def test_the_limits_page_speaks_chinese_to_a_browser_that_asks_for_it(world):
    # when
    response = _client(world.users["qa"]).get(PATH, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    # then
    text = _main(_text(response))
    assert "<h1>贵方材料和电芯型号的限值</h1>" in text
    assert "<summary>添加或更改限值</summary>" in text and '<th scope="col">最大值</th>' in text
