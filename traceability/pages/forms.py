from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from suppliers.models import Membership


class SignInForm(AuthenticationForm):
    """Django's sign-in form, for any active user who belongs to an organisation (not only staff)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The username and password do not match an account. Both are case-sensitive."),
        "inactive": _("This account is disabled."),
        "no_organisation": _(
            "This account belongs to no organisation: ask your organisation's admin to add you as a member."
        ),
    }

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not Membership.objects.filter(user_id=user.pk).exists():
            raise forms.ValidationError(self.error_messages["no_organisation"], code="no_organisation")


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Serial, lot code, EPC URN, Digital Link, GTIN or SSCC"),
        max_length=300,
        strip=True,
        error_messages={"required": _("Type what to look for."), "max_length": _("That is too long to name anything.")},
    )

    def clean_q(self) -> str:
        value: str = self.cleaned_data["q"]
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise forms.ValidationError(_("Control characters name nothing: type the identifier as printed."))
        return value
