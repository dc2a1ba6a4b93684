"""factory_boy factories for the reference data; ledger facts are written through the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory

from cells.models import (
    CellFormat,
    CellLot,
    CellModel,
    Chemistry,
    Material,
    MaterialKind,
    MaterialLot,
    ModuleLot,
    Spec,
)
from packs.models import ProductModel, WorkOrder
from suppliers.models import Certificate, CertificateScheme, Organisation, OrganisationRole, Role, Site
from traceability.access.models import Grant, GrantScope
from traceability.gs1 import identifiers
from traceability.gs1.keys import with_check_digit


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    # ``role=`` (one) or ``roles=[…]`` (a set): they are rows of OrganisationRole, not fields.
    role = Role.BRAND
    roles = None
    country = "CN"
    gs1_company_prefix = factory.Sequence(lambda n: f"{6990000 + n}")

    @classmethod
    def _create(cls, model_class, *args, role=Role.BRAND, roles=None, all_grant=True, **kwargs):
        """A regulator gets an ``all`` grant (it reads the whole ledger) unless ``all_grant=False``."""
        organisation = super()._create(model_class, *args, **kwargs)
        held = sorted(set(roles or [role]))
        OrganisationRole.objects.bulk_create(OrganisationRole(organisation=organisation, role=r) for r in held)
        if Role.REGULATOR in held and all_grant:
            Grant.objects.create(regulator=organisation, scope=GrantScope.ALL)
        return organisation


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    owner = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Plant {n}")
    gln = factory.LazyAttributeSequence(lambda o, n: with_check_digit(f"{o.owner.gs1_company_prefix}{n:05d}"))


class CertificateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Certificate

    owner = factory.SubFactory(OrganisationFactory)
    scheme = CertificateScheme.CCC
    number = factory.Sequence(lambda n: f"20230116060{n:05d}")
    issuer = "CQC"
    scope = "Power banks"
    valid_from = dt.date(2023, 1, 1)
    valid_to = dt.date(2028, 1, 1)


class MaterialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Material

    owner = factory.SubFactory(OrganisationFactory, role=Role.MATERIAL_SUPPLIER)
    name = factory.Sequence(lambda n: f"Cathode powder {n}")
    kind = MaterialKind.CATHODE
    gtin = factory.LazyAttributeSequence(lambda o, n: with_check_digit(f"0{o.owner.gs1_company_prefix}{n:05d}"))


def _lot_identity(lot: object) -> str:
    return identifiers.Lgtin(gtin=lot.gtin, lot=lot.code).canonical


class MaterialLotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaterialLot

    material = factory.SubFactory(MaterialFactory)
    owner = factory.SelfAttribute("material.owner")
    gtin = factory.SelfAttribute("material.gtin")
    code = factory.Sequence(lambda n: f"ML{n:05d}")
    identity = factory.LazyAttribute(_lot_identity)


class CellModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CellModel

    owner = factory.SubFactory(OrganisationFactory, role=Role.CELL_MAKER)
    name = factory.Sequence(lambda n: f"CELL-{n}")
    chemistry = Chemistry.NMC
    format = CellFormat.C18650
    capacity_mah = 3350
    gtin = factory.LazyAttributeSequence(lambda o, n: with_check_digit(f"0{o.owner.gs1_company_prefix}{n + 50000:05d}"))


class CellLotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CellLot

    cell_model = factory.SubFactory(CellModelFactory)
    owner = factory.SelfAttribute("cell_model.owner")
    gtin = factory.SelfAttribute("cell_model.gtin")
    code = factory.Sequence(lambda n: f"CL{n:05d}")
    identity = factory.LazyAttribute(_lot_identity)


class ModuleLotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModuleLot

    owner = factory.SubFactory(OrganisationFactory, role=Role.MODULE_ASSEMBLER)
    gtin = factory.LazyAttributeSequence(lambda o, n: with_check_digit(f"0{o.owner.gs1_company_prefix}{n + 70000:05d}"))
    code = factory.Sequence(lambda n: f"MOD{n:05d}")
    identity = factory.LazyAttribute(_lot_identity)
    cells_per_module = 2


class ProductModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductModel

    owner = factory.SubFactory(OrganisationFactory, role=Role.BRAND)
    name = "PowerCore 10000"
    model_number = factory.Sequence(lambda n: f"A{1263 + n}")
    gtin = factory.LazyAttributeSequence(lambda o, n: with_check_digit(f"0{o.owner.gs1_company_prefix}{n + 1000:05d}"))
    capacity_mah = 10000


class WorkOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkOrder

    product_model = factory.SubFactory(ProductModelFactory)
    owner = factory.SelfAttribute("product_model.owner")
    site = factory.SubFactory(SiteFactory, owner=factory.SelfAttribute("..owner"))
    number = factory.Sequence(lambda n: f"WO-{n:05d}")
    started_at = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)


class SpecFactory(factory.django.DjangoModelFactory):
    """A limit of a material's lots (pass ``cell_model=`` and ``material=None`` for a cell model's)."""

    class Meta:
        model = Spec

    material = factory.SubFactory(MaterialFactory)
    cell_model = None
    owner = factory.LazyAttribute(lambda o: (o.material or o.cell_model).owner)
    property = factory.Sequence(lambda n: f"property_{n}")
    unit = "ppm"
    minimum = None
    maximum = Decimal("100")
