"""What every layer may write: background jobs (progress and outcome on a database row) and the audit trail."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy


class JobStatus(models.TextChoices):
    QUEUED = "queued", gettext_lazy("Queued")
    RUNNING = "running", gettext_lazy("Running")
    SUCCEEDED = "succeeded", gettext_lazy("Succeeded")
    FAILED = "failed", gettext_lazy("Failed")


class JobKind(models.TextChoices):
    """What a job does: each kind has one handler (``core.jobs.job_handler``) in its domain."""

    TRACE_RUN = "trace_run", "Trace run"
    EXPORT = "export", "Export of a run's result"
    EPCIS_CAPTURE = "epcis_capture", "EPCIS capture or CSV import"
    COMMISSION_UNITS = "commission_units", "Commissioning of serials"


class Job(models.Model):
    """A unit of background work: its progress and outcome live here, not in a result backend."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, choices=JobKind.choices, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    phase = models.CharField(max_length=100, blank=True)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    owner = models.ForeignKey(
        "suppliers.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status}, {self.percent}%)"


class AuditAction(models.TextChoices):
    """What an audit entry records; the codes are stable (clients and exports filter on them)."""

    FINDING_RECORD = "finding.record", "Finding recorded"
    INVESTIGATION_TRANSITION = "investigation.transition", "Investigation moved on"
    RUN_START = "run.start", "Trace run started"
    EXPORT_START = "export.start", "Export started"
    EVIDENCE_ATTACH = "evidence.attach", "Evidence attached"
    INSPECTION_RECORD = "inspection.record", "Inspection results recorded"
    SPEC_SET = "spec.set", "Limit of a material or cell model set"
    RESPONSE_REVISE = "response.revise", "Supplier response (8D) revised"
    EPCIS_CAPTURE = "epcis.capture", "EPCIS document captured"
    CSV_IMPORT = "csv.import", "CSV file imported"
    CERTIFICATE_STATUS = "certificate.status", "Certificate status changed"
    ORGANISATION_ADD = "organisation.add", "Organisation registered"
    ORGANISATION_CHANGE = "organisation.change", "Organisation changed"
    MEMBERSHIP_ADD = "membership.add", "Member added"
    MEMBERSHIP_CHANGE = "membership.change", "Membership changed"
    TOKEN_ISSUE = "token.issue", "API token issued"
    TOKEN_REVOKE = "token.revoke", "API token revoked"
    GRANT_ADD = "grant.add", "Regulator granted access"
    GRANT_REVOKE = "grant.revoke", "Regulator grant revoked"
    READ_API = "read.api", "Read through the REST API"
    READ_EPCIS = "read.epcis", "Read through the EPCIS interface"
    READ_GRAPHQL = "read.graphql", "Query through the GraphQL API"
    WRITE_GRAPHQL = "write.graphql", "Mutation through the GraphQL API"
    READ_PAGES = "read.pages", "Read through the web pages"


class AuditSource(models.TextChoices):
    """The interface an action came through."""

    API = "api", gettext_lazy("REST API")
    EPCIS = "epcis", gettext_lazy("EPCIS")
    GRAPHQL = "graphql", gettext_lazy("GraphQL API")
    ADMIN = "admin", gettext_lazy("Admin")
    PAGES = "pages", gettext_lazy("Web pages")
    CLI = "cli", gettext_lazy("Command line")
    WORKER = "worker", gettext_lazy("Worker")


class AuditEntry(models.Model):
    """One action, appended to the audit trail and never changed: who did what, for which organisation,
    to which identifiers, when, through which interface and request.

    Written only by ``traceability.core.audit.audit_record``, inside the action's own transaction.
    On PostgreSQL a trigger refuses UPDATE and DELETE of these rows (migration 0012); nothing in the
    code updates or deletes them on any database.
    """

    at = models.DateTimeField(default=timezone.now)
    # Not a constraint: deleting a user must not touch the trail (Django's SET_NULL is an UPDATE,
    # which the trigger refuses), so the id may outlive the user; ``username`` keeps who it was.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    # Indexed as the first column of ``audit_organisation_newest``.
    organisation = models.ForeignKey(
        "suppliers.Organisation", null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    identifiers = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    source = models.CharField(max_length=8, choices=AuditSource.choices)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # An organisation's admins read its entries newest first; a regulator reads all of them.
            models.Index(fields=["organisation", "-at", "-id"], name="audit_organisation_newest"),
            models.Index(fields=["-at", "-id"], name="audit_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} by {self.username or '-'}"
