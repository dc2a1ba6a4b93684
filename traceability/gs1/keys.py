"""GS1 keys built from a company prefix and a reference, with their check digit.

The demo world, the benchmark world and the tests all make GTINs, GLNs and SSCCs; this is the one
copy of how (GS1 General Specifications §7.9: the standard mod-10 check digit, biip's).
"""

from __future__ import annotations

from biip.checksums import gs1_standard_check_digit


def with_check_digit(payload: str) -> str:
    """``payload`` (all digits) followed by its GS1 check digit."""
    return payload + str(gs1_standard_check_digit(payload))


def gln(prefix: str, location: int) -> str:
    """A GLN-13: the company prefix, the location reference padded to fill 12 digits, a check digit."""
    return with_check_digit(f"{prefix}{location:0{12 - len(prefix)}d}")


def gtin14(prefix: str, item: int, *, indicator: int = 0) -> str:
    """A GTIN-14: the indicator digit, the company prefix, the item reference, a check digit."""
    return with_check_digit(f"{indicator}{prefix}{item:0{12 - len(prefix)}d}")


def sscc(prefix: str, serial: int, *, extension: int = 0) -> str:
    """An SSCC-18: the extension digit, the company prefix, the serial reference, a check digit."""
    return with_check_digit(f"{extension}{prefix}{serial:0{16 - len(prefix)}d}")
