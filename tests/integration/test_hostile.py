"""Hostile input over raw sockets: each gets the RFC 6120 error, and afterwards the server
still serves an established session ("witness"), a fresh sign-in works and the witness's
stored roster is intact."""

from __future__ import annotations

import asyncio
import base64
import itertools
import xml.etree.ElementTree as ET

import pytest

from harness.client import NS_ROSTER, TestClient, barrier, password_of, sign_in
from harness.marks import diverges_on_prosody
from harness.raw import NS_SASL, NS_STREAM, NS_STREAMS_ERR, RawStream, header, local, ns_of
from harness.roster import roster

USERS = ["witness", "hostile", "other"]
D = "@localhost"
KEEPER = "keeper@localhost"
_checks = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def stored_roster(server):
    """A roster item written before any attack, checked after each."""
    async def store():
        c = await sign_in(server, "witness", resource="setup")
        reply = await c.iq_set(f"<query xmlns='{NS_ROSTER}'><item jid='{KEEPER}' name='Keep me'>"
                               "<group>Safe</group></item></query>")
        assert reply["type"] == "result"
        await c.close()
    asyncio.run(store())


@pytest.fixture
async def witness(server):
    w = await sign_in(server, "witness", resource="w")
    yield w
    await w.close()


async def assert_intact(server, witness: TestClient) -> None:
    assert server.alive(), "server process died"
    pong = await witness.iq_get("<ping xmlns='urn:xmpp:ping'/>", to="localhost")
    assert pong["type"] == "result", "the established session is no longer served"
    fresh = await sign_in(server, "witness", resource=f"check-{next(_checks)}", mode="direct")
    try:
        item = (await roster(fresh))[KEEPER]
        assert (item.name, item.groups) == ("Keep me", ["Safe"]), "stored roster damaged"
        fresh.send_message(mto=witness.boundjid.full, mbody="still here", mtype="chat")
        await witness.next_message(where=lambda m: m["body"] == "still here")
    finally:
        await fresh.close()


async def hostile_session(server) -> RawStream:
    raw = await RawStream.connect(server.starttls_port)
    await raw.login("hostile", password_of("hostile"), resource="h")
    return raw


async def delivered_to(witness: TestClient, server, needle: str) -> list[str]:
    """Bodies containing `needle` that reached the witness (after a barrier from a third party)."""
    other = await sign_in(server, "other", resource="b")
    try:
        before = await barrier(other, witness)
        return [m["body"] for m in before if needle in (m["body"] or "")]
    finally:
        await other.close()


async def test_oversized_stanza_is_policy_violation(server, witness):
    raw = await hostile_session(server)
    size = server.options.max_stanza_size + 64 * 1024
    payload = f"<message to='{witness.boundjid.full}' type='chat'><body>HUGE".encode() + b"A" * size
    chunks = [payload[i:i + 16384] for i in range(0, len(payload), 16384)]
    chunks.append(b"</body></message>")
    await raw.send_while_reading(chunks)
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation"
    assert await delivered_to(witness, server, "HUGE") == []
    await assert_intact(server, witness)


async def test_oversized_before_auth_is_policy_violation(server, witness):
    raw = await RawStream.connect(server.starttls_port)
    await raw.open()
    await raw.starttls()
    junk = base64.b64encode(b"x" * (server.options.max_stanza_size + 64 * 1024))
    data = f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>".encode() + junk + b"</auth>"
    await raw.send_while_reading([data[i:i + 16384] for i in range(0, len(data), 16384)])
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation"
    await assert_intact(server, witness)


@diverges_on_prosody("no nesting limit: expat parses and routes the deep stanza")
async def test_deep_nesting_is_policy_violation(server, witness):
    raw = await hostile_session(server)
    depth = 200  # well past the configured max_depth (64)
    await raw.send(f"<message to='{witness.boundjid.full}' type='chat'><body>DEEP</body>"
                   + "<x xmlns='urn:example:deep'>" * depth + "</x>" * depth + "</message>")
    cond, _ = await raw.expect_stream_error(timeout=3)
    assert cond == "policy-violation"
    assert await delivered_to(witness, server, "DEEP") == []
    await assert_intact(server, witness)


RESTRICTED = {"restricted-xml", "not-well-formed"}


@pytest.mark.parametrize("prolog", [
    "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY boom 'boom'>]>",
    "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>",
    "<?xml version='1.0'?><!DOCTYPE x SYSTEM 'file:///etc/passwd'>",
], ids=["internal-subset", "billion-laughs", "external-dtd"])
async def test_dtd_in_prolog_is_refused(server, witness, prolog):
    """RFC 6120 §11.1: no DTDs: restricted-xml (or not-well-formed)."""
    raw = await RawStream.connect(server.starttls_port)
    raw.reset_parser()
    await raw.send(prolog + header().removeprefix("<?xml version='1.0'?>"))
    cond, _ = await raw.expect_stream_error()
    assert cond in RESTRICTED
    await assert_intact(server, witness)


@pytest.mark.parametrize("xml", [
    "<!ENTITY xxe SYSTEM 'file:///etc/passwd'>",
    "<message to='witness@localhost/w'><body>&xxe;</body></message>",
    "<message to='witness@localhost/w'><!-- a comment --><body>c</body></message>",
    "<?php echo 1; ?>",
], ids=["entity-declaration", "undefined-entity", "comment", "processing-instruction"])
async def test_restricted_xml_in_stream(server, witness, xml):
    """RFC 6120 §11.1: comments, PIs, entity declarations and references are refused."""
    raw = await hostile_session(server)
    await raw.send(xml)
    cond, _ = await raw.expect_stream_error()
    assert cond in RESTRICTED
    await assert_intact(server, witness)


@pytest.mark.parametrize("where", ["before-tls", "after-auth"])
async def test_garbage_bytes_are_not_well_formed(server, witness, where):
    if where == "before-tls":
        raw = await RawStream.connect(server.starttls_port)
        await raw.open()
    else:
        raw = await hostile_session(server)
    await raw.send(b"\x00\xff\xfe<<<garbage>>>&&&\x01\x02</nope>")
    cond, _ = await raw.expect_stream_error()
    # Invalid UTF-8 may also be called an encoding problem (RFC 6120 §11.6).
    assert cond in ("not-well-formed", "unsupported-encoding")
    await assert_intact(server, witness)


async def test_garbage_instead_of_tls_handshake(server, witness):
    """Direct TLS port: bytes that are not a ClientHello end the connection, nothing else."""
    r, w = await asyncio.open_connection("127.0.0.1", server.direct_tls_port)
    w.write(b"<stream:stream xmlns='jabber:client'>" + bytes(range(256)) * 8)
    await w.drain()
    try:
        answer = await asyncio.wait_for(r.read(65536), 5)
    except ConnectionResetError:
        answer = b""
    assert not answer.startswith(b"<"), "XMPP spoken in clear on the direct TLS port"
    w.close()
    await assert_intact(server, witness)


@pytest.mark.parametrize("ns,stream_ns", [
    ("jabber:client", "http://etherx.jabber.org/wrong"),
    pytest.param("jabber:wrong", "http://etherx.jabber.org/streams",
                 marks=diverges_on_prosody("does not check the content namespace of c2s streams")),
], ids=["stream-namespace", "content-namespace"])
async def test_wrong_namespace_is_invalid_namespace(server, witness, ns, stream_ns):
    raw = await RawStream.connect(server.starttls_port)
    raw.reset_parser()
    await raw.send(header(ns=ns, stream_ns=stream_ns))
    cond, _ = await raw.expect_stream_error()
    assert cond == "invalid-namespace"
    await assert_intact(server, witness)


async def test_unknown_domain_is_host_unknown(server, witness):
    raw = await RawStream.connect(server.starttls_port)
    raw.reset_parser()
    await raw.send(header(to="not-served.example"))
    cond, _ = await raw.expect_stream_error()
    assert cond == "host-unknown"
    await assert_intact(server, witness)


@pytest.mark.parametrize("stanza", [
    "<message to='witness@localhost/w' type='chat'><body>SNEAKY</body></message>",
    "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    "<presence/>",
], ids=["message", "iq", "presence"])
@diverges_on_prosody("answers with a stanza error and keeps the stream open")
async def test_stanza_before_auth_is_not_authorized(server, witness, stanza):
    """RFC 6120 §4.9.3.12: stanzas before authentication get a not-authorized stream error
    (and are not processed)."""
    raw = await RawStream.connect(server.starttls_port)
    await raw.open()
    await raw.starttls()
    await raw.send(stanza)
    try:
        cond, _ = await raw.expect_stream_error(timeout=1.5)  # below auth_timeout
    finally:
        assert await delivered_to(witness, server, "SNEAKY") == []
        await assert_intact(server, witness)
    assert cond == "not-authorized"


async def test_plain_before_starttls_is_refused(server, witness):
    """TLS required: PLAIN in clear must fail, even with the right password, with
    <encryption-required/> (RFC 6120 §6.5.3; a server that offers no SASL before TLS may say
    invalid-mechanism, or close the stream with policy-violation / not-authorized)."""
    raw = await RawStream.connect(server.starttls_port)
    await raw.open()
    creds = base64.b64encode(f"\0witness\0{password_of('witness')}".encode()).decode()
    await raw.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>")
    el = await raw.read_element()
    if local(el) == "failure":
        conds = [local(c) for c in el if local(c) != "text"]
        assert set(conds) & {"encryption-required", "invalid-mechanism"}, ET.tostring(el)
    else:
        assert local(el) == "error", f"PLAIN in clear accepted: {ET.tostring(el)!r}"
        cond = next(local(c) for c in el if local(c) != "text")
        assert cond in ("policy-violation", "not-authorized", "encryption-required")
    await assert_intact(server, witness)


@pytest.mark.parametrize("forged", ["other@localhost/x", "localhost", "witness@localhost/admin"])
async def test_forged_from_is_replaced_or_refused(server, witness, forged):
    """RFC 6120 §8.1.2.1: the server stamps 'from' with the sender's full JID, or closes the
    stream with invalid-from. The forged address never reaches the recipient."""
    raw = await hostile_session(server)
    await raw.send(f"<message from='{forged}' to='{witness.boundjid.full}' type='chat'>"
                   "<body>FORGED</body></message>")
    other = await sign_in(server, "other", resource="f")
    try:
        before = await barrier(other, witness)
    finally:
        await other.close()
    got = [m for m in before if m["body"] == "FORGED"]
    if got:
        assert [m["from"].full for m in got] == [raw.jid]
    else:
        cond, _ = await raw.expect_stream_error()
        assert cond == "invalid-from"
    await raw.close()
    await assert_intact(server, witness)


async def test_forged_from_cannot_read_anothers_roster(server, witness):
    raw = await hostile_session(server)
    await raw.send(f"<iq type='get' id='steal' from='{witness.boundjid.full}' to='witness@localhost'>"
                   f"<query xmlns='{NS_ROSTER}'/></iq>")
    reply = await raw.read_until(lambda e: (local(e) == "iq" and e.get("id") == "steal")
                                 or (local(e) == "error" and ns_of(e) == NS_STREAM))
    assert KEEPER not in ET.tostring(reply).decode(), "another account's roster leaked"
    if local(reply) == "iq":
        assert reply.get("type") == "error", ET.tostring(reply)
    else:
        assert reply.find(f"{{{NS_STREAMS_ERR}}}invalid-from") is not None, ET.tostring(reply)
    await raw.close()
    await assert_intact(server, witness)


@pytest.mark.slow
async def test_idle_unauthenticated_connections_time_out(server, witness):
    """auth_timeout (2 s in the test config): connection-timeout for a stream that never
    authenticates; a TCP connection that never speaks is closed (silently, or with a whole,
    well-formed stream). The authenticated witness, idle just as long, stays."""
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def header_only() -> str:
        raw = await RawStream.connect(server.starttls_port)
        await raw.open()
        return (await raw.expect_stream_error(timeout=10))[0]

    async def after_tls() -> str:
        raw = await RawStream.connect(server.starttls_port)
        await raw.open()
        await raw.starttls()
        return (await raw.expect_stream_error(timeout=10))[0]

    async def silent() -> str:
        raw = await RawStream.connect(server.starttls_port)
        assert await raw.wait_closed(timeout=10), "silent connection never closed"
        # Closing without a word is fine; if it speaks, it must be a whole stream.
        return "closed"

    results = await asyncio.gather(header_only(), after_tls(), silent(), return_exceptions=True)
    elapsed = loop.time() - start
    names = ("stream header only", "after STARTTLS", "silent TCP")
    problems = [f"{n}: {r!r}" for n, r, want in zip(names, results, ("connection-timeout",
                "connection-timeout", "closed")) if r != want]
    assert not problems, "; ".join(problems)
    assert 1.5 <= elapsed <= 9, f"timeout after {elapsed:.1f}s, configured 2s"
    await assert_intact(server, witness)
