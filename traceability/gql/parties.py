"""Organisations, their sites and their certificates: the directory of the chain.

An organisation's name, slug, roles and party GLN, its sites and the certificates it holds (with what
they cover and their status history) are the directory's, not the ledger's secrets: any signed-in
caller may read them (the access policy treats a supplier as a subject anyone may name,
``subject_traceable``; a unit's backward trace shows every supplier's certificates). What each one
made or received is answered by the fields that trace. Of its memberships, how many members it has
in each role is its own members' and all-seeing regulators' to read (``members_counted``); who they
are, no one's.

Each relation a list renders per item is read through the request's loader of that relation
(``traceability.gql.loaders``): a page of lots asks for its owners in one batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import graphene
from django.db.models import Count, Prefetch
from graphene import relay
from graphql import GraphQLResolveInfo

from cells.models import CellModel as CellModelRow
from packs.models import ProductModel as ProductModelRow
from suppliers.models import Certificate as CertificateRow
from suppliers.models import CertificateScheme, CertificateStatus, MemberRole, Membership
from suppliers.models import CertificateStatusChange as StatusChangeRow
from suppliers.models import Organisation as OrganisationRow
from suppliers.models import Site as SiteRow
from traceability import genealogy
from traceability.access.policy import members_counted
from traceability.gql.context import Context, context_of, pk_of
from traceability.gql.loaders import loader


def _parties(context: Context, ids: list[int]) -> dict[int, genealogy.Party]:
    return genealogy.parties_by_id(ids)


def _sites_of(context: Context, organisation_ids: list[int]) -> dict[int, list[SiteRow]]:
    found: dict[int, list[SiteRow]] = {}
    for row in SiteRow.objects.filter(owner_id__in=organisation_ids).order_by("name", "pk"):
        found.setdefault(row.owner_id, []).append(row)
    return found


def _sites_by_id(context: Context, ids: list[int]) -> dict[int, SiteRow]:
    found = SiteRow.objects.in_bulk(ids)
    organisations_expected(context, (row.owner_id for row in found.values()))
    return found


def certificates_read() -> Any:
    """Certificates with what they cover and their history: five queries for any number of them."""
    return CertificateRow.objects.prefetch_related(
        Prefetch("product_models", ProductModelRow.objects.order_by("model_number", "pk")),
        Prefetch("cell_models", CellModelRow.objects.order_by("name", "pk")),
        Prefetch("sites", SiteRow.objects.order_by("name", "pk")),
        Prefetch("status_changes", StatusChangeRow.objects.order_by("changed_at", "pk")),
    )


def _certificates_of(context: Context, organisation_ids: list[int]) -> dict[int, list[CertificateRow]]:
    found: dict[int, list[CertificateRow]] = {}
    for certificate in certificates_read().filter(owner_id__in=organisation_ids).order_by("scheme", "number"):
        found.setdefault(certificate.owner_id, []).append(certificate)
    certificates_read_expect(context, [c for held in found.values() for c in held])
    return found


def certificates_read_expect(context: Context, certificates: Iterable[CertificateRow]) -> None:
    """Certificates (of ``certificates_read``) about to be rendered: the organisations they name
    (holder, issuer, the covered models' and sites' owners) are read in one batch."""
    named: set[int] = set()
    for certificate in certificates:
        named.add(certificate.owner_id)
        if certificate.issued_by_id is not None:
            named.add(certificate.issued_by_id)
        for covered in (*certificate.product_models.all(), *certificate.cell_models.all(), *certificate.sites.all()):
            named.add(covered.owner_id)
    organisations_expected(context, named)


def _members_of(context: Context, organisation_ids: list[int]) -> dict[int, Counter[str]]:
    """How many members each organisation has per role, of those the caller may count (none read of others)."""
    found: dict[int, Counter[str]] = {}
    counted = [pk for pk in organisation_ids if members_counted(context.actor, pk)]
    rows = Membership.objects.filter(organisation_id__in=counted).values("organisation_id", "role")
    for row in rows.annotate(n=Count("pk")).order_by():
        found.setdefault(row["organisation_id"], Counter())[row["role"]] = row["n"]
    return found


def party(context: Context, organisation_id: int | None) -> genealogy.Party | None:
    """An organisation through the request's loader (a page's owners are read in one batch)."""
    return None if organisation_id is None else loader(context, _parties).load(organisation_id)


def site(context: Context, site_id: int | None) -> SiteRow | None:
    return None if site_id is None else loader(context, _sites_by_id).load(site_id)


class MemberCount(graphene.ObjectType):
    """How many members an organisation has in one role (who they are is not public)."""

    role = graphene.String(required=True)
    count = graphene.Int(required=True)


class Organisation(graphene.ObjectType):
    """An organisation: a supplier, a brand, a distributor, a certification body, a regulator."""

    class Meta:
        interfaces = (relay.Node,)

    slug = graphene.String(required=True)
    name = graphene.String(required=True)
    roles = graphene.List(graphene.NonNull(graphene.String), required=True, description="Its roles, e.g. cell_maker.")
    pgln = graphene.String(description="Its party GLN (13 digits), when it has one.")
    sites = graphene.List(graphene.NonNull(lambda: Site), required=True)
    certificates = graphene.List(
        graphene.NonNull(lambda: Certificate), required=True, description="The certificates it holds."
    )
    members = graphene.List(
        graphene.NonNull(MemberCount),
        description=(
            "How many members it has, per role: for its own members and regulators who see all; null to anyone else."
        ),
    )

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, genealogy.Party)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> genealogy.Party | None:
        pk = pk_of(id)
        return party(context_of(info), pk) if pk is not None else None

    @staticmethod
    def resolve_roles(root: genealogy.Party, info: GraphQLResolveInfo) -> list[str]:
        return list(root.roles)

    @staticmethod
    def resolve_sites(root: genealogy.Party, info: GraphQLResolveInfo) -> list[SiteRow]:
        return loader(context_of(info), _sites_of).load(root.id) or []  # each site's owner is ``root``

    @staticmethod
    def resolve_certificates(root: genealogy.Party, info: GraphQLResolveInfo) -> list[CertificateRow]:
        return loader(context_of(info), _certificates_of).load(root.id) or []

    @staticmethod
    def resolve_members(root: genealogy.Party, info: GraphQLResolveInfo) -> list[dict[str, Any]] | None:
        context = context_of(info)
        if not members_counted(context.actor, root.id):
            return None
        counted = loader(context, _members_of).load(root.id) or Counter()
        return [{"role": role, "count": counted[role]} for role in MemberRole.values if counted[role]]


def organisations_expected(context: Context, ids: Iterable[int | None]) -> None:
    """A list about to render these organisations: read them, and what each shows (its sites,
    certificates and members, when asked), in one batch per relation."""
    wanted = [pk for pk in ids if pk is not None]
    for batch in (_parties, _sites_of, _certificates_of, _members_of):
        loader(context, batch).expect(wanted)


class Site(graphene.ObjectType):
    """A site of an organisation: a factory, a warehouse."""

    class Meta:
        interfaces = (relay.Node,)

    name = graphene.String(required=True)
    gln = graphene.String(description="Its GLN (13 digits), when it has one.")
    address = graphene.String(required=True)
    country = graphene.String(required=True, description="ISO 3166-1 alpha-2; empty when not known.")
    owner = graphene.NonNull(Organisation)

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, SiteRow)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> SiteRow | None:
        pk = pk_of(id)
        return site(context_of(info), pk) if pk is not None else None

    @staticmethod
    def resolve_owner(root: SiteRow, info: GraphQLResolveInfo) -> genealogy.Party | None:
        return party(context_of(info), root.owner_id)


CertificateSchemeEnum = graphene.Enum.from_enum(CertificateScheme, name="CertificateScheme")
CertificateStatusEnum = graphene.Enum.from_enum(CertificateStatus, name="CertificateStatus")


class CertificateStatusChange(graphene.ObjectType):
    """One change of a certificate's status (who changed it is the certifier's record, not shown)."""

    from_status = graphene.Field(CertificateStatusEnum, description="Null for its first entry.")
    to_status = graphene.NonNull(CertificateStatusEnum)
    reason = graphene.String(required=True)
    changed_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_from_status(root: StatusChangeRow, info: GraphQLResolveInfo) -> str | None:
        return root.from_status or None


class ProductModel(graphene.ObjectType):
    """A power-bank model (e.g. PowerCore 10000, model A1263)."""

    class Meta:
        interfaces = (relay.Node,)

    name = graphene.String(required=True)
    model_number = graphene.String(required=True)
    gtin = graphene.String()
    capacity_mah = graphene.Int()
    owner = graphene.NonNull(Organisation)

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, ProductModelRow)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> ProductModelRow | None:
        pk = pk_of(id)
        return product_model(context_of(info), pk) if pk is not None else None

    @staticmethod
    def resolve_owner(root: ProductModelRow, info: GraphQLResolveInfo) -> genealogy.Party | None:
        return party(context_of(info), root.owner_id)


class CellModel(graphene.ObjectType):
    """A cell model: chemistry, format, capacity."""

    class Meta:
        interfaces = (relay.Node,)

    name = graphene.String(required=True)
    chemistry = graphene.String(required=True)
    format = graphene.String(required=True, description="18650, 21700, pouch…")
    capacity_mah = graphene.Int(required=True)
    nominal_voltage = graphene.Float(required=True)
    gtin = graphene.String()
    owner = graphene.NonNull(Organisation)

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, CellModelRow)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> CellModelRow | None:
        pk = pk_of(id)
        return cell_model(context_of(info), pk) if pk is not None else None

    @staticmethod
    def resolve_owner(root: CellModelRow, info: GraphQLResolveInfo) -> genealogy.Party | None:
        return party(context_of(info), root.owner_id)


def _product_models_by_id(context: Context, ids: list[int]) -> dict[int, ProductModelRow]:
    found = ProductModelRow.objects.in_bulk(ids)
    organisations_expected(context, (row.owner_id for row in found.values()))
    return found


def _cell_models_by_id(context: Context, ids: list[int]) -> dict[int, CellModelRow]:
    found = CellModelRow.objects.in_bulk(ids)
    organisations_expected(context, (row.owner_id for row in found.values()))
    return found


def product_model(context: Context, pk: int | None) -> ProductModelRow | None:
    return None if pk is None else loader(context, _product_models_by_id).load(pk)


def product_models_expected(context: Context, ids: Iterable[int | None]) -> None:
    loader(context, _product_models_by_id).expect(pk for pk in ids if pk is not None)


def cell_model(context: Context, pk: int | None) -> CellModelRow | None:
    return None if pk is None else loader(context, _cell_models_by_id).load(pk)


def cell_models_expected(context: Context, ids: Iterable[int | None]) -> None:
    loader(context, _cell_models_by_id).expect(pk for pk in ids if pk is not None)


def sites_expected(context: Context, ids: Iterable[int | None]) -> None:
    loader(context, _sites_by_id).expect(pk for pk in ids if pk is not None)


def certificates_expected(context: Context, organisation_ids: Iterable[int]) -> None:
    loader(context, _certificates_of).expect(organisation_ids)


def certificates_of(context: Context, organisation_id: int) -> list[CertificateRow]:
    return loader(context, _certificates_of).load(organisation_id) or []


class Certificate(graphene.ObjectType):
    """A certificate (3C/CCC, UL 2056, UN 38.3, IEC 62133): its number, issuer, what it covers,
    validity, and its status with its history."""

    class Meta:
        interfaces = (relay.Node,)

    scheme = graphene.NonNull(CertificateSchemeEnum)
    number = graphene.String(required=True)
    issuer = graphene.String(required=True, description="The certification body, as printed.")
    issued_by = graphene.Field(Organisation, description="The certification body, when the ledger has it.")
    holder = graphene.NonNull(Organisation)
    scope = graphene.String(required=True, description="What it says it covers, in its own words.")
    product_models = graphene.List(graphene.NonNull(ProductModel), required=True)
    cell_models = graphene.List(graphene.NonNull(CellModel), required=True)
    sites = graphene.List(
        graphene.NonNull(Site), required=True, description="The holder's sites it covers; none: every site."
    )
    valid_from = graphene.Date(required=True)
    valid_to = graphene.Date(required=True)
    status = graphene.NonNull(CertificateStatusEnum)
    history = graphene.List(graphene.NonNull(CertificateStatusChange), required=True, description="Oldest first.")

    @classmethod
    def is_type_of(cls, root: Any, info: GraphQLResolveInfo) -> bool:
        return isinstance(root, CertificateRow)

    @classmethod
    def get_node(cls, info: GraphQLResolveInfo, id: str) -> CertificateRow | None:
        pk = pk_of(id)
        found = certificates_read().filter(pk=pk).first() if pk is not None else None
        if found is not None:
            certificates_read_expect(context_of(info), [found])
        return found

    @staticmethod
    def resolve_issued_by(root: CertificateRow, info: GraphQLResolveInfo) -> genealogy.Party | None:
        return party(context_of(info), root.issued_by_id)

    @staticmethod
    def resolve_holder(root: CertificateRow, info: GraphQLResolveInfo) -> genealogy.Party | None:
        return party(context_of(info), root.owner_id)

    @staticmethod
    def resolve_product_models(root: CertificateRow, info: GraphQLResolveInfo) -> list[ProductModelRow]:
        return list(root.product_models.all())

    @staticmethod
    def resolve_cell_models(root: CertificateRow, info: GraphQLResolveInfo) -> list[CellModelRow]:
        return list(root.cell_models.all())

    @staticmethod
    def resolve_sites(root: CertificateRow, info: GraphQLResolveInfo) -> list[SiteRow]:
        return list(root.sites.all())

    @staticmethod
    def resolve_history(root: CertificateRow, info: GraphQLResolveInfo) -> list[StatusChangeRow]:
        return list(root.status_changes.all())


class PartyQuery(graphene.ObjectType):
    organisation = graphene.Field(
        Organisation, slug=graphene.String(required=True), description="An organisation by its slug; null if none."
    )

    @staticmethod
    def resolve_organisation(root: None, info: GraphQLResolveInfo, slug: str) -> genealogy.Party | None:
        found = OrganisationRow.objects.filter(slug=slug).values_list("pk", flat=True).first()
        return party(context_of(info), found)
