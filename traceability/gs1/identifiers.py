"""GS1 identifiers: one canonical identity, EPC URN or GS1 Digital Link on the wire.

Partners name the same cell lot as ``urn:epc:class:lgtin:4012345.012345.998877`` or as
``https://id.gs1.org/01/04012345123456/10/998877``. The ledger must see one thing, so every
identity is keyed on the GS1 key digits (GTIN-14, SSCC-18, GLN-13) plus its qualifier, never on
the spelling it arrived in: see the ``canonical`` property of each identity.

The trap is the GS1 Company Prefix. An EPC URN splits it from the item reference; a Digital Link
does not, and the digits alone cannot tell where it ends. Parsing a URN therefore returns the
prefix it saw (``Parsed.company_prefix``) so the caller can remember it, and rendering a URN takes
a resolver for the prefix length, falling back to GS1's published table bundled in biip.

Organisations without GS1 numbers name lots and serials with their own codes. Those are
identities too (``OwnCode``), scoped to the owning organisation, and never guessed: ``parse``
reads a value as an own code only when the caller says whose codes it is reading, and only if the
value does not claim to be a URN or a URL.

biip does the GS1 Digital Link syntax (custom hosts, path prefixes, percent-decoding, query
attributes), the AI value patterns, check digit arithmetic and the company prefix table. It leaves
check digit *errors* on the parsed element (instead of raising), and its ``\\d`` patterns accept
non-ASCII digits, so both are checked here. The EPC URN grammar is written here from the Tag Data
Standard rather than taken from epcpy 0.1.8, whose URN grammar accepts malformed escapes
(``%2``, ``%41``), leaves lower-case escapes such as ``%2f`` undecoded, accepts non-ASCII digits,
and whose element-string-to-URN conversion crashes on serials containing ``(nn)`` and silently
repairs wrong check digits. What remains of a URN, moving the indicator digit, is three lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import ClassVar, Literal, TypeAlias
from urllib.parse import quote, urlsplit

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_prefixes import GS1CompanyPrefix

__all__ = [
    "GtinClass",
    "Identity",
    "InvalidIdentifier",
    "Lgtin",
    "OwnCode",
    "OwnCodeKind",
    "Parsed",
    "Pgln",
    "PrefixLength",
    "Sgln",
    "Sgtin",
    "Sscc",
    "from_canonical",
    "parse",
    "to_digital_link",
    "to_epc_urn",
]

PrefixLength: TypeAlias = Callable[[str], int | None]
"""Company prefix length for 13 digits that start with the prefix, or None when unknown."""

OwnCodeKind: TypeAlias = Literal["lot", "serial"]

_SUPPORTED = "the ledger models SGTIN, LGTIN, SSCC, SGLN, PGLN and GTIN classes"

# GS1 General Specifications, figure 7.11-1: the characters allowed in AIs 10, 21 and 254.
_CSET_82 = re.compile(r"[!\"%-?A-Z_a-z]*")
_MAX_TEXT = 20  # AI 10 (lot), 21 (serial) and 254 (GLN extension) are X..20.
_ORG_KEY = re.compile(r"[A-Za-z0-9._-]+")


class InvalidIdentifier(ValueError):
    """A value that cannot be an identity of the ledger, with a one-line reason fit for an API client.

    Syntax errors name the form that was expected (``'…' is not a valid SGTIN EPC URN: …``);
    content errors such as check digits stand alone (``'…': GTIN check digit is 8, expected 9``)
    because they are wrong whatever the form. ``value`` is always the caller's own input.
    """

    def __init__(self, value: str, reason: str, *, form: str | None = None) -> None:
        self.value = value
        self.reason = reason
        self.form = form
        head = f"{value!r} is not a valid {form}" if form else repr(value)
        super().__init__(f"{head}: {reason}")


class _Problem(Exception):
    """A reason found deep in a check, before we know which caller input to blame."""

    def __init__(self, reason: str, *, form: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.form = form


def _blamed(value: str, problem: _Problem | InvalidIdentifier) -> InvalidIdentifier:
    """``problem`` reported against ``value``, the outermost input the caller gave."""
    return InvalidIdentifier(value, problem.reason, form=problem.form)


@contextmanager
def _blaming(value: str) -> Iterator[None]:
    """Report any problem found inside against ``value``.

    The hot paths (parsing, building an identity) say the same with try/except: entering and leaving
    a context manager costs more than the checks themselves.
    """
    try:
        yield
    except (_Problem, InvalidIdentifier) as exc:
        raise _blamed(value, exc) from None


def _check_key(name: str, digits: object, length: int) -> None:
    reason = _key_reason(name, digits, length) if isinstance(digits, str) else _not_digits(name, digits, length)
    if reason:
        raise _Problem(reason)


@lru_cache(maxsize=4096)
def _key_reason(name: str, digits: str, length: int) -> str | None:
    """Why ``digits`` is not a GS1 key; cached, since a page or a document repeats a few GTINs and GLNs."""
    # str.isdigit() alone would accept non-ASCII digits, which biip lets through from URLs.
    if not (len(digits) == length and digits.isascii() and digits.isdigit()):
        return _not_digits(name, digits, length)
    expected = gs1_standard_check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        return f"{name} check digit is {digits[-1]}, expected {expected}"
    return None


def _not_digits(name: str, digits: object, length: int) -> str:
    return f"{name} must be {length} digits, got {digits!r}"


def _check_text(what: str, text: object) -> None:
    if not isinstance(text, str) or not 1 <= len(text) <= _MAX_TEXT:
        length = len(text) if isinstance(text, str) else text
        raise _Problem(f"{what} must be 1 to {_MAX_TEXT} characters, got {length}")
    # ASCII letters and digits, as most codes are, pass without the regex.
    if not (text.isascii() and text.isalnum()) and not _CSET_82.fullmatch(text):
        bad = next(char for char in text if not _CSET_82.fullmatch(char))
        raise _Problem(f"{what} contains {bad!r}, which is outside GS1 character set 82")


class _Checked:
    """An identity that checks its fields when built, blaming any problem on its canonical key."""

    @property
    def canonical(self) -> str:
        raise NotImplementedError

    def __post_init__(self) -> None:
        try:
            self._check()
        except _Problem as exc:
            raise _blamed(self.canonical, exc) from None

    def _check(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Sgtin(_Checked):
    """One serialised item: a GTIN and a serial number unique within that GTIN."""

    kind: ClassVar[str] = "sgtin"
    gtin: str
    serial: str

    def _check(self) -> None:
        _check_key("GTIN", self.gtin, 14)
        _check_text("serial", self.serial)

    @property
    def canonical(self) -> str:
        return f"sgtin:{self.gtin}:{self.serial}"


@dataclass(frozen=True)
class Lgtin(_Checked):
    """A lot (batch) of a trade item: a GTIN and a lot number."""

    kind: ClassVar[str] = "lgtin"
    gtin: str
    lot: str

    def _check(self) -> None:
        _check_key("GTIN", self.gtin, 14)
        _check_text("lot", self.lot)

    @property
    def canonical(self) -> str:
        return f"lgtin:{self.gtin}:{self.lot}"


@dataclass(frozen=True)
class GtinClass(_Checked):
    """A trade item class without lot, as EPCIS quantity lists name it (``urn:epc:idpat:sgtin:….*``)."""

    kind: ClassVar[str] = "gtin"
    gtin: str

    def _check(self) -> None:
        _check_key("GTIN", self.gtin, 14)

    @property
    def canonical(self) -> str:
        return f"gtin:{self.gtin}"


@dataclass(frozen=True)
class Sscc(_Checked):
    """A logistic unit (carton, pallet)."""

    kind: ClassVar[str] = "sscc"
    sscc: str

    def _check(self) -> None:
        _check_key("SSCC", self.sscc, 18)

    @property
    def canonical(self) -> str:
        return f"sscc:{self.sscc}"


@dataclass(frozen=True)
class Sgln(_Checked):
    """A physical location: a GLN and an extension, where the TDS reserves ``"0"`` for "no extension"."""

    kind: ClassVar[str] = "sgln"
    gln: str
    extension: str = "0"

    def _check(self) -> None:
        _check_key("GLN", self.gln, 13)
        _check_text("extension", self.extension)

    @property
    def canonical(self) -> str:
        return f"sgln:{self.gln}:{self.extension}"


@dataclass(frozen=True)
class Pgln(_Checked):
    """A party (an organisation as a trading partner), named by its GLN."""

    kind: ClassVar[str] = "pgln"
    gln: str

    def _check(self) -> None:
        _check_key("GLN", self.gln, 13)

    @property
    def canonical(self) -> str:
        return f"pgln:{self.gln}"


@dataclass(frozen=True)
class OwnCode(_Checked):
    """A lot or serial code an organisation assigned itself, meaningful only within that organisation.

    ``org`` is the caller's key for the organisation (slug or id); it is part of the identity, so two
    organisations' ``LOT-1`` never collide. Codes follow the GS1 rules for lots and serials (at most
    20 characters of character set 82) so they still fit AI 10/21 if the organisation later labels
    with GS1 barcodes.
    """

    kind: OwnCodeKind
    org: str
    code: str

    def _check(self) -> None:
        if self.kind not in ("lot", "serial"):
            raise _Problem(f"own code kind must be 'lot' or 'serial', got {self.kind!r}")
        # The key is embedded in ``canonical`` between colons.
        if not (isinstance(self.org, str) and _ORG_KEY.fullmatch(self.org)):
            raise _Problem(f"organisation key must be letters, digits, '.', '_' or '-', got {self.org!r}")
        _check_text(f"own {self.kind} code", self.code)

    @property
    def canonical(self) -> str:
        return f"own-{self.kind}:{self.org}:{self.code}"


Identity: TypeAlias = Sgtin | Lgtin | GtinClass | Sscc | Sgln | Pgln | OwnCode


@dataclass(frozen=True)
class Parsed:
    """An identity plus what its spelling taught us.

    ``company_prefix`` is the GS1 Company Prefix an EPC URN spelled out (None for Digital Links and
    own codes): store it, so later URNs for Digital-Link-only identities split the digits the way
    their owner does.
    """

    identity: Identity
    company_prefix: str | None = None


def parse(value: str, *, own_codes_of: str | None = None, own_code_kind: OwnCodeKind | None = None) -> Parsed:
    """Read an identifier as partners send it: EPC URN, GS1 Digital Link, or an organisation's own code.

    Anything starting with ``urn:`` must be a valid EPC URN and anything starting with ``http://``
    or ``https://`` a valid Digital Link: a typo in either is an error, never silently an own code.
    Everything else is an own code of organisation ``own_codes_of`` (a ``lot`` or ``serial`` as
    ``own_code_kind`` says, because the ledger must not guess which), or an error when no
    organisation is given.
    """
    if (own_codes_of is None) != (own_code_kind is None):
        raise TypeError("own_codes_of and own_code_kind must be given together")
    if value[:4].lower() == "urn:":
        return _parse_epc_urn(value)
    if value[:8].lower().startswith(("http://", "https://")):
        return Parsed(_parse_digital_link(value))
    if own_codes_of is None or own_code_kind is None:
        raise InvalidIdentifier(
            value,
            "expected an EPC URN (urn:epc:…) or a GS1 Digital Link (https://…); own codes need their organisation",
        )
    with _blaming(value):
        return Parsed(OwnCode(kind=own_code_kind, org=own_codes_of, code=value))


def to_epc_urn(identity: Identity, *, prefix_length: PrefixLength | None = None) -> str:
    """Render the EPC URN that EPCIS partners expect, splitting off the GS1 Company Prefix.

    ``prefix_length`` answers for prefixes the ledger knows (organisations' registered prefixes,
    prefixes learnt from URNs); when it returns None, GS1's published table decides; when neither
    knows, InvalidIdentifier is raised rather than guessing a split that would name another item.
    Own codes have no URN.
    """
    with _blaming(identity.canonical):
        match identity:
            case Sgtin(gtin=gtin, serial=serial):
                prefix, reference = _split(gtin, prefix_length, indicator_first=True)
                return f"urn:epc:id:sgtin:{prefix}.{reference}.{_urn_escape(serial)}"
            case Lgtin(gtin=gtin, lot=lot):
                prefix, reference = _split(gtin, prefix_length, indicator_first=True)
                return f"urn:epc:class:lgtin:{prefix}.{reference}.{_urn_escape(lot)}"
            case GtinClass(gtin=gtin):
                prefix, reference = _split(gtin, prefix_length, indicator_first=True)
                return f"urn:epc:idpat:sgtin:{prefix}.{reference}.*"
            case Sscc(sscc=sscc):
                prefix, reference = _split(sscc, prefix_length, indicator_first=True)
                return f"urn:epc:id:sscc:{prefix}.{reference}"
            case Sgln(gln=gln, extension=extension):
                prefix, reference = _split(gln, prefix_length, indicator_first=False)
                return f"urn:epc:id:sgln:{prefix}.{reference}.{_urn_escape(extension)}"
            case Pgln(gln=gln):
                prefix, reference = _split(gln, prefix_length, indicator_first=False)
                return f"urn:epc:id:pgln:{prefix}.{reference}"
            case OwnCode():
                raise _Problem("own codes are not GS1 identifiers and have no EPC URN")
    raise TypeError(f"not an identity: {identity!r}")


def to_digital_link(identity: Identity, *, base: str = "https://id.gs1.org") -> str:
    """Render a GS1 Digital Link, which needs no company prefix and resolves on the web.

    ``base`` is the scheme, host and optional path prefix of the resolver, e.g. a brand's own
    ``https://example.com/dl``. Values are percent-encoded as biip does, so the link parses back to
    the same identity. Own codes have no Digital Link.
    """
    with _blaming(identity.canonical):
        pairs = _digital_link_pairs(identity)
    return base.rstrip("/") + "".join(f"/{ai}/{quote(value, safe='')}" for ai, value in pairs)


class KeyForms:
    """The EPC URN and GS1 Digital Link of many stored identities, as ``to_epc_urn`` and
    ``to_digital_link`` write them, each GTIN's part worked out once.

    A page of units or lots names a few GTINs: rebuilding and checking each identity and splitting
    its GTIN again for every serial was a fifth of a 100-unit page's time. For SGTINs and LGTINs,
    the forms' text up to the serial or lot is kept per GTIN (rendered from the GTIN with serial
    ``0``, which both forms write as it is); each serial or lot is still checked and escaped. Any
    other identity is rendered whole. One per reader of a page (``prefix_length`` answers for it).
    """

    _PART: ClassVar[dict[str, tuple[Callable[[str, str], Identity], str]]] = {
        "sgtin": (lambda gtin, serial: Sgtin(gtin=gtin, serial=serial), "serial"),
        "lgtin": (lambda gtin, lot: Lgtin(gtin=gtin, lot=lot), "lot"),
    }

    def __init__(self, prefix_length: PrefixLength | None) -> None:
        self._prefix_length = prefix_length
        # (kind, GTIN) -> (the URN up to the serial or lot, or None: no URN; the link up to it), or
        # None when the GTIN is not one
        self._heads: dict[tuple[str, str], tuple[str | None, str] | None] = {}

    def __call__(self, canonical: str) -> tuple[str | None, str | None]:
        """(EPC URN, Digital Link) of a stored identity: None for a form it has not (an own code,
        a company prefix nobody knows), both None for a stored key that does not parse."""
        kind, _, rest = canonical.partition(":")
        if kind not in self._PART:
            return self._whole(canonical)
        gtin, _, value = rest.partition(":")
        if (kind, gtin) not in self._heads:
            self._heads[kind, gtin] = self._heads_of(kind, gtin)
        heads = self._heads[kind, gtin]
        try:
            _check_text(self._PART[kind][1], value)
        except _Problem:
            return None, None
        if heads is None:
            return None, None
        urn, link = heads
        plain = value.isascii() and value.isalnum()  # most serials and lots: nothing to escape
        return (
            None if urn is None else urn + (value if plain else _urn_escape(value)),
            link + (value if plain else quote(value, safe="")),
        )

    def _heads_of(self, kind: str, gtin: str) -> tuple[str | None, str] | None:
        try:
            identity = self._PART[kind][0](gtin, "0")
        except InvalidIdentifier:
            return None
        try:
            urn: str | None = to_epc_urn(identity, prefix_length=self._prefix_length)[:-1]
        except InvalidIdentifier:
            urn = None
        return urn, to_digital_link(identity)[:-1]

    def _whole(self, canonical: str) -> tuple[str | None, str | None]:
        try:
            identity = from_canonical(canonical)
        except InvalidIdentifier:
            return None, None
        forms: list[str | None] = []
        for render in (lambda i: to_epc_urn(i, prefix_length=self._prefix_length), to_digital_link):
            try:
                forms.append(render(identity))
            except InvalidIdentifier:
                forms.append(None)
        return forms[0], forms[1]


def from_canonical(key: str) -> Identity:
    """Rebuild an identity from ``canonical``, validating it again: stored keys are inputs too."""
    kind, _, rest = key.partition(":")
    with _blaming(key):
        match kind:
            case "sgtin":
                gtin, _, serial = rest.partition(":")
                return Sgtin(gtin=gtin, serial=serial)
            case "lgtin":
                gtin, _, lot = rest.partition(":")
                return Lgtin(gtin=gtin, lot=lot)
            case "gtin":
                return GtinClass(gtin=rest)
            case "sscc":
                return Sscc(sscc=rest)
            case "sgln":
                gln, _, extension = rest.partition(":")
                return Sgln(gln=gln, extension=extension)
            case "pgln":
                return Pgln(gln=rest)
            case "own-lot" | "own-serial":
                org, _, code = rest.partition(":")
                return OwnCode(kind="lot" if kind == "own-lot" else "serial", org=org, code=code)
        raise _Problem(f"unknown kind {kind!r}", form="canonical identity key")


# --- EPC URNs (GS1 EPC Tag Data Standard, pure identities and the SGTIN class pattern) ---------

# TDS escapes exactly these characters of set 82; all others are written as themselves.
_URN_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_URN_CHAR = re.compile(r"%([0-9A-Fa-f]{2})|([A-Za-z0-9!'()*+,\-.:;=_])|(.)", re.DOTALL)
_URN_PLAIN = re.compile(r"[A-Za-z0-9!'()*+,\-.:;=_]*")  # what needs no unescaping: most serials and lots
_URN_HEAD = re.compile(r"urn:epc:(id|class|idpat):([a-z0-9]+):")


@dataclass(frozen=True)
class _UrnForm:
    name: str
    identity: Callable[..., Identity]
    digits: int  # company prefix + reference
    reference: str  # what the TDS calls the digits after the company prefix
    tail: str | None = None  # what follows them, if anything

    @cached_property
    def body(self) -> re.Pattern[str]:
        tail = {None: "", "'*'": r"\.\*"}.get(self.tail, r"\.(.+)")
        return re.compile(r"([0-9]+)\.([0-9]*)" + tail, re.DOTALL)

    @property
    def expected(self) -> str:
        if self.tail is None:
            return f"company prefix and {self.reference} separated by a dot"
        return f"company prefix, {self.reference} and {self.tail} separated by dots"

    @property
    def indicator_first(self) -> bool:
        """GTIN and SSCC keys start with the first digit of the URN's reference; GLNs have no such digit."""
        return self.identity not in (Sgln, Pgln)


_URN_FORMS = {
    "urn:epc:id:sgtin:": _UrnForm("SGTIN EPC URN", Sgtin, 13, "item reference", "serial"),
    "urn:epc:class:lgtin:": _UrnForm("LGTIN EPC URN", Lgtin, 13, "item reference", "lot"),
    "urn:epc:idpat:sgtin:": _UrnForm("SGTIN EPC pattern", GtinClass, 13, "item reference", "'*'"),
    "urn:epc:id:sscc:": _UrnForm("SSCC EPC URN", Sscc, 17, "serial reference"),
    "urn:epc:id:sgln:": _UrnForm("SGLN EPC URN", Sgln, 12, "location reference", "extension"),
    "urn:epc:id:pgln:": _UrnForm("PGLN EPC URN", Pgln, 12, "party reference"),
}


def _parse_epc_urn(value: str) -> Parsed:
    head = _URN_HEAD.match(value)
    if head is None:
        raise InvalidIdentifier(
            value, "expected urn:epc:id:, urn:epc:class: or urn:epc:idpat: then a scheme and a colon", form="EPC URN"
        )
    form = _URN_FORMS.get(head[0])
    if form is None:
        what = {"id": " identifiers", "class": " classes", "idpat": " patterns"}[head[1]]
        raise InvalidIdentifier(value, f"{head[2].upper()}{what} are not supported: {_SUPPORTED}")
    fields = form.body.fullmatch(value, head.end())
    if fields is None:
        raise InvalidIdentifier(value, f"expected {form.expected}", form=form.name)
    prefix, reference, *tail = fields.groups()
    try:
        key = _urn_key(head[0], prefix, reference)
        identity = form.identity(key, _urn_unescape(tail[0], form)) if tail else form.identity(key)
        return Parsed(identity, prefix)
    except (_Problem, InvalidIdentifier) as exc:
        raise _blamed(value, exc) from None


@lru_cache(maxsize=4096)
def _urn_key(head: str, prefix: str, reference: str) -> str:
    """The GS1 key, with its check digit, that a URN's company prefix and reference spell.

    Cached, since a document names many serials or lots of a few GTINs.
    """
    form = _URN_FORMS[head]
    if not 6 <= len(prefix) <= 12:
        raise _Problem(f"company prefix must be 6 to 12 digits, got {len(prefix)}", form=form.name)
    digits = len(prefix) + len(reference)
    if digits != form.digits:
        raise _Problem(
            f"company prefix and {form.reference} must be {form.digits} digits together, got {digits}",
            form=form.name,
        )
    body = reference[:1] + prefix + reference[1:] if form.indicator_first else prefix + reference
    return body + str(gs1_standard_check_digit(body))


def _urn_unescape(component: str, form: _UrnForm) -> str:
    if component.isascii() and component.isalnum() or _URN_PLAIN.fullmatch(component):
        return component  # nothing escaped, as most serials and lots; letters and digits skip the regex
    what = form.tail or ""
    chars = []
    for match in _URN_CHAR.finditer(component):
        escaped, plain, other = match.groups()
        if plain:
            chars.append(plain)
        elif escaped and chr(int(escaped, 16)) in _URN_ESCAPES:
            chars.append(chr(int(escaped, 16)))
        elif escaped:
            allowed = " ".join(_URN_ESCAPES.values())
            raise _Problem(f"{what} has escape {match[0]!r}; only {allowed} are allowed", form=form.name)
        elif other in _URN_ESCAPES:
            raise _Problem(f"{what} character {other!r} must be escaped as {_URN_ESCAPES[other]}", form=form.name)
        else:
            raise _Problem(f"{what} character {other!r} is not allowed in an EPC URN", form=form.name)
    return "".join(chars)


def _urn_escape(text: str) -> str:
    return "".join(_URN_ESCAPES.get(char, char) for char in text)


def _split(key: str, prefix_length: PrefixLength | None, *, indicator_first: bool) -> tuple[str, str]:
    """Split a GS1 key into the URN's company prefix and reference (TDS: indicator digit moves back)."""
    digits = _lookup_digits(key, indicator_first=indicator_first)
    length = prefix_length(digits) if prefix_length else None
    if length is None and (known := GS1CompanyPrefix.extract(digits)) is not None:
        length = len(known.value)
    if length is None:
        raise _Problem(
            f"cannot write an EPC URN: the company prefix length of {digits} is unknown "
            "to the ledger and to GS1's published prefix table"
        )
    if not 6 <= length <= 12:
        raise ValueError(f"company prefix length for {digits} must be 6 to 12, got {length!r}")
    body = key[:-1]
    if indicator_first:
        return body[1 : 1 + length], body[0] + body[1 + length :]
    return body[:length], body[length:]


# --- GS1 Digital Link ----------------------------------------------------------------------------

# Key qualifiers GS1 allows after each primary key the ledger models, and those it accepts.
_DL_QUALIFIERS = {"01": {"22", "10", "21", "235"}, "00": set(), "414": {"254", "7040"}, "417": {"7040"}}
_DL_ACCEPTED = {"01": {"10", "21"}, "00": set(), "414": {"254"}, "417": set()}


# The usual link, read with one regex: any host and path prefix (segments starting with a letter,
# which no primary key does), a GTIN and at most a lot or a serial, in characters that neither URIs
# nor percent-encoding treat specially; no query or fragment. biip reads every other link, at some
# 100 µs each (mostly GTIN objects the ledger does not use); tests/test_identifiers.py holds the two
# readings to the same results.
_PLAIN_GTIN_LINK = re.compile(
    r"https?://[A-Za-z0-9.-]+(?:/[A-Za-z][A-Za-z0-9._~-]*)*/01/([0-9]{14})(?:/(10|21)/([A-Za-z0-9!'()*+,\-.:;=_]{1,20}))?"
)


def _parse_digital_link(value: str) -> Identity:
    plain = _PLAIN_GTIN_LINK.fullmatch(value)
    if plain is None:
        return _parse_any_digital_link(value)
    gtin, ai, text = plain.groups()
    try:
        if ai is None:
            return GtinClass(gtin=gtin)
        return Sgtin(gtin=gtin, serial=text) if ai == "21" else Lgtin(gtin=gtin, lot=text)
    except InvalidIdentifier as exc:
        raise _blamed(value, exc) from None


def _parse_any_digital_link(value: str) -> Identity:
    try:
        link = GS1DigitalLinkURI.parse(value)  # validates query attributes too, e.g. ?17=
        without_query = urlsplit(value)._replace(query="", fragment="").geturl()
        path = link if without_query == value else GS1DigitalLinkURI.parse(without_query)
    except (ParseError, ValueError) as exc:
        reason = str(exc).rstrip(".")
        raise InvalidIdentifier(value, reason[:1].lower() + reason[1:], form="GS1 Digital Link") from None
    primary, *qualifiers = path.element_strings
    ai = primary.ai.ai
    if ai not in _DL_ACCEPTED:
        raise InvalidIdentifier(value, f"{primary.ai.data_title} (AI {ai}) is not supported: {_SUPPORTED}")
    for qualifier in qualifiers:
        if qualifier.ai.ai not in _DL_ACCEPTED[ai]:
            title = f"{qualifier.ai.data_title} (AI {qualifier.ai.ai})"
            raise InvalidIdentifier(value, f"qualifier {title} is not supported: {_SUPPORTED}")
    values = {qualifier.ai.ai: qualifier.value for qualifier in qualifiers}
    in_query = {element.ai.ai for element in link.element_strings[len(path.element_strings) :]}
    if misplaced := sorted(in_query & _DL_QUALIFIERS[ai]):
        raise InvalidIdentifier(
            value,
            f"AI {misplaced[0]} is a key qualifier and belongs in the path, not the query",
            form="GS1 Digital Link",
        )
    with _blaming(value):
        match ai:
            case "01" if "21" in values:  # a lot beside the serial is product data, not identity
                return Sgtin(gtin=primary.value, serial=values["21"])
            case "01" if "10" in values:
                return Lgtin(gtin=primary.value, lot=values["10"])
            case "01":
                return GtinClass(gtin=primary.value)
            case "00":
                return Sscc(sscc=primary.value)
            case "414":
                return Sgln(gln=primary.value, extension=values.get("254", "0"))
            case _:
                return Pgln(gln=primary.value)


def _digital_link_pairs(identity: Identity) -> list[tuple[str, str]]:
    match identity:
        case Sgtin(gtin=gtin, serial=serial):
            return [("01", gtin), ("21", serial)]
        case Lgtin(gtin=gtin, lot=lot):
            return [("01", gtin), ("10", lot)]
        case GtinClass(gtin=gtin):
            return [("01", gtin)]
        case Sscc(sscc=sscc):
            return [("00", sscc)]
        case Sgln(gln=gln, extension="0"):
            return [("414", gln)]
        case Sgln(gln=gln, extension=extension):
            return [("414", gln), ("254", extension)]
        case Pgln(gln=gln):
            return [("417", gln)]
        case OwnCode():
            raise _Problem("own codes are not GS1 identifiers and have no Digital Link")
    raise TypeError(f"not an identity: {identity!r}")


def prefix_digits(canonical: str) -> str | None:
    """The digits an EPC URN of this stored identity looks up its company prefix in (what ``_split``
    hands a ``PrefixLength``), or None for an own code: lets a reader resolve a page's prefixes in
    one query before rendering it. Of an SGTIN or LGTIN only the GTIN is checked (whose check is
    cached: a page names a few), not the whole identity again: its serial or lot is the renderer's."""
    kind, _, rest = canonical.partition(":")
    if kind in ("sgtin", "lgtin"):
        gtin = rest.partition(":")[0]
        with _blaming(canonical):
            _check_key("GTIN", gtin, 14)
        return _lookup_digits(gtin, indicator_first=True)
    match from_canonical(canonical):
        case Sgtin(gtin=key) | Lgtin(gtin=key) | GtinClass(gtin=key) | Sscc(sscc=key):
            return _lookup_digits(key, indicator_first=True)
        case Sgln(gln=key) | Pgln(gln=key):
            return _lookup_digits(key, indicator_first=False)
    return None


def _lookup_digits(key: str, *, indicator_first: bool) -> str:
    return (key[1:] if indicator_first else key)[:13]
