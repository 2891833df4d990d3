"""Property-based run of the OpenAPI schema (schemathesis), in-process against the WSGI app."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.conftest import bearer
from tests.factories import HotspotUserFactory, PackageFactory, PaymentFactory

# Loaded at collection time: serving the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def rows(
    db, keep_db_connection, tenant, other_tenant, tenant_admin, staff, other_admin, system_admin
):
    package = PackageFactory(tenant=tenant)
    PaymentFactory(package=package)
    HotspotUserFactory(package=package)
    PackageFactory(tenant=other_tenant)


@pytest.fixture
def keep_db_connection():
    """Like Django's test client: a request must not close the test's (transactional) connection.

    The real WSGI handler closes old connections when a request finishes, which on PostgreSQL
    would end the test's transaction (SQLite's in-memory test database keeps it).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, rows, system_admin):
    case.call_and_validate(
        headers={"Authorization": bearer(system_admin)},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
