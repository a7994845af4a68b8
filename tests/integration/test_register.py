"""In-band registration (XEP-0077), switched on (the default config's choice)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from harness.client import SignInFailed, sign_in
from harness.raw import NS_STANZAS, RawStream, local

USERS = ["taken"]
NS_REG = "jabber:iq:register"
FEATURE = "{http://jabber.org/features/iq-register}register"


async def open_unauthenticated(server) -> tuple[RawStream, ET.Element]:
    raw = await RawStream.connect(server.starttls_port)
    await raw.open()
    return raw, await raw.starttls()


async def register(raw: RawStream, user: str, password: str, iq_id: str = "reg") -> ET.Element:
    await raw.send(f"<iq type='set' id='{iq_id}'><query xmlns='{NS_REG}'>"
                   f"<username>{user}</username><password>{password}</password></query></iq>")
    return await raw.read_until(lambda e: local(e) == "iq" and e.get("id") == iq_id)


def condition(iq: ET.Element) -> str | None:
    err = iq.find("{jabber:client}error")
    if err is None:
        return None
    return next((local(c) for c in err if c.tag.startswith(f"{{{NS_STANZAS}}}") and local(c) != "text"), None)


async def test_register_new_account_then_sign_in(server):
    raw, features = await open_unauthenticated(server)
    try:
        assert features.find(FEATURE) is not None, "registration not in stream features"
        await raw.send(f"<iq type='get' id='form'><query xmlns='{NS_REG}'/></iq>")
        form = await raw.read_until(lambda e: local(e) == "iq" and e.get("id") == "form")
        assert form.get("type") == "result", ET.tostring(form)
        q = form.find(f"{{{NS_REG}}}query")
        assert q.find(f"{{{NS_REG}}}username") is not None and q.find(f"{{{NS_REG}}}password") is not None
        reply = await register(raw, "newbie", "s3cret-néw")
        assert reply.get("type") == "result", ET.tostring(reply)
    finally:
        await raw.close()
    c = await sign_in(server, "newbie", password="s3cret-néw", mech="SCRAM-SHA-1")
    await c.close()


async def test_register_existing_name_is_conflict(server):
    raw, _ = await open_unauthenticated(server)
    try:
        reply = await register(raw, "taken", "another-password")
        assert condition(reply) == "conflict", ET.tostring(reply)
    finally:
        await raw.close()
    with pytest.raises(SignInFailed):
        await sign_in(server, "taken", password="another-password", mech="SCRAM-SHA-1")


@pytest.mark.parametrize("user", ["", "bad user@name", "x" * 1100])
async def test_register_invalid_username_refused(server, user):
    raw, _ = await open_unauthenticated(server)
    try:
        reply = await register(raw, user, "pw-long-enough")
        assert reply.get("type") == "error", ET.tostring(reply)
        assert condition(reply) in ("bad-request", "not-acceptable", "jid-malformed"), ET.tostring(reply)
    finally:
        await raw.close()


async def test_change_password_then_remove_account(server):
    """XEP-0077 §3.3 (password change) and §3.2 (cancellation), from a signed-in session."""
    raw, _ = await open_unauthenticated(server)
    assert (await register(raw, "short-lived", "first-pw")).get("type") == "result"
    await raw.close()
    c = await sign_in(server, "short-lived", password="first-pw", mech="SCRAM-SHA-1")
    reply = await c.iq_set(f"<query xmlns='{NS_REG}'><username>short-lived</username>"
                           "<password>second-pw</password></query>", to="localhost")
    assert reply["type"] == "result", reply
    await c.close()
    with pytest.raises(SignInFailed):
        await sign_in(server, "short-lived", password="first-pw", mech="SCRAM-SHA-1")
    c = await sign_in(server, "short-lived", password="second-pw", mech="SCRAM-SHA-1")
    c.send_raw(f"<iq type='set' id='bye' to='localhost'><query xmlns='{NS_REG}'><remove/></query></iq>")
    await asyncio.wait_for(c.gone.wait(), 5)  # §3.2: the server answers and closes the stream
    with pytest.raises(SignInFailed) as err:
        await sign_in(server, "short-lived", password="second-pw", mech="SCRAM-SHA-1")
    assert err.value.condition == "not-authorized"
