"""How containers nest (``genealogy.packing``): walked down from what was shipped and up from what
was packed, at any depth, one query per level, ending at a cycle bad data may hold."""

from __future__ import annotations

import datetime as dt

import pytest

from packs.models import Container, ContainerPacking
from tests.factories import OrganisationFactory
from traceability.genealogy.packing import containers_around, containers_nesting, containers_within

pytestmark = pytest.mark.django_db

AT = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@pytest.fixture()
def nest():
    """Cartons K1 and K2 on pallet P, P in shipping container S; X and Y packed in each other."""
    owner = OrganisationFactory()
    made = {
        name: Container.objects.create(owner=owner, identity=f"own:{owner.pk}:{name}", kind=kind)
        for name, kind in (
            ("K1", "carton"),
            ("K2", "carton"),
            ("P", "pallet"),
            ("S", "other"),
            ("X", "carton"),
            ("Y", "carton"),
        )
    }
    for parent, child in (("P", "K1"), ("P", "K2"), ("S", "P"), ("X", "Y"), ("Y", "X")):
        ContainerPacking.objects.create(parent=made[parent], child=made[child], packed_at=AT)
    return {name: container.pk for name, container in made.items()}


def test_down_from_what_was_shipped_every_container_inside_at_any_depth(nest, django_assert_num_queries):
    with django_assert_num_queries(3):  # a level each: P, the cartons, and none below them
        found = containers_within([nest["S"]])
    assert found == {nest["S"], nest["P"], nest["K1"], nest["K2"]}
    assert containers_within([]) == frozenset()


def test_up_from_what_was_packed_every_container_holding_it_with_what_each_holds(nest, django_assert_num_queries):
    with django_assert_num_queries(3):  # a level each: P, S, and none above it
        nesting = containers_nesting([nest["K1"]])
    assert {parent: sorted(children) for parent, children in nesting.items()} == {
        nest["P"]: [nest["K1"]],
        nest["S"]: [nest["P"]],
    }
    assert containers_around([nest["K1"], nest["K2"]]) == {nest["K1"], nest["K2"], nest["P"], nest["S"]}


def test_a_nesting_cycle_ends_the_walks(nest):
    assert containers_within([nest["X"]]) == containers_around([nest["X"]]) == {nest["X"], nest["Y"]}
