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


# --- the customer's portal socket (/ws/portal/?token=): its own payment and nothing else ------


async def test_a_portal_socket_gets_its_own_payment_only(cast):
    from channels.db import database_sync_to_async

    from payments import services
    from tests.factories import PackageFactory
    from tests.notifications.test_portal_consumer import open_for

    people, members = cast

    @database_sync_to_async
    def payments():
        a = people["tenant_admin"].tenant
        b = people["other_admin"].tenant
        mine = services.payment_initiate(
            tenant=a, package=PackageFactory(tenant=a), phone="254711111111"
        )
        theirs = services.payment_initiate(
            tenant=b, package=PackageFactory(tenant=b), phone="254722222222"
        )
        return mine, theirs

    mine, theirs = await payments()
    customer = await open_for(mine)
    staff_sockets = {key: (await connect_user(person))[0] for key, person in people.items()}
    # Every staff group, the other payment's group: nothing reaches the customer.
    groups = sorted(members) + [f"payment.{theirs.pk}"]
    for number, group in enumerate(groups, start=1):
        await group_send(group, event_message(group, number))
    assert await drain(customer) == []
    # Its own payment's change: a payment frame (built from the payment, not the event).
    own = f"payment.{mine.pk}"
    await database_sync_to_async(lambda: services.payment_complete(payment=mine))()
    frame = await customer.receive_json_from(timeout=10)
    assert (frame["type"], frame["state"]) == ("payment", "completed")
    # ...and no staff socket hears a payment group, whoever they are.
    for key, comm in staff_sockets.items():
        received = {f["channel"] for f in await drain(comm) if f.get("type") == "event"}
        assert own not in received and f"payment.{theirs.pk}" not in received, key
    # Asking for anything else is an error.
    for channel in (f"tenant.{mine.tenant_id}", f"payment.{theirs.pk}", "system.admin"):
        await customer.send_json_to({"action": "subscribe", "channel": channel})
        assert (await customer.receive_json_from())["code"] == "not_allowed"
    # Staff cannot subscribe to a payment group either.
    await staff_sockets["tenant_admin"].send_json_to({"action": "subscribe", "channel": own})
    assert (await staff_sockets["tenant_admin"].receive_json_from())["code"] == "forbidden"
    for comm in [customer, *staff_sockets.values()]:
        await comm.disconnect()
