"""The layout's rules, as the code's own imports: data flows one way (docs/architecture.md).

Domain apps never import notifications (they send their own signals; pages get presence through
template tags); the realtime transport never imports a domain app (it asks `access.policy`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_APPS = ("accounts", "tenants", "payments", "hotspot")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def sources(folder: str) -> list[Path]:
    return [p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts]


@pytest.mark.parametrize("app", DOMAIN_APPS)
def test_domain_apps_never_import_notifications(app):
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources(app)
        for module in imported_modules(path)
        if module == "notifications" or module.startswith("notifications.")
    }
    assert not offenders


def test_the_realtime_package_never_imports_a_domain_app():
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources("notifications/realtime")
        for module in imported_modules(path)
        if module.split(".")[0] in DOMAIN_APPS
    }
    assert not offenders


def test_group_names_are_built_only_in_realtime_groups():
    """No f"tenant.{...}" / f"user.{...}" / "system.admin" literals outside groups.py."""
    pattern_users = []
    for path in sources("notifications"):
        if path.name == "groups.py":
            continue
        text = path.read_text()
        for needle in ('f"tenant.{', 'f"user.{', '"system.admin"', 'f"presence.{', '"session." +'):
            if needle in text:
                pattern_users.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not pattern_users
