"""``user add USERNAME --organisation SLUG [--role R] [--email …] [--token | --new-token]`` and ``user list``.

``add`` makes a user a member of an organisation (a ``Membership``), idempotently: the same
arguments again change nothing and say so. A user may belong to several organisations: naming a
second one adds a second membership, it does not move the first. A member with another role in that
organisation, or a user with another email, is refused, naming each field, unless ``--update`` is
given; options left out are neither compared nor changed. New users have no password: scripts use
an API token, and a person who signs in to the pages gets one from ``manage.py changepassword``.

API tokens belong to a membership (they act for its organisation), with a scope (``--scope read``
refuses every write; ``write``, the default, allows what the member's role allows) and an optional
expiry (``--expires-in-days N``). The ledger keeps only a token's hash, so a token is shown once.
``--token`` prints a new token when the membership has no active one; when it has one it prints
nothing and says so on standard error (it was shown when it was made, and a re-run's logs should
not hold a copy). ``--new-token`` revokes the membership's active tokens and prints a new one; the
old ones stop working at once. What happened is reported on standard error; standard output
carries only what a script reads, so the token is alone on the last (and only) line of it::

    token=$(python manage.py user add mes --organisation acme --token | tail -n1)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from suppliers.models import MemberRole, Membership, Organisation, TokenScope
from suppliers.services import RecordDiffers, RegistrationError, api_token_issue, membership_add
from traceability.management.base import RegistryCommand, plain


class Command(RegistryCommand):
    help = "Register users acting for an organisation, with their API token (add), and list them (list)."

    def add_options(self, actions: Any) -> None:
        add = actions.add_parser(
            "add",
            help="Register a user acting for an organisation; the same arguments again change nothing.",
            description=(
                "Register a user acting for an organisation. Running it again with the same arguments "
                "changes nothing. If the user exists with another organisation (or none) or another "
                "email, nothing changes and the command fails naming each field, unless --update is "
                "given. New users have no password: use an API token, or set one with "
                "'manage.py changepassword USERNAME'. Only a token is written to standard output."
            ),
        )
        add.add_argument("username")
        add.add_argument(
            "--organisation",
            required=True,
            help="Slug of an organisation the user acts for; another one adds a second membership.",
        )
        add.add_argument(
            "--role",
            choices=MemberRole.values,
            help="What the user may do for the organisation: viewer (reads only), qa (the default for a new user:"
            " records findings, captures events, runs traces and exports) or admin.",
        )
        add.add_argument("--email")
        tokens = add.add_mutually_exclusive_group()
        tokens.add_argument(
            "--token",
            action="store_true",
            help=(
                "Make the user an API token and print it, alone on the last line of standard output. A "
                "token is shown once: if the user has one already, nothing is printed (use --new-token)."
            ),
        )
        tokens.add_argument(
            "--new-token",
            action="store_true",
            help="Revoke the membership's API tokens and print a new one; the old ones stop working at once.",
        )
        add.add_argument(
            "--scope",
            choices=TokenScope.values,
            default=TokenScope.WRITE,
            help="Of a new token: read refuses every write; write (the default) allows what the role allows.",
        )
        add.add_argument(
            "--expires-in-days", type=int, metavar="N", help="Of a new token: it stops working N days from now."
        )
        add.add_argument("--update", action="store_true", help="Write the values that differ from the stored ones.")
        actions.add_parser(
            "list",
            help="One membership a line: username, organisation, role, email, how many active API tokens it has.",
        )

    def add(
        self,
        *,
        username: str,
        organisation: str,
        role: str | None,
        email: str | None,
        token: bool,
        new_token: bool,
        scope: str,
        expires_in_days: int | None,
        update: bool,
        **options: Any,
    ) -> None:
        found = Organisation.objects.filter(slug=organisation).first()
        if found is None:
            raise CommandError(f"user {username}: no organisation has the slug {organisation!r}")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError(f"user {username}: --expires-in-days must be 1 or more, got {expires_in_days}")
        expires_at = timezone.now() + dt.timedelta(days=expires_in_days) if expires_in_days else None
        existed = get_user_model().objects.filter(username=username).exists()
        try:
            # The user and their token together: a failure leaves no user without the token asked for.
            with transaction.atomic():
                done = membership_add(username=username, organisation=found, role=role, email=email, update=update)
                key = (
                    api_token_issue(membership=done.record, scope=scope, expires_at=expires_at, replace=new_token)
                    if token or new_token
                    else None
                )
        except RecordDiffers as exc:
            raise CommandError(f"{exc}; nothing changed (give --update to change them)") from None
        except RegistrationError as exc:
            raise CommandError(f"user {username}: {exc}") from None
        if done.created and not existed:
            self.stderr.write(f"user {username} created, acting for {organisation}", style_func=self.style.SUCCESS)
        elif done.created:
            self.stderr.write(
                f"user {username} now also acts for {organisation}"
                + (f" (updated: {', '.join(done.changed)})" if done.changed else ""),
                style_func=self.style.SUCCESS,
            )
        elif done.changed:
            self.stderr.write(f"user {username} updated: {', '.join(done.changed)}", style_func=self.style.SUCCESS)
        else:
            self.stderr.write(f"user {username} exists, unchanged", style_func=plain)
        if key is not None:
            self.stderr.write(
                f"user {username}: new API token for {organisation} on standard output"
                + ("; the previous one no longer works" if new_token else "")
                + " (it is not shown again)",
                style_func=self.style.SUCCESS,
            )
            self.stdout.write(key)
        elif token:
            self.stderr.write(
                f"user {username} has an API token for {organisation} already;"
                " it is not shown again (--new-token replaces it)",
                style_func=self.style.WARNING,
            )

    def list(self) -> None:
        now = timezone.now()
        unexpired = Q(tokens__expires_at__isnull=True) | Q(tokens__expires_at__gt=now)
        active = Q(tokens__revoked_at__isnull=True) & unexpired
        memberships: dict[int, list[Any]] = {}
        for membership in (
            Membership.objects.select_related("organisation")
            .annotate(active_tokens=Count("tokens", filter=active))
            .order_by("organisation__slug")
        ):
            memberships.setdefault(membership.user_id, []).append(membership)
        for user in get_user_model().objects.order_by("username"):
            for membership in memberships.get(user.pk) or [None]:
                slug = membership.organisation.slug if membership else "-"
                self.stdout.write(
                    "\t".join(
                        (
                            user.username,
                            slug,
                            membership.role if membership else "-",
                            user.email or "-",
                            f"{membership.active_tokens} token(s)" if membership else "no token",
                        )
                    )
                )
