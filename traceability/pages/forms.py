from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from cells.models import InspectionMethod, Spec
from suppliers.models import Membership
from traceability.investigations.models import FindingCategory, Severity


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


def _step(label: Any, rows: int = 3) -> forms.CharField:
    return forms.CharField(label=label, required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": rows}))


class ResponseForm(forms.Form):
    """A revision of the caller's 8D response: every step as it should read (the latest revision's
    as the form opens); the domain appends what changed (``investigations.responses``)."""

    team = _step(_("D1 team"), rows=2)
    problem = _step(_("D2 problem description"), rows=2)
    containment = _step(_("D3 containment"))
    root_cause = _step(_("D4 root cause"))
    corrective_action = _step(_("D5 corrective action chosen"))
    implementation = _step(_("D6 corrective action implemented"))
    implemented_on = forms.DateField(
        label=_("D6 implemented on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": _("Give the date as YYYY-MM-DD.")},
    )
    prevention = _step(_("D7 prevention"))


class InspectionForm(forms.Form):
    """Inspection results or a certificate of analysis of a lot: the document, and a value with its
    unit per property the lot has a limit for (``specs``; a blank value is not measured). The values
    are checked by the domain (``cells.services.inspection_record``), which names the one at fault."""

    file = forms.FileField(label=_("Certificate or report"), required=False)
    inspected_at = forms.DateTimeField(
        label=_("Inspected or analysed at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        error_messages={"required": _("Say when the lot was inspected."), "invalid": _("Give a date and time.")},
    )
    method = forms.ChoiceField(label=_("Method"), choices=InspectionMethod.choices, initial=InspectionMethod.ANALYSIS)
    sample_size = forms.IntegerField(label=_("Sample size"), required=False, min_value=1, max_value=2_147_483_647)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, specs: list[Spec], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.specs = specs
        for index, spec in enumerate(specs):
            self.fields[f"value_{index}"] = forms.CharField(
                label=_("%(property)s value") % {"property": spec.property}, required=False, max_length=40
            )
            self.fields[f"unit_{index}"] = forms.CharField(
                label=_("%(property)s unit") % {"property": spec.property},
                required=False,
                max_length=16,
                initial=spec.unit,
            )

    def rows(self) -> list[dict[str, Any]]:
        """Each property's limits with its two fields, for the template's table."""
        return [
            {"spec": spec, "value": self[f"value_{index}"], "unit": self[f"unit_{index}"]}
            for index, spec in enumerate(self.specs)
        ]

    def measured(self) -> list[tuple[str, str, str]]:
        """(property, value, unit) of each property given a value, in the form's order."""
        return [
            (spec.property, self.cleaned_data[f"value_{index}"], self.cleaned_data[f"unit_{index}"])
            for index, spec in enumerate(self.specs)
            if self.cleaned_data.get(f"value_{index}")
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.specs and not any(cleaned.get(f"value_{i}") for i in range(len(self.specs))):
            raise forms.ValidationError(_("Give at least one measured value."), code="no_results")
        return cleaned

    def field_of(self, refused: str | None, measured: list[tuple[str, str, str]]) -> str | None:
        """The form field a domain refusal names (``results.<i>.<value|unit|property>``); None for
        the form as a whole."""
        if refused is None:
            return None
        parts = refused.split(".")
        if parts[0] == "results" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(measured):
            index = next(i for i, spec in enumerate(self.specs) if spec.property == measured[int(parts[1])][0])
            return f"unit_{index}" if parts[2] == "unit" else f"value_{index}"
        return None


class FindingForm(forms.Form):
    """A finding on a lot or a unit, as REST's POST /findings/ records one (a supplier's or a site's
    lots are the REST API's and GraphQL's for now). The subject is checked by the view, which asks
    the ledger and the access policy."""

    subject = forms.CharField(
        label=_("Subject: EPC URN, Digital Link, or a lot code or serial of your organisation"),
        max_length=300,
        strip=True,
        error_messages={"required": _("Name the lot or unit found defective.")},
    )
    category = forms.ChoiceField(label=_("Defect"), choices=FindingCategory.choices)
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices)
    description = forms.CharField(
        label=_("Description"),
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("Describe what was found.")},
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("subject", "description"):
            value = cleaned.get(name) or ""
            if any((ord(c) < 32 and c not in "\r\n\t") or ord(c) == 127 for c in value):
                self.add_error(name, _("Control characters name nothing: type it as printed."))
        return cleaned

    def marked(self) -> FindingForm:
        """The form with each field at fault saying so to assistive technology, its error next to it."""
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"aria-invalid": "true", "aria-describedby": f"{name}-error"})
        return self
