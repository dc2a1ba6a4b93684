"""The access policy's first question: who may trace what (DESIGN.md, "Who sees what").

Asked of the hand-built world (tests/trace_world.py): material lot M1 reaches cell lot C1, module
MOD1 and units U1..U3 (and U8, refurbished from U1); C4 reaches U4..U7; U1..U3 went to distributor
D1 (on a pallet), U4..U6 to D2. Each lot has its own maker; the brand built every unit.
"""

import pytest

from packs.models import Shipment, ShipmentItem, Unit
from suppliers.models import Role
from tests.factories import OrganisationFactory, SiteFactory
from tests.trace_world import add_competitor, build_world
from traceability import genealogy
from traceability.access.models import Grant, GrantScope
from traceability.access.policy import (
    OPERATOR,
    Actor,
    result_scope,
    subject_traceable,
    trace_allowed,
    upstream_traceable,
)
from traceability.genealogy import OthersCount

pytestmark = pytest.mark.django_db


@pytest.fixture()
def w():
    return build_world()


def as_org(organisation) -> Actor:
    return Actor.of(organisation, "qa")


def test_the_owner_of_a_lot_may_trace_it(w):
    assert trace_allowed(as_org(w.m1.owner), lot_ids=[w.m1.pk])


def test_a_brand_may_trace_a_lot_upstream_of_its_own_units(w):
    assert trace_allowed(as_org(w.brand), lot_ids=[w.m1.pk])
    assert trace_allowed(as_org(w.brand), lot_ids=[w.c4.pk])


def test_a_maker_may_trace_a_lot_it_consumed(w):
    # given C1's maker made C1 from M2, which was made from M1
    # then it may trace both
    assert trace_allowed(as_org(w.c1.owner), lot_ids=[w.m2.pk])
    assert trace_allowed(as_org(w.c1.owner), lot_ids=[w.m1.pk])


def test_a_distributor_may_trace_a_lot_upstream_of_units_it_received(w):
    assert trace_allowed(as_org(w.d1), lot_ids=[w.m1.pk])  # U1..U3 on pallet P1
    assert trace_allowed(as_org(w.d2), lot_ids=[w.c4.pk])  # U4..U6 in carton K2


def test_a_distributor_may_not_trace_a_lot_none_of_its_units_carry(w):
    assert not trace_allowed(as_org(w.d1), lot_ids=[w.c4.pk])


def test_a_competitor_may_trace_nothing_of_the_brand(w):
    # given a brand with no part in this world
    competitor = as_org(OrganisationFactory(role=Role.BRAND))
    # then no lot or unit of it is traceable
    for lot in (w.m1, w.m2, w.c1, w.c4, w.mod1):
        assert not trace_allowed(competitor, lot_ids=[lot.pk]), lot.code
    assert not trace_allowed(competitor, unit_ids=[w.u[1]])


def test_a_downstream_maker_may_not_trace_a_sibling_lot_it_did_not_consume(w):
    # C1's maker consumed M2 but not C4 (which fed only the brand's units)
    assert not trace_allowed(as_org(w.c1.owner), lot_ids=[w.c4.pk])


def test_a_unit_may_be_traced_by_its_owner_and_by_whoever_received_it(w):
    assert trace_allowed(as_org(w.brand), unit_ids=[w.u[1]])
    assert trace_allowed(as_org(w.d1), unit_ids=[w.u[1]])
    assert not trace_allowed(as_org(w.d2), unit_ids=[w.u[1]])


def test_every_seed_must_be_allowed(w):
    assert not trace_allowed(as_org(w.d1), lot_ids=[w.m1.pk, w.c4.pk])


def test_regulators_and_the_operator_may_trace_anything(w):
    regulator = as_org(OrganisationFactory(role=Role.REGULATOR))
    assert trace_allowed(regulator, lot_ids=[w.c4.pk])
    assert trace_allowed(OPERATOR, unit_ids=[w.u[7]])


def test_no_organisation_and_no_seed_are_refused(w):
    assert not trace_allowed(Actor(organisation_id=None), lot_ids=[w.m1.pk])
    assert not trace_allowed(as_org(w.brand))


def test_viewers_and_regulators_read_and_qa_engineers_and_admins_write(w):
    assert not Actor.of(w.brand, "viewer").may_write
    assert Actor.of(w.brand, "qa").may_write
    assert Actor.of(w.brand, "admin").may_write
    assert not Actor.of(OrganisationFactory(role=Role.REGULATOR), "admin").may_write
    assert OPERATOR.may_write


# --- what a result shows whom -------------------------------------------------------------------------


@pytest.fixture()
def shared(w):
    """The world, plus a second brand whose units U9 and U10 were built from cell lot C1 too."""
    return add_competitor(w)


def scope_of(actor, w, lot):
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    return result_scope(actor, forward)


def shown(scope, w):
    serials = Unit.objects.filter(pk__in=list(w.u.values())).filter(scope.units_shown())
    return sorted(serials.values_list("serial", flat=True), key=lambda s: int(s[1:]))


def test_a_brand_sees_its_own_units_of_a_shared_lot_and_nothing_of_the_other_brand(shared):
    # given both brands' units carry C1; brand A traces the material lot upstream of both
    scope = scope_of(as_org(shared.brand), shared, shared.m1)
    # then it sees its units in full, and the other brand not even as a count
    assert not scope.full
    assert shown(scope, shared) == ["U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8"]
    assert scope.others == ()


def test_a_cell_maker_sees_how_many_units_of_each_customer_carry_its_lots_and_no_serial(shared):
    # given C1's maker traces the material lot it consumed
    scope = scope_of(as_org(shared.c1.owner), shared, shared.m1)
    # then it sees no unit in full, and counts per brand of the units its cell lot went into
    assert shown(scope, shared) == []
    assert scope.others == (
        OthersCount(shared.brand.pk, definite_units=4, potential_units=0),  # U1..U3 and U8, refurbished from U1
        OthersCount(shared.other_brand.pk, definite_units=2, potential_units=0),
    )


def test_the_supplier_of_the_subject_sees_every_customer_counted_with_its_exposure(shared):
    scope = scope_of(as_org(shared.m1.owner), shared, shared.m1)
    assert shown(scope, shared) == []
    assert scope.others == (
        OthersCount(shared.brand.pk, definite_units=4, potential_units=3),  # U4..U6 only potentially
        OthersCount(shared.other_brand.pk, definite_units=2, potential_units=0),
    )


def test_a_distributor_sees_the_units_it_received_and_counts_nothing(shared):
    scope = scope_of(as_org(shared.d1), shared, shared.m1)
    assert shown(scope, shared) == ["U1", "U2", "U3"]  # on pallet P1, in carton K1
    assert scope.others == ()


def test_a_regulator_and_the_operator_see_everything(shared):
    regulator = as_org(OrganisationFactory(role=Role.REGULATOR))
    for actor in (regulator, OPERATOR):
        scope = scope_of(actor, shared, shared.m1)
        assert scope.full
        assert shown(scope, shared) == [f"U{i}" for i in range(1, 11)]


def test_a_partys_view_counts_the_units_it_owns_or_received_with_their_exposure(shared):
    # given brand A's and distributor D1's scopes of the trace of M1
    brand = scope_of(as_org(shared.brand), shared, shared.m1).view
    distributor = scope_of(as_org(shared.d1), shared, shared.m1).view
    supplier = scope_of(as_org(shared.m1.owner), shared, shared.m1).view
    # then each counts its own share only
    assert (brand.definite_units, brand.potential_units) == (4, 3)  # U1..U3 and U8; U4..U6
    assert (distributor.definite_units, distributor.potential_units) == (3, 0)  # U1..U3 received
    assert (supplier.definite_units, supplier.potential_units) == (0, 0)


# regulators' jurisdictions: a unit is sold into the country of its consignee, or of the site shipped to


def test_a_jurisdiction_covers_units_shipped_to_a_site_there_and_what_is_upstream_of_them(w):
    # given D1 is registered in Germany, and its shipment of U1..U3 went to its warehouse in Italy
    w.d1.country = "DE"
    w.d1.save(update_fields=["country"])
    warehouse = SiteFactory(owner=w.d1, country="IT")
    Shipment.objects.filter(consignee=w.d1).update(ship_to=warehouse)
    italy, germany, france = (
        Actor.of(OrganisationFactory(role=Role.REGULATOR, all_grant=False), "qa") for _ in range(3)
    )
    for actor, country in ((italy, "IT"), (germany, "DE"), (france, "FR")):
        Grant.objects.create(regulator_id=actor.organisation_id, scope=GrantScope.JURISDICTION, jurisdiction=country)
    italy, germany, france = (actor.with_grants() for actor in (italy, germany, france))
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[w.m1.pk])
    # when / then: U1 was sold into Italy (the site) and Germany (the consignee); nothing into France
    assert [upstream_traceable(a, Unit.objects.get(pk=w.u[1])) for a in (italy, germany, france)] == [True, True, False]
    assert [subject_traceable(a, w.m1) for a in (italy, germany, france)] == [True, True, False]
    assert [result_scope(a, forward).full for a in (italy, germany, france)] == [True, True, False]
    assert genealogy.consignee_countries(genealogy.consignees(forward)) == {"IT", "DE", "CN"}
    # C4 reaches U4..U6 (D2, in China) and U7 (never shipped): not Italy's
    assert not subject_traceable(italy, w.c4)
    assert not upstream_traceable(italy, Unit.objects.get(pk=w.u[4]))


# --- units a party received: asked without reading every shipment it received ----------------------------


def _more_shipments_to(w, organisation, n: int) -> None:
    """``n`` more shipments to ``organisation``: pallets holding a carton of one unit each."""
    from packs.models import Container, ContainerPacking
    from tests.trace_world import AT
    from traceability.genealogy.commissioning import units_create, units_pack

    units = units_create(
        owner=w.brand, product_model=w.work_order.product_model, serials=[f"X{i}" for i in range(n)], produced_at=AT
    )
    for i, unit in enumerate(units):
        carton = Container.objects.create(owner=w.brand, identity=f"own:carton-x{i}", kind="carton")
        pallet = Container.objects.create(owner=w.brand, identity=f"own:pallet-x{i}", kind="pallet")
        units_pack(packings=[(carton.pk, unit, AT)])
        ContainerPacking.objects.create(parent=pallet, child=carton, packed_at=AT)
        shipment = Shipment.objects.create(owner=w.brand, reference=f"X-{i}", consignee=organisation, shipped_at=AT)
        ShipmentItem.objects.create(shipment=shipment, container=pallet)


def test_a_distributor_looks_up_a_unit_it_received_in_queries_that_do_not_grow_with_its_shipments(w):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    distributor = as_org(w.d1)
    u1, u4 = Unit.objects.get(pk=w.u[1]), Unit.objects.get(pk=w.u[4])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert upstream_traceable(distributor, u1)  # in carton K1 on pallet P1, shipped to it
            assert not upstream_traceable(distributor, u4)  # in carton K2, shipped to D2
        # the shipments are asked one existence question per unit, never listed
        items = [q["sql"] for q in captured if ShipmentItem._meta.db_table in q["sql"]]
        assert len(items) == 2 and all(sql.endswith("LIMIT 1") for sql in items), items
        return len(captured)

    one = queries()
    # when it receives five more shipments
    _more_shipments_to(w, w.d1, 5)
    # then
    assert queries() == one


def test_the_units_a_distributor_reads_are_one_condition_built_without_a_query(w):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from traceability.access.policy import units_readable

    # given
    _more_shipments_to(w, w.d1, 3)
    distributor = as_org(w.d1)
    # when
    with CaptureQueriesContext(connection) as built:
        readable = units_readable(distributor)
    # then the condition asks the database itself, and finds the units on pallet P1 and the three new ones
    assert len(built) == 0
    serials = sorted(Unit.objects.filter(readable).values_list("serial", flat=True))
    assert serials == ["U1", "U2", "U3", "X0", "X1", "X2"]
    assert sorted(Unit.objects.filter(units_readable(as_org(w.d2))).values_list("serial", flat=True)) == [
        "U4",
        "U5",
        "U6",
    ]
