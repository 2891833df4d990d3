"""Property-based run of the OpenAPI schema (schemathesis), in-process against the WSGI app."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.conftest import bearer
from tests.factories import HotspotUserFactory, PackageFactory, PaymentFactory

# Loaded at collection time: serving the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def rows(db, tenant, other_tenant, tenant_admin, staff, other_admin, system_admin):
    package = PackageFactory(tenant=tenant)
    PaymentFactory(package=package)
    HotspotUserFactory(package=package)
    PackageFactory(tenant=other_tenant)


@schema.parametrize()
@settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, rows, system_admin):
    case.call_and_validate(
        headers={"Authorization": bearer(system_admin)},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
