"""The hash-locked installs (requirements/*.txt from `make lock`) match pyproject.toml.

A merge that adds a dependency to pyproject.toml without `make lock` fails here, before a fresh
clone would install without it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = {"pytest", "pytest-django", "playwright", "schemathesis", "ruff", "daphne", "uv"}


def locked(path: Path) -> dict[str, list[tuple[Requirement, list[str]]]]:
    """name -> [(pinned requirement, hashes)] (a universal lock may pin a name per marker)."""
    text = path.read_text().replace("\\\n", " ")
    pins: dict[str, list[tuple[Requirement, list[str]]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("--") else ""
        if not line:
            continue
        parts = line.split(" --hash=")
        requirement = Requirement(parts[0].strip())
        pins.setdefault(canonicalize_name(requirement.name), []).append(
            (requirement, [h.strip() for h in parts[1:]])
        )
    return pins


def declared(group: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    items = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(item) for item in items]


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("runtime.txt", [None]), ("dev.txt", [None, "dev"])],
)
def test_every_declared_dependency_is_pinned_within_its_range_with_hashes(lock, groups):
    pins = locked(ROOT / "requirements" / lock)
    for group in groups:
        for requirement in declared(group):
            entries = pins.get(canonicalize_name(requirement.name))
            assert entries, f"{requirement} is not in requirements/{lock}: run `make lock`"
            for pinned, hashes in entries:
                (spec,) = pinned.specifier
                assert spec.operator == "==", f"{pinned} is not an exact pin"
                assert requirement.specifier.contains(spec.version, prereleases=True), (
                    f"requirements/{lock} pins {pinned}, outside {requirement}: run `make lock`"
                )
                assert hashes and all(h.startswith("sha256:") for h in hashes), pinned


def test_every_locked_package_has_hashes():
    for lock in ("runtime.txt", "dev.txt"):
        for entries in locked(ROOT / "requirements" / lock).values():
            for pinned, hashes in entries:
                assert hashes, f"{pinned} in requirements/{lock} has no hash"


def test_runtime_lock_has_no_dev_tool_and_agrees_with_the_dev_lock():
    runtime = locked(ROOT / "requirements" / "runtime.txt")
    dev = locked(ROOT / "requirements" / "dev.txt")
    assert not DEV_TOOLS & set(runtime), DEV_TOOLS & set(runtime)
    for name, entries in runtime.items():
        assert name in dev, f"{name} is in the runtime lock but not the dev lock"
        assert {str(r.specifier) for r, _ in entries} <= {str(r.specifier) for r, _ in dev[name]}


def test_the_layer_dependency_msgpack_is_declared_for_runtime():
    names = {canonicalize_name(r.name) for r in declared(None)}
    assert {"msgpack", "uvicorn", "redis"} <= names
    assert "daphne" not in names  # development server only (make run, live tests)


def test_zero_x_dependencies_are_bounded_above():
    for group in (None, "dev"):
        for requirement in declared(group):
            lowers = [s for s in requirement.specifier if s.operator in (">=", ">", "~=")]
            if any(s.version.startswith("0.") for s in lowers):
                assert any(s.operator in ("<", "<=", "~=") for s in requirement.specifier), (
                    f"{requirement}: a 0.x dependency needs an upper bound"
                )
