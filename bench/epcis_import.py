"""python -m bench.epcis_import [--units N]: EPCIS import as a brand's MES sends it, next to COPY.

The MES sends one TransformationEvent per unit built (1–3 cell-lot classes in, the unit's SGTIN
out: 65% / 20% / 15%), an AggregationEvent per carton of 50 units and per pallet of 40 cartons, in
documents of ``--per-document`` units (a work order's worth). Each document goes the whole capture
path (``capture_submit`` + the capture job, as ``import_epcis`` runs it): validation, identifiers,
event store and index, genealogy, packing. The floor is PostgreSQL's own ``COPY`` of the same
link rows (unit id, lot id) into a bare table, measured in the same run; the ratio is the figure.

The import runs in its own database (``ledger_bench_import``, dropped and recreated each run), so
it never disturbs the trace bench's world.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from collections import defaultdict

from bench import db

IMPORT_DB = "ledger_bench_import"
PREFIX = "4012345"
CELL_ITEM, UNIT_ITEM = "022222", "011111"
UNITS_PER_CARTON, CARTONS_PER_PALLET, UNITS_PER_LOT = 50, 40, 500


def _url() -> str:
    base = db.bench_url()
    return base.rsplit("/", 1)[0] + "/" + IMPORT_DB


def _documents(units: int, per_document: int, seed: int) -> list[tuple[bytes, int, int]]:
    """(document bytes, events, links) for every document of the run, prepared before timing."""
    rng = random.Random(seed)
    lots = max(3, units // UNITS_PER_LOT)
    documents = []
    carton = pallet = 0
    for start in range(0, units, per_document):
        events, links = [], 0
        count = min(per_document, units - start)
        cartons = []
        for offset in range(count):
            unit = start + offset
            window = min(lots - 3, unit * lots // units)
            inputs = rng.choices((1, 2, 3), weights=(65, 20, 15))[0]
            links += inputs
            events.append(
                {
                    "type": "TransformationEvent",
                    "eventID": f"urn:uuid:00000000-0000-4000-8000-{unit:012d}",
                    "eventTime": "2024-03-01T08:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "bizStep": "commissioning",
                    "inputQuantityList": [
                        {"epcClass": f"urn:epc:class:lgtin:{PREFIX}.{CELL_ITEM}.C{window + i:06d}", "quantity": 1}
                        for i in range(inputs)
                    ],
                    "outputEPCList": [f"urn:epc:id:sgtin:{PREFIX}.{UNIT_ITEM}.S{unit:09d}"],
                }
            )
            if offset % UNITS_PER_CARTON == UNITS_PER_CARTON - 1 or offset == count - 1:
                carton += 1
                first = offset - offset % UNITS_PER_CARTON
                events.append(
                    _aggregation(
                        f"9000-{carton:012d}",
                        _sscc(carton),
                        [f"urn:epc:id:sgtin:{PREFIX}.{UNIT_ITEM}.S{start + u:09d}" for u in range(first, offset + 1)],
                    )
                )
                cartons.append(_sscc(carton))
        for at in range(0, len(cartons), CARTONS_PER_PALLET):
            pallet += 1
            events.append(
                _aggregation(f"a000-{pallet:012d}", _sscc(10_000_000 + pallet), cartons[at : at + CARTONS_PER_PALLET])
            )
        body = {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2024-03-01T09:00:00Z",
            "epcisBody": {"eventList": events},
        }
        documents.append((json.dumps(body).encode(), len(events), links))
    return documents


def _sscc(serial: int) -> str:
    return f"urn:epc:id:sscc:{PREFIX}.0{serial:09d}"


def _aggregation(key: str, parent: str, children: list[str]) -> dict:
    return {
        "type": "AggregationEvent",
        "eventID": f"urn:uuid:00000000-0000-4000-{key}",
        "eventTime": "2024-03-01T08:30:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "bizStep": "packing",
        "parentID": parent,
        "childEPCs": children,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.epcis_import", description=__doc__)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--per-document", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()

    os.environ["BENCH_DATABASE_URL"] = _url()
    from bench.world import _recreate_database

    _recreate_database(_url())
    db.django_setup()
    from suppliers.models import Organisation, OrganisationRole, Role
    from traceability.core.jobs import job_step
    from traceability.events.models import EpcisCapture
    from traceability.events.services import capture_submit

    brand = Organisation.objects.create(name="Bench brand", slug="bench-brand", gs1_company_prefix=PREFIX)
    OrganisationRole.objects.create(organisation=brand, role=Role.BRAND)
    started = time.perf_counter()
    documents = _documents(args.units, args.per_document, args.seed)
    print(
        f"EPCIS import: {args.units:,} units in {len(documents)} documents of {args.per_document:,} units "
        f"({sum(len(d) for d, _, _ in documents) / 2**20:,.0f} MB JSON,"
        f" prepared in {time.perf_counter() - started:.0f} s)"
    )
    phases = _Phases()
    events = links = 0
    total = 0.0
    for number, (data, count, linked) in enumerate(documents, 1):
        phases.start("reading")
        begun = time.perf_counter()
        capture = capture_submit(owner=brand, document=io.BytesIO(data), submit=lambda job: None)
        job_step(job_id=capture.job_id, expected_done=0, enqueue=lambda *_: None, progress=phases.progress)
        elapsed = time.perf_counter() - begun
        phases.start("")
        total += elapsed
        capture = EpcisCapture.objects.get(pk=capture.pk)
        if capture.problems or capture.captured != count:
            raise SystemExit(f"document {number} was not applied whole: {capture.problems[:3]}")
        events, links = events + count, links + linked
        if number % max(1, len(documents) // 10) == 0 or number == len(documents):
            print(f"  {number:>4}/{len(documents)} documents, {events:,} events, {total:,.1f} s", flush=True)

    copy_s = _copy_floor()
    stored = _stored_copy_floor()
    stored_s, stored_rows = sum(s for s, _ in stored.values()), sum(n for _, n in stored.values())
    read_s, checked_s = _reading_floors(documents)
    print(
        f"\n  capture path: {events:,} events, {links:,} unit-lot links in {total:,.1f} s:"
        f" {events / total:,.0f} events/s, {links / total:,.0f} links/s"
    )
    print(
        f"  PostgreSQL COPY of the same {links:,} link rows into a bare table: {copy_s:,.2f} s"
        f" ({links / copy_s:,.0f} rows/s)"
    )
    print(f"  ratio: {total / copy_s:,.0f}x the COPY (goal: at most 3x)")
    print(
        f"  COPY of every row the import stored ({stored_rows:,} rows of {len(_STORED)} tables, same indexes):"
        f" {stored_s:,.1f} s ({stored_s / copy_s:,.0f}x the COPY of the links); the import took"
        f" {total / stored_s:,.1f}x that\n    "
        + ", ".join(f"{table} {n:,} rows {s:,.2f} s" for table, (s, n) in stored.items())
    )
    print(
        f"  before any write, reading the documents (orjson) takes {read_s:,.1f} s ({read_s / copy_s:,.0f}x the COPY),"
        f" reading and validating them {checked_s:,.1f} s ({checked_s / copy_s:,.0f}x)"
    )
    print(
        "  where the time went: " + ", ".join(f"{p} {s:,.1f} s" for p, s in sorted(phases.items(), key=lambda x: -x[1]))
    )


class _Phases:
    """Seconds spent in each phase the capture reports, summed over the documents."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.phase, self.since = "", time.perf_counter()

    def start(self, phase: str) -> None:
        now = time.perf_counter()
        if self.phase:
            self.seconds[self.phase] += now - self.since
        self.phase, self.since = phase, now

    def progress(self, phase: str, done: int, total: int) -> None:
        self.start(phase)

    def items(self):  # noqa: ANN201
        return self.seconds.items()


def _reading_floors(documents: list[tuple[bytes, int, int]]) -> tuple[float, float]:
    """What a conforming import does before it may write anything: read every document, then also
    validate it (GS1's JSON schema and the checks beyond it, as capture does). Seconds for each."""
    import orjson

    from traceability.events.validation import document_problems

    started = time.perf_counter()
    for data, _, _ in documents:
        orjson.loads(data)
    read = time.perf_counter() - started
    started = time.perf_counter()
    for data, _, _ in documents:
        if document_problems(orjson.loads(data)):
            raise SystemExit("a bench document does not validate")
    return read, time.perf_counter() - started


# The tables an import of builds and packing writes to, with (nearly) a row per event or identifier.
_STORED = (
    "traceability_epcisevent",
    "traceability_epciseventepc",
    "packs_unit",
    "traceability_transformation",
    "traceability_segmentmember",
    "packs_unitpacking",
    "packs_containerpacking",
    "packs_container",
)


def _stored_copy_floor() -> dict[str, tuple[float, int]]:
    """PostgreSQL's COPY of every row the import stored, into empty tables with the same indexes:
    what the database alone needs to hold the import, whoever prepares the rows. Per table:
    (seconds, rows)."""
    floors = {}
    with db.connect(_url()) as conn:
        for table in _STORED:
            data = bytearray()
            with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
                for block in copy:
                    data += block
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            floor = f"bench_floor_{table}"
            conn.execute(f"CREATE TABLE {floor} (LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES)")
            conn.commit()
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY {floor} FROM STDIN") as copy:
                copy.write(bytes(data))
            conn.commit()
            floors[table] = (time.perf_counter() - started, rows)
            conn.execute(f"DROP TABLE {floor}")
            conn.commit()
    return floors


def _copy_floor() -> float:
    """COPY the ledger's (unit, lot) link rows into a bare table: the data read first, untimed."""
    with db.connect(_url()) as conn:
        rows = conn.execute(
            "SELECT m.unit_id, i.lot_id FROM traceability_segmentmember m"
            " JOIN traceability_segmentinput i ON i.segment_id = m.segment_id"
        ).fetchall()
        text = "".join(f"{unit}\t{lot}\n" for unit, lot in rows).encode()
        conn.execute("CREATE TABLE bench_import_links (unit_id bigint, lot_id bigint)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy("COPY bench_import_links (unit_id, lot_id) FROM STDIN") as copy:
            copy.write(text)
        conn.commit()
        return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
