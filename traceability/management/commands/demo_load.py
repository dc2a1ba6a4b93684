"""Load the demo world (idempotent) and make sure a demo administrator exists."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from suppliers.models import MemberRole, Membership, Organisation, Role
from traceability.access.models import GrantScope
from traceability.access.services import grant_add
from traceability.demo.world import (
    CONTAMINATED_LOT,
    QA_ORGANISATION,
    REGULATORS,
    DemoAlreadyLoaded,
    demo_contaminated_lot,
    demo_world_load,
)
from traceability.ledger.selectors import identifier_render

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Load the demo world modelled on the 2025 power-bank recalls (a second run changes nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--units", type=int, default=100_000, help="Units to make (default 100,000).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, units: int, no_progress: bool, **options) -> None:
        bar = tqdm(total=units * 3, unit="step", desc="demo world", disable=no_progress, dynamic_ncols=True)

        def progress(phase: str, done: int, total: int) -> None:
            bar.set_description(f"demo world: {phase}")
            bar.update(done - bar.n)

        try:
            summary = demo_world_load(units=units, progress=progress)
        except DemoAlreadyLoaded as exc:
            bar.close()
            self.stdout.write(f"{exc}; nothing to do.")
        else:
            bar.close()
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo world loaded at ledger position {summary.ledger_position}:"
                    f" {summary.organisations} organisations, {summary.lots} lots,"
                    f" {summary.work_orders} work orders, {summary.units:,} units,"
                    f" {summary.cartons:,} cartons, {summary.pallets} pallets, {summary.shipments} shipments."
                )
            )
        # The demo's regulators read the whole ledger, as a market surveillance authority's does
        # (the same grant again changes nothing).
        for regulator in Organisation.objects.with_role(Role.REGULATOR).filter(slug__in=REGULATORS):
            grant_add(regulator=regulator, scope=GrantScope.ALL)
        if lot := demo_contaminated_lot():
            # In the forms the API and EPCIS take (a finding's subject): the canonical key is the
            # ledger's own, which no interface accepts.
            self.stdout.write(
                f"Contaminated lot {CONTAMINATED_LOT}:\n"
                f"  EPC URN:      {identifier_render(lot, form='epc')}\n"
                f"  Digital Link: {identifier_render(lot, form='digital_link')}"
            )
        password = self._demo_admin_password()
        self.stdout.write(f"Admin login: {ADMIN_USERNAME} / {password}")
        if organisation := Organisation.objects.filter(slug=QA_ORGANISATION).first():
            # The API acts for the caller's organisation: without one, the printed login could
            # open the admin but record no finding.
            user = get_user_model().objects.get(username=ADMIN_USERNAME)
            Membership.objects.get_or_create(user=user, organisation=organisation, defaults={"role": MemberRole.ADMIN})
            self.stdout.write(f"In the API, {ADMIN_USERNAME} acts for {organisation.name}.")

    def _demo_admin_password(self) -> str:
        """Create the demo administrator once, with a random password kept in ``var/`` (mode 0600)."""
        password_file = settings.VAR_DIR / "demo-admin-password"
        User = get_user_model()
        if password_file.exists() and User.objects.filter(username=ADMIN_USERNAME).exists():
            return password_file.read_text().strip()
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=ADMIN_USERNAME, defaults={"is_staff": True, "is_superuser": True})
        user.set_password(password)
        user.save()
        password_file.write_text(password)
        password_file.chmod(0o600)
        return password
