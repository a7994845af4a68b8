"""Roster reading and the subscription handshake, as plain data for assertions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .client import NS_ROSTER, TestClient, close_all, sign_in
from .servers import Server


@dataclass
class Item:
    jid: str
    subscription: str
    ask: str | None
    name: str | None
    groups: list[str]
    approved: bool


def items(iq: Any) -> dict[str, Item]:
    """Items of a roster result or push, by JID."""
    query = iq.xml.find(f"{{{NS_ROSTER}}}query")
    out: dict[str, Item] = {}
    if query is None:
        return out
    for el in query.findall(f"{{{NS_ROSTER}}}item"):
        out[el.get("jid")] = Item(
            jid=el.get("jid"),
            subscription=el.get("subscription", "none"),
            ask=el.get("ask"),
            name=el.get("name"),
            groups=sorted(g.text or "" for g in el.findall(f"{{{NS_ROSTER}}}group")),
            approved=el.get("approved") in ("true", "1"),
        )
    return out


async def roster(c: TestClient) -> dict[str, Item]:
    iq = await c.iq_get(f"<query xmlns='{NS_ROSTER}'/>")
    assert iq["type"] == "result", f"roster get failed: {iq}"
    return items(iq)


async def push_for(c: TestClient, jid: str, **expect: Any) -> Item:
    """The next roster push about `jid` whose item has the `expect`ed attribute values.

    Other pushes are skipped: a server may also push changes at sign-in (roster versioning).
    """
    def match(p: Any) -> bool:
        item = items(p).get(jid)
        return item is not None and all(getattr(item, k) == v for k, v in expect.items())

    push = await c.next_push(where=match)
    frm = push["from"].bare if push["from"] else ""
    assert frm in ("", c.boundjid.bare), f"roster push from a stranger: {push}"
    return items(push)[jid]


def presence_from(jid: str, ptype: str | None = None):
    """Matcher for presences from `jid` (bare or full) of type `ptype` (None: available)."""
    def match(p: Any) -> bool:
        frm = p["from"]
        if jid not in (frm.bare, frm.full):
            return False
        t = p["type"]
        if ptype is None:
            return t in ("", "available", "away", "chat", "dnd", "xa")
        return t == ptype
    return match


async def befriend(server: Server, a: str, b: str) -> None:
    """Mutual subscription a <-> b, both online, checked only lightly (flows are tested apart)."""
    ca = await sign_in(server, a, resource="befriend")
    cb = await sign_in(server, b, resource="befriend")
    try:
        for x, y in ((ca, cb), (cb, ca)):
            x.send_presence(pto=y.boundjid.bare, ptype="subscribe")
            await y.next_presence(where=presence_from(x.boundjid.bare, "subscribe"))
            y.send_presence(pto=x.boundjid.bare, ptype="subscribed")
            await x.next_presence(where=presence_from(y.boundjid.bare, "subscribed"))
        for x, y in ((ca, cb), (cb, ca)):
            item = (await roster(x))[y.boundjid.bare]
            assert item.subscription == "both", item
    finally:
        await close_all(ca, cb)
