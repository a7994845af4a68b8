"""A conference participant: slixmpp for Jingle signalling, aiortc for media.

It follows xep/jingle-conferences.md: in the room (enter_room), it sends session-initiate to
room@focus.<domain> with what it sends, session-accept back, then content-add /
content-remove for the others' streams, each answered with content-accept. Media stays on
loopback (ICE host candidates 127.0.0.1 only, no STUN server).
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections import Counter

import aioice.ice
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from jingle_sdp import (NS_COIN, NS_JINGLE, MediaSection, build_sdp, content_element, parse_sdp, q,
                        sdp_to_jingle, section_from_content)

# Loopback only: host candidates on 127.0.0.1, and no default STUN server.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

class SmallVideo(VideoStreamTrack):
    """A 320x240 synthetic camera: cheap to encode on a CI machine."""

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240)
        for plane in frame.planes:
            plane.update(bytes([pts % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


NS_MUC = "http://jabber.org/protocol/muc"

DIRECTION_OF_REMOTE = {"initiator": "recvonly", "responder": "sendonly", "both": "sendrecv", "none": "inactive"}


class MediaPeer:
    def __init__(self, client, call_jid: str):
        self.client = client
        self.call = call_jid
        self.sid = uuid.uuid4().hex[:12]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.remote: list[MediaSection] = []  # the focus's m-sections, in m-line order
        self.frames: Counter = Counter()  # decoded frames per content name
        self.owners: dict[str, str] = {}  # content name -> user entity (XEP-0298)
        self.removed: list[str] = []
        self.infos: list[tuple[str, str]] = []  # session-info received: (kind, content name)
        self.terminated: str | None = None
        self.log: list[str] = []
        self._queue: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self.accepted = asyncio.Event()
        client.register_handler(Callback(f"jingle-{self.sid}", MatchXPath(f"{{jabber:client}}iq/{{{NS_JINGLE}}}jingle"), self._on_iq))

        @self.pc.on("track")
        def on_track(track):
            mid = next((t.mid for t in self.pc.getTransceivers() if t.receiver.track is track), "?")
            self._tasks.append(asyncio.ensure_future(self._consume(track, mid)))

    async def _consume(self, track, mid: str) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self.frames[mid] += 1

    def _on_iq(self, iq) -> None:
        j = iq.xml.find(q(NS_JINGLE, "jingle"))
        if iq["type"] != "set" or j is None or j.get("sid") != self.sid:
            return
        iq.reply().send()
        self._queue.put_nowait(j)

    async def enter_room(self) -> None:
        """Only a room's occupants may join its call: enter the call's room
        (room@focus.D -> room@conference.D) under the account's name, with the harness's
        TestClient. The first peer creates it non-anonymous (whois anyone), so every peer
        sees the others' real JIDs as the streams' owners; tests/call_access.rs covers
        semi-anonymous rooms."""
        node, domain = self.call.split("@", 1)
        room = f"{node}@conference.{domain.removeprefix('focus.')}"
        me = f"{room}/{self.client.boundjid.user}"
        self.client.send_raw(f"<presence to='{me}'><x xmlns='{NS_MUC}'/></presence>")
        p = await self.client.next_presence(where=lambda p: str(p["from"]) == me)
        assert p["type"] != "error", p
        codes = {s.get("code") for s in p.xml.iter(f"{{{NS_MUC}#user}}status")}
        if "201" in codes:
            form = (f"<query xmlns='{NS_MUC}#owner'><x xmlns='jabber:x:data' type='submit'>"
                    f"<field var='FORM_TYPE'><value>{NS_MUC}#roomconfig</value></field>"
                    "<field var='muc#roomconfig_whois'><value>anyone</value></field></x></query>")
            reply = await self.client.iq_set(form, to=room)
            assert reply["type"] == "result", reply

    async def join(self) -> None:
        """Join the call (the client must be in the room already: see enter_room)."""
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(SmallVideo())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        j = sdp_to_jingle(self.pc.localDescription.sdp, "session-initiate", self.sid)
        j.set("initiator", str(self.client.boundjid))
        await self._send(j)
        self._tasks.append(asyncio.ensure_future(self._work()))

    async def add_video(self) -> str:
        """Start another video stream (a screen share): content-add to the focus."""
        self.pc.addTransceiver(SmallVideo(), direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        known = {s.mid for s in self.remote}
        new = [s for s in parse_sdp(self.pc.localDescription.sdp) if s.mid not in known]
        j = ET.Element(q(NS_JINGLE, "jingle"), action="content-add", sid=self.sid)
        for s in new:
            j.append(content_element(s, "initiator", "initiator"))
        await self._send(j)
        return new[0].mid

    async def remove_content(self, name: str) -> None:
        j = ET.Element(q(NS_JINGLE, "jingle"), action="content-remove", sid=self.sid)
        ET.SubElement(j, q(NS_JINGLE, "content"), creator="initiator", name=name)
        await self._send(j)

    async def mute(self, name: str) -> None:
        j = ET.Element(q(NS_JINGLE, "jingle"), action="session-info", sid=self.sid)
        ET.SubElement(j, "{urn:xmpp:jingle:apps:rtp:info:1}mute", creator="initiator", name=name)
        await self._send(j)

    async def leave(self) -> None:
        j = ET.Element(q(NS_JINGLE, "jingle"), action="session-terminate", sid=self.sid)
        ET.SubElement(ET.SubElement(j, q(NS_JINGLE, "reason")), q(NS_JINGLE, "success"))
        await self._send(j)
        await self.close()

    async def drop_media(self) -> None:
        """The network dies: media stops, signalling stays."""
        await self.pc.close()

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.pc.close()

    async def _send(self, jingle: ET.Element) -> None:
        iq = self.client.make_iq_set(ito=self.call)
        iq.append(jingle)
        await iq.send(timeout=10)

    async def _work(self) -> None:
        while True:
            j = await self._queue.get()
            action = j.get("action")
            self.log.append(action)
            try:
                if action == "session-accept":
                    await self._on_accept(j)
                elif action == "content-add":
                    await self._on_content_add(j)
                elif action == "content-accept":
                    await self._on_content_accept(j)
                elif action == "session-info":
                    for el in j:
                        self.infos.append((el.tag.split("}")[1], el.get("name")))
                elif action == "content-remove":
                    self.removed += [c.get("name") for c in j.findall(q(NS_JINGLE, "content"))]
                elif action == "session-terminate":
                    r = j.find(q(NS_JINGLE, "reason"))
                    self.terminated = r[0].tag.split("}")[1] if r is not None and len(r) else "none"
            except Exception as e:  # recorded for the test's failure message
                self.log.append(f"{action} failed: {e!r}")

    async def _on_accept(self, j: ET.Element) -> None:
        by_name = {c.get("name"): c for c in j.findall(q(NS_JINGLE, "content"))}
        for ours in parse_sdp(self.pc.localDescription.sdp):
            c = by_name[ours.mid]
            s = section_from_content(c)
            s.direction = DIRECTION_OF_REMOTE[c.get("senders", "both")]
            self.remote.append(s)
        await self.pc.setRemoteDescription(RTCSessionDescription(build_sdp(self.remote), "answer"))
        self.accepted.set()

    async def _on_content_accept(self, j: ET.Element) -> None:
        """The focus accepted a stream we added: apply its answer."""
        for c in j.findall(q(NS_JINGLE, "content")):
            s = section_from_content(c)
            s.direction = DIRECTION_OF_REMOTE[c.get("senders", "both")]
            self.remote.append(s)
        await self.pc.setRemoteDescription(RTCSessionDescription(build_sdp(self.remote), "answer"))

    async def _on_content_add(self, j: ET.Element) -> None:
        users = [u.get("entity") for u in j.iter(q(NS_COIN, "user"))]
        new = []
        for c in j.findall(q(NS_JINGLE, "content")):
            s = section_from_content(c)
            s.direction = DIRECTION_OF_REMOTE[c.get("senders", "both")]
            self.remote.append(s)
            new.append(s.mid)
            if users:
                self.owners[s.mid] = users[0]
        # The focus re-offers the whole session: the sections we had, then the new ones.
        await self.pc.setRemoteDescription(RTCSessionDescription(build_sdp(self.remote), "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        accept = ET.Element(q(NS_JINGLE, "jingle"), action="content-accept", sid=self.sid)
        for s in parse_sdp(self.pc.localDescription.sdp):
            if s.mid in new:
                accept.append(content_element(s, "responder", "responder", with_transport=False))
        await self._send(accept)

    def video_streams_from(self, user: str) -> dict[str, int]:
        """Decoded frames per video content of `user`."""
        return {s.mid: self.frames[s.mid] for s in self.remote if self.owners.get(s.mid) == user and s.media == "video"}

    def frames_from(self, user: str) -> dict[str, int]:
        """Decoded frames of `user`'s streams, by media ("audio"/"video")."""
        out: Counter = Counter()
        for s in self.remote:
            if self.owners.get(s.mid) == user:
                out[s.media] += self.frames[s.mid]
        return dict(out)
