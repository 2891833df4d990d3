"""Role matrices for API tests: who gets which status, over every role fixture.

Roles are the fixtures of tests/conftest.py: system_admin, tenant_admin and staff (tenant A),
other_admin (tenant B), anonymous (no credentials); `api_as(role)` gives the client.
"""

from __future__ import annotations

import pytest

ROLES = ("system_admin", "tenant_admin", "staff", "other_admin", "anonymous")

#: Reading one of tenant A's records: its members and system admins; tenant B cannot tell it exists.
READ_TENANT_A = {
    "system_admin": 200,
    "tenant_admin": 200,
    "staff": 200,
    "other_admin": 404,
    "anonymous": 401,
}


def by_role(**expected: int) -> pytest.MarkDecorator:
    """Parametrize a test's `role, expected` with one status per role (every role must be named)."""
    missing = set(ROLES) - set(expected)
    unknown = set(expected) - set(ROLES)
    if missing or unknown:
        raise TypeError(f"by_role: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return pytest.mark.parametrize(("role", "expected"), [(r, expected[r]) for r in ROLES])
