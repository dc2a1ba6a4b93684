"""The access policy's first question: who may trace what (DESIGN.md, "Who sees what").

Asked of the hand-built world (tests/trace_world.py): material lot M1 reaches cell lot C1, module
MOD1 and units U1..U3 (and U8, refurbished from U1); C4 reaches U4..U7; U1..U3 went to distributor
D1 (on a pallet), U4..U6 to D2. Each lot has its own maker; the brand built every unit.
"""

import pytest

from suppliers.models import Role
from tests.factories import OrganisationFactory
from tests.trace_world import build_world
from traceability.access.policy import OPERATOR, Actor, trace_allowed

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
