"""``Authorization: Token <key>``: the ledger's hashed API tokens, with who calls and for whom in one query;
and basic authentication, when ``LEDGER_BASIC_AUTH`` enables it. Both count failed attempts per client
address (``core.signin``) and answer 429 with Retry-After once an address has failed too often."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from suppliers.models import ApiToken, api_key_hash
from traceability.access.policy import token_signing_in
from traceability.core import signin


class SignInCounted(authentication.BaseAuthentication):
    """An authentication that takes a secret: refused while the caller's address has failed too often
    (``Throttled``: 429 with Retry-After), and counted when the secret is wrong."""

    keyword: str  # the Authorization scheme, as DRF's token authentication names it

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        offered = authentication.get_authorization_header(request).split()
        if not offered or offered[0].lower() != self.keyword.lower().encode():
            return None  # not this scheme: nothing offered, nothing to count
        address = signin.client_address(request._request)
        if (seconds := signin.wait(address)) is not None:
            raise exceptions.Throttled(wait=seconds, detail=f"Too many failed sign-ins: try again in {seconds} s.")
        try:
            return super().authenticate(request)  # type: ignore[safe-super]
        except exceptions.AuthenticationFailed:
            signin.failed(address)
            raise


class TokenAuthentication(SignInCounted, authentication.TokenAuthentication):
    """DRF's header format (``Authorization: Token <key>``) over ``ApiToken``: the key is looked up by
    its hash, and the same query reads the token's membership, user and organisation and what
    ``permissions.caller_of`` needs to know of it, so nothing reads them again."""

    model = ApiToken

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = token_signing_in(api_key_hash(key))  # one prepared statement, on every request
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


class BasicAuthentication(SignInCounted, authentication.BasicAuthentication):
    """DRF's basic authentication, counted; in the chain only with ``LEDGER_BASIC_AUTH``."""

    keyword = "Basic"
