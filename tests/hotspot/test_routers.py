"""Routers (RADIUS clients): services, /routers/ pages, /api/routers/, add_router, admin."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from config.errors import PermissionDenied
from hotspot import services
from hotspot.models import Router
from tests.admin_helpers import csrf_token
from tests.factories import RouterFactory
from tests.roles import READ_TENANT_A, by_role

pytestmark = pytest.mark.django_db

ROUTER = {"name": "Main gate", "address": "192.0.2.10", "secret": "s3cret-gate", "coa_port": "3799"}


# --- services ------------------------------------------------------------------------------


def test_create_update_delete_send_signals(tenant, tenant_admin, signal_log):
    router = services.router_create(
        tenant=tenant, name=" Gate ", address="192.0.2.1", secret="x1", by=tenant_admin
    )
    assert (router.name, router.coa_port, router.last_seen) == ("Gate", 3799, None)
    services.router_update(router=router, data={"secret": "x2", "name": "Gate"}, by=tenant_admin)
    router.refresh_from_db()
    assert router.secret == "x2"
    services.router_delete(router=router, by=tenant_admin)
    assert not Router.objects.exists()
    names = [name for name, _ in signal_log if name.startswith("router_")]
    assert names == ["router_added", "router_updated", "router_removed"]


def test_address_is_unique_across_tenants(tenant, other_tenant):
    RouterFactory(tenant=tenant, address="192.0.2.5")
    with pytest.raises(ValidationError) as exc:
        services.router_create(
            tenant=other_tenant, name="B", address="192.0.2.5", secret="s", by=None
        )
    assert "address" in exc.value.message_dict
    assert Router.objects.count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"address": "not-an-ip"},
        {"coa_port": 0},
        {"coa_port": 70000},
        {"secret": ""},
        {"name": ""},
    ],
)
def test_bad_router_input_is_refused(tenant, data):
    kwargs = {"name": "A", "address": "192.0.2.7", "secret": "s", **data}
    with pytest.raises(ValidationError):
        services.router_create(tenant=tenant, by=None, **kwargs)
    assert not Router.objects.exists()


def test_staff_and_other_tenants_cannot_manage(tenant, staff, other_admin):
    for user in (staff, other_admin):
        with pytest.raises(PermissionDenied):
            services.router_create(
                tenant=tenant, name="A", address="192.0.2.8", secret="s", by=user
            )
    router = RouterFactory(tenant=tenant)
    with pytest.raises(PermissionDenied):
        services.router_delete(router=router, by=other_admin)
    assert Router.objects.count() == 1


# --- pages ---------------------------------------------------------------------------------


def test_admin_adds_edits_and_removes_a_router(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post("/routers/new/", ROUTER, follow=True)
    assert "Router Main gate has been added." in response.content.decode()
    router = Router.objects.get()
    assert router.tenant_id == tenant_admin.tenant_id and router.address == "192.0.2.10"
    response = client.post(f"/routers/{router.pk}/edit/", {**ROUTER, "coa_port": "1700"})
    assert response.status_code == 302
    router.refresh_from_db()
    assert router.coa_port == 1700
    assert client.post(f"/routers/{router.pk}/delete/").status_code == 302
    assert not Router.objects.exists()


def test_bad_router_form_is_inline_and_changes_nothing(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post("/routers/new/", {**ROUTER, "address": "999.1.1.1"})
    assert response.status_code == 400 and response.context["form"].errors["address"]
    assert not Router.objects.exists()


def test_staff_read_only_without_secret(client, staff, tenant):
    router = RouterFactory(tenant=tenant, name="<b>Gate</b>", secret="hidden-secret")
    client.force_login(staff)
    page = client.get("/routers/").content.decode()
    assert "&lt;b&gt;Gate&lt;/b&gt;" in page and "<b>Gate</b>" not in page
    assert "hidden-secret" not in page and "Add router" not in page
    assert client.get("/routers/new/").status_code == 403
    assert client.post(f"/routers/{router.pk}/delete/").status_code == 403
    assert Router.objects.filter(pk=router.pk).exists()


def test_other_tenant_cannot_see_or_touch(client, other_admin, tenant):
    router = RouterFactory(tenant=tenant, name="Acme gate")
    client.force_login(other_admin)
    assert "Acme gate" not in client.get("/routers/").content.decode()
    assert client.get(f"/routers/{router.pk}/edit/").status_code == 404
    assert client.post(f"/routers/{router.pk}/delete/").status_code == 404
    assert Router.objects.filter(pk=router.pk).exists()


# --- API -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("two_tenants")
def test_api_list_is_tenant_scoped(api_as, tenant, other_tenant):
    RouterFactory(tenant=tenant, name="A1")
    RouterFactory(tenant=other_tenant, name="B1")
    rows = api_as("tenant_admin").get("/api/routers/").json()["results"]
    assert [r["name"] for r in rows] == ["A1"] and rows[0]["secret"]
    rows = api_as("staff").get("/api/routers/").json()["results"]
    assert [r["name"] for r in rows] == ["A1"] and rows[0]["secret"] is None
    rows = api_as("other_admin").get("/api/routers/").json()["results"]
    assert [r["name"] for r in rows] == ["B1"]


@pytest.mark.usefixtures("two_tenants")
@by_role(**READ_TENANT_A)
def test_api_retrieve(api_as, tenant, role, expected):
    router = RouterFactory(tenant=tenant)
    assert api_as(role).get(f"/api/routers/{router.pk}/").status_code == expected


@pytest.mark.usefixtures("two_tenants")
def test_api_create_update_delete(api_as, tenant):
    api = api_as("tenant_admin")
    response = api.post("/api/routers/", {"name": "R", "address": "192.0.2.20", "secret": "k"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["tenant"], body["coa_port"]) == (tenant.pk, 3799)
    response = api.patch(f"/api/routers/{body['id']}/", {"coa_port": 1700})
    assert response.status_code == 200 and response.json()["coa_port"] == 1700
    assert api_as("staff").delete(f"/api/routers/{body['id']}/").status_code == 403
    assert api_as("other_admin").delete(f"/api/routers/{body['id']}/").status_code == 404
    assert api.delete(f"/api/routers/{body['id']}/").status_code == 204
    assert not Router.objects.exists()


@pytest.mark.usefixtures("two_tenants")
@pytest.mark.parametrize(
    "body",
    [
        {"name": "R", "address": "nope", "secret": "k"},
        {"name": "R", "address": "192.0.2.1", "secret": "k", "coa_port": 0},
        {"name": "R", "address": "192.0.2.1"},
        {"name": "R", "address": "192.0.2.1", "secret": "k", "last_seen": "2020-01-01"},
    ],
)
def test_api_bad_input_is_400(api_as, body):
    response = api_as("tenant_admin").post("/api/routers/", body)
    assert response.status_code == 400 and response.json()["error"]
    assert not Router.objects.exists()


# --- command -------------------------------------------------------------------------------


def test_add_router_command(tenant):
    out = io.StringIO()
    call_command(
        "add_router",
        "--tenant",
        tenant.slug,
        "--name",
        "Cmd",
        "--address",
        "192.0.2.30",
        "--secret",
        "cmd-secret",
        "--coa-port",
        "1700",
        stdout=out,
    )
    router = Router.objects.get()
    assert (router.tenant_id, router.coa_port, router.secret) == (tenant.pk, 1700, "cmd-secret")
    assert "Router Cmd (192.0.2.30) added" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nope"], "No tenant"),
        (["--address", "bad"], "IPv4 or IPv6"),
    ],
)
def test_add_router_command_errors(tenant, args, message):
    base = {"--tenant": tenant.slug, "--name": "C", "--address": "192.0.2.31", "--secret": "s"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in base.items() for x in kv]
    with pytest.raises(CommandError, match=message):
        call_command("add_router", *flat)
    assert not Router.objects.exists()


def test_django_admin_adds_a_router(sysadmin_client, tenant, signal_log):
    url = "/admin/hotspot/router/add/"
    data = {"tenant": tenant.pk, "name": "Adm", "address": "192.0.2.40", "secret": "a"}
    data |= {"coa_port": 3799, "csrfmiddlewaretoken": csrf_token(sysadmin_client, url)}
    response = sysadmin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Router.objects.get().name == "Adm"
    assert [n for n, _ in signal_log] == ["router_added"]
