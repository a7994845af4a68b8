"""A raw XMPP client over asyncio streams, for what a well-behaved library will not send.

Hostile-input tests need exact bytes on the wire (oversized stanzas, DOCTYPEs, garbage, forged
attributes, stanzas before authentication), and SASL tests need control over each step
(channel binding, downgrade flags). The server's replies are parsed incrementally with the
standard library's pull parser; every top-level child of the stream comes back as an Element.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import socket
import struct
import unicodedata
import xml.etree.ElementTree as ET
from typing import Any

from .client import TIMEOUT, client_ssl_context

NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_SASL_CB = "urn:xsf:sasl-cb:0"  # XEP-0440


class StreamClosed(Exception):
    """The server closed the TCP connection (or ended its stream) before what we awaited."""


def header(to: str = "localhost", ns: str = "jabber:client", stream_ns: str = NS_STREAM,
           version: str = "1.0") -> str:
    to_attr = f" to='{to}'" if to is not None else ""
    return (f"<?xml version='1.0'?><stream:stream{to_attr} version='{version}' xml:lang='en' "
            f"xmlns='{ns}' xmlns:stream='{stream_ns}'>")


def local(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def ns_of(el: ET.Element) -> str:
    return el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else ""


class RawStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.parser: ET.XMLPullParser | None = None
        self.depth = 0
        self.pending: list[ET.Element] = []
        self.stream_attrs: dict[str, str] = {}
        self.closed = False  # TCP EOF/reset seen
        self.stream_ended = False  # server's </stream:stream> seen
        self.received = b""  # everything, for failure messages

    @classmethod
    async def connect(cls, port: int, direct_tls: bool = False) -> RawStream:
        if direct_tls:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=client_ssl_context(),
                                                 server_hostname="localhost")
        else:
            r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    # -- sending ----------------------------------------------------------------------------
    async def send(self, data: str | bytes) -> bool:
        """Write and drain; False when the server has already closed the connection."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self.writer.write(data)
            await self.writer.drain()
            return True
        except (ConnectionError, OSError, RuntimeError):
            return False

    async def send_while_reading(self, chunks: list[bytes]) -> None:
        """Send chunk by chunk, stopping as soon as the server has closed or sent an error.

        For large hostile payloads: the server is expected to give up half way, and a client
        that blindly keeps writing into a closed socket would lose the server's reply to a
        TCP reset.
        """
        for chunk in chunks:
            if self.closed or self.stream_ended or any(local(e) == "error" and ns_of(e) == NS_STREAM
                                                       for e in self.pending):
                return
            if not await self.send(chunk):
                return
            await self._read_some(0.001)

    # -- receiving --------------------------------------------------------------------------
    def reset_parser(self) -> None:
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0

    def _feed(self, data: bytes) -> None:
        self.received += data
        if self.parser is None:
            self.reset_parser()
        assert self.parser is not None
        try:
            self.parser.feed(data)
            events = list(self.parser.read_events())
        except ET.ParseError as e:
            raise AssertionError(
                f"server sent XML that is not well-formed ({e}); last bytes: {self.received[-1200:]!r}") from None
        for event, el in events:
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.stream_attrs = dict(el.attrib)
                    self.stream_attrs["tag"] = el.tag
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(el)
                elif self.depth == 0:
                    self.stream_ended = True

    async def _read_some(self, timeout: float) -> bool:
        """Read one chunk into the parser; False on timeout."""
        if self.closed:
            return False
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except asyncio.TimeoutError:
            return False
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self._feed(data)
        return True

    async def read_element(self, timeout: float = TIMEOUT) -> ET.Element:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.pending:
            if self.closed or self.stream_ended:
                raise StreamClosed(f"stream closed; received so far: {self.received[-1500:]!r}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"nothing within {timeout}s; received so far: {self.received[-1500:]!r}")
            await self._read_some(remaining)
        return self.pending.pop(0)

    async def read_until(self, pred: Any, timeout: float = TIMEOUT) -> ET.Element:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            el = await self.read_element(max(0.0, deadline - loop.time()))
            if pred(el):
                return el

    async def expect_stream_error(self, timeout: float = TIMEOUT) -> tuple[str, str]:
        """(condition, text) of the server's <stream:error>; then the stream must be closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                el = await self.read_element(max(0.0, deadline - loop.time()))
                if local(el) == "error" and ns_of(el) == NS_STREAM:
                    break
        except StreamClosed:
            raise AssertionError(
                f"connection closed without a <stream:error>; received: {self.received[-1500:]!r}") from None
        cond, text = "", ""
        for child in el:
            if ns_of(child) == NS_STREAMS_ERR:
                if local(child) == "text":
                    text = child.text or ""
                else:
                    cond = local(child)
        closed = await self.wait_closed(max(1.0, deadline - loop.time()))
        assert closed, f"server sent <stream:error>{cond} but did not close the stream"
        return cond, text

    async def wait_closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the server ended its stream or closed TCP within `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.closed or self.stream_ended):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self._read_some(remaining)
        return True

    # -- negotiation ------------------------------------------------------------------------
    async def open(self, hdr: str | None = None) -> ET.Element:
        """Send a stream header; return the server's <stream:features/>."""
        self.reset_parser()
        await self.send(hdr or header())
        return await self.read_until(lambda e: local(e) == "features")

    async def starttls(self) -> ET.Element:
        await self.send(f"<starttls xmlns='{NS_TLS}'/>")
        el = await self.read_element()
        assert local(el) == "proceed", f"STARTTLS refused: {ET.tostring(el)!r}"
        await self.writer.start_tls(client_ssl_context(), server_hostname="localhost")
        return await self.open()

    async def auth_plain(self, user: str, password: str) -> ET.Element:
        creds = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>")
        return await self.read_element()

    def tls_server_end_point(self) -> bytes:
        """RFC 5929 channel binding: hash of the server certificate (SHA-256 unless stronger)."""
        sslobj = self.writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True)
        algo = {"sha384": hashlib.sha384, "sha512": hashlib.sha512}.get(cert_signature_hash(der),
                                                                           hashlib.sha256)
        return algo(der).digest()

    async def auth_scram(self, user: str, password: str, mech: str = "SCRAM-SHA-256",
                         gs2_flag: str | None = None, cb_data: bytes = b"") -> ET.Element:
        """Run SCRAM (RFC 5802/7677); returns <success/> (signature verified) or <failure/>.

        gs2_flag defaults to "n" (no channel binding) or "p=tls-server-end-point" for -PLUS.
        """
        plus = mech.endswith("-PLUS")
        hname = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mech.removesuffix("-PLUS")]
        if gs2_flag is None:
            gs2_flag = "p=tls-server-end-point" if plus else "n"
        gs2 = f"{gs2_flag},,".encode()
        cnonce = base64.b64encode(os.urandom(18)).decode()
        user_esc = user.replace("=", "=3D").replace(",", "=2C")
        first_bare = f"n={user_esc},r={cnonce}".encode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mech}'>"
                        f"{base64.b64encode(gs2 + first_bare).decode()}</auth>")
        el = await self.read_element()
        if local(el) != "challenge":
            return el
        server_first = base64.b64decode(el.text or "")
        attrs = dict(kv.split(b"=", 1) for kv in server_first.split(b","))
        nonce, salt, iters = attrs[b"r"], base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
        assert nonce.startswith(cnonce.encode()), "server nonce does not extend ours"
        pw = unicodedata.normalize("NFKC", password).encode()
        salted = hashlib.pbkdf2_hmac(hname, pw, salt, iters)
        client_key = hmac.digest(salted, b"Client Key", hname)
        stored_key = hashlib.new(hname, client_key).digest()
        cbind = base64.b64encode(gs2 + cb_data)
        without_proof = b"c=" + cbind + b",r=" + nonce
        auth_message = first_bare + b"," + server_first + b"," + without_proof
        signature = hmac.digest(stored_key, auth_message, hname)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = without_proof + b",p=" + base64.b64encode(proof)
        await self.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final).decode()}</response>")
        el = await self.read_element()
        if local(el) == "challenge":  # server-final as a challenge, then empty response
            server_final = base64.b64decode(el.text or "")
            await self.send(f"<response xmlns='{NS_SASL}'/>")
            el = await self.read_element()
        elif local(el) == "success":
            server_final = base64.b64decode(el.text or "")
        else:
            return el
        server_key = hmac.digest(salted, b"Server Key", hname)
        expected = b"v=" + base64.b64encode(hmac.digest(server_key, auth_message, hname))
        assert server_final == expected, f"server signature wrong: {server_final!r}"
        return el

    async def bind(self, resource: str | None = None) -> str:
        res = f"<resource>{resource}</resource>" if resource else ""
        await self.send(f"<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'>{res}</bind></iq>")
        el = await self.read_until(lambda e: local(e) == "iq" and e.get("id") == "bind1")
        assert el.get("type") == "result", f"bind failed: {ET.tostring(el)!r}"
        jid = el.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid")
        assert jid is not None and jid.text, f"bind result without jid: {ET.tostring(el)!r}"
        return jid.text

    async def login(self, user: str, password: str, resource: str | None = "raw",
                    presence: bool = True) -> str:
        """STARTTLS (or nothing, if already TLS), SCRAM-SHA-1, restart, bind; returns full JID."""
        features = await self.open()
        if features.find(f"{{{NS_TLS}}}starttls") is not None:
            await self.starttls()
        el = await self.auth_scram(user, password, "SCRAM-SHA-1")
        assert local(el) == "success", f"login of {user} failed: {ET.tostring(el)!r}"
        features = await self.open()
        jid = await self.bind(resource)
        # RFC 3921 sessions are obsolete; a server that still lists them as required wants one.
        sess = features.find("{urn:ietf:params:xml:ns:xmpp-session}session")
        if sess is not None and sess.find("{urn:ietf:params:xml:ns:xmpp-session}optional") is None:
            await self.send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
            await self.read_until(lambda e: local(e) == "iq" and e.get("id") == "sess1")
        if presence:
            await self.send("<presence/>")
        self.jid = jid
        return jid

    def abort(self, reset: bool = True) -> None:
        """Drop the connection without closing the stream; with `reset`, send a TCP RST."""
        sock = self.writer.get_extra_info("socket")
        if reset and sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.writer.transport.abort()

    async def close(self) -> None:
        if not self.closed:
            await self.send("</stream:stream>")
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (asyncio.TimeoutError, ConnectionError, OSError, Exception):
            pass


def cert_signature_hash(der: bytes) -> str:
    """The hash of the certificate's signature algorithm: 'sha256', 'sha384', ... or ''."""
    oids = {
        "2a864886f70d01010b": "sha256", "2a864886f70d01010c": "sha384",
        "2a864886f70d01010d": "sha512", "2a8648ce3d040302": "sha256",
        "2a8648ce3d040303": "sha384", "2a8648ce3d040304": "sha512",
    }

    def tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
        tag = buf[pos]
        length = buf[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(buf[pos:pos + n], "big")
            pos += n
        return tag, pos, length

    try:
        _, pos, _ = tlv(der, 0)  # Certificate SEQUENCE
        _, tbs_start, tbs_len = tlv(der, pos)  # tbsCertificate
        _, alg_start, _ = tlv(der, tbs_start + tbs_len)  # signatureAlgorithm SEQUENCE
        tag, oid_start, oid_len = tlv(der, alg_start)
        return oids.get(der[oid_start:oid_start + oid_len].hex(), "") if tag == 6 else ""
    except IndexError:
        return ""
