"""DRF's token scheme, with the caller's organisation read in the same query as the token."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF reads it, plus the user's membership and organisation
    (``permissions.caller_of`` finds them there): one query per request says who is calling and for
    whom, instead of one for the token and one for the membership."""

    def authenticate_credentials(self, key: str) -> tuple:
        try:
            token = Token.objects.select_related("user__membership__organisation").get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
