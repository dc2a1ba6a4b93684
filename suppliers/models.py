"""Organisations of every role in the chain, their sites and their certificates.

Every record in the ledger is owned by one organisation (``Owned``); access rules build on that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy

gs1_company_prefix_validator = RegexValidator(
    r"^\d{4,12}$", "A GS1 Company Prefix is 4 to 12 digits.", code="invalid_company_prefix"
)
gln_validator = RegexValidator(r"^\d{13}$", "A GLN is 13 digits.", code="invalid_gln")


class Role(models.TextChoices):
    MATERIAL_SUPPLIER = "material_supplier", "Material supplier"
    CELL_MAKER = "cell_maker", "Cell maker"
    MODULE_ASSEMBLER = "module_assembler", "Module assembler"
    BRAND = "brand", "Brand / pack assembler"
    DISTRIBUTOR = "distributor", "Distributor / retailer"
    CARRIER = "carrier", "Carrier / airline"
    CERTIFICATION_BODY = "certification_body", "Certification body"
    # A regulator's access comes from its grants (``traceability.access.models.Grant``), not from this
    # role: the role only says what the organisation is.
    REGULATOR = "regulator", "Regulator"


def in_role_order(roles: Iterable[str]) -> list[str]:
    """``roles`` in ``Role``'s order, once each (how the ledger lists an organisation's roles)."""
    held = set(roles)
    return [role for role in Role.values if role in held]


class OrganisationQuerySet(models.QuerySet["Organisation"]):
    def with_role(self, role: str) -> OrganisationQuerySet:
        return self.filter(pk__in=OrganisationRole.objects.filter(role=role).values("organisation_id"))


class Organisation(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(
        max_length=80, unique=True, help_text="Scopes the organisation's own lot codes and serials."
    )
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    gs1_company_prefix = models.CharField(
        max_length=12,
        unique=True,
        null=True,
        blank=True,
        validators=[gs1_company_prefix_validator],
        help_text="Registered GS1 Company Prefix: fixes where EPC URNs split this organisation's GTINs and GLNs.",
    )
    pgln = models.CharField("party GLN", max_length=13, unique=True, null=True, blank=True, validators=[gln_validator])
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def role_names(self) -> list[str]:
        """Its roles in ``Role`` order; one query, or none after ``prefetch_related("roles")``."""
        return in_role_order(held.role for held in self.roles.all())


class OrganisationRole(models.Model):
    """One role an organisation plays in the chain; an organisation has a set of them (a cell maker
    that assembles modules, a brand with its own module line, is one organisation).

    A row per role rather than an array or JSON column: "the organisations with role R" is an index
    lookup on SQLite and PostgreSQL alike, and the pair is unique in both.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=32, choices=Role.choices, db_index=True)

    class Meta:
        ordering = ["organisation", "role"]
        constraints = [models.UniqueConstraint(fields=["organisation", "role"], name="organisation_role_unique")]

    def __str__(self) -> str:
        return f"{self.organisation}: {self.get_role_display()}"


class Owned(models.Model):
    """A record owned by one organisation; access rules are written against ``owner``."""

    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class Site(Owned):
    name = models.CharField(max_length=200)
    gln = models.CharField("GLN", max_length=13, null=True, blank=True, validators=[gln_validator])
    gln_extension = models.CharField(
        max_length=20, default="0", help_text="SGLN extension; 0 when the GLN alone names the site."
    )
    address = models.CharField(max_length=300, blank=True)
    country = models.CharField(max_length=2, blank=True)

    class Meta:
        ordering = ["owner__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["gln", "gln_extension"], name="site_unique_sgln"),
            models.UniqueConstraint(fields=["owner", "name"], name="site_unique_name_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"


class CertificateScheme(models.TextChoices):
    CCC = "ccc", "3C / CCC"
    UL_2056 = "ul2056", "UL 2056"
    UN_38_3 = "un38.3", "UN 38.3"
    IEC_62133 = "iec62133", "IEC 62133"


class CertificateStatus(models.TextChoices):
    VALID = "valid", gettext_lazy("Valid")
    SUSPENDED = "suspended", gettext_lazy("Suspended")
    REVOKED = "revoked", gettext_lazy("Revoked")
    EXPIRED = "expired", gettext_lazy("Expired")


class Certificate(Owned):
    """A certificate held by ``owner`` (the certified organisation), and what it covers.

    Coverage is structured, so "is this unit's 3C certificate valid" has one answer: the product
    models it covers (``ProductModel.certificates``, by the products' side: ``product_models`` here),
    the cell models (``cell_models``) and the holder's sites (``sites``; none named: every site).
    ``scope`` keeps the certificate's own words. The issuer is a registered certification body
    (``issued_by``) when the ledger has it; ``issuer`` keeps its name as printed, also for bodies not
    registered. Written through ``suppliers.services.certificate_register``.
    """

    scheme = models.CharField(max_length=16, choices=CertificateScheme.choices)
    number = models.CharField(max_length=64)
    issuer = models.CharField(max_length=200, help_text="The certification body as printed, e.g. CQC for 3C.")
    issued_by = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="certificates_issued",
        limit_choices_to={"roles__role": Role.CERTIFICATION_BODY},
        help_text="The certification body, when the ledger has it (an organisation with that role).",
    )
    scope = models.TextField(blank=True, help_text="What the certificate says it covers, in its own words.")
    # A string reference: reference data below ``cells`` imports nothing of it (layout contract).
    cell_models = models.ManyToManyField(
        "cells.CellModel", blank=True, related_name="certificates", help_text="The cell models it covers."
    )
    sites = models.ManyToManyField(
        Site,
        blank=True,
        related_name="certificates",
        help_text="The holder's sites it covers (the factories it names); none: every site of the holder.",
    )
    valid_from = models.DateField()
    valid_to = models.DateField()
    status = models.CharField(max_length=16, choices=CertificateStatus.choices, default=CertificateStatus.VALID)

    class Meta:
        ordering = ["scheme", "number"]
        constraints = [
            models.UniqueConstraint(fields=["scheme", "number"], name="certificate_unique_number"),
            models.CheckConstraint(
                condition=models.Q(valid_to__gte=models.F("valid_from")), name="certificate_valid_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_scheme_display()} {self.number}"


class CertificateStatusChange(models.Model):
    """One entry of a certificate's status history; written only by ``certificate_change_status``."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=CertificateStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=CertificateStatus.choices)
    reason = models.TextField(blank=True)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["certificate", "changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.certificate}: {self.from_status or '-'} → {self.to_status}"


class MemberRole(models.TextChoices):
    """What a user may do for the organisation they act for."""

    VIEWER = "viewer", "Viewer (reads only)"
    QA = "qa", "QA engineer (records findings, captures events, runs traces and exports)"
    ADMIN = "admin", "Organisation administrator"


class Membership(models.Model):
    """A user acting for an organisation, with their role in it: what they record is owned by it.

    A user may belong to several organisations (a consultant QA engineer, a group's two companies),
    one membership each; a request says which one it acts for (``traceability.access.permissions``).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="members")
    # Members made before roles existed could write; they stay QA engineers.
    role = models.CharField(max_length=8, choices=MemberRole.choices, default=MemberRole.QA)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} at {self.organisation}"

    @property
    def may_write(self) -> bool:
        return self.role in (MemberRole.QA, MemberRole.ADMIN)


class TokenScope(models.TextChoices):
    READ = "read", "Read (GET and the like; every write refused)"
    WRITE = "write", "Write (whatever the member's role allows)"


def api_key_hash(key: str) -> str:
    """What the ledger keeps of an API key: its SHA-256. Keys are 160 random bits, so a plain hash
    (no salt, no stretching) is as hard to reverse as guessing the key, and one indexed lookup finds it."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An API key for one membership: it authenticates the user and says the organisation they act
    for. The key itself is shown once, when it is made; the ledger keeps only its hash."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The key's first characters, to tell a member's tokens apart (as GitHub shows them); far too few to guess it.
    key_prefix = models.CharField(max_length=8, editable=False)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.WRITE)
    created_at = models.DateTimeField(editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: it does not expire.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["membership", "-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.key_prefix}… ({self.membership}, {self.scope})"

    def active_at(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
