"""Server services: disco (XEP-0030) for server and accounts, caps on the stream (XEP-0115),
ping (XEP-0199), version (XEP-0092), last activity (XEP-0012), vcard-temp (XEP-0054)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.client import close_all, error_condition, password_of, sign_in
from harness.disco import NS_INFO, NS_ITEMS, caps_ver, info_of, stream_caps
from harness.roster import befriend

USERS = ["ann", "ben", "cat", "fresh"]
D = "@localhost"
NS_VCARD = "vcard-temp"


async def test_server_disco_info(server):
    c = await sign_in(server, "ann")
    try:
        info = info_of(await c.iq_get(f"<query xmlns='{NS_INFO}'/>", to="localhost"))
        assert ("server", "im") in [(i[0], i[1]) for i in info.identities], info.identities
        for feature in (NS_INFO, NS_ITEMS, "urn:xmpp:ping", "jabber:iq:version", "jabber:iq:last",
                        "vcard-temp"):
            assert feature in info.features, f"{feature} not advertised: {info.features}"
        assert len(set(info.features)) == len(info.features), "duplicate features"
    finally:
        await c.close()


async def test_server_disco_items(server):
    c = await sign_in(server, "ann")
    try:
        reply = await c.iq_get(f"<query xmlns='{NS_ITEMS}'/>", to="localhost")
        assert reply["type"] == "result"
        assert reply.xml.find(f"{{{NS_ITEMS}}}query") is not None
    finally:
        await c.close()


async def test_account_disco(server):
    """XEP-0030 §... the server answers for the account's bare JID: identity account/registered."""
    c = await sign_in(server, "ann")
    try:
        info = info_of(await c.iq_get(f"<query xmlns='{NS_INFO}'/>", to="ann" + D))
        assert ("account", "registered") in [(i[0], i[1]) for i in info.identities], info.identities
        items = await c.iq_get(f"<query xmlns='{NS_ITEMS}'/>", to="ann" + D)
        assert items["type"] == "result"
    finally:
        await c.close()


async def test_caps_in_stream_features_match_disco(server):
    """XEP-0115 §6.3: the server's caps in stream features hash its own disco#info."""
    node, ver, algo = await stream_caps(server, "ann", password_of("ann"))
    assert node and ver and algo == "sha-1", (node, ver, algo)
    c = await sign_in(server, "ann")
    try:
        info = info_of(await c.iq_get(f"<query xmlns='{NS_INFO}' node='{node}#{ver}'/>", to="localhost"))
        assert caps_ver(info) == ver, "caps ver does not hash the disco#info answer"
    finally:
        await c.close()


async def test_ping_server(server):
    c = await sign_in(server, "ann", mode="direct")
    try:
        reply = await c.iq_get("<ping xmlns='urn:xmpp:ping'/>", to="localhost")
        assert reply["type"] == "result" and reply["from"].full == "localhost"
        assert len(reply.xml) == 0, "ping result must be empty"
    finally:
        await c.close()


async def test_version(server):
    c = await sign_in(server, "ann")
    try:
        reply = await c.iq_get("<query xmlns='jabber:iq:version'/>", to="localhost")
        assert reply["type"] == "result"
        q = reply.xml.find("{jabber:iq:version}query")
        name, version = q.findtext("{jabber:iq:version}name"), q.findtext("{jabber:iq:version}version")
        assert name and version, ET.tostring(q)
    finally:
        await c.close()


async def test_server_uptime(server):
    c = await sign_in(server, "ann")
    try:
        reply = await c.iq_get("<query xmlns='jabber:iq:last'/>", to="localhost")
        assert reply["type"] == "result"
        seconds = int(reply.xml.find("{jabber:iq:last}query").get("seconds"))
        assert 0 <= seconds < 3600
    finally:
        await c.close()


async def test_last_activity_of_offline_contact(server):
    """XEP-0012 §4: a subscriber asking about an offline contact gets the seconds since its
    last logout (and may get the status it left with); a stranger is refused: forbidden."""
    await befriend(server, "ann", "ben")
    ben = await sign_in(server, "ben", resource="leaving")
    ben.send_presence(ptype="unavailable", pstatus="gone fishing")
    await ben.close()
    ann = await sign_in(server, "ann")
    cat = await sign_in(server, "cat")
    try:
        reply = await ann.iq_get("<query xmlns='jabber:iq:last'/>", to="ben" + D)
        assert reply["type"] == "result", reply
        q = reply.xml.find("{jabber:iq:last}query")
        assert 0 <= int(q.get("seconds")) < 60
        assert q.text in (None, "", "gone fishing"), q.text
        refused = await cat.iq_get("<query xmlns='jabber:iq:last'/>", to="ben" + D)
        assert error_condition(refused) == "forbidden", refused
    finally:
        await close_all(ann, cat)


async def test_vcard_set_and_get(server):
    ann = await sign_in(server, "ann")
    cat = await sign_in(server, "cat")
    try:
        reply = await ann.iq_set(f"<vCard xmlns='{NS_VCARD}'><FN>Ann Example</FN>"
                                 "<NICKNAME>annie</NICKNAME></vCard>")
        assert reply["type"] == "result", reply
        own = await ann.iq_get(f"<vCard xmlns='{NS_VCARD}'/>")
        theirs = await cat.iq_get(f"<vCard xmlns='{NS_VCARD}'/>", to="ann" + D)
        for r in (own, theirs):
            v = r.xml.find(f"{{{NS_VCARD}}}vCard")
            assert r["type"] == "result" and v is not None, r
            assert (v.findtext(f"{{{NS_VCARD}}}FN"), v.findtext(f"{{{NS_VCARD}}}NICKNAME")) == \
                ("Ann Example", "annie")
    finally:
        await close_all(ann, cat)


async def test_vcard_of_account_without_one(server):
    """XEP-0054 §3.1: an empty vCard or item-not-found."""
    c = await sign_in(server, "cat")
    try:
        reply = await c.iq_get(f"<vCard xmlns='{NS_VCARD}'/>", to="fresh" + D)
        if reply["type"] == "result":
            v = reply.xml.find(f"{{{NS_VCARD}}}vCard")
            assert v is None or len(v) == 0, reply
        else:
            assert error_condition(reply) == "item-not-found", reply
    finally:
        await c.close()


async def test_vcard_cannot_be_set_for_someone_else(server):
    c = await sign_in(server, "cat")
    try:
        reply = await c.iq_set(f"<vCard xmlns='{NS_VCARD}'><FN>Impostor</FN></vCard>", to="ann" + D)
        assert reply["type"] == "error", reply
        got = await c.iq_get(f"<vCard xmlns='{NS_VCARD}'/>", to="ann" + D)
        assert "Impostor" not in str(got)
    finally:
        await c.close()
