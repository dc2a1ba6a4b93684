"""``Authorization: Token <key>``: the ledger's hashed API tokens, with who calls and for whom in one query."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from suppliers.models import ApiToken, api_key_hash
from traceability.access.policy import caller_annotations


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header format (``Authorization: Token <key>``) over ``ApiToken``: the key is looked up by
    its hash, and the same query reads the token's membership, user and organisation and what
    ``permissions.caller_of`` needs to know of it, so nothing reads them again."""

    model = ApiToken

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = (
            ApiToken.objects.select_related("membership__user", "membership__organisation")
            .annotate(**caller_annotations("membership__organisation_id"))
            .filter(key_hash=api_key_hash(key))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("Token revoked."))
        if not token.active_at(timezone.now()):
            raise exceptions.AuthenticationFailed(_("Token expired."))
        user = token.membership.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token
