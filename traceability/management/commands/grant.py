"""``grant add REGULATOR_SLUG (--all | --jurisdiction CC | --investigation N)`` and ``grant list``:
what regulators may read, from a script.

``add`` is idempotent: the same grant again changes nothing and says so. Only an ``all`` grant
widens what a regulator reads today (the whole ledger, read-only); jurisdiction and investigation
grants are recorded for the read policy to come (``traceability/access/models.py`` says what each
will cover).

What happened is reported on standard error; standard output carries only what a script reads
(the listing).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from suppliers.models import Organisation
from suppliers.services import RegistrationError
from traceability.access.models import Grant, GrantScope
from traceability.access.services import grant_add
from traceability.investigations.models import Investigation
from traceability.management.base import RegistryCommand, plain


class Command(RegistryCommand):
    help = "Grant a regulator what it may read (add) and list the grants (list)."

    def add_options(self, actions: Any) -> None:
        add = actions.add_parser(
            "add",
            help="Grant a regulator the whole ledger, a jurisdiction or an investigation; again changes nothing.",
        )
        add.add_argument("slug", help="The regulator organisation's slug.")
        cover = add.add_mutually_exclusive_group(required=True)
        cover.add_argument("--all", dest="whole", action="store_true", help="The whole ledger, read-only.")
        cover.add_argument("--jurisdiction", metavar="CC", help="A country, ISO 3166-1 alpha-2 (e.g. CN).")
        cover.add_argument("--investigation", metavar="N", type=int, help="One investigation, by its id.")
        actions.add_parser(
            "list", help="The active grants, one a line: regulator slug, cover (all, jurisdiction:CC, investigation:N)."
        )

    def add(
        self, *, slug: str, whole: bool, jurisdiction: str | None, investigation: int | None, **options: Any
    ) -> None:
        regulator = Organisation.objects.filter(slug=slug).first()
        if regulator is None:
            raise CommandError(f"no organisation {slug!r}: register it first (organisation add … --role regulator)")
        found: Investigation | None = None
        if investigation is not None:
            found = Investigation.objects.filter(pk=investigation).first()
            if found is None:
                raise CommandError(f"no investigation {investigation}")
        scope = GrantScope.INVESTIGATION
        if whole:
            scope = GrantScope.ALL
        elif jurisdiction is not None:
            scope = GrantScope.JURISDICTION
        try:
            done = grant_add(
                regulator=regulator,
                scope=scope,
                jurisdiction=jurisdiction.upper() if jurisdiction is not None else None,
                investigation=found,
            )
        except RegistrationError as exc:
            raise CommandError(f"grant to {slug}: {exc}") from None
        if done.created:
            self.stderr.write(f"{slug} granted {done.record.cover}", style_func=self.style.SUCCESS)
        else:
            self.stderr.write(f"{slug} holds {done.record.cover} already, unchanged", style_func=plain)

    def list(self) -> None:
        grants = Grant.objects.filter(revoked_at__isnull=True).select_related("regulator")
        for grant in grants.order_by("regulator__slug", "scope", "jurisdiction", "investigation_id"):
            self.stdout.write(f"{grant.regulator.slug}\t{grant.cover}")
