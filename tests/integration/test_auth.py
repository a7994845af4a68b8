"""Sign-in: STARTTLS and direct TLS (XEP-0368), each SASL mechanism, refusals, resource binding."""

from __future__ import annotations

import asyncio
import ssl
import xml.etree.ElementTree as ET

import pytest

from harness.client import SignInFailed, password_of, sign_in
from harness.marks import amphi_only, diverges_on_prosody
from harness.raw import NS_BIND, NS_SASL, NS_SASL_CB, NS_TLS, RawStream, local

# Refusals are tried on their own accounts: failed attempts are throttled per account.
USERS = ["alice", "bob", "uni", "wrongpw", "plus", "throttled"]
MECHS = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
NO_SHA256 = diverges_on_prosody("0.12 stores SCRAM-SHA-1 keys only, offers no SCRAM-SHA-256")
MECH_PARAMS = [pytest.param("SCRAM-SHA-256", marks=NO_SHA256), "SCRAM-SHA-1", "PLAIN"]


def mechanisms(features: ET.Element) -> list[str]:
    return [m.text or "" for m in features.iter(f"{{{NS_SASL}}}mechanism")]


@pytest.mark.parametrize("mode", ["starttls", "direct"])
@pytest.mark.parametrize("mech", MECH_PARAMS)
async def test_sign_in(server, mode, mech):
    c = await sign_in(server, "alice", mode=mode, mech=mech, resource=f"{mode}-{mech}")
    try:
        assert c.mech_used == mech
        assert c.boundjid.full == f"alice@{server.domain}/{mode}-{mech}"
        tls = c.socket.version()
        assert tls in ("TLSv1.2", "TLSv1.3"), tls
        # The session works: the server answers a ping addressed to it (XEP-0199).
        reply = await c.iq_get("<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
        assert reply["type"] == "result"
    finally:
        await c.close()


@pytest.mark.parametrize("mech", MECH_PARAMS)
async def test_wrong_password_refused(server, mech):
    with pytest.raises(SignInFailed) as err:
        await sign_in(server, "wrongpw", password="not-the-password", mech=mech)
    assert err.value.condition == "not-authorized"


@pytest.mark.parametrize("mech", MECH_PARAMS)
async def test_unknown_user_refused(server, mech):
    with pytest.raises(SignInFailed) as err:
        await sign_in(server, "nobody-here", password="whatever", mech=mech)
    assert err.value.condition == "not-authorized"


@pytest.mark.parametrize("mech", [pytest.param("SCRAM-SHA-256", marks=NO_SHA256), "PLAIN"])
async def test_non_ascii_password(server, mech):
    """Passwords go through SASLprep; the test passwords all contain non-ASCII letters."""
    assert not password_of("uni").isascii()
    c = await sign_in(server, "uni", mech=mech, mode="direct")
    await c.close()


async def test_features_before_tls_require_starttls(server):
    """RFC 6120 §5.3.1: with TLS mandatory, STARTTLS is offered as <required/>, PLAIN is not."""
    raw = await RawStream.connect(server.starttls_port)
    try:
        features = await raw.open()
        starttls = features.find(f"{{{NS_TLS}}}starttls")
        assert starttls is not None, ET.tostring(features)
        assert starttls.find(f"{{{NS_TLS}}}required") is not None, ET.tostring(features)
        assert "PLAIN" not in mechanisms(features)
        # After TLS, SCRAM and PLAIN are both offered.
        features = await raw.starttls()
        offered = mechanisms(features)
        assert "SCRAM-SHA-1" in offered and "PLAIN" in offered, offered
        assert features.find(f"{{{NS_TLS}}}starttls") is None, "STARTTLS offered twice"
    finally:
        await raw.close()


@NO_SHA256
@pytest.mark.parametrize("direct", [False, True])
async def test_scram_sha_256_offered(server, direct):
    raw = await RawStream.connect(server.direct_tls_port if direct else server.starttls_port, direct)
    try:
        features = await raw.open()
        if not direct:
            features = await raw.starttls()
        assert "SCRAM-SHA-256" in mechanisms(features)
    finally:
        await raw.close()


async def test_direct_tls_offers_no_starttls(server):
    raw = await RawStream.connect(server.direct_tls_port, direct_tls=True)
    try:
        features = await raw.open()
        assert features.find(f"{{{NS_TLS}}}starttls") is None
        assert "SCRAM-SHA-1" in mechanisms(features)
    finally:
        await raw.close()


async def test_tls_below_1_2_refused(server):
    """TLS 1.2+ only: a client limited to TLS 1.1 cannot complete the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    try:
        _, w = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", server.direct_tls_port, ssl=ctx,
                                    server_hostname="localhost"), 5)
    except ssl.SSLError as e:
        if "NO_PROTOCOLS_AVAILABLE" in str(e) or "UNSUPPORTED_PROTOCOL" in str(e):
            pytest.skip(f"this OpenSSL refuses TLS 1.1 itself: {e}")
        assert "alert" in str(e).lower(), f"handshake failed on our side, not the server's: {e}"
    except (ConnectionError, OSError):
        pass  # the server dropped the connection: refused too
    else:
        w.close()
        pytest.fail("TLS 1.1 handshake accepted")


def plus_offered(features: ET.Element) -> bool:
    return "SCRAM-SHA-256-PLUS" in mechanisms(features)


def cb_types(features: ET.Element) -> list[str] | None:
    """XEP-0440 channel-binding types, or None when the server does not list them."""
    el = features.find(f"{{{NS_SASL_CB}}}sasl-channel-binding")
    if el is None:
        return None
    return [c.get("type", "") for c in el]


async def _plus_stream(server) -> tuple[RawStream, ET.Element]:
    raw = await RawStream.connect(server.direct_tls_port, direct_tls=True)
    features = await raw.open()
    if not plus_offered(features):
        await raw.close()
        pytest.skip("server offers no SCRAM-SHA-256-PLUS over TLS 1.3 (Python has no tls-exporter)")
    types = cb_types(features)
    if types is not None and "tls-server-end-point" not in types:
        await raw.close()
        pytest.skip(f"tls-server-end-point not among the channel bindings {types}")
    return raw, features


async def test_scram_plus_tls_server_end_point(server):
    """SCRAM-SHA-256-PLUS with RFC 5929 tls-server-end-point, computed from the peer cert."""
    raw, _ = await _plus_stream(server)
    try:
        el = await raw.auth_scram("plus", password_of("plus"), "SCRAM-SHA-256-PLUS",
                                  cb_data=raw.tls_server_end_point())
        assert local(el) == "success", ET.tostring(el)
    finally:
        await raw.close()


async def test_scram_plus_wrong_binding_refused(server):
    raw, _ = await _plus_stream(server)
    try:
        el = await raw.auth_scram("plus", password_of("plus"), "SCRAM-SHA-256-PLUS",
                                  cb_data=b"\x00" * 32)
        assert local(el) == "failure", ET.tostring(el)
    finally:
        await raw.close()


async def test_scram_downgrade_detected(server):
    """RFC 5802 §6: gs2 flag 'y' (client could bind, thinks the server cannot) while the server
    did offer -PLUS means someone stripped it: the server must refuse."""
    raw, _ = await _plus_stream(server)
    try:
        el = await raw.auth_scram("plus", password_of("plus"), "SCRAM-SHA-256", gs2_flag="y")
        assert local(el) == "failure", ET.tostring(el)
    finally:
        await raw.close()


async def test_bind_generates_resource(server):
    raw = await RawStream.connect(server.direct_tls_port, direct_tls=True)
    try:
        await raw.open()
        assert local(await raw.auth_scram("bob", password_of("bob"), "SCRAM-SHA-1")) == "success"
        features = await raw.open()
        assert features.find(f"{{{NS_BIND}}}bind") is not None, ET.tostring(features)
        jid = await raw.bind(None)
        user, _, resource = jid.partition("/")
        assert user == f"bob@{server.domain}"
        assert resource, f"server generated no resource: {jid}"
    finally:
        await raw.close()


async def test_resource_conflict(server):
    """RFC 6120 §7.7.2.2: a second bind of the same resource either replaces the old session
    (which gets a <conflict/> stream error), is refused with <conflict/>, or gets another
    resource. In every case two live sessions never share one full JID."""
    first = await sign_in(server, "bob", resource="same", presence=False, roster=False)
    try:
        raw = await RawStream.connect(server.direct_tls_port, direct_tls=True)
        await raw.open()
        assert local(await raw.auth_scram("bob", password_of("bob"), "SCRAM-SHA-1")) == "success"
        await raw.open()
        await raw.send(f"<iq type='set' id='b'><bind xmlns='{NS_BIND}'><resource>same</resource></bind></iq>")
        reply = await raw.read_until(lambda e: local(e) == "iq")
        if reply.get("type") == "error":
            assert reply.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None
            assert first.transport is not None, "old session dropped although the new bind failed"
        else:
            jid = reply.find(f".//{{{NS_BIND}}}jid").text
            if jid == f"bob@{server.domain}/same":
                # Old session replaced: it must be told why.
                await asyncio.wait_for(first.gone.wait(), 5)
                assert [e["condition"] for e in first.stream_errors] == ["conflict"]
            else:
                assert jid.startswith(f"bob@{server.domain}/")
        await raw.close()
    finally:
        await first.close()


@amphi_only("prosody 0.12 does not throttle failed sign-ins")
async def test_failed_attempts_are_throttled_per_account(server):
    """After max_failures (5 in the test config) wrong passwords, the account refuses even the
    right one for a while (temporary-auth-failure or not-authorized); other accounts are not
    affected."""
    for _ in range(5):
        with pytest.raises(SignInFailed):
            await sign_in(server, "throttled", password="guess", mech="SCRAM-SHA-1")
    with pytest.raises(SignInFailed) as err:
        await sign_in(server, "throttled", mech="SCRAM-SHA-1")
    assert err.value.condition in ("temporary-auth-failure", "not-authorized")
    c = await sign_in(server, "bob", mech="SCRAM-SHA-1")
    await c.close()


async def test_whitespace_keepalive_between_stanzas(server):
    """RFC 6120 §4.6.1: whitespace between top-level elements is a keepalive, not an error."""
    raw = await RawStream.connect(server.direct_tls_port, direct_tls=True)
    try:
        await raw.login("bob", password_of("bob"), resource="ws", presence=False)
        await raw.send(" \n\t \n")
        await raw.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>  \n")
        reply = await raw.read_until(lambda e: local(e) == "iq" and e.get("id") == "p1")
        assert reply.get("type") == "result", ET.tostring(reply)
    finally:
        await raw.close()
