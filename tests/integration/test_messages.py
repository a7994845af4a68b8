"""Message routing by RFC 6121 §8.5 and offline storage (XEP-0160).

Recipient "rita" is online with three resources: high (priority 5), low (priority 1) and neg
(priority -1). Absences are proven with barrier(): a marker sent after the message arrives
first at the same resource only if the message never went there.
"""

from __future__ import annotations

import signal

import pytest

from harness.client import barrier, close_all, error_condition, queued, sign_in

USERS = ["sam", "rita", "olga", "otto", "kim"]
D = "@localhost"


@pytest.fixture
async def rita(server):
    high = await sign_in(server, "rita", resource="high", priority=5)
    low = await sign_in(server, "rita", resource="low", priority=1)
    neg = await sign_in(server, "rita", resource="neg", priority=-1)
    sam = await sign_in(server, "sam", resource="s")
    yield sam, high, low, neg
    await close_all(sam, high, low, neg)


def bodies(messages) -> list[str]:
    return [m["body"] for m in messages]


async def got(sender, *receivers) -> list[list[str]]:
    """Bodies each receiver got before a barrier from `sender`."""
    return [bodies(await barrier(sender, r)) for r in receivers]


async def errors_back(sender) -> list[str]:
    """Error conditions `sender` got back so far (after a round trip to the server)."""
    await sender.iq_get("<ping xmlns='urn:xmpp:ping'/>", to="localhost")
    return [error_condition(m) for m in queued(sender.messages) if m["type"] == "error"]


@pytest.mark.parametrize("mtype", ["chat", "normal"])
async def test_bare_jid_goes_to_highest_priority(server, rita, mtype):
    """§8.5.2.1.1: chat/normal to the bare JID reach the most available resource, never a
    negative-priority one. The sender's full JID is stamped as 'from' (RFC 6120 §8.1.2.1)."""
    sam, high, low, neg = rita
    sam.send_message(mto="rita" + D, mbody=f"to bare {mtype}", mtype=mtype)
    m = await high.next_message(where=lambda m: m["body"] == f"to bare {mtype}")
    assert m["from"].full == sam.boundjid.full
    assert m["type"] == mtype
    assert await got(sam, low, neg) == [[], []]


async def test_headline_to_bare_jid_goes_to_all_non_negative(server, rita):
    sam, high, low, neg = rita
    sam.send_message(mto="rita" + D, mbody="news", mtype="headline")
    assert await got(sam, high, low, neg) == [["news"], ["news"], []]


async def test_groupchat_to_bare_jid_is_refused(server, rita):
    """§8.5.2.1.1: groupchat to a bare JID is not delivered; the sender gets
    service-unavailable."""
    sam, high, low, neg = rita
    sam.send_message(mto="rita" + D, mbody="gc", mtype="groupchat")
    err = await sam.next_message(where=lambda m: m["type"] == "error")
    assert error_condition(err) == "service-unavailable"
    assert await got(sam, high, low, neg) == [[], [], []]


async def test_error_to_bare_jid_is_dropped_silently(server, rita):
    sam, high, low, neg = rita
    sam.send_raw(f"<message to='rita{D}' type='error'><body>err</body>"
                 "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                 "</error></message>")
    assert await got(sam, high, low, neg) == [[], [], []]
    assert await errors_back(sam) == [], "an error bounced an error"


@pytest.mark.parametrize("resource", ["low", "neg"])
async def test_full_jid_goes_to_that_resource_only(server, rita, resource):
    """§8.5.3.1: a full JID reaches that resource, whatever its priority."""
    sam, high, low, neg = rita
    sam.send_message(mto=f"rita{D}/{resource}", mbody="direct", mtype="chat")
    expected = {"low": [[], ["direct"], []], "neg": [[], [], ["direct"]]}[resource]
    assert await got(sam, high, low, neg) == expected


async def test_full_jid_unknown_resource_chat_goes_to_bare(server, rita):
    """§8.5.3.2.1: chat to an unknown resource is handled as if sent to the bare JID."""
    sam, high, low, neg = rita
    sam.send_message(mto=f"rita{D}/gone", mbody="where are you", mtype="chat")
    assert await got(sam, high, low, neg) == [["where are you"], [], []]


@pytest.mark.parametrize("mtype", ["headline", "groupchat", "normal"])
async def test_full_jid_unknown_resource_other_types(server, rita, mtype):
    """§8.5.3.2.1: headline and groupchat to an unknown resource are dropped or bounced with
    service-unavailable. For normal, servers differ (delivered as for the bare JID, or not at
    all): whatever they do, never to the lower or negative resource."""
    sam, high, low, neg = rita
    sam.send_message(mto=f"rita{D}/gone", mbody="lost", mtype=mtype)
    h, lo, n = await got(sam, high, low, neg)
    assert lo == [] and n == []
    if mtype != "normal":
        assert h == []
    assert set(await errors_back(sam)) <= {"service-unavailable"}


async def test_iq_to_unknown_full_jid_is_service_unavailable(server, rita):
    """§8.5.3.2.1 (IQ): an iq to a resource that is not there gets service-unavailable."""
    sam, *_ = rita
    reply = await sam.iq_get("<ping xmlns='urn:xmpp:ping'/>", to=f"rita{D}/gone")
    assert error_condition(reply) == "service-unavailable"


async def test_iq_to_full_jid_reaches_the_client(server, rita):
    """Ping from client to client through the server (XEP-0199 §4.2)."""
    sam, high, *_ = rita
    reply = await sam.iq_get("<ping xmlns='urn:xmpp:ping'/>", to=high.boundjid.full)
    assert reply["type"] == "result"
    assert reply["from"].full == high.boundjid.full


async def test_to_nonexistent_user(server, rita):
    """§8.5.1: an iq to a user that does not exist gets service-unavailable; a message is
    dropped or bounced with service-unavailable."""
    sam, *_ = rita
    reply = await sam.iq_get("<query xmlns='jabber:iq:version'/>", to=f"nobody{D}")
    assert error_condition(reply) == "service-unavailable"
    sam.send_message(mto=f"nobody{D}", mbody="hello?", mtype="chat")
    assert set(await errors_back(sam)) <= {"service-unavailable"}


async def test_body_text_survives_exactly(server, rita):
    sam, high, *_ = rita
    text = "<tag> & 'quotes' \"double\" ünïcødé 😀 \u00a0 end"
    sam.send_message(mto=high.boundjid.full, mbody=text, mtype="chat")
    m = await high.next_message()
    assert m["body"] == text


@pytest.mark.slow
async def test_offline_messages_stored_and_delivered_once_after_restart(server):
    """XEP-0160: chat and normal to an offline user are stored, survive a restart, arrive in
    order with a <delay/> at the next available presence, and only once. Headlines are not
    stored (§8.5.2.2: dropped); groupchat bounces."""
    sam = await sign_in(server, "sam", resource="offline-test")
    sam.send_message(mto="olga" + D, mbody="first", mtype="chat")
    sam.send_message(mto="olga" + D, mbody="headline", mtype="headline")
    sam.send_message(mto="olga" + D, mbody="second", mtype="normal")
    sam.send_message(mto="olga" + D, mbody="gc", mtype="groupchat")
    assert await errors_back(sam) == ["service-unavailable"]
    await sam.close()

    server.restart()

    olga = await sign_in(server, "olga", resource="back")
    sam = await sign_in(server, "sam", resource="offline-test")
    try:
        first = await olga.next_message()
        second = await olga.next_message()
        assert bodies([first, second]) == ["first", "second"]
        for m in (first, second):
            assert m["from"].bare == "sam" + D
            delay = m.xml.find("{urn:xmpp:delay}delay")
            assert delay is not None and delay.get("stamp"), f"no XEP-0203 delay: {m}"
        assert await got(sam, olga) == [[]], "headline or groupchat stored"
        await olga.close()
        olga = await sign_in(server, "olga", resource="again")
        assert await got(sam, olga) == [[]], "offline messages delivered twice"
    finally:
        await close_all(olga, sam)


async def test_offline_storage_waits_for_available_presence(server):
    """XEP-0160 §4: stored messages are delivered when the user sends available presence,
    not at bind (a client that never sends presence does not empty the store)."""
    sam = await sign_in(server, "sam", resource="wait")
    sam.send_message(mto="kim" + D, mbody="for later", mtype="chat")
    await errors_back(sam)
    kim = await sign_in(server, "kim", resource="silent", presence=False)
    try:
        assert await got(sam, kim) == [[]]
        kim.send_presence()
        assert (await kim.next_message())["body"] == "for later"
    finally:
        await close_all(kim, sam)


@pytest.mark.slow
async def test_offline_message_survives_kill_9(server):
    """Nothing lost: once the server has answered the sender's next iq, the stored message
    must survive SIGKILL (DESIGN.md: written to the store before it is acknowledged)."""
    sam = await sign_in(server, "sam", resource="kill")
    sam.send_message(mto="otto" + D, mbody="survive", mtype="chat")
    await errors_back(sam)
    server.stop(signal.SIGKILL)
    sam.abort()
    server.start()
    otto = await sign_in(server, "otto")
    try:
        assert (await otto.next_message())["body"] == "survive"
    finally:
        await otto.close()
