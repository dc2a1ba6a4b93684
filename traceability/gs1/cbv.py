"""EPCIS values in the ledger's canonical form: CBV words bare, GS1 identifiers by their digits."""

from __future__ import annotations

from traceability.gs1 import identifiers

_CBV_PREFIXES = (
    "urn:epcglobal:cbv:bizstep:",
    "urn:epcglobal:cbv:disp:",
    "https://ref.gs1.org/cbv/BizStep-",
    "https://ref.gs1.org/cbv/Disp-",
)


def cbv_bare(value: str) -> str:
    """A CBV bizStep or disposition in its bare form (``shipping``), whichever form it came in;
    other vocabularies' URIs stay as they are."""
    for prefix in _CBV_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


_parsed_cache: dict[str, identifiers.Parsed | None] = {}


_PARSED_KEPT = 200_000  # identifiers; a capture of 10,000 units names about 30,000


def parsed_epc(value: str) -> identifiers.Parsed | None:
    """``value`` read as a GS1 identity the ledger models, or None for other identifiers (GRAI, GIAI,
    private URIs, …). Remembered: capture reads each identifier several times (to find or create
    its object, to index its event, to link it), and a lot class or container recurs across events."""
    try:
        return _parsed_cache[value]
    except KeyError:
        pass
    try:
        parsed = identifiers.parse(value)
    except identifiers.InvalidIdentifier:
        parsed = None
    if len(_parsed_cache) >= _PARSED_KEPT:
        _parsed_cache.clear()
    _parsed_cache[value] = parsed
    return parsed


def canonical_epc(value: str) -> str:
    """The ledger's canonical key for a GS1 identity it models (``sgtin:<gtin14>:<serial>``, …),
    so URN and Digital Link spellings meet; other identifiers (GRAI, GIAI, …) as sent."""
    parsed = parsed_epc(value)
    return value if parsed is None else parsed.identity.canonical
