"""What a handheld scanner types: a GS1 element string read from a GS1-128, GS1 DataMatrix, GS1 QR
or GS1 DataBar symbol, named as the lot (GTIN and batch) or the unit (GTIN and serial) it marks.

A scanner in keyboard mode sends the symbol's data as typed characters: the raw element string,
variable-length elements ended by the group separator (GS, U+001D, the FNC1 transmitted), often
behind a symbology identifier (``]C1``, ``]d2``, ``]Q3``, ``]e0``); a person copying a label types
the human-readable form, ``(01)09506000134352(10)LOT42``. biip reads both (the AI table, the
patterns, the check digit); what it leaves on the element (a wrong check digit) is refused here.
"""

from __future__ import annotations

import re

from biip import ParseError
from biip.gs1_messages import GS1Message
from biip.symbology import SymbologyIdentifier

from traceability.gs1.identifiers import InvalidIdentifier, Lgtin, Sgtin

__all__ = ["scanned", "scanned_identity"]

GS = "\x1d"
_SYMBOLOGY = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_HUMAN_READABLE = re.compile(r"\(\d{2,4}\)")
# Raw, without a separator: a GTIN then a batch or serial. Longer than an own code may be (20
# characters, GS1's lot and serial length), so it cannot be one of an organisation's own codes.
_RAW = re.compile(r"01\d{14}(?:10|21).+")
_OWN_CODE_MAX = 20


def scanned(value: str) -> bool:
    """Whether ``value`` reads as a scanned or copied GS1 element string rather than a code, URN or
    link: a symbology identifier first, a group separator in it, an AI in brackets first, or a raw
    GTIN with its batch or serial too long to be an own code."""
    return bool(
        _SYMBOLOGY.match(value)
        or GS in value
        or _HUMAN_READABLE.match(value)
        or (len(value) > _OWN_CODE_MAX and _RAW.fullmatch(value))
    )


def scanned_identity(value: str) -> Lgtin | Sgtin:
    """The lot or unit a GS1 element string names: GTIN (AI 01) and serial (AI 21) a unit, GTIN and
    batch (AI 10) a lot (a batch beside a serial is product data, as in a Digital Link).

    Raises ``InvalidIdentifier`` saying what is wrong: a symbol that is not a GS1 one, an element
    string biip cannot read, a wrong check digit, no GTIN, or a GTIN with neither batch nor serial.
    """
    data = value.strip()
    if _SYMBOLOGY.match(data):
        symbology = SymbologyIdentifier.extract(data)
        if symbology.gs1_symbology is None:
            raise InvalidIdentifier(
                value, f"the barcode's symbology {symbology.value} carries no GS1 element string", form="GS1 barcode"
            )
        data = data[len(symbology.value) :]
    try:
        message = GS1Message.parse_hri(data) if data.startswith("(") else GS1Message.parse(data.lstrip(GS))
    except (ParseError, ValueError) as exc:
        reason = str(exc).rstrip(".")
        raise InvalidIdentifier(value, reason[:1].lower() + reason[1:], form="GS1 barcode") from None
    values: dict[str, str] = {}
    for element in message.element_strings:
        if element.gtin_error:
            raise InvalidIdentifier(value, element.gtin_error.rstrip("."), form="GS1 barcode")
        values.setdefault(element.ai.ai, element.value)
    gtin = values.get("01")
    if gtin is None:
        raise InvalidIdentifier(value, "the barcode carries no GTIN (AI 01): it names no lot or unit")
    try:
        if "21" in values:
            return Sgtin(gtin=gtin, serial=values["21"])
        if "10" in values:
            return Lgtin(gtin=gtin, lot=values["10"])
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(value, exc.reason, form=exc.form) from None
    raise InvalidIdentifier(
        value,
        "the barcode carries a GTIN but no batch (AI 10) or serial (AI 21): it names a trade item, not a lot or unit",
    )
