"""Presence (RFC 6121 §4): broadcast to subscribers and own resources, probes at login,
directed presence, unavailable on disconnect whether the client closes cleanly or vanishes."""

from __future__ import annotations

import asyncio

import pytest

from harness.client import close_all, password_of, queued, sign_in, barrier
from harness.raw import RawStream
from harness.roster import befriend, presence_from

USERS = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "stranger"]
D = "@localhost"


@pytest.fixture(scope="module", autouse=True)
def friends(server):
    """Pairs with a mutual subscription, made once for the module."""
    async def make():
        for a, b in (("p1", "p2"), ("p3", "p4"), ("p5", "p6"), ("p7", "p8")):
            await befriend(server, a, b)
    asyncio.run(make())


async def test_broadcast_to_subscriber_and_own_resources(server):
    watcher = await sign_in(server, "p2", resource="w")
    other_self = await sign_in(server, "p1", resource="other")
    await watcher.next_presence(where=presence_from("p1" + D + "/other"))
    p1 = await sign_in(server, "p1", resource="main", presence=False)
    try:
        p1.send_presence(pshow="away", pstatus="at lunch", ppriority=3)
        for c in (watcher, other_self):
            got = await c.next_presence(where=presence_from("p1" + D + "/main"))
            assert (got["show"], got["status"], got["priority"]) == ("away", "at lunch", 3)
    finally:
        await close_all(p1, watcher, other_self)


async def test_no_broadcast_to_strangers(server):
    stranger = await sign_in(server, "stranger", resource="s")
    p1 = await sign_in(server, "p1", resource="leaky", presence=False)
    try:
        p1.send_presence(pstatus="not for strangers")
        await barrier(p1, stranger)
        leaked = [p for p in queued(stranger.presences) if p["from"].bare == "p1" + D]
        assert not leaked, leaked
    finally:
        await close_all(p1, stranger)


async def test_probe_at_login_returns_contacts_presence(server):
    """§4.3: the user's initial presence makes the server send the contacts' current presence."""
    p4 = await sign_in(server, "p4", resource="there", presence=False)
    p4.send_presence(pshow="dnd", pstatus="in a meeting")
    p3 = await sign_in(server, "p3", resource="arrives")
    try:
        got = await p3.next_presence(where=presence_from("p4" + D + "/there"))
        assert (got["show"], got["status"]) == ("dnd", "in a meeting")
    finally:
        await close_all(p3, p4)


async def test_unavailable_on_clean_close(server):
    watcher = await sign_in(server, "p6", resource="w")
    p5 = await sign_in(server, "p5", resource="leaving")
    try:
        await watcher.next_presence(where=presence_from("p5" + D + "/leaving"))
        await p5.close()
        await watcher.next_presence(where=presence_from("p5" + D + "/leaving", "unavailable"))
    finally:
        await close_all(watcher)


@pytest.mark.parametrize("rst", [True, False], ids=["tcp-reset", "tcp-fin-no-stream-end"])
async def test_unavailable_when_client_vanishes(server, rst):
    """§4.5.2: the server generates unavailable presence when the session ends uncleanly."""
    watcher = await sign_in(server, "p6", resource=f"w-{rst}")
    raw = await RawStream.connect(server.direct_tls_port, direct_tls=True)
    await raw.login("p5", password_of("p5"), resource=f"vanish-{rst}")
    try:
        await watcher.next_presence(where=presence_from(f"p5{D}/vanish-{rst}"))
        raw.abort(reset=rst)
        await watcher.next_presence(where=presence_from(f"p5{D}/vanish-{rst}", "unavailable"), timeout=10)
    finally:
        await close_all(watcher)


async def test_explicit_unavailable_keeps_session(server):
    watcher = await sign_in(server, "p8", resource="w")
    p7 = await sign_in(server, "p7", resource="r")
    try:
        await watcher.next_presence(where=presence_from("p7" + D + "/r"))
        p7.send_presence(ptype="unavailable", pstatus="brb")
        got = await watcher.next_presence(where=presence_from("p7" + D + "/r", "unavailable"))
        assert got["status"] == "brb"
        # The session itself lives on: it still gets an answer from the server.
        assert (await p7.iq_get("<ping xmlns='urn:xmpp:ping'/>", to="localhost"))["type"] == "result"
    finally:
        await close_all(p7, watcher)


async def test_directed_presence_and_its_unavailable(server):
    """§4.6: presence sent to a non-subscriber reaches it; when the sender goes offline, the
    server tells that entity too (§4.6.3)."""
    stranger = await sign_in(server, "stranger", resource="d")
    p7 = await sign_in(server, "p7", resource="directs")
    try:
        p7.send_presence(pto=stranger.boundjid.full, pstatus="just for you")
        got = await stranger.next_presence(where=presence_from("p7" + D + "/directs"))
        assert got["status"] == "just for you"
        await p7.close()
        await stranger.next_presence(where=presence_from("p7" + D + "/directs", "unavailable"))
    finally:
        await close_all(stranger, p7)
