"""The GS1 Tag Data Standard's grammar of identifiers, as EPCIS places them: EPC URNs (pure identity,
class and pattern forms, with each scheme's fields and check characters), GS1 Digital Links with
check digits, and geo URIs; ``identifier_reason`` says what is wrong with one, or None."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString

from traceability.gs1 import identifiers

Role: TypeAlias = Literal["instance", "class", "location", "party"]


_SHOWN = 80  # characters of a value quoted in a message


_EXPECTED: dict[Role, str] = {
    "instance": "expected an EPC URN (urn:epc:id:…) or a GS1 Digital Link (https://…)",
    "class": "expected an EPC class (urn:epc:class:… or urn:epc:idpat:…) or a GS1 Digital Link",
    "location": "expected an SGLN EPC URN, a GS1 Digital Link with AI 414, or a geo: URI",
    "party": "expected a PGLN or SGLN EPC URN, or a GS1 Digital Link with AI 417 or 414",
}


@functools.lru_cache(maxsize=65_536)
def identifier_reason(value: str, role: Role) -> str | None:
    """Why ``value`` cannot name a ``role`` thing, or None. Cached: documents repeat classes and locations."""
    if value.startswith("urn:epc:"):
        return _epc_urn_reason(value, role)
    if value[:8].lower().startswith(("http://", "https://")):
        if _PRIMARY_KEY_IN_PATH.search(value) is None and role != "party":
            return None  # a private HTTP URI (EPCIS 2.0 admits any URI), not a Digital Link
        return _digital_link_reason(value, role)
    if _PRIVATE_URN.match(value) and role in ("instance", "class", "location"):
        return None  # a private URN (urn:example:…): EPCIS 2.0 admits any URI as an identifier
    if role == "location" and value.startswith("geo:"):  # CBV 2.0 location identifiers include RFC 5870 geo URIs
        return _geo_reason(value)
    return _EXPECTED[role]


# An HTTP URI naming a GS1 primary key in its path claims to be a Digital Link, and is checked as one.
_PRIMARY_KEY_IN_PATH = re.compile(
    r"^https?://[^/]+(/[^?#]*)?/(00|01|253|255|401|402|414|417|8003|8004|8006|8010|8017|8018)/"
)


_PRIVATE_URN = re.compile(r"urn:(?!epc:)[a-z0-9][a-z0-9-]{0,31}:\S+", re.IGNORECASE)


_URN_HEAD = re.compile(r"urn:epc:(id|class|idpat):([a-z0-9]+):")


# The URN forms traceability.gs1.identifiers parses (and whose reasons it gives).
_LEDGER_URNS = frozenset(
    {("id", "sgtin"), ("class", "lgtin"), ("idpat", "sgtin"), ("id", "sscc"), ("id", "sgln"), ("id", "pgln")}
)


_URN_ROLES: dict[Role, Callable[[str, str], str | None]] = {
    "instance": lambda kind, scheme: None if kind == "id" else f"urn:epc:{kind}: names a class, not one object",
    "class": lambda kind, scheme: (
        None if kind != "id" else "urn:epc:id: names one object, not a class (urn:epc:class:… or urn:epc:idpat:…)"
    ),
    "location": lambda kind, scheme: None if (kind, scheme) == ("id", "sgln") else _EXPECTED["location"],
    "party": lambda kind, scheme: None if kind == "id" and scheme in ("pgln", "sgln") else _EXPECTED["party"],
}


def _epc_urn_reason(value: str, role: Role) -> str | None:
    head = _URN_HEAD.match(value)
    if head is None:
        return "expected urn:epc:id:, urn:epc:class: or urn:epc:idpat: then a scheme and a colon"
    kind, scheme = head[1], head[2]
    if reason := _URN_ROLES[role](kind, scheme):
        return reason
    if (kind, scheme) in _LEDGER_URNS:
        try:
            identifiers.parse(value)
        except identifiers.InvalidIdentifier as exc:
            return f"{exc.form}: {exc.reason}" if exc.form else exc.reason
        return None
    if kind == "class":
        return f"the Tag Data Standard has no {scheme!r} EPC class; classes are urn:epc:class:lgtin:…"
    form = _TDS_SCHEMES.get(scheme)
    if form is None:
        return f"{scheme!r} is not an EPC scheme of the Tag Data Standard"
    return form.reason(value[head.end() :], pattern=kind == "idpat")


# Component grammars of the Tag Data Standard 2.x EPC URIs (§6.3, §7).
_GRAMMARS: dict[str, tuple[re.Pattern[str], str]] = {
    "prefix": (re.compile(r"[0-9]{6,12}"), "6 to 12 digits (a GS1 Company Prefix)"),
    "digits": (re.compile(r"[0-9]*"), "digits"),
    "pair": (re.compile(r"[0-9]{2}"), "two digits"),
    "number": (re.compile(r"0|[1-9][0-9]*"), "a decimal number without leading zeros"),
    "text": (
        re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%2[256Ff]|%3[CEFcef])+"),
        "letters, digits and !'()*+,-.:;=_ with \" % & / < > ? escaped as %22 %25 %26 %2F %3C %3E %3F",
    ),
    "part": (re.compile(r"(?:[0-9A-Z\-]|%2[3Ff])+"), "upper-case letters, digits, - and the escapes %23 %2F"),
    "cage": (re.compile(r"[0-9A-Z]{5,6}"), "a 5 or 6 character CAGE or DoDAAC code"),
    "adi": (re.compile(r"(?:%23)?(?:[0-9A-Z\-]|%2F)*"), "upper-case letters, digits, - and the escapes %23 %2F"),
    "bic": (re.compile(r"[A-Z]{3}[UJZR][0-9]{7}"), "an ISO 6346 container code: owner, category, 6 digits, check"),
    "imo": (re.compile(r"[0-9]{7}"), "7 digits"),
}


@dataclass(frozen=True)
class _Field:
    label: str
    grammar: str
    max_length: int | None = None


@dataclass(frozen=True)
class _TdsScheme:
    """An EPC scheme the ledger does not model, checked for syntax only.

    EPC URNs carry no GS1 check digit (the TDS drops it and recomputes it when converting to an
    element string), so for GS1 keys there is none to verify. BIC and IMO numbers do carry one in
    the URN, and their arithmetic is simple and public, so those are checked.
    """

    name: str
    fields: tuple[_Field, ...]
    key_digits: int | None = None  # company prefix + the next field, when the key has a fixed length
    key_chars: int | None = None  # company prefix + the next field, at most
    check: Callable[[str], str | None] | None = None

    def reason(self, body: str, *, pattern: bool) -> str | None:
        parts = body.split(".", len(self.fields) - 1)
        if len(parts) != len(self.fields):
            labels = ", ".join(field.label for field in self.fields)
            return f"{self.name} EPC URN: expected {len(self.fields)} dot-separated fields ({labels})"
        if pattern and (stars := [index for index, part in enumerate(parts) if part == "*"]):
            if any(part != "*" for part in parts[stars[0] :]):
                return f"{self.name} EPC pattern: after a * every field must be *"
            parts = parts[: stars[0]]
        for field, part in zip(self.fields, parts, strict=False):
            grammar, expected = _GRAMMARS[field.grammar]
            if grammar.fullmatch(part) is None:
                return f"{self.name} EPC URN: {field.label} {part!r} must be {expected}"
            if field.max_length and len(_unescaped(part)) > field.max_length:
                return f"{self.name} EPC URN: {field.label} is longer than {field.max_length} characters"
        key = "".join(_unescaped(part) for part in parts[:2])
        if self.key_digits and len(parts) >= 2 and len(key) != self.key_digits:
            together = f"company prefix and {self.fields[1].label} must be {self.key_digits} digits together"
            return f"{self.name} EPC URN: {together}, got {len(key)}"
        if self.key_chars and len(parts) >= 2 and len(key) > self.key_chars:
            return f"{self.name} EPC URN: company prefix and {self.fields[1].label} exceed {self.key_chars} characters"
        return self.check(parts[0]) if self.check and parts else None


def _unescaped(part: str) -> str:
    return re.sub(r"%[0-9A-Fa-f]{2}", "_", part)


def _bic_check(code: str) -> str | None:
    # ISO 6346: letters count 10.. skipping multiples of 11, weights 2**position, sum mod 11 mod 10.
    values = [n for n in range(10, 39) if n % 11]
    total = sum((values[ord(c) - 65] if c.isalpha() else int(c)) * 2**i for i, c in enumerate(code[:10]))
    expected = total % 11 % 10
    return None if int(code[10]) == expected else f"BIC check digit is {code[10]}, expected {expected}"


def _imo_check(number: str) -> str | None:
    expected = sum(int(digit) * weight for digit, weight in zip(number[:6], range(7, 1, -1), strict=True)) % 10
    return None if int(number[6]) == expected else f"IMO number check digit is {number[6]}, expected {expected}"


_PREFIX = _Field("company prefix", "prefix")


_TDS_SCHEMES: dict[str, _TdsScheme] = {
    "grai": _TdsScheme("GRAI", (_PREFIX, _Field("asset type", "digits"), _Field("serial", "text", 16)), key_digits=12),
    "giai": _TdsScheme("GIAI", (_PREFIX, _Field("asset reference", "text")), key_chars=30),
    "gsrn": _TdsScheme("GSRN", (_PREFIX, _Field("service reference", "digits")), key_digits=17),
    "gsrnp": _TdsScheme("GSRNP", (_PREFIX, _Field("service reference", "digits")), key_digits=17),
    "gdti": _TdsScheme(
        "GDTI", (_PREFIX, _Field("document type", "digits"), _Field("serial", "text", 17)), key_digits=12
    ),
    "cpi": _TdsScheme(
        "CPI", (_PREFIX, _Field("component/part reference", "part"), _Field("serial", "number", 12)), key_chars=30
    ),
    "sgcn": _TdsScheme(
        "SGCN", (_PREFIX, _Field("coupon reference", "digits"), _Field("serial", "digits", 12)), key_digits=12
    ),
    "ginc": _TdsScheme("GINC", (_PREFIX, _Field("consignment reference", "text")), key_chars=30),
    "gsin": _TdsScheme("GSIN", (_PREFIX, _Field("shipper reference", "digits")), key_digits=16),
    "itip": _TdsScheme(
        "ITIP",
        (
            _PREFIX,
            _Field("item reference", "digits"),
            _Field("piece", "pair"),
            _Field("total", "pair"),
            _Field("serial", "text", 20),
        ),
        key_digits=13,
    ),
    "upui": _TdsScheme("UPUI", (_PREFIX, _Field("item reference", "digits"), _Field("TPX", "text", 28)), key_digits=13),
    "gid": _TdsScheme(
        "GID", (_Field("manager number", "number"), _Field("object class", "number"), _Field("serial", "number"))
    ),
    "usdod": _TdsScheme("USDOD", (_Field("CAGE or DoDAAC", "cage"), _Field("serial", "number"))),
    "adi": _TdsScheme("ADI", (_Field("CAGE or DoDAAC", "cage"), _Field("part number", "adi"), _Field("serial", "adi"))),
    "bic": _TdsScheme("BIC", (_Field("container code", "bic"),), check=_bic_check),
    "imovn": _TdsScheme("IMOVN", (_Field("IMO number", "imo"),), check=_imo_check),
}


# Primary keys (and the digits of each that end in a GS1 mod-10 check digit), GS1 General Specifications §3.
# GMN (8013) has a two-character check pair, not checked here.
_CHECKED_KEYS: dict[str, tuple[str, int, int]] = {
    "00": ("SSCC", 0, 18),
    "01": ("GTIN", 0, 14),
    "253": ("GDTI", 0, 13),
    "255": ("GCN", 0, 13),
    "402": ("GSIN", 0, 17),
    "414": ("GLN", 0, 13),
    "417": ("GLN", 0, 13),
    "8003": ("GRAI", 1, 14),
    "8006": ("GTIN", 0, 14),
    "8017": ("GSRN", 0, 18),
    "8018": ("GSRN", 0, 18),
}


# The AIs traceability.gs1.identifiers understands: for links made only of these, its reasons are given.
_LEDGER_AIS = frozenset({"00", "01", "10", "21", "254", "414", "417"})


_DL_ROLES: dict[Role, Callable[[str, set[str]], str | None]] = {
    "instance": lambda key, ais: (
        "a GTIN without a serial (AI 21) names a class, not one object" if key == "01" and "21" not in ais else None
    ),
    "class": lambda key, ais: (
        None
        if key not in ("00", "414", "417") and not (key == "01" and "21" in ais)
        else "it names one object or place, not a class (use AI 01, optionally with a lot, AI 10)"
    ),
    "location": lambda key, ais: None if key == "414" else _EXPECTED["location"],
    "party": lambda key, ais: None if key in ("417", "414") else _EXPECTED["party"],
}


def _digital_link_reason(value: str, role: Role) -> str | None:
    try:
        link = GS1DigitalLinkURI.parse(value)
    except (ParseError, ValueError) as exc:
        return f"not a GS1 Digital Link: {cut(str(exc))}"
    for element in link.element_strings:
        if reason := _check_digit_reason(element):
            return reason
    ais = {element.ai.ai for element in link.element_strings}
    if reason := _DL_ROLES[role](link.element_strings[0].ai.ai, ais):
        return reason
    if ais <= _LEDGER_AIS:
        try:
            identifiers.parse(value)  # character set, ASCII digits, key qualifiers in the path
        except identifiers.InvalidIdentifier as exc:
            return exc.reason
    return None


def _check_digit_reason(element: GS1ElementString) -> str | None:
    if (key := _CHECKED_KEYS.get(element.ai.ai)) is None:
        return None
    title, start, end = key
    digits = element.value[start:end]
    if not (len(digits) == end - start and digits.isascii() and digits.isdigit()):
        return f"{title} must have {end - start} ASCII digits, got {digits!r}"
    expected = gs1_standard_check_digit(digits[:-1])
    return None if int(digits[-1]) == expected else f"{title} check digit is {digits[-1]}, expected {expected}"


_GEO = re.compile(r"geo:(-?[0-9]+(?:\.[0-9]+)?),(-?[0-9]+(?:\.[0-9]+)?)(?:,-?[0-9]+(?:\.[0-9]+)?)?(?:;.*)?", re.DOTALL)


def _geo_reason(value: str) -> str | None:
    match = _GEO.fullmatch(value)
    if match is None:
        return "a geo URI is geo:latitude,longitude[,altitude] (RFC 5870)"
    if not (-90 <= float(match[1]) <= 90 and -180 <= float(match[2]) <= 180):
        return "latitude must be within ±90 and longitude within ±180"
    return None


def shown(value: Any) -> str:
    """A value as JSON, cut to about 80 characters (a string keeps its closing quote)."""
    if isinstance(value, str):
        return f'"{cut(value)}"'
    return cut(json.dumps(value, ensure_ascii=False, default=str))


def cut(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
