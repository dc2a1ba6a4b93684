"""``user add USERNAME --organisation SLUG [--email …] [--token | --new-token]`` and ``user list``.

``add`` makes a user acting for an organisation (its ``Membership``), idempotently: the same
arguments again change nothing and say so. A user who exists with another organisation or email
is refused, naming each field, unless ``--update`` is given; options left out are neither compared
nor changed. New users have no password: scripts use an API token, and a person who signs in to
the pages gets one from ``manage.py changepassword USERNAME``.

API tokens are shown once. ``--token`` prints a new token when the user has none; when they have one
it prints nothing and says so on standard error (it was shown when it was made, and a re-run's logs
should not hold a copy). ``--new-token`` replaces the token and prints the new one; the old one stops
working at once. What happened is reported on standard error; standard output carries only what a
script reads, so the token is alone on the last (and only) line of standard output::

    token=$(python manage.py user add mes --organisation acme --token | tail -n1)
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from suppliers.models import MemberRole, Organisation
from suppliers.services import RecordDiffers, RegistrationError, api_token_issue, membership_add


class Command(BaseCommand):
    help = "Register users acting for an organisation, with their API token (add), and list them (list)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{add,list}")
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
        add.add_argument("--organisation", required=True, help="Slug of the organisation the user acts for.")
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
            help="Replace the user's API token with a new one and print it; the old one stops working at once.",
        )
        add.add_argument("--update", action="store_true", help="Write the values that differ from the stored ones.")
        actions.add_parser(
            "list", help="One user a line: username, organisation, role, email, whether they have an API token."
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "add":
            self._add(**options)
        else:
            self._list()

    def _add(
        self,
        *,
        username: str,
        organisation: str,
        role: str | None,
        email: str | None,
        token: bool,
        new_token: bool,
        update: bool,
        **options: Any,
    ) -> None:
        found = Organisation.objects.filter(slug=organisation).first()
        if found is None:
            raise CommandError(f"user {username}: no organisation has the slug {organisation!r}")
        try:
            # The user and their token together: a failure leaves no user without the token asked for.
            with transaction.atomic():
                done = membership_add(username=username, organisation=found, role=role, email=email, update=update)
                key = api_token_issue(user=done.record.user, replace=new_token) if token or new_token else None
        except RecordDiffers as exc:
            raise CommandError(f"{exc}; nothing changed (give --update to change them)") from None
        except RegistrationError as exc:
            raise CommandError(f"user {username}: {exc}") from None
        if done.created:
            self.stderr.write(f"user {username} created, acting for {organisation}", style_func=self.style.SUCCESS)
        elif done.changed:
            self.stderr.write(f"user {username} updated: {', '.join(done.changed)}", style_func=self.style.SUCCESS)
        else:
            self.stderr.write(f"user {username} exists, unchanged", style_func=_plain)
        if key is not None:
            self.stderr.write(
                f"user {username}: new API token on standard output"
                + ("; the previous one no longer works" if new_token else "")
                + " (it is not shown again)",
                style_func=self.style.SUCCESS,
            )
            self.stdout.write(key)
        elif token:
            self.stderr.write(
                f"user {username} has an API token already; it is not shown again (--new-token replaces it)",
                style_func=self.style.WARNING,
            )

    def _list(self) -> None:
        users = get_user_model().objects.select_related("membership__organisation", "auth_token").order_by("username")
        for user in users:
            membership = getattr(user, "membership", None)
            has_token = hasattr(user, "auth_token")
            self.stdout.write(
                "\t".join(
                    (
                        user.username,
                        membership.organisation.slug if membership else "-",
                        membership.role if membership else "-",
                        user.email or "-",
                        "token" if has_token else "no token",
                    )
                )
            )


def _plain(text: str) -> str:
    """Standard error's default style is the error colour; a report that nothing changed is no error."""
    return text
