"""``grant add REGULATOR_SLUG (--all | --jurisdiction CC | --investigation N) [--expires WHEN]``,
``grant revoke REGULATOR_SLUG (--all | --jurisdiction CC | --investigation N)`` and ``grant list``:
what regulators may read, from a script.

``add`` is idempotent: the same grant again changes nothing and says so. ``revoke`` ends the active
grant of that cover (it is kept, with when it ended, as the record of who could read what); again,
or for a cover never granted, it changes nothing and says so. What each grant covers is in
``traceability/access/models.py``; the access policy enforces it.

What happened is reported on standard error; standard output carries only what a script reads
(the listing).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from django.core.management.base import CommandError
from django.db.models import Q
from django.utils import timezone

from suppliers.models import Organisation
from suppliers.services import RegistrationError
from traceability.access.models import Grant, GrantScope
from traceability.access.services import grant_add, grant_revoke
from traceability.investigations.models import Investigation
from traceability.management.base import RegistryCommand, plain


class Command(RegistryCommand):
    help = "Grant a regulator what it may read (add), end a grant (revoke) and list the active grants (list)."
    actions = ("add", "revoke", "list")

    def add_options(self, actions: Any) -> None:
        add = actions.add_parser(
            "add",
            help="Grant a regulator the whole ledger, a jurisdiction or an investigation; again changes nothing.",
        )
        _cover_arguments(add)
        add.add_argument(
            "--expires",
            metavar="WHEN",
            type=_moment,
            help="When the grant ends by itself: an ISO 8601 date or time (UTC unless it says), e.g. 2027-06-30.",
        )
        revoke = actions.add_parser(
            "revoke", help="End a regulator's active grant of that cover; one not active changes nothing."
        )
        _cover_arguments(revoke)
        actions.add_parser(
            "list",
            help="The active grants, one a line: regulator slug, cover (all, jurisdiction:CC, investigation:N)"
            " and, for one that expires, when.",
        )

    def add(
        self,
        *,
        slug: str,
        whole: bool,
        jurisdiction: str | None,
        investigation: int | None,
        expires: dt.datetime | None = None,
        **options: Any,
    ) -> None:
        regulator, cover = _cover(slug, whole, jurisdiction, investigation)
        try:
            done = grant_add(regulator=regulator, expires_at=expires, **cover)
        except RegistrationError as exc:
            raise CommandError(f"grant to {slug}: {exc}") from None
        if done.created:
            self.stderr.write(f"{slug} granted {done.record.cover}", style_func=self.style.SUCCESS)
        else:
            self.stderr.write(f"{slug} holds {done.record.cover} already, unchanged", style_func=plain)

    def revoke(
        self, *, slug: str, whole: bool, jurisdiction: str | None, investigation: int | None, **options: Any
    ) -> None:
        regulator, cover = _cover(slug, whole, jurisdiction, investigation)
        try:
            ended = grant_revoke(regulator=regulator, **cover)
        except RegistrationError as exc:
            raise CommandError(f"grant of {slug}: {exc}") from None
        if ended is None:
            named = _named(cover)
            self.stderr.write(f"{slug} holds no active grant of {named}, unchanged", style_func=plain)
        else:
            self.stderr.write(f"{slug} no longer holds {ended.cover}", style_func=self.style.SUCCESS)

    def list(self) -> None:
        grants = Grant.objects.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
        ordered = grants.select_related("regulator").order_by(
            "regulator__slug", "scope", "jurisdiction", "investigation_id"
        )
        for grant in ordered:
            expiry = f"\tuntil {grant.expires_at:%Y-%m-%dT%H:%M:%SZ}" if grant.expires_at else ""
            self.stdout.write(f"{grant.regulator.slug}\t{grant.cover}{expiry}")


def _cover_arguments(parser: Any) -> None:
    parser.add_argument("slug", help="The regulator organisation's slug.")
    cover = parser.add_mutually_exclusive_group(required=True)
    cover.add_argument("--all", dest="whole", action="store_true", help="The whole ledger, read-only.")
    cover.add_argument("--jurisdiction", metavar="CC", help="A country, ISO 3166-1 alpha-2 (e.g. CN).")
    cover.add_argument("--investigation", metavar="N", type=int, help="One investigation, by its id.")


def _cover(
    slug: str, whole: bool, jurisdiction: str | None, investigation: int | None
) -> tuple[Organisation, dict[str, Any]]:
    """The regulator and the cover the options name, as ``grant_add`` and ``grant_revoke`` take it."""
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
    return regulator, {
        "scope": scope,
        "jurisdiction": jurisdiction.upper() if jurisdiction is not None else None,
        "investigation": found,
    }


def _named(cover: dict[str, Any]) -> str:
    if cover["scope"] == GrantScope.JURISDICTION:
        return f"jurisdiction:{cover['jurisdiction']}"
    if cover["scope"] == GrantScope.INVESTIGATION:
        return f"investigation:{cover['investigation'].pk}"
    return GrantScope.ALL.value


def _moment(value: str) -> dt.datetime:
    """An ISO 8601 date or date and time; a naive one is UTC."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date or time, e.g. 2027-06-30") from None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)
