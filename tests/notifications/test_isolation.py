"""The isolation matrix: who may join which group, and who receives a group's events.

The expectations are written out by hand (not derived from allowed_groups) so a wrong rule fails.
"""

from __future__ import annotations

import pytest

from notifications.realtime.access import allowed_groups, may_join
from tests.notifications.wsutil import (
    committed_db,
    connect_user,
    drain,
    event_message,
    group_send,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]

PEOPLE = ("system_admin", "tenant_admin", "staff", "other_admin")


@pytest.fixture
def cast(system_admin, tenant_admin, staff, other_admin):
    """The four people and every group of the platform, with who belongs where."""
    people = {
        "system_admin": system_admin,
        "tenant_admin": tenant_admin,
        "staff": staff,
        "other_admin": other_admin,
    }
    a, b = tenant_admin.tenant_id, other_admin.tenant_id
    members = {
        "system.admin": {"system_admin"},
        f"tenant.{a}": {"tenant_admin", "staff"},
        f"tenant.{b}": {"other_admin"},
    }
    for key, person in people.items():
        members[f"user.{person.pk}"] = {key}
    return people, members


@pytest.mark.parametrize("who", PEOPLE)
async def test_subscribe_matrix(who, cast):
    people, members = cast
    comm, welcome = await connect_user(people[who])
    assert set(welcome["channels"]) == {g for g, m in members.items() if who in m}
    for group, member_keys in members.items():
        await comm.send_json_to({"action": "subscribe", "channel": group})
        reply = await comm.receive_json_from()
        if who in member_keys:
            assert reply == {"type": "subscribed", "channel": group}, (who, group)
        else:
            assert (reply["type"], reply["code"], reply["channel"]) == (
                "error",
                "forbidden",
                group,
            ), (who, group)
    await comm.disconnect()


@pytest.mark.parametrize("via", ["session", "header"])
async def test_each_group_reaches_exactly_its_members(via, cast):
    people, members = cast
    sockets = {key: (await connect_user(person, via=via))[0] for key, person in people.items()}
    groups = sorted(members)
    for number, group in enumerate(groups, start=1):
        await group_send(group, event_message(group, number))
    for key, comm in sockets.items():
        frames = await drain(comm)
        received = {(f["id"], f["channel"]) for f in frames}
        expected = {(str(n), g) for n, g in enumerate(groups, start=1) if key in members[g]}
        assert received == expected, key
    for comm in sockets.values():
        await comm.disconnect()


async def test_admin_only_events_never_reach_staff(cast):
    people, _ = cast
    sockets = {key: (await connect_user(person))[0] for key, person in people.items()}
    tenant_a = f"tenant.{people['tenant_admin'].tenant_id}"
    await group_send(tenant_a, event_message(tenant_a, 1, roles=["tenant_admin"]))
    await group_send(tenant_a, event_message(tenant_a, 2, roles=["system_admin"]))
    assert [f["id"] for f in await drain(sockets["tenant_admin"])] == ["1"]
    for key in ("staff", "system_admin", "other_admin"):
        assert await drain(sockets[key]) == [], key
    for comm in sockets.values():
        await comm.disconnect()


async def test_tenant_b_events_never_reach_tenant_a_even_after_asking(cast):
    people, _ = cast
    a_admin, _ = await connect_user(people["tenant_admin"])
    a_staff, _ = await connect_user(people["staff"])
    tenant_b = f"tenant.{people['other_admin'].tenant_id}"
    other_user = f"user.{people['other_admin'].pk}"
    for comm in (a_admin, a_staff):
        for channel in (tenant_b, other_user, "system.admin"):
            await comm.send_json_to({"action": "subscribe", "channel": channel})
            assert (await comm.receive_json_from())["code"] == "forbidden"
    for number, group in enumerate((tenant_b, other_user, "system.admin"), start=1):
        await group_send(group, event_message(group, number))
    assert await drain(a_admin) == []
    assert await drain(a_staff) == []
    await a_admin.disconnect()
    await a_staff.disconnect()


def test_allowed_groups_rule(system_admin, tenant_admin, staff):
    from django.contrib.auth.models import AnonymousUser

    assert allowed_groups(system_admin) == ["system.admin", f"user.{system_admin.pk}"]
    assert allowed_groups(staff) == [f"tenant.{staff.tenant_id}", f"user.{staff.pk}"]
    assert allowed_groups(AnonymousUser()) == []
    assert allowed_groups(None) == []
    staff.is_active = False
    assert allowed_groups(staff) == []
    assert not may_join(system_admin, f"tenant.{tenant_admin.tenant_id}")
    assert not may_join(tenant_admin, f"user.{staff.pk}")
    assert not may_join(tenant_admin, None)
    assert may_join(tenant_admin, f"user.{tenant_admin.pk}")
