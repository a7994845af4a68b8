"""In-band registration switched off in config: not offered, refused, nothing created."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.client import SignInFailed, sign_in
from harness.raw import NS_STANZAS, RawStream, StreamClosed, local

SERVER_OPTIONS = {"registration": False}
USERS = ["existing"]
NS_REG = "jabber:iq:register"


async def test_registration_not_offered_and_refused(server):
    raw = await RawStream.connect(server.starttls_port)
    try:
        await raw.open()
        features = await raw.starttls()
        assert features.find("{http://jabber.org/features/iq-register}register") is None
        await raw.send(f"<iq type='set' id='reg'><query xmlns='{NS_REG}'>"
                       "<username>intruder</username><password>pw-pw-pw</password></query></iq>")
        try:
            reply = await raw.read_until(lambda e: local(e) == "iq" and e.get("id") == "reg")
        except StreamClosed:
            # Registration is not an offered stream feature, so the iq is a stanza before
            # authentication: a not-authorized stream error is a fair answer too.
            assert b"not-authorized" in raw.received, raw.received[-500:]
        else:
            # XEP-0077 §3.1 says service-unavailable; not-allowed is also seen in the wild.
            assert reply.get("type") == "error", ET.tostring(reply)
            err = reply.find("{jabber:client}error")
            conds = [local(c) for c in err if c.tag.startswith(f"{{{NS_STANZAS}}}")]
            assert set(conds) & {"service-unavailable", "not-allowed"}, ET.tostring(reply)
    finally:
        await raw.close()
    with pytest.raises(SignInFailed) as err:
        await sign_in(server, "intruder", password="pw-pw-pw", mech="SCRAM-SHA-1")
    assert err.value.condition == "not-authorized"


async def test_existing_accounts_still_sign_in(server):
    c = await sign_in(server, "existing")
    await c.close()
