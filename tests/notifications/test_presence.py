"""Presence: who is online (tenant lists, system counts) and who else edits a record.

The store is tested on both backends (memory; the real Redis), the socket frames through the real
consumer. A killed server process and the pages are in test_presence_live.py / tests/browser/.
"""

from __future__ import annotations

import time

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from notifications.realtime import presence
from notifications.realtime.presence import MemoryPresenceStore, RedisPresenceStore
from tests.factories import TenantAdminFactory, TenantStaffFactory
from tests.notifications.wsutil import (
    committed_db,
    connect_user,
    drain,
)


async def make(factory, **fields):
    return await database_sync_to_async(factory)(**fields)


def info(pk: int, name: str = "") -> dict:
    return {"id": pk, "username": name or f"u{pk}", "name": name or f"u{pk}", "role": "staff"}


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        yield MemoryPresenceStore()
        return
    url = request.getfixturevalue("redis_url")
    found = RedisPresenceStore(url, f"test-store-{time.monotonic_ns()}")
    yield found
    found.clear()


class TestStore:
    def test_a_person_with_three_tabs_is_online_once(self, store):
        first = store.join("tenant.1", [("c1", info(5, "ana"))])
        assert first.added == [info(5, "ana")] and first.online == 1
        for conn in ("c2", "c3"):
            again = store.join("tenant.1", [(conn, info(5, "ana"))])
            assert not again and again.online == 1
        assert store.members("tenant.1") == [info(5, "ana")]
        assert store.counts(["tenant.1", "tenant.2"]) == {"tenant.1": 1, "tenant.2": 0}

    def test_a_person_leaves_when_their_last_tab_closes(self, store):
        store.join("tenant.1", [("c1", info(5)), ("c2", info(5)), ("c3", info(6))])
        assert not store.leave("tenant.1", ["c1"])
        change = store.leave("tenant.1", ["c2"])
        assert change.removed == [5] and change.online == 1
        assert [m["id"] for m in store.members("tenant.1")] == [6]
        assert not store.leave("tenant.1", ["c2"]), "leaving twice announces nothing"

    def test_scopes_are_separate(self, store):
        store.join("tenant.1", [("c1", info(5))])
        store.join("tenant.2", [("c2", info(6))])
        assert [m["id"] for m in store.members("tenant.1")] == [5]
        assert [m["id"] for m in store.members("tenant.2")] == [6]
        assert store.scopes() == ["tenant.1", "tenant.2"]

    @override_settings(NOTIFICATIONS_PRESENCE_TTL=0.4)
    def test_an_entry_without_heartbeat_expires_and_one_sweep_announces_it(self, store):
        store.join("tenant.1", [("dead", info(5)), ("alive", info(6))])
        time.sleep(0.25)
        store.join("tenant.1", [("alive", info(6))])  # the heartbeat of a living process
        time.sleep(0.25)
        assert [m["id"] for m in store.members("tenant.1")] == [6], "reads hide lapsed entries"
        change = store.sweep("tenant.1")
        assert change.removed == [5] and change.online == 1
        assert not store.sweep("tenant.1"), "a second sweeper has nothing to announce"

    @override_settings(NOTIFICATIONS_PRESENCE_TTL=0.3)
    def test_a_lapsed_entry_that_beats_again_comes_back(self, store):
        store.join("tenant.1", [("c1", info(5))])
        time.sleep(0.4)
        change = store.join("tenant.1", [("c1", info(5))])
        assert change.removed == [5] and change.added == [info(5)]
        assert change.online == 1

    def test_an_empty_scope_leaves_nothing_behind(self, store):
        store.join("tenant.1", [("c1", info(5))])
        store.leave("tenant.1", ["c1"])
        assert store.scopes() == []
        assert store.members("tenant.1") == []


# --- over /ws/notifications/ -----------------------------------------------------------------


def frames_of(frames: list[dict], kind: str) -> list[dict]:
    return [f for f in frames if f["type"] == kind]


@pytest.mark.usefixtures("fresh_layer")
@committed_db
class TestTenantPresence:
    async def test_watcher_gets_the_list_then_joins_and_leaves_counting_tabs_once(
        self, tenant_admin, staff
    ):
        channel = f"tenant.{tenant_admin.tenant_id}"
        admin, _ = await connect_user(tenant_admin)
        await admin.send_json_to({"action": "presence", "channel": channel})
        listed = await admin.receive_json_from(timeout=3)
        assert listed["type"] == "presence" and listed["channel"] == channel
        assert [m["username"] for m in listed["members"]] == ["acme-admin"]
        assert listed["online"] == 1

        tabs = [(await connect_user(staff))[0] for _ in range(3)]
        frames = await drain(admin)
        added = frames_of(frames, "member_added")
        assert len(added) == 1, frames  # three tabs, one person
        assert added[0]["member"]["username"] == "acme-staff"
        assert added[0]["online"] == 2 and added[0]["channel"] == channel

        for tab in tabs[:2]:
            await tab.disconnect()
        assert frames_of(await drain(admin), "member_removed") == []
        await tabs[2].disconnect()
        removed = frames_of(await drain(admin), "member_removed")
        assert removed == [
            {
                "type": "member_removed",
                "channel": channel,
                "member": {"id": staff.pk},
                "online": 1,
            }
        ]
        await admin.disconnect()

    async def test_another_tenant_sees_nothing_of_it(self, tenant_admin, other_admin, staff):
        watcher, _ = await connect_user(other_admin)
        await watcher.send_json_to(
            {"action": "presence", "channel": f"tenant.{other_admin.tenant_id}"}
        )
        listed = await watcher.receive_json_from(timeout=3)
        assert [m["username"] for m in listed["members"]] == ["beta-admin"]
        comm, _ = await connect_user(staff)
        assert await drain(watcher) == []
        # and asking for the other tenant's list is refused
        await watcher.send_json_to(
            {"action": "presence", "channel": f"tenant.{tenant_admin.tenant_id}"}
        )
        refused = await watcher.receive_json_from(timeout=3)
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        await comm.disconnect()
        await watcher.disconnect()

    @pytest.mark.parametrize(
        "frame, code",
        [
            ({"action": "presence"}, "missing_field"),
            ({"action": "presence", "channel": 3}, "forbidden"),
            ({"action": "presence", "channel": "user.1"}, "forbidden"),
        ],
    )
    async def test_bad_presence_frames_get_an_error(self, staff, frame, code):
        comm, _ = await connect_user(staff)
        await comm.send_json_to(frame)
        error = await comm.receive_json_from(timeout=3)
        assert error["type"] == "error" and error["code"] == code
        await comm.disconnect()

    async def test_own_user_channel_has_no_presence(self, staff):
        comm, _ = await connect_user(staff)
        await comm.send_json_to({"action": "presence", "channel": f"user.{staff.pk}"})
        error = await comm.receive_json_from(timeout=3)
        assert error["code"] == "invalid_field" and error["field"] == "channel"
        await comm.disconnect()

    async def test_system_admin_gets_counts_per_tenant_and_live_changes(
        self, system_admin, tenant_admin, other_admin
    ):
        root, _ = await connect_user(system_admin)
        first, _ = await connect_user(tenant_admin)
        await root.send_json_to({"action": "presence", "channel": "system.admin"})
        counts = await root.receive_json_from(timeout=3)
        assert counts["type"] == "presence_counts"
        assert counts["counts"] == {
            str(tenant_admin.tenant_id): 1,
            str(other_admin.tenant_id): 0,
        }
        second, _ = await connect_user(other_admin)
        changes = frames_of(await drain(root), "presence_count")
        # (the first admin's own announcement may still be in flight: counts are idempotent)
        assert {(c["tenant"], c["online"]) for c in changes} <= {
            (tenant_admin.tenant_id, 1),
            (other_admin.tenant_id, 1),
        }
        assert changes[-1] == {
            "type": "presence_count",
            "tenant": other_admin.tenant_id,
            "online": 1,
        }
        await second.disconnect()
        changes = frames_of(await drain(root), "presence_count")
        assert changes[-1] == {
            "type": "presence_count",
            "tenant": other_admin.tenant_id,
            "online": 0,
        }
        await first.disconnect()
        await root.disconnect()

    async def test_tenant_admin_may_not_watch_the_system_counts(self, tenant_admin):
        comm, _ = await connect_user(tenant_admin)
        await comm.send_json_to({"action": "presence", "channel": "system.admin"})
        error = await comm.receive_json_from(timeout=3)
        assert error["code"] == "forbidden"
        await comm.disconnect()

    async def test_system_admins_are_in_no_tenant_list(self, system_admin, tenant_admin):
        root, _ = await connect_user(system_admin)
        comm, _ = await connect_user(tenant_admin)
        await comm.send_json_to(
            {"action": "presence", "channel": f"tenant.{tenant_admin.tenant_id}"}
        )
        listed = await comm.receive_json_from(timeout=3)
        assert [m["id"] for m in listed["members"]] == [tenant_admin.pk]
        await comm.disconnect()
        await root.disconnect()

    @override_settings(NOTIFICATIONS_PRESENCE_GRACE=0.8)
    async def test_moving_to_the_next_page_is_not_leaving(self, tenant_admin, staff):
        watcher, _ = await connect_user(tenant_admin)
        await watcher.send_json_to(
            {"action": "presence", "channel": f"tenant.{tenant_admin.tenant_id}"}
        )
        await watcher.receive_json_from(timeout=3)
        page, _ = await connect_user(staff)
        assert frames_of(await drain(watcher), "member_added")
        await page.disconnect()  # the staff member clicks a link: the next page connects
        page, _ = await connect_user(staff)
        assert await drain(watcher, wait=1.2) == [], "no blink offline and back"
        await page.disconnect()  # and now really leaves
        assert await drain(watcher, wait=0.4) == [], "not before the grace"
        removed = frames_of(await drain(watcher, wait=1.0), "member_removed")
        assert [r["member"]["id"] for r in removed] == [staff.pk]
        await watcher.disconnect()

    @override_settings(NOTIFICATIONS_PRESENCE_TTL=0.6)
    async def test_heartbeat_keeps_a_quiet_socket_online(self, tenant_admin, staff):
        comm, _ = await connect_user(staff)
        watcher, _ = await connect_user(tenant_admin)
        await watcher.send_json_to(
            {"action": "presence", "channel": f"tenant.{tenant_admin.tenant_id}"}
        )
        await watcher.receive_json_from(timeout=3)
        frames = await drain(watcher, wait=1.5)  # well past the TTL
        assert frames_of(frames, "member_removed") == []
        assert {m["id"] for m in presence.online_members(f"tenant.{staff.tenant_id}")} == {
            staff.pk,
            tenant_admin.pk,
        }
        await comm.disconnect()
        await watcher.disconnect()


@pytest.mark.usefixtures("fresh_layer")
@committed_db
class TestRecordViewers:
    async def test_two_admins_on_one_user_see_each_other(self, tenant_admin, system_admin, staff):
        record = f"user.{staff.pk}"
        first, _ = await connect_user(tenant_admin)
        await first.send_json_to({"action": "view", "record": record})
        alone = await first.receive_json_from(timeout=3)
        assert alone == {"type": "viewers", "record": record, "viewers": []}

        second, _ = await connect_user(system_admin)
        await second.send_json_to({"action": "view", "record": record})
        seen = await second.receive_json_from(timeout=3)
        assert [v["username"] for v in seen["viewers"]] == ["acme-admin"]
        update = frames_of(await drain(first), "viewers")
        assert [v["username"] for v in update[-1]["viewers"]] == ["root-admin"]

        await second.disconnect()
        update = frames_of(await drain(first), "viewers")
        assert update[-1]["viewers"] == []
        await first.disconnect()

    async def test_own_second_tab_is_not_another_admin(self, tenant_admin, staff):
        record = f"user.{staff.pk}"
        tabs = [(await connect_user(tenant_admin))[0] for _ in range(2)]
        for tab in tabs:
            await tab.send_json_to({"action": "view", "record": record})
        for tab in tabs:
            views = frames_of(await drain(tab), "viewers")
            assert views and all(v["viewers"] == [] for v in views)
        for tab in tabs:
            await tab.disconnect()

    async def test_moving_to_another_record_leaves_the_first(self, tenant_admin, tenant):
        one = await make(TenantStaffFactory, tenant=tenant)
        two = await make(TenantStaffFactory, tenant=tenant)
        other_admin = await make(TenantAdminFactory, tenant=tenant, username="acme-admin-2")
        watcher, _ = await connect_user(other_admin)
        await watcher.send_json_to({"action": "view", "record": f"user.{one.pk}"})
        await watcher.receive_json_from(timeout=3)
        comm, _ = await connect_user(tenant_admin)
        await comm.send_json_to({"action": "view", "record": f"user.{one.pk}"})
        await drain(comm)
        assert frames_of(await drain(watcher), "viewers")[-1]["viewers"] != []
        await comm.send_json_to({"action": "view", "record": f"user.{two.pk}"})
        await drain(comm)
        assert frames_of(await drain(watcher), "viewers")[-1]["viewers"] == []
        await comm.disconnect()
        await watcher.disconnect()

    @pytest.mark.parametrize(
        "record, code",
        [
            ("user.999999", "forbidden"),
            ("package.1", "forbidden"),
            ("user.abc", "forbidden"),
            (42, "invalid_field"),
            ("x" * 300, "invalid_field"),
        ],
    )
    async def test_bad_or_unknown_records_are_refused(self, tenant_admin, record, code):
        comm, _ = await connect_user(tenant_admin)
        await comm.send_json_to({"action": "view", "record": record})
        error = await comm.receive_json_from(timeout=3)
        assert error["type"] == "error" and error["code"] == code
        await comm.disconnect()

    async def test_missing_record_field(self, tenant_admin):
        comm, _ = await connect_user(tenant_admin)
        await comm.send_json_to({"action": "view"})
        error = await comm.receive_json_from(timeout=3)
        assert error["code"] == "missing_field" and error["field"] == "record"
        await comm.disconnect()

    async def test_another_tenants_admin_and_staff_may_not_view(self, other_admin, staff, tenant):
        target = await make(TenantStaffFactory, tenant=tenant)
        for user in (other_admin, staff):
            comm, _ = await connect_user(user)
            await comm.send_json_to({"action": "view", "record": f"user.{target.pk}"})
            error = await comm.receive_json_from(timeout=3)
            assert error["code"] == "forbidden", user
            await comm.disconnect()
