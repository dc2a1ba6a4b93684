"""The admin keeps ledger facts as they were recorded: nobody edits or deletes them, a correction is
a retraction appended to the ledger, certificates change status only through their service, and
staff see their own organisation's records only (another's answer 404)."""

from __future__ import annotations

import io
import json

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import reverse

from cells.models import Lot
from packs.models import Shipment, Unit
from suppliers.admin import OrganisationScopedAdminMixin
from suppliers.models import (
    ApiToken,
    Certificate,
    CertificateStatus,
    CertificateStatusChange,
    MemberRole,
    Membership,
    Organisation,
    Role,
    Site,
)
from tests.factories import CertificateFactory, OrganisationFactory, SiteFactory
from tests.trace_world import AT, build_world
from traceability import genealogy
from traceability.core.jobs import job_step
from traceability.events.corrections import transformations_retract_by_operator
from traceability.events.models import EpcisEvent
from traceability.events.services import capture_submit
from traceability.genealogy.commissioning import units_create
from traceability.genealogy.models import Transformation
from traceability.genealogy.writes import GenealogyError
from traceability.investigations.models import Finding
from traceability.investigations.services import finding_record
from traceability.ledger.models import LedgerEntry, LedgerSource

pytestmark = pytest.mark.django_db

APPS = ("suppliers", "cells", "packs", "traceability")

#: Ledger facts (label, how to find one in the trace world): view only for everyone.
LEDGER_FACTS = [
    ("packs.Unit", lambda w: Unit.objects.get(pk=w.u[1])),
    ("cells.Lot", lambda w: Lot.objects.get(pk=w.c1.pk)),
    ("cells.MaterialLot", lambda w: w.m1),
    ("cells.CellLot", lambda w: w.c1),
    ("cells.ModuleLot", lambda w: w.mod1),
    ("packs.WorkOrder", lambda w: w.work_order),
    ("packs.Container", lambda w: w.k1),
    ("packs.UnitPacking", lambda w: apps.get_model("packs.UnitPacking").objects.order_by("pk").first()),
    ("packs.ContainerPacking", lambda w: apps.get_model("packs.ContainerPacking").objects.get()),
    ("packs.Shipment", lambda w: Shipment.objects.get(reference="DA-1")),
    ("packs.ShipmentItem", lambda w: apps.get_model("packs.ShipmentItem").objects.order_by("pk").first()),
    ("traceability.Transformation", lambda w: w.t_wo),
    ("traceability.LotLink", lambda w: apps.get_model("traceability.LotLink").objects.order_by("pk").first()),
    ("traceability.UnitLink", lambda w: apps.get_model("traceability.UnitLink").objects.get()),
    ("traceability.LedgerEntry", lambda w: w.entry),
]


def admin_url(obj, view: str) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[quote(obj.pk)])


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def row(obj) -> dict:
    return type(obj)._base_manager.filter(pk=obj.pk).values().get()


def affected(lot) -> dict[str, str]:
    """Serial -> exposure of every unit the lot reaches now."""
    forward = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(), seed_lot_ids=[lot.pk])
    found = {a.unit_id: a.definite for a in genealogy.all_affected_units(forward)}
    serials = dict(Unit.objects.filter(pk__in=found).values_list("pk", "serial"))
    return {serials[unit]: "definite" if definite else "potential" for unit, definite in found.items()}


def staff_of(organisation: Organisation, *permissions: str):
    """A staff user acting for ``organisation`` with the given ``app_label.codename`` permissions."""
    user = get_user_model().objects.create_user(username=f"staff-{organisation.slug}", is_staff=True)
    Membership.objects.create(user=user, organisation=organisation)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def _held(job) -> None:
    """Leave a finding's trace run queued: these tests read the admin, not the run."""


# --- ledger facts are read-only, for superusers too ---------------------------------------------------


def test_every_admin_scopes_its_rows_to_organisations():
    # given
    registered = {m: a for m, a in admin.site._registry.items() if m._meta.app_label in APPS}

    # when
    unscoped = [m._meta.label for m, a in registered.items() if not isinstance(a, OrganisationScopedAdminMixin)]
    targets = {
        (m._meta.label, path): m if path == "pk" else get_fields_from_path(m, path)[-1].related_model
        for m, a in registered.items()
        for path in a.organisation_paths
    }

    # then every admin is scoped, and every path it scopes by ends at an organisation
    assert unscoped == []
    assert {key: Organisation for key in targets} == targets
    operators_only = {m._meta.label for m, a in registered.items() if not a.organisation_paths}
    assert operators_only == {
        "traceability.LedgerHead",
        "traceability.Segment",
        "traceability.SegmentInput",
        "traceability.RepeatedUnit",
        "traceability.LearntCompanyPrefix",
        "traceability.AuditEntry",  # every organisation's entries; an organisation's admins read theirs in the API
    }


@pytest.mark.parametrize(("label", "find"), LEDGER_FACTS, ids=[label for label, _ in LEDGER_FACTS])
def test_a_superuser_cannot_change_or_delete_a_ledger_fact(admin_client, label, find):
    # given
    w = build_world()
    obj = find(w)
    before = row(obj)

    # when
    page = admin_client.get(admin_url(obj, "change"))
    change = admin_client.post(admin_url(obj, "change"), {"serial": "EDITED", "code": "EDITED", "reference": "X"})
    delete_page = admin_client.get(admin_url(obj, "delete"))
    delete = admin_client.post(admin_url(obj, "delete"), {"post": "yes"})
    add = admin_client.get(reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_add"))

    # then the page shows the row without a save button, and every write is refused, changing nothing
    assert page.status_code == 200
    assert 'name="_save"' not in page.text and 'name="_continue"' not in page.text
    assert (change.status_code, delete_page.status_code, delete.status_code, add.status_code) == (403, 403, 403, 403)
    assert row(obj) == before


@pytest.mark.parametrize("label", ["packs.Unit", "cells.CellLot", "packs.Shipment", "traceability.Transformation"])
def test_no_bulk_delete_action_on_ledger_facts(admin_client, label):
    # given
    build_world()
    model = apps.get_model(label)
    count = model.objects.count()

    # when
    response = admin_client.post(
        changelist_url(model),
        {
            "action": "delete_selected",
            "_selected_action": list(model.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
        follow=True,
    )

    # then
    assert response.status_code == 200
    assert "delete_selected" not in response.text
    assert model.objects.count() == count


# --- reference data: editable, never deleted while named ------------------------------------------------


def test_reference_data_stays_editable(admin_client):
    # given
    site = SiteFactory(name="Plant 1", country="CN")

    # when
    response = admin_client.post(
        admin_url(site, "change"),
        {"owner": site.owner.pk, "name": "Plant 1 (Shenzhen)", "gln": site.gln, "gln_extension": "0", "country": "CN"},
    )

    # then
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.name == "Plant 1 (Shenzhen)"


def test_a_site_that_only_units_name_is_not_deleted(admin_client):
    # given a site only units name (their key to it has no constraint, so nothing else would protect it)
    w = build_world()
    site = SiteFactory(owner=w.brand)
    with transaction.atomic():
        units_create(
            owner=w.brand,
            product_model=w.work_order.product_model,
            serials=["S-1"],
            produced_at=AT,
            site=site,
        )

    # when
    page = admin_client.get(admin_url(site, "delete"))
    response = admin_client.post(admin_url(site, "delete"), {"post": "yes"})

    # then
    assert "Cannot delete site" in page.text
    assert "Unit: S-1" in page.text
    assert response.status_code == 200
    assert Site.objects.filter(pk=site.pk).exists()


# --- a correction is a retraction ------------------------------------------------------------------------


def test_the_retraction_action_appends_one_entry_and_the_trace_drops_the_units(admin_client, admin_user):
    # given the work order's record links C2 and C4 to U4..U6; C4 also built U7
    w = build_world()
    assert affected(w.c4) == {"U4": "potential", "U5": "potential", "U6": "potential", "U7": "definite"}
    entries = LedgerEntry.objects.count()

    # when
    response = admin_client.post(
        changelist_url(Transformation),
        {"action": "retract", "_selected_action": [w.t_wo.pk], "reason": "C2 was never on that line"},
        follow=True,
    )

    # then
    assert response.status_code == 200
    entry = LedgerEntry.objects.order_by("-position").first()
    assert LedgerEntry.objects.count() == entries + 1
    assert (entry.source, entry.actor, entry.organisation) == (LedgerSource.MANUAL, admin_user, w.brand)
    w.t_wo.refresh_from_db()
    assert (w.t_wo.retracted_position_id, w.t_wo.retraction_reason) == (entry.position, "C2 was never on that line")
    assert f"1 record(s) retracted at ledger position {entry.position}." in response.text
    assert affected(w.c4) == {"U7": "definite"}
    # and a trace at the position before still sees what was recorded then
    earlier = genealogy.forward_trace(snapshot=genealogy.ledger_snapshot(entry.position - 1), seed_lot_ids=[w.c4.pk])
    assert genealogy.affected_counts(earlier) == (1, 3)


def test_the_retraction_action_refuses_a_retracted_record_and_a_missing_reason(admin_client):
    # given
    w = build_world()
    admin_client.post(
        changelist_url(Transformation), {"action": "retract", "_selected_action": [w.t_wo.pk], "reason": "wrong"}
    )
    entries = LedgerEntry.objects.count()

    # when
    again = admin_client.post(
        changelist_url(Transformation),
        {"action": "retract", "_selected_action": [w.t_wo.pk, w.t_refurb.pk], "reason": "still wrong"},
        follow=True,
    )
    blank = admin_client.post(
        changelist_url(Transformation),
        {"action": "retract", "_selected_action": [w.t_refurb.pk], "reason": "  "},
        follow=True,
    )

    # then nothing was written, and each says why
    assert LedgerEntry.objects.count() == entries
    assert not Transformation.objects.get(pk=w.t_refurb.pk).retracted
    assert (
        f"Nothing retracted: Work-order record {w.work_order.number} (id {w.t_wo.pk}) was already retracted"
        f" at ledger position {entries}." in again.text
    )
    assert "Nothing retracted: give the reason for the retraction." in blank.text


def test_a_retraction_needs_a_reason_and_known_records():
    # given
    w = build_world()

    # when / then
    with pytest.raises(GenealogyError, match="needs its reason"):
        transformations_retract_by_operator(transformation_ids=[w.t_wo.pk], reason=" ", user=None)
    with pytest.raises(GenealogyError, match="no record with id 987654 in the ledger"):
        transformations_retract_by_operator(transformation_ids=[w.t_wo.pk, 987654], reason="wrong", user=None)
    assert not Transformation.objects.get(pk=w.t_wo.pk).retracted


def _capture(owner, *events: dict) -> None:
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T00:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }
    made = capture_submit(owner=owner, document=io.BytesIO(json.dumps(document).encode()), submit=lambda job: None)
    job_step(job_id=made.job_id, expected_done=0, enqueue=lambda *_: None)
    made.refresh_from_db()
    assert made.problems == []


def _grouped(owner, event_id: str, lot: str, serial: str, day: str) -> dict:
    """One event of transformationID group "urn:uuid:line-7": lot ``lot`` into unit ``serial``."""
    prefix = owner.gs1_company_prefix
    return {
        "type": "TransformationEvent",
        "eventID": event_id,
        "eventTime": f"2024-02-{day}T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "transformationID": "urn:uuid:line-7",
        "inputQuantityList": [{"epcClass": f"urn:epc:class:lgtin:{prefix}.022222.{lot}", "quantity": 10}],
        "outputEPCList": [f"urn:epc:id:sgtin:{prefix}.011111.{serial}"],
    }


def test_retracting_an_epcis_record_declares_its_events_so_the_group_does_not_bring_them_back():
    # given a transformationID group's first event, recorded from EPCIS
    owner = OrganisationFactory()
    _capture(owner, _grouped(owner, "urn:uuid:e1", "L1", "U1", "01"))
    record = EpcisEvent.objects.get(event_id="urn:uuid:e1").record

    # when an operator retracts its record, and the group's next event arrives
    entry = transformations_retract_by_operator(transformation_ids=[record.pk], reason="L1 mislabelled", user=None)
    _capture(owner, _grouped(owner, "urn:uuid:e2", "L2", "U2", "02"))

    # then the first event is declared erroneous at the retraction, and stays out of the group
    first = EpcisEvent.objects.get(event_id="urn:uuid:e1")
    assert first.declared_at == entry.recorded_at
    assert first.declaration == {"declarationTime": entry.recorded_at.isoformat().replace("+00:00", "Z")}
    assert affected(Lot.objects.get(code="L1")) == {}
    assert affected(Lot.objects.get(code="L2")) == {"U2": "definite"}


def test_retracting_a_record_declares_its_owners_events_only_though_another_shares_their_event_id():
    # given two organisations' events under one eventID (eventIDs are unique per organisation)
    a, b = OrganisationFactory(), OrganisationFactory()
    _capture(a, _grouped(a, "urn:uuid:e1", "L1", "U1", "01"))
    _capture(b, _grouped(b, "urn:uuid:e1", "M1", "V1", "01"))
    a_event, b_event = (EpcisEvent.objects.get(event_id="urn:uuid:e1", owner=o) for o in (a, b))

    # when an operator retracts A's record
    transformations_retract_by_operator(transformation_ids=[a_event.record_id], reason="L1 mislabelled", user=None)

    # then A's event is declared erroneous, B's is not, and B's lot still reaches its unit
    a_event.refresh_from_db()
    b_event.refresh_from_db()
    assert (a_event.declared_at is not None, b_event.declared_at) == (True, None)
    assert affected(Lot.objects.get(code="L1")) == {}
    assert affected(Lot.objects.get(code="M1")) == {"V1": "definite"}


def test_a_group_whose_events_were_all_declared_erroneous_records_its_next_event():
    # given a transformationID group's only event, declared erroneous through EPCIS
    owner = OrganisationFactory()
    first = _grouped(owner, "urn:uuid:e1", "L1", "U1", "01")
    _capture(owner, first)
    _capture(owner, {**first, "errorDeclaration": {"declarationTime": "2024-02-10T00:00:00Z"}})

    # when the group's next event arrives
    _capture(owner, _grouped(owner, "urn:uuid:e2", "L2", "U2", "02"))

    # then it is recorded on its own, under the group's reference "recorded again"
    record = EpcisEvent.objects.get(event_id="urn:uuid:e2").record
    assert record.reference.startswith("urn:uuid:line-7 (recorded again at ")
    assert affected(Lot.objects.get(code="L1")) == {}
    assert affected(Lot.objects.get(code="L2")) == {"U2": "definite"}


# --- certificates change status through their service only -----------------------------------------------


def test_a_certificate_status_changes_only_through_the_action_with_history(admin_client, admin_user):
    # given
    certificate = CertificateFactory()
    url = admin_url(certificate, "change")
    form = admin_client.get(url).context["adminform"].form
    # An empty choice (no registered issuer) is posted as a browser posts it: not at all.
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    for inline in admin_client.get(url).context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data |= {management.add_prefix(name): management[name].value() for name in management.fields}

    # when the form is posted with another issuer, validity and status, then the action revokes it
    edited = admin_client.post(
        url, {**data, "issuer": "CQC Beijing", "valid_to": "2099-12-31", "status": CertificateStatus.REVOKED}
    )
    after_edit = Certificate.objects.get(pk=certificate.pk)
    acted = admin_client.post(
        changelist_url(Certificate),
        {"action": "revoke", "_selected_action": [certificate.pk], "reason": "SAMR notice 2025-14"},
    )

    # then the edit changed nothing (a registered certificate is read only); the action changed its
    # status, with one history entry
    assert edited.status_code == 302
    assert (after_edit.issuer, after_edit.valid_to, after_edit.status) == (
        certificate.issuer,
        certificate.valid_to,
        CertificateStatus.VALID,
    )
    assert acted.status_code == 302
    certificate.refresh_from_db()
    assert certificate.status == CertificateStatus.REVOKED
    history = list(
        CertificateStatusChange.objects.filter(certificate=certificate).values_list(
            "from_status", "to_status", "reason", "changed_by"
        )
    )
    assert history == [(CertificateStatus.VALID, CertificateStatus.REVOKED, "SAMR notice 2025-14", admin_user.pk)]


def test_a_certificate_cannot_be_deleted(admin_client):
    # given
    certificate = CertificateFactory()

    # when
    page = admin_client.get(admin_url(certificate, "delete"))
    response = admin_client.post(admin_url(certificate, "delete"), {"post": "yes"})

    # then
    assert (page.status_code, response.status_code) == (403, 403)
    assert Certificate.objects.filter(pk=certificate.pk).exists()


# --- staff see their organisation's records only -----------------------------------------------------------


@pytest.fixture()
def two_brands():
    """Brands A and B, each with a finding, shipments to a distributor, and B shipping to A."""
    a, b = build_world(), build_world()
    for w in (a, b):
        w.finding = finding_record(
            owner=w.brand, subject=w.m1, category="metallic_debris", severity="high", description="Fe", submit=_held
        )
    b.to_a = Shipment.objects.create(owner=b.brand, reference="DA-9", consignee=a.brand, shipped_at=AT)
    return a, b


def test_staff_list_their_organisations_findings_only(client, two_brands):
    # given
    a, b = two_brands
    client.force_login(staff_of(a.brand, "traceability.view_finding"))

    # when
    listing = client.get(changelist_url(Finding))
    own = client.get(admin_url(a.finding, "change"))
    foreign = client.get(admin_url(b.finding, "change"))
    unknown = client.get(reverse("admin:traceability_finding_change", args=[987654]))

    # then
    assert list(listing.context["cl"].result_list) == [a.finding]
    # the owner filter would list only their own organisation, so it is not offered at all
    assert [spec.field_path for spec in listing.context["cl"].filter_specs] == ["category", "severity", "subject_kind"]
    assert own.status_code == 200
    assert (foreign.status_code, unknown.status_code) == (404, 404)


def test_staff_list_shipments_they_sent_or_received_only(client, two_brands):
    # given
    a, b = two_brands
    client.force_login(staff_of(a.brand, "packs.view_shipment"))

    # when
    listing = client.get(changelist_url(Shipment))
    received = client.get(admin_url(b.to_a, "change"))
    foreign = client.get(admin_url(Shipment.objects.get(owner=b.brand, reference="DA-1"), "change"))

    # then
    assert {(s.owner_id, s.reference) for s in listing.context["cl"].result_list} == {
        (a.brand.pk, "DA-1"),
        (a.brand.pk, "DA-2"),
        (b.brand.pk, "DA-9"),
    }
    assert received.status_code == 200
    assert foreign.status_code == 404


def test_staff_do_not_see_what_no_organisation_owns(client, two_brands):
    # given staff with the view permission on segments, shared by every brand's units
    a, _ = two_brands
    client.force_login(staff_of(a.brand, "traceability.view_segment"))

    # when
    response = client.get(reverse("admin:traceability_segment_changelist"))

    # then
    assert response.status_code == 403


def test_staff_cannot_record_reference_data_for_another_organisation(client, two_brands):
    # given
    a, b = two_brands
    client.force_login(staff_of(a.brand, "suppliers.add_site", "suppliers.view_site"))

    # when
    foreign = client.post(
        reverse("admin:suppliers_site_add"), {"owner": b.brand.pk, "name": "Annex", "gln_extension": "0"}
    )
    own = client.post(reverse("admin:suppliers_site_add"), {"owner": a.brand.pk, "name": "Annex", "gln_extension": "0"})

    # then
    assert foreign.status_code == 200
    assert "Select a valid choice" in foreign.text
    assert own.status_code == 302
    assert list(Site.objects.filter(name="Annex").values_list("owner_id", flat=True)) == [a.brand.pk]


def test_the_ledger_facts_shown_to_staff_are_scoped_too(client, two_brands):
    # given
    a, b = two_brands
    client.force_login(staff_of(a.brand, "packs.view_unit", "traceability.view_transformation"))

    # when
    units = client.get(changelist_url(Unit))
    records = client.get(changelist_url(Transformation))
    foreign_unit = client.get(admin_url(Unit.objects.get(pk=b.u[1]), "change"))

    # then
    assert {u.owner_id for u in units.context["cl"].result_list} == {a.brand.pk}
    assert len(units.context["cl"].result_list) == 8
    assert {t.owner_id for t in records.context["cl"].result_list} == {a.brand.pk}
    assert foreign_unit.status_code == 404


# --- members and their keys are not staff's to hand out ----------------------------------------------


def test_staff_cannot_make_a_token_that_signs_in_as_a_colleague():
    # given a staff member of brand A allowed to add tokens, and a colleague (an admin of A)
    brand = OrganisationFactory(role=Role.BRAND)
    staff = staff_of(brand, "suppliers.add_apitoken", "suppliers.view_apitoken")
    colleague = Membership.objects.create(
        user=get_user_model().objects.create_user(username="colleague"), organisation=brand, role=MemberRole.ADMIN
    )
    client = Client()
    client.force_login(staff)
    # when it asks for a key for the colleague's membership
    response = client.post(
        "/admin/suppliers/apitoken/add/",
        {"membership": colleague.pk, "scope": "write", "expires_at_0": "", "expires_at_1": ""},
    )
    # then the form refuses the choice, and no token exists
    assert response.status_code == 200
    assert "membership" in response.context["adminform"].form.errors
    assert not ApiToken.objects.exists()
    # while a key for its own membership is made
    own = staff.memberships.get()
    client.post(
        "/admin/suppliers/apitoken/add/",
        {"membership": own.pk, "scope": "read", "expires_at_0": "", "expires_at_1": ""},
    )
    assert list(ApiToken.objects.values_list("membership", flat=True)) == [own.pk]


def test_staff_cannot_add_a_user_to_its_organisation_or_change_a_role():
    # given a staff member of brand A with every membership permission, and another company's user
    brand = OrganisationFactory(role=Role.BRAND)
    staff = staff_of(brand, "suppliers.add_membership", "suppliers.change_membership", "suppliers.view_membership")
    outsider = get_user_model().objects.create_user(username="outsider")
    client = Client()
    client.force_login(staff)
    own = staff.memberships.get()
    before = list(Membership.objects.values_list("user", "organisation", "role").order_by("pk"))
    # when
    added = client.post(
        "/admin/suppliers/membership/add/", {"user": outsider.pk, "organisation": brand.pk, "role": "admin"}
    )
    raised = client.post(
        f"/admin/suppliers/membership/{own.pk}/change/",
        {"user": staff.pk, "organisation": brand.pk, "role": "admin"},
    )
    # then both are refused and nothing changed; its organisation's members can still be read
    assert (added.status_code, raised.status_code) == (403, 403)
    assert list(Membership.objects.values_list("user", "organisation", "role").order_by("pk")) == before
    assert client.get("/admin/suppliers/membership/").status_code == 200


# --- certificates and memberships change through their services, audited -----------------------------


def _status_of(certificate) -> str:
    return Certificate.objects.values_list("status", flat=True).get(pk=certificate.pk)


def test_the_holders_staff_cannot_lift_a_suspension_of_its_certificate():
    # given a certificate a certification body suspended, and its holder's staff allowed to change certificates
    from suppliers.models import CertificateStatus, Role
    from suppliers.services import certificate_change_status

    body = OrganisationFactory(role=Role.CERTIFICATION_BODY)
    certificate = CertificateFactory(issued_by=body)
    certificate_change_status(certificate=certificate, status=CertificateStatus.SUSPENDED, reason="CQC audit")
    staff = staff_of(certificate.owner, "suppliers.view_certificate", "suppliers.change_certificate")
    client = Client()
    client.force_login(staff)
    history = CertificateStatusChange.objects.count()
    # when it asks to reinstate it, and edits its validity
    listing = client.get(changelist_url(Certificate))
    acted = client.post(
        changelist_url(Certificate),
        {"action": "reinstate", "_selected_action": [certificate.pk], "reason": "we fixed it"},
        follow=True,
    )
    page = client.get(admin_url(certificate, "change"))
    # then no status action is offered, the one posted is refused, and nothing of it is editable
    assert listing.status_code == 200 and 'value="reinstate"' not in listing.text
    assert acted.status_code == 200
    assert _status_of(certificate) == CertificateStatus.SUSPENDED
    assert CertificateStatusChange.objects.count() == history
    assert not set(page.context["adminform"].form.fields) & {"valid_from", "valid_to", "number", "status"}


def test_the_issuers_staff_suspend_a_certificate_it_issued_with_a_reason_history_and_audit():
    # given the certification body's staff, and a certificate it issued to a brand, and one another body issued
    from suppliers.models import CertificateStatus, Role
    from traceability.core.models import AuditAction, AuditEntry

    body = OrganisationFactory(role=Role.CERTIFICATION_BODY)
    other_body = OrganisationFactory(role=Role.CERTIFICATION_BODY)
    issued, others = CertificateFactory(issued_by=body), CertificateFactory(issued_by=other_body)
    staff = staff_of(body, "suppliers.view_certificate", "suppliers.change_certificate")
    client = Client()
    client.force_login(staff)
    # when
    response = client.post(
        changelist_url(Certificate),
        {"action": "suspend", "_selected_action": [issued.pk, others.pk], "reason": "CQC audit 2025-3"},
        follow=True,
    )
    # then its own is suspended, with history and an audit entry naming its staff; the other is not its to see
    assert response.status_code == 200
    assert (_status_of(issued), _status_of(others)) == (CertificateStatus.SUSPENDED, CertificateStatus.VALID)
    change = CertificateStatusChange.objects.get(certificate=issued)
    assert (change.to_status, change.reason, change.changed_by) == ("suspended", "CQC audit 2025-3", staff)
    entry = AuditEntry.objects.get(action=AuditAction.CERTIFICATE_STATUS)
    assert (entry.user, entry.source, entry.detail["to"]) == (staff, "admin", "suspended")


def test_a_certificate_added_in_the_admin_is_registered_by_the_service_and_a_bad_one_is_refused(
    admin_client, admin_user
):
    # given a holder
    from suppliers.models import CertificateScheme
    from traceability.core.models import AuditAction, AuditEntry

    holder = OrganisationFactory()
    url = reverse("admin:suppliers_certificate_add")
    form = {
        "owner": holder.pk,
        "scheme": CertificateScheme.CCC,
        "number": "2024010709999999",
        "issuer": "CQC",
        "scope": "Power banks",
        "valid_from": "2024-01-01",
        "valid_to": "2029-01-01",
    }
    # when one ending before it starts is added, then a good one
    refused = admin_client.post(url, {**form, "valid_to": "2023-01-01"})
    inlines = admin_client.get(url).context["inline_admin_formsets"]
    for inline in inlines:  # the status history's, empty: posted as a browser posts it
        management = inline.formset.management_form
        form |= {management.add_prefix(name): management[name].value() for name in management.fields}
    added = admin_client.post(url, form)
    # then the first is refused on its field, and the second registered: its history starts, audited
    assert refused.status_code == 200
    assert "is before valid_from" in str(refused.context["adminform"].form.errors["valid_to"])
    assert added.status_code == 302, added.context["adminform"].form.errors
    certificate = Certificate.objects.get()
    assert list(certificate.status_changes.values_list("from_status", "to_status", "reason", "changed_by")) == [
        ("", "valid", "registered", admin_user.pk)
    ]
    assert AuditEntry.objects.filter(action=AuditAction.CERTIFICATE_STATUS, user=admin_user).count() == 1


def test_an_operators_membership_changes_in_the_admin_are_audited(admin_client, admin_user):
    # given an organisation and a user
    from traceability.core.models import AuditAction, AuditEntry

    organisation = OrganisationFactory()
    user = get_user_model().objects.create_user(username="newcomer")
    # when the operator adds them as a viewer, makes them QA, then removes them
    added = admin_client.post(
        reverse("admin:suppliers_membership_add"), {"user": user.pk, "organisation": organisation.pk, "role": "viewer"}
    )
    membership = Membership.objects.get(user=user)
    changed = admin_client.post(admin_url(membership, "change"), {"role": "qa"})
    removed = admin_client.post(admin_url(membership, "delete"), {"post": "yes"})
    # then each is in the audit trail, naming the operator
    assert (added.status_code, changed.status_code, removed.status_code) == (302, 302, 302)
    assert not Membership.objects.filter(user=user).exists()
    entries = [e for e in AuditEntry.objects.order_by("pk") if e.identifiers == ["user:newcomer"]]
    assert [(e.action, e.user, e.source, e.detail.get("role")) for e in entries] == [
        (AuditAction.MEMBERSHIP_ADD, admin_user, "admin", "viewer"),
        (AuditAction.MEMBERSHIP_CHANGE, admin_user, "admin", ["viewer", "qa"]),
        (AuditAction.MEMBERSHIP_CHANGE, admin_user, "admin", ["qa", None]),
    ]
