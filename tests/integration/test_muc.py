"""Multi-user chat (XEP-0045) with slixmpp clients speaking raw MUC XML: create, configure,
chat, invite, moderate, ban, destroy, disco, archive (XEP-0313), and persistence across a
restart and a kill -9. Each test uses its own room so the tests stay independent."""

from __future__ import annotations

import signal
import xml.etree.ElementTree as ET

import pytest

from harness.client import close_all, error_condition, sign_in

USERS = ["alice", "bob", "carol", "dave"]
SERVICE = "conference.localhost"
NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"
NS_ADMIN = NS_MUC + "#admin"
NS_OWNER = NS_MUC + "#owner"
NS_DATA = "jabber:x:data"
NS_SID = "urn:xmpp:sid:0"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"


def codes(stanza) -> list[int]:
    x = stanza.xml.find(f"{{{NS_USER}}}x")
    if x is None:
        return []
    return [int(s.get("code")) for s in x.findall(f"{{{NS_USER}}}status")]


def item(stanza) -> ET.Element | None:
    x = stanza.xml.find(f"{{{NS_USER}}}x")
    return None if x is None else x.find(f"{{{NS_USER}}}item")


def from_(jid: str, ptype: str | None = None):
    """Match stanzas from `jid` (and of presence type `ptype`, if given)."""
    return lambda s: str(s["from"]) == jid and (ptype is None or s["type"] == ptype)


async def join(c, room: str, nick: str, x_extra: str = "", expect_error: bool = False):
    """Send a MUC join and return the self-presence (110) or the error presence."""
    c.send_raw(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>{x_extra}</x></presence>")
    p = await c.next_presence(where=lambda p: str(p["from"]) == f"{room}/{nick}"
                              and (110 in codes(p) or p["type"] == "error"))
    if expect_error:
        assert p["type"] == "error", p
    else:
        assert p["type"] != "error", p
    return p


def form(fields: dict[str, str | list[str]]) -> str:
    parts = [f"<field var='FORM_TYPE'><value>{NS_MUC}#roomconfig</value></field>"]
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        parts.append(f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in values) + "</field>")
    return f"<x xmlns='{NS_DATA}' type='submit'>{''.join(parts)}</x>"


async def create(c, room: str, nick: str, fields: dict | None = None):
    """Create a room by joining it (201), then submit the configuration (§10.1)."""
    p = await join(c, room, nick)
    assert 201 in codes(p), codes(p)
    reply = await c.iq_set(f"<query xmlns='{NS_OWNER}'>{form(fields or {})}</query>", to=room)
    assert reply["type"] == "result", reply
    return p


async def admin(c, room: str, items: str):
    return await c.iq_set(f"<query xmlns='{NS_ADMIN}'>{items}</query>", to=room)


@pytest.fixture
async def clients(server):
    cs = [await sign_in(server, u, resource="muc") for u in ("alice", "bob", "carol")]
    yield cs
    await close_all(*cs)


async def test_instant_room_locked_until_configured_then_chat_and_history(server, clients):
    alice, bob, carol = clients
    room = f"instant@{SERVICE}"
    p = await join(alice, room, "Alice")
    assert codes(p) == [110, 201]
    assert item(p).get("affiliation") == "owner" and item(p).get("role") == "moderator"
    # Locked: §10.1.1 item-not-found for everyone else.
    err = await join(bob, room, "Bob", expect_error=True)
    assert error_condition(err) == "item-not-found"
    reply = await alice.iq_set(f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_DATA}' type='submit'/></query>", to=room)
    assert reply["type"] == "result"
    await join(bob, room, "Bob")
    seen = await alice.next_presence(where=from_(f"{room}/Bob"))
    assert item(seen).get("jid") == str(bob.boundjid), "the owner is a moderator and sees real JIDs"
    for i in range(3):
        bob.send_message(mto=room, mbody=f"hello {i}", mtype="groupchat")
    for c in (alice, bob):
        for i in range(3):
            m = await c.next_message(where=lambda m: m["type"] == "groupchat" and m["body"] == f"hello {i}")
            assert str(m["from"]) == f"{room}/Bob"
            sid = m.xml.find(f"{{{NS_SID}}}stanza-id")
            assert sid is not None and sid.get("by") == room
    await join(carol, room, "Carol", "<history maxstanzas='2'/>")
    got = []
    while True:
        m = await carol.next_message(where=lambda m: str(m["from"]).startswith(room))
        if m.xml.find("{jabber:client}subject") is not None:
            break
        got.append(m["body"])
    assert got == ["hello 1", "hello 2"]
    # A participant may not change the subject by default.
    carol.send_raw(f"<message to='{room}' type='groupchat'><subject>mine</subject></message>")
    e = await carol.next_message(where=lambda m: m["type"] == "error")
    assert error_condition(e) == "forbidden"


async def test_nick_conflict_change_and_leave(server, clients):
    alice, bob, carol = clients
    room = f"nicks@{SERVICE}"
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")
    err = await join(carol, room, "Bob", expect_error=True)
    assert error_condition(err) == "conflict"
    bob.send_raw(f"<presence to='{room}/Robert'/>")
    gone = await alice.next_presence(where=from_(f"{room}/Bob", "unavailable"))
    assert gone["type"] == "unavailable" and 303 in codes(gone) and item(gone).get("nick") == "Robert"
    back = await alice.next_presence(where=from_(f"{room}/Robert"))
    assert back["type"] != "unavailable"
    bob.send_raw(f"<presence to='{room}/Robert' type='unavailable'/>")
    left = await alice.next_presence(where=from_(f"{room}/Robert", "unavailable"))
    assert left["type"] == "unavailable"


async def test_dropped_connection_leaves_the_room(server, clients):
    alice, bob, _ = clients
    room = f"drop@{SERVICE}"
    await create(alice, room, "Alice")
    dave = await sign_in(server, "dave", resource="gone")
    await join(dave, room, "Dave")
    dave.abort()  # no </stream>, no unavailable: the server must notice
    left = await alice.next_presence(where=from_(f"{room}/Dave", "unavailable"))
    assert left["type"] == "unavailable"


async def test_dropped_connection_without_broadcast_presence_leaves_the_room(server, clients):
    """RFC 6121 §4.6.3: a session that only ever sent directed presence (a MUC join) still
    tells its targets it left when it ends, even though it was never 'available'."""
    alice, _, _ = clients
    room = f"drop-directed@{SERVICE}"
    await create(alice, room, "Alice")
    erin = await sign_in(server, "dave", resource="directed-only", presence=False)
    await join(erin, room, "Erin")
    erin.abort()
    left = await alice.next_presence(where=from_(f"{room}/Erin", "unavailable"))
    assert left["type"] == "unavailable"


async def test_kick_ban_and_permissions(server, clients):
    alice, bob, carol = clients
    room = f"discipline@{SERVICE}"
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")
    await join(carol, room, "Carol")
    # A participant cannot kick (forbidden).
    r = await admin(bob, room, "<item nick='Carol' role='none'/>")
    assert error_condition(r) == "forbidden"
    r = await admin(alice, room, "<item nick='Carol' role='none'><reason>out</reason></item>")
    assert r["type"] == "result"
    kicked = await carol.next_presence(where=from_(f"{room}/Carol", "unavailable"))
    assert kicked["type"] == "unavailable" and 307 in codes(kicked) and 110 in codes(kicked)
    r = await admin(alice, room, f"<item affiliation='outcast' jid='{bob.boundjid.bare}'/>")
    assert r["type"] == "result"
    banned = await bob.next_presence(where=from_(f"{room}/Bob", "unavailable"))
    assert 301 in codes(banned)
    err = await join(bob, room, "Bob", expect_error=True)
    assert error_condition(err) == "forbidden"
    r = await alice.iq_get(f"<query xmlns='{NS_ADMIN}'><item affiliation='outcast'/></query>", to=room)
    assert [i.get("jid") for i in r.xml.iter(f"{{{NS_ADMIN}}}item")] == [str(bob.boundjid.bare)]
    # The last owner cannot leave the owner list.
    r = await admin(alice, room, f"<item affiliation='member' jid='{alice.boundjid.bare}'/>")
    assert error_condition(r) == "conflict"


async def test_members_only_password_and_invitation(server, clients):
    alice, bob, carol = clients
    room = f"private@{SERVICE}"
    await create(alice, room, "Alice", {"muc#roomconfig_membersonly": "1",
                                         "muc#roomconfig_passwordprotectedroom": "1",
                                         "muc#roomconfig_roomsecret": "s3cret"})
    err = await join(bob, room, "Bob", "<password>s3cret</password>", expect_error=True)
    assert error_condition(err) == "registration-required"
    alice.send_raw(f"<message to='{room}'><x xmlns='{NS_USER}'><invite to='{bob.boundjid.bare}'>"
                   "<reason>join us</reason></invite></x></message>")
    inv = await bob.next_message(where=lambda m: m.xml.find(f"{{{NS_USER}}}x") is not None)
    x = inv.xml.find(f"{{{NS_USER}}}x")
    assert str(inv["from"]) == room
    assert x.find(f"{{{NS_USER}}}invite").get("from") == str(alice.boundjid.bare)
    assert x.find(f"{{{NS_USER}}}password").text == "s3cret"
    # The admin's invitation made bob a member; the password is still needed.
    err = await join(bob, room, "Bob", expect_error=True)
    assert error_condition(err) == "not-authorized"
    await join(bob, room, "Bob", "<password>s3cret</password>")


async def test_destroy_with_alternate_venue(server, clients):
    alice, bob, _ = clients
    room = f"doomed@{SERVICE}"
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")
    r = await alice.iq_set(f"<query xmlns='{NS_OWNER}'><destroy jid='new@{SERVICE}'><reason>moved</reason>"
                           "</destroy></query>", to=room)
    assert r["type"] == "result"
    p = await bob.next_presence(where=from_(f"{room}/Bob", "unavailable"))
    d = p.xml.find(f"{{{NS_USER}}}x/{{{NS_USER}}}destroy")
    assert p["type"] == "unavailable" and d is not None and d.get("jid") == f"new@{SERVICE}"
    r = await bob.iq_get(f"<query xmlns='{NS_INFO}'/>", to=room)
    assert error_condition(r) == "item-not-found"


async def test_disco_public_rooms_and_my_rooms(server, clients):
    alice, bob, _ = clients
    await create(alice, f"listed@{SERVICE}", "Alice", {"muc#roomconfig_roomname": "Listed room"})
    await create(alice, f"hidden@{SERVICE}", "Alice", {"muc#roomconfig_publicroom": "0"})
    info = await bob.iq_get(f"<query xmlns='{NS_INFO}'/>", to=SERVICE)
    assert NS_MUC in [f.get("var") for f in info.xml.iter(f"{{{NS_INFO}}}feature")]
    items = await bob.iq_get(f"<query xmlns='{NS_ITEMS}'/>", to=SERVICE)
    listed = {i.get("jid"): i.get("name") for i in items.xml.iter(f"{{{NS_ITEMS}}}item")}
    assert listed.get(f"listed@{SERVICE}") == "Listed room"
    assert f"hidden@{SERVICE}" not in listed
    mine = await alice.iq_get(f"<query xmlns='{NS_ITEMS}' node='x-amphi:my-rooms'/>", to=SERVICE)
    owned = {i.get("jid") for i in mine.xml.iter(f"{{{NS_ITEMS}}}item")}
    assert {f"listed@{SERVICE}", f"hidden@{SERVICE}"} <= owned
    theirs = await bob.iq_get(f"<query xmlns='{NS_ITEMS}' node='x-amphi:my-rooms'/>", to=SERVICE)
    assert not {f"listed@{SERVICE}", f"hidden@{SERVICE}"} & {i.get("jid") for i in theirs.xml.iter(f"{{{NS_ITEMS}}}item")}
    room_info = await bob.iq_get(f"<query xmlns='{NS_INFO}'/>", to=f"listed@{SERVICE}")
    features = [f.get("var") for f in room_info.xml.iter(f"{{{NS_INFO}}}feature")]
    assert {"muc_public", "muc_temporary", "muc_open", "muc_semianonymous", NS_MUC} <= set(features)
    fields = {f.get("var") for f in room_info.xml.iter(f"{{{NS_DATA}}}field")}
    assert "muc#roominfo_occupants" in fields


async def test_archive_paged_with_rsm(server, clients):
    alice, bob, _ = clients
    room = f"archived@{SERVICE}"
    await create(alice, room, "Alice", {"muc#roomconfig_persistentroom": "1"})
    for i in range(5):
        alice.send_message(mto=room, mbody=f"archived {i}", mtype="groupchat")
        await alice.next_message(where=lambda m: m["body"] == f"archived {i}")
    q = (f"<query xmlns='{NS_MAM}' queryid='q1'><set xmlns='{NS_RSM}'><max>2</max><before/></set></query>")
    fin = await bob.iq_set(q, to=room)
    assert fin["type"] == "result", fin
    results = []
    while len(results) < 2:
        m = await bob.next_message(where=lambda m: m.xml.find(f"{{{NS_MAM}}}result") is not None)
        fwd = m.xml.find(f"{{{NS_MAM}}}result/{{urn:xmpp:forward:0}}forwarded/{{jabber:client}}message")
        results.append(fwd.find("{jabber:client}body").text)
    assert results == ["archived 3", "archived 4"]
    f = fin.xml.find(f"{{{NS_MAM}}}fin")
    assert f.find(f"{{{NS_RSM}}}set/{{{NS_RSM}}}count").text == "5"
    assert f.get("complete") != "true"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "kill-9"])
async def test_persistent_room_survives(server, sig):
    room = f"durable-{int(sig)}@{SERVICE}"
    alice = await sign_in(server, "alice", resource="d")
    await create(alice, room, "Alice", {"muc#roomconfig_persistentroom": "1",
                                         "muc#roomconfig_roomname": "Durable"})
    r = await admin(alice, room, "<item affiliation='member' jid='carol@localhost'/>")
    assert r["type"] == "result"
    alice.send_raw(f"<message to='{room}' type='groupchat'><subject>kept</subject></message>")
    await alice.next_message(where=lambda m: m.xml.find("{jabber:client}subject") is not None)
    alice.send_message(mto=room, mbody="before the crash", mtype="groupchat")
    await alice.next_message(where=lambda m: m["body"] == "before the crash")
    await close_all(alice)
    server.restart(sig)
    bob = await sign_in(server, "bob", resource="after")
    try:
        info = await bob.iq_get(f"<query xmlns='{NS_INFO}'/>", to=room)
        assert info["type"] == "result", info
        ident = info.xml.find(f"{{{NS_INFO}}}query/{{{NS_INFO}}}identity")
        assert ident.get("name") == "Durable"
        await join(bob, room, "Bob")
        got = []
        while True:
            m = await bob.next_message(where=lambda m: str(m["from"]).startswith(room))
            if m.xml.find("{jabber:client}subject") is not None:
                assert m.xml.find("{jabber:client}subject").text == "kept"
                break
            got.append(m["body"])
        assert "before the crash" in got
        alice = await sign_in(server, "alice", resource="d2")
        r = await alice.iq_get(f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>", to=room)
        assert [i.get("jid") for i in r.xml.iter(f"{{{NS_ADMIN}}}item")] == ["carol@localhost"]
        await close_all(alice)
    finally:
        await close_all(bob)


async def test_private_messages_and_stable_occupant_id(server, clients):
    alice, bob, _ = clients
    room = f"whisper@{SERVICE}"
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")
    bob.send_message(mto=f"{room}/Alice", mbody="psst", mtype="chat")
    pm = await alice.next_message(where=lambda m: m["body"] == "psst")
    assert str(pm["from"]) == f"{room}/Bob" and pm.xml.find(f"{{{NS_USER}}}x") is not None
    first = pm.xml.find("{urn:xmpp:occupant-id:0}occupant-id").get("id")
    # Another nick, same account: the same occupant-id (XEP-0421).
    bob.send_raw(f"<presence to='{room}/Robert'/>")
    await alice.next_presence(where=from_(f"{room}/Robert"))
    bob.send_message(mto=room, mbody="still me", mtype="groupchat")
    m = await alice.next_message(where=lambda m: m["body"] == "still me")
    assert m.xml.find("{urn:xmpp:occupant-id:0}occupant-id").get("id") == first


async def test_voice_request_in_moderated_room(server, clients):
    alice, bob, _ = clients
    room = f"moderated@{SERVICE}"
    await create(alice, room, "Alice", {"muc#roomconfig_moderatedroom": "1"})
    p = await join(bob, room, "Bob")
    assert item(p).get("role") == "visitor"
    bob.send_message(mto=room, mbody="may I?", mtype="groupchat")
    e = await bob.next_message(where=lambda m: m["type"] == "error")
    assert error_condition(e) == "forbidden"
    bob.send_raw(f"<message to='{room}'><x xmlns='{NS_DATA}' type='submit'>"
                 f"<field var='FORM_TYPE'><value>{NS_MUC}#request</value></field>"
                 "<field var='muc#role'><value>participant</value></field></x></message>")
    req = await alice.next_message(where=lambda m: m.xml.find(f"{{{NS_DATA}}}x") is not None)
    fields = {f.get("var"): f.findtext(f"{{{NS_DATA}}}value") for f in req.xml.iter(f"{{{NS_DATA}}}field")}
    assert fields["muc#roomnick"] == "Bob"
    alice.send_raw(f"<message to='{room}'><x xmlns='{NS_DATA}' type='submit'>"
                   f"<field var='FORM_TYPE'><value>{NS_MUC}#request</value></field>"
                   "<field var='muc#role'><value>participant</value></field>"
                   "<field var='muc#roomnick'><value>Bob</value></field>"
                   "<field var='muc#request_allow'><value>true</value></field></x></message>")
    voiced = await bob.next_presence(where=lambda p: str(p["from"]) == f"{room}/Bob"
                                     and item(p) is not None and item(p).get("role") == "participant")
    assert 110 in codes(voiced)
    bob.send_message(mto=room, mbody="thank you", mtype="groupchat")
    await alice.next_message(where=lambda m: m["body"] == "thank you")


async def test_moderation_retracts_everywhere(server, clients):
    alice, bob, carol = clients
    room = f"moderation@{SERVICE}"
    await create(alice, room, "Alice", {"muc#roomconfig_persistentroom": "1"})
    await join(bob, room, "Bob")
    bob.send_message(mto=room, mbody="something rude", mtype="groupchat")
    m = await alice.next_message(where=lambda m: m["body"] == "something rude")
    sid = m.xml.find(f"{{{NS_SID}}}stanza-id").get("id")
    r = await bob.iq_set(f"<moderate id='{sid}' xmlns='urn:xmpp:message-moderate:1'>"
                         "<retract xmlns='urn:xmpp:message-retract:1'/></moderate>", to=room)
    assert error_condition(r) == "forbidden"
    r = await alice.iq_set(f"<moderate id='{sid}' xmlns='urn:xmpp:message-moderate:1'>"
                           "<retract xmlns='urn:xmpp:message-retract:1'/><reason>rude</reason></moderate>", to=room)
    assert r["type"] == "result", r
    for c in (alice, bob):
        n = await c.next_message(where=lambda m: m.xml.find("{urn:xmpp:message-retract:1}retract") is not None)
        assert n.xml.find("{urn:xmpp:message-retract:1}retract").get("id") == sid
    fin = await carol.iq_set(f"<query xmlns='{NS_MAM}' queryid='m'/>", to=room)
    assert fin["type"] == "result"
    archived = await carol.next_message(where=lambda m: m.xml.find(f"{{{NS_MAM}}}result") is not None)
    fwd = archived.xml.find(f"{{{NS_MAM}}}result/{{urn:xmpp:forward:0}}forwarded/{{jabber:client}}message")
    assert fwd.find("{jabber:client}body") is None
    assert fwd.find("{urn:xmpp:message-retract:1}retracted") is not None


async def test_registration_reserves_nick(server, clients):
    alice, bob, carol = clients
    room = f"register@{SERVICE}"
    await create(alice, room, "Alice")
    form_reply = await bob.iq_get("<query xmlns='jabber:iq:register'/>", to=room)
    assert form_reply["type"] == "result"
    r = await bob.iq_set("<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
                         f"<field var='FORM_TYPE'><value>{NS_MUC}#register</value></field>"
                         "<field var='muc#register_roomnick'><value>Bobby</value></field></x></query>", to=room)
    assert r["type"] == "result", r
    info = await bob.iq_get(f"<query xmlns='{NS_INFO}' node='x-roomuser-item'/>", to=room)
    assert info.xml.find(f"{{{NS_INFO}}}query/{{{NS_INFO}}}identity").get("name") == "Bobby"
    err = await join(carol, room, "Bobby", expect_error=True)
    assert error_condition(err) == "conflict"
    r = await alice.iq_get(f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>", to=room)
    assert [(i.get("jid"), i.get("nick")) for i in r.xml.iter(f"{{{NS_ADMIN}}}item")] == [("bob@localhost", "Bobby")]


async def test_config_change_is_announced(server, clients):
    alice, bob, _ = clients
    room = f"announce@{SERVICE}"
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")
    r = await alice.iq_set(f"<query xmlns='{NS_OWNER}'>{form({'muc#roomconfig_whois': 'anyone'})}</query>", to=room)
    assert r["type"] == "result"
    notice = await bob.next_message(where=lambda m: codes(m))
    assert codes(notice) == [104, 172]
    # The owner form lists the fields clients expect.
    got = await alice.iq_get(f"<query xmlns='{NS_OWNER}'/>", to=room)
    fields = {f.get("var") for f in got.xml.iter(f"{{{NS_DATA}}}field")}
    assert {"muc#roomconfig_persistentroom", "muc#roomconfig_membersonly", "muc#roomconfig_whois",
            "muc#roomconfig_roomsecret", "muc#roomconfig_allowpm", "muc#roomconfig_maxusers"} <= fields
    r = await bob.iq_get(f"<query xmlns='{NS_OWNER}'/>", to=room)
    assert error_condition(r) == "forbidden"


async def test_invitation_declined(server, clients):
    alice, bob, carol = clients
    room = f"decline@{SERVICE}"
    await create(alice, room, "Alice", {"muc#roomconfig_allowinvites": "1"})
    alice.send_raw(f"<message to='{room}'><x xmlns='{NS_USER}'><invite to='{carol.boundjid.full}'/></x></message>")
    await carol.next_message(where=lambda m: m.xml.find(f"{{{NS_USER}}}x/{{{NS_USER}}}invite") is not None)
    carol.send_raw(f"<message to='{room}'><x xmlns='{NS_USER}'><decline to='{alice.boundjid.full}'>"
                   "<reason>busy</reason></decline></x></message>")
    d = await alice.next_message(where=lambda m: m.xml.find(f"{{{NS_USER}}}x/{{{NS_USER}}}decline") is not None)
    decline = d.xml.find(f"{{{NS_USER}}}x/{{{NS_USER}}}decline")
    assert decline.get("from") == "carol@localhost" and decline.findtext(f"{{{NS_USER}}}reason") == "busy"


@pytest.mark.slow
async def test_kill_9_mid_traffic_loses_no_reflected_message(server):
    """A message the room reflected back to its sender was acknowledged: it must be in the
    archive after a kill -9 that lands while more messages are in flight."""
    room = f"midtraffic@{SERVICE}"
    alice = await sign_in(server, "alice", resource="t")
    await create(alice, room, "Alice", {"muc#roomconfig_persistentroom": "1"})
    for i in range(200):
        alice.send_message(mto=room, mbody=f"burst {i}", mtype="groupchat")
    acked = set()
    while len(acked) < 40:
        m = await alice.next_message(where=lambda m: m["body"].startswith("burst "))
        acked.add(m["body"])
    server.stop(signal.SIGKILL)
    alice.abort()
    server.start()
    bob = await sign_in(server, "bob", resource="after-kill")
    try:
        fin = await bob.iq_set(f"<query xmlns='{NS_MAM}' queryid='k'><set xmlns='{NS_RSM}'><max>250</max></set>"
                               "</query>", to=room)
        assert fin["type"] == "result", fin
        count = int(fin.xml.find(f"{{{NS_MAM}}}fin/{{{NS_RSM}}}set/{{{NS_RSM}}}count").text)
        archived = set()
        for _ in range(count):
            m = await bob.next_message(where=lambda m: m.xml.find(f"{{{NS_MAM}}}result") is not None)
            fwd = m.xml.find(f"{{{NS_MAM}}}result/{{urn:xmpp:forward:0}}forwarded/{{jabber:client}}message")
            archived.add(fwd.findtext("{jabber:client}body"))
        assert acked <= archived, sorted(acked - archived)
    finally:
        await close_all(bob)


async def test_unique_room_name_and_groupchat_1_0_join(server, clients):
    alice, bob, _ = clients
    r = await alice.iq_get("<unique xmlns='http://jabber.org/protocol/muc#unique'/>", to=SERVICE)
    name = r.xml.findtext("{http://jabber.org/protocol/muc#unique}unique")
    assert name
    room = f"{name}@{SERVICE}"
    alice.send_raw(f"<presence to='{room}/Alice'/>")  # no MUC extension: groupchat 1.0
    p = await alice.next_presence(where=lambda p: str(p["from"]) == f"{room}/Alice" and 110 in codes(p))
    assert 201 in codes(p)
    await join(bob, room, "Bob")  # such a room is instant: not locked


async def test_vcard_of_an_occupant_comes_from_its_account(server, clients):
    """Avatars (XEP-0153) in rooms: a vCard request to an occupant JID is answered with the
    occupant account's vCard, from the occupant JID, without revealing the account."""
    alice, bob, _ = clients
    room = f"avatars@{SERVICE}"
    r = await alice.iq_set("<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard>")
    assert r["type"] == "result"
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")
    card = await bob.iq_get("<vCard xmlns='vcard-temp'/>", to=f"{room}/Alice")
    assert card["type"] == "result" and str(card["from"]) == f"{room}/Alice"
    assert card.xml.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Alice Liddell"


async def test_direct_invitation_passes_client_to_client(server, clients):
    """XEP-0249: a direct invitation is an ordinary message between the two users; the
    server delivers it intact (the service advertises jabber:x:conference)."""
    alice, bob, _ = clients
    room = f"direct@{SERVICE}"
    await create(alice, room, "Alice")
    alice.send_raw(f"<message to='{bob.boundjid.full}'><x xmlns='jabber:x:conference' jid='{room}' "
                   "reason='join us'/></message>")
    m = await bob.next_message(where=lambda m: m.xml.find("{jabber:x:conference}x") is not None)
    x = m.xml.find("{jabber:x:conference}x")
    assert x.get("jid") == room and x.get("reason") == "join us"
    info = await bob.iq_get(f"<query xmlns='{NS_INFO}'/>", to=SERVICE)
    assert "jabber:x:conference" in [f.get("var") for f in info.xml.iter(f"{{{NS_INFO}}}feature")]


async def test_slixmpp_muc_plugin_flow(server):
    """slixmpp's own XEP-0045 plugin, as a client application would use it: join and wait,
    read and submit the configuration form, list affiliations, change nick, destroy."""
    owner = await sign_in(server, "dave", resource="plugin")
    owner.register_plugin("xep_0045")
    muc = owner.plugin["xep_0045"]
    room = f"plugin@{SERVICE}"
    try:
        self_presence, subject, occupants, history = await muc.join_muc_wait(room, "Dave", maxstanzas=0,
                                                                               timeout=5)
        assert 201 in codes(self_presence) and history == []
        assert [str(p["from"]) for p in occupants] == [f"{room}/Dave"]
        form = await muc.get_room_config(room)
        fields = form.get_fields()
        assert "muc#roomconfig_roomname" in fields
        form["type"] = "submit"
        form.set_values({"muc#roomconfig_roomname": "From the plugin"})
        await muc.set_room_config(room, form)
        owners = await muc.get_affiliation_list(room, "owner")
        assert owners == ["dave@localhost"]
        await muc.set_self_nick(room, "David", timeout=5)
        await muc.destroy(room, reason="done")
    finally:
        await close_all(owner)
