"""Regulators' grants: what a regulator may read beyond what any organisation reads.

A regulator is an organisation with the regulator role (``suppliers.Role.REGULATOR``); the role says
what it is, its grants say what it may read (``traceability.access.policy`` enforces them):

- ``all``: the whole ledger, read-only.
- ``jurisdiction`` (an ISO 3166-1 alpha-2 code): the units sold into that country (shipped to a
  consignee organisation or a site there) and everything upstream of them, and the investigations
  whose results reach such units, each read in full.
- ``investigation``: one investigation in full: its finding, runs, results, exports, attachments.

A regulator with several grants reads their union. A grant is never deleted: ``revoked_at`` ends
it (``grant revoke``), as ``expires_at`` does when it comes, and the row stays as the record of who
could read what, when.
"""

from __future__ import annotations

from django.db import models
from django.db.models import OuterRef, Q
from django.db.models.functions import Now
from django.utils import timezone

from suppliers.models import Organisation
from traceability.investigations.models import Investigation


class GrantScope(models.TextChoices):
    ALL = "all", "The whole ledger"
    JURISDICTION = "jurisdiction", "A jurisdiction"
    INVESTIGATION = "investigation", "An investigation"


class Grant(models.Model):
    regulator = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="grants")
    scope = models.CharField(max_length=16, choices=GrantScope.choices)
    jurisdiction = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2, for a jurisdiction grant")
    investigation = models.ForeignKey(Investigation, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="It covers nothing from then on.")

    class Meta:
        ordering = ["regulator", "granted_at", "id"]
        constraints = [
            # Each scope names exactly what it covers, and nothing else.
            models.CheckConstraint(
                condition=Q(scope=GrantScope.ALL, jurisdiction="", investigation__isnull=True)
                | Q(scope=GrantScope.JURISDICTION, investigation__isnull=True) & ~Q(jurisdiction="")
                | Q(scope=GrantScope.INVESTIGATION, jurisdiction="", investigation__isnull=False),
                name="grant_scope_names_its_cover",
            ),
            # One active grant of each cover: ``grant add`` again finds it (partial unique indexes,
            # on SQLite and PostgreSQL alike).
            models.UniqueConstraint(
                fields=["regulator"],
                condition=Q(scope=GrantScope.ALL, revoked_at__isnull=True),
                name="grant_all_active_once",
            ),
            models.UniqueConstraint(
                fields=["regulator", "jurisdiction"],
                condition=Q(scope=GrantScope.JURISDICTION, revoked_at__isnull=True),
                name="grant_jurisdiction_active_once",
            ),
            models.UniqueConstraint(
                fields=["regulator", "investigation"],
                condition=Q(scope=GrantScope.INVESTIGATION, revoked_at__isnull=True),
                name="grant_investigation_active_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.regulator}: {self.cover}"

    @property
    def cover(self) -> str:
        """What it covers, as ``grant list`` prints it: ``all``, ``jurisdiction:CN``, ``investigation:7``."""
        if self.scope == GrantScope.JURISDICTION:
            return f"jurisdiction:{self.jurisdiction}"
        if self.scope == GrantScope.INVESTIGATION:
            return f"investigation:{self.investigation_id}"
        return GrantScope.ALL.value


def active_grants(organisation_id: int | OuterRef) -> models.QuerySet[Grant]:
    """The grants of the organisation at ``organisation_id`` (an id or an ``OuterRef``) that cover
    something now: neither revoked nor expired. Now by the database's clock: the token's sign-in
    (``policy.token_signing_in``) asks it in a statement compiled once per process."""
    return Grant.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=Now()),
        regulator_id=organisation_id,
        revoked_at__isnull=True,
    )


def active_all_grants(organisation_id: int | OuterRef) -> models.QuerySet[Grant]:
    """The active ``all`` grants of the organisation at ``organisation_id`` (an id or an ``OuterRef``)."""
    return active_grants(organisation_id).filter(scope=GrantScope.ALL)
