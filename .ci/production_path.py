"""The HTTP half of .ci/production-path: a QA engineer's day over the API, against a running web
server and worker that share nothing but the database, the broker and the media folder, then the
same engineer signed in to the pages, whose scripts and stylesheets only WhiteNoise serves here.

Standard library only: it runs with the Python of the virtualenv made from requirements.txt alone,
which has no test tools. Reads LEDGER_URL (http://host:port), LEDGER_TOKEN (an API token of a QA
engineer of the brand whose GS1 Company Prefix is PREFIX), and LEDGER_USERNAME and LEDGER_PASSWORD
(the same engineer's, to sign in to the pages). Prints each step; on the first failure prints which
step failed and why, and exits 1.
"""

from __future__ import annotations

import csv
import gzip
import http.cookiejar
import io
import ipaddress
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import Message
from html.parser import HTMLParser
from typing import Any

PREFIX = "0614141"  # the brand's GS1 Company Prefix, as .ci/production-path registers it
UNIT_ITEM, LOT_ITEM = "011234", "022345"  # indicator digit + item reference (6 digits with a 7-digit prefix)
LOT = "CLPP01"
CAPTURED_SERIALS = ["PP0001", "PP0002", "PP0003"]  # commissioned and built from LOT over EPCIS
CSV_SERIALS = ["PP0004", "PP0005"]  # built from LOT by a CSV file of assignments
POLL_SECONDS = 90


class StepFailed(Exception):
    pass


def gtin14(item: str) -> str:
    """The GTIN-14 of an SGTIN or LGTIN's company prefix and item reference, with its check digit."""
    body = item[0] + PREFIX + item[1:]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def unit_urn(serial: str) -> str:
    return f"urn:epc:id:sgtin:{PREFIX}.{UNIT_ITEM}.{serial}"


LOT_URN = f"urn:epc:class:lgtin:{PREFIX}.{LOT_ITEM}.{LOT}"


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base.rstrip("/"), token

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None, accept: str = "*/*"
    ) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else self.base + path
        headers = {"Authorization": f"Token {self.token}", "Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()
        except OSError as error:
            raise StepFailed(f"{method} {url}: no answer ({error})") from None

    def expect(self, status: int, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[dict, bytes]:
        """The answer to a request that must answer ``status``; a JSON body is sent as JSON."""
        if body is not None and not isinstance(body, bytes):
            body, kwargs["content_type"] = json.dumps(body).encode(), "application/json"
        got, headers, data = self.call(method, path, body, **kwargs)
        if got != status:
            raise StepFailed(f"{method} {path} answered {got}, not {status}: {data[:2000].decode(errors='replace')}")
        return headers, data

    def json(self, path: str) -> Any:
        _, data = self.expect(200, "GET", path, accept="application/json")
        return json.loads(data)


def poll(what: str, read: Callable[[], Any], finished: Callable[[Any], bool]) -> Any:
    """Read until ``finished`` says so, or fail after POLL_SECONDS with the last answer."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        answer = read()
        if finished(answer):
            return answer
        if time.monotonic() > deadline:
            raise StepFailed(f"{what} still unfinished after {POLL_SECONDS} s: {json.dumps(answer)[:2000]}")
        time.sleep(0.5)


def capture_finished(api: Api, location: str, what: str) -> dict:
    """Poll an EPCIS capture job until it has run; fail unless it succeeded."""
    job = poll(what, lambda: api.json(location), lambda job: not job["running"])
    if not job["success"]:
        raise StepFailed(f"{what} {location} failed: {json.dumps(job['errors'], ensure_ascii=False)[:2000]}")
    return job


def job_finished(api: Api, path: str, what: str, status_of: Callable[[dict], dict] = lambda body: body) -> dict:
    """Poll a resource carrying a Job until the job has succeeded; fail if it failed."""
    body = poll(what, lambda: api.json(path), lambda body: status_of(body)["status"] in ("succeeded", "failed"))
    job = status_of(body)
    if job["status"] != "succeeded":
        raise StepFailed(f"{what} failed: {job['error'] or job['phase']}")
    return body


def step_static(api: Api) -> str:
    headers, health = api.expect(200, "GET", "/health/")
    if json.loads(health) != {"status": "ok"}:  # an anonymous caller is told nothing more
        raise StepFailed(f"/health/ told an anonymous caller more than ok: {health[:200]!r}")
    if "script-src 'self'" not in headers.get("Content-Security-Policy", ""):
        raise StepFailed(f"/health/ has no Content-Security-Policy: {headers}")
    _, css = api.expect(200, "GET", "/static/admin/css/base.css")  # collected; served by WhiteNoise with DEBUG off
    if b"body" not in css:
        raise StepFailed(f"/static/admin/css/base.css is not the admin's stylesheet: {css[:200]!r}")
    return "web answers /health/ (ok, under the Content-Security-Policy) and serves collected static files"


def step_capture(api: Api) -> str:
    at = "2024-07-01T08:00:00Z"
    commissioning = {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:4f4c7c42-6b0e-4e55-9a39-0d1b8a3f0001",
        "eventTime": at,
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "epcList": [unit_urn(s) for s in CAPTURED_SERIALS],
    }
    build = {
        "type": "TransformationEvent",
        "eventID": "urn:uuid:4f4c7c42-6b0e-4e55-9a39-0d1b8a3f0002",
        "eventTime": "2024-07-01T09:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "bizStep": "assembling",
        "inputQuantityList": [{"epcClass": LOT_URN, "quantity": len(CAPTURED_SERIALS)}],
        "outputEPCList": [unit_urn(s) for s in CAPTURED_SERIALS],
    }
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": at,
        "epcisBody": {"eventList": [commissioning, build]},
    }
    headers, _ = api.expect(
        202, "POST", "/epcis/capture", json.dumps(document).encode(), content_type="application/ld+json"
    )
    location = headers.get("Location") or ""
    if not location.startswith("/epcis/capture/"):
        raise StepFailed(f"POST /epcis/capture answered 202 without a capture job's Location: {headers}")
    job = capture_finished(api, location, "the capture job")
    if job["captured"] != 2:
        raise StepFailed(f"the capture job captured {job['captured']} events, not 2: {json.dumps(job)}")
    return f"capture job {location} succeeded: 2 events captured ({len(CAPTURED_SERIALS)} units from lot {LOT})"


def step_csv(api: Api) -> str:
    _, template = api.expect(200, "GET", "/api/v1/csv/assignments/template/", accept="text/csv")
    columns = next(csv.reader(io.StringIO(template.decode())))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for serial in CSV_SERIALS:
        writer.writerow(
            {
                "unit_gtin": gtin14(UNIT_ITEM),
                "unit_serial": serial,
                "lot_gtin": gtin14(LOT_ITEM),
                "lot": LOT,
                "built_at": "2024-07-02T08:00:00Z",
            }
        )
    headers, _ = api.expect(202, "POST", "/api/v1/csv/assignments/", out.getvalue().encode(), content_type="text/csv")
    location = headers.get("Location") or ""
    job = capture_finished(api, location, "the CSV import's capture job")
    if job["captured"] != len(CSV_SERIALS):
        raise StepFailed(f"the CSV import captured {job['captured']} events, not {len(CSV_SERIALS)}: {json.dumps(job)}")
    return f"CSV import {location} succeeded: {len(CSV_SERIALS)} more units built from lot {LOT}"


def step_finding(api: Api) -> tuple[str, dict]:
    finding = {"subject": LOT_URN, "category": "metallic_debris", "severity": "critical", "description": "Fe 45 µm"}
    _, data = api.expect(201, "POST", "/api/v1/findings/", finding)
    created = json.loads(data)
    expected = len(CAPTURED_SERIALS) + len(CSV_SERIALS)
    run = job_finished(api, f"/api/v1/runs/{created['run']}/", "the trace run", status_of=lambda run: run["job"])
    affected = (run["definite_units"], run["potential_units"])
    if affected != (expected, 0):
        raise StepFailed(f"run {run['id']} reports {affected} (definite, potential) units, not ({expected}, 0)")
    return f"finding {created['id']} traced by run {run['id']}: {expected} units definitely affected", created


def step_export(api: Api, created: dict) -> str:
    _, data = api.expect(202, "POST", f"/api/v1/investigations/{created['investigation']}/exports/", {"format": "csv"})
    job = job_finished(api, f"/api/v1/jobs/{json.loads(data)['id']}/", "the export job")
    if not job["download"]:
        raise StepFailed(f"export job {job['id']} succeeded without a download: {json.dumps(job)}")
    _, text = api.expect(200, "GET", job["download"], accept="text/csv")
    rows = [(row["serial"], row["exposure"]) for row in csv.DictReader(io.StringIO(text.decode()))]
    expected = [(serial, "definite") for serial in CAPTURED_SERIALS + CSV_SERIALS]
    if rows != expected:
        raise StepFailed(f"the exported file has rows {rows}, not {expected}")
    return f"export job {job['id']} wrote {len(rows)} rows, downloaded"


# --- the pages, signed in with a password ------------------------------------------------------


class LoopbackIsTrustworthy(http.cookiejar.DefaultCookiePolicy):
    """Production's cookies are Secure, and this web server speaks plain HTTP on 127.0.0.1. Browsers
    count a loopback address a potentially trustworthy origin and send Secure cookies to it over
    plain HTTP; so does this jar, and nowhere else (the flags themselves are checked at sign-in)."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        host = urllib.parse.urlsplit(request.full_url).hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        return loopback or super().return_ok_secure(cookie, request)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to check (sign-in's to the desk), not one to follow blindly."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """What a member's browser keeps and sends: cookies (the session, the CSRF cookie), the form's
    CSRF token and the Origin on a POST, gzip accepted."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar(LoopbackIsTrustworthy())
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirects())

    def call(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
        url = urllib.parse.urljoin(self.base + "/", path)
        headers = {"Accept": "text/html,*/*", "Accept-Encoding": "gzip"}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers |= {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.base}
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as response:
                status, answer, data = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, answer, data = error.code, error.headers, error.read()
        except OSError as error:
            raise StepFailed(f"{method} {url}: no answer ({error})") from None
        if answer.get("Content-Encoding", "").strip().lower() == "gzip":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as error:
                raise StepFailed(f"{method} {url}: its gzip-encoded answer does not decompress ({error})") from None
        return status, answer, data

    def page(self, path: str) -> tuple[Message, PageParts]:
        status, headers, data = self.call("GET", path)
        if status != 200:
            raise StepFailed(f"GET {path} answered {status}, not 200: {data[:2000].decode(errors='replace')}")
        if headers.get_content_type() != "text/html":
            raise StepFailed(f"GET {path} answered {headers.get_content_type()}, not text/html")
        parts = PageParts()
        parts.feed(data.decode())
        parts.close()
        return headers, parts


class PageParts(HTMLParser):
    """What a page loads and runs: its external scripts and stylesheets, anything inline that would
    run (the policy forbids it: a browser would refuse it, silently), its links, ids and form fields."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inline: list[str] = []
        self.links: set[str] = set()
        self.ids: set[str] = set()
        self.forms: dict[str, dict[str, str]] = {}  # a form's action: its named inputs' values
        self._form: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if "id" in attr:
            self.ids.add(attr["id"])
        if tag == "script":
            if attr.get("src"):
                self.scripts.append(attr["src"])
            elif attr.get("type", "").strip().lower() != "application/json":  # json_script's data runs nothing
                self.inline.append(f"an inline <script{' id=' + attr['id'] if 'id' in attr else ''}>")
        elif tag == "link" and "stylesheet" in attr.get("rel", "").lower().split():
            self.stylesheets.append(attr.get("href", ""))
        elif tag == "a" and attr.get("href"):
            self.links.add(attr["href"])
        elif tag == "form":
            self._form = self.forms.setdefault(attr.get("action", ""), {})
        elif tag == "input" and self._form is not None and attr.get("name"):
            self._form[attr["name"]] = attr.get("value", "")
        for name, value in attr.items():
            if name.startswith("on") or (
                name in ("href", "src", "action") and value.strip().lower().startswith("javascript:")
            ):
                self.inline.append(f"<{tag} {name}=…>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def csp_directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy's directives and their sources (a repeated directive is ignored)."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        if tokens := part.split():
            directives.setdefault(tokens[0].lower(), tokens[1:])
    return directives


def csp_allows(directives: dict[str, list[str]], kind: str, url: str, page_origin: str) -> bool:
    """Whether a policy lets a page at ``page_origin`` load ``url`` as a script or a stylesheet: by
    the first directive of CSP 3's fallback chain it has, naming 'self' (the page's own origin) or
    the asset's origin."""
    chain = {"script": ("script-src-elem", "script-src"), "stylesheet": ("style-src-elem", "style-src")}[kind]
    sources = next((directives[d] for d in (*chain, "default-src") if d in directives), None)
    if sources is None:
        return True
    parts = urllib.parse.urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return ("'self'" in sources and origin == page_origin) or origin in sources


# What a browser accepts as each kind, under the X-Content-Type-Options: nosniff the ledger sends:
# anything else and it refuses the file, and the page runs without its script or style.
ASSET_TYPES = {"script": {"text/javascript", "application/javascript"}, "stylesheet": {"text/css"}}


def step_signin(browser: Browser, username: str, password: str) -> str:
    _, signin = browser.page("/signin/")
    fields = signin.forms.get("/signin/")
    if fields is None or not fields.get("csrfmiddlewaretoken"):
        raise StepFailed(f"/signin/ has no sign-in form with a CSRF token: forms {signin.forms}")
    status, headers, data = browser.call("POST", "/signin/", fields | {"username": username, "password": password})
    if status != 302:
        raise StepFailed(
            f"POST /signin/ as {username} answered {status}, not 302: {data[:2000].decode(errors='replace')}"
        )
    landed = urllib.parse.urljoin(browser.base + "/signin/", headers.get("Location", ""))
    if landed != browser.base + "/desk/":
        raise StepFailed(f"POST /signin/ sent {username} to {landed}, not to {browser.base}/desk/")
    # Production's flags: the session cookie is for HTTPS only and out of scripts' reach.
    session = [c for c in headers.get_all("Set-Cookie") or [] if c.startswith("sessionid=")]
    flags = {flag.strip().lower() for flag in session[0].split(";")[1:]} if session else set()
    if not {"secure", "httponly", "samesite=lax"} <= flags:
        raise StepFailed(f"sign-in set no Secure, HttpOnly, SameSite=Lax session cookie: {session}")
    return f"{username} signed in with a password (session cookie Secure, HttpOnly, SameSite=Lax)"


def step_pages(browser: Browser, created: dict) -> str:
    investigation = f"/investigation/{created['investigation']}/"
    pages = {  # a page: an element it must hold
        "/desk/": "desk-investigations",
        investigation: "breakdowns",  # its run has finished: the stored breakdowns are drawn
        "/finding/new/": "finding",
    }
    assets: dict[tuple[str, str], str] = {}  # (kind, URL): the first page that references it
    for path, must_hold in pages.items():
        headers, parts = browser.page(path)
        if must_hold not in parts.ids:
            raise StepFailed(f"GET {path} has no element #{must_hold}")
        if path == "/desk/" and investigation not in parts.links:
            raise StepFailed(f"/desk/ does not link to {investigation}, the investigation of the day's finding")
        if parts.inline:
            raise StepFailed(f"GET {path} has inline script, which its policy refuses: {', '.join(parts.inline)}")
        policy = headers.get("Content-Security-Policy", "")
        directives = csp_directives(policy)
        script_sources = next((directives[d] for d in ("script-src", "default-src") if d in directives), [])
        if "'self'" not in script_sources or "'unsafe-inline'" in script_sources:
            raise StepFailed(f"GET {path} has no Content-Security-Policy refusing inline scripts: {policy!r}")
        if not parts.stylesheets:
            raise StepFailed(f"GET {path} references no stylesheet")
        for kind, urls in (("script", parts.scripts), ("stylesheet", parts.stylesheets)):
            for url in urls:
                absolute = urllib.parse.urljoin(browser.base + path, url)
                if not csp_allows(directives, kind, absolute, browser.base):
                    raise StepFailed(f"{path}'s Content-Security-Policy refuses its {kind} {url}: {policy!r}")
                assets.setdefault((kind, absolute), path)
    for (kind, url), page in assets.items():
        status, headers, data = browser.call("GET", url)
        if status != 200:
            raise StepFailed(f"{page} references the {kind} {url}, which answered {status}, not 200")
        if headers.get_content_type() not in ASSET_TYPES[kind]:
            raise StepFailed(f"{page}'s {kind} {url} answered {headers.get_content_type()}, not {ASSET_TYPES[kind]}")
        # WhiteNoise's mark: a Django view would not make a file public for caches.
        if "public" not in headers.get("Cache-Control", ""):
            raise StepFailed(f"{page}'s {kind} {url} was not served by WhiteNoise: {dict(headers)}")
        if not data.strip() or data.lstrip().startswith(b"<"):
            raise StepFailed(f"{page}'s {kind} {url} is empty or HTML: {data[:200]!r}")
    scripts = sum(kind == "script" for kind, _ in assets)
    return (
        f"{', '.join(pages)} answer 200 (breakdowns drawn), no inline script; their {scripts} scripts and "
        f"{len(assets) - scripts} stylesheets answer 200 from WhiteNoise, typed, allowed by each page's policy"
    )


def main() -> int:
    api = Api(os.environ["LEDGER_URL"], os.environ["LEDGER_TOKEN"])
    browser = Browser(os.environ["LEDGER_URL"])
    created: dict = {}

    def finding() -> str:
        said, body = step_finding(api)
        created.update(body)
        return said

    steps: list[tuple[str, Callable[[], str]]] = [
        ("web", lambda: step_static(api)),
        ("a. EPCIS capture", lambda: step_capture(api)),
        ("b. CSV import", lambda: step_csv(api)),
        ("c. finding and trace run", finding),
        ("d. export", lambda: step_export(api, created)),
        (
            "e. sign-in to the pages",
            lambda: step_signin(browser, os.environ["LEDGER_USERNAME"], os.environ["LEDGER_PASSWORD"]),
        ),
        ("f. pages and their scripts and stylesheets", lambda: step_pages(browser, created)),
    ]
    passed = 0
    for name, step in steps:
        started = time.monotonic()
        try:
            said = step()
        except StepFailed as failure:
            print(f"production path: FAILED at {name} (the steps after it did not run): {failure}", flush=True)
            # Not pytest's "N passed, N failed" closing line: the suites' counts are CI's test counts.
            print(f"production path: {passed} of {len(steps)} steps ok, then a failure", flush=True)
            return 1
        passed += 1
        print(f"production path: {name}: ok, {said} ({time.monotonic() - started:.1f} s)", flush=True)
    print(f"production path: all {passed} steps ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
