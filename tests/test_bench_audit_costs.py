"""The bench's audit-trail case times entries of a finding nobody recorded: it must leave none of
them in the audit log, which holds only what happened."""

from __future__ import annotations

import pytest

from bench.cases import audit_costs
from tests.trace_world import build_world
from traceability.core.audit import AuditAction
from traceability.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_the_audit_cost_case_leaves_only_the_reads_it_made_in_the_audit_log():
    # given a world with a lot that reaches units
    build_world()
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    # when
    costs = audit_costs(21)
    # then its timed entries are gone; what it left are the bench regulator's reads, which happened
    left = AuditEntry.objects.exclude(pk__in=before)
    assert not left.filter(action=AuditAction.FINDING_RECORD).exists()
    assert left.filter(action=AuditAction.READ_API).count() == 22  # the warm-up and 21 timed reads
    assert set(costs) == {"alone", "in_write", "read_with", "read_without", "added"}
