"""Writes for units, packing and shipments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import transaction

from packs.models import Container, ProductModel, Site, Unit, UnitPacking, WorkOrder
from suppliers.models import Organisation
from traceability.core.bulk import bulk_insert, insert_rows
from traceability.core.errors import DomainError
from traceability.core.jobs import Chunk, job_handler
from traceability.core.models import Job, JobKind
from traceability.genealogy.writes import packings_written
from traceability.gs1 import identifiers
from traceability.ledger.models import LedgerSource
from traceability.ledger.services import BATCH_SIZE, ids_missing, ledger_append, ledger_lock

# One chunk of a commissioning job: 10,000 units ≈ 0.3 s on SQLite, well under a task's budget.
COMMISSION_CHUNK = 10_000


class UnitError(DomainError, ValueError):
    """Units not commissioned or not packed; nothing of the batch is written."""

    code = "units_refused"


class DuplicateSerial(UnitError):
    code = "duplicate_serial"


class SerialTaken(UnitError):
    """A serial already in the ledger for the product model."""

    code = "serial_taken"


class UnknownPacked(UnitError):
    """Packing rows naming units or containers the ledger does not hold."""

    code = "unknown_ids"


def unit_identity(*, owner: Organisation, gtin: str | None, serial: str) -> str:
    """The canonical key of a unit: SGTIN when the product has a GTIN, else the owner's serial."""
    if gtin:
        return identifiers.Sgtin(gtin=gtin, serial=serial).canonical
    return identifiers.OwnCode(kind="serial", org=owner.slug, code=serial).canonical


def units_create(
    *,
    owner: Organisation,
    product_model: ProductModel,
    serials: Sequence[str],
    produced_at: dt.datetime | Sequence[dt.datetime],
    work_order: WorkOrder | None = None,
    site: Site | None = None,
) -> list[int]:
    """Commission units in bulk; returns their ids in the order of ``serials``.

    Refuses the whole batch, naming the first serials, if any is already in the ledger.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("units_create must run inside the caller's transaction")
    times = [produced_at] * len(serials) if isinstance(produced_at, dt.datetime) else list(produced_at)
    units = [
        Unit(
            owner=owner,
            identity=unit_identity(owner=owner, gtin=product_model.gtin, serial=serial),
            serial=serial,
            gtin=product_model.gtin,
            product_model=product_model,
            work_order=work_order,
            site=site or (work_order.site if work_order else None),
            produced_at=at,
        )
        for serial, at in zip(serials, times, strict=True)
    ]
    identities = [u.identity for u in units]
    if len(set(identities)) != len(identities):
        raise DuplicateSerial("the batch lists a serial more than once")
    for start in range(0, len(identities), BATCH_SIZE):
        batch = identities[start : start + BATCH_SIZE]
        if taken := list(Unit.objects.filter(identity__in=batch).values_list("serial", flat=True)[:5]):
            raise SerialTaken(f"serial(s) already in the ledger for {product_model}: {', '.join(taken)}")
    created = bulk_insert(Unit, units)
    return [u.pk for u in created]


def units_pack(*, packings: Iterable[tuple[int, int, dt.datetime]]) -> int:
    """Put units into containers, in bulk: ``(container id, unit id, packed at)`` rows.

    Holds the ledger's lock like every genealogy write, so the consignee roll-up meets each
    (member, packing) pair exactly once, whichever of the two is written first.
    """
    ledger_lock()
    rows = list(packings)
    if not rows:
        return 0
    for model, ids in ((Unit, {u for _, u, _ in rows}), (Container, {c for c, _, _ in rows})):
        if missing := ids_missing(model, ids):
            shown = ", ".join(map(str, missing[:10]))
            raise UnknownPacked(
                f"cannot pack: unknown {model._meta.verbose_name} id(s) {shown} ({len(missing)} in all)"
            )
    created = insert_rows(UnitPacking, ("container_id", "unit_id", "packed_at"), rows)
    packings_written(packing_ids=created, unit_ids=sorted({u for _, u, _ in rows}))
    return len(created)


def commission_serial(*, prefix: str, number: int) -> str:
    return f"{prefix}{number:08d}"


@job_handler(JobKind.COMMISSION_UNITS)
def units_commission_chunk(job: Job) -> Chunk:
    """Commission the next chunk of a work order's serial range (``prefix`` + 8-digit counter).

    Params: ``work_order_id``, ``prefix``, ``start`` (first counter value), ``count``.
    """
    params = job.params
    work_order = WorkOrder.objects.select_related("owner", "product_model", "site").get(pk=params["work_order_id"])
    count = int(params["count"])
    first = int(params["start"]) + job.done
    size = min(COMMISSION_CHUNK, count - job.done)
    entry = ledger_append(
        source=LedgerSource.JOB,
        summary=f"commissioned {size} units for {work_order} (job {job.pk})",
        organisation=work_order.owner,
    )
    serials = [commission_serial(prefix=params["prefix"], number=n) for n in range(first, first + size)]
    units_create(
        owner=work_order.owner,
        product_model=work_order.product_model,
        work_order=work_order,
        serials=serials,
        produced_at=entry.recorded_at,
    )
    done = job.done + size
    return Chunk(
        done=done,
        total=count,
        phase=f"commissioned {done:,} of {count:,} units",
        result={"last_serial": serials[-1], "ledger_position": entry.position},
    )
