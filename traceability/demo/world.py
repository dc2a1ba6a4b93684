"""A demo world modelled on the 2025 power-bank recalls.

A cathode lot of a material supplier is contaminated with metallic debris. It reached the cell
lots of two cell makers: an EVE-like maker whose cells fill a Romoss-like brand's power banks,
and an ATL-like maker whose cells fill an Anker-like brand's "PowerCore 10000" (model A1263).
Units are packed into cartons and pallets and shipped to a dozen distributors; one 3C certificate
is suspended. The genealogy is four levels deep (precursor → cathode → cell → module → unit) and
holds both definite links (unit build records) and potential ones (work-order-level records).

The whole world is written in one transaction: an interrupted load leaves nothing behind, and a
second load finds the first one's ledger entry and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from cells.models import (
    CellFormat,
    CellLot,
    CellModel,
    Chemistry,
    Inspection,
    InspectionMethod,
    InspectionOutcome,
    Material,
    MaterialKind,
    MaterialLot,
    ModuleLot,
)
from packs.models import (
    Container,
    ContainerKind,
    ContainerPacking,
    ProductModel,
    Shipment,
    ShipmentItem,
    WorkOrder,
)
from suppliers.models import (
    Certificate,
    CertificateScheme,
    CertificateStatus,
    Organisation,
    OrganisationRole,
    Role,
    Site,
)
from suppliers.services import certificate_change_status
from traceability.genealogy.commissioning import units_create, units_pack
from traceability.genealogy.models import RecordKind
from traceability.genealogy.writes import UnitBuild, transformation_record, unit_builds_record
from traceability.gs1 import identifiers, keys
from traceability.ledger.models import LedgerEntry, LedgerSource
from traceability.ledger.services import BATCH_SIZE, ledger_append

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; ``total`` counts units, three steps each."""

DEMO_SUMMARY = "Demo world: 2025 power-bank recalls"
CONTAMINATED_LOT = "NWC-2306-17"
# The brand whose QA team the demo administrator works for: its units carry the contaminated lot.
QA_ORGANISATION = "romax"
# The demo's regulators; ``demo_load`` grants them the whole ledger (grants are the access layer's).
REGULATORS = ("samr", "cpsa")
UNITS_PER_CARTON = 20
CARTONS_PER_PALLET = 40
_UTC = dt.UTC


class DemoAlreadyLoaded(Exception):
    pass


@dataclass(frozen=True)
class DemoSummary:
    ledger_position: int
    organisations: int
    lots: int
    work_orders: int
    units: int
    cartons: int
    pallets: int
    shipments: int
    contaminated_lot: str


def _at(day: dt.date, hour: int = 8) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=_UTC)


def demo_world_loaded() -> LedgerEntry | None:
    return LedgerEntry.objects.filter(source=LedgerSource.DEMO).order_by("position").first()


def demo_contaminated_lot() -> str | None:
    """The canonical identity of the lot the demo's recall is about, once the world is loaded."""
    return MaterialLot.objects.filter(code=CONTAMINATED_LOT).values_list("identity", flat=True).first()


def demo_world_load(*, units: int = 100_000, progress: Progress | None = None, seed: int = 2025) -> DemoSummary:
    """Write the demo world, all or nothing. Raises ``DemoAlreadyLoaded`` if it is there already."""
    if units < 100:
        raise ValueError("the demo world needs at least 100 units")
    report = progress or (lambda phase, done, total: None)
    with transaction.atomic(durable=True):
        if existing := demo_world_loaded():
            raise DemoAlreadyLoaded(f"the demo world is already loaded (ledger position {existing.position})")
        return _World(units=units, report=report, rng=random.Random(seed)).build()


class _World:
    def __init__(self, *, units: int, report: Progress, rng: random.Random) -> None:
        self.units, self.report, self.rng = units, report, rng
        self.steps_done, self.steps_total = 0, units * 3

    def step(self, phase: str, n: int) -> None:
        self.steps_done += n
        self.report(phase, self.steps_done, self.steps_total)

    def build(self) -> DemoSummary:
        self.report("organisations and certificates", 0, self.steps_total)
        self._organisations()
        self.entry = ledger_append(source=LedgerSource.DEMO, summary=DEMO_SUMMARY, organisation=self.orgs["anchorline"])
        self._certificates()
        self._materials_and_cells()
        self._units()
        self._packing_and_shipping()
        return DemoSummary(
            ledger_position=self.entry.position,
            organisations=len(self.orgs),
            lots=len(self.material_lots) + len(self.cell_lots) + len(self.module_lots),
            work_orders=len(self.work_orders),
            units=len(self.unit_ids),
            cartons=len(self.cartons),
            pallets=len(self.pallets),
            shipments=self.shipment_count,
            contaminated_lot=self.contaminated.identity,
        )

    # --- parties ---------------------------------------------------------------------------------

    def _organisations(self) -> None:
        specs = [
            ("northwind", "Northwind Cathode Materials", Role.MATERIAL_SUPPLIER, "CN", "6970011"),
            ("silverline", "Silverline Separator Co.", Role.MATERIAL_SUPPLIER, "JP", "4912345"),
            ("graphon", "Graphon Anode Materials", Role.MATERIAL_SUPPLIER, "CN", "6970012"),
            ("clearwave", "Clearwave Electrolyte", Role.MATERIAL_SUPPLIER, "KR", "8801234"),
            ("amperion", "Amperion Technology (ATL-like cell maker)", Role.CELL_MAKER, "CN", "6970021"),
            ("evergreen", "Evergreen Energy (EVE-like cell maker)", Role.CELL_MAKER, "CN", "6970022"),
            ("voltmod", "Voltmod Module Works", Role.MODULE_ASSEMBLER, "CN", "6970031"),
            ("anchorline", "Anchorline Innovations (Anker-like brand)", Role.BRAND, "CN", "6970041"),
            ("romax", "Romax Electronics (Romoss-like brand)", Role.BRAND, "CN", "6970042"),
            ("samr", "State Market Regulation Bureau (SAMR-like)", Role.REGULATOR, "CN", None),
            ("cpsa", "Consumer Product Safety Agency (CPSC-like)", Role.REGULATOR, "US", None),
        ]
        distributors = [
            "Harbor Electronics Retail",
            "Pacific Gadget Supply",
            "Jade Dragon Mall",
            "Northstar Mobile",
            "Lotus Digital",
            "Metro Charge Stores",
            "Bluewater Trading",
            "Summit Devices",
            "Golden Gate Accessories",
            "Riverbank Electronics",
            "Skyline Wholesale",
            "Orchid Online",
        ]
        for i, name in enumerate(distributors, start=1):
            specs.append((f"distributor-{i:02d}", name, Role.DISTRIBUTOR, "CN" if i % 3 else "US", f"69710{i:02d}"))
        self.orgs = {
            slug: Organisation(
                slug=slug,
                name=name,
                country=country,
                gs1_company_prefix=prefix,
                pgln=keys.gln(prefix, 1) if prefix else None,
            )
            for slug, name, role, country, prefix in specs
        }
        Organisation.objects.bulk_create(self.orgs.values())
        OrganisationRole.objects.bulk_create(
            OrganisationRole(organisation=self.orgs[slug], role=role) for slug, _, role, _, _ in specs
        )
        self.sites = {
            slug: Site.objects.create(
                owner=org,
                name=f"{org.name.split(' (')[0]} main plant",
                country=org.country,
                gln=keys.gln(org.gs1_company_prefix, 100) if org.gs1_company_prefix else None,
            )
            for slug, org in self.orgs.items()
        }
        self.distributors = [org for slug, org in self.orgs.items() if slug.startswith("distributor-")]

    def _certificates(self) -> None:
        o = self.orgs
        valid = (dt.date(2023, 1, 1), dt.date(2028, 1, 1))
        specs = [
            ("anchorline", CertificateScheme.CCC, "2023011606000101", "CQC", "PowerCore 10000 (A1263)"),
            ("anchorline", CertificateScheme.UL_2056, "E4837-2056-01", "UL Solutions", "PowerCore 10000 (A1263)"),
            ("romax", CertificateScheme.CCC, "2023011606000777", "CQC", "Romax Sense 10 (RMX-S10)"),
            ("romax", CertificateScheme.CCC, "2023011606000778", "CQC", "Romax Sense 20 Pro (RMX-S20P)"),
            ("amperion", CertificateScheme.UN_38_3, "UN383-AMP-3350", "TÜV Rheinland", "AMP-3350 cells"),
            ("amperion", CertificateScheme.IEC_62133, "IEC62133-AMP-3350", "TÜV Rheinland", "AMP-3350 cells"),
            ("evergreen", CertificateScheme.UN_38_3, "UN383-EVG-5000P", "SGS", "EVG-5000P cells"),
        ]
        self.certificates = {
            number: Certificate.objects.create(
                owner=o[slug],
                scheme=scheme,
                number=number,
                issuer=issuer,
                scope=scope,
                valid_from=valid[0],
                valid_to=valid[1],
            )
            for slug, scheme, number, issuer, scope in specs
        }
        expired = Certificate.objects.create(
            owner=o["evergreen"],
            scheme=CertificateScheme.IEC_62133,
            number="IEC62133-EVG-5000P",
            issuer="SGS",
            scope="EVG-5000P cells",
            valid_from=dt.date(2020, 6, 1),
            valid_to=dt.date(2024, 6, 1),
        )
        certificate_change_status(
            certificate=expired,
            status=CertificateStatus.EXPIRED,
            reason="validity ended",
            changed_at=_at(dt.date(2024, 6, 2)),
        )
        certificate_change_status(
            certificate=self.certificates["2023011606000777"],
            status=CertificateStatus.SUSPENDED,
            reason="Suspended by SAMR after metallic-debris findings in cells of lot family EVG-5000P",
            changed_at=_at(dt.date(2025, 6, 20)),
        )

    # --- lots and their genealogy ------------------------------------------------------------------

    def _lot(self, model: type, owner: Organisation, gtin: str, code: str, **fields) -> object:
        identity = identifiers.Lgtin(gtin=gtin, lot=code).canonical
        return model(owner=owner, identity=identity, code=code, gtin=gtin, site=self.sites[owner.slug], **fields)

    def _link(self, owner: Organisation, reference: str, day: dt.date, inputs: list, outputs: list) -> None:
        transformation_record(
            entry=self.entry,
            owner=owner,
            kind=RecordKind.MANUAL,
            reference=reference,
            occurred_at=_at(day),
            input_lot_ids=[lot.pk for lot in inputs],
            output_lot_ids=[lot.pk for lot in outputs],
        )

    def _materials_and_cells(self) -> None:
        o, rng = self.orgs, self.rng
        kinds = [
            ("northwind", "NCM811 precursor", MaterialKind.PRECURSOR, 1),
            ("northwind", "NCM811 cathode powder", MaterialKind.CATHODE, 2),
            ("silverline", "PE separator 12 µm", MaterialKind.SEPARATOR, 1),
            ("graphon", "Artificial graphite", MaterialKind.ANODE, 1),
            ("clearwave", "LiPF6 electrolyte", MaterialKind.ELECTROLYTE, 1),
        ]
        materials = {
            kind: Material.objects.create(
                owner=o[slug], name=name, kind=kind, gtin=keys.gtin14(o[slug].gs1_company_prefix, item)
            )
            for slug, name, kind, item in kinds
        }
        start = dt.date(2023, 1, 9)
        self.material_lots: list[MaterialLot] = []

        def material_lots(kind: str, prefix: str, n: int) -> list[MaterialLot]:
            material = materials[kind]
            lots = [
                self._lot(
                    MaterialLot,
                    material.owner,
                    material.gtin,
                    f"{prefix}-{2301 + i // 4:04d}-{i % 4 + 10:02d}",
                    material=material,
                    produced_from=_at(start + dt.timedelta(days=14 * i)),
                    produced_to=_at(start + dt.timedelta(days=14 * i + 3)),
                    quantity=2000,
                    uom="KGM",
                )
                for i in range(n)
            ]
            for lot in lots:
                lot.save()
            self.material_lots.extend(lots)
            return lots

        precursors = material_lots(MaterialKind.PRECURSOR, "NWP", 8)
        cathodes = material_lots(MaterialKind.CATHODE, "NWC", 16)
        cathodes[-1].code = CONTAMINATED_LOT  # keep the famous lot code stable whatever the scale
        cathodes[-1].identity = identifiers.Lgtin(gtin=cathodes[-1].gtin, lot=CONTAMINATED_LOT).canonical
        cathodes[-1].save(update_fields=["code", "identity"])
        self.contaminated = cathodes[-1]
        separators = material_lots(MaterialKind.SEPARATOR, "SLS", 10)
        anodes = material_lots(MaterialKind.ANODE, "GRA", 10)
        electrolytes = material_lots(MaterialKind.ELECTROLYTE, "CWE", 8)
        for i, cathode in enumerate(cathodes):
            self._link(o["northwind"], f"NW-CAL-{i:03d}", cathode.produced_from.date(), [precursors[i // 2]], [cathode])
        Inspection.objects.create(
            owner=o["evergreen"],
            lot=self.contaminated,
            method=InspectionMethod.CT,
            outcome=InspectionOutcome.FAIL,
            measurements={"max_particle_um": 45, "particles_per_kg": 12, "particle_material": "Fe/Cr (stainless)"},
            sample_size=20,
            inspected_at=_at(dt.date(2025, 6, 3)),
            notes="Metallic debris found in incoming cathode powder retained sample; root cause at calcination line 2.",
        )

        cell_models = {
            "amperion": CellModel.objects.create(
                owner=o["amperion"],
                name="AMP-3350",
                chemistry=Chemistry.NMC,
                format=CellFormat.C18650,
                capacity_mah=3350,
                gtin=keys.gtin14(o["amperion"].gs1_company_prefix, 3350),
            ),
            "evergreen": CellModel.objects.create(
                owner=o["evergreen"],
                name="EVG-5000P",
                chemistry=Chemistry.LIPO,
                format=CellFormat.POUCH,
                capacity_mah=5000,
                gtin=keys.gtin14(o["evergreen"].gs1_company_prefix, 5000),
            ),
        }
        n_cell_lots = max(20, self.units // 1000)
        clean = cathodes[:-1]
        self.cell_lots = {"amperion": [], "evergreen": []}
        for i in range(n_cell_lots):
            maker = "amperion" if i % 5 < 3 else "evergreen"
            day = dt.date(2023, 3, 1) + dt.timedelta(days=(i * 540) // n_cell_lots)
            lot = self._lot(
                CellLot,
                o[maker],
                cell_models[maker].gtin,
                f"{maker[:3].upper()}{day:%y%m%d}{i:04d}",
                cell_model=cell_models[maker],
                produced_from=_at(day),
                produced_to=_at(day, 20),
                quantity=50_000,
                uom="EA",
            )
            lot.save()
            self.cell_lots[maker].append(lot)
        # The contaminated cathode lot reached one Amperion lot and the Evergreen lots made while it lasted.
        tainted = {self.cell_lots["amperion"][len(self.cell_lots["amperion"]) // 2].pk}
        evergreen = self.cell_lots["evergreen"]
        tainted |= {
            lot.pk for lot in evergreen[len(evergreen) // 3 : len(evergreen) // 3 + max(2, len(evergreen) // 8)]
        }
        for lot in self.cell_lots["amperion"] + evergreen:
            cathode = self.contaminated if lot.pk in tainted else rng.choice(clean)
            inputs = [cathode, rng.choice(anodes), rng.choice(separators), rng.choice(electrolytes)]
            self._link(lot.owner, f"CELL-{lot.code}", lot.produced_from.date(), inputs, [lot])
            Inspection.objects.create(
                owner=lot.owner,
                lot=lot,
                method=InspectionMethod.XRAY,
                outcome=InspectionOutcome.PASS,
                measurements={"overhang_mm_min": 0.42, "max_particle_um": 0},
                sample_size=32,
                inspected_at=lot.produced_to,
            )
        self.tainted_cell_lots = tainted

        self.module_lots: list[ModuleLot] = []
        module_gtin = keys.gtin14(o["voltmod"].gs1_company_prefix, 2)
        for i in range(0, len(evergreen) - 1, 2):
            pair = evergreen[i : i + 2]
            module = self._lot(
                ModuleLot,
                o["voltmod"],
                module_gtin,
                f"VM2S-{i // 2:04d}",
                description="2-cell parallel module",
                cells_per_module=2,
                produced_from=pair[1].produced_to,
                produced_to=pair[1].produced_to + dt.timedelta(days=2),
                quantity=25_000,
                uom="EA",
            )
            module.save()
            self.module_lots.append(module)
            self._link(o["voltmod"], f"MOD-{module.code}", module.produced_from.date(), pair, [module])

    # --- products, work orders, units ----------------------------------------------------------------

    def _units(self) -> None:
        o = self.orgs
        c = self.certificates
        models = {
            "a1263": ProductModel.objects.create(
                owner=o["anchorline"],
                name="PowerCore 10000",
                model_number="A1263",
                capacity_mah=10000,
                gtin=keys.gtin14(o["anchorline"].gs1_company_prefix, 1263),
            ),
            "s10": ProductModel.objects.create(
                owner=o["romax"],
                name="Romax Sense 10",
                model_number="RMX-S10",
                capacity_mah=10000,
                gtin=keys.gtin14(o["romax"].gs1_company_prefix, 10),
            ),
            "s20p": ProductModel.objects.create(
                owner=o["romax"],
                name="Romax Sense 20 Pro",
                model_number="RMX-S20P",
                capacity_mah=20000,
                gtin=keys.gtin14(o["romax"].gs1_company_prefix, 20),
            ),
        }
        models["a1263"].certificates.set([c["2023011606000101"], c["E4837-2056-01"]])
        models["s10"].certificates.set([c["2023011606000777"]])
        models["s20p"].certificates.set([c["2023011606000778"]])
        # Half the units are Anchorline's (unit build records: definite); a quarter are Romax Sense 10
        # recorded per work order from 2-3 cell lots (potential); a quarter are Romax Sense 20 Pro,
        # each built from one module lot (definite, five levels from the precursor).
        plan = [
            ("a1263", self.units // 2, self.cell_lots["amperion"], "AL"),
            ("s10", self.units // 4, self.cell_lots["evergreen"], "RS"),
            ("s20p", self.units - self.units // 2 - self.units // 4, self.module_lots, "RP"),
        ]
        self.work_orders: list[WorkOrder] = []
        self.unit_ids: list[int] = []
        self.unit_times: list[dt.datetime] = []
        for key, count, input_lots, serial_prefix in plan:
            self._work_orders_for(models[key], count, input_lots, serial_prefix)

    def _work_orders_for(self, model: ProductModel, count: int, input_lots: list, serial_prefix: str) -> None:
        owner = model.owner
        per_order = 1_700
        orders = max(2, -(-count // per_order))
        window_start, window_days = dt.date(2023, 6, 5), 422  # the Romoss-like recall window, 2023-06-05 .. 2024-07-31
        made = 0
        for n in range(orders):
            size = count // orders + (1 if n < count % orders else 0)
            day = window_start + dt.timedelta(days=(n * window_days) // orders)
            # Each work order draws on the lots made around its time: a sliding window of three.
            pos = max(0, min(len(input_lots) - 3, (n * (len(input_lots) - 3)) // max(1, orders - 1)))
            lots = input_lots[pos : pos + 3]
            order = WorkOrder.objects.create(
                owner=owner,
                number=f"{model.model_number}-{day:%y%m}-{n:03d}",
                product_model=model,
                site=self.sites[owner.slug],
                started_at=_at(day),
                finished_at=_at(day + dt.timedelta(days=3)),
                planned_quantity=size,
            )
            self.work_orders.append(order)
            times = [_at(day, 8) + dt.timedelta(seconds=(3 * 86400 * i) // size) for i in range(size)]
            serials = [f"{serial_prefix}{day:%y%m}{made + i:07d}" for i in range(size)]
            ids = units_create(owner=owner, product_model=model, work_order=order, serials=serials, produced_at=times)
            made += size
            self.step("units", size)
            if model.model_number == "RMX-S10":
                transformation_record(
                    entry=self.entry,
                    owner=owner,
                    kind=RecordKind.WORK_ORDER,
                    reference=order.number,
                    occurred_at=order.started_at,
                    work_order_id=order.pk,
                    input_lot_ids=[lot.pk for lot in lots[: 2 + n % 2]],
                    output_unit_ids=ids,
                )
            else:
                builds = [
                    UnitBuild(
                        reference=f"{order.number}/{serial}",
                        unit_id=unit_id,
                        lot_ids=frozenset(
                            {lots[i % len(lots)].pk} | ({lots[(i + 1) % len(lots)].pk} if i % 7 == 0 else set())
                        ),
                        occurred_at=at,
                        work_order_id=order.pk,
                    )
                    for i, (unit_id, serial, at) in enumerate(zip(ids, serials, times, strict=True))
                ]
                for start in range(0, len(builds), BATCH_SIZE):
                    unit_builds_record(entry=self.entry, owner=owner, builds=builds[start : start + BATCH_SIZE])
            self.step("genealogy", size)
            self.unit_ids.extend(ids)
            self.unit_times.extend(times)

    # --- packing and shipping ---------------------------------------------------------------------------

    def _packing_and_shipping(self) -> None:
        self.cartons, self.pallets = [], []
        pallet_serial = 0
        # Units were created work order by work order, so consecutive ids share an owner.
        unit_owner = []
        for order in self.work_orders:
            unit_owner.extend([order.owner] * (order.planned_quantity or 0))
        packings = []
        cartons_by_owner: dict[int, list[Container]] = {}
        for carton_serial, start in enumerate(range(0, len(self.unit_ids), UNITS_PER_CARTON), start=1):
            owner = unit_owner[start]
            packed_at = self.unit_times[min(start + UNITS_PER_CARTON, len(self.unit_ids)) - 1] + dt.timedelta(hours=2)
            sscc = keys.sscc(owner.gs1_company_prefix, carton_serial)
            carton = Container(
                owner=owner,
                identity=identifiers.Sscc(sscc=sscc).canonical,
                sscc=sscc,
                kind=ContainerKind.CARTON,
                site=self.sites[owner.slug],
                created_at=packed_at,
            )
            self.cartons.append(carton)
            cartons_by_owner.setdefault(owner.pk, []).append(carton)
            packings.extend((carton, unit_id, packed_at) for unit_id in self.unit_ids[start : start + UNITS_PER_CARTON])
        Container.objects.bulk_create(self.cartons, batch_size=BATCH_SIZE)
        for i in range(0, len(packings), BATCH_SIZE):
            units_pack(packings=((carton.pk, unit_id, at) for carton, unit_id, at in packings[i : i + BATCH_SIZE]))
            self.step("packing", min(BATCH_SIZE, len(packings) - i))

        pallet_cartons = []
        for cartons in cartons_by_owner.values():
            for start in range(0, len(cartons), CARTONS_PER_PALLET):
                group = cartons[start : start + CARTONS_PER_PALLET]
                if len(group) < CARTONS_PER_PALLET // 2:
                    continue  # a short tail ships as loose cartons
                owner = group[0].owner
                pallet_serial += 1
                sscc = keys.sscc(owner.gs1_company_prefix, 900_000_000 + pallet_serial)
                pallet = Container(
                    owner=owner,
                    identity=identifiers.Sscc(sscc=sscc).canonical,
                    sscc=sscc,
                    kind=ContainerKind.PALLET,
                    site=self.sites[owner.slug],
                    created_at=group[-1].created_at,
                )
                self.pallets.append(pallet)
                pallet_cartons.append((pallet, group))
        Container.objects.bulk_create(self.pallets)
        ContainerPacking.objects.bulk_create(
            (
                ContainerPacking(parent=pallet, child=carton, packed_at=pallet.created_at)
                for pallet, group in pallet_cartons
                for carton in group
            ),
            batch_size=BATCH_SIZE,
        )
        on_pallets = {carton.pk for _, group in pallet_cartons for carton in group}
        loose = [carton for carton in self.cartons if carton.pk not in on_pallets]

        shipments, items = [], []
        for i, (pallet, _) in enumerate(pallet_cartons):
            consignee = self.distributors[i % len(self.distributors)]
            shipments.append(
                Shipment(
                    owner=pallet.owner,
                    reference=f"DA-{pallet.owner.slug[:3].upper()}-{i + 1:05d}",
                    consignee=consignee,
                    ship_from=self.sites[pallet.owner.slug],
                    ship_to=self.sites[consignee.slug],
                    shipped_at=pallet.created_at + dt.timedelta(days=2),
                    received_at=pallet.created_at + dt.timedelta(days=5),
                )
            )
            items.append([pallet])
        for j, carton in enumerate(loose):
            consignee = self.distributors[(j * 5) % len(self.distributors)]
            shipments.append(
                Shipment(
                    owner=carton.owner,
                    reference=f"DA-{carton.owner.slug[:3].upper()}-L{j + 1:05d}",
                    consignee=consignee,
                    ship_from=self.sites[carton.owner.slug],
                    ship_to=self.sites[consignee.slug],
                    shipped_at=carton.created_at + dt.timedelta(days=1),
                )
            )
            items.append([carton])
        Shipment.objects.bulk_create(shipments, batch_size=BATCH_SIZE)
        ShipmentItem.objects.bulk_create(
            (
                ShipmentItem(shipment=shipment, container=container)
                for shipment, group in zip(shipments, items, strict=True)
                for container in group
            ),
            batch_size=BATCH_SIZE,
        )
        self.shipment_count = len(shipments)
        self.report("done", self.steps_total, self.steps_total)
