"""Which units an organisation received, or were sold into a country, asked without reading the
organisation's shipments.

``genealogy.received_units`` lists every shipment item addressed to a party in Python and closes
over its containers one level per query: what a party's share of a whole result needs. A request
that asks about one unit, or filters a page of units, needs neither: ``unit_shipped`` walks up
from the one unit (its containers, one query per level of nesting, a few rows each) and asks one
existence question of the shipments naming them; ``shipped_units`` is a condition on ``Unit`` the
database answers in one statement (the containers' closure is a recursive query), so nothing of
the party's shipments crosses into the web process, however many it received.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from packs.models import ContainerPacking, Shipment, ShipmentItem, UnitPacking
from traceability.core.db import in_cte_sql
from traceability.genealogy.packing import containers_around


def to_organisation(organisation_id: int, *, through: str = "") -> Q:
    """The shipments addressed to an organisation (what it received), as a condition on
    ``Shipment``; ``through``: the path to the shipment from another model (``"shipment__"`` from a
    ``ShipmentItem``)."""
    return Q(**{f"{through}consignee_id": organisation_id})


def into_countries(countries: Iterable[str], *, through: str = "") -> Q:
    """The shipments sold into any of ``countries``: to a consignee registered there, or to a site
    there, as a condition on ``Shipment`` (``through``: as ``to_organisation``'s)."""
    wanted = sorted(set(countries))
    if not wanted:
        return Q(**{f"{through}pk__in": []})
    return Q(**{f"{through}consignee__country__in": wanted}) | Q(**{f"{through}ship_to__country__in": wanted})


def unit_shipped(unit_id: int, shipments: Q) -> bool:
    """Whether a shipment of ``shipments`` carried the unit: loose, or in a container it was packed
    in at any depth of nesting. Bounded by the unit's own packing: one query per level of it (a
    carton, its pallet), and one for the shipments."""
    containers = containers_around(UnitPacking.objects.filter(unit_id=unit_id).values_list("container_id", flat=True))
    carried = Q(unit_id=unit_id) | (Q(container_id__any=frozenset(containers)) if containers else Q(pk__in=[]))
    return ShipmentItem.objects.filter(carried, shipment__in=Shipment.objects.filter(shipments).values("pk")).exists()


def shipped_units(shipments: Q) -> Q:
    """The units ``shipments`` carried, loose or packed at any depth, as a condition on ``Unit``:
    one subquery, with no query of its own (the containers' closure is a recursive query)."""
    chosen, params = Shipment.objects.filter(shipments).values("pk").query.sql_with_params()
    item, packing = ShipmentItem._meta.db_table, ContainerPacking._meta.db_table
    # Each packing probed by its container (PostgreSQL, given the closure as a subquery, would
    # hash every packing of the ledger to meet a party's few containers).
    packed = in_cte_sql("p.container_id", "held", "id", connection)
    sql = (
        f"WITH RECURSIVE held(id) AS ("
        f" SELECT i.container_id FROM {item} i WHERE i.shipment_id IN ({chosen}) AND i.container_id IS NOT NULL"
        f" UNION SELECT c.child_id FROM {packing} c JOIN held h ON c.parent_id = h.id)"
        f" SELECT p.unit_id FROM {UnitPacking._meta.db_table} p WHERE {packed}"
        f" UNION ALL SELECT i.unit_id FROM {item} i WHERE i.shipment_id IN ({chosen}) AND i.unit_id IS NOT NULL"
    )
    return Q(pk__in=RawSQL(sql, (*params, *params)))
