"""Every admin page a system admin can open renders (list, add, detail), on the demo data."""

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from hotspot.models import HotspotUser, Package
from payments.models import Payment
from tenants.models import Tenant


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=StringIO())


@pytest.mark.parametrize(
    ("model", "add_status"),
    [(Tenant, 200), (User, 200), (Package, 200), (HotspotUser, 200), (Payment, 403)],
)
def test_pages_render(client, demo, model, add_status):
    client.force_login(User.objects.get(username="sysadmin"))
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    assert client.get("/admin/").status_code == 200
    listing = client.get(base)
    assert listing.status_code == 200
    assert client.get(base, {"q": "acme"}).status_code == 200
    assert client.get(base + "add/").status_code == add_status
    for obj in model.objects.all()[:3]:
        assert client.get(f"{base}{obj.pk}/change/").status_code == 200
