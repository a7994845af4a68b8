//! `<jingle/>` element → [`Jingle`]. Unknown children and attributes are skipped (clients
//! add their own); malformed numbers, addresses and oversized lists are refused.

use minidom::Element;
use std::str::FromStr;

use super::model::*;
use super::{limits, ns, JingleError};

type Result<T> = std::result::Result<T, JingleError>;

impl Jingle {
    /// Parse a `<jingle xmlns="urn:xmpp:jingle:1"/>` element.
    pub fn parse(el: &Element) -> Result<Jingle> {
        if !el.is("jingle", ns::JINGLE) {
            return Err(JingleError::new("not a <jingle/> element"));
        }
        let action = Action::from_name(req(el, "action")?);
        let sid = req(el, "sid")?.to_string();
        let mut j = Jingle {
            action: Some(action),
            sid,
            initiator: el.attr("initiator").map(Into::into),
            responder: el.attr("responder").map(Into::into),
            ..Jingle::default()
        };
        for child in el.children() {
            match (child.ns().as_str(), child.name()) {
                (ns::JINGLE, "content") => {
                    if j.contents.len() == limits::CONTENTS {
                        return Err(JingleError::new("too many contents"));
                    }
                    j.contents.push(parse_content(child)?);
                }
                (ns::JINGLE, "reason") => {
                    j.reason = child.children().find(|c| c.name() != "text").map(|c| c.name().to_string());
                }
                (ns::GROUPING, "group") if child.attr("semantics") == Some("BUNDLE") => {
                    j.bundle = child
                        .children()
                        .filter(|c| c.name() == "content")
                        .filter_map(|c| c.attr("name").map(Into::into))
                        .take(limits::CONTENTS)
                        .collect();
                }
                (ns::RTP_INFO, kind) => {
                    j.info.push(SessionInfo { kind: kind.to_string(), name: child.attr("name").map(Into::into) })
                }
                (ns::COIN, "conference-info") => {
                    for users in child.children().filter(|c| c.name() == "users") {
                        for user in users.children().filter(|c| c.name() == "user").take(limits::CONTENTS) {
                            if let Some(e) = user.attr("entity") {
                                j.users.push(e.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(j)
    }
}

fn req<'a>(el: &'a Element, name: &'a str) -> Result<&'a str> {
    el.attr(name).ok_or_else(|| JingleError::new(format!("<{}/> needs a '{name}' attribute", el.name())))
}

fn num<T: FromStr>(el: &Element, name: &str) -> Result<T> {
    req(el, name)?.parse().map_err(|_| JingleError::new(format!("<{}/>: '{name}' is not a valid number", el.name())))
}

fn opt_num<T: FromStr>(el: &Element, name: &str) -> Result<Option<T>> {
    el.attr(name).map(|_| num(el, name)).transpose()
}

fn parse_content(el: &Element) -> Result<Content> {
    let name = req(el, "name")?;
    if name.is_empty() || name.len() > limits::CONTENT_NAME {
        return Err(JingleError::new("a content name must be 1 to 16 bytes long"));
    }
    let creator = match el.attr("creator") {
        Some("responder") => Creator::Responder,
        _ => Creator::Initiator,
    };
    let senders = match el.attr("senders") {
        None | Some("both") => Senders::Both,
        Some("initiator") => Senders::Initiator,
        Some("responder") => Senders::Responder,
        Some("none") => Senders::None,
        Some(_) => return Err(JingleError::new("unknown 'senders' value")),
    };
    let mut content = Content { creator, name: name.to_string(), senders, description: None, transport: None };
    for child in el.children() {
        if child.is("description", ns::RTP) {
            content.description = Some(parse_description(child)?);
        } else if child.is("transport", ns::ICE_UDP) {
            content.transport = Some(parse_transport(child)?);
        }
    }
    Ok(content)
}

fn parse_description(el: &Element) -> Result<RtpDescription> {
    let media = match el.attr("media") {
        Some("audio") => Media::Audio,
        Some("video") => Media::Video,
        _ => return Err(JingleError::new("only audio and video RTP descriptions are supported")),
    };
    let mut d = RtpDescription::new(media);
    d.rtcp_mux = false;
    for child in el.children() {
        match (child.ns().as_str(), child.name()) {
            (ns::RTP, "payload-type") => {
                if d.payload_types.len() == limits::PAYLOAD_TYPES {
                    return Err(JingleError::new("too many payload types"));
                }
                d.payload_types.push(parse_payload_type(child)?);
            }
            (ns::RTP, "rtcp-mux") => d.rtcp_mux = true,
            (ns::RTCP_FB, "rtcp-fb") => d.rtcp_fbs.push(parse_fb(child)?),
            (ns::HDREXT, "rtp-hdrext") => {
                d.hdrexts.push(HdrExt { id: num(child, "id")?, uri: req(child, "uri")?.to_string() })
            }
            (ns::SSMA, "source") => {
                if d.sources.len() == limits::SOURCES {
                    return Err(JingleError::new("too many sources"));
                }
                d.sources.push(parse_source(child)?);
            }
            (ns::SSMA, "ssrc-group") => {
                let ssrcs = child
                    .children()
                    .filter(|c| c.name() == "source")
                    .take(limits::SOURCES)
                    .map(|c| num(c, "ssrc"))
                    .collect::<Result<Vec<u32>>>()?;
                d.ssrc_groups.push(SsrcGroup { semantics: req(child, "semantics")?.to_string(), ssrcs });
            }
            _ => {}
        }
    }
    Ok(d)
}

fn parse_payload_type(el: &Element) -> Result<PayloadType> {
    let mut pt = PayloadType {
        id: num(el, "id")?,
        name: el.attr("name").unwrap_or_default().to_string(),
        clockrate: opt_num(el, "clockrate")?.unwrap_or(0),
        channels: opt_num(el, "channels")?.unwrap_or(1),
        parameters: Vec::new(),
        rtcp_fbs: Vec::new(),
    };
    if pt.id > 127 {
        return Err(JingleError::new("a payload type id is at most 127"));
    }
    for child in el.children().take(64) {
        if child.name() == "parameter" {
            pt.parameters.push((req(child, "name")?.to_string(), child.attr("value").unwrap_or_default().to_string()));
        } else if child.is("rtcp-fb", ns::RTCP_FB) {
            pt.rtcp_fbs.push(parse_fb(child)?);
        }
    }
    Ok(pt)
}

fn parse_fb(el: &Element) -> Result<RtcpFb> {
    Ok(RtcpFb { kind: req(el, "type")?.to_string(), subtype: el.attr("subtype").map(Into::into) })
}

fn parse_source(el: &Element) -> Result<Source> {
    let parameters = el
        .children()
        .filter(|c| c.name() == "parameter")
        .take(16)
        .map(|c| Ok((req(c, "name")?.to_string(), c.attr("value").map(Into::into))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Source { ssrc: num(el, "ssrc")?, parameters })
}

fn parse_transport(el: &Element) -> Result<IceTransport> {
    let mut t = IceTransport {
        ufrag: el.attr("ufrag").map(Into::into),
        pwd: el.attr("pwd").map(Into::into),
        ..IceTransport::default()
    };
    for child in el.children() {
        if child.is("fingerprint", ns::DTLS) {
            t.fingerprint = Some(Fingerprint {
                hash: req(child, "hash")?.to_string(),
                setup: child.attr("setup").unwrap_or("actpass").to_string(),
                value: parse_hex(&child.text())?,
            });
        } else if child.is("candidate", ns::ICE_UDP) {
            if t.candidates.len() == limits::CANDIDATES {
                return Err(JingleError::new("too many candidates"));
            }
            t.candidates.push(Candidate {
                component: num(child, "component")?,
                foundation: req(child, "foundation")?.to_string(),
                generation: opt_num(child, "generation")?.unwrap_or(0),
                id: child.attr("id").unwrap_or_default().to_string(),
                ip: num(child, "ip")?,
                port: num(child, "port")?,
                priority: num(child, "priority")?,
                protocol: req(child, "protocol")?.to_ascii_lowercase(),
                kind: child.attr("type").unwrap_or("host").to_string(),
                rel_addr: opt_num(child, "rel-addr")?,
                rel_port: opt_num(child, "rel-port")?,
                tcptype: match child.attr("tcptype") {
                    None => None,
                    Some(t @ ("active" | "passive" | "so")) => Some(t.to_string()),
                    Some(_) => return Err(JingleError::new("tcptype is active, passive or so")),
                },
            });
        }
    }
    Ok(t)
}

/// "AB:CD:EF" → bytes.
fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let bad = || JingleError::new("a fingerprint is colon-separated hexadecimal");
    let text = text.trim();
    if text.len() > 200 {
        return Err(bad());
    }
    text.split(':')
        .map(|b| if b.len() == 2 { u8::from_str_radix(b, 16).map_err(|_| bad()) } else { Err(bad()) })
        .collect()
}
