"""Writes for organisations, their members and certificates."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Generic, NotRequired, TypedDict, TypeVar, Unpack, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from suppliers.models import (
    ApiToken,
    Certificate,
    CertificateStatus,
    CertificateStatusChange,
    MemberRole,
    Membership,
    Organisation,
    OrganisationRole,
    Role,
    TokenScope,
    api_key_hash,
    in_role_order,
)
from traceability.core.audit import AuditAction, audit_record, audit_records
from traceability.core.errors import DomainError
from traceability.gs1 import identifiers


def recorded_user(user: AbstractBaseUser | AnonymousUser | None) -> User | None:
    """The user a record names as its author: None for nobody, or for an anonymous request's user.

    Django's ``User`` is the project's user model (no ``AUTH_USER_MODEL`` swap) and every user it
    holds is authenticated; an ``AnonymousUser`` is not one.
    """
    return user if isinstance(user, User) else None


# A revoked or expired certificate is final; a suspended one can be reinstated.
_ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    CertificateStatus.VALID: {CertificateStatus.SUSPENDED, CertificateStatus.REVOKED, CertificateStatus.EXPIRED},
    CertificateStatus.SUSPENDED: {CertificateStatus.VALID, CertificateStatus.REVOKED, CertificateStatus.EXPIRED},
    CertificateStatus.REVOKED: set(),
    CertificateStatus.EXPIRED: set(),
}


class CertificateTransitionError(ValueError):
    pass


def _status_recorded(
    certificate: Certificate,
    status: str,
    *,
    reason: str,
    by: AbstractBaseUser | AnonymousUser | None,
    at: dt.datetime | None = None,
    previous: str | None = None,
    **detail: object,
) -> None:
    """Write a certificate's move to ``status`` into its history and the audit trail (from
    ``previous``, its status now unless given: "" for its registration, the history's first entry)."""
    previous = certificate.status if previous is None else previous
    CertificateStatusChange.objects.create(
        certificate=certificate,
        from_status=previous,
        to_status=status,
        reason=reason,
        changed_at=at or timezone.now(),
        changed_by=recorded_user(by),
    )
    audit_record(
        action=AuditAction.CERTIFICATE_STATUS,
        user=by,
        organisation=certificate.owner_id,
        identifiers=[f"certificate:{certificate.scheme}:{certificate.number}"],
        detail={"from": previous, "to": status, "reason": reason, **detail},
    )


def certificate_change_status(
    *,
    certificate: Certificate,
    status: str,
    reason: str = "",
    changed_by: AbstractBaseUser | AnonymousUser | None = None,
    changed_at: dt.datetime | None = None,
) -> Certificate:
    """Move a certificate to ``status`` and write the history entry, in one transaction."""
    with transaction.atomic():
        locked = Certificate.objects.select_for_update().get(pk=certificate.pk)
        if status not in _ALLOWED_TRANSITIONS[locked.status]:
            raise CertificateTransitionError(
                f"certificate {locked.number}: cannot go from {locked.status} to {status}"
                f" (allowed: {', '.join(sorted(_ALLOWED_TRANSITIONS[locked.status])) or 'none, it is final'})"
            )
        _status_recorded(locked, status, reason=reason, by=changed_by, at=changed_at)
        locked.status = status
        locked.save(update_fields=["status"])
    certificate.status = status
    return locked


class CertificateRefused(DomainError):
    """A certificate that cannot be registered as asked: the code says why, the field where."""

    def __init__(self, code: str, message: str, *, field: str) -> None:
        super().__init__(message, field=field)
        self.code = code  # type: ignore[misc]  # per instance: one type, several refusals


class CertificateFields(TypedDict):
    """What registers a certificate (``certificate_register``, ``certificate_checked``)."""

    owner: Organisation
    scheme: str
    number: str
    valid_from: dt.date
    valid_to: dt.date
    issued_by: NotRequired[Organisation | None]
    issuer: NotRequired[str]
    scope: NotRequired[str]
    product_model_ids: NotRequired[Collection[int]]
    cell_model_ids: NotRequired[Collection[int]]
    site_ids: NotRequired[Collection[int]]


def certificate_checked(**fields: Unpack[CertificateFields]) -> Certificate:
    """The certificate ``certificate_register`` would register, checked and not saved: raises
    ``CertificateRefused`` as it would (a form asks this first, to put the refusal on its field).

    The issuer is a registered certification body (``issued_by``, an organisation with that role:
    anything else is refused, ``issuer_not_certification_body``), or, for one the ledger does not
    have, its name alone (``issuer``). What it covers is the holder's own: its product models (by
    id: ``ProductModel.certificates`` holds the link), cell models and sites; another's is refused
    (``coverage_not_holders``), since a certificate certifies its holder's products and factories.
    """
    owner, issued_by = fields["owner"], fields.get("issued_by")
    valid_from, valid_to = fields["valid_from"], fields["valid_to"]
    if issued_by is not None and not issued_by.roles.filter(role=Role.CERTIFICATION_BODY).exists():
        raise CertificateRefused(
            "issuer_not_certification_body",
            f"{issued_by.slug!r} is not a certification body: a certificate's issuer must hold the"
            f" {Role.CERTIFICATION_BODY.label.lower()} role (or be named as text when the ledger does not have it)",
            field="issued_by",
        )
    printed = fields.get("issuer", "").strip() or (issued_by.name if issued_by is not None else "")
    if not printed:
        raise CertificateRefused("issuer_missing", "name the certificate's issuer", field="issuer")
    if valid_to < valid_from:
        raise CertificateRefused(
            "invalid_validity", f"valid_to {valid_to} is before valid_from {valid_from}", field="valid_to"
        )
    certificate = Certificate(
        owner=owner,
        scheme=fields["scheme"],
        number=fields["number"].strip(),
        issuer=printed,
        issued_by=issued_by,
        scope=fields.get("scope", ""),
        valid_from=valid_from,
        valid_to=valid_to,
    )
    try:
        certificate.full_clean(exclude=["issued_by"])  # the role is checked above, in words
    except ValidationError as invalid:
        field, messages = next(iter(invalid.message_dict.items()))
        raise CertificateRefused("invalid_certificate", f"{field}: {' '.join(messages)}", field=field) from None
    for field, ids in _covered(fields).items():
        # By the relation's name: product models are ``packs``', cell models ``cells``', both above this app.
        model = cast(type[Model], Certificate._meta.get_field(field.removesuffix("_ids") + "s").related_model)
        found = dict(model._default_manager.filter(pk__in=set(ids)).values_list("pk", "owner_id"))
        if strays := sorted(set(ids) - {pk for pk, holder in found.items() if holder == owner.pk}):
            raise CertificateRefused(
                "coverage_not_holders",
                f"{model._meta.verbose_name} {', '.join(map(str, strays))}: not {owner.slug!r}'s"
                f" (a certificate covers its holder's own {model._meta.verbose_name_plural})",
                field=field,
            )
    return certificate


def _covered(fields: CertificateFields) -> dict[str, list[int]]:
    """What a certificate covers, by relation: each list of ids sorted, once each."""
    return {
        "product_model_ids": sorted(set(fields.get("product_model_ids", ()))),
        "cell_model_ids": sorted(set(fields.get("cell_model_ids", ()))),
        "site_ids": sorted(set(fields.get("site_ids", ()))),
    }


def certificate_register(
    *, by: AbstractBaseUser | AnonymousUser | None = None, **fields: Unpack[CertificateFields]
) -> Certificate:
    """Register a certificate ``owner`` holds, with what it covers, in one transaction (audited),
    once ``certificate_checked`` finds nothing to refuse. Its status starts valid and changes
    through ``certificate_change_status`` only; nothing else of it changes once registered (a
    certificate reissued with other dates or coverage is another certificate)."""
    with transaction.atomic():
        certificate = certificate_checked(**fields)
        certificate.save()
        product_models, cell_models, sites = _covered(fields).values()
        certificate.product_models.set(product_models)
        certificate.cell_models.set(cell_models)
        certificate.sites.set(sites)
        # Registering is the status history's first entry (from nothing to valid), audited as one: a
        # code of its own would need a migration of the audit trail's choices.
        _status_recorded(
            certificate,
            certificate.status,
            reason="registered",
            by=by,
            previous="",
            issued_by=certificate.issued_by.slug if certificate.issued_by is not None else None,
            product_models=product_models,
            cell_models=cell_models,
            sites=sites,
        )
    return certificate


def certificates_expire(*, today: dt.date | None = None) -> int:
    """Mark valid or suspended certificates past their end date expired; returns how many.

    Set-based: one INSERT of history rows, one of audit entries and one UPDATE, however many
    certificates expire.
    """
    today = today or timezone.localdate()
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Certificate.objects.select_for_update()
            .filter(valid_to__lt=today, status__in=[CertificateStatus.VALID, CertificateStatus.SUSPENDED])
            .order_by("pk")
            .values_list("pk", "status", "owner", "scheme", "number")
        )
        CertificateStatusChange.objects.bulk_create(
            CertificateStatusChange(
                certificate_id=pk,
                from_status=status,
                to_status=CertificateStatus.EXPIRED,
                reason=f"validity ended before {today.isoformat()}",
                changed_at=now,
            )
            for pk, status, *_ in due
        )
        audit_records(
            action=AuditAction.CERTIFICATE_STATUS,
            records=(
                (
                    owner,
                    [f"certificate:{scheme}:{number}"],
                    {"from": status, "to": CertificateStatus.EXPIRED, "reason": f"validity ended before {today}"},
                )
                for _, status, owner, scheme, number in due
            ),
        )
        Certificate.objects.filter(pk__in=[pk for pk, *_ in due]).update(status=CertificateStatus.EXPIRED)
    return len(due)


# Organisations and members, as operators register them (``manage.py organisation add``, ``user add``).
# Each ``*_add`` is idempotent: the same values again change nothing. Different values for a record
# that exists are refused, naming every field that differs, unless the caller asks to ``update``:
# a deployment script that re-runs with a typo must not silently re-point an organisation's prefix.

R = TypeVar("R", bound=Model)


class RegistrationError(ValueError):
    """Why an organisation or member cannot be registered as asked; ``code`` is stable, the message
    names the value at fault."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RecordDiffers(RegistrationError):
    """The record exists with other values; ``differences`` maps each field to (stored, given)."""

    def __init__(self, what: str, differences: dict[str, tuple[Any, Any]], labels: dict[str, str]) -> None:
        self.differences = differences
        listed = "; ".join(
            f"{labels[field]} is {_shown(stored)}, not {_shown(given)}"
            for field, (stored, given) in differences.items()
        )
        super().__init__("differs", f"{what} exists with different values: {listed}")


def _stored(value: object) -> str | None:
    """A value as the audit trail keeps it: JSON-ready, None for unset."""
    return None if value is None or value == "" else str(value)


def _shown(value: object) -> str:
    return "unset" if value is None or value == "" else repr(str(value))


@dataclass(frozen=True)
class Registration(Generic[R]):
    """What an ``*_add`` service did: created the record, changed ``changed`` fields, or nothing."""

    record: R
    created: bool
    changed: tuple[str, ...] = ()


_ORGANISATION_LABELS = {
    "name": "name",
    "roles": "roles",
    "gs1_company_prefix": "GS1 Company Prefix",
    "pgln": "PGLN",
    "country": "country",
}
# EPC URNs split GTINs and GLNs after 6 to 12 prefix digits (TDS partition tables), so a shorter
# prefix could never render this organisation's identifiers as URNs.
_COMPANY_PREFIX = re.compile(r"[0-9]{6,12}")
_COUNTRY = re.compile(r"[A-Z]{2}")


def organisation_add(
    *,
    slug: str,
    name: str,
    roles: Collection[str],
    gs1_company_prefix: str | None = None,
    pgln: str | None = None,
    country: str | None = None,
    update: bool = False,
) -> Registration[Organisation]:
    """Register an organisation with its set of ``roles``, or find it registered with these values.

    The roles compare as a set (order and repeats do not matter). An optional value left as None is
    neither compared nor changed. With ``update``, the values that differ from the stored ones are
    written (the roles become exactly the given set); without it they raise ``RecordDiffers`` and
    nothing changes. A prefix or PGLN another organisation holds is refused either way.
    """
    given = _organisation_values(
        slug=slug, name=name, gs1_company_prefix=gs1_company_prefix, pgln=pgln, country=country
    )
    wanted = _roles(roles)
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().filter(slug=slug).first()
        if organisation is None:
            _gs1_numbers_free(given, organisation=None)
            organisation = Organisation.objects.create(slug=slug, **given)
            organisation_roles_set(organisation=organisation, roles=wanted)
            audit_record(
                action=AuditAction.ORGANISATION_ADD,
                organisation=organisation,
                identifiers=[slug],
                detail={**given, "roles": _roles_shown(wanted)},
            )
            return Registration(organisation, created=True)
        differences: dict[str, tuple[Any, Any]] = {
            field: (getattr(organisation, field), value)
            for field, value in given.items()
            if getattr(organisation, field) != value
        }
        held = set(organisation.role_names)
        if held != wanted:
            differences["roles"] = (_roles_shown(held), _roles_shown(wanted))
        if not differences:
            return Registration(organisation, created=False)
        if not update:
            raise RecordDiffers(f"organisation {slug}", differences, _ORGANISATION_LABELS)
        changes = {field: given[field] for field in differences if field != "roles"}
        _gs1_numbers_free(changes, organisation=organisation)
        for field, value in changes.items():
            setattr(organisation, field, value)
        if changes:
            organisation.save(update_fields=list(changes))
        if "roles" in differences:
            organisation_roles_set(organisation=organisation, roles=wanted)
        audit_record(
            action=AuditAction.ORGANISATION_CHANGE,
            organisation=organisation,
            identifiers=[slug],
            detail={field: [_stored(stored), value] for field, (stored, value) in differences.items()},
        )
        return Registration(organisation, created=False, changed=tuple(differences))


def organisation_roles_set(*, organisation: Organisation, roles: Collection[str]) -> None:
    """Make ``roles`` exactly the organisation's set of roles (each one of ``Role``)."""
    wanted = _roles(roles)
    with transaction.atomic():
        OrganisationRole.objects.filter(organisation=organisation).exclude(role__in=wanted).delete()
        OrganisationRole.objects.bulk_create(
            [OrganisationRole(organisation=organisation, role=role) for role in sorted(wanted)],
            ignore_conflicts=True,
        )


def _roles(roles: Collection[str]) -> set[str]:
    wanted = set(roles)
    if not wanted:
        raise RegistrationError("no_role", f"an organisation has at least one role: {', '.join(Role.values)}")
    if unknown := sorted(wanted - set(Role.values)):
        raise RegistrationError("unknown_role", f"unknown role {unknown[0]!r}: the roles are {', '.join(Role.values)}")
    return wanted


def _roles_shown(roles: set[str]) -> str:
    return ",".join(in_role_order(roles))


_SLUG_LENGTH, _NAME_LENGTH = 80, 200  # Organisation.slug and .name


def _organisation_values(
    *, slug: str, name: str, gs1_company_prefix: str | None, pgln: str | None, country: str | None
) -> dict[str, str]:
    """The fields to store, each checked; a problem raises ``RegistrationError`` naming the value."""
    try:
        validate_slug(slug)
    except ValidationError:
        raise RegistrationError(
            "invalid_slug", f"slug {slug!r} must be ASCII letters, digits, hyphens or underscores"
        ) from None
    if len(slug) > _SLUG_LENGTH:
        raise RegistrationError("invalid_slug", f"slug {slug!r} is longer than {_SLUG_LENGTH} characters")
    name = name.strip()
    if not name or len(name) > _NAME_LENGTH:
        raise RegistrationError("invalid_name", f"name must be 1 to 200 characters, got {len(name)}")
    values = {"name": name}
    if gs1_company_prefix is not None:
        if not _COMPANY_PREFIX.fullmatch(gs1_company_prefix):
            raise RegistrationError(
                "invalid_company_prefix", f"GS1 Company Prefix must be 6 to 12 digits, got {gs1_company_prefix!r}"
            )
        values["gs1_company_prefix"] = gs1_company_prefix
    if pgln is not None:
        try:
            identifiers.Pgln(gln=pgln)
        except identifiers.InvalidIdentifier as exc:
            raise RegistrationError("invalid_pgln", f"PGLN {pgln!r}: {exc.reason}") from None
        values["pgln"] = pgln
    if country is not None:
        if not _COUNTRY.fullmatch(country):
            raise RegistrationError(
                "invalid_country", f"country must be an ISO 3166-1 alpha-2 code such as CN, got {country!r}"
            )
        values["country"] = country
    return values


def _gs1_numbers_free(values: dict[str, str], *, organisation: Organisation | None) -> None:
    """Refuse a prefix or PGLN that another organisation holds.

    GS1 allocates prefixes that never nest, and capture gives a key to the organisation with the
    longest registered prefix it starts with: a prefix inside another's (or around it) would take
    that organisation's identities, so it is refused like an equal one.
    """
    others = Organisation.objects.exclude(pk=organisation.pk) if organisation else Organisation.objects.all()
    if prefix := values.get("gs1_company_prefix"):
        if (holder := others.filter(gs1_company_prefix=prefix).first()) is not None:
            raise RegistrationError(
                "company_prefix_taken", f"GS1 Company Prefix {prefix} is registered by organisation {holder.slug}"
            )
        shorter = [prefix[:size] for size in range(1, len(prefix))]
        overlapping = Q(gs1_company_prefix__in=shorter) | Q(gs1_company_prefix__startswith=prefix)
        if (holder := others.filter(overlapping).order_by("slug").first()) is not None:
            raise RegistrationError(
                "company_prefix_overlaps",
                f"GS1 Company Prefix {prefix} overlaps {holder.gs1_company_prefix} of organisation {holder.slug}"
                " (GS1 prefixes never nest: one of them is wrong)",
            )
    if (pgln := values.get("pgln")) and (holder := others.filter(pgln=pgln).first()) is not None:
        raise RegistrationError("pgln_taken", f"PGLN {pgln} is registered by organisation {holder.slug}")


_MEMBERSHIP_LABELS = {"role": "role", "email": "email"}


def membership_add(
    *,
    username: str,
    organisation: Organisation,
    role: str | None = None,
    email: str | None = None,
    update: bool = False,
    by: AbstractBaseUser | AnonymousUser | None = None,
) -> Registration[Membership]:
    """Make ``username`` a member of ``organisation``, or find them one already.

    A user may belong to several organisations: a user who exists and is not a member of this one
    becomes one (``created``), keeping their other memberships. A new user has no password (they use
    an API token, or an operator sets one with Django's ``changepassword``). ``role`` (viewer, qa or
    admin; a new member is a QA engineer when it is None) and ``email`` left as None are neither
    compared nor changed. A member with another role in this organisation, or a user with another
    email, raises ``RecordDiffers`` unless ``update``, which writes them. ``by``: who did it (an
    operator in the admin), named in the audit trail; none from the command line.
    """
    User = get_user_model()
    if role is not None and role not in MemberRole.values:
        raise RegistrationError(
            "invalid_role", f"role {role!r} is not a member role: use one of {', '.join(MemberRole.values)}"
        )
    if not username:
        raise RegistrationError("invalid_username", "username must not be empty")
    try:
        User._meta.get_field("username").run_validators(username)
    except ValidationError as exc:
        raise RegistrationError("invalid_username", f"username {username!r}: {' '.join(exc.messages)}") from None
    if email is not None:
        try:
            validate_email(email)
        except ValidationError:
            raise RegistrationError("invalid_email", f"email {email!r} is not an email address") from None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, email=email or "")
            created = Membership.objects.create(user=user, organisation=organisation, role=role or MemberRole.QA)
            audit_record(
                action=AuditAction.MEMBERSHIP_ADD,
                user=by,
                organisation=organisation,
                identifiers=[f"user:{username}"],
                detail={"role": created.role},
            )
            return Registration(created, created=True)
        membership = Membership.objects.filter(user=user, organisation=organisation).first()
        differences: dict[str, tuple[Any, Any]] = {}
        if role is not None and membership is not None and membership.role != role:
            differences["role"] = (membership.role, role)
        if email is not None and user.email != email:
            differences["email"] = (user.email, email)
        if differences and not update:
            raise RecordDiffers(f"user {username}", differences, _MEMBERSHIP_LABELS)
        if "email" in differences and email is not None:
            user.email = email
            user.save(update_fields=["email"])
        if membership is None:
            membership = Membership.objects.create(user=user, organisation=organisation, role=role or MemberRole.QA)
            audit_record(
                action=AuditAction.MEMBERSHIP_ADD,
                user=by,
                organisation=organisation,
                identifiers=[f"user:{username}"],
                detail={
                    "role": membership.role,
                    **{field: [_stored(stored), _stored(given)] for field, (stored, given) in differences.items()},
                },
            )
            return Registration(membership, created=True, changed=tuple(differences))
        if not differences:
            return Registration(membership, created=False)
        if "role" in differences and role is not None:
            membership.role = role
            membership.save(update_fields=["role"])
        audit_record(
            action=AuditAction.MEMBERSHIP_CHANGE,
            user=by,
            organisation=organisation,
            identifiers=[f"user:{username}"],
            detail={field: [_stored(stored), _stored(given)] for field, (stored, given) in differences.items()},
        )
        return Registration(membership, created=False, changed=tuple(differences))


def membership_remove(*, membership: Membership, by: AbstractBaseUser | AnonymousUser | None = None) -> None:
    """End a membership: the user no longer acts for the organisation (its API tokens go with it).
    Audited as a change of the membership, its role to none."""
    with transaction.atomic():
        locked = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
        audit_record(
            action=AuditAction.MEMBERSHIP_CHANGE,
            user=by,
            organisation=locked.organisation_id,
            identifiers=[f"user:{locked.user.username}"],
            detail={"role": [locked.role, None], "removed": True},
        )
        locked.delete()


# A key of 160 random bits, as hex: as long as DRF's keys were, so scripts that hold one need no change.
_KEY_BYTES = 20


def api_token_create(
    *,
    membership: Membership,
    scope: str = TokenScope.WRITE,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    by: AbstractBaseUser | AnonymousUser | None = None,
    replaced: int = 0,
) -> tuple[ApiToken, str]:
    """A new API token for ``membership`` and its key: the key is returned here only, never stored
    (the audit trail records the token by its key's first characters, as the admin lists it)."""
    if scope not in TokenScope.values:
        raise RegistrationError("invalid_scope", f"token scope {scope!r}: use one of {', '.join(TokenScope.values)}")
    now = now or timezone.now()
    if expires_at is not None and expires_at <= now:
        raise RegistrationError("invalid_expiry", f"a token's expiry must be in the future, got {expires_at}")
    key = secrets.token_hex(_KEY_BYTES)
    with transaction.atomic():
        token = ApiToken.objects.create(
            membership=membership,
            key_hash=api_key_hash(key),
            key_prefix=key[:8],
            scope=scope,
            created_at=now,
            expires_at=expires_at,
        )
        audit_record(
            action=AuditAction.TOKEN_ISSUE,
            user=by,
            organisation=membership.organisation_id,
            identifiers=[f"user:{membership.user.get_username()}"],
            detail={
                "key_prefix": token.key_prefix,
                "scope": scope,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "replaced": replaced,
            },
        )
    return token, key


def api_token_issue(
    *,
    membership: Membership,
    scope: str = TokenScope.WRITE,
    expires_at: dt.datetime | None = None,
    replace: bool = False,
) -> str | None:
    """A new API token's key for ``membership``, or None when it has an active token already and
    ``replace`` is False.

    A key is handed out once, when it is made: the ledger keeps only its hash, so a re-run of a
    deployment script leaves no copy in its logs. ``replace`` revokes the membership's active tokens
    (they stop authenticating at once) and makes a new one.
    """
    now = timezone.now()
    with transaction.atomic():
        # Serialises two issues for one membership.
        Membership.objects.select_for_update().filter(pk=membership.pk).first()
        active = ApiToken.objects.filter(membership=membership, revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
        replaced = 0
        if replace:
            replaced = active.update(revoked_at=now)
        elif active.exists():
            return None
        _, key = api_token_create(membership=membership, scope=scope, expires_at=expires_at, now=now, replaced=replaced)
    return key


def api_token_revoke(
    *, token: ApiToken, at: dt.datetime | None = None, by: AbstractBaseUser | AnonymousUser | None = None
) -> bool:
    """Revoke ``token`` (it stops authenticating at once); False when it was revoked already."""
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=at or timezone.now())
        if revoked:
            token.refresh_from_db(fields=["revoked_at"])
            audit_record(
                action=AuditAction.TOKEN_REVOKE,
                user=by,
                organisation=token.membership.organisation_id,
                identifiers=[f"user:{token.membership.user.get_username()}"],
                detail={"key_prefix": token.key_prefix},
            )
    return bool(revoked)
