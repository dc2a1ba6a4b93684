"""Secure by default with DEBUG off: HTTPS (redirect, HSTS, Secure cookies), a Content-Security-Policy
on every page, `check --deploy` clean, basic authentication off unless enabled, failed sign-ins
throttled (429 with Retry-After) on every way in that takes a secret, and /health/ that tells only
an operator what runs behind it."""

import base64
import json

import pytest
from django.db import DatabaseError, connection
from rest_framework.test import APIClient
from rest_framework.views import APIView

from suppliers.services import api_token_create
from tests.factories import OrganisationFactory
from tests.test_api_support import member
from tests.test_configuration import manage
from traceability.api import authentication
from traceability.core import signin

pytestmark = pytest.mark.django_db

PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "k3Jq9vX2-production-like-secret-0123456789-abcdefghijklmnopqrstuvwxyz"}


def test_check_deploy_finds_nothing_to_warn_about_with_production_settings(tmp_path):
    # when
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


# Production's answers, asked in a process started with production's environment (DEBUG off, nothing
# about HTTPS configured), through Django's test client: no database needed.
_ASK = """
import json
from django.test import Client
c = Client(HTTP_HOST="localhost")
def seen(r):
    cookies = {k: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"])} for k, m in r.cookies.items()}
    location = r.headers.get("Location")
    return {"status": r.status_code, "location": location, "headers": dict(r.headers), "cookies": cookies}
print(json.dumps({
    "plain": seen(c.get("/api/v1/docs/")),
    "health": seen(c.get("/health/")),
    "secure": seen(c.get("/admin/login/", secure=True)),
    "proxied": seen(c.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")),
}))
"""


def _production(tmp_path, **env: str) -> dict:
    result = manage("shell", "--no-imports", "-c", _ASK, env=PRODUCTION | env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_redirects_to_https_and_sends_hsts_csp_and_secure_cookies(tmp_path):
    # when
    seen = _production(tmp_path)
    # then plain HTTP is redirected, except the load balancer's health check
    assert (seen["plain"]["status"], seen["plain"]["location"]) == (301, "https://localhost/api/v1/docs/")
    assert seen["health"]["status"] == 200
    # and over HTTPS
    secure = seen["secure"]
    assert secure["status"] == 200
    assert secure["headers"]["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "script-src 'self'" in secure["headers"]["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in secure["headers"]["Content-Security-Policy"]
    assert (secure["headers"]["X-Frame-Options"], secure["headers"]["X-Content-Type-Options"]) == ("DENY", "nosniff")
    assert secure["cookies"] == {"csrftoken": {"secure": True, "httponly": True}}
    # a proxy's X-Forwarded-Proto is not believed unless configured: redirected
    assert seen["proxied"]["status"] == 301


def test_behind_a_tls_proxy_its_header_says_https(tmp_path):
    # when
    seen = _production(tmp_path, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    # then
    assert seen["proxied"]["status"] == 200
    assert seen["proxied"]["cookies"] == {"csrftoken": {"secure": True, "httponly": True}}


def test_plain_http_on_purpose_turns_off_the_redirect_hsts_and_secure_cookies(tmp_path):
    # when
    seen = _production(tmp_path, LEDGER_PLAIN_HTTP="1")
    # then
    assert seen["plain"]["status"] == 200
    assert "Strict-Transport-Security" not in seen["secure"]["headers"]
    assert seen["secure"]["cookies"] == {"csrftoken": {"secure": False, "httponly": True}}
    assert "Content-Security-Policy" in seen["plain"]["headers"]  # the policy stays


def test_basic_authentication_is_in_the_chain_only_when_enabled(tmp_path):
    # given
    script = "from django.conf import settings; print(settings.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'])"
    # when
    default = manage("shell", "--no-imports", "-c", script, env=PRODUCTION, tmp_path=tmp_path)
    enabled = manage(
        "shell", "--no-imports", "-c", script, env=PRODUCTION | {"LEDGER_BASIC_AUTH": "1"}, tmp_path=tmp_path
    )
    # then
    assert "BasicAuthentication" not in default.stdout, default.stderr
    assert "traceability.api.authentication.BasicAuthentication" in enabled.stdout, enabled.stderr


@pytest.mark.parametrize("path", ["/", "/api/v1/docs/", "/admin/login/", "/health/"])
def test_every_page_carries_the_content_security_policy(client, path):
    # when
    response = client.get(path)
    # then
    assert response.status_code == 200
    policy = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";"))
    assert (policy["default-src"], policy["script-src"], policy["object-src"]) == ("'self'", "'self'", "'none'")


def test_the_docs_page_loads_its_start_up_script_from_its_own_url(client):
    # when
    page = client.get("/api/v1/docs/").content.decode()
    script = client.get("/api/v1/docs/?script=")
    # then no inline script, which the policy would block
    assert "<script>" not in page and 'src="/api/v1/docs/?script="' in page
    assert (script.status_code, script["Content-Type"]) == (200, "application/javascript")


# --- failed sign-ins ---------------------------------------------------------------------------------------


@pytest.fixture()
def limit(settings):
    settings.LEDGER_SIGNIN_FAILURES = 3
    settings.LEDGER_SIGNIN_WINDOW = 300
    return 3


def _token(user) -> str:
    return api_token_create(membership=user.memberships.get())[1]


@pytest.mark.parametrize(
    ("path", "kind"), [("/api/v1/findings/", "api"), ("/epcis/events", "epcis")], ids=["rest", "epcis"]
)
def test_bad_tokens_are_throttled_then_even_the_right_one_waits(limit, path, kind):
    # given
    good = _token(member(OrganisationFactory()))
    client = APIClient()
    # when
    statuses = []
    for n in range(limit):
        client.credentials(HTTP_AUTHORIZATION=f"Token {'0' * 39}{n}")
        statuses.append(client.get(path).status_code)
    client.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    refused = client.get(path)
    # then
    assert statuses == [401] * limit
    assert refused.status_code == 429
    assert 290 <= int(refused["Retry-After"]) <= 300
    if kind == "api":
        assert refused.json()["code"] == "throttled"
        assert refused.json()["message"].startswith("Too many failed sign-ins: try again in ")
    else:
        assert (refused.json()["type"], refused.json()["status"]) == ("epcisException:SecurityException", 429)


def test_a_right_token_is_not_counted_and_another_address_is_not_held_back(limit):
    # given
    good = _token(member(OrganisationFactory()))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    # when
    answers = [client.get("/api/v1/findings/").status_code for _ in range(limit + 2)]
    for n in range(limit):
        APIClient(HTTP_AUTHORIZATION=f"Token bad{n}").get("/api/v1/findings/")
    elsewhere = client.get("/api/v1/findings/", REMOTE_ADDR="192.0.2.7")
    # then
    assert answers == [200] * (limit + 2)
    assert elsewhere.status_code == 200


def test_basic_authentication_is_off_by_default():
    # given a user with a password
    user = member(OrganisationFactory())
    user.set_password("right horse battery")
    user.save()
    header = "Basic " + base64.b64encode(f"{user.username}:right horse battery".encode()).decode()
    # when
    response = APIClient(HTTP_AUTHORIZATION=header).get("/api/v1/findings/")
    # then
    assert response.status_code == 401


def test_basic_authentication_when_enabled_is_throttled(limit, monkeypatch):
    # given the chain with basic authentication (LEDGER_BASIC_AUTH=1 at start-up)
    chain = [authentication.TokenAuthentication, authentication.BasicAuthentication]
    monkeypatch.setattr(APIView, "authentication_classes", chain)
    user = member(OrganisationFactory())
    user.set_password("right horse battery")
    user.save()

    def basic(password: str) -> APIClient:
        return APIClient(
            HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{user.username}:{password}".encode()).decode()
        )

    # when
    first = basic("right horse battery").get("/api/v1/findings/")
    wrong = [basic(f"guess {n}").get("/api/v1/findings/").status_code for n in range(limit)]
    right = basic("right horse battery").get("/api/v1/findings/")
    # then
    assert first.status_code == 200
    assert wrong == [401] * limit
    assert (right.status_code, right.json()["code"]) == (429, "throttled")
    assert int(right["Retry-After"]) > 0


def test_the_admin_login_form_is_throttled_and_opens_again_after_the_window(limit, admin_user, client, monkeypatch):
    # when
    wrong = [
        client.post("/admin/login/", {"username": "admin", "password": f"guess {n}"}).status_code for n in range(limit)
    ]
    refused = client.post("/admin/login/", {"username": "admin", "password": "password"})
    clock = signin.time.time() + 301
    monkeypatch.setattr(signin.time, "time", lambda: clock)
    later = client.post("/admin/login/", {"username": "admin", "password": "password"})
    # then
    assert wrong == [200] * limit
    assert refused.status_code == 429 and 290 <= int(refused["Retry-After"]) <= 300
    assert refused.content.decode().startswith("Too many failed sign-ins: try again in ")
    assert later.status_code == 302


def test_the_client_address_behind_proxies_is_the_one_the_nearest_proxy_saw(settings, rf):
    # given
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.2", REMOTE_ADDR="10.0.0.1")
    # when
    settings.LEDGER_NUM_PROXIES = 0
    direct = signin.client_address(request)
    settings.LEDGER_NUM_PROXIES = 1
    one = signin.client_address(request)
    settings.LEDGER_NUM_PROXIES = 2
    two = signin.client_address(request)
    # then
    assert (direct, one, two) == ("10.0.0.1", "198.51.100.2", "203.0.113.9")


# --- /health/ ----------------------------------------------------------------------------------------------


def test_health_says_only_ok_to_anyone_and_what_runs_to_an_operator(client, admin_client):
    # when
    anyone = client.get("/health/")
    operator = admin_client.get("/health/")
    # then
    assert (anyone.status_code, anyone.json()) == (200, {"status": "ok"})
    assert (operator.status_code, operator.json()) == (200, {"status": "ok", "database": connection.vendor})


def test_health_answers_503_when_the_database_is_unreachable(client, monkeypatch):
    # given
    from traceability import views

    def unreachable():
        raise DatabaseError("connection refused by 10.0.0.5:5432")

    monkeypatch.setattr(views.connection, "cursor", unreachable)
    # when
    response = client.get("/health/")
    # then
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
