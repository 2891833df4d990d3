"""The one Redis connection builder: host specs from the operator's settings, the start-up check
that refuses a combination that cannot work, and the settings table of docs/deployment.md.

(Connections to real servers over a URL, TLS and Sentinel: test_redis_failover.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from notifications.checks import check_redis
from notifications.realtime import connections
from notifications.realtime.connections import SETTING_NAMES, config_problems, host_spec

ROOT = Path(__file__).resolve().parents[2]


def test_a_url_is_one_server_and_tls_options_go_with_rediss(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert host_spec({"REDIS_URL": "redis://r:6379/2"}) == {"address": "redis://r:6379/2"}
    assert host_spec(
        {
            "REDIS_URL": "rediss://r:6380/0",
            "REDIS_TLS_CA_CERTS": str(ca),
            "REDIS_TLS_CHECK_HOSTNAME": False,
        }
    ) == {"address": "rediss://r:6380/0", "ssl_ca_certs": str(ca), "ssl_check_hostname": False}
    assert host_spec({"REDIS_URL": ""}) is None


def test_sentinel_takes_the_master_name_and_only_credentials_and_db_from_the_url():
    spec = host_spec(
        {
            "REDIS_URL": "rediss://:pw@ignored-host:1/3",
            "REDIS_SENTINELS": "s1:26379, s2",
            "REDIS_SENTINEL_MASTER": "mymaster",
            "REDIS_SENTINEL_PASSWORD": "spw",
        }
    )
    assert spec == {
        "master_name": "mymaster",
        "sentinels": [("s1", 26379), ("s2", 26379)],
        "sentinel_kwargs": {"password": "spw"},
        "db": 3,
        "password": "pw",
        "ssl": True,
    }


def test_sentinel_tls_uses_the_tls_files_for_the_sentinels_and_may_leave_the_master_plain():
    values = {
        "REDIS_SENTINELS": "s1:26380",
        "REDIS_SENTINEL_MASTER": "mymaster",
        "REDIS_SENTINEL_TLS": "true",
        "REDIS_TLS_CA_CERTS": __file__,
    }
    assert config_problems(values) == []
    assert host_spec(values) == {
        "master_name": "mymaster",
        "sentinels": [("s1", 26380)],
        "sentinel_kwargs": {"ssl": True, "ssl_ca_certs": __file__},
    }
    assert "sentinel_kwargs" not in host_spec({**values, "REDIS_SENTINEL_TLS": "off"})


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"REDIS_SENTINELS": "s:26379"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s:port", "REDIS_SENTINEL_MASTER": "m"}, "not host:port"),
        ({"REDIS_URL": "http://r/0"}, "must start with"),
        ({"REDIS_URL": "redis://r/0", "REDIS_TLS_CA_CERTS": __file__}, "not rediss://"),
        ({"REDIS_URL": "rediss://r/0", "REDIS_TLS_CA_CERTS": "/no/such.pem"}, "no such file"),
        ({"REDIS_URL": "rediss://r/0", "REDIS_TLS_CERTFILE": __file__}, "go together"),
        ({"REDIS_URL": "redis://r/0", "REDIS_HEALTH_CHECK_SECONDS": "0"}, "positive"),
        ({"REDIS_URL": "redis://r/0", "REDIS_HEALTH_CHECK_SECONDS": "inf"}, "positive"),
        (
            {"REDIS_SENTINELS": "s", "REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_TLS": "maybe"},
            "not true or false",
        ),
        ({"REDIS_URL": "redis://r/0", "REDIS_SENTINEL_TLS": "true"}, "REDIS_SENTINELS is not"),
    ],
)
def test_a_combination_that_cannot_work_is_named(values, says):
    problems = config_problems(values)
    assert any(says in problem for problem in problems), problems


def test_good_settings_have_no_problem():
    assert (
        config_problems({"REDIS_URL": "redis://r:6379/0", "REDIS_HEALTH_CHECK_SECONDS": "2"}) == []
    )
    assert config_problems({}) == []


def test_the_start_up_check_refuses_sentinel_without_a_master(settings):
    settings.REDIS_SENTINELS = ["127.0.0.1:26379"]
    settings.REDIS_SENTINEL_MASTER = ""
    errors = check_redis()
    assert [e.id for e in errors] == ["notifications.E020"]
    assert "REDIS_SENTINEL_MASTER" in errors[0].msg


def test_tls_options_for_a_plain_url_are_refused_by_the_builder_too():
    with pytest.raises(ValueError, match="not rediss://"):
        connections.sync_pool({"address": "redis://r/0", "ssl_ca_certs": "x"})


def test_deployment_docs_list_every_redis_setting_with_its_default():
    text = (ROOT / "docs" / "deployment.md").read_text()
    for name in SETTING_NAMES:
        assert re.search(rf"^\| `{name}` \| [^|]+ \|", text, re.M), (
            f"{name} missing from docs/deployment.md's Redis settings table"
        )


def test_every_redis_setting_is_declared_in_the_settings(settings):
    missing = [name for name in SETTING_NAMES if not hasattr(settings, name)]
    assert not missing
    assert host_spec({n: getattr(settings, n) for n in SETTING_NAMES}) == settings.REDIS_HOST
