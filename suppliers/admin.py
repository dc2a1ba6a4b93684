"""Admin for organisations, their sites and certificates.

A certificate is registered through ``suppliers.services.certificate_register`` and never edited
afterwards; its ``status`` changes through ``certificate_change_status`` only (the suspend / revoke /
reinstate actions, for its issuer's staff and operators), which writes the status history and the
audit trail. Certificates are never deleted. Memberships change through the services too, audited.

The helpers shared by every app's admin (``OrganisationScopedAdminMixin``, ``ReadOnlyAdminMixin``,
``ReferenceDataAdminMixin``, ``LoadedRowsInlineMixin``) live here, in the lowest app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.admin.widgets import AutocompleteSelect, ForeignKeyRawIdWidget
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet, ModelChoiceField
from django.http import Http404, HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import Truncator, capfirst

from suppliers.models import (
    ApiToken,
    Certificate,
    CertificateStatus,
    CertificateStatusChange,
    Membership,
    Organisation,
    OrganisationRole,
    Role,
    Site,
)
from suppliers.services import (
    CertificateRefused,
    api_token_create,
    api_token_revoke,
    certificate_change_status,
    certificate_checked,
    certificate_register,
    membership_add,
    membership_remove,
)
from traceability.gs1 import identifiers

if TYPE_CHECKING:
    # The mixins below extend what they are mixed into: type-check them as that base.
    _ModelAdmin = admin.ModelAdmin[Any]
    _InlineModelAdmin = admin.options.InlineModelAdmin[Any, Any]
else:
    _ModelAdmin = _InlineModelAdmin = object


def staff_organisation_ids(request: HttpRequest) -> frozenset[int]:
    """The organisations the signed-in user acts for (their memberships), read once per request."""
    ids = getattr(request, "_staff_organisation_ids", None)
    if ids is None:
        memberships = Membership.objects.filter(user__pk=request.user.pk or 0)
        ids = frozenset(memberships.values_list("organisation_id", flat=True))
        request._staff_organisation_ids = ids  # type: ignore[attr-defined]  # a per-request memo
    return ids


class StaffOrganisationsFilter(admin.RelatedFieldListFilter):
    """An organisation filter that offers staff their own organisations only: the names of the
    others are not theirs to list."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        return [(o.pk, str(o)) for o in Organisation.objects.filter(pk__in=staff_organisation_ids(request))]


class OrganisationScopedAdminMixin(_ModelAdmin):
    """Staff see and choose only their organisations' records; operators (superusers) see all.

    ``organisation_paths`` are the lookups from the admin's model to the organisations whose staff
    may see a row: any of them will do (a shipment is its sender's and its consignee's). An empty
    tuple marks a structure of the whole ledger that no organisation owns (its head, the segments
    that several brands' units share, the prefixes learnt from everyone's URNs): operators only.

    Another organisation's row answers 404, exactly as a row that does not exist, so a staff user
    does not learn that it exists; its id typed into a form or a filter is refused the same way
    (choices come from the related admin's rows, organisation filters list their own only).
    Every registered admin has this mixin (tests/test_admin_ledger_facts.py holds that).
    """

    organisation_paths: tuple[str, ...] = ("owner",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        organisations = staff_organisation_ids(request)
        if not self.organisation_paths or not organisations:
            return queryset.none()
        scope = Q()
        for path in self.organisation_paths:
            scope |= Q(**{f"{path}__in": organisations})
        return queryset.filter(scope)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        if not self.organisation_paths and not request.user.is_superuser:
            return False
        return super().has_view_permission(request, obj)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None and not request.user.is_superuser:
            # Django redirects with "does not exist" instead; staff get the answer the rest of the
            # ledger gives for what is not theirs.
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")
        return obj

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        return [
            (name, StaffOrganisationsFilter) if isinstance(name, str) and self._names_organisation(name) else name
            for name in filters
        ]

    def _names_organisation(self, path: str) -> bool:
        try:
            return get_fields_from_path(self.model, path)[-1].related_model is Organisation
        except (FieldDoesNotExist, NotRelationField):  # not a field path: left as it is
            return False

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _scoped_choices(self, db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
        """Staff choose among the rows they may see: the related model's admin answers which."""
        if request.user.is_superuser or "queryset" in kwargs:
            return
        related = self.admin_site._registry.get(db_field.remote_field.model)
        if isinstance(related, OrganisationScopedAdminMixin):
            kwargs["queryset"] = related.get_queryset(request)


class ReadOnlyAdminMixin:
    """View only, for everyone, superusers included: ledger facts (units, lots, links, records,
    packings, shipments, EPCIS events, findings, runs) and the rows only services write (history,
    jobs). A correction is a retraction appended to the ledger, never an edit."""

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


#: How many of the rows naming a reference the delete page lists, per kind of row.
REFERENCES_SHOWN = 5


class ReferenceDataAdminMixin(_ModelAdmin):
    """Reference data (organisations, sites, product models, materials, cell models) stays
    editable, but is never deleted while a record names it.

    PROTECT refuses most such deletes; the hot tables' keys without a database constraint
    (``Unit.owner``, ``Unit.product_model``, ``Unit.site``, ...: ``DO_NOTHING``) would let one
    through and leave units naming a row that is gone, so the delete page lists their rows as
    protected too, and refuses the same way.
    """

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed, [*protected, *unconstrained_references(objs)]


def unconstrained_references(objs: Any) -> list[str]:
    """Rows naming any of ``objs`` through a key that neither the database nor Django protects."""
    found: list[str] = []
    for obj in objs:
        for relation in obj._meta.get_fields(include_hidden=True):
            if not (relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)):
                continue
            if relation.on_delete is not models.DO_NOTHING:
                continue
            model = relation.related_model
            rows = list(model._base_manager.filter(**{relation.field.name: obj.pk})[: REFERENCES_SHOWN + 1])
            found += [f"{capfirst(model._meta.verbose_name)}: {row}" for row in rows[:REFERENCES_SHOWN]]
            if len(rows) > REFERENCES_SHOWN:
                found.append(f"and more {model._meta.verbose_name_plural} naming {obj}")
    return found


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
    can_delete = False  # on the site's own page, which refuses while units or lots name it
    show_change_link = True


class CertificateInline(LoadedRowsInlineMixin, ReadOnlyAdminMixin, admin.TabularInline):
    """The holder's certificates, to read: one is registered on its own page (through the service,
    audited), and nothing of it is edited afterwards (``CertificateAdmin``)."""

    model = Certificate
    fk_name = "owner"  # the holder's certificates (``issued_by`` names the certification body)
    fields = ("scheme", "number", "issuer", "scope", "valid_from", "valid_to", "status")
    readonly_fields = fields
    extra = 0
    can_delete = False  # certificates are never deleted: revoked, suspended or expired, with history
    show_change_link = True


class OrganisationRoleInline(admin.TabularInline):
    """An organisation's roles; only operators change them (the regulator role widens what an
    organisation's members may read, so its own staff may not give it to themselves)."""

    model = OrganisationRole
    fields = ("role",)
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Organisation)
class OrganisationAdmin(OrganisationScopedAdminMixin, ReferenceDataAdminMixin, admin.ModelAdmin):
    organisation_paths = ("pk",)
    list_display = ("name", "slug", "roles_shown", "country", "gs1_company_prefix", "pgln", "created_at")
    list_filter = ("roles__role", "country")
    search_fields = ("name", "slug", "gs1_company_prefix", "pgln")
    search_help_text = "Name, slug, GS1 Company Prefix or party GLN."
    prepopulated_fields = {"slug": ("name",)}
    date_hierarchy = "created_at"
    inlines = (OrganisationRoleInline, SiteInline, CertificateInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organisation]:
        return super().get_queryset(request).prefetch_related("roles")

    @admin.display(description="roles")
    def roles_shown(self, organisation: Organisation) -> str:
        return ", ".join(organisation.role_names)


@admin.register(Site)
class SiteAdmin(OrganisationScopedAdminMixin, ReferenceDataAdminMixin, admin.ModelAdmin):
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


class CertificateForm(forms.ModelForm):
    """A new certificate, checked as ``certificate_register`` checks it: a refusal is put on its field.
    Its product models are linked from theirs (``ProductModel.certificates``), by the service."""

    class Meta:
        model = Certificate
        fields = (
            "owner",
            "scheme",
            "number",
            "issuer",
            "issued_by",
            "scope",
            "cell_models",
            "sites",
            "valid_from",
            "valid_to",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or self.instance.pk is not None:  # a registered one is read only
            return data
        try:
            certificate_checked(**_registered(data))
        except CertificateRefused as refused:
            field = (refused.field or "").removesuffix("_ids")  # cell_model_ids: the form's cell_models
            field = field if field in self.fields else f"{field}s"
            self.add_error(field if field in self.fields else None, str(refused))
        return data


def _registered(data: dict[str, Any]) -> dict[str, Any]:
    """``certificate_register``'s arguments from a certificate form's cleaned data."""
    return {
        "owner": data["owner"],
        "scheme": data["scheme"],
        "number": data["number"],
        "valid_from": data["valid_from"],
        "valid_to": data["valid_to"],
        "issued_by": data.get("issued_by"),
        "issuer": data.get("issuer") or "",
        "scope": data.get("scope") or "",
        "cell_model_ids": [m.pk for m in data.get("cell_models") or ()],
        "site_ids": [site.pk for site in data.get("sites") or ()],
    }


@admin.register(Certificate)
class CertificateAdmin(OrganisationScopedAdminMixin, admin.ModelAdmin):
    """Certificates are registered here through ``certificate_register`` (audited, the history's
    first entry) and never edited: a certificate reissued with other dates or coverage is another
    one. Its status changes by the actions only, through ``certificate_change_status`` (a reason,
    the history, the audit trail), and only by its issuer's staff or an operator: the holder's
    staff read it, and cannot lift a suspension or stretch a validity."""

    organisation_paths = ("owner", "issued_by")  # its holder's staff read it; its issuer's also act on it
    form = CertificateForm
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

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False  # a certificate that no longer holds is revoked (an action, with history)

    def get_readonly_fields(self, request: HttpRequest, obj: Certificate | None = None) -> list[str]:
        if obj is None:
            return ["status"]
        return [field.name for field in self.opts.get_fields() if field.concrete and field.name != "id"] + [
            field.name for field in self.opts.many_to_many
        ]

    def save_model(self, request: HttpRequest, obj: Certificate, form: forms.ModelForm, change: bool) -> None:
        if change:
            return  # nothing of a registered certificate is edited (every field is read-only)
        registered = certificate_register(**_registered(form.cleaned_data), by=request.user)
        obj.pk, obj.status, obj.issuer, obj.number = (
            registered.pk,
            registered.status,
            registered.issuer,
            registered.number,
        )

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        # The form's relations are not saved: the service set what a new one covers, and nothing of
        # a registered one is edited. The history inline is read-only: saving it writes nothing.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def has_status_permission(self, request: HttpRequest) -> bool:
        """Whether the status actions are offered: to operators, and to staff of a certification
        body (each certificate is then checked to be one it issued, ``_may_change_status``)."""
        if request.user.is_superuser:
            return True
        return Organisation.objects.filter(
            pk__in=staff_organisation_ids(request), roles__role=Role.CERTIFICATION_BODY
        ).exists()

    def _may_change_status(self, request: HttpRequest, certificate: Certificate) -> bool:
        return request.user.is_superuser or certificate.issued_by_id in staff_organisation_ids(request)

    @admin.action(description="Suspend selected certificates (give a reason)", permissions=["status"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Certificate]) -> None:
        self._change_status(request, queryset, CertificateStatus.SUSPENDED)

    @admin.action(description="Revoke selected certificates (give a reason)", permissions=["status"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Certificate]) -> None:
        self._change_status(request, queryset, CertificateStatus.REVOKED)

    @admin.action(description="Reinstate selected certificates as valid (give a reason)", permissions=["status"])
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
        changed, unchanged, failures = 0, 0, []
        for certificate in queryset.order_by("pk"):
            if not self._may_change_status(request, certificate):
                failures.append(f"{certificate}: only its issuer or an operator changes a certificate's status")
                continue
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
class CertificateStatusChangeAdmin(OrganisationScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    organisation_paths = ("certificate__owner",)
    list_display = ("certificate", "from_status", "to_status", "changed_at", "changed_by", "reason")
    list_filter = ("to_status", "from_status", "certificate__scheme")
    list_select_related = ("certificate", "changed_by")
    search_fields = ("certificate__number", "reason")
    search_help_text = "Certificate number or reason."
    date_hierarchy = "changed_at"


@admin.register(Membership)
class MembershipAdmin(OrganisationScopedAdminMixin, admin.ModelAdmin):
    organisation_paths = ("organisation",)
    list_display = ("user", "organisation", "role")
    list_filter = ("organisation__roles__role",)
    list_select_related = ("user", "organisation")
    search_fields = ("user__username", "organisation__name")
    search_help_text = "User name or organisation name."
    autocomplete_fields = ("organisation",)
    raw_id_fields = ("user",)

    # Who belongs to an organisation, and as what, is the operator's to say (``manage.py user add``,
    # or a superuser here): a staff user could otherwise add any user of the deployment to its own
    # organisation, or raise its own role. Staff read their organisations' members.
    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        return [] if obj is None else ["user", "organisation"]  # a membership's role changes; a new one is added

    # Every change goes through the services, which write the audit trail (as ``manage.py user add``).
    def save_model(self, request: HttpRequest, obj: Membership, form: forms.ModelForm, change: bool) -> None:
        registered = membership_add(
            username=obj.user.get_username(), organisation=obj.organisation, role=obj.role, update=True, by=request.user
        )
        obj.pk = registered.record.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(membership=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.order_by("pk"):
            membership_remove(membership=membership, by=request.user)


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("membership", "scope", "expires_at")

    def clean_expires_at(self) -> dt.datetime | None:
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise ValidationError("A token's expiry must be in the future.")
        return expires_at


@admin.register(ApiToken)
class ApiTokenAdmin(OrganisationScopedAdminMixin, admin.ModelAdmin):
    """Tokens are made here (the key is shown once, in the message after saving) and revoked by the
    action; the ledger keeps only a key's hash, so no page can show it again."""

    organisation_paths = ("membership__organisation",)
    form = ApiTokenForm
    list_display = ("key_prefix", "membership", "scope", "created_at", "expires_at", "revoked_at")
    list_filter = ("scope",)
    list_select_related = ("membership__user", "membership__organisation")
    search_fields = ("key_prefix", "membership__user__username", "membership__organisation__slug")
    search_help_text = "The key's first characters, user name or organisation slug."
    raw_id_fields = ("membership",)
    actions = ("revoke",)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A token acts as its member: staff make tokens for their own memberships only, never a key
        # that signs in as a colleague (a superuser, the operator, for anyone).
        if db_field.name == "membership" and not request.user.is_superuser:
            kwargs["queryset"] = Membership.objects.filter(user__pk=request.user.pk or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        # A token is never edited: what it may do is fixed when it is made; revoke it and make another.
        if obj is None:
            return ()
        return ("membership", "scope", "expires_at", "key_prefix", "created_at", "revoked_at")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        token, key = api_token_create(
            membership=form.cleaned_data["membership"],
            scope=form.cleaned_data["scope"],
            expires_at=form.cleaned_data["expires_at"],
            by=request.user,
        )
        # The admin's messages and log name the object it saved: make it the token the service made.
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding = False
        self.message_user(
            request,
            f"API token made for {token.membership}. Its key, shown this once: {key}",
            messages.SUCCESS,
        )

    @admin.action(description="Revoke selected API tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(api_token_revoke(token=token, by=request.user) for token in queryset.order_by("pk"))
        self.message_user(request, f"{revoked} API token(s) revoked.", messages.SUCCESS)
