"""Reads of units as reference data: which certificate a unit stands under, by scheme; and which
certificates concern an organisation (``certificates_concerning``).

"Is this unit's 3C certificate valid" has one answer: among the certificates of the scheme that
cover the unit's product model (``ProductModel.certificates``) and the site it was made at (a
certificate naming sites covers those only; one naming none, every site of its holder), the best
standing on the day asked wins: valid, else suspended (it may be reinstated), else revoked, else
expired; ``none`` when no certificate covers the unit (or none had started by that day).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet, TextChoices
from django.utils import timezone

from cells.models import CellModel
from packs.models import ProductModel, Unit
from suppliers.models import Certificate, CertificateScheme, CertificateStatus, Site


class Standing(TextChoices):
    """A unit's standing under one certification scheme, best first."""

    VALID = "valid", "Covered by a valid certificate"
    SUSPENDED = "suspended", "Its certificate is suspended"
    REVOKED = "revoked", "Its certificate is revoked"
    EXPIRED = "expired", "Its certificate has expired"
    NONE = "none", "No certificate of the scheme covers it"


_RANK = {standing: rank for rank, standing in enumerate(Standing.values)}


@dataclass(frozen=True)
class UnitCertificate:
    """The answer for one scheme, and the certificate it rests on (None with ``none``)."""

    scheme: str
    standing: str
    certificate: Certificate | None


def certificate_standing(certificate: Certificate, *, on: dt.date) -> str:
    """How a certificate stands on ``on``: its status, and expired past its validity whatever the
    status says (the nightly expiry may not have run yet)."""
    if certificate.status == CertificateStatus.VALID:
        return Standing.EXPIRED if certificate.valid_to < on else Standing.VALID
    return str(certificate.status)


def unit_certificates(
    unit: Unit, *, schemes: Collection[str] | None = None, on: dt.date | None = None
) -> list[UnitCertificate]:
    """The unit's standing under each of ``schemes`` (all of them when None), in the schemes' order.

    Four queries whatever the number of certificates: the covering certificates with their holder
    and issuer, then the product models, cell models and sites they cover (the sites decide; all
    three are what an answer shows the certificate covers)."""
    on = on or timezone.localdate()
    wanted = [scheme for scheme in CertificateScheme.values if schemes is None or scheme in schemes]
    site_id = unit.site_id if unit.site_id is not None else (unit.work_order.site_id if unit.work_order else None)
    certificates = list(
        Certificate.objects.filter(product_models=unit.product_model_id, scheme__in=wanted, valid_from__lte=on)
        .select_related("owner", "issued_by")
        .prefetch_related("product_models", "cell_models", "sites")
        .order_by("-valid_to", "-pk")
    )
    by_scheme: dict[str, list[Certificate]] = defaultdict(list)
    for certificate in certificates:
        sites = {site.pk for site in certificate.sites.all()}
        if not sites or site_id in sites:
            by_scheme[certificate.scheme].append(certificate)
    answers = []
    for scheme in wanted:
        # Newest first: of two certificates standing alike, the one valid longest answers.
        ranked = sorted(by_scheme[scheme], key=lambda c: _RANK[certificate_standing(c, on=on)])
        best = ranked[0] if ranked else None
        standing = certificate_standing(best, on=on) if best is not None else Standing.NONE
        answers.append(UnitCertificate(scheme=scheme, standing=str(standing), certificate=best))
    return answers


def unit_certificate(unit: Unit, scheme: str, *, on: dt.date | None = None) -> UnitCertificate:
    """The unit's standing under one scheme (``unit_certificates`` for one)."""
    return unit_certificates(unit, schemes=[scheme], on=on)[0]


def certificates_concerning(*, organisation_id: int) -> QuerySet[Certificate]:
    """The certificates an organisation holds, and those of others that cover the cell models of its
    lots or its sites, in the directory's order (scheme, number), each with its holder, its issuer
    and what it covers: four queries, whatever their number. Certificates are the directory's facts
    (GraphQL shows any organisation's): this says which concern the organisation, not who reads them."""
    covering = (
        Q(owner_id=organisation_id)
        | Q(
            pk__in=Certificate.cell_models.through.objects.filter(cellmodel__lots__owner_id=organisation_id).values(
                "certificate_id"
            )
        )
        | Q(pk__in=Certificate.sites.through.objects.filter(site__owner_id=organisation_id).values("certificate_id"))
    )
    return (
        Certificate.objects.filter(covering)
        .select_related("owner", "issued_by")
        .prefetch_related(
            Prefetch("product_models", ProductModel.objects.order_by("model_number", "pk")),
            Prefetch("cell_models", CellModel.objects.order_by("name", "pk")),
            Prefetch("sites", Site.objects.order_by("name", "pk")),
        )
        .order_by("scheme", "number", "pk")
    )
