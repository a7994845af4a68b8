"""Jingle (XEP-0166/0167/0176/0320/0293/0294/0338/0339) <-> SDP, for an aiortc peer.

Written from the XEPs and RFC 8866/8829, independently of amphi's Rust code: the peer speaks
only the protocol documented in xep/jingle-conferences.md.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS_JINGLE = "urn:xmpp:jingle:1"
NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS = "urn:xmpp:jingle:apps:dtls:0"
NS_FB = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
NS_HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
NS_GROUP = "urn:xmpp:jingle:apps:grouping:0"
NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
NS_COIN = "urn:xmpp:coin:1"


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


@dataclass
class MediaSection:
    """One SDP m-section, the parts a Jingle content carries."""

    mid: str
    media: str
    direction: str = "sendrecv"
    payload_types: list[dict] = field(default_factory=list)  # id, name, clockrate, channels, params, fbs
    extmaps: list[tuple[int, str]] = field(default_factory=list)
    ssrcs: dict[int, dict[str, str]] = field(default_factory=dict)
    ssrc_groups: list[tuple[str, list[int]]] = field(default_factory=list)
    ufrag: str = ""
    pwd: str = ""
    fingerprint: tuple[str, str] = ("", "")
    setup: str = "actpass"
    candidates: list[str] = field(default_factory=list)
    port: int = 9


def parse_sdp(sdp: str) -> list[MediaSection]:
    sections: list[MediaSection] = []
    session_attrs: dict[str, str] = {}
    cur: MediaSection | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            media, port, _proto, *pts = line[2:].split()
            cur = MediaSection(mid="", media=media, port=int(port))
            cur.payload_types = [{"id": int(p), "name": "", "clockrate": 0, "channels": 1, "params": [], "fbs": []} for p in pts]
            sections.append(cur)
            continue
        if not line.startswith("a="):
            continue
        key, _, value = line[2:].partition(":")
        if cur is None:
            session_attrs[key] = value
            continue
        pt = lambda i: next((p for p in cur.payload_types if p["id"] == int(i)), None)  # noqa: E731
        if key == "mid":
            cur.mid = value
        elif key in ("sendrecv", "sendonly", "recvonly", "inactive"):
            cur.direction = key
        elif key == "rtpmap":
            i, enc = value.split(" ", 1)
            parts = enc.split("/")
            if (p := pt(i)) is not None:
                p["name"], p["clockrate"] = parts[0], int(parts[1])
                p["channels"] = int(parts[2]) if len(parts) > 2 else 1
        elif key == "fmtp":
            i, params = value.split(" ", 1)
            if (p := pt(i)) is not None:
                for kv in params.split(";"):
                    k, _, v = kv.strip().partition("=")
                    p["params"].append((k, v))
        elif key == "rtcp-fb":
            i, fb = value.split(" ", 1)
            kind, _, sub = fb.partition(" ")
            targets = cur.payload_types if i == "*" else [pt(i)]
            for p in targets:
                if p is not None:
                    p["fbs"].append((kind, sub or None))
        elif key == "extmap":
            i, uri = value.split(" ", 1)
            cur.extmaps.append((int(i.split("/")[0]), uri.split(" ")[0]))
        elif key == "ssrc":
            ssrc, attr = value.split(" ", 1)
            name, _, val = attr.partition(":")
            cur.ssrcs.setdefault(int(ssrc), {})[name] = val
        elif key == "ssrc-group":
            sem, *ids = value.split()
            cur.ssrc_groups.append((sem, [int(x) for x in ids]))
        elif key == "ice-ufrag":
            cur.ufrag = value
        elif key == "ice-pwd":
            cur.pwd = value
        elif key == "fingerprint":
            h, fp = value.split(" ", 1)
            if not cur.fingerprint[0] or h == "sha-256":
                cur.fingerprint = (h, fp)
        elif key == "setup":
            cur.setup = value
        elif key == "candidate":
            cur.candidates.append(value)
    for s in sections:
        s.ufrag = s.ufrag or session_attrs.get("ice-ufrag", "")
        s.pwd = s.pwd or session_attrs.get("ice-pwd", "")
        if not s.fingerprint[0] and "fingerprint" in session_attrs:
            h, fp = session_attrs["fingerprint"].split(" ", 1)
            s.fingerprint = (h, fp)
    return sections


SENDERS_OF_DIRECTION = {"sendrecv": "both", "sendonly": "initiator", "recvonly": "responder", "inactive": "none"}


def content_element(s: MediaSection, creator: str, senders: str, with_transport: bool = True) -> ET.Element:
    c = ET.Element(q(NS_JINGLE, "content"), creator=creator, name=s.mid, senders=senders)
    d = ET.SubElement(c, q(NS_RTP, "description"), media=s.media)
    for p in s.payload_types:
        if not p["name"]:
            continue
        attrs = {"id": str(p["id"]), "name": p["name"], "clockrate": str(p["clockrate"])}
        if p["channels"] > 1:
            attrs["channels"] = str(p["channels"])
        pe = ET.SubElement(d, q(NS_RTP, "payload-type"), attrs)
        for k, v in p["params"]:
            ET.SubElement(pe, q(NS_RTP, "parameter"), name=k, value=v)
        for kind, sub in p["fbs"]:
            fb = ET.SubElement(pe, q(NS_FB, "rtcp-fb"), type=kind)
            if sub:
                fb.set("subtype", sub)
    for i, uri in s.extmaps:
        ET.SubElement(d, q(NS_HDREXT, "rtp-hdrext"), id=str(i), uri=uri)
    for ssrc, attrs in s.ssrcs.items():
        se = ET.SubElement(d, q(NS_SSMA, "source"), ssrc=str(ssrc))
        for k, v in attrs.items():
            ET.SubElement(se, q(NS_SSMA, "parameter"), name=k, value=v)
    for sem, ids in s.ssrc_groups:
        g = ET.SubElement(d, q(NS_SSMA, "ssrc-group"), semantics=sem)
        for i in ids:
            ET.SubElement(g, q(NS_SSMA, "source"), ssrc=str(i))
    ET.SubElement(d, q(NS_RTP, "rtcp-mux"))
    if with_transport:
        t = ET.SubElement(c, q(NS_ICE, "transport"), ufrag=s.ufrag, pwd=s.pwd)
        fp = ET.SubElement(t, q(NS_DTLS, "fingerprint"), hash=s.fingerprint[0], setup=s.setup)
        fp.text = s.fingerprint[1]
        for i, cand in enumerate(s.candidates):
            t.append(candidate_element(cand, i))
    return c


def candidate_element(line: str, i: int) -> ET.Element:
    f = line.split()
    attrs = {"foundation": f[0], "component": f[1], "protocol": f[2].lower(), "priority": f[3],
             "ip": f[4], "port": f[5], "type": f[7], "generation": "0", "id": f"c{i}"}
    if "raddr" in f:
        attrs["rel-addr"] = f[f.index("raddr") + 1]
        attrs["rel-port"] = f[f.index("rport") + 1]
    return ET.Element(q(NS_ICE, "candidate"), attrs)


def sdp_to_jingle(sdp: str, action: str, sid: str, creator: str = "initiator") -> ET.Element:
    """Our offer (or answer to a content-add) as a Jingle element."""
    j = ET.Element(q(NS_JINGLE, "jingle"), action=action, sid=sid)
    sections = parse_sdp(sdp)
    for s in sections:
        j.append(content_element(s, creator, SENDERS_OF_DIRECTION[s.direction]))
    g = ET.SubElement(j, q(NS_GROUP, "group"), semantics="BUNDLE")
    for s in sections:
        ET.SubElement(g, q(NS_GROUP, "content"), name=s.mid)
    return j


def section_from_content(c: ET.Element) -> MediaSection:
    """The m-section the remote (the focus) describes in a Jingle content."""
    d = c.find(q(NS_RTP, "description"))
    s = MediaSection(mid=c.get("name"), media=d.get("media") if d is not None else "audio")
    if d is not None:
        for pe in d.findall(q(NS_RTP, "payload-type")):
            s.payload_types.append({
                "id": int(pe.get("id")), "name": pe.get("name"), "clockrate": int(pe.get("clockrate", "0")),
                "channels": int(pe.get("channels", "1")),
                "params": [(x.get("name"), x.get("value")) for x in pe.findall(q(NS_RTP, "parameter"))],
                "fbs": [(x.get("type"), x.get("subtype")) for x in pe.findall(q(NS_FB, "rtcp-fb"))],
            })
        s.extmaps = [(int(h.get("id")), h.get("uri")) for h in d.findall(q(NS_HDREXT, "rtp-hdrext"))]
        for se in d.findall(q(NS_SSMA, "source")):
            s.ssrcs[int(se.get("ssrc"))] = {p.get("name"): p.get("value") for p in se.findall(q(NS_SSMA, "parameter"))}
        for g in d.findall(q(NS_SSMA, "ssrc-group")):
            s.ssrc_groups.append((g.get("semantics"), [int(x.get("ssrc")) for x in g.findall(q(NS_SSMA, "source"))]))
    t = c.find(q(NS_ICE, "transport"))
    if t is not None:
        s.ufrag, s.pwd = t.get("ufrag", ""), t.get("pwd", "")
        fp = t.find(q(NS_DTLS, "fingerprint"))
        if fp is not None:
            s.fingerprint, s.setup = (fp.get("hash"), fp.text.strip()), fp.get("setup", "actpass")
        for ce in t.findall(q(NS_ICE, "candidate")):
            s.candidates.append(
                f"{ce.get('foundation')} {ce.get('component')} {ce.get('protocol')} {ce.get('priority')} "
                f"{ce.get('ip')} {ce.get('port')} typ {ce.get('type')}"
            )
    return s


def build_sdp(sections: list[MediaSection], ice_lite: bool = True) -> str:
    """A remote description for aiortc: every section, BUNDLEd, in order."""
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0"]
    live = [s.mid for s in sections if s.port != 0]
    lines.append("a=group:BUNDLE " + " ".join(live))
    if ice_lite:
        lines.append("a=ice-lite")
    lines.append("a=msid-semantic:WMS *")
    for s in sections:
        pts = [p for p in s.payload_types if p["name"]]
        lines.append(f"m={s.media} {s.port} UDP/TLS/RTP/SAVPF " + " ".join(str(p["id"]) for p in pts))
        lines.append("c=IN IP4 0.0.0.0")
        lines.append(f"a=mid:{s.mid}")
        lines.append(f"a={s.direction}")
        lines.append(f"a=ice-ufrag:{s.ufrag}")
        lines.append(f"a=ice-pwd:{s.pwd}")
        lines.append(f"a=fingerprint:{s.fingerprint[0]} {s.fingerprint[1]}")
        lines.append(f"a=setup:{s.setup}")
        lines.append("a=rtcp-mux")
        for p in pts:
            enc = f"{p['name']}/{p['clockrate']}" + (f"/{p['channels']}" if p["channels"] > 1 else "")
            lines.append(f"a=rtpmap:{p['id']} {enc}")
            if p["params"]:
                lines.append(f"a=fmtp:{p['id']} " + ";".join(f"{k}={v}" for k, v in p["params"]))
            for kind, sub in p["fbs"]:
                lines.append(f"a=rtcp-fb:{p['id']} {kind}" + (f" {sub}" if sub else ""))
        for i, uri in s.extmaps:
            lines.append(f"a=extmap:{i} {uri}")
        for sem, ids in s.ssrc_groups:
            lines.append(f"a=ssrc-group:{sem} " + " ".join(str(i) for i in ids))
        for ssrc, attrs in s.ssrcs.items():
            for k, v in attrs.items():
                lines.append(f"a=ssrc:{ssrc} {k}:{v}")
        for cand in s.candidates:
            lines.append(f"a=candidate:{cand}")
        lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"
