"""Server contact addresses (XEP-0157) from config, in the server's disco#info as a
http://jabber.org/network/serverinfo form. Apart from the other service tests because the
server needs extra config for it."""

from __future__ import annotations

from harness.client import password_of, sign_in
from harness.disco import NS_INFO, caps_ver, info_of, stream_caps

SERVER_OPTIONS = {
    "contact_addresses": {
        "admin-addresses": ["mailto:admin@example.org", "xmpp:admin@localhost"],
        "abuse-addresses": ["mailto:abuse@example.org"],
    }
}
USERS = ["ann"]


async def test_contact_addresses_form(server):
    c = await sign_in(server, "ann")
    try:
        info = info_of(await c.iq_get(f"<query xmlns='{NS_INFO}'/>", to="localhost"))
        form = info.form("http://jabber.org/network/serverinfo")
        assert form is not None, f"no serverinfo form in {info.forms}"
        assert sorted(form.get("admin-addresses", [])) == ["mailto:admin@example.org", "xmpp:admin@localhost"]
        assert form.get("abuse-addresses") == ["mailto:abuse@example.org"]
    finally:
        await c.close()


async def test_caps_cover_the_form(server):
    """XEP-0115 §5.4: extended information (the serverinfo form) is part of the caps hash."""
    node, ver, _ = await stream_caps(server, "ann", password_of("ann"))
    c = await sign_in(server, "ann")
    try:
        info = info_of(await c.iq_get(f"<query xmlns='{NS_INFO}'/>", to="localhost"))
        assert info.form("http://jabber.org/network/serverinfo") is not None
        assert caps_ver(info) == ver
    finally:
        await c.close()
