"""``organisation add SLUG --name NAME --role ROLE[,ROLE…] …`` and ``organisation list``: organisations from a script.

A fresh ledger needs an organisation before ``import_epcis --owner SLUG`` can record anything; this
registers one without the admin. ``add`` is idempotent: the same arguments again change nothing and
say so. Different values for an organisation that exists are refused, naming each field, unless
``--update`` is given; options left out are neither compared nor changed.

What happened is reported on standard error; standard output carries only what a script reads
(the listing).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from suppliers.models import Organisation, Role
from suppliers.services import RecordDiffers, RegistrationError, organisation_add
from traceability.management.base import RegistryCommand, plain


class Command(RegistryCommand):
    help = "Register organisations (add) and list them (list)."

    def add_options(self, actions: Any) -> None:
        add = actions.add_parser(
            "add",
            help="Register an organisation; the same arguments again change nothing.",
            description=(
                "Register an organisation. Running it again with the same arguments changes nothing. "
                "If the organisation exists with other values, nothing changes and the command fails "
                "naming each field that differs, unless --update is given. Options left out are "
                "neither compared nor changed."
            ),
        )
        add.add_argument("slug", help="Its key in the ledger, e.g. for import_epcis --owner.")
        add.add_argument("--name", required=True)
        add.add_argument(
            "--role",
            required=True,
            help=f"Its roles, separated by commas (e.g. cell_maker,module_assembler): {', '.join(Role.values)}."
            " They compare as a set; with --update they become exactly these.",
        )
        add.add_argument("--gs1-prefix", help="Registered GS1 Company Prefix, 6 to 12 digits.")
        add.add_argument("--pgln", help="The organisation's party GLN, 13 digits with its check digit.")
        add.add_argument("--country", help="ISO 3166-1 alpha-2 code, e.g. CN.")
        add.add_argument("--update", action="store_true", help="Write the values that differ from the stored ones.")
        actions.add_parser(
            "list", help="One organisation a line: slug, roles (a,b), GS1 prefix, PGLN, name; tab-separated."
        )

    def add(
        self,
        *,
        slug: str,
        name: str,
        role: str,
        gs1_prefix: str | None,
        pgln: str | None,
        country: str | None,
        update: bool,
        **options: Any,
    ) -> None:
        roles = [part.strip() for part in role.split(",") if part.strip()]
        try:
            done = organisation_add(
                slug=slug,
                name=name,
                roles=roles,
                gs1_company_prefix=gs1_prefix,
                pgln=pgln,
                country=country.upper() if country else None,
                update=update,
            )
        except RecordDiffers as exc:
            raise CommandError(f"{exc}; nothing changed (give --update to change them)") from None
        except RegistrationError as exc:
            raise CommandError(f"organisation {slug}: {exc}") from None
        if done.created:
            self.stderr.write(f"organisation {slug} created", style_func=self.style.SUCCESS)
        elif done.changed:
            self.stderr.write(f"organisation {slug} updated: {', '.join(done.changed)}", style_func=self.style.SUCCESS)
        else:
            self.stderr.write(f"organisation {slug} exists, unchanged", style_func=plain)

    def list(self) -> None:
        for organisation in Organisation.objects.prefetch_related("roles").order_by("slug"):
            self.stdout.write(
                "\t".join(
                    (
                        organisation.slug,
                        ",".join(organisation.role_names),
                        organisation.gs1_company_prefix or "-",
                        organisation.pgln or "-",
                        organisation.name,
                    )
                )
            )
