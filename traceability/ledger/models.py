"""The ledger that orders every write: its head (the lock that serialises writers), its entries, and
the company prefixes learnt from partners' URNs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from suppliers.models import Organisation


class LedgerSource(models.TextChoices):
    DEMO = "demo", "Demo world"
    EPCIS = "epcis", "EPCIS capture"
    CSV = "csv", "CSV import"
    MANUAL = "manual", "Manual entry"
    JOB = "job", "Background job"


class LedgerHead(models.Model):
    """The single row whose lock serialises ledger writes; ``position`` is the last one taken."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    position = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="ledgerhead_singleton")]

    def __str__(self) -> str:
        return f"Ledger head at {self.position}"


class LedgerEntry(models.Model):
    """One committed write to the ledger; its position is what trace runs record to be reproducible."""

    position = models.BigIntegerField(primary_key=True)
    recorded_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=LedgerSource.choices)
    summary = models.CharField(max_length=300)
    organisation = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-position"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"#{self.position} {self.summary}"


class LearntCompanyPrefix(models.Model):
    """A GS1 Company Prefix seen spelled out in an EPC URN a partner sent.

    A Digital Link does not say where the company prefix ends, so URNs rendered for its digits use
    the prefixes registered by organisations, then these, then GS1's published length table.
    """

    prefix = models.CharField(max_length=12, primary_key=True)
    learnt_from = models.CharField(max_length=200, help_text="The first URN that spelled it out.")
    learnt_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prefix"]

    def __str__(self) -> str:
        return self.prefix
