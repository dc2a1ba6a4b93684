"""Helpers shared by the REST API tests (no tests here): callers, findings raised and traced, counts."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
from types import SimpleNamespace
from typing import Any

import jsonschema
from django.contrib.auth import get_user_model
from django.db import transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from packs.models import Container, Shipment, ShipmentItem
from suppliers.models import Membership, Organisation, Role
from tests.factories import OrganisationFactory, with_check_digit
from tests.jobs_support import run_job
from tests.trace_world import AT
from traceability.core.models import Job
from traceability.genealogy.commissioning import units_create, units_pack
from traceability.genealogy.writes import UnitBuild, unit_builds_record
from traceability.investigations.models import Finding, Investigation, InvestigationTransition, TraceRun
from traceability.ledger.selectors import identifier_render
from traceability.ledger.services import ledger_append

_names = itertools.count(1)


def member(organisation: Organisation | None, username: str | None = None) -> Any:
    """A user acting for ``organisation`` (for none when None)."""
    # No password: hashing one costs a third of a second, and the tests authenticate by force.
    user = get_user_model().objects.create_user(username=username or f"user{next(_names)}")
    if organisation is not None:
        Membership.objects.create(user=user, organisation=organisation)
    return user


def client_for(user: Any | None) -> APIClient:
    client = APIClient()
    client.user = user
    if user is not None:
        client.force_authenticate(user)
    return client


def callers(w: SimpleNamespace) -> dict[str, APIClient]:
    """Anonymous, another organisation, the owner (the world's brand) and a regulator."""
    return {
        "anonymous": client_for(None),
        "other": client_for(member(OrganisationFactory(role=Role.BRAND))),
        "owner": client_for(member(w.brand)),
        "regulator": client_for(member(OrganisationFactory(role=Role.REGULATOR))),
    }


def urn(canonical: str) -> str:
    return identifier_render(canonical, form="epc")


def raise_finding(client: APIClient, subject: str | None, **fields: Any) -> Any:
    """POST a finding; ``subject`` None leaves it out (for supplier or site subjects)."""
    body = {"category": "metallic_debris", "severity": "critical", "description": "Fe 45 µm", **fields}
    if subject is not None:
        body["subject"] = subject
    return client.post("/api/v1/findings/", body, format="json")


def traced(client: APIClient, w: SimpleNamespace) -> dict[str, Any]:
    """A finding on material lot M1, its run finished: the response body of the POST."""
    response = raise_finding(client, urn(w.m1.identity))
    assert response.status_code == 201, response.json()
    run_job(TraceRun.objects.get(pk=response.json()["run"]).job)
    return response.json()


def written() -> dict[str, int]:
    """Row counts of everything the API writes, to assert a refused request changed nothing."""
    return {
        model.__name__: model.objects.count()
        for model in (Finding, Investigation, InvestigationTransition, TraceRun, Job)
    }


def more_units(w: SimpleNamespace, count: int) -> list[int]:
    """``count`` more units built from module lot MOD1 (so downstream of M1, definitely), packed in a
    carton shipped to distributor D2."""
    with transaction.atomic():
        ids = units_create(
            owner=w.brand,
            product_model=w.work_order.product_model,
            work_order=w.work_order,
            serials=[f"X{i:04d}" for i in range(count)],
            produced_at=AT + dt.timedelta(days=40),
        )
        entry = ledger_append(source="manual", summary="more units")
        unit_builds_record(
            entry=entry,
            owner=w.brand,
            builds=[
                UnitBuild(reference=f"build X{i:04d}", unit_id=unit, lot_ids=frozenset({w.mod1.pk}), occurred_at=AT)
                for i, unit in enumerate(ids)
            ],
        )
    prefix = w.brand.gs1_company_prefix
    sscc = "0" + prefix + "9" * (16 - len(prefix))
    carton = Container.objects.create(
        owner=w.brand, identity=f"sscc:{with_check_digit(sscc)}", sscc=with_check_digit(sscc), kind="carton"
    )
    with transaction.atomic():
        units_pack(packings=[(carton.pk, unit, AT) for unit in ids])
    shipment = Shipment.objects.create(
        owner=w.brand, reference="DA-X", consignee=w.d2, shipped_at=AT + dt.timedelta(days=45)
    )
    ShipmentItem.objects.create(shipment=shipment, container=carton)
    return ids


def iso(value: dt.datetime | None) -> str | None:
    """A datetime as the API writes it."""
    from rest_framework.fields import DateTimeField

    return DateTimeField().to_representation(value) if value else None


@functools.cache
def openapi_schema() -> dict[str, Any]:
    """The API's OpenAPI document, as /api/v1/schema/ serves it."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema: ``nullable`` becomes a null alternative."""
    if not isinstance(node, dict):
        return node
    converted = {key: value for key, value in node.items() if key not in ("nullable", "readOnly", "writeOnly")}
    if "properties" in node:
        converted["properties"] = {name: _json_schema(value) for name, value in node["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            converted[key] = _json_schema(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            converted[key] = [_json_schema(value) for value in node[key]]
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") else converted


def schema_problems(response: Any, path: str, method: str = "get") -> list[str]:
    """Where a JSON answer differs from what the schema declares for ``path`` (as the schema spells
    it, e.g. ``/api/v1/runs/{id}/``) and the answer's status: one line per problem, none when it matches."""
    schema = openapi_schema()
    declared = schema["paths"][path][method]["responses"][str(response.status_code)]
    root = {
        **_json_schema(declared["content"]["application/json"]["schema"]),
        "components": {
            "schemas": {name: _json_schema(value) for name, value in schema["components"]["schemas"].items()}
        },
    }
    validator = jsonschema.Draft202012Validator(root)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(response.json())
    ]
