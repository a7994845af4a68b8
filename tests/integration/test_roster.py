"""Roster management (RFC 6121 §2): get, set, push to every interested resource, remove,
errors, versioning."""

from __future__ import annotations

import pytest

from harness.client import NS_ROSTER, close_all, error_condition, sign_in
from harness.roster import items, push_for, roster

USERS = ["r1", "r2", "r3", "r4", "r5", "r6", "contact"]
CONTACT = "contact@localhost"


async def test_fresh_roster_is_empty(server):
    c = await sign_in(server, "r1")
    try:
        assert await roster(c) == {}
    finally:
        await c.close()


async def test_set_pushes_to_all_resources_then_update_and_remove(server):
    one = await sign_in(server, "r2", resource="one")
    two = await sign_in(server, "r2", resource="two")
    try:
        reply = await one.iq_set(
            f"<query xmlns='{NS_ROSTER}'><item jid='{CONTACT}' name='Contact'>"
            "<group>Friends</group><group>Work</group></item></query>")
        assert reply["type"] == "result"
        for c in (one, two):
            item = await push_for(c, CONTACT, name="Contact")
            assert (item.name, item.groups, item.subscription, item.ask) == \
                ("Contact", ["Friends", "Work"], "none", None)
        got = (await roster(two))[CONTACT]
        assert (got.name, got.groups, got.subscription) == ("Contact", ["Friends", "Work"], "none")

        # Update: name and groups replaced as a whole.
        reply = await two.iq_set(
            f"<query xmlns='{NS_ROSTER}'><item jid='{CONTACT}' name='Renamed'><group>Work</group></item></query>")
        assert reply["type"] == "result"
        for c in (one, two):
            await push_for(c, CONTACT, name="Renamed", groups=["Work"])

        # Remove (§2.5): push with subscription='remove', then gone from the roster.
        reply = await one.iq_set(
            f"<query xmlns='{NS_ROSTER}'><item jid='{CONTACT}' subscription='remove'/></query>")
        assert reply["type"] == "result"
        for c in (one, two):
            await push_for(c, CONTACT, subscription="remove")
        assert CONTACT not in await roster(one)
    finally:
        await close_all(one, two)


async def test_roster_persists_across_sessions(server):
    c = await sign_in(server, "r3")
    await c.iq_set(f"<query xmlns='{NS_ROSTER}'><item jid='{CONTACT}' name='Kept'/></query>")
    await c.close()
    c = await sign_in(server, "r3", mode="direct")
    try:
        assert (await roster(c))[CONTACT].name == "Kept"
    finally:
        await c.close()


async def test_set_with_two_items_is_bad_request(server):
    """§2.3.3: a roster set MUST contain exactly one item."""
    c = await sign_in(server, "r4")
    try:
        reply = await c.iq_set(
            f"<query xmlns='{NS_ROSTER}'><item jid='a@localhost'/><item jid='b@localhost'/></query>")
        assert error_condition(reply) == "bad-request", reply
        assert await roster(c) == {}
    finally:
        await c.close()


async def test_set_ignores_subscription_attribute(server):
    """§2.1.2.5: the client cannot grant itself a subscription by writing it in a set."""
    c = await sign_in(server, "r5")
    try:
        reply = await c.iq_set(
            f"<query xmlns='{NS_ROSTER}'><item jid='{CONTACT}' subscription='both'/></query>")
        assert reply["type"] == "result", reply
        await push_for(c, CONTACT, subscription="none")
        assert (await roster(c))[CONTACT].subscription == "none"
    finally:
        await c.close()


async def test_remove_unknown_item_is_item_not_found(server):
    """§2.5.3."""
    c = await sign_in(server, "r5", resource="rm")
    try:
        reply = await c.iq_set(
            f"<query xmlns='{NS_ROSTER}'><item jid='never-added@localhost' subscription='remove'/></query>")
        assert error_condition(reply) == "item-not-found", reply
    finally:
        await c.close()


async def test_roster_versioning(server):
    """§2.6: with rosterver advertised, a get with the current version returns no items, a get
    with an old version returns the changes (as the full roster or as pushes)."""
    c = await sign_in(server, "r6")
    try:
        if "rosterver" not in c.features:
            pytest.skip("server does not advertise roster versioning")
        await c.iq_set(f"<query xmlns='{NS_ROSTER}'><item jid='first@localhost'/></query>")
        await c.next_push()
        first = await c.iq_get(f"<query xmlns='{NS_ROSTER}' ver=''/>")
        query = first.xml.find(f"{{{NS_ROSTER}}}query")
        assert query is not None and query.get("ver") is not None, first
        v0 = query.get("ver")

        same = await c.iq_get(f"<query xmlns='{NS_ROSTER}' ver='{v0}'/>")
        assert same["type"] == "result"
        assert items(same) == {}, f"unchanged roster resent: {same}"

        await c.iq_set(f"<query xmlns='{NS_ROSTER}'><item jid='{CONTACT}' name='V'/></query>")
        push = await c.next_push()
        v1 = push.xml.find(f"{{{NS_ROSTER}}}query").get("ver")
        assert v1 and v1 != v0, f"push carries no new version: {push}"

        c.drain()
        later = await c.iq_get(f"<query xmlns='{NS_ROSTER}' ver='{v0}'/>")
        if items(later):
            assert CONTACT in items(later)
        else:
            assert CONTACT in items(await c.next_push()), "change since v0 neither returned nor pushed"
    finally:
        await c.close()
