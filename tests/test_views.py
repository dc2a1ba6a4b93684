"""The project-level pages: the landing page at / (the admin's "View site" link)."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_landing_page_names_every_interface_to_anyone():
    # when
    response = Client().get("/")
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert re.findall(r"<title>(.*?)</title>", page) == ["Cell traceability ledger"]
    assert re.findall(r'href="([^"]*)"', page) == [
        "/signin/",
        "/api/v1/docs/",
        "/api/v1/schema/",
        "/epcis/events",
        "/epcis/capture",
        "/admin/",
        "/health/",
    ]
    assert "<script" not in page  # no JavaScript, nothing fetched from elsewhere
    assert "//" not in page.replace("://", "")


def test_the_admins_view_site_link_leads_to_the_landing_page():
    # given
    admin = get_user_model().objects.create_superuser("root", password=None)
    client = Client()
    client.force_login(admin)
    # when
    view_site = re.findall(r'<a href="([^"]*)">View site</a>', client.get("/admin/").content.decode())
    # then
    assert view_site == ["/"]
    assert client.get(view_site[0]).status_code == 200
