"""Writes of a lot's owner: inspection results and certificates of analysis, checked against limits.

A result is a set of measured values, each of a property the lot's material (or cell model) has a
limit for (``Spec``), in that limit's unit, with the document it came in (a certificate of
analysis, a lab report). A value outside its limits is what an inspection is for: it is recorded,
and the inspection fails. A value the ledger cannot judge (a property with no limit, another unit,
not a number) is refused, with where it is in the input and why, and nothing is kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from cells.models import (
    CellLot,
    Inspection,
    InspectionMethod,
    InspectionOutcome,
    Lot,
    LotKind,
    MaterialLot,
    Measurement,
)
from cells.selectors import lot_specs
from suppliers.services import recorded_user
from traceability.core.audit import AuditAction, audit_record
from traceability.core.errors import DomainError
from traceability.core.files import Sniffed, file_sniffed, file_stored

# A value's digits as ``Measurement.value`` keeps them (max_digits=20, decimal_places=6).
_INTEGER_DIGITS, _FRACTION_DIGITS = 14, 6


class ResultRefused(DomainError, ValueError):
    """An inspection result the ledger cannot judge against its lot's limits: nothing is kept."""

    code = "result_refused"


class NoLimits(ResultRefused):
    code = "no_limits"


class UnknownProperty(ResultRefused):
    code = "unknown_property"


class WrongUnit(ResultRefused):
    code = "wrong_unit"


class NotANumber(ResultRefused):
    code = "not_a_number"


class RepeatedProperty(ResultRefused):
    code = "repeated_property"


class NoResults(ResultRefused):
    code = "no_results"


@dataclass(frozen=True)
class Measured:
    """One value as given: the property's name, the value (a number or its text), and its unit."""

    property: str
    value: Any
    unit: str


def inspection_record(
    *,
    lot: Lot,
    results: Sequence[Measured],
    inspected_at: dt.datetime,
    method: str = InspectionMethod.ANALYSIS,
    file: File | None = None,
    name: str = "",
    sample_size: int | None = None,
    notes: str = "",
    by: AbstractBaseUser | None = None,
) -> Inspection:
    """Record the lot owner's inspection of ``lot``: each value checked against the lot's limits,
    the inspection failing when any is outside them; ``file`` (a certificate of analysis, a lab
    report) stored with it, as a finding's evidence is.

    Refused (``ResultRefused``, field ``results.<i>.<property|unit|value>``; or the file's
    ``AttachmentRefused``), with nothing stored: no values; a property the lot has no limit for; a
    unit other than the limit's; a value that is not a finite number of at most 14 integer and 6
    decimal digits; a property given twice. The caller has checked the lot is the actor's own
    (``access.policy.lot_writable``).
    """
    judged = _judged(lot, results)
    sniffed = _sniffed(file, name) if file is not None else None
    now = timezone.now()
    inspection = Inspection(
        owner_id=lot.owner_id,
        lot=lot,
        method=method,
        outcome=InspectionOutcome.PASS if all(m.passed for m in judged) else InspectionOutcome.FAIL,
        measurements={m.property: {"value": str(m.value), "unit": m.unit} for m in judged},
        sample_size=sample_size,
        inspected_at=inspected_at,
        notes=notes,
        recorded_by=recorded_user(by),
        recorded_at=now,
    )
    stored: AbstractContextManager[None] = nullcontext()
    if file is not None and sniffed is not None:
        inspection.attachment_name = sniffed.name
        inspection.attachment_content_type = sniffed.content_type
        inspection.attachment_size = sniffed.size
        inspection.attachment_sha256 = sniffed.sha256
        # the bytes are stored before the row exists, and deleted if it is not recorded
        stored = file_stored(inspection.attachment, file, sniffed.name)
    with stored, transaction.atomic(durable=True):
        inspection.save()
        for measurement in judged:
            measurement.inspection = inspection
        Measurement.objects.bulk_create(judged)
        audit_record(
            action=AuditAction.INSPECTION_RECORD,
            user=by,
            organisation=lot.owner_id,
            identifiers=[lot.identity, f"inspection:{inspection.pk}"]
            + ([f"sha256:{sniffed.sha256}"] if sniffed is not None else []),
            detail={
                "method": method,
                "outcome": inspection.outcome,
                "failing": [m.property for m in judged if not m.passed],
            },
        )
    return inspection


def _sniffed(file: File, name: str) -> Sniffed:
    return file_sniffed(
        file,
        name or file.name or "",
        limit=settings.LEDGER_ATTACHMENT_MAX_BYTES,
        kept_as="a certificate or report",
        each="an inspection's documents",
    )


def _judged(lot: Lot, results: Sequence[Measured]) -> list[Measurement]:
    """Each value checked against its limit: one query for the lot's limits."""
    if not results:
        raise NoResults("an inspection result gives at least one measured value", field="results")
    specs = {spec.property: spec for spec in lot_specs(lot=lot)}
    if not specs:
        raise NoLimits(
            f"{_of(lot)} has no limits to check values against: its owner records them first", field="results"
        )
    judged: list[Measurement] = []
    seen: set[str] = set()
    for index, given in enumerate(results):
        at = f"results.{index}"
        spec = specs.get(given.property)
        if spec is None:
            known = ", ".join(sorted(specs))
            raise UnknownProperty(
                f"{given.property!r} is not a property {_of(lot)} has a limit for (it has: {known})",
                field=f"{at}.property",
            )
        if given.property in seen:
            raise RepeatedProperty(f"{given.property!r} is given more than once", field=f"{at}.property")
        seen.add(given.property)
        if given.unit.strip() != spec.unit:
            raise WrongUnit(
                f"{given.property} is measured in {spec.unit!r}, not {given.unit!r}: give the value in {spec.unit}",
                field=f"{at}.unit",
            )
        value = _number(given.value, field=f"{at}.value")
        passed = (spec.minimum is None or value >= spec.minimum) and (spec.maximum is None or value <= spec.maximum)
        judged.append(
            Measurement(
                property=spec.property,
                value=value,
                unit=spec.unit,
                minimum=spec.minimum,
                maximum=spec.maximum,
                passed=passed,
            )
        )
    return judged


def _number(value: Any, *, field: str) -> Decimal:
    """A measured value as a decimal: a JSON number or its text; not a boolean, NaN or infinity."""
    refused = NotANumber(f"{value!r} is not a number", field=field)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise refused
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise refused from None
    if not number.is_finite():
        raise refused
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    fraction = max(0, -exponent)
    integer = max(0, len(digits) + exponent)
    if integer > _INTEGER_DIGITS or fraction > _FRACTION_DIGITS:
        raise NotANumber(
            f"{value!r} has more digits than a measured value keeps"
            f" (at most {_INTEGER_DIGITS} before the point and {_FRACTION_DIGITS} after)",
            field=field,
        )
    return number


def _of(lot: Lot) -> str:
    if isinstance(lot, MaterialLot) or lot.kind == LotKind.MATERIAL:
        return f"material lot {lot.code}'s material"
    if isinstance(lot, CellLot) or lot.kind == LotKind.CELL:
        return f"cell lot {lot.code}'s cell model"
    return f"{lot.get_kind_display().lower()} {lot.code}"
