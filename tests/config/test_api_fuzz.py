"""Property-based run of the OpenAPI schema (schemathesis), in-process against the WSGI app.

Bounded for CI (a few examples per operation, < 60 s). For a deeper local run:
`API_FUZZ_EXAMPLES=50 API_FUZZ_ROLE=tenant_admin pytest tests/config/test_api_fuzz.py`.
"""

import os

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
@settings(
    max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", "5")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, rows, request):
    """No 5xx, and every response matches the schema (status, content type, body)."""
    role = os.environ.get("API_FUZZ_ROLE", "system_admin")  # sees and may do the most
    case.call_and_validate(
        headers={"Authorization": bearer(request.getfixturevalue(role))},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
