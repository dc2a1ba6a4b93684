"""What a handheld scanner types, read as the lot or unit it marks (``traceability.gs1.barcodes``)."""

from __future__ import annotations

import pytest

from traceability.gs1.barcodes import scanned, scanned_identity
from traceability.gs1.identifiers import InvalidIdentifier, Lgtin, Sgtin

GTIN = "09506000134352"
GS = "\x1d"


@pytest.mark.parametrize(
    ("value", "identity"),
    [
        (f"(01){GTIN}(10)LOT42", Lgtin(gtin=GTIN, lot="LOT42")),
        (f"01{GTIN}10LOT42{GS}", Lgtin(gtin=GTIN, lot="LOT42")),
        (f"]C101{GTIN}10LOT42{GS}21SN7", Sgtin(gtin=GTIN, serial="SN7")),  # a batch beside the serial: product data
        (f"]d201{GTIN}21SN7{GS}17250101", Sgtin(gtin=GTIN, serial="SN7")),
        (f"]Q3{GS}01{GTIN}10A", Lgtin(gtin=GTIN, lot="A")),
        (f"01{GTIN}10LOT-LONGER-THAN", Lgtin(gtin=GTIN, lot="LOT-LONGER-THAN")),
    ],
)
def test_an_element_string_names_its_lot_or_unit(value, identity):
    assert scanned(value)
    assert scanned_identity(value) == identity


@pytest.mark.parametrize("value", ["LOT42", "U1", "urn:epc:id:sgtin:0614141.812345.6789", f"01{GTIN}", "(A)"])
def test_codes_urns_and_short_digits_are_not_read_as_barcodes(value):
    assert not scanned(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"(01){GTIN}", "the barcode carries a GTIN but no batch (AI 10) or serial (AI 21)"),
        (f"(01){GTIN[:-1]}3(10)A", "Invalid GTIN check digit for '09506000134353': Expected 2, got 3"),
        ("(17)250101(10)A", "the barcode carries no GTIN (AI 01): it names no lot or unit"),
        ("]C0ABC" + GS, "the barcode's symbology ]C0 carries no GS1 element string"),
        (f"(01){GTIN}(10)LOT\u00e9", "failed to match"),
    ],
)
def test_a_malformed_barcode_says_what_is_wrong(value, reason):
    with pytest.raises(InvalidIdentifier) as refused:
        scanned_identity(value)
    assert refused.value.value == value
    assert reason in refused.value.reason
