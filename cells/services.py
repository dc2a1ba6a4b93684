"""Writes of a lot's owner: inspection results and certificates of analysis, checked against limits,
and the limits themselves, written by the material's or cell model's owner (``spec_set``).

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
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from django.utils import timezone

from cells.models import (
    CellLot,
    CellModel,
    Inspection,
    InspectionMethod,
    InspectionOutcome,
    Lot,
    LotKind,
    Material,
    MaterialLot,
    Measurement,
    Spec,
)
from cells.selectors import lot_specs
from suppliers.models import Organisation
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


# --- limits ---------------------------------------------------------------------------------------------


class LimitRefused(DomainError, ValueError):
    """A limit the ledger cannot check values against, or one its writer does not own: nothing is kept."""

    code = "limit_refused"


class NotTheOwner(LimitRefused):
    code = "not_the_owner"


def spec_set(
    *,
    owner: Organisation | int,
    material: Material | None = None,
    cell_model: CellModel | None = None,
    property: str,
    unit: str,
    minimum: Decimal | None,
    maximum: Decimal | None,
    by: AbstractBaseUser | None = None,
) -> Spec:
    """Set the limit of ``property`` that ``material``'s (or ``cell_model``'s) lots are held to: a
    new one, or the one it has for that property changed, in one transaction with its audit entry
    (the limit as it was, if any, and as it is). Values recorded before keep the limits they were
    judged against (``Measurement`` holds them); the next inspection is checked against this one.

    Refused (``LimitRefused``, field ``property``, ``unit``, ``minimum`` or ``maximum``), with
    nothing kept: not exactly one of a material and a cell model; one ``owner`` does not own
    (``NotTheOwner``); a property that is not a slug of at most 64 characters; no unit, or one of
    more than 16 characters or with control characters; neither a minimum nor a maximum; a minimum
    above the maximum; a bound that is not a finite number of at most 14 integer and 6 decimal
    digits. The caller has checked the actor writes the owner's limits (``access.policy.limits_writable``).
    """
    owner_id = owner.pk if isinstance(owner, Organisation) else owner
    product: Material | CellModel
    if material is not None and cell_model is None:
        product = material
    elif cell_model is not None and material is None:
        product = cell_model
    else:
        raise LimitRefused("a limit is of one material or of one cell model", field="material")
    if product.owner_id != owner_id:
        # The same words whether another's or none at all: a refusal tells nothing of another's products.
        raise NotTheOwner(f"the organisation owns no {_product_kind(product)} {product.pk}", field="material")
    property = property.strip()
    try:
        validate_slug(property)
    except ValidationError:
        raise LimitRefused(
            f"{property[:64]!r} is not a property name: letters, digits, '_' and '-', as results name it",
            field="property",
        ) from None
    if len(property) > 64:
        raise LimitRefused("a property's name is at most 64 characters", field="property")
    unit = unit.strip()
    if not unit:
        raise LimitRefused("a limit names the unit its values are given in", field="unit")
    if len(unit) > 16 or any(ord(c) < 32 or ord(c) == 127 for c in unit):
        raise LimitRefused(f"{unit[:20]!r} is not a unit: at most 16 printable characters", field="unit")
    minimum = None if minimum is None else _bound(minimum, field="minimum")
    maximum = None if maximum is None else _bound(maximum, field="maximum")
    if minimum is None and maximum is None:
        raise LimitRefused("a limit has a minimum, a maximum or both", field="minimum")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise LimitRefused(f"the minimum {minimum} is above the maximum {maximum}", field="maximum")
    of = {"material": product} if material is not None else {"cell_model": product}
    try:
        with transaction.atomic(durable=True):
            spec = Spec.objects.select_for_update().filter(**of, property=property).first()
            before = None if spec is None else _limit(spec)
            if spec is None:
                spec = Spec(owner_id=owner_id, **of, property=property)
            spec.unit, spec.minimum, spec.maximum = unit, minimum, maximum
            spec.save()
            audit_record(
                action=AuditAction.SPEC_SET,
                user=by,
                organisation=owner_id,
                identifiers=[f"{_product_kind(product).replace(' ', '_')}:{product.pk}", f"spec:{spec.pk}"]
                + ([f"gtin:{product.gtin}"] if product.gtin else []),
                detail={"property": property, "before": before, "after": _limit(spec)},
            )
    except IntegrityError:
        # Another request added this property's limit between the read and the insert (the
        # unique constraint stands where no row was there to lock): nothing of this one is kept.
        raise LimitRefused(
            f"the limit of {property} was set by another request at the same moment: send it again to change it",
            field="property",
        ) from None
    return spec


def _bound(value: Decimal, *, field: str) -> Decimal:
    """A limit's bound, with the digits a measured value keeps (it is compared with them)."""
    try:
        return _number(value, field=field)
    except NotANumber as refused:
        raise LimitRefused(refused.message, field=field) from None


def _product_kind(product: Material | CellModel) -> str:
    return "material" if isinstance(product, Material) else "cell model"


def _limit(spec: Spec) -> dict[str, str | None]:
    """A limit as the audit trail keeps it: its bounds as written, without the zeros the database pads."""
    return {
        "unit": spec.unit,
        "minimum": None if spec.minimum is None else format(spec.minimum.normalize(), "f"),
        "maximum": None if spec.maximum is None else format(spec.maximum.normalize(), "f"),
    }
