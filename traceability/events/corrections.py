"""Corrections by hand: genealogy records retracted by a person, with the reason.

A ledger fact is never edited or deleted; a wrong record is retracted, and stops counting from the
ledger position of its retraction while its rows stay (earlier traces reproduce). This lives with
the EPCIS events, not in the genealogy below them, because a record derived from EPCIS events has
to take its events with it: they are declared erroneous at the same position, as an
``errorDeclaration`` would declare them. Otherwise the EPCIS query interface would go on answering
them as valid, and the next event of their ``transformationID`` group would record the grown group
again from its undeclared events (``capture._transformations_derive``), bringing the retracted
links back.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from suppliers.models import Organisation
from traceability.events.models import EpcisEvent
from traceability.events.vocabulary import utc_iso
from traceability.genealogy.models import Transformation
from traceability.genealogy.writes import GenealogyError, transformations_retract
from traceability.ledger.models import LedgerEntry, LedgerSource
from traceability.ledger.services import ledger_append, ledger_lock


def transformations_retract_by_operator(
    *, transformation_ids: Iterable[int], reason: str, user: AbstractBaseUser | None
) -> LedgerEntry:
    """Retract records by hand: one ledger entry, every record retracted at it with ``reason``,
    and the EPCIS events they were derived from declared erroneous at it.

    All or nothing: a blank reason, an unknown record or one retracted already (its first
    retraction stands) refuses the whole request with ``GenealogyError``, writing nothing.
    The entry names the records' organisation when they share one.
    """
    reason = reason.strip()
    ids = set(transformation_ids)
    if not reason:
        raise GenealogyError("a retraction needs its reason")
    if not ids:
        raise GenealogyError("no record to retract")
    with transaction.atomic(durable=True):
        # The ledger's lock first, as every ledger write takes it: no capture retracts or records
        # these records again between the check below and the retraction.
        ledger_lock()
        records = list(Transformation.objects.filter(pk__any=ids).order_by("pk"))
        if missing := sorted(ids - {record.pk for record in records}):
            raise GenealogyError(f"no record with id {', '.join(map(str, missing))} in the ledger")
        if retracted := [record for record in records if record.retracted]:
            raise GenealogyError(
                "; ".join(
                    f"{record} (id {record.pk}) was already retracted at ledger position {record.retracted_position_id}"
                    for record in retracted
                )
            )
        owners = {record.owner_id for record in records}
        entry = ledger_append(
            source=LedgerSource.MANUAL,
            summary=f"Retraction of {len(records)} record(s) by hand: {reason}",
            organisation=Organisation.objects.get(pk=owners.pop()) if len(owners) == 1 else None,
            actor=user,
        )
        transformations_retract(reasons=dict.fromkeys(ids, reason), entry=entry)
        EpcisEvent.objects.filter(record_id__any=ids, declared_at__isnull=True).update(
            declared_at=entry.recorded_at, declaration={"declarationTime": utc_iso(entry.recorded_at)}
        )
    return entry
