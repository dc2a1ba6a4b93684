"""Reads over the ledger that the interfaces share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from django.db.models import Q, QuerySet

from cells.models import Lot
from packs.models import Unit
from suppliers.models import Organisation
from traceability.core.db import CompiledOnce, M
from traceability.core.errors import DomainError
from traceability.gs1 import barcodes, identifiers
from traceability.ledger.models import LearntCompanyPrefix

IdentifierForm = Literal["canonical", "epc", "digital_link"]


def company_prefix_lengths() -> identifiers.PrefixLength:
    """The prefix-length resolver for ``identifiers.to_epc_urn``: registered, then learnt prefixes.

    Both sets are small (one row per GS1 member the ledger has dealt with), so they are read once
    and the lookups run in memory: rendering a million URNs costs one query.
    """
    return _resolver(
        Organisation.objects.exclude(gs1_company_prefix=None).values_list("gs1_company_prefix"),
        LearntCompanyPrefix.objects.values_list("prefix"),
    )


_PREFIX_SIZES = range(12, 3, -1)  # GS1 prefixes never nest, but prefer the longest if data does


def prefix_candidates_sql(identity: str) -> str:
    """The company prefixes that could split a stored unit identity (the SQL expression
    ``identity``, an SGTIN's canonical form; other kinds give none), as a set-returning query:
    ``PrefixLength.prepare``'s candidates, for a caller reading them in its own statement."""
    digits = f"substr(split_part({identity}, ':', 2), 2, 13)"  # ``identifiers.prefix_digits``
    return (
        f"SELECT left({digits}, size) FROM generate_series({_PREFIX_SIZES.stop + 1}, {_PREFIX_SIZES.start}) size"
        f" WHERE starts_with({identity}, 'sgtin:')"
    )


def known_prefixes_sql(candidates: str) -> str:
    """The registered and learnt company prefixes among ``candidates`` (an array expression)."""
    return (
        f"SELECT gs1_company_prefix FROM {Organisation._meta.db_table} WHERE gs1_company_prefix = ANY({candidates})"
        f" UNION ALL SELECT prefix FROM {LearntCompanyPrefix._meta.db_table} WHERE prefix = ANY({candidates})"
    )


def _resolver(registered: QuerySet, learnt: QuerySet) -> identifiers.PrefixLength:
    """Prefix lengths from registered, then learnt prefixes (one query for both)."""
    known = {prefix for (prefix,) in registered.order_by().union(learnt.order_by(), all=True)}

    def length(digits: str) -> int | None:
        return next((size for size in _PREFIX_SIZES if digits[:size] in known), None)

    return length


def identifier_render(
    canonical: str, *, form: IdentifierForm, prefix_length: identifiers.PrefixLength | None = None
) -> str:
    """One stored identity in the form a caller asked for; own codes stay as they are."""
    identity = identifiers.from_canonical(canonical)
    if form == "canonical":
        return identity.canonical
    if isinstance(identity, identifiers.OwnCode):
        return identity.code
    if form == "digital_link":
        return identifiers.to_digital_link(identity)
    return identifiers.to_epc_urn(identity, prefix_length=prefix_length or company_prefix_lengths())


def identifier_or_none(canonical: str, *, form: IdentifierForm, prefix_length: identifiers.PrefixLength) -> str | None:
    """A GS1 identity in the asked form; None for own codes (they have no URN or link) or when the
    company prefix length is unknown (a guessed split would name another item)."""
    if canonical.startswith("own-"):
        return None
    try:
        return identifier_render(canonical, form=form, prefix_length=prefix_length)
    except identifiers.InvalidIdentifier:
        return None


def identifier_links(canonical: str, *, prefix_length: identifiers.PrefixLength) -> dict[str, str | None]:
    """``epc`` and ``digital_link`` of one GS1 identity, as ``identifier_or_none`` gives each, each
    GTIN's part worked out once per reader (``identifiers.KeyForms``: a page renders hundreds)."""
    forms = prefix_length.forms if isinstance(prefix_length, PrefixLength) else identifiers.KeyForms(prefix_length)
    epc, digital_link = forms(canonical)
    return {"epc": epc, "digital_link": digital_link}


class SubjectError(DomainError, LookupError):
    """An identifier that does not name one lot or unit."""

    code = "unknown_subject"


class UnknownSubject(SubjectError):
    """Nothing in the ledger (that the caller may name) is known by the identifier."""


class MalformedSubject(SubjectError):
    """An EPC URN or Digital Link that does not parse; the message is the identifier module's."""

    code = "invalid_identifier"


class UnsupportedSubject(SubjectError):
    """A well-formed identifier of something that is not traced (an SSCC, a GLN…)."""

    code = "unsupported_identifier"


class AmbiguousSubject(SubjectError):
    """A bare code several organisations use."""

    code = "ambiguous_subject"


def subject_find(value: str, *, owner: Organisation | str | None = None, units_only: bool = False) -> Lot | Unit:
    """The lot or unit an identifier names: an EPC URN, a GS1 Digital Link, or a lot code or serial.

    A URN or link names one thing in the whole ledger. A bare code is looked up as printed (GS1
    lot numbers and serials, and organisations' own codes), among ``owner``'s (an organisation or
    its slug) when given. Raises a ``SubjectError`` saying why not: ``MalformedSubject`` for a URN
    or link that does not parse, ``UnknownSubject``, ``UnsupportedSubject`` or ``AmbiguousSubject``.
    """
    value = value.strip()
    wanted = "a unit (SGTIN)" if units_only else "a lot (LGTIN) or a unit (SGTIN)"
    if _named_in_full(value):
        try:
            identity = _identity_named(value)
        except identifiers.InvalidIdentifier as exc:
            raise MalformedSubject(str(exc)) from exc
        if isinstance(identity, identifiers.Sgtin):
            found: Lot | Unit | None = _by_identity(Unit, _UNIT_BY_IDENTITY, identity.canonical)
        elif isinstance(identity, identifiers.Lgtin) and not units_only:
            found = _by_identity(Lot, _LOT_BY_IDENTITY, identity.canonical)
        else:
            raise UnsupportedSubject(f"{value!r} names a {identity.kind.upper()}: trace {wanted}")
        if found is None:
            raise subject_unknown(value, owner=owner, units_only=units_only)
        return found
    scope = {"owner__slug": owner} if isinstance(owner, str) else {"owner": owner} if owner is not None else {}
    candidates: list[Lot | Unit] = list(Unit.objects.filter(serial=value, **scope).select_related("owner")[:5])
    if not units_only:
        candidates += Lot.objects.filter(code=value, **scope).select_related("owner")[:5]
    if not candidates:
        raise subject_unknown(value, owner=owner, units_only=units_only)
    if len(candidates) > 1:
        named = ", ".join(f"{c.identity} ({c.owner.slug})" for c in candidates)
        raise AmbiguousSubject(f"{value!r} names several things: {named}; name the organisation or use an EPC URN")
    return candidates[0]


def _named_in_full(value: str) -> bool:
    """Whether ``value`` names one thing in the whole ledger: an EPC URN, a Digital Link, or a GS1
    element string a scanner typed or a person copied from a label (``gs1.barcodes``)."""
    return value[:4].lower() == "urn:" or value.lower().startswith(("http://", "https://")) or barcodes.scanned(value)


def _identity_named(value: str) -> identifiers.Identity:
    if barcodes.scanned(value):
        return barcodes.scanned_identity(value)
    return identifiers.parse(value).identity


# A unit or lot by its identity (unique): asked by every request that names one, and compiled once.
_UNIT_BY_IDENTITY = CompiledOnce(
    lambda identity: Unit.objects.filter(identity=identity).order_by().values_list(*CompiledOnce.columns(Unit))
)
_LOT_BY_IDENTITY = CompiledOnce(
    lambda identity: Lot.objects.filter(identity=identity).order_by().values_list(*CompiledOnce.columns(Lot))
)


def _by_identity(model: type[M], query: CompiledOnce, identity: str) -> M | None:
    rows = query.rows(identity)
    return CompiledOnce.instance(model, rows[0]) if rows else None


def subject_unknown(value: str, *, owner: Organisation | str | None = None, units_only: bool = False) -> UnknownSubject:
    """The refusal ``subject_find`` gives for an identifier that names nothing: an interface refusing
    a subject the caller may not see gives this one too, so the two answers cannot be told apart."""
    value = value.strip()
    thing = "unit" if units_only else "lot or unit"
    if _named_in_full(value):
        try:
            canonical = _identity_named(value).canonical
        except identifiers.InvalidIdentifier as exc:
            raise MalformedSubject(str(exc)) from exc
        return UnknownSubject(f"no {thing} is known as {value!r} ({canonical})")
    of = f" of organisation {owner!r}" if isinstance(owner, str) else ""  # an API caller's own go unsaid
    return UnknownSubject(f"no {thing}{of} is known as {value!r}")


class PrefixLength:
    """The company-prefix resolver of one request: each key's answer is kept, since a page repeats a
    few GTINs.

    A reader that knows what it will render calls ``prepare`` with those identities first: the
    prefixes that could be theirs are read in one small query (by the prefix indexes). Otherwise the
    whole table is read on first use; one row per GS1 member the ledger has dealt with, it grows
    with the ledger, and a page of a few lots need not read all of it.
    """

    def __init__(self) -> None:
        self._resolve: identifiers.PrefixLength | None = None
        self._known: dict[str, int | None] = {}
        self.forms = identifiers.KeyForms(self)  # ``identifier_links``' renderer, with this resolver

    def prepare(self, canonicals: Iterable[str], *, prefixes: Iterable[str] | None = None) -> None:
        """Resolve the keys of these stored identities (one query for all of them; none when the
        caller read ``prefixes`` already: the registered and learnt prefixes among their
        ``prefix_candidates``)."""
        digits = {d for c in canonicals if (d := identifiers.prefix_digits(c)) and d not in self._known}
        if not digits:
            return
        if prefixes is not None:
            read = set(prefixes)
            self._known.update((d, next((n for n in _PREFIX_SIZES if d[:n] in read), None)) for d in digits)
            return
        candidates = {d[:size] for d in digits for size in _PREFIX_SIZES}
        resolve = _resolver(
            Organisation.objects.filter(gs1_company_prefix__any=candidates).values_list("gs1_company_prefix"),
            LearntCompanyPrefix.objects.filter(prefix__any=candidates).values_list("prefix"),
        )
        self._known.update((d, resolve(d)) for d in digits)

    def __call__(self, digits: str) -> int | None:
        if digits not in self._known:
            if self._resolve is None:
                self._resolve = company_prefix_lengths()
            self._known[digits] = self._resolve(digits)
        return self._known[digits]


# --- codes offered as a subject is typed ---------------------------------------------------------------


@dataclass(frozen=True)
class SubjectCode:
    """A lot or unit offered for a typed prefix: its code as printed, what it is, and how a form
    names it unambiguously (its Digital Link for a GS1 identity, else its own code)."""

    code: str
    kind: Literal["lot", "unit"]
    identity: str
    named: str


def subject_codes_starting(*, prefix: str, lots: Q, units: Q, limit: int) -> list[SubjectCode]:
    """The lots (``lots``: a condition on ``Lot``, the access policy's) and units (``units``) whose
    code or serial starts with ``prefix``, in code order, ``limit`` at most: two queries, each
    stopping at ``limit`` rows (by the code indexes), whatever the number of codes."""
    if not prefix:
        return []
    found = [
        SubjectCode(code=code, kind="lot", identity=identity, named=_named(identity, code))
        for code, identity in Lot.objects.filter(lots, code__startswith=prefix)
        .order_by("code", "pk")
        .values_list("code", "identity")[:limit]
    ]
    found += [
        SubjectCode(code=serial, kind="unit", identity=identity, named=_named(identity, serial))
        for serial, identity in Unit.objects.filter(units, serial__startswith=prefix)
        .order_by("serial", "pk")
        .values_list("serial", "identity")[:limit]
    ]
    return sorted(found, key=lambda found: (found.code, found.kind))[:limit]


def subjects_coded(*, code: str, lots: Q, units: Q, limit: int) -> list[Lot | Unit]:
    """The units (``units``: a condition on ``Unit``, the access policy's) whose serial is ``code``
    and the lots (``lots``) whose lot code is, with their owners, units first, ``limit`` of each at
    most: two queries, whatever the number found."""
    found: list[Lot | Unit] = list(
        Unit.objects.filter(units, serial=code).select_related("owner").order_by("owner__name", "gtin", "pk")[:limit]
    )
    found += Lot.objects.filter(lots, code=code).select_related("owner").order_by("owner__name", "gtin", "pk")[:limit]
    return found


def _named(identity: str, code: str) -> str:
    """How a form names a stored identity: a code two of an organisation's GTINs share names
    several things, its Digital Link one; an own code is its code (it has no link)."""
    if identity.startswith("own-"):
        return code
    try:
        return identifiers.to_digital_link(identifiers.from_canonical(identity))
    except identifiers.InvalidIdentifier:
        return code
