"""The container files: the Dockerfile and deploy/compose.yaml pass their linters, and the image's
own commands (static files, migrate, the uvicorn entry command, the health check) work in a venv
built from the runtime lock alone, as the image builds it. No container engine runs here."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_program
from tests.liveserver import (
    BASE_DIR,
    Uvicorn,
    free_port,
    get,
    get_json,
    production_payment_env,
    wait_until,
)

BIN = Path(sys.executable).parent
DOCKERFILE = BASE_DIR / "Dockerfile"
COMPOSE = BASE_DIR / "deploy" / "compose.yaml"
DEV_TOOLS = ("pytest", "daphne", "playwright", "schemathesis", "factory", "ruff", "uv")


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else require_program(name)


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


# --- lint --------------------------------------------------------------------------------


def test_the_dockerfile_is_hadolint_clean_and_hadolint_does_flag_problems(tmp_path):
    result = run(tool("hadolint"), str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    flagged = run(tool("hadolint"), str(bad))
    assert flagged.returncode != 0 and "DL3007" in flagged.stdout  # :latest


def test_the_compose_file_matches_the_compose_spec_and_a_typo_does_not(tmp_path):
    check = tool("check-jsonschema")
    result = run(check, "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr
    typo = tmp_path / "compose.yaml"
    typo.write_text(COMPOSE.read_text().replace("healthcheck:", "healthchek:", 1))
    result = run(check, "--builtin-schema", "vendor.compose-spec", str(typo))
    assert result.returncode != 0


def test_compose_starts_the_platform_postgres_redis_and_freeradius_with_health_checks():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"web", "postgres", "redis", "freeradius", "migrate"} <= set(services)
    for name in ("web", "postgres", "redis", "freeradius"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["build"]["dockerfile"] == "Dockerfile"


def test_the_image_is_multi_stage_non_root_and_installs_the_runtime_lock_only():
    steps = instructions()
    assert sum(op == "FROM" for op, _ in steps) >= 2
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "--require-hashes --no-deps -r /tmp/runtime.txt" in runs
    assert ("COPY", "requirements/runtime.txt /tmp/runtime.txt") in steps
    assert "dev.txt" not in DOCKERFILE.read_text()
    user = [args for op, args in final_stage() if op == "USER"]
    assert user and not user[-1].startswith(("0", "root"))


# --- the image's commands, in a venv built from the runtime lock ----------------------------


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory) -> Path:
    """A venv made by `make install-serve` (what `make serve` runs from): the runtime lock only,
    installed as the Dockerfile's build stage installs it."""
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    made = run(
        require_program("make"), "-C", str(BASE_DIR), "install-serve",
        f"SERVE_VENV={venv}", f"PYTHON={sys.executable}",
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "--require-hashes --no-deps -r requirements/runtime.txt" in made.stdout
    return venv


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    """/app as the Dockerfile's COPY lines lay it out (only what .dockerignore lets in)."""
    app = tmp_path_factory.mktemp("image") / "app"
    app.mkdir()
    for op, args in final_stage():
        if op != "COPY" or args.startswith("--from"):
            continue
        source, target = args.split()
        src = BASE_DIR / source
        dest = app / target.removeprefix("./")
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, app / src.name)
    return app


def image_env(venv: Path, **extra: str) -> dict[str, str]:
    """The final stage's ENV, with the venv in place of /opt/venv."""
    env = {"HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    for op, args in final_stage():
        if op == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    env["PATH"] = (
        env["PATH"].replace("/opt/venv/bin", str(venv / "bin")).replace("$PATH", os.environ["PATH"])
    )
    env.update(extra)
    return env


@pytest.mark.live
def test_the_runtime_venv_has_no_dev_tool(runtime_venv):
    probe = f"import importlib.util as u; print([m for m in {DEV_TOOLS!r} if u.find_spec(m)])"
    result = run(str(runtime_venv / "bin" / "python"), "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.live
def test_the_image_entry_command_serves_health_from_the_runtime_lock(
    runtime_venv, image_tree, redis_url
):
    # The image runs WEB_CONCURRENCY=2 workers, which share events through Redis (compose sets
    # REDIS_URL; without it the start-up check refuses two workers on a process-local layer).
    secrets = {
        "REDIS_URL": redis_url,
        "CHANNELS_PREFIX": "container-" + os.urandom(4).hex(),
        "SECRET_KEY": "image-test-" + "k" * 50,
        "PUSHER_APP_ID": "1",
        "PUSHER_APP_KEY": "key",
        "PUSHER_APP_SECRET": "secret",
        **production_payment_env(),
        "DATABASE_URL": f"sqlite:///{image_tree / 'db.sqlite3'}",
    }
    # The build step that collects static files, exactly as the Dockerfile runs it.
    (collect,) = [args for op, args in final_stage() if op == "RUN" and "collectstatic" in args]
    result = run("sh", "-c", collect, cwd=image_tree, env=image_env(runtime_venv))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (image_tree / "staticfiles" / "staticfiles.json").exists()
    # compose's one-shot migrate service.
    migrate = yaml.safe_load(COMPOSE.read_text())["services"]["migrate"]["command"]
    metrics_dir = image_tree.parent / "prometheus"
    metrics_dir.mkdir()
    env = image_env(runtime_venv, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), **secrets)
    result = run(*migrate, cwd=image_tree, env=env)
    assert result.returncode == 0, result.stdout + result.stderr

    (cmd,) = [json.loads(args) for op, args in final_stage() if op == "CMD"]
    port = free_port()
    argv = [
        {"0.0.0.0": "127.0.0.1", "8000": str(port)}.get(part, part)  # noqa: S104
        for part in cmd
    ]
    argv[0] = str(runtime_venv / "bin" / argv[0])
    server = Uvicorn(env, port, argv=argv, cwd=image_tree)
    try:
        server.wait_ready()
        status, _, _ = get(server.http + "/healthz")
        assert status == 200
        # WEB_CONCURRENCY=2 from the image: both workers become ready.
        workers: set[int] = set()

        def both_ready() -> bool:
            code, body = get_json(server.http + "/readyz")
            if code == 200:
                workers.add(body["worker"])
            return len(workers) == 2

        wait_until(both_ready, 60, "both image workers to be ready")
        # The image's HEALTHCHECK command, against this server.
        (check,) = [args for op, args in final_stage() if op == "HEALTHCHECK"]
        probe = json.loads(check[check.index("CMD") + 3 :].strip())
        probe = [part.replace("8000", str(port)) for part in probe]
        probe[0] = str(runtime_venv / "bin" / probe[0])
        result = run(*probe, env=env)
        assert result.returncode == 0, result.stderr
        # Metrics of both workers, in the image's multiprocess directory.
        get(server.http + "/accounts/login/")
        status, _, text = get(server.http + "/metrics")
        assert status == 200 and "hotspot_http_requests_total" in text
        assert any(metrics_dir.iterdir())
    finally:
        server.stop()


def test_the_workers_port_is_published_on_loopback_unless_the_operator_says_otherwise():
    """With NUM_PROXIES=1 whoever reaches a worker directly writes the X-Forwarded-For hop that is
    believed (throttles, sign-in lockout): by default only the host's proxy may reach it."""
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["x-app-environment"]["NUM_PROXIES"] == "${NUM_PROXIES:-1}"
    (published,) = compose["services"]["web"]["ports"]
    assert published == "${WEB_BIND:-127.0.0.1}:${WEB_PORT:-8000}:8000"
