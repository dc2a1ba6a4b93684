from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.db import models
from django.utils.translation import gettext_lazy as _

from cells.models import InspectionMethod, Spec
from suppliers.models import Membership, Organisation, Site
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


class LimitForm(forms.Form):
    """A limit of one property of a material's or cell model's lots: a new one, or the one that
    property has changed. The domain (``cells.services.spec_set``) checks it again, as the last word
    before the database's constraints."""

    property = forms.SlugField(
        label=_("Property"),
        max_length=64,
        help_text=_("As results name it: moisture, fe_particle_size. A property already limited is changed."),
        error_messages={
            "required": _("Name the property, as results name it."),
            "invalid": _(
                "A property is named with letters, digits, “_” and “-”, as results name it: fe_particle_size."
            ),
            "max_length": _("A property's name is at most %(limit_value)d characters."),
        },
    )
    unit = forms.CharField(
        label=_("Unit"),
        max_length=16,
        help_text=_("As values are given: ppm, µm, V."),
        error_messages={
            "required": _("Give the unit values are given in."),
            "max_length": _("A unit is at most %(limit_value)d characters."),
        },
    )
    minimum = forms.DecimalField(
        label=_("Minimum"),
        required=False,
        max_digits=20,
        decimal_places=6,
        error_messages={"invalid": _("Give a number, such as 0.5, or leave it blank for no minimum.")},
    )
    maximum = forms.DecimalField(
        label=_("Maximum"),
        required=False,
        max_digits=20,
        decimal_places=6,
        error_messages={"invalid": _("Give a number, such as 200, or leave it blank for no maximum.")},
    )

    def clean_unit(self) -> str:
        value: str = self.cleaned_data["unit"]
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise forms.ValidationError(_("A unit is written in printable characters: ppm, µm, V."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        minimum, maximum = cleaned.get("minimum"), cleaned.get("maximum")
        if "minimum" in cleaned and "maximum" in cleaned and minimum is None and maximum is None:
            self.add_error("minimum", _("A limit has a minimum, a maximum or both: give at least one."))
        elif minimum is not None and maximum is not None and minimum > maximum:
            self.add_error("maximum", _("The maximum is below the minimum: a value could never be within them."))
        return cleaned


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class EvidenceField(forms.FileField):
    """Files of evidence, several at once (none at all is fine): each is checked by the domain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("allow_empty_file", True)  # refused by the domain, in the words REST's refusal has
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(EvidenceField, self).clean(file, initial) for file in files]


class SubjectKind(models.TextChoices):
    """What a finding is about, as REST's ``subject``, ``subject_supplier`` and ``subject_site``."""

    ITEM = "item", _("A lot or unit")
    SUPPLIER = "supplier", _("Every lot of a supplier")
    SITE = "site", _("Every lot made at a site")


class SiteChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.owner.name})"


def _when(label: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        error_messages={"invalid": _("Give a date and time, as YYYY-MM-DD HH:MM.")},
    )


class FindingForm(forms.Form):
    """A finding on a lot or unit, every lot of a supplier, or every lot of a site (in a production
    window), as REST's POST /findings/ records one, with files of evidence. Every field is on the
    page whatever the kind chosen (it works without JavaScript): those of another kind are ignored.
    The subject is checked by the view, which asks the ledger and the access policy."""

    subject_kind = forms.ChoiceField(
        label=_("The finding is about"),
        choices=SubjectKind.choices,
        initial=SubjectKind.ITEM,
        required=False,
        widget=forms.RadioSelect,
    )
    subject = forms.CharField(
        label=_("Subject: EPC URN, Digital Link, or a lot code or serial of your organisation"),
        max_length=300,
        strip=True,
        required=False,
    )
    supplier = forms.ModelChoiceField(
        label=_("Supplier"),
        queryset=Organisation.objects.order_by("name", "pk"),
        to_field_name="slug",
        required=False,
        empty_label=_("Choose a supplier"),
        error_messages={"invalid_choice": _("No organisation in the directory is that one: choose from the list.")},
    )
    site = SiteChoice(
        label=_("Site"),
        queryset=Site.objects.select_related("owner").order_by("owner__name", "name", "pk"),
        required=False,
        empty_label=_("Choose a site"),
        error_messages={"invalid_choice": _("No site in the directory is that one: choose from the list.")},
    )
    window_from = _when(_("Lots produced from (optional)"))
    window_to = _when(_("Lots produced until (optional)"))
    category = forms.ChoiceField(label=_("Defect"), choices=FindingCategory.choices)
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices)
    description = forms.CharField(
        label=_("Description"),
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("Describe what was found.")},
    )
    evidence = EvidenceField(
        label=_("Evidence (optional): lab reports, photographs, X-ray images, measurements"), required=False
    )

    def clean_subject(self) -> str:
        value: str = self.cleaned_data["subject"]
        # A scanner ends a batch or serial with the group separator (GS, U+001D): it is part of
        # what a scanned barcode says. Any other control character names nothing.
        if any((ord(c) < 32 and c != "\x1d") or ord(c) == 127 for c in value):
            raise forms.ValidationError(_("Control characters name nothing: type it as printed."))
        return value

    def clean_description(self) -> str:
        value: str = self.cleaned_data["description"]
        if any((ord(c) < 32 and c not in "\r\n\t") or ord(c) == 127 for c in value):
            raise forms.ValidationError(_("Control characters name nothing: type it as printed."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind = cleaned.get("subject_kind") or SubjectKind.ITEM
        cleaned["subject_kind"] = kind
        if kind == SubjectKind.ITEM:
            if not cleaned.get("subject") and "subject" not in self.errors:
                self.add_error("subject", _("Name the lot or unit found defective."))
            return cleaned
        named = "supplier" if kind == SubjectKind.SUPPLIER else "site"
        if cleaned.get(named) is None and named not in self.errors:
            message = (
                _("Choose the supplier whose lots were found defective.")
                if named == "supplier"
                else _("Choose the site whose lots were found defective.")
            )
            self.add_error(named, message)
        start, end = cleaned.get("window_from"), cleaned.get("window_to")
        if start is not None and end is not None and end < start:
            self.add_error("window_to", _("The window ends before it starts."))
        return cleaned

    def named(self) -> str:
        """The field naming the subject of the kind chosen."""
        kind = self.cleaned_data.get("subject_kind")
        return {SubjectKind.SUPPLIER: "supplier", SubjectKind.SITE: "site"}.get(kind, "subject")

    def marked(self) -> FindingForm:
        """The form with each field at fault saying so to assistive technology, its error next to it."""
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"aria-invalid": "true", "aria-describedby": f"{name}-error"})
        return self
