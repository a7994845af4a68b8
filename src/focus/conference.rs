//! The sans-IO focus: Jingle iqs and SFU events in, stanzas and SFU commands out.
//!
//! One Jingle session per participant and call. The participant initiates it to
//! `call@focus.<domain>` with what it sends; the focus answers with `session-accept`, then
//! adds every other participant's stream to it with `content-add` (senders="responder")
//! and removes them with `content-remove`. Forwarding of a stream starts when the
//! participant's `content-accept` arrives. See xep/jingle-conferences.md.

use std::collections::HashMap;
use std::net::SocketAddr;

use minidom::Element;

use super::negotiate;
use crate::error::StanzaError;
use crate::jingle::{ns, Action, Content, IceTransport, Jingle, Media, RtpDescription};
use crate::sfu::{Command, Event, JoinSpec, ParticipantId, TrackSpec};
use crate::xml::AttrExt;

mod end_call;
mod moderation;
mod offer;
mod rooms;
mod streams;

pub use end_call::{END_CALL, NS_CALL, NS_COMMANDS};
use offer::Offer;
pub use rooms::{Membership, RoomOccupant, Rooms};

/// What the focus does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A stanza to deliver (its `to` is a participant's full JID).
    Send(Element),
    Sfu(Command),
}

/// Fixed facts about the focus.
#[derive(Debug, Clone)]
pub struct FocusInfo {
    /// The focus's domain (`focus.example.org`).
    pub domain: String,
    /// The SFU's ICE host candidate.
    pub candidate: SocketAddr,
    /// Its ICE-TCP passive candidate, when `[media] tcp_listen` is set.
    pub tcp_candidate: Option<SocketAddr>,
    /// The SFU's DTLS certificate fingerprint (hash name, digest).
    pub fingerprint: (String, Vec<u8>),
    pub max_participants: usize,
}

/// A stream a participant publishes.
#[derive(Debug, Clone)]
struct Publication {
    content: String,
    description: RtpDescription,
    track: TrackSpec,
}

/// A stream the focus forwards to a participant, by the content name it has there.
#[derive(Debug, Clone, PartialEq)]
struct Forwarded {
    publisher: ParticipantId,
    /// The publisher's content.
    content: String,
    accepted: bool,
    /// The SSRCs announced to this receiver (the publisher's, unless they collide with
    /// SSRCs already in the receiver's session).
    out_ssrc: u32,
    out_rtx: Option<u32>,
}

struct Participant {
    jid: String,
    call: String,
    sid: String,
    /// The address the participant talks to: `call@focus.<domain>`.
    focus_jid: String,
    ufrag: String,
    pwd: String,
    /// Our DTLS role as XEP-0320 `setup`: "passive" unless the client insists on it.
    setup: &'static str,
    /// What it accepted to receive, by media: the payload types used for forwarded streams.
    receive: HashMap<Media, RtpDescription>,
    publications: Vec<Publication>,
    /// Accepted descriptions of every content it created, sending or not.
    own: HashMap<String, RtpDescription>,
    /// Publications paused by content-modify (senders without the initiator), by content.
    dormant: HashMap<String, Publication>,
    forwarded: HashMap<String, Forwarded>,
    next_content: u32,
}

impl Participant {
    fn transport(&self, info: &FocusInfo) -> IceTransport {
        let (udp, tcp) = (info.candidate, info.tcp_candidate);
        negotiate::focus_transport(&self.ufrag, &self.pwd, &info.fingerprint, self.setup, udp, tcp)
    }

    fn owner_uri(&self) -> String {
        // The bare JID: guests are per-link accounts, so this names the person, not a device.
        let bare = self.jid.split('/').next().unwrap_or(&self.jid);
        format!("xmpp:{bare}")
    }
}

/// Every call of the focus.
pub struct Conferences {
    info: FocusInfo,
    calls: HashMap<String, Vec<ParticipantId>>,
    participants: HashMap<ParticipantId, Participant>,
    sessions: HashMap<(String, String), ParticipantId>,
    next_id: ParticipantId,
    next_iq: u64,
    random: Random,
    /// Who is in each call's room, and as what: admission, moderation, and the names
    /// under which participants' streams are announced.
    rooms: Box<dyn Rooms>,
}

type Outs = Vec<Output>;

/// Fills a buffer with unpredictable bytes (ICE passwords).
pub type Random = Box<dyn FnMut(&mut [u8]) + Send>;

impl Conferences {
    /// `random` fills buffers with unpredictable bytes (ICE passwords); tests pass a
    /// deterministic one. `rooms` answers who is in each call's room.
    pub fn new(info: FocusInfo, random: Random, rooms: Box<dyn Rooms>) -> Conferences {
        Conferences {
            info,
            calls: HashMap::new(),
            participants: HashMap::new(),
            sessions: HashMap::new(),
            next_id: 1,
            next_iq: 1,
            random,
            rooms,
        }
    }

    pub fn info(&self) -> &FocusInfo {
        &self.info
    }

    /// Participants of a call, in the order they joined.
    pub fn call_size(&self, call: &str) -> usize {
        self.calls.get(call).map_or(0, Vec::len)
    }

    /// An iq addressed to the focus domain (`from` stamped by the sender's session).
    pub fn handle_iq(&mut self, iq: &Element) -> Outs {
        let ty = iq.attr("type").unwrap_or("");
        if ty == "result" || ty == "error" {
            // Acknowledgements of our own requests: nothing waits on them.
            return Vec::new();
        }
        let (Some(from), Some(to)) = (iq.attr("from"), iq.attr("to")) else { return Vec::new() };
        if ty == "get" {
            return vec![self.query(iq, from, to)];
        }
        if let Some(cmd) = iq.get_child("command", NS_COMMANDS) {
            return self.command(iq, from, to, cmd);
        }
        let Some(el) = iq.get_child("jingle", ns::JINGLE) else {
            return vec![error(iq, StanzaError::service_unavailable(), None)];
        };
        let jingle = match Jingle::parse(el) {
            Ok(j) => j,
            Err(e) => return vec![error(iq, StanzaError::bad_request().with_text(e.0), None)],
        };
        let key = (from.to_string(), jingle.sid.clone());
        let action = jingle.action.clone().unwrap_or(Action::Other(String::new()));
        if action == Action::SessionInitiate {
            if self.sessions.contains_key(&key) {
                return vec![error(iq, StanzaError::bad_request().with_text("this session already exists"), None)];
            }
            return self.initiate(iq, from, to, jingle);
        }
        let Some(&id) = self.sessions.get(&key) else {
            return vec![error(iq, StanzaError::item_not_found(), Some("unknown-session"))];
        };
        let mut out = vec![Output::Send(crate::c2s::negotiation::iq_result(iq, None))];
        match action {
            Action::ContentAccept => self.content_accept(id, &jingle, &mut out),
            Action::ContentReject => {
                if let Some(p) = self.participants.get_mut(&id) {
                    for c in &jingle.contents {
                        p.forwarded.remove(&c.name);
                    }
                }
            }
            Action::ContentAdd => return self.content_add(iq, id, jingle),
            Action::ContentRemove => self.content_remove(id, &jingle, &mut out),
            Action::TransportInfo => {
                for c in jingle.contents.iter().filter_map(|c| c.transport.as_ref()).flat_map(|t| &t.candidates) {
                    out.push(Output::Sfu(Command::Candidate { participant: id, candidate: c.to_sdp() }));
                }
            }
            Action::SessionInfo => return self.session_info(iq, id, &jingle),
            Action::SessionTerminate => self.leave(id, None, &mut out),
            Action::DescriptionInfo => self.description_info(id, &jingle, &mut out),
            Action::ContentModify => self.content_modify(id, &jingle, &mut out),
            _ => {
                out = vec![error(iq, StanzaError::feature_not_implemented(), Some("unsupported-info"))];
            }
        }
        out
    }

    /// An iq get: service discovery of the focus or a call.
    fn query(&self, iq: &Element, from: &str, to: &str) -> Output {
        let call = to.split_once('@').map(|(node, _)| node);
        let Some(q) = iq.children().next() else {
            return error(iq, StanzaError::bad_request(), None);
        };
        let payload = match (q.ns().as_str(), q.name()) {
            (crate::xml::ns::DISCO_INFO, "query") => {
                let size = self.call_of(to).map(|c| self.call_size(&c));
                super::disco::info(call, q.attr("node"), size)
            }
            (crate::xml::ns::DISCO_ITEMS, "query") if q.attr("node") == Some(NS_COMMANDS) => {
                super::disco::command_list(self.command_items(from, to))
            }
            (crate::xml::ns::DISCO_ITEMS, "query") if call.is_none() => {
                let mut calls: Vec<String> = self.calls.keys().cloned().collect();
                calls.sort();
                super::disco::items(&self.info.domain, &calls)
            }
            (crate::xml::ns::DISCO_ITEMS, "query") => super::disco::items(&self.info.domain, &[]),
            _ => return error(iq, StanzaError::service_unavailable(), None),
        };
        Output::Send(crate::c2s::negotiation::iq_result(iq, Some(payload)))
    }

    /// News from the SFU.
    pub fn handle_event(&mut self, event: Event) -> Outs {
        let mut out = Vec::new();
        match event {
            Event::Gone(id) => self.leave(id, Some(("connectivity-error", None)), &mut out),
            Event::Connected(id) => tracing::debug!(participant = id, "media connected"),
            Event::DominantSpeaker { call, participant } => {
                tracing::debug!(call, participant, "dominant speaker");
            }
        }
        out
    }

    fn initiate(&mut self, iq: &Element, from: &str, to: &str, jingle: Jingle) -> Outs {
        let call = match to.split_once('@') {
            Some((node, rest)) if !node.is_empty() && rest.split('/').next() == Some(self.info.domain.as_str()) => {
                // Room names are case-insensitive (nodeprep), as the MUC service treats them.
                node.to_lowercase()
            }
            _ => {
                return vec![error(
                    iq,
                    StanzaError::item_not_found().with_text("call the conference at room@focus-domain"),
                    None,
                )]
            }
        };
        // Only the room's occupants take part in its call (xep/jingle-conferences.md,
        // "Admission"); the session, not just the account, must be in the room.
        match self.rooms.membership(&call, from) {
            Membership::Occupant(_) => {}
            Membership::Outsider => {
                let text = format!("join the room {call} first: only its occupants may join its call");
                return vec![error(iq, StanzaError::forbidden().with_text(text), None)];
            }
            Membership::NoRoom => {
                let text = format!("there is no room {call}, so no call either");
                return vec![error(iq, StanzaError::item_not_found().with_text(text), None)];
            }
        }
        if self.call_size(&call) >= self.info.max_participants {
            return vec![error(iq, StanzaError::resource_constraint().with_text("this call is full"), None)];
        }
        let offer = match Offer::from_contents(&jingle.contents) {
            Ok(o) => o,
            Err(e) => return vec![error(iq, StanzaError::not_acceptable().with_text(e), None)],
        };
        let id = self.next_id;
        self.next_id += 1;
        let focus_jid = to.split('/').next().unwrap_or(to).to_string();
        let (ufrag, pwd) = (self.token(6), self.token(24));
        let mut p = Participant {
            jid: from.to_string(),
            call: call.clone(),
            sid: jingle.sid.clone(),
            focus_jid,
            ufrag,
            pwd,
            setup: if offer.fingerprint.setup == "passive" { "active" } else { "passive" },
            receive: HashMap::new(),
            publications: Vec::new(),
            own: HashMap::new(),
            dormant: HashMap::new(),
            forwarded: HashMap::new(),
            next_content: 1,
        };
        let mut answer = Jingle {
            action: Some(Action::SessionAccept),
            sid: jingle.sid.clone(),
            initiator: Some(from.to_string()),
            responder: Some(p.focus_jid.clone()),
            ..Jingle::default()
        };
        let transport = p.transport(&self.info);
        let mut spec = JoinSpec {
            participant: id,
            call: call.clone(),
            local_ufrag: p.ufrag.clone(),
            local_pwd: p.pwd.clone(),
            remote_ufrag: offer.ufrag.clone(),
            remote_pwd: offer.pwd.clone(),
            remote_fingerprint: (offer.fingerprint.hash.clone(), offer.fingerprint.value.clone()),
            remote_is_dtls_client: offer.fingerprint.setup != "passive",
            payloads: Vec::new(),
            extensions: Vec::new(),
            medias: Vec::new(),
            tracks: Vec::new(),
            candidates: offer.candidates.clone(),
        };
        for (content, accepted) in &offer.contents {
            let sends = content.senders.initiator_sends();
            for ps in negotiate::payload_specs(accepted) {
                if !spec.payloads.contains(&ps) {
                    spec.payloads.push(ps);
                }
            }
            for e in negotiate::extension_specs(accepted) {
                if !spec.extensions.contains(&e) {
                    spec.extensions.push(e);
                }
            }
            p.receive.entry(accepted.media).or_insert_with(|| accepted.clone());
            p.own.insert(content.name.clone(), accepted.clone());
            spec.medias.push((content.name.clone(), accepted.media == Media::Audio));
            if sends {
                if let Some(t) = negotiate::track(content, content.description.as_ref().unwrap_or(accepted)) {
                    spec.tracks.push(t.clone());
                    p.publications.push(Publication {
                        content: content.name.clone(),
                        description: accepted.clone(),
                        track: t,
                    });
                }
            }
            answer.contents.push(Content {
                creator: content.creator,
                name: content.name.clone(),
                senders: if sends { crate::jingle::Senders::Initiator } else { crate::jingle::Senders::None },
                description: Some(accepted.clone()),
                transport: Some(transport.clone()),
            });
            answer.bundle.push(content.name.clone());
        }
        let mut out = vec![
            Output::Send(crate::c2s::negotiation::iq_result(iq, None)),
            Output::Sfu(Command::Join(Box::new(spec))),
        ];
        let accept = self.iq_set(&p.focus_jid, &p.jid, answer.to_element());
        out.push(Output::Send(accept));
        self.sessions.insert((p.jid.clone(), p.sid.clone()), id);
        self.participants.insert(id, p);
        let others: Vec<ParticipantId> = self.calls.get(&call).cloned().unwrap_or_default();
        self.calls.entry(call).or_default().push(id);
        for other in others {
            // The newcomer receives everyone's streams, and everyone receives the newcomer's.
            let theirs: Vec<String> = self.publications(other);
            self.offer_streams(id, other, &theirs, &mut out);
            let mine: Vec<String> = self.publications(id);
            self.offer_streams(other, id, &mine, &mut out);
        }
        out
    }

    /// Remove a participant; with a `reason` (a XEP-0166 condition, and a text for people),
    /// the focus ends its session too.
    fn leave(&mut self, id: ParticipantId, reason: Option<(&str, Option<&str>)>, out: &mut Outs) {
        let Some(p) = self.participants.get(&id) else { return };
        let contents: Vec<String> = p.publications.iter().map(|x| x.content.clone()).collect();
        self.retract(id, &contents, None, out);
        let Some(p) = self.participants.remove(&id) else { return };
        self.sessions.remove(&(p.jid.clone(), p.sid.clone()));
        if let Some(list) = self.calls.get_mut(&p.call) {
            list.retain(|x| *x != id);
            if list.is_empty() {
                self.calls.remove(&p.call);
            }
        }
        out.push(Output::Sfu(Command::Leave { participant: id }));
        if let Some((condition, text)) = reason {
            let j = Jingle {
                action: Some(Action::SessionTerminate),
                sid: p.sid.clone(),
                reason: Some(condition.into()),
                ..Jingle::default()
            };
            let mut el = j.to_element();
            if let (Some(text), Some(r)) = (text, el.get_child_mut("reason", ns::JINGLE)) {
                r.append_child(Element::builder("text", ns::JINGLE).append(text).build());
            }
            out.push(Output::Send(self.iq_set(&p.focus_jid, &p.jid, el)));
        }
    }

    /// A participant's connection went away (its resource went offline).
    pub fn resource_gone(&mut self, jid: &str) -> Outs {
        let ids: Vec<ParticipantId> = self.participants.iter().filter(|(_, p)| p.jid == jid).map(|(k, _)| *k).collect();
        let mut out = Vec::new();
        for id in ids {
            self.leave(id, None, &mut out);
        }
        out
    }

    fn iq_set(&mut self, from: &str, to: &str, payload: Element) -> Element {
        let id = format!("focus-{}", self.next_iq);
        self.next_iq += 1;
        Element::builder("iq", crate::xml::ns::CLIENT)
            .a("type", "set")
            .a("id", id)
            .a("from", from)
            .a("to", to)
            .append(payload)
            .build()
    }

    /// ICE ufrag/pwd characters (RFC 8839 ice-char: ALPHA / DIGIT / "+" / "/").
    fn token(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut buf = vec![0u8; len];
        (self.random)(&mut buf);
        buf.iter().map(|b| CHARS[(*b as usize) % CHARS.len()] as char).collect()
    }
}

/// An iq error, with a XEP-0166 §10 condition when given.
fn error(iq: &Element, e: StanzaError, jingle_condition: Option<&str>) -> Output {
    let mut reply = crate::stanza::error_reply(iq, e, None);
    if let Some(cond) = jingle_condition {
        if let Some(err) = reply.children_mut().find(|c| c.name() == "error") {
            err.append_child(Element::bare(cond, ns::ERRORS));
        }
    }
    Output::Send(reply)
}
