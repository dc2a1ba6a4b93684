"""Admin for organisations, their sites and certificates.

A certificate's ``status`` is never edited here: every change goes through
``suppliers.services.certificate_change_status``, which also writes the status history, and the
admin reaches it through the suspend / revoke / reinstate actions.

The helpers shared by every app's admin (``ReadOnlyAdminMixin``, ``LoadedRowsInlineMixin``) live
here, in the lowest app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.widgets import AutocompleteSelect, ForeignKeyRawIdWidget
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet, ModelChoiceField
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.text import Truncator

from suppliers.models import Certificate, CertificateStatus, CertificateStatusChange, Membership, Organisation, Site
from traceability.gs1 import identifiers

if TYPE_CHECKING:
    # The mixins below extend what they are mixed into: type-check them as that base.
    _ModelAdmin = admin.ModelAdmin[Any]
    _InlineModelAdmin = admin.options.InlineModelAdmin[Any, Any]
else:
    _ModelAdmin = _InlineModelAdmin = object


class ReadOnlyAdminMixin:
    """View only: for rows that only services write (history, ledger, jobs)."""

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class IdentifierSearchMixin(_ModelAdmin):
    """A search term that is an EPC URN or a GS1 Digital Link finds the row with that identity.

    Both forms name the same canonical identity, so a QA engineer can paste either, or scan the
    QR code on a unit, and land on its row; a malformed one says what is wrong with it.
    """

    identity_field = "identity"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if term[:4].lower() != "urn:" and not term.lower().startswith(("http://", "https://")):
            return super().get_search_results(request, queryset, search_term)
        try:
            canonical = identifiers.parse(term).identity.canonical
        except identifiers.InvalidIdentifier as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return queryset.none(), False
        return queryset.filter(**{self.identity_field: canonical}), False


class LoadedLabelRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id widget that labels its value from the related object its row already loaded.

    Django's widget runs one query per widget for the label, so an inline of N rows would cost N
    queries per raw-id field; ``LoadedRowsInlineFormSet`` hands each widget its loaded object.
    """

    loaded: models.Model | None = None

    def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
        obj = self.loaded
        if obj is None or str(obj.pk) != str(value):
            return super().label_and_url_for_value(value)
        try:
            url = reverse(f"{self.admin_site.name}:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
        except NoReverseMatch:
            url = ""
        return Truncator(obj).words(14), url


class LoadedAutocompleteSelect(AutocompleteSelect):
    """An autocomplete that renders its selected option from the related object its row already loaded.

    Django's widget runs one query per widget for the selected option; see ``LoadedLabelRawIdWidget``.
    """

    loaded: models.Model | None = None

    def optgroups(
        self, name: str, value: Sequence[str], attr: dict[str, Any] | None = None
    ) -> list[tuple[str | None, list[dict[str, Any]], int | None]]:
        obj = self.loaded
        selected = [str(v) for v in value if str(v) not in self.choices.field.empty_values]
        if obj is None or selected != [str(obj.pk)]:
            return super().optgroups(name, value, attr)
        options = [] if self.is_required else [self.create_option(name, "", "", False, 0)]
        options.append(
            self.create_option(name, obj.pk, self.choices.field.label_from_instance(obj), True, len(options))
        )
        return [(None, options, 0)]


class LoadedRowsInlineFormSet(BaseInlineFormSet):
    """Renders N existing rows without N queries.

    Each row gets the parent object itself (inlines print ``str(row)``, which often names the
    parent) and its raw-id and autocomplete widgets get the related objects the inline's queryset
    joined (``select_related`` in the inline's ``get_queryset``).
    """

    def _construct_form(self, i: int, **kwargs: Any) -> forms.ModelForm:
        # Django's own per-form hook, which django-stubs does not declare.
        form = super()._construct_form(i, **kwargs)  # type: ignore[misc]
        if form.instance.pk is not None and self.instance.pk is not None:
            setattr(form.instance, self.fk.name, self.instance)
            for name, field in form.fields.items():
                widget = getattr(field.widget, "widget", field.widget)  # inside RelatedFieldWidgetWrapper
                if isinstance(widget, (LoadedLabelRawIdWidget, LoadedAutocompleteSelect)):
                    try:
                        widget.loaded = getattr(form.instance, name)
                    except ObjectDoesNotExist:  # an id with no row (foreign keys without constraint)
                        widget.loaded = None
        return form


class LoadedRowsInlineMixin(_InlineModelAdmin):
    """An inline whose page costs the same queries for 1 or 1000 rows.

    Its ``get_queryset`` must ``select_related`` the raw-id and autocomplete fields (and whatever
    their ``__str__`` reads).
    """

    formset = LoadedRowsInlineFormSet

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if "widget" not in kwargs:
            if db_field.name in self.get_autocomplete_fields(request):
                kwargs["widget"] = LoadedAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
            elif db_field.name in self.raw_id_fields:
                kwargs["widget"] = LoadedLabelRawIdWidget(
                    db_field.remote_field, self.admin_site, using=kwargs.get("using")
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class SiteInline(LoadedRowsInlineMixin, admin.TabularInline):
    model = Site
    fields = ("name", "gln", "gln_extension", "address", "country")
    extra = 0
    show_change_link = True


class CertificateInline(LoadedRowsInlineMixin, admin.TabularInline):
    model = Certificate
    fields = ("scheme", "number", "issuer", "scope", "valid_from", "valid_to", "status")
    readonly_fields = ("status",)
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 40})}}
    extra = 0
    show_change_link = True


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "role", "country", "gs1_company_prefix", "pgln", "created_at")
    list_filter = ("role", "country")
    search_fields = ("name", "slug", "gs1_company_prefix", "pgln")
    search_help_text = "Name, slug, GS1 Company Prefix or party GLN."
    prepopulated_fields = {"slug": ("name",)}
    date_hierarchy = "created_at"
    inlines = (SiteInline, CertificateInline)


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "gln", "gln_extension", "country")
    list_filter = ("country", "owner")
    list_select_related = ("owner",)
    search_fields = ("name", "gln", "address", "owner__name")
    search_help_text = "Site name, GLN, address or owner name."
    autocomplete_fields = ("owner",)


class CertificateStatusChangeInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = CertificateStatusChange
    fields = ("changed_at", "from_status", "to_status", "reason", "changed_by")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[CertificateStatusChange]:
        return super().get_queryset(request).select_related("changed_by")


class CertificateActionForm(ActionForm):
    """The changelist action bar, with the reason the status actions record in the history."""

    reason = forms.CharField(
        label="Reason:",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "why (suspend / revoke / reinstate)"}),
    )


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    list_display = ("__str__", "scheme", "number", "owner", "issuer", "valid_from", "valid_to", "status")
    list_display_links = ("__str__",)
    list_filter = ("scheme", "status", "owner")
    list_select_related = ("owner",)
    search_fields = ("number", "issuer", "owner__name")
    search_help_text = "Certificate number, issuer or holder name."
    date_hierarchy = "valid_to"
    autocomplete_fields = ("owner",)
    # Status changes need a history entry: only the actions below (through the service) make them.
    readonly_fields = ("status",)
    inlines = (CertificateStatusChangeInline,)
    action_form = CertificateActionForm
    actions = ("suspend", "revoke", "reinstate")

    @admin.action(description="Suspend selected certificates (give a reason)", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Certificate]) -> None:
        self._change_status(request, queryset, CertificateStatus.SUSPENDED)

    @admin.action(description="Revoke selected certificates (give a reason)", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Certificate]) -> None:
        self._change_status(request, queryset, CertificateStatus.REVOKED)

    @admin.action(description="Reinstate selected certificates as valid (give a reason)", permissions=["change"])
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Certificate]) -> None:
        self._change_status(request, queryset, CertificateStatus.VALID)

    def _change_status(self, request: HttpRequest, queryset: QuerySet[Certificate], status: CertificateStatus) -> None:
        label = CertificateStatus(status).label.lower()
        reason = (request.POST.get("reason") or "").strip()
        if not reason:
            self.message_user(
                request, f"Nothing changed: give a reason for setting certificates {label}.", messages.ERROR
            )
            return
        try:
            # Imported here: the service is written separately and this module must load without it.
            from suppliers.services import certificate_change_status
        except ImportError:
            self.message_user(
                request,
                "Nothing changed: suppliers.services.certificate_change_status is not available.",
                messages.ERROR,
            )
            return
        changed, unchanged, failures = 0, 0, []
        for certificate in queryset.order_by("pk"):
            if certificate.status == status:
                unchanged += 1
                continue
            try:
                with transaction.atomic():
                    certificate_change_status(
                        certificate=certificate, status=status, reason=reason, changed_by=request.user
                    )
            except (ValidationError, ValueError) as exc:
                detail = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                failures.append(f"{certificate}: {detail}")
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} certificate(s) set {label}.", messages.SUCCESS)
        if unchanged:
            self.message_user(request, f"{unchanged} certificate(s) were already {label}.", messages.WARNING)
        for failure in failures:
            self.message_user(request, f"Not changed: {failure}", messages.ERROR)


@admin.register(CertificateStatusChange)
class CertificateStatusChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("certificate", "from_status", "to_status", "changed_at", "changed_by", "reason")
    list_filter = ("to_status", "from_status", "certificate__scheme")
    list_select_related = ("certificate", "changed_by")
    search_fields = ("certificate__number", "reason")
    search_help_text = "Certificate number or reason."
    date_hierarchy = "changed_at"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation")
    list_filter = ("organisation__role",)
    list_select_related = ("user", "organisation")
    search_fields = ("user__username", "organisation__name")
    search_help_text = "User name or organisation name."
    autocomplete_fields = ("organisation",)
    raw_id_fields = ("user",)
