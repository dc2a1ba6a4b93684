"""The pages in English and Simplified Chinese: the committed catalogue is compiled from its source,
every string is translated (with the same placeholders), and the language is the browser's or the
one chosen with the switcher."""

from __future__ import annotations

import ast
import gettext
import html
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from suppliers.models import MemberRole, Membership
from tests.factories import OrganisationFactory
from tests.test_api_support import client_for, member, traced
from tests.trace_world import build_world

CATALOGUE = Path(settings.BASE_DIR) / "traceability" / "pages" / "locale" / "zh_Hans" / "LC_MESSAGES"
_KEYWORD = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[(\d+)\])?) (".*")$')


def _po_entries(path: Path) -> dict[str | tuple[str, str], str | list[str]]:
    """The translations of a .po file as gettext's catalogue keys them: ``msgid`` (or
    ``msgctxt\\x04msgid``) to its ``msgstr``, and ``(msgid, n)`` to each plural form. Entries marked
    fuzzy are left out, as msgfmt leaves them out."""
    catalogue: dict = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        lines = block.strip().splitlines()
        if any(line.startswith("#,") and "fuzzy" in line for line in lines):
            continue
        fields: dict[str, str] = {}
        current = None
        for line in lines:
            if match := _KEYWORD.match(line):
                current = match.group(1)
                fields[current] = ast.literal_eval(match.group(3))
            elif line.startswith('"') and current is not None:
                fields[current] += ast.literal_eval(line)
        if "msgid" not in fields or fields["msgid"] == "":
            continue
        msgid = fields["msgid"] if "msgctxt" not in fields else f"{fields['msgctxt']}\x04{fields['msgid']}"
        if "msgid_plural" in fields:
            for name, value in fields.items():
                if name.startswith("msgstr["):
                    catalogue[(msgid, int(name[7:-1]))] = value
        else:
            catalogue[msgid] = fields["msgstr"]
    return catalogue


def test_the_committed_catalogue_is_compiled_from_its_source():
    # given the source and the compiled catalogue
    source = _po_entries(CATALOGUE / "django.po")
    with (CATALOGUE / "django.mo").open("rb") as compiled:
        translations = gettext.GNUTranslations(compiled)
    # then they hold the same translations, none missing
    compiled_entries = {key: value for key, value in translations._catalog.items() if key != ""}
    assert compiled_entries == source


def test_every_page_string_is_translated_with_its_placeholders():
    placeholder = re.compile(r"%\(\w+\)s|\{\{ *\w+ *\}\}")
    source = _po_entries(CATALOGUE / "django.po")
    assert len(source) > 100
    for key, translated in source.items():
        msgid = key[0] if isinstance(key, tuple) else key
        assert translated, f"untranslated: {msgid!r}"
        assert sorted(placeholder.findall(translated)) == sorted(placeholder.findall(msgid)), msgid


@pytest.mark.django_db
def test_the_browsers_language_and_the_switchers_choice_choose_the_pages_language():
    # given a member signed in
    user = member(None)
    Membership.objects.create(user=user, organisation=OrganisationFactory(), role=MemberRole.QA)
    client = Client()
    client.force_login(user)
    # when a browser asks for Chinese
    chinese = client.get("/desk/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    english = client.get("/desk/", HTTP_ACCEPT_LANGUAGE="en-GB").content.decode()
    # then the page speaks it, and says so
    assert '<html lang="zh-hans"' in chinese and "您的工作台" in chinese and "退出登录" in chinese
    assert '<html lang="en"' in english and "Your desk" in english
    # when the switcher picks Chinese for a browser that asks for English
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/desk/"})
    assert (response.status_code, response["Location"]) == (302, "/desk/")
    assert "您的工作台" in client.get("/desk/", HTTP_ACCEPT_LANGUAGE="en-GB").content.decode()
    # and a language the ledger does not speak changes nothing
    client.post("/i18n/setlang/", {"language": "xx", "next": "/desk/"})
    assert "您的工作台" in client.get("/desk/", HTTP_ACCEPT_LANGUAGE="en-GB").content.decode()


@pytest.mark.django_db
def test_the_machine_interfaces_answer_in_english_whatever_the_browser_asks():
    client = Client()
    for path in ("/api/v1/findings/", "/epcis/events"):
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-hans", HTTP_ACCEPT="application/json")
        assert response.status_code == 401, path
        assert "Content-Language" not in response, path
    body = client.get("/api/v1/findings/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert body["message"] == "Authentication credentials were not provided."


@pytest.mark.django_db
def test_the_models_choices_are_shown_in_chinese_on_the_pages_and_in_english_through_the_api():
    # given brand A's finding on M1 (critical metallic debris), traced
    world = build_world()
    qa = member(world.brand)
    created = traced(client_for(qa), world)
    pages = Client()
    pages.force_login(qa)
    investigation = f"/investigation/{created['investigation']}/"
    # when
    chinese = html.unescape(pages.get(investigation, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode())
    english = html.unescape(pages.get(investigation, HTTP_ACCEPT_LANGUAGE="en").content.decode())
    api = client_for(qa).get(f"/api/v1/findings/{created['id']}/", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()
    # then the page's status, defect, severity and exposures are in its language
    assert '<dd id="investigation-status">已追溯</dd>' in chinese
    assert "<dt>缺陷</dt><dd>金属异物</dd>" in chinese and "<dt>严重程度</dt><dd>严重</dd>" in chinese
    assert '<option value="definite">确定</option>' in chinese
    assert '<dd id="investigation-status">Traced</dd>' in english and "<dd>Metallic debris</dd>" in english
    # and the API keeps its codes and English words
    assert (api["category"], api["severity"], api["status"]) == ("metallic_debris", "critical", "traced")
    assert "金属" not in json.dumps(api, ensure_ascii=False)
