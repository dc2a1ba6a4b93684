"""``/graphql/`` over HTTP: POST a query (``{"query", "variables", "operationName"}``) with an API
token (``Authorization: Token …``) or a signed-in session; GET in a browser, signed in, opens
GraphiQL, whose scripts and styles the ledger serves itself (the CSP allows no other origin and no
inline script).

Authentication is the REST API's, through DRF: the same token lookup and sign-in throttling
(``traceability.api``'s classes, named in ``REST_FRAMEWORK``), the same ``Caller``. An anonymous
caller, or one acting for no organisation, gets an error and never data. Every operation that
parses is written to the audit trail with its name, variables and caller (refused ones too).
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render
from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from traceability.access.permissions import caller_of
from traceability.core.audit import audit_record
from traceability.core.errors import DomainError
from traceability.core.limits import JSON, body_bound
from traceability.core.models import AuditAction
from traceability.core.parsers import BoundedJSONParser
from traceability.events.limits import escaped
from traceability.gql.context import Context
from traceability.gql.protection import MAX_TOKENS, limits_refusal, measure
from traceability.gql.schema import schema

# What an audit entry keeps of a query's text and variables: enough to tell what was asked, small
# however large a document a client sends.
QUERY_KEPT = 4_000
VARIABLES_KEPT = 4_000

logger = logging.getLogger(__name__)


def _never_awaitable(value: Any) -> bool:
    """Every resolver answers synchronously, so no value needs awaiting: graphql-core's own check
    (two ``isinstance`` and a ``hasattr`` on every value it completes, 33,000 of them in a
    regulator's dashboard of a million-unit run) is skipped."""
    return False


def _errors(message: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extra}}]}


def graphql_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's answer to an authentication, throttling or body refusal (its status and headers: 401,
    429 with Retry-After, 413), written as GraphQL errors."""
    if isinstance(exc, DomainError):  # a body over the limit (``body_bound``)
        code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if exc.code.endswith("too_large") else 411
        return Response(_errors(exc.message, exc.code), status=code)
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", str(exc))
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if isinstance(code, dict | list):
        code = "invalid"
    response.data = _errors(str(detail if not isinstance(detail, dict | list) else json.dumps(detail)), str(code))
    return response


class JsonAnswers(BaseContentNegotiation):
    """Answers are JSON whatever the client accepts (GraphiQL's page is rendered apart): a browser's
    ``Accept: text/html`` is not refused with 406."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class GraphQLView(APIView):
    """The one endpoint of the GraphQL API."""

    permission_classes: list[type] = []  # anonymous callers are answered by ``post``, in GraphQL's words
    content_negotiation_class = JsonAnswers
    schema = None  # not a REST endpoint: the OpenAPI document leaves it out (its contract is schema.graphql)
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self) -> Any:
        return graphql_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        body_bound(request._request, JSON)  # first of all, as every interface: an oversized body unread
        super().initial(request, *args, **kwargs)

    def get(self, request: Request) -> HttpResponse:
        """GraphiQL for a browser signed in; queries are POSTed."""
        if "text/html" not in request.headers.get("Accept", ""):
            return Response(
                _errors('POST your query as JSON: {"query": …, "variables": …}', "method_not_allowed"),
                status=status.HTTP_405_METHOD_NOT_ALLOWED,
                headers={"Allow": "POST"},
            )
        if not request.user.is_authenticated:
            # The pages' sign-in (settings.LOGIN_URL), for every role: the admin's takes staff only.
            return redirect_to_login(request.get_full_path())
        return render(request._request, "graphql/graphiql.html", {})

    def post(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            return Response(
                _errors(
                    "sign in: send an API token (Authorization: Token …) or use a signed-in session",
                    "not_authenticated",
                ),
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Token"},
            )
        caller = caller_of(request)
        if caller.organisation is None:
            return Response(
                _errors(
                    "your account acts for no organisation: ask an administrator to make you a member of one",
                    "no_organisation",
                ),
                status=status.HTTP_403_FORBIDDEN,
            )
        body = request.data
        if not isinstance(body, dict):
            return Response(_errors('the body is a JSON object: {"query": …}', "invalid_body"), status=400)
        query, variables, operation_name = body.get("query"), body.get("variables"), body.get("operationName")
        if not isinstance(query, str) or not query.strip():
            return Response(_errors("query is missing: the body's query is the GraphQL document", "no_query"), 400)
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            return Response(
                _errors("variables is a JSON object of the operation's variables", "invalid_variables"), 400
            )
        if operation_name is not None and not isinstance(operation_name, str):
            return Response(_errors("operationName is a string", "invalid_operation_name"), 400)
        answer, kind, named, refused = self.run(
            request, Context(request=request._request, caller=caller), query, variables, operation_name
        )
        self.audit(request, caller, query, variables, named, kind, refused, answer)
        return Response(answer, status=400 if refused else 200)

    def run(
        self, request: Request, context: Context, query: str, variables: dict[str, Any], operation_name: str | None
    ) -> tuple[dict[str, Any], str, str | None, str | None]:
        """(the answer, the operation's kind and name, the code it was refused with before running or
        None). The name is the operation's own, when the request did not need to say it."""
        try:
            document, problems = checked_document(query)
        except GraphQLError as error:
            return {"errors": [_formatted(error, "syntax_error")]}, "query", operation_name, "syntax_error"
        graphql_schema = schema.graphql_schema
        if problems:
            return (
                {"errors": [_formatted(e, "invalid_query") for e in problems]},
                "query",
                operation_name,
                "invalid_query",
            )
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
        if len(chosen) != 1:
            names = ", ".join(o.name.value for o in operations if o.name) or "none named"
            message = (
                f"no operation is named {operation_name!r} (the document has: {names})"
                if operation_name is not None
                else f"the document holds {len(operations)} operations: say which in operationName ({names})"
            )
            return (
                {"errors": [{"message": message, "extensions": {"code": "unknown_operation"}}]},
                "query",
                operation_name,
                "unknown_operation",
            )
        operation = chosen[0]
        kind = operation.operation.value
        operation_name = operation.name.value if operation.name else None
        if operation.operation == OperationType.SUBSCRIPTION:
            return (
                _errors("subscriptions are not offered", "unsupported_operation"),
                kind,
                operation_name,
                "unsupported_operation",
            )
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        if refusal := limits_refusal(measure(graphql_schema, operation, fragments, variables)):
            return {"errors": [refusal.formatted]}, kind, operation_name, str(refusal.extensions["code"])  # type: ignore[index]
        result = execute(
            graphql_schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            is_awaitable=_never_awaitable,
        )
        assert isinstance(result, ExecutionResult)  # every resolver is synchronous
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [_formatted(error, "invalid") for error in result.errors]
        answer["data"] = result.data
        return answer, kind, operation_name, None

    def audit(
        self,
        request: Request,
        caller: Any,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None,
        kind: str,
        refused: str | None,
        answer: dict[str, Any],
    ) -> None:
        """One entry per operation, whoever calls: its name, kind, variables and text (both bounded),
        the string variables as identifiers (the trail is searched by them), and how it ended."""
        written = json.dumps(variables, ensure_ascii=False, sort_keys=True)
        kept: Any = _storable(variables) if len(written) <= VARIABLES_KEPT else escaped(written[:VARIABLES_KEPT])
        audit_record(
            action=AuditAction.WRITE_GRAPHQL if kind == "mutation" else AuditAction.READ_GRAPHQL,
            user=request.user,
            organisation=caller.organisation,
            identifiers=[escaped(f"{n}:{v}")[:200] for n, v in sorted(variables.items()) if isinstance(v, str)][:20],
            detail={
                "operation": escaped(operation_name or ""),
                "kind": kind,
                "variables": kept,
                **({"variables_truncated": True} if len(written) > VARIABLES_KEPT else {}),
                "query": escaped(query[:QUERY_KEPT]),
                **({"query_truncated": True} if len(query) > QUERY_KEPT else {}),
                "errors": len(answer.get("errors", ())),
                **({"refused": refused} if refused else {}),
            },
        )


# Documents parsed and validated, by their text: a script or a dashboard sends the same few queries
# again and again, and validating the dashboard's query alone took 22 ms (parsing it 8 ms) on the
# bench machine, more than its resolvers' own Python. Only documents up to CACHED_CHARS are kept, so
# the cache holds at most CACHED_DOCUMENTS × that much text (and its syntax tree) whatever is sent.
CACHED_DOCUMENTS = 256
CACHED_CHARS = 8_000


def checked_document(query: str) -> tuple[DocumentNode, tuple[GraphQLError, ...]]:
    """``query`` parsed (``MAX_TOKENS`` at most: a ``GraphQLError`` past it or on a syntax error)
    and validated against the schema: the document and the problems found, none when valid."""
    if len(query) <= CACHED_CHARS:
        return _checked_cached(query)
    return _checked(query)


def _checked(query: str) -> tuple[DocumentNode, tuple[GraphQLError, ...]]:
    document = parse(query, max_tokens=MAX_TOKENS)
    return document, tuple(validate(schema.graphql_schema, document))


# graphql-core's syntax trees are not changed by execution: one may serve every request with the text.
_checked_cached = functools.lru_cache(maxsize=CACHED_DOCUMENTS)(_checked)


def _storable(value: Any) -> Any:
    """``value`` with every string's unstorable characters (a NUL) escaped, as the trail stores text."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {escaped(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _formatted(error: GraphQLError, code: str) -> dict[str, Any]:
    """An error as GraphQL writes it, with a stable code in its extensions: its own, a domain
    refusal's (``DomainError.code``), or ``code``. An unexpected exception in a resolver is logged
    and answered ``internal_error``, without its message (it may name the database's internals)."""
    formatted = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    original = error.original_error
    if isinstance(original, DomainError):
        extensions.setdefault("code", original.code)
    elif original is not None and not isinstance(original, GraphQLError):
        logger.error("GraphQL resolver failed", exc_info=original)
        formatted["message"] = "internal error: the request id in X-Request-ID finds it in the server's log"
        extensions["code"] = "internal_error"
    extensions.setdefault("code", code)
    formatted["extensions"] = extensions
    return formatted


graphql_view = GraphQLView.as_view()
