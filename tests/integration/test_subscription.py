"""Presence subscriptions (RFC 6121 §3): the handshake with both parties online, with the
contact offline (pending requests kept across a server restart), cancel, unsubscribe and
pre-approval."""

from __future__ import annotations

import pytest

from harness.client import barrier, close_all, queued, sign_in
from harness.marks import diverges_on_prosody
from harness.roster import befriend, presence_from, push_for, roster

USERS = ["s1a", "s1b", "s2a", "s2b", "s3a", "s3b", "s4a", "s4b", "s5a", "s5b", "s6a", "s6b"]
D = "@localhost"


async def test_subscribe_and_approve_both_online(server):
    a = await sign_in(server, "s1a", resource="ra")
    b = await sign_in(server, "s1b", resource="rb")
    try:
        a.send_presence(pto="s1b" + D, ptype="subscribe")
        # §3.1.2: the user's roster gets the contact with ask='subscribe'.
        await push_for(a, "s1b" + D, subscription="none", ask="subscribe")
        # §3.1.3: the contact gets the request from the user's bare JID.
        req = await b.next_presence(where=presence_from("s1a" + D, "subscribe"))
        assert req["from"].full == "s1a" + D

        b.send_presence(pto="s1a" + D, ptype="subscribed")
        # §3.1.5: the contact's roster now says 'from'.
        await push_for(b, "s1a" + D, subscription="from")
        # §3.1.6: the user gets 'subscribed', a push with 'to' and the contact's presence.
        ok = await a.next_presence(where=presence_from("s1b" + D, "subscribed"))
        assert ok["from"].bare == "s1b" + D
        await push_for(a, "s1b" + D, subscription="to", ask=None)
        avail = await a.next_presence(where=presence_from("s1b" + D + "/rb"))
        assert avail["from"].full == "s1b" + D + "/rb"

        # And back: both sides end with 'both'.
        b.send_presence(pto="s1a" + D, ptype="subscribe")
        await a.next_presence(where=presence_from("s1b" + D, "subscribe"))
        a.send_presence(pto="s1b" + D, ptype="subscribed")
        await b.next_presence(where=presence_from("s1a" + D, "subscribed"))
        assert (await roster(a))["s1b" + D].subscription == "both"
        assert (await roster(b))["s1a" + D].subscription == "both"
    finally:
        await close_all(a, b)


@pytest.mark.slow
async def test_pending_subscription_to_offline_contact_survives_restart(server):
    """§3.1.3: a request to an offline contact is delivered when the contact next comes online;
    the pending states (user's ask='subscribe', contact's pending-in) survive a restart."""
    a = await sign_in(server, "s2a")
    a.send_presence(pto="s2b" + D, ptype="subscribe")
    await push_for(a, "s2b" + D, ask="subscribe")
    await a.close()

    server.restart()

    a = await sign_in(server, "s2a")
    b = None
    try:
        item = (await roster(a))["s2b" + D]
        assert (item.subscription, item.ask) == ("none", "subscribe"), "pending-out lost in restart"
        b = await sign_in(server, "s2b")
        req = await b.next_presence(where=presence_from("s2a" + D, "subscribe"))
        assert req["from"].full == "s2a" + D
        b.send_presence(pto="s2a" + D, ptype="subscribed")
        await a.next_presence(where=presence_from("s2b" + D, "subscribed"))
        await push_for(a, "s2b" + D, subscription="to")
    finally:
        await close_all(a, b)


async def test_approval_while_user_offline_is_delivered_later(server):
    """The contact answers while the user is offline; the user finds 'to' at next login."""
    a = await sign_in(server, "s3a")
    b = await sign_in(server, "s3b")
    a.send_presence(pto="s3b" + D, ptype="subscribe")
    await b.next_presence(where=presence_from("s3a" + D, "subscribe"))
    await a.close()
    b.send_presence(pto="s3a" + D, ptype="subscribed")
    await push_for(b, "s3a" + D, subscription="from")
    a = await sign_in(server, "s3a")
    try:
        item = (await roster(a))["s3b" + D]
        assert (item.subscription, item.ask) == ("to", None)
    finally:
        await close_all(a, b)


async def test_cancel_and_unsubscribe(server):
    """§3.2 (contact cancels with 'unsubscribed') and §3.3 (user sends 'unsubscribe')."""
    await befriend(server, "s4a", "s4b")
    a = await sign_in(server, "s4a", resource="ra")
    b = await sign_in(server, "s4b", resource="rb")
    try:
        await a.next_presence(where=presence_from("s4b" + D + "/rb"))
        # b cancels a's subscription to b: both -> from (for a), both -> to (for b).
        b.send_presence(pto="s4a" + D, ptype="unsubscribed")
        await push_for(b, "s4a" + D, subscription="to")
        await a.next_presence(where=presence_from("s4b" + D, "unsubscribed"))
        await push_for(a, "s4b" + D, subscription="from")
        # §3.2.3: a no longer sees b: b's resources go unavailable for a.
        await a.next_presence(where=presence_from("s4b" + D + "/rb", "unavailable"))

        # b unsubscribes from a (§3.3): to -> none for b, from -> none for a.
        b.send_presence(pto="s4a" + D, ptype="unsubscribe")
        await push_for(b, "s4a" + D, subscription="none")
        await a.next_presence(where=presence_from("s4b" + D, "unsubscribe"))
        await push_for(a, "s4b" + D, subscription="none")
    finally:
        await close_all(a, b)


async def test_pre_approval(server):
    """§3.4: 'subscribed' sent before any request pre-approves; the later request is answered
    by the server without bothering the contact."""
    b = await sign_in(server, "s5b")
    a = None
    try:
        if "preapproval" not in b.features:
            pytest.skip("server does not advertise subscription pre-approval")
        b.send_presence(pto="s5a" + D, ptype="subscribed")
        await push_for(b, "s5a" + D, subscription="none")
        a = await sign_in(server, "s5a")
        a.send_presence(pto="s5b" + D, ptype="subscribe")
        await a.next_presence(where=presence_from("s5b" + D, "subscribed"))
        await push_for(b, "s5a" + D, subscription="from")
        await barrier(a, b)
        assert not [p for p in queued(b.presences) if p["type"] == "subscribe"], \
            "pre-approved request still shown to the contact"
    finally:
        await close_all(a, b)


@diverges_on_prosody("0.12 keeps the pre-approval but never shows approved='true' to clients")
async def test_pre_approval_is_shown_in_roster(server):
    """§3.4.1 / §2.1.2.1: the pre-approved item is pushed with approved='true'."""
    b = await sign_in(server, "s6b")
    try:
        if "preapproval" not in b.features:
            pytest.skip("server does not advertise subscription pre-approval")
        b.send_presence(pto="s6a" + D, ptype="subscribed")
        await push_for(b, "s6a" + D, approved=True)
        assert (await roster(b))["s6a" + D].approved
    finally:
        await b.close()
