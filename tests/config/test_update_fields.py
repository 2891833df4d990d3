"""Every update service refuses a field it does not change, with one message
(config.errors.reject_unknown_fields), and changes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.services import user_update
from hotspot.services import package_update, router_update
from tenants.services import tenant_update
from tests.factories import PackageFactory, RouterFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "update, target",
    [
        (lambda obj, data, by: tenant_update(tenant=obj, data=data, by=by), "tenant"),
        (lambda obj, data, by: user_update(user=obj, data=data, by=by), "staff"),
        (lambda obj, data, by: package_update(package=obj, data=data, by=by), "package"),
        (lambda obj, data, by: router_update(router=obj, data=data, by=by), "router"),
    ],
)
def test_unknown_fields_are_refused_by_every_update_service(
    request, tenant, tenant_admin, signal_log, update, target
):
    objects = {
        "tenant": lambda: tenant,
        "staff": lambda: request.getfixturevalue("staff"),
        "package": lambda: PackageFactory(tenant=tenant),
        "router": lambda: RouterFactory(tenant=tenant),
    }
    obj = objects[target]()
    with pytest.raises(ValidationError) as caught:
        update(obj, {"tenant_id": 99, "zz_secret": "x"}, tenant_admin)
    assert caught.value.messages == ["These fields cannot be updated: tenant_id, zz_secret."]
    assert signal_log == []
