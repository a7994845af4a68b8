//! [`Jingle`] → `<jingle/>` element.

use minidom::{Element, ElementBuilder};

use super::model::*;
use super::ns;
use crate::xml::AttrExt;

fn opt(b: ElementBuilder, name: &str, value: Option<impl ToString>) -> ElementBuilder {
    match value {
        Some(v) => b.a(name, v.to_string()),
        None => b,
    }
}

impl Jingle {
    pub fn to_element(&self) -> Element {
        let action = self.action.as_ref().map(Action::as_str).unwrap_or("session-info");
        let mut b = Element::builder("jingle", ns::JINGLE).a("action", action).a("sid", self.sid.clone());
        b = opt(b, "initiator", self.initiator.as_ref());
        b = opt(b, "responder", self.responder.as_ref());
        for c in &self.contents {
            b = b.append(content(c));
        }
        if !self.bundle.is_empty() {
            let mut g = Element::builder("group", ns::GROUPING).a("semantics", "BUNDLE");
            for name in &self.bundle {
                g = g.append(Element::builder("content", ns::GROUPING).a("name", name.clone()));
            }
            b = b.append(g);
        }
        if let Some(r) = &self.reason {
            b = b.append(Element::builder("reason", ns::JINGLE).append(Element::builder(r.as_str(), ns::JINGLE)));
        }
        for i in &self.info {
            let e = Element::builder(i.kind.as_str(), ns::RTP_INFO);
            b = b.append(opt(e, "name", i.name.as_ref()).a("creator", "responder"));
        }
        if !self.users.is_empty() {
            let mut users = Element::builder("users", ns::COIN);
            for u in &self.users {
                users = users.append(Element::builder("user", ns::COIN).a("entity", u.clone()));
            }
            b = b.append(Element::builder("conference-info", ns::COIN).append(users));
        }
        b.build()
    }
}

fn content(c: &Content) -> Element {
    let creator = match c.creator {
        Creator::Initiator => "initiator",
        Creator::Responder => "responder",
    };
    let mut b = Element::builder("content", ns::JINGLE)
        .a("creator", creator)
        .a("name", c.name.clone())
        .a("senders", c.senders.as_str());
    if let Some(d) = &c.description {
        b = b.append(description(d));
    }
    if let Some(t) = &c.transport {
        b = b.append(transport(t));
    }
    b.build()
}

fn fb(f: &RtcpFb) -> Element {
    opt(Element::builder("rtcp-fb", ns::RTCP_FB).a("type", f.kind.clone()), "subtype", f.subtype.as_ref()).build()
}

fn description(d: &RtpDescription) -> Element {
    let mut b = Element::builder("description", ns::RTP).a("media", d.media.as_str());
    for pt in &d.payload_types {
        let mut p = Element::builder("payload-type", ns::RTP)
            .a("id", pt.id.to_string())
            .a("name", pt.name.clone())
            .a("clockrate", pt.clockrate.to_string());
        if pt.channels > 1 {
            p = p.a("channels", pt.channels.to_string());
        }
        for (n, v) in &pt.parameters {
            p = p.append(Element::builder("parameter", ns::RTP).a("name", n.clone()).a("value", v.clone()));
        }
        for f in &pt.rtcp_fbs {
            p = p.append(fb(f));
        }
        b = b.append(p);
    }
    for f in &d.rtcp_fbs {
        b = b.append(fb(f));
    }
    for h in &d.hdrexts {
        b = b.append(Element::builder("rtp-hdrext", ns::HDREXT).a("id", h.id.to_string()).a("uri", h.uri.clone()));
    }
    for s in &d.sources {
        let mut e = Element::builder("source", ns::SSMA).a("ssrc", s.ssrc.to_string());
        for (n, v) in &s.parameters {
            e = e.append(opt(Element::builder("parameter", ns::SSMA).a("name", n.clone()), "value", v.as_ref()));
        }
        b = b.append(e);
    }
    for g in &d.ssrc_groups {
        let mut e = Element::builder("ssrc-group", ns::SSMA).a("semantics", g.semantics.clone());
        for s in &g.ssrcs {
            e = e.append(Element::builder("source", ns::SSMA).a("ssrc", s.to_string()));
        }
        b = b.append(e);
    }
    if d.rtcp_mux {
        b = b.append(Element::builder("rtcp-mux", ns::RTP));
    }
    b.build()
}

fn transport(t: &IceTransport) -> Element {
    let mut b = Element::builder("transport", ns::ICE_UDP);
    b = opt(b, "ufrag", t.ufrag.as_ref());
    b = opt(b, "pwd", t.pwd.as_ref());
    if let Some(f) = &t.fingerprint {
        let hex: Vec<String> = f.value.iter().map(|x| format!("{x:02X}")).collect();
        b = b.append(
            Element::builder("fingerprint", ns::DTLS)
                .a("hash", f.hash.clone())
                .a("setup", f.setup.clone())
                .append(hex.join(":")),
        );
    }
    for c in &t.candidates {
        let mut e = Element::builder("candidate", ns::ICE_UDP)
            .a("component", c.component.to_string())
            .a("foundation", c.foundation.clone())
            .a("generation", c.generation.to_string())
            .a("id", c.id.clone())
            .a("ip", c.ip.to_string())
            .a("port", c.port.to_string())
            .a("priority", c.priority.to_string())
            .a("protocol", c.protocol.clone())
            .a("type", c.kind.clone());
        e = opt(e, "rel-addr", c.rel_addr);
        e = opt(e, "rel-port", c.rel_port);
        e = opt(e, "tcptype", c.tcptype.as_ref());
        b = b.append(e);
    }
    b.build()
}
