"""The bench world: a synthetic ledger of millions of power banks, written with COPY.

Shape (after ../shared/PERFORMANCE.md's 10M-unit world; every count scales with ``units``
except the 200 material lots):

* 200 material lots in four families (cathode, anode, separator, electrolyte), three levels deep:
  precursor → intermediate → final lot (two supply lines per family). Each intermediate or final lot
  has one record (transformation) naming its 1–3 inputs: lot → lot links, definite.
* ``units / 500`` cell lots (20,000 at 10M), each made from 3–6 final material lots by one record
  (definite). Material lots are consumed over time windows of log-normal length, so lots reach
  anything from ~10k units (a short-lived final lot) to ~40% of the world (a precursor).
* ``units / 5,000`` work orders (2,000 at 10M) of 3,000–7,000 units. A work order draws on a
  window of 16 consecutive cell lots, consumed in order along the line. A unit is built from 1 cell
  lot (65%), 2 (20%) or 3 (15%): 1.5 lots per unit on average. Units with one lot are recorded
  per work order and lot (one "work_order" record: that lot → those units, definite); units with
  2–3 lots have their own build record ("build_record", definite). 3% of work orders are recorded
  only at work-order level: 2–3 lots → all its units, potential.
* Segments: one per distinct (exposure, input lot set), with their inputs, unit counts, newest
  member record (``last_transformation_id``) and members (one member row per unit); each record that
  writes members names its segment (``Transformation.segment_id``).
* Roll-ups, filled set-based once the rest is loaded: members ⋈ packings per (segment, container)
  (``SegmentContainer``), members ⋈ units per (segment, owner) (``SegmentOwner``) and units with
  several member or packing rows (``RepeatedUnit``, none here).
* Cartons of 50 units (per work order), pallets of 40 cartons (per brand; 4% of the shipping
  groups are 1–6 loose cartons instead, ~0.3% of cartons), shipments of 1–3 pallets or of one
  group of loose cartons to ``units / 5,000`` distributors (chosen uniformly).
* All of it under ledger position 1. Its summary (the marker) names the parameters; it is written
  last, so a half-built world is recognised and rebuilt.

Generation is deterministic (seeded) and streams rows: per-unit facts are recomputed per table from
a 1-byte-per-unit plan instead of being held as objects.

Secondary indexes, unique and primary keys and foreign keys of the loaded tables are dropped before
COPY and recreated exactly afterwards (their definitions are captured from the catalogue first and
the schema is compared after), then the database is vacuumed and analysed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import os
import random
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from bench import db
from traceability.gs1 import keys

VERSION = "v5"
UNITS_PER_CARTON = 50
CARTONS_PER_PALLET = 40
WINDOW = 16  # cell lots a work order draws on
POTENTIAL_SHARE = 0.03
LOOSE_SHARE = 0.04
LOT_COUNT_P = (0.65, 0.85)  # cumulative: 1 lot 65%, 2 lots 20%, 3 lots 15%
DAY0 = dt.datetime(2023, 1, 2, tzinfo=dt.UTC)
CELL_DAYS = 600
RECORDED_AT = "2025-07-01 00:00:00+00"
CREATED_AT = "2022-01-01 00:00:00+00"

DEFINITE, POTENTIAL = "definite", "potential"
# Spread of the log-normal lengths of the time a material lot is in use, per level: a wide spread
# in the final lots gives reaches from ~10k units to ~20% of the world.
SIGMA = {"P": 0.15, "I": 0.15, "A": 1.4, "B": 0.9}

# family, precursor / intermediate / final material names, precursor lots, intermediate lots, line A and B lots
FAMILIES = [
    ("cathode", "NCM811 hydroxide precursor", "NCM811 calcined intermediate", "NCM811 cathode powder", 6, 10, 21, 13),
    ("anode", "Needle coke", "Graphitised coke", "Artificial graphite anode", 6, 10, 21, 13),
    ("separator", "UHMW polyethylene resin", "PE base film", "Ceramic-coated PE separator", 6, 10, 21, 13),
    ("electrolyte", "LiPF6 salt", "Carbonate solvent blend", "LiPF6 electrolyte", 6, 10, 21, 13),
]
CELL_MAKERS = [
    ("Amperion Cells", "AMP"),
    ("Evergreen Energy", "EVG"),
    ("Kestrel Power Cells", "KPC"),
    ("Orion Cell Co.", "ORC"),
]
BRANDS = [("Anchorline", "AL"), ("Romax", "RM"), ("Voltaic", "VT"), ("Lumen Power", "LP"), ("Tidewater", "TW")]


@dataclass(frozen=True)
class Params:
    units: int = 10_000_000
    seed: int = 2025

    def __post_init__(self) -> None:
        if self.units < 20_000:
            raise ValueError("the bench world needs at least 20,000 units")

    @property
    def cell_lots(self) -> int:
        return max(40, round(self.units / 500))

    @property
    def work_orders(self) -> int:
        return max(4, round(self.units / 5_000))

    @property
    def consignees(self) -> int:
        return max(10, round(self.units / 5_000))

    @property
    def marker(self) -> str:
        return (
            f"Bench world {VERSION}: units={self.units} seed={self.seed} material_lots=200 "
            f"cell_lots={self.cell_lots} work_orders={self.work_orders} consignees={self.consignees} "
            f"units_per_carton={UNITS_PER_CARTON} cartons_per_pallet={CARTONS_PER_PALLET}"
        )


# --- GS1 keys ----------------------------------------------------------------------------------------


def _prefix(org_id: int) -> str:
    return f"69{org_id:07d}"


_DAY_CACHE: dict[int, str] = {}


def ts(epoch: int) -> str:
    """A UTC timestamp in COPY text form; cheap enough to call ten million times."""
    day, rem = divmod(epoch, 86400)
    date = _DAY_CACHE.get(day)
    if date is None:
        date = _DAY_CACHE[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
    return f"{date} {rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}+00"


def _epoch(day_offset: float, hour: int = 8) -> int:
    return int(DAY0.timestamp()) + int(day_offset) * 86400 + hour * 3600


# --- the plan ----------------------------------------------------------------------------------------


@dataclass
class MatLot:
    id: int
    family: int
    level: str  # P, I, A, B
    material_id: int
    owner_id: int
    start: float
    end: float
    code: str = ""
    produced: int = 0  # epoch
    inputs: list[int] = field(default_factory=list)


@dataclass
class WorkOrder:
    index: int
    id: int
    number: str
    pm: int  # product model index
    owner_id: int
    first_unit: int
    n: int
    win_start: int  # index of the first cell lot of the window
    width: int
    start_epoch: int
    potential_lots: tuple[int, ...] = ()  # cell lot ids of a work-order-level (potential) record
    first_tid: int = 0
    single_tids: dict[int, int] = field(default_factory=dict)  # window index -> transformation id
    single_counts: list[int] = field(default_factory=list)
    first_build_tid: int = 0
    segments: dict[tuple[int, int], int] = field(default_factory=dict)  # (window index, lot count) -> segment
    first_carton: int = 0

    def unit_epoch(self, k: int) -> int:
        return self.start_epoch + (k * 259_200) // self.n

    def window_index(self, k: int, c: int) -> int:
        return min((k * self.width) // self.n, self.width - c)


class Plan:
    """Everything but the per-unit rows, which are streamed from ``lot_counts`` (one byte per unit)."""

    def __init__(self, p: Params) -> None:
        self.p = p
        rng = random.Random(p.seed)
        self._parties()
        self._materials(rng)
        self._cells(rng)
        self._work_orders(rng)
        self._units_and_segments()
        self._containers(rng)

    # parties and catalogue
    def _parties(self) -> None:
        p = self.p
        orgs = []  # (id, name, slug, role, country, prefix or None)
        for fam, *_ in FAMILIES:
            orgs.append((f"Bench {fam.title()} Materials", f"bench-{fam}-materials", "material_supplier", "CN"))
        for name, code in CELL_MAKERS:
            orgs.append((name, f"bench-cells-{code.lower()}", "cell_maker", "CN"))
        for name, code in BRANDS:
            orgs.append((name, f"bench-brand-{code.lower()}", "brand", "CN"))
        orgs.append(("Bench Market Regulator", "bench-regulator", "regulator", "CN"))
        for i in range(1, p.consignees + 1):
            orgs.append((f"Distributor {i:05d}", f"bench-distributor-{i:05d}", "distributor", "CN" if i % 3 else "US"))
        self.orgs = []
        for org_id, (name, slug, role, country) in enumerate(orgs, start=1):
            prefix = None if role == "regulator" else _prefix(org_id)
            self.orgs.append((org_id, name, slug, role, country, prefix))
        self.supplier_ids = [1, 2, 3, 4]
        self.maker_ids = [5, 6, 7, 8]
        self.brand_ids = [9, 10, 11, 12, 13]
        self.consignee_ids = [o[0] for o in self.orgs if o[3] == "distributor"]
        self.prefix = {o[0]: o[5] for o in self.orgs}
        # materials: per family precursor, intermediate, final
        self.materials = []  # (id, name, kind, gtin, owner)
        for f, (fam, prec, inter, final, *_rest) in enumerate(FAMILIES):
            owner = self.supplier_ids[f]
            for item, (name, kind) in enumerate([(prec, "precursor"), (inter, "other"), (final, fam)], start=1):
                gtin = keys.gtin14(self.prefix[owner], item)
                self.materials.append((len(self.materials) + 1, name, kind, gtin, owner))
        # cell models: two per maker
        self.cell_models = []  # (id, name, chemistry, format, capacity, gtin, owner)
        for m, (_name, code) in enumerate(CELL_MAKERS):
            owner = self.maker_ids[m]
            for j, (fmt, cap, chem) in enumerate([("18650", 3350, "NMC"), ("pouch", 5000, "LiPo")], start=1):
                self.cell_models.append(
                    (
                        len(self.cell_models) + 1,
                        f"{code}-{cap}{'P' if fmt == 'pouch' else ''}",
                        chem,
                        fmt,
                        cap,
                        keys.gtin14(self.prefix[owner], j),
                        owner,
                    )
                )
        # product models: two per brand
        self.product_models = []  # (id, name, model_number, gtin, capacity, owner, serial prefix)
        for b, (name, code) in enumerate(BRANDS):
            owner = self.brand_ids[b]
            for j, cap in enumerate([10_000, 20_000], start=1):
                self.product_models.append(
                    (
                        len(self.product_models) + 1,
                        f"{name} Power {cap // 1000}K",
                        f"{code}{cap // 1000}K",
                        keys.gtin14(self.prefix[owner], j),
                        cap,
                        owner,
                        f"{code}{j}",
                    )
                )

    # material lots and their genealogy
    def _materials(self, rng: random.Random) -> None:
        self.mat_lots: list[MatLot] = []
        self.lines: dict[tuple[int, str], list[MatLot]] = {}

        def sequence(f: int, level: str, n: int, sigma: float, material: int) -> list[MatLot]:
            lengths = [rng.lognormvariate(0, sigma) for _ in range(n)]
            cap = 2 * sum(lengths) / n  # no lot lasts more than twice the mean
            lengths = [min(length, cap) for length in lengths]
            total, at, lots = sum(lengths), 0.0, []
            for length in lengths:
                lot = MatLot(len(self.mat_lots) + 1, f, level, material, self.supplier_ids[f], at, at + length / total)
                at = lot.end
                self.mat_lots.append(lot)
                lots.append(lot)
            lots[-1].end = 1.0
            self.lines[(f, level)] = lots
            return lots

        for f, (_fam, _p, _i, _fin, n_p, n_i, n_a, n_b) in enumerate(FAMILIES):
            base = 3 * f  # material ids of the family: base+1 precursor, base+2 intermediate, base+3 final
            precursors = sequence(f, "P", n_p, SIGMA["P"], base + 1)
            intermediates = sequence(f, "I", n_i, SIGMA["I"], base + 2)
            # Each lot is made, just before its own use, from the lot upstream in use then and
            # sometimes also the one or two before it (still in stock).
            for lot in intermediates:
                k = _active(precursors, lot.start)
                extra = 1 if rng.random() < 0.15 else 0
                lot.inputs = [precursors[j].id for j in range(max(0, k - extra), k + 1)]
            for level, n in (("A", n_a), ("B", n_b)):
                for lot in sequence(f, level, n, SIGMA[level], base + 3):
                    k = _active(intermediates, lot.start)
                    extra = 2 if rng.random() < 0.05 else 1 if rng.random() < 0.2 else 0
                    lot.inputs = [intermediates[j].id for j in range(max(0, k - extra), k + 1)]
        lead = {"P": 75, "I": 45, "A": 20, "B": 20}
        for lot in self.mat_lots:
            fam = FAMILIES[lot.family][0][:3].upper()
            day = DAY0 + dt.timedelta(days=math.floor(lot.start * CELL_DAYS) - lead[lot.level])
            lot.code = f"{fam}{lot.level}-{day:%y%m%d}-{lot.id:03d}"
            lot.produced = int(day.timestamp()) + 6 * 3600
        assert len(self.mat_lots) == 200

    def _cells(self, rng: random.Random) -> None:
        n = self.p.cell_lots
        self.cell_base = len(self.mat_lots)  # cell lot i has id cell_base + 1 + i
        self.cell_inputs: list[tuple[int, ...]] = []
        self.cell_day: list[int] = []
        self.cell_model_of: list[int] = []
        for i in range(n):
            t = (i + 0.5) / n
            lines = self.lines
            # cathode and anode from line A, often blended with line B; separator from one line;
            # electrolyte (not always recorded) from one line: 3 to 6 material lots
            inputs = [lines[(0, "A")], lines[(1, "A")], lines[(2, "A" if rng.random() < 0.7 else "B")]]
            if rng.random() < 0.85:
                inputs.append(lines[(3, "A" if rng.random() < 0.7 else "B")])
            if rng.random() < 0.5:
                inputs.append(lines[(0, "B")])
            if rng.random() < 0.35:
                inputs.append(lines[(1, "B")])
            self.cell_inputs.append(tuple(seq[_active(seq, t)].id for seq in inputs))
            self.cell_day.append(math.floor(t * CELL_DAYS))
            maker = (i // 50) % len(CELL_MAKERS)
            self.cell_model_of.append(2 * maker + 1 + (i // 25) % 2)
        # transformation ids: one per intermediate / final material lot, then one per cell lot
        self.mat_records = [lot for lot in self.mat_lots if lot.inputs]
        self.cell_tid_base = len(self.mat_records)  # cell lot i's record has id cell_tid_base + 1 + i
        self.lot_links = sum(len(lot.inputs) for lot in self.mat_records) + sum(map(len, self.cell_inputs))

    def cell_lot_id(self, i: int) -> int:
        return self.cell_base + 1 + i

    def cell_code(self, i: int) -> str:
        maker = CELL_MAKERS[(i // 50) % len(CELL_MAKERS)][1]
        day = DAY0 + dt.timedelta(days=self.cell_day[i])
        return f"{maker}{day:%y%m%d}{i:05d}"

    # work orders and units
    def _work_orders(self, rng: random.Random) -> None:
        p = self.p
        n_wo, n_cell = p.work_orders, p.cell_lots
        width = min(WINDOW, n_cell)
        weights = [rng.uniform(0.6, 1.4) for _ in range(n_wo)]
        scale = p.units / sum(weights)
        sizes = [int(w * scale) for w in weights]
        for j in sorted(range(n_wo), key=lambda j: weights[j] * scale - sizes[j], reverse=True)[: p.units - sum(sizes)]:
            sizes[j] += 1
        self.work_orders: list[WorkOrder] = []
        first = 1
        for j in range(n_wo):
            pm = j % len(self.product_models)
            owner = self.product_models[pm][5]
            win = round(j * (n_cell - width) / max(1, n_wo - 1))
            day = self.cell_day[win + width - 1] + 7
            start = _epoch(day)
            number = f"{self.product_models[pm][2]}-{time.strftime('%y%m', time.gmtime(start))}-{j:05d}"
            wo = WorkOrder(j, j + 1, number, pm, owner, first, sizes[j], win, width, start)
            if int((j + 1) * POTENTIAL_SHARE) > int(j * POTENTIAL_SHARE):  # every ~33rd work order
                wo.potential_lots = tuple(self.cell_lot_id(win + k) for k in range(2 + rng.randrange(2)))
            self.work_orders.append(wo)
            first += sizes[j]
        # one byte per unit: how many cell lots it was built from (0 in potential work orders)
        self.lot_counts = bytearray(p.units + 1)
        for wo in self.work_orders:
            if wo.potential_lots:
                continue
            r = random.Random(p.seed * 1_000_003 + wo.index).random
            lo, mid = LOT_COUNT_P
            counts = bytes(1 if x < lo else 2 if x < mid else 3 for x in (r() for _ in range(wo.n)))
            self.lot_counts[wo.first_unit : wo.first_unit + wo.n] = counts

    def _units_and_segments(self) -> None:
        # key -> [id, unit_count, last_transformation_id, owner_id, owners_mixed (0 / 1)]
        self.segments: dict[tuple[str, tuple[int, ...]], list[int]] = {}

        def segment(exposure: str, lots: tuple[int, ...], count: int, last_tid: int, owner: int) -> int:
            entry = self.segments.get((exposure, lots))
            if entry is None:
                entry = self.segments[(exposure, lots)] = [len(self.segments) + 1, 0, 0, owner, 0]
            entry[1] += count
            entry[2] = max(entry[2], last_tid)
            entry[4] |= entry[3] != owner  # work orders of two brands sharing a window's cell lots
            return entry[0]

        tid = self.cell_tid_base + self.p.cell_lots
        self.unit_lot_pairs = 0
        for wo in self.work_orders:
            wo.first_tid = tid + 1
            if wo.potential_lots:
                tid += 1
                wo.segments[(0, 0)] = segment(POTENTIAL, wo.potential_lots, wo.n, tid, wo.owner_id)
                self.unit_lot_pairs += wo.n * len(wo.potential_lots)
                continue
            singles = [0] * wo.width
            combos: dict[tuple[int, int], int] = {}
            last_build: dict[tuple[int, int], int] = {}  # (a, c > 1) -> ordinal of its last build record
            builds = 0
            counts = self.lot_counts
            for k in range(wo.n):
                c = counts[wo.first_unit + k]
                key = (wo.window_index(k, c), c)
                combos[key] = combos.get(key, 0) + 1
                self.unit_lot_pairs += c
                if c > 1:
                    last_build[key] = builds
                    builds += 1
            for (a, c), count in combos.items():
                if c == 1:
                    singles[a] = count
            wo.single_counts = singles
            for a, count in enumerate(singles):
                if count:
                    tid += 1
                    wo.single_tids[a] = tid
            wo.first_build_tid = tid + 1
            tid += builds
            for (a, c), count in sorted(combos.items()):
                lots = tuple(self.cell_lot_id(wo.win_start + a + x) for x in range(c))
                last = wo.single_tids[a] if c == 1 else wo.first_build_tid + last_build[(a, c)]
                wo.segments[(a, c)] = segment(DEFINITE, lots, count, last, wo.owner_id)
        self.transformations = tid

    # packing and shipping
    def _containers(self, rng: random.Random) -> None:
        self.carton_owner = array("q")
        self.carton_epoch = array("q")
        by_brand: dict[int, list[int]] = {b: [] for b in self.brand_ids}
        cid = 0
        for wo in self.work_orders:
            wo.first_carton = cid + 1
            for start in range(0, wo.n, UNITS_PER_CARTON):
                cid += 1
                last = min(start + UNITS_PER_CARTON, wo.n) - 1
                self.carton_owner.append(wo.owner_id)
                self.carton_epoch.append(wo.unit_epoch(last) + 7200)
                by_brand[wo.owner_id].append(cid)
        self.cartons = cid
        # pallets and loose cartons, per brand in packing order; then shipments of 1-3 pallets
        self.pallets: list[tuple[int, int, int, list[int]]] = []  # (id, owner, epoch, cartons)
        self.shipments: list[
            tuple[int, int, str, int, int, list[int]]
        ] = []  # (id, owner, ref, consignee, epoch, items)
        pid = cid
        for owner, cartons in by_brand.items():
            shipping: list[tuple[int, list[int], bool]] = []  # (epoch ready, container ids, is a pallet)
            at = 0
            while at < len(cartons):
                rest = len(cartons) - at
                if rng.random() < LOOSE_SHARE or rest < CARTONS_PER_PALLET // 2:
                    group = cartons[at : at + min(rest, 1 + rng.randrange(6))]
                    shipping.append((max(self.carton_epoch[c - 1] for c in group) + 86400, list(group), False))
                else:
                    group = cartons[at : at + CARTONS_PER_PALLET]
                    pid += 1
                    epoch = max(self.carton_epoch[c - 1] for c in group) + 86400
                    self.pallets.append((pid, owner, epoch, list(group)))
                    shipping.append((epoch, [pid], True))
                at += len(group)
            brand_code = BRANDS[self.brand_ids.index(owner)][1]
            at = 0
            while at < len(shipping):
                batch = [shipping[at]]
                if shipping[at][2]:  # 1-3 consecutive pallets travel together; loose cartons on their own
                    for extra in shipping[at + 1 : at + 1 + rng.randrange(3)]:
                        if not extra[2]:
                            break
                        batch.append(extra)
                at += len(batch)
                ref = f"DA-{brand_code}-{len(self.shipments) + 1:07d}"
                consignee = self.consignee_ids[rng.randrange(len(self.consignee_ids))]
                items = [c for _epoch, containers, _pallet in batch for c in containers]
                epoch = max(u[0] for u in batch) + 86400
                self.shipments.append((len(self.shipments) + 1, owner, ref, consignee, epoch, items))
        self.containers = pid
        self.shipment_items = sum(len(s[5]) for s in self.shipments)
        self.loose_cartons = sum(len(s[5]) for s in self.shipments if s[5][0] <= cid)


def _active(seq: list[MatLot], t: float) -> int:
    """Index of the lot of a time-ordered sequence that is in use at time ``t``."""
    return min(len(seq) - 1, max(0, bisect.bisect_right([lot.start for lot in seq], t) - 1))


# --- row streams (COPY text format) ------------------------------------------------------------------

N = "\\N"


def _rows_organisation(plan: Plan) -> Iterator[str]:
    for org_id, name, slug, _role, country, prefix in plan.orgs:
        cp = prefix or N
        pgln = keys.gln(prefix, 1) if prefix else N
        yield f"{org_id}\t{name}\t{slug}\t{country}\t{cp}\t{pgln}\t{CREATED_AT}\n"


def _rows_organisation_role(plan: Plan) -> Iterator[str]:
    for org_id, _name, _slug, role, _country, _prefix in plan.orgs:
        yield f"{org_id}\t{org_id}\t{role}\n"


def _rows_site(plan: Plan) -> Iterator[str]:
    for org_id, name, _slug, role, country, prefix in plan.orgs:
        kind = "warehouse" if role == "distributor" else "office" if role == "regulator" else "main plant"
        gln = keys.gln(prefix, 100) if prefix else N
        yield f"{org_id}\t{name} {kind}\t{gln}\t0\t\t{country}\t{org_id}\n"


def _rows_material(plan: Plan) -> Iterator[str]:
    for mid, name, kind, gtin, owner in plan.materials:
        yield f"{mid}\t{name}\t{kind}\t{gtin}\t\t{owner}\n"


def _rows_cellmodel(plan: Plan) -> Iterator[str]:
    for cid, name, chem, fmt, cap, gtin, owner in plan.cell_models:
        yield f"{cid}\t{name}\t{chem}\t{fmt}\t{cap}\t3.70\t{gtin}\t{owner}\n"


def _rows_productmodel(plan: Plan) -> Iterator[str]:
    for pid, name, number, gtin, cap, owner, _serial in plan.product_models:
        yield f"{pid}\t{name}\t{number}\t{gtin}\t{cap}\t{owner}\n"


def _rows_ledgerentry(plan: Plan) -> Iterator[str]:
    summary = f"Bench world (incomplete): {plan.p.marker}"[:300]
    yield f"1\t{RECORDED_AT}\tdemo\t{summary}\t\\N\t\\N\n"


def _rows_ledgerhead(plan: Plan) -> Iterator[str]:
    yield "1\t1\n"


def _rows_lot(plan: Plan) -> Iterator[str]:
    for lot in plan.mat_lots:
        gtin = plan.materials[lot.material_id - 1][3]
        frm, to = ts(lot.produced), ts(lot.produced + 2 * 86400)
        yield (
            f"{lot.id}\tmaterial\tlgtin:{gtin}:{lot.code}\t{lot.code}\t{gtin}\t{frm}\t{to}\t2000.000\tKGM"
            f"\t{lot.owner_id}\t{lot.owner_id}\n"
        )
    for i in range(plan.p.cell_lots):
        model = plan.cell_models[plan.cell_model_of[i] - 1]
        gtin, owner, code = model[5], model[6], plan.cell_code(i)
        start = _epoch(plan.cell_day[i], 6)
        yield (
            f"{plan.cell_lot_id(i)}\tcell\tlgtin:{gtin}:{code}\t{code}\t{gtin}\t{ts(start)}\t{ts(start + 14 * 3600)}"
            f"\t50000.000\tEA\t{owner}\t{owner}\n"
        )


def _rows_materiallot(plan: Plan) -> Iterator[str]:
    for lot in plan.mat_lots:
        yield f"{lot.id}\t{lot.material_id}\n"


def _rows_celllot(plan: Plan) -> Iterator[str]:
    for i in range(plan.p.cell_lots):
        yield f"{plan.cell_lot_id(i)}\t{plan.cell_model_of[i]}\n"


def _rows_workorder(plan: Plan) -> Iterator[str]:
    for wo in plan.work_orders:
        yield (
            f"{wo.id}\t{wo.number}\t{ts(wo.start_epoch)}\t{ts(wo.start_epoch + 3 * 86400)}\t{wo.n}"
            f"\t{wo.owner_id}\t{wo.pm + 1}\t{wo.owner_id}\n"
        )


def _serial(plan: Plan, wo: WorkOrder, unit_id: int) -> str:
    return f"{plan.product_models[wo.pm][6]}{unit_id:010d}"


def _rows_transformation(plan: Plan) -> Iterator[str]:
    # id, kind, reference, occurred_at, input_count, output_count, exposure, retraction_reason,
    # owner_id, recorded_position_id, retracted_position_id, work_order_id, segment_id
    # (segment_id: the segment its members went into; NULL for the lot -> lot records)
    tail = "\t1\t\\N\t"
    for tid, lot in enumerate(plan.mat_records, start=1):
        yield (
            f"{tid}\tmanual\tMAT-{lot.code}\t{ts(lot.produced)}\t{len(lot.inputs)}\t1\tdefinite\t"
            f"\t{lot.owner_id}{tail}\\N\t\\N\n"
        )
    for i, _inputs in enumerate(plan.cell_inputs):
        owner = plan.cell_models[plan.cell_model_of[i] - 1][6]
        yield (
            f"{plan.cell_tid_base + 1 + i}\tmanual\tCELL-{plan.cell_code(i)}\t{ts(_epoch(plan.cell_day[i], 6))}"
            f"\t{len(plan.cell_inputs[i])}\t1\tdefinite\t\t{owner}{tail}\\N\t\\N\n"
        )
    counts = plan.lot_counts
    for wo in plan.work_orders:
        owner, wid, start = wo.owner_id, wo.id, ts(wo.start_epoch)
        if wo.potential_lots:
            yield (
                f"{wo.first_tid}\twork_order\t{wo.number}\t{start}\t{len(wo.potential_lots)}\t{wo.n}\tpotential\t"
                f"\t{owner}{tail}{wid}\t{wo.segments[(0, 0)]}\n"
            )
            continue
        for a, tid in wo.single_tids.items():
            code = plan.cell_code(wo.win_start + a)
            yield (
                f"{tid}\twork_order\t{wo.number}/{code}\t{start}\t1\t{wo.single_counts[a]}\tdefinite\t"
                f"\t{owner}{tail}{wid}\t{wo.segments[(a, 1)]}\n"
            )
        tid = wo.first_build_tid
        for k in range(wo.n):
            c = counts[wo.first_unit + k]
            if c > 1:
                unit_id = wo.first_unit + k
                sid = wo.segments[(wo.window_index(k, c), c)]
                yield (
                    f"{tid}\tbuild_record\t{wo.number}/{_serial(plan, wo, unit_id)}\t{ts(wo.unit_epoch(k))}\t{c}"
                    f"\t1\tdefinite\t\t{owner}{tail}{wid}\t{sid}\n"
                )
                tid += 1


def _rows_lotlink(plan: Plan) -> Iterator[str]:
    link = 0
    for tid, lot in enumerate(plan.mat_records, start=1):
        for input_id in lot.inputs:
            link += 1
            yield f"{link}\tdefinite\t{input_id}\t{lot.id}\t{tid}\n"
    for i, inputs in enumerate(plan.cell_inputs):
        for input_id in sorted(inputs):
            link += 1
            yield f"{link}\tdefinite\t{input_id}\t{plan.cell_lot_id(i)}\t{plan.cell_tid_base + 1 + i}\n"


def _rows_segment(plan: Plan) -> Iterator[str]:
    from traceability.genealogy.writes import segment_input_key

    for (exposure, lots), (sid, count, last_tid, owner, mixed) in plan.segments.items():
        key = segment_input_key(exposure=exposure, lot_ids=lots)
        yield f"{sid}\t{key}\t{exposure}\t{count}\t{last_tid}\t{owner}\t{'t' if mixed else 'f'}\n"


def _rows_segmentinput(plan: Plan) -> Iterator[str]:
    n = 0
    for (_exposure, lots), (sid, *_sizes) in plan.segments.items():
        for lot in lots:
            n += 1
            yield f"{n}\t{lot}\t{sid}\n"


def _rows_unit(plan: Plan) -> Iterator[str]:
    # id, identity, serial, gtin, produced_at, owner_id, product_model_id, site_id, work_order_id
    for wo in plan.work_orders:
        pm = plan.product_models[wo.pm]
        gtin, prefix, tail = pm[3], pm[6], f"\t{wo.owner_id}\t{wo.pm + 1}\t{wo.owner_id}\t{wo.id}\n"
        for k in range(wo.n):
            unit_id = wo.first_unit + k
            serial = f"{prefix}{unit_id:010d}"
            yield f"{unit_id}\tsgtin:{gtin}:{serial}\t{serial}\t{gtin}\t{ts(wo.unit_epoch(k))}{tail}"


def _rows_segmentmember(plan: Plan) -> Iterator[str]:
    counts = plan.lot_counts
    for wo in plan.work_orders:
        if wo.potential_lots:
            sid, tid = wo.segments[(0, 0)], wo.first_tid
            for unit_id in range(wo.first_unit, wo.first_unit + wo.n):
                yield f"{sid}\t{unit_id}\t{tid}\n"
            continue
        build = wo.first_build_tid
        for k in range(wo.n):
            unit_id = wo.first_unit + k
            c = counts[unit_id]
            a = wo.window_index(k, c)
            if c == 1:
                tid = wo.single_tids[a]
            else:
                tid, build = build, build + 1
            yield f"{wo.segments[(a, c)]}\t{unit_id}\t{tid}\n"


def _rows_container(plan: Plan) -> Iterator[str]:
    # id, identity, sscc, kind, created_at, owner_id, site_id
    serial: dict[int, int] = {}
    for cid in range(1, plan.cartons + 1):
        owner = plan.carton_owner[cid - 1]
        serial[owner] = serial.get(owner, 0) + 1
        sscc = keys.sscc(plan.prefix[owner], serial[owner], extension=0)
        yield f"{cid}\tsscc:{sscc}\t{sscc}\tcarton\t{ts(plan.carton_epoch[cid - 1])}\t{owner}\t{owner}\n"
    serial.clear()
    for pid, owner, epoch, _cartons in plan.pallets:
        serial[owner] = serial.get(owner, 0) + 1
        sscc = keys.sscc(plan.prefix[owner], serial[owner], extension=1)
        yield f"{pid}\tsscc:{sscc}\t{sscc}\tpallet\t{ts(epoch)}\t{owner}\t{owner}\n"


def _rows_unitpacking(plan: Plan) -> Iterator[str]:
    # id, packed_at, unpacked_at, container_id, unit_id (one packing per unit: id = unit id)
    for wo in plan.work_orders:
        for start in range(0, wo.n, UNITS_PER_CARTON):
            cid = wo.first_carton + start // UNITS_PER_CARTON
            head = f"\t{ts(plan.carton_epoch[cid - 1])}\t\\N\t{cid}\t"
            for unit_id in range(wo.first_unit + start, wo.first_unit + min(start + UNITS_PER_CARTON, wo.n)):
                yield f"{unit_id}{head}{unit_id}\n"


def _rows_containerpacking(plan: Plan) -> Iterator[str]:
    n = 0
    for pid, _owner, epoch, cartons in plan.pallets:
        for cid in cartons:
            n += 1
            yield f"{n}\t{ts(epoch)}\t\\N\t{cid}\t{pid}\n"


def _rows_shipment(plan: Plan) -> Iterator[str]:
    # id, reference, shipped_at, received_at, consignee_id, owner_id, ship_from_id, ship_to_id
    for sid, owner, ref, consignee, epoch, _items in plan.shipments:
        yield f"{sid}\t{ref}\t{ts(epoch)}\t{ts(epoch + 4 * 86400)}\t{consignee}\t{owner}\t{owner}\t{consignee}\n"


def _rows_shipmentitem(plan: Plan) -> Iterator[str]:
    n = 0
    for sid, _owner, _ref, _consignee, _epoch, items in plan.shipments:
        for container in items:
            n += 1
            yield f"{n}\t{container}\t{sid}\t\\N\n"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    rows: Callable[[Plan], Iterable[str]]
    count: Callable[[Plan], int]


TABLES = [
    Table(
        "suppliers_organisation",
        ("id", "name", "slug", "country", "gs1_company_prefix", "pgln", "created_at"),
        _rows_organisation,
        lambda p: len(p.orgs),
    ),
    Table(
        "suppliers_organisationrole",
        ("id", "organisation_id", "role"),
        _rows_organisation_role,
        lambda p: len(p.orgs),
    ),
    Table(
        "suppliers_site",
        ("id", "name", "gln", "gln_extension", "address", "country", "owner_id"),
        _rows_site,
        lambda p: len(p.orgs),
    ),
    Table(
        "cells_material",
        ("id", "name", "kind", "gtin", "description", "owner_id"),
        _rows_material,
        lambda p: len(p.materials),
    ),
    Table(
        "cells_cellmodel",
        ("id", "name", "chemistry", "format", "capacity_mah", "nominal_voltage", "gtin", "owner_id"),
        _rows_cellmodel,
        lambda p: len(p.cell_models),
    ),
    Table(
        "packs_productmodel",
        ("id", "name", "model_number", "gtin", "capacity_mah", "owner_id"),
        _rows_productmodel,
        lambda p: len(p.product_models),
    ),
    Table(
        "traceability_ledgerentry",
        ("position", "recorded_at", "source", "summary", "actor_id", "organisation_id"),
        _rows_ledgerentry,
        lambda p: 1,
    ),
    Table("traceability_ledgerhead", ("id", "position"), _rows_ledgerhead, lambda p: 1),
    Table(
        "cells_lot",
        (
            "id",
            "kind",
            "identity",
            "code",
            "gtin",
            "produced_from",
            "produced_to",
            "quantity",
            "uom",
            "owner_id",
            "site_id",
        ),
        _rows_lot,
        lambda p: len(p.mat_lots) + p.p.cell_lots,
    ),
    Table("cells_materiallot", ("lot_ptr_id", "material_id"), _rows_materiallot, lambda p: len(p.mat_lots)),
    Table("cells_celllot", ("lot_ptr_id", "cell_model_id"), _rows_celllot, lambda p: p.p.cell_lots),
    Table(
        "packs_workorder",
        ("id", "number", "started_at", "finished_at", "planned_quantity", "owner_id", "product_model_id", "site_id"),
        _rows_workorder,
        lambda p: len(p.work_orders),
    ),
    Table(
        "traceability_transformation",
        (
            "id",
            "kind",
            "reference",
            "occurred_at",
            "input_count",
            "output_count",
            "exposure",
            "retraction_reason",
            "owner_id",
            "recorded_position_id",
            "retracted_position_id",
            "work_order_id",
            "segment_id",
        ),
        _rows_transformation,
        lambda p: p.transformations,
    ),
    Table(
        "traceability_lotlink",
        ("id", "exposure", "input_lot_id", "output_lot_id", "transformation_id"),
        _rows_lotlink,
        lambda p: p.lot_links,
    ),
    Table(
        "traceability_segment",
        ("id", "input_key", "exposure", "unit_count", "last_transformation_id", "owner_id", "owners_mixed"),
        _rows_segment,
        lambda p: len(p.segments),
    ),
    Table(
        "traceability_segmentinput",
        ("id", "lot_id", "segment_id"),
        _rows_segmentinput,
        lambda p: sum(len(lots) for _e, lots in p.segments),
    ),
    Table(
        "packs_unit",
        ("id", "identity", "serial", "gtin", "produced_at", "owner_id", "product_model_id", "site_id", "work_order_id"),
        _rows_unit,
        lambda p: p.p.units,
    ),
    Table(
        "traceability_segmentmember",
        ("segment_id", "unit_id", "transformation_id"),
        _rows_segmentmember,
        lambda p: p.p.units,
    ),
    Table(
        "packs_container",
        ("id", "identity", "sscc", "kind", "created_at", "owner_id", "site_id"),
        _rows_container,
        lambda p: p.containers,
    ),
    Table(
        "packs_unitpacking",
        ("id", "packed_at", "unpacked_at", "container_id", "unit_id"),
        _rows_unitpacking,
        lambda p: p.p.units,
    ),
    Table(
        "packs_containerpacking",
        ("id", "packed_at", "unpacked_at", "child_id", "parent_id"),
        _rows_containerpacking,
        lambda p: sum(len(pal[3]) for pal in p.pallets),
    ),
    Table(
        "packs_shipment",
        ("id", "reference", "shipped_at", "received_at", "consignee_id", "owner_id", "ship_from_id", "ship_to_id"),
        _rows_shipment,
        lambda p: len(p.shipments),
    ),
    Table(
        "packs_shipmentitem",
        ("id", "container_id", "shipment_id", "unit_id"),
        _rows_shipmentitem,
        lambda p: p.shipment_items,
    ),
]


@dataclass(frozen=True)
class Derived:
    """A table filled set-based from loaded ones (``INSERT … SELECT``), once they are all loaded."""

    name: str
    columns: tuple[str, ...]
    select: str
    sources: tuple[str, ...]


DERIVED = [
    # the consignee roll-up: (member row, packing) pairs per (segment, container)
    Derived(
        "traceability_segmentcontainer",
        ("segment_id", "container_id", "rows"),
        """SELECT m.segment_id, p.container_id, count(*) FROM traceability_segmentmember m
           JOIN packs_unitpacking p ON p.unit_id = m.unit_id GROUP BY m.segment_id, p.container_id""",
        ("traceability_segmentmember", "packs_unitpacking"),
    ),
    # the party roll-up: member rows per (segment, owner of the unit), mixed segments too
    Derived(
        "traceability_segmentowner",
        ("segment_id", "owner_id", "unit_count", "first_unit_id", "last_unit_id"),
        """SELECT m.segment_id, u.owner_id, count(*), min(m.unit_id), max(m.unit_id) FROM traceability_segmentmember m
           JOIN packs_unit u ON u.id = m.unit_id GROUP BY m.segment_id, u.owner_id""",
        ("traceability_segmentmember", "packs_unit"),
    ),
    # units with more than one member row or more than one packing (none by construction; computed anyway)
    Derived(
        "traceability_repeatedunit",
        ("unit_id",),
        """SELECT unit_id FROM traceability_segmentmember GROUP BY unit_id HAVING count(*) > 1
           UNION SELECT unit_id FROM packs_unitpacking GROUP BY unit_id HAVING count(*) > 1""",
        ("traceability_segmentmember", "packs_unitpacking"),
    ),
]


# --- the database ------------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, flush=True)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit="rows",
        unit_scale=True,
        dynamic_ncols=True,
        leave=tty,
        mininterval=0.5 if tty else 30,
        disable=False,
    )


def world_status(url: str) -> str | None:
    """The summary at ledger position 1 of the bench database, or None when there is no database or no entry."""
    with psycopg.connect(db.maintenance_url(url), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db.db_name(url)]).fetchone():
            return None
    with db.connect(url) as conn:
        if not conn.execute("SELECT to_regclass('traceability_ledgerentry')").fetchone()[0]:
            return ""
        row = conn.execute("SELECT summary FROM traceability_ledgerentry WHERE position = 1").fetchone()
        return row[0] if row else ""


def ensure_world(p: Params, *, rebuild: bool = False) -> dict:
    """Build the world unless the one in the bench database has the same parameters; returns build stats."""
    url = db.bench_url()
    status = world_status(url)
    if status == p.marker and not rebuild:
        _say(f"world: reusing {db.db_name(url)} ({p.marker})")
        return load_stats(url)
    if status is not None:
        _say(f"world: {db.db_name(url)} holds {status or 'no complete world'!r}: dropping it")
    _recreate_database(url)
    return build(p, url)


def _recreate_database(url: str) -> None:
    name = db.db_name(url)
    assert name not in db.FORBIDDEN_NAMES and not name.startswith("test")
    with psycopg.connect(db.maintenance_url(url), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    started = time.perf_counter()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "traceability.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=db.PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"migrate failed on {name}:\n{result.stdout}{result.stderr}")
    _say(f"world: created {name} and migrated it in {time.perf_counter() - started:.1f} s")


@dataclass
class Schema:
    """Constraints and indexes of the public schema, captured from the catalogue to be restored exactly."""

    constraints: list[tuple[str, str, str, str]]  # (table, name, type, definition)
    indexes: list[tuple[str, str, str, bool]]  # (table, name, definition, backs a constraint)

    @classmethod
    def capture(cls, conn: psycopg.Connection) -> Schema:
        constraints = conn.execute(
            """SELECT c.conrelid::regclass::text, c.conname, c.contype::text, pg_get_constraintdef(c.oid)
               FROM pg_constraint c WHERE c.connamespace = 'public'::regnamespace AND c.conrelid <> 0
               ORDER BY 1, 2"""
        ).fetchall()
        indexes = conn.execute(
            """SELECT i.tablename, i.indexname, i.indexdef,
                      EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass
                              AND c.contype IN ('p', 'u', 'x'))
               FROM pg_indexes i WHERE i.schemaname = 'public' ORDER BY 1, 2"""
        ).fetchall()
        return cls(constraints, indexes)

    def comparable(self) -> tuple[set, set]:
        return set(self.constraints), {(t, n, d) for t, n, d, _b in self.indexes}


class Loader:
    def __init__(self, conn: psycopg.Connection, tables: list[str]) -> None:
        self.conn, self.tables = conn, set(tables)
        self.schema = Schema.capture(conn)
        self.stats: list[tuple[str, str, str, int, float]] = []  # (step, table, object, rows, seconds)

    def record(self, step: str, table: str, obj: str, rows: int, seconds: float) -> None:
        self.stats.append((step, table, obj, rows, seconds))

    def strip(self) -> None:
        """Drop foreign keys touching the loaded tables, then their keys and indexes (not CHECKs or NOT NULLs)."""
        conn, started = self.conn, time.perf_counter()
        fks = conn.execute(
            """SELECT conrelid::regclass::text, conname FROM pg_constraint
               WHERE contype = 'f' AND connamespace = 'public'::regnamespace
                 AND (conrelid::regclass::text = ANY(%(t)s) OR confrelid::regclass::text = ANY(%(t)s))""",
            {"t": sorted(self.tables)},
        ).fetchall()
        self.fks = [(t, n, d) for t, n, typ, d in self.schema.constraints if typ == "f" and (t, n) in set(fks)]
        with conn.transaction():
            for table, name, _d in self.fks:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name))
                )
            for table, name, typ, _d in self.schema.constraints:
                if table in self.tables and typ in ("p", "u"):
                    conn.execute(
                        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name))
                    )
            for table, name, _d, backs in self.schema.indexes:
                if table in self.tables and not backs:
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        _say(
            f"world: dropped {len(self.fks)} foreign keys and the keys and indexes of {len(self.tables)} tables "
            f"in {time.perf_counter() - started:.1f} s"
        )

    def load(self, table: Table, plan: Plan) -> None:
        conn, total = self.conn, table.count(plan)
        columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
        started = time.perf_counter()
        rows = 0
        with _progress(total, table.name) as bar, conn.transaction():
            # TRUNCATE in the same transaction lets COPY FREEZE write the rows frozen and all-visible.
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table.name)))
            with conn.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(sql.Identifier(table.name), columns)
            ) as copy:
                chunk: list[str] = []
                for line in table.rows(plan):
                    chunk.append(line)
                    if len(chunk) == 20_000:
                        copy.write("".join(chunk))
                        rows += len(chunk)
                        bar.update(len(chunk))
                        chunk.clear()
                copy.write("".join(chunk))
                rows += len(chunk)
                bar.update(len(chunk))
        seconds = time.perf_counter() - started
        if rows != total:
            raise RuntimeError(f"{table.name}: wrote {rows} rows, planned {total}")
        self.record("copy", table.name, "", rows, seconds)
        index_seconds = self.restore(table.name, rows)
        _say(
            f"  {table.name:30} {rows:>12,} rows  COPY {seconds:8.1f} s = {rows / max(seconds, 1e-9):>10,.0f} rows/s"
            f"   keys+indexes {index_seconds:7.1f} s"
        )

    def derive(self, table: Derived) -> None:
        """Fill ``table`` from the loaded tables in one ``INSERT … SELECT``, then build its keys."""
        conn, started = self.conn, time.perf_counter()
        columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
        with conn.transaction():
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table.name)))
            rows = conn.execute(
                sql.SQL("INSERT INTO {} ({}) ").format(sql.Identifier(table.name), columns) + sql.SQL(table.select)
            ).rowcount
        seconds = time.perf_counter() - started
        self.record("insert", table.name, "", rows, seconds)
        index_seconds = self.restore(table.name, rows)
        _say(
            f"  {table.name:30} {rows:>12,} rows  INSERT … SELECT {seconds:8.1f} s"
            f"   keys+indexes {index_seconds:7.1f} s"
        )

    def restore(self, table: str, rows: int) -> float:
        """Primary key, unique constraints, then the other indexes of ``table``, each timed."""
        conn, spent = self.conn, 0.0
        todo = [
            (n, sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(t), sql.Identifier(n)) + sql.SQL(d))
            for t, n, typ, d in sorted(self.schema.constraints, key=lambda c: c[2] != "p")
            if t == table and typ in ("p", "u")
        ]
        todo += [(n, sql.SQL(d)) for t, n, d, backs in self.schema.indexes if t == table and not backs]
        for name, statement in todo:
            started = time.perf_counter()
            conn.execute(statement)
            conn.commit()
            seconds = time.perf_counter() - started
            spent += seconds
            self.record("index", table, name, rows, seconds)
        return spent

    def restore_fks(self) -> None:
        conn, started = self.conn, time.perf_counter()
        for table, name, definition in self.fks:
            t0 = time.perf_counter()
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
                + sql.SQL(definition)
            )
            conn.commit()
            self.record("foreign key", table, name, 0, time.perf_counter() - t0)
        _say(f"world: recreated {len(self.fks)} foreign keys (each validated) in {time.perf_counter() - started:.1f} s")

    def verify(self) -> None:
        before, after = self.schema.comparable(), Schema.capture(self.conn).comparable()
        for kind, b, a in (("constraints", before[0], after[0]), ("indexes", before[1], after[1])):
            if a != b:
                raise RuntimeError(
                    f"schema differs after the load: {kind} missing {sorted(b - a)[:5]}, extra {sorted(a - b)[:5]}"
                )


def _check_columns(conn: psycopg.Connection) -> None:
    """Every NOT NULL column without a default must be written: a migration may have added one since."""
    problems = []
    for table in [*TABLES, *DERIVED]:
        cols = dict(
            conn.execute(
                """SELECT column_name, is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'
               FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s""",
                [table.name],
            ).fetchall()
        )
        if not cols:
            problems.append(f"table {table.name} is missing")
            continue
        problems += [f"{table.name}.{c} does not exist" for c in table.columns if c not in cols]
        problems += [
            f"{table.name}.{c} is NOT NULL and not written by bench/world.py"
            for c, required in cols.items()
            if required and c not in table.columns
        ]
    if problems:
        raise SystemExit("the schema has changed since bench/world.py was written:\n  " + "\n  ".join(problems))


def build(p: Params, url: str) -> dict:
    db.django_setup()  # segment_input_key comes from traceability.services
    total_started = time.perf_counter()
    started = time.perf_counter()
    plan = Plan(p)
    plan_seconds = time.perf_counter() - started
    _say(
        f"world: planned {p.units:,} units, {plan.transformations:,} transformations, {len(plan.segments):,} segments, "
        f"{plan.containers:,} containers in {plan_seconds:.1f} s"
    )
    with db.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET synchronous_commit = off")
        conn.commit()
        _check_columns(conn)
        loader = Loader(conn, [t.name for t in [*TABLES, *DERIVED]])
        loader.record("plan", "", "", 0, plan_seconds)
        loader.strip()
        conn.commit()
        for table in TABLES:
            loader.load(table, plan)
        # Statistics first: without them (relallvisible above all) the planner hashes 10M unit ids where
        # walking the unit_id indexes of the frozen tables is ~4x faster. Default work_mem on purpose: a
        # large one makes the planner hash here too, slower on this machine.
        started = time.perf_counter()
        sources = sorted({s for d in DERIVED for s in d.sources})
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, sources))))
        conn.commit()
        loader.record("analyze", ", ".join(sources), "", 0, time.perf_counter() - started)
        for derived in DERIVED:
            loader.derive(derived)
        loader.restore_fks()
        loader.verify()
        started = time.perf_counter()
        for table in TABLES:
            key = table.columns[0]
            sequence = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", [table.name, key]).fetchone()[0]
            if sequence:
                conn.execute(
                    sql.SQL("SELECT setval(%s, coalesce(max({k}), 1), max({k}) IS NOT NULL) FROM {t}").format(
                        k=sql.Identifier(key), t=sql.Identifier(table.name)
                    ),
                    [sequence],
                )
        conn.commit()
        loader.record("sequences", "", "", 0, time.perf_counter() - started)
        conn.autocommit = True
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        vacuum = time.perf_counter() - started
        loader.record("vacuum analyze", "", "", 0, vacuum)
        _say(f"world: VACUUM (ANALYZE) in {vacuum:.1f} s")
        conn.autocommit = False
        total = time.perf_counter() - total_started
        loader.record("total", "", "", 0, total)
        with conn.transaction():
            conn.execute(
                """CREATE TABLE IF NOT EXISTS bench_build_stats (
                       seq int PRIMARY KEY, step text NOT NULL, table_name text NOT NULL, object text NOT NULL,
                       rows bigint NOT NULL, seconds double precision NOT NULL)"""
            )
            conn.execute("TRUNCATE bench_build_stats")
            with conn.cursor().copy("COPY bench_build_stats FROM STDIN") as copy:
                for seq, row in enumerate(loader.stats, start=1):
                    copy.write_row((seq, *row))
            extra = f"unit_lot_pairs={plan.unit_lot_pairs} loose_cartons={plan.loose_cartons}"
            conn.execute("CREATE TABLE IF NOT EXISTS bench_world (key text PRIMARY KEY, value text NOT NULL)")
            conn.execute(
                "INSERT INTO bench_world VALUES ('extra', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                [extra],
            )
            # The marker goes last: only a complete world carries it.
            conn.execute("UPDATE traceability_ledgerentry SET summary = %s WHERE position = 1", [p.marker])
        _say(f"world: built in {total:.1f} s ({total / 60:.1f} min)")
        return load_stats(url)


def load_stats(url: str) -> dict:
    """What the last build measured, and the world's sizes now."""
    with db.connect(url) as conn:
        stats = (
            conn.execute(
                "SELECT step, table_name, object, rows, seconds FROM bench_build_stats ORDER BY seq"
            ).fetchall()
            if conn.execute("SELECT to_regclass('bench_build_stats')").fetchone()[0]
            else []
        )
        extra = (
            dict(
                item.split("=")
                for item in (conn.execute("SELECT value FROM bench_world WHERE key = 'extra'").fetchone() or [""])[
                    0
                ].split()
            )
            if conn.execute("SELECT to_regclass('bench_world')").fetchone()[0]
            else {}
        )
        sizes = []
        for table in [*TABLES, *DERIVED]:
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))).fetchone()[0]
            heap, indexes = conn.execute(
                "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", [table.name, table.name]
            ).fetchone()
            sizes.append((table.name, rows, heap, indexes))
        db_size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        index_sizes = conn.execute(
            """SELECT tablename, indexname, pg_relation_size(quote_ident(indexname)::regclass)
               FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)""",
            [[t.name for t in [*TABLES, *DERIVED]]],
        ).fetchall()
        consignees = conn.execute("SELECT count(DISTINCT consignee_id) FROM packs_shipment").fetchone()[0]
    return {
        "stats": stats,
        "sizes": sizes,
        "db_size": db_size,
        "index_sizes": index_sizes,
        "extra": extra,
        "consignees_reached": consignees,
    }
