"""slixmpp as the independent client, with queues so tests can assert what crossed the wire.

slixmpp's conveniences hide traffic (plugins consume presences, the roster answers pushes,
subscription requests are auto-accepted), so the test client turns the automatic answers off
and records every message, presence and roster push in its own queue, in arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import xml.etree.ElementTree as ET
from typing import Any

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from .servers import Server

NS_CLIENT = "jabber:client"
NS_ROSTER = "jabber:iq:roster"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

# Wait this long before concluding that something was NOT received. Most negative checks use
# a barrier instead (a later stanza on the same path arriving first proves the absence).
QUIET = 0.3
TIMEOUT = 5.0

logging.getLogger("slixmpp").setLevel(logging.CRITICAL)


def client_ssl_context() -> ssl.SSLContext:
    """One context for the whole run: the server's certificate is self-signed."""
    global _CTX
    if _CTX is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _CTX = ctx
    return _CTX


_CTX: ssl.SSLContext | None = None


def password_of(user: str) -> str:
    """Every test account's password, derived from its name (non-ASCII on purpose: SASLprep)."""
    return f"pw-{user}-ünïcødé"


class SignInFailed(Exception):
    def __init__(self, condition: str, text: str = ""):
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition


class TestClient(slixmpp.ClientXMPP):
    __test__ = False  # not a pytest class

    def __init__(self, jid: str, password: str, mech: str | None = None):
        super().__init__(jid, password, sasl_mech=mech)
        for plugin in ("xep_0030", "xep_0199", "xep_0092", "xep_0012", "xep_0054", "xep_0077"):
            self.register_plugin(plugin)
        self.ssl_context = client_ssl_context()
        self.auto_authorize = None
        self.auto_subscribe = False
        self.messages: asyncio.Queue = asyncio.Queue()
        self.presences: asyncio.Queue = asyncio.Queue()
        self.roster_pushes: asyncio.Queue = asyncio.Queue()
        self.stream_errors: list[Any] = []
        self.sasl_failures: list[str] = []
        self.mech_used: str | None = None
        self.gone = asyncio.Event()  # set when the connection is lost, for whatever reason
        self.stream_features: Any = None
        self._outcome: asyncio.Future = asyncio.get_running_loop().create_future()
        self.register_handler(Callback("test:message", MatchXPath(f"{{{NS_CLIENT}}}message"),
                                       self.messages.put_nowait))
        self.register_handler(Callback("test:presence", MatchXPath(f"{{{NS_CLIENT}}}presence"),
                                       self.presences.put_nowait))
        self.register_handler(Callback(
            "test:roster-push",
            MatchXPath(f"{{{NS_CLIENT}}}iq/{{{NS_ROSTER}}}query"),
            self._on_roster_iq))
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("failed_all_auth", self._on_failed_all_auth)
        self.add_event_handler("stream_error", self._on_stream_error)
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("auth_success", self._on_auth_success)

    # -- events -------------------------------------------------------------------------
    def _settle(self, value: Any) -> None:
        if not self._outcome.done():
            self._outcome.set_result(value)

    def _on_roster_iq(self, iq: Any) -> None:
        if iq["type"] == "set":
            self.roster_pushes.put_nowait(iq)

    def _on_session_start(self, _event: Any) -> None:
        self._settle(None)

    def _on_auth_success(self, _event: Any) -> None:
        mech = self.plugin["feature_mechanisms"].mech
        self.mech_used = getattr(mech, "name", None)

    def _on_failed_auth(self, failure: Any) -> None:
        self.sasl_failures.append(failure["condition"])

    def _on_failed_all_auth(self, _event: Any) -> None:
        if self.sasl_failures:
            self._settle(SignInFailed(self.sasl_failures[-1]))
        else:
            offered = sorted(getattr(self.plugin["feature_mechanisms"], "mech_list", []) or [])
            self._settle(SignInFailed("no-acceptable-mechanism", f"server offered {offered}"))

    def _on_stream_error(self, error: Any) -> None:
        self.stream_errors.append(error)
        self._settle(SignInFailed(f"stream-error:{error['condition']}", error["text"]))

    def _on_disconnected(self, reason: Any) -> None:
        self.gone.set()
        self._settle(SignInFailed("disconnected", str(reason)))

    def _on_connection_failed(self, reason: Any) -> None:
        self._settle(SignInFailed("connection-failed", str(reason)))

    # -- helpers ------------------------------------------------------------------------
    async def query(self, iq: Any, timeout: float = TIMEOUT) -> Any:
        """Send an iq and return the reply stanza, result or error alike."""
        try:
            return await iq.send(timeout=timeout)
        except IqError as e:
            return e.iq
        except IqTimeout:
            raise AssertionError(f"no reply within {timeout}s to {iq}") from None

    async def iq_get(self, payload: str, to: str | None = None) -> Any:
        iq = self.make_iq(itype="get", ito=to)
        iq.append(ET.fromstring(payload))
        return await self.query(iq)

    async def iq_set(self, payload: str, to: str | None = None) -> Any:
        iq = self.make_iq(itype="set", ito=to)
        iq.append(ET.fromstring(payload))
        return await self.query(iq)

    async def next_message(self, timeout: float = TIMEOUT, where: Any = None) -> Any:
        return await _next(self.messages, timeout, where, f"{self.boundjid}: message")

    async def next_presence(self, timeout: float = TIMEOUT, where: Any = None) -> Any:
        return await _next(self.presences, timeout, where, f"{self.boundjid}: presence")

    async def next_push(self, timeout: float = TIMEOUT, where: Any = None) -> Any:
        return await _next(self.roster_pushes, timeout, where, f"{self.boundjid}: roster push")

    def drain(self) -> None:
        for q in (self.messages, self.presences, self.roster_pushes):
            while not q.empty():
                q.get_nowait()

    async def close(self) -> None:
        """End the stream cleanly (</stream:stream>) and wait for the server's reply."""
        if self.transport is not None:
            await self.disconnect(wait=2.0)
        self.cancel_connection_attempt()


async def _next(queue: asyncio.Queue, timeout: float, where: Any, what: str) -> Any:
    """Next item (matching `where`, skipping others) or AssertionError on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    skipped = []
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"{what} not received within {timeout}s; skipped: {skipped}")
        try:
            item = await asyncio.wait_for(queue.get(), remaining)
        except asyncio.TimeoutError:
            continue
        if where is None or where(item):
            return item
        skipped.append(str(item)[:300])


async def sign_in(server: Server, user: str, *, password: str | None = None,
                  resource: str | None = None, mode: str = "starttls", mech: str | None = None,
                  presence: bool = True, priority: int | None = None,
                  roster: bool = True, timeout: float = 10.0) -> TestClient:
    """Connect, authenticate, bind; optionally fetch the roster and send initial presence.

    `mode` is "starttls" (port 5222 equivalent) or "direct" (XEP-0368 direct TLS).
    Raises SignInFailed with the SASL failure condition or stream error when refused.
    Pass `mech` when a refusal is expected: unrestricted, slixmpp retries every offered
    mechanism, and each try counts against the server's failed-attempt throttling.
    """
    jid = f"{user}@{server.domain}" + (f"/{resource}" if resource else "")
    c = TestClient(jid, password if password is not None else password_of(user), mech=mech)
    c.enable_plaintext = False
    if mode == "starttls":
        c.enable_starttls, c.enable_direct_tls = True, False
        port = server.starttls_port
    elif mode == "direct":
        c.enable_starttls, c.enable_direct_tls = False, True
        port = server.direct_tls_port
    else:
        raise ValueError(mode)
    c.connect("127.0.0.1", port)
    try:
        outcome = await asyncio.wait_for(c._outcome, timeout)
    except asyncio.TimeoutError:
        c.cancel_connection_attempt()
        c.abort()
        raise AssertionError(f"sign-in of {jid} timed out after {timeout}s") from None
    if isinstance(outcome, SignInFailed):
        c.cancel_connection_attempt()
        c.abort()
        raise outcome
    if roster:
        await c.get_roster(timeout=TIMEOUT)
    if presence:
        c.send_presence(ppriority=priority)
    return c


async def close_all(*clients: TestClient) -> None:
    await asyncio.gather(*(c.close() for c in clients if c is not None), return_exceptions=True)


async def barrier(sender: TestClient, receiver: TestClient, timeout: float = TIMEOUT) -> list[Any]:
    """Messages `receiver` got before a marker sent now by `sender` to its full JID.

    The server handles one session's stanzas in order and delivers to one resource in order,
    so when the marker arrives, anything the sender sent earlier to that resource has arrived
    too: an absence is proven without sleeping.
    """
    loop = asyncio.get_running_loop()
    marker = f"barrier-{id(receiver)}-{loop.time()}"
    sender.send_message(mto=receiver.boundjid.full, mbody=marker, mtype="chat")
    deadline = loop.time() + timeout
    before = []
    while True:
        m = await receiver.next_message(max(0.01, deadline - loop.time()))
        if m["body"] == marker:
            return before
        before.append(m)


def queued(queue: asyncio.Queue) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def error_condition(stanza: Any) -> str | None:
    if stanza["type"] != "error":
        return None
    return stanza["error"]["condition"]
