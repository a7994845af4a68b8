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
use crate::jingle::{ns, Action, Content, IceTransport, Jingle, Media, RtpDescription, SessionInfo};
use crate::sfu::{Command, Event, JoinSpec, ParticipantId, TrackSpec};
use crate::xml::AttrExt;

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
        negotiate::focus_transport(&self.ufrag, &self.pwd, &info.fingerprint, "passive", info.candidate)
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
}

type Outs = Vec<Output>;

/// Fills a buffer with unpredictable bytes (ICE passwords).
pub type Random = Box<dyn FnMut(&mut [u8]) + Send>;

impl Conferences {
    /// `random` fills buffers with unpredictable bytes (ICE passwords); tests pass a
    /// deterministic one.
    pub fn new(info: FocusInfo, random: Random) -> Conferences {
        Conferences {
            info,
            calls: HashMap::new(),
            participants: HashMap::new(),
            sessions: HashMap::new(),
            next_id: 1,
            next_iq: 1,
            random,
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
            return vec![self.query(iq, to)];
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
            Action::SessionInfo => self.session_info(id, &jingle, &mut out),
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
    fn query(&self, iq: &Element, to: &str) -> Output {
        let call = to.split_once('@').map(|(node, _)| node);
        let Some(q) = iq.children().next() else {
            return error(iq, StanzaError::bad_request(), None);
        };
        let payload = match (q.ns().as_str(), q.name()) {
            (crate::xml::ns::DISCO_INFO, "query") => super::disco::info(call, q.attr("node")),
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
            Event::Gone(id) => self.leave(id, Some("connectivity-error"), &mut out),
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
                node.to_string()
            }
            _ => {
                return vec![error(
                    iq,
                    StanzaError::item_not_found().with_text("call the conference at room@focus-domain"),
                    None,
                )]
            }
        };
        // TODO(MUC): accept only occupants of call@<muc domain> once the MUC service
        // exposes membership (see xep/jingle-conferences.md, "Admission").
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

    fn publications(&self, id: ParticipantId) -> Vec<String> {
        self.participants
            .get(&id)
            .map(|p| p.publications.iter().map(|x| x.content.clone()).collect())
            .unwrap_or_default()
    }

    /// Send `to` a content-add for `publisher`'s contents `contents`.
    fn offer_streams(&mut self, to: ParticipantId, publisher: ParticipantId, contents: &[String], out: &mut Outs) {
        if contents.is_empty() || to == publisher {
            return;
        }
        let Some(pubr) = self.participants.get(&publisher) else { return };
        let owner = pubr.owner_uri();
        let pubs: Vec<Publication> =
            pubr.publications.iter().filter(|x| contents.contains(&x.content)).cloned().collect();
        let Some(p) = self.participants.get(&to) else { return };
        let mut used: Vec<u32> = p
            .publications
            .iter()
            .chain(p.dormant.values())
            .flat_map(|x| [Some(x.track.ssrc), x.track.rtx])
            .chain(p.forwarded.values().flat_map(|f| [Some(f.out_ssrc), f.out_rtx]))
            .flatten()
            .collect();
        let mut ssrcs = Vec::new();
        for x in &pubs {
            let ssrc = self.unused_ssrc(x.track.ssrc, &mut used);
            // Video always gets an RTX stream towards the receiver: the SFU answers NACKs
            // from its own cache, whether or not the publisher sends RTX.
            let rtx = match x.track.rtx {
                Some(r) => Some(self.unused_ssrc(r, &mut used)),
                None if !x.track.audio => Some(self.unused_ssrc(0, &mut used)),
                None => None,
            };
            ssrcs.push((ssrc, rtx));
        }
        let Some(p) = self.participants.get_mut(&to) else { return };
        let transport = p.transport(&self.info);
        let mut j = Jingle {
            action: Some(Action::ContentAdd),
            sid: p.sid.clone(),
            initiator: Some(p.jid.clone()),
            users: vec![owner],
            ..Jingle::default()
        };
        for (x, (out_ssrc, out_rtx)) in pubs.into_iter().zip(ssrcs) {
            let name = format!("p{publisher}r{}", p.next_content);
            p.next_content += 1;
            let msid = format!("amphi-{publisher} {}", x.content);
            let cname = format!("amphi-{publisher}");
            j.contents.push(negotiate::forwarded_content(
                &name,
                x.description.media,
                p.receive.get(&x.description.media),
                &x.description,
                out_ssrc,
                out_rtx,
                &msid,
                &cname,
                transport.clone(),
            ));
            p.forwarded
                .insert(name, Forwarded { publisher, content: x.content.clone(), accepted: false, out_ssrc, out_rtx });
        }
        j.bundle = j.contents.iter().map(|c| c.name.clone()).collect();
        let (from, to_jid) = (p.focus_jid.clone(), p.jid.clone());
        let iq = self.iq_set(&from, &to_jid, j.to_element());
        out.push(Output::Send(iq));
    }

    /// `wanted` if no stream of the session uses it yet, else a fresh random SSRC.
    fn unused_ssrc(&mut self, wanted: u32, used: &mut Vec<u32>) -> u32 {
        let mut ssrc = wanted;
        while ssrc == 0 || used.contains(&ssrc) {
            let mut b = [0u8; 4];
            (self.random)(&mut b);
            ssrc = u32::from_be_bytes(b);
        }
        used.push(ssrc);
        ssrc
    }

    fn content_accept(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
        for c in &jingle.contents {
            let Some(f) = self.participants.get_mut(&id).and_then(|p| p.forwarded.get_mut(&c.name)) else { continue };
            if f.accepted {
                continue;
            }
            f.accepted = true;
            let (publisher, content, out_ssrc, out_rtx) = (f.publisher, f.content.clone(), f.out_ssrc, f.out_rtx);
            let track = self
                .participants
                .get(&publisher)
                .and_then(|p| p.publications.iter().find(|x| x.content == content))
                .map(|x| x.track.clone());
            if let Some(t) = track {
                out.push(Output::Sfu(Command::Subscribe {
                    subscriber: id,
                    mid: c.name.clone(),
                    publisher,
                    ssrc: t.ssrc,
                    out_ssrc,
                    out_rtx,
                }));
            }
        }
    }

    /// A participant adds streams it sends (screen share, camera turned on).
    fn content_add(&mut self, iq: &Element, id: ParticipantId, jingle: Jingle) -> Outs {
        let mut accepted = Vec::new();
        for c in &jingle.contents {
            let Some(d) = &c.description else { continue };
            let known = self.participants.get(&id).is_some_and(|p| p.own.contains_key(&c.name));
            if known || is_focus_name(&c.name) {
                return vec![error(iq, StanzaError::conflict().with_text("content name already in use"), None)];
            }
            match negotiate::accept_description(d) {
                Ok(a) => accepted.push((c.clone(), a)),
                Err(e) => return vec![error(iq, StanzaError::not_acceptable().with_text(e.0), None)],
            }
        }
        let Some(p) = self.participants.get_mut(&id) else { return Vec::new() };
        let mut out = vec![Output::Send(crate::c2s::negotiation::iq_result(iq, None))];
        let transport = p.transport(&self.info);
        let mut answer = Jingle {
            action: Some(Action::ContentAccept),
            sid: p.sid.clone(),
            initiator: Some(p.jid.clone()),
            ..Jingle::default()
        };
        let mut started = Vec::new();
        for (c, a) in accepted {
            if let Some(t) = negotiate::track(&c, c.description.as_ref().unwrap_or(&a)) {
                started.push(Publication { content: c.name.clone(), description: a.clone(), track: t });
            }
            p.receive.entry(a.media).or_insert_with(|| a.clone());
            p.own.insert(c.name.clone(), a.clone());
            answer.contents.push(Content {
                creator: c.creator,
                name: c.name.clone(),
                senders: crate::jingle::Senders::Initiator,
                description: Some(a),
                transport: Some(transport.clone()),
            });
        }
        let (from, to) = (p.focus_jid.clone(), p.jid.clone());
        let el = answer.to_element();
        out.push(Output::Send(self.iq_set(&from, &to, el)));
        for x in started {
            self.start_publication(id, x, &mut out);
        }
        out
    }

    /// Forward a new stream of `id` to everyone else in its call.
    fn start_publication(&mut self, id: ParticipantId, x: Publication, out: &mut Outs) {
        let Some(p) = self.participants.get_mut(&id) else { return };
        out.push(Output::Sfu(Command::Publish { participant: id, track: x.track.clone() }));
        let name = x.content.clone();
        p.publications.push(x);
        for other in self.calls.get(&p.call).cloned().unwrap_or_default() {
            self.offer_streams(other, id, std::slice::from_ref(&name), out);
        }
    }

    /// Stop forwarding a stream of `id`; the others get content-remove.
    fn stop_publication(&mut self, id: ParticipantId, name: &str, out: &mut Outs) -> Option<Publication> {
        let p = self.participants.get_mut(&id)?;
        let i = p.publications.iter().position(|x| x.content == name)?;
        let x = p.publications.remove(i);
        out.push(Output::Sfu(Command::Unpublish { participant: id, ssrc: x.track.ssrc }));
        self.retract(id, std::slice::from_ref(&x.content), None, out);
        Some(x)
    }

    /// New sources on a participant's content (XEP-0339 in description-info), e.g. a camera
    /// switched to another device: a new SSRC is a new stream for the others.
    fn description_info(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
        for c in &jingle.contents {
            let Some(d) = &c.description else { continue };
            let Some(p) = self.participants.get(&id) else { return };
            let Some(accepted) = p.own.get(&c.name).cloned() else { continue };
            let new = negotiate::track(c, d);
            let old = p.publications.iter().find(|x| x.content == c.name).map(|x| x.track.clone());
            if old.as_ref().map(|t| (t.ssrc, t.rtx)) == new.as_ref().map(|t| (t.ssrc, t.rtx)) {
                continue;
            }
            self.stop_publication(id, &c.name, out);
            if let Some(track) = new {
                self.start_publication(id, Publication { content: c.name.clone(), description: accepted, track }, out);
            }
        }
    }

    /// A participant stops or resumes sending on a content (content-modify `senders`): a
    /// camera turned off disappears at the others, and comes back when turned on.
    fn content_modify(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
        for c in &jingle.contents {
            let Some(p) = self.participants.get(&id) else { return };
            let active = p.publications.iter().any(|x| x.content == c.name);
            if c.senders.initiator_sends() && !active {
                if let Some(x) = self.participants.get_mut(&id).and_then(|p| p.dormant.remove(&c.name)) {
                    self.start_publication(id, x, out);
                }
            } else if !c.senders.initiator_sends() && active {
                if let Some(x) = self.stop_publication(id, &c.name, out) {
                    if let Some(p) = self.participants.get_mut(&id) {
                        p.dormant.insert(c.name.clone(), x);
                    }
                }
            }
        }
    }

    fn content_remove(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
        for c in &jingle.contents {
            let Some(p) = self.participants.get_mut(&id) else { return };
            if p.forwarded.remove(&c.name).is_some() {
                out.push(Output::Sfu(Command::Unsubscribe { subscriber: id, mid: c.name.clone() }));
            } else {
                p.own.remove(&c.name);
                p.dormant.remove(&c.name);
                self.stop_publication(id, &c.name, out);
            }
        }
    }

    /// Tell everyone receiving `publisher`'s `contents` that they are gone.
    fn retract(&mut self, publisher: ParticipantId, contents: &[String], only: Option<ParticipantId>, out: &mut Outs) {
        if contents.is_empty() {
            return;
        }
        let ids: Vec<ParticipantId> =
            self.participants.keys().copied().filter(|k| only.is_none_or(|o| o == *k)).collect();
        for sub in ids {
            let Some(p) = self.participants.get_mut(&sub) else { continue };
            let names: Vec<String> = p
                .forwarded
                .iter()
                .filter(|(_, f)| f.publisher == publisher && contents.contains(&f.content))
                .map(|(n, _)| n.clone())
                .collect();
            if names.is_empty() {
                continue;
            }
            let mut j = Jingle {
                action: Some(Action::ContentRemove),
                sid: p.sid.clone(),
                initiator: Some(p.jid.clone()),
                ..Jingle::default()
            };
            for n in &names {
                p.forwarded.remove(n);
                j.contents.push(Content {
                    creator: crate::jingle::Creator::Responder,
                    name: n.clone(),
                    senders: crate::jingle::Senders::Responder,
                    description: None,
                    transport: None,
                });
                out.push(Output::Sfu(Command::Unsubscribe { subscriber: sub, mid: n.clone() }));
            }
            let (from, to) = (p.focus_jid.clone(), p.jid.clone());
            let el = j.to_element();
            out.push(Output::Send(self.iq_set(&from, &to, el)));
        }
    }

    /// Mute/unmute (XEP-0167 §7) of a publisher's content, relayed with each receiver's
    /// own content name.
    fn session_info(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
        let infos: Vec<SessionInfo> =
            jingle.info.iter().filter(|i| i.kind == "mute" || i.kind == "unmute").cloned().collect();
        if infos.is_empty() {
            return;
        }
        let subs: Vec<ParticipantId> = self.participants.keys().copied().filter(|k| *k != id).collect();
        for sub in subs {
            let Some(p) = self.participants.get(&sub) else { continue };
            let mut j = Jingle {
                action: Some(Action::SessionInfo),
                sid: p.sid.clone(),
                initiator: Some(p.jid.clone()),
                ..Jingle::default()
            };
            for i in &infos {
                for (name, f) in p.forwarded.iter().filter(|(_, f)| f.publisher == id) {
                    if i.name.as_ref().is_none_or(|n| *n == f.content) {
                        j.info.push(SessionInfo { kind: i.kind.clone(), name: Some(name.clone()) });
                    }
                }
            }
            if !j.info.is_empty() {
                let (from, to) = (p.focus_jid.clone(), p.jid.clone());
                out.push(Output::Send(self.iq_set(&from, &to, j.to_element())));
            }
        }
    }

    /// Remove a participant; with a `reason`, the focus ends its session too.
    fn leave(&mut self, id: ParticipantId, reason: Option<&str>, out: &mut Outs) {
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
        if let Some(r) = reason {
            let j = Jingle {
                action: Some(Action::SessionTerminate),
                sid: p.sid.clone(),
                reason: Some(r.into()),
                ..Jingle::default()
            };
            out.push(Output::Send(self.iq_set(&p.focus_jid, &p.jid, j.to_element())));
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

/// Names of the form `p<digits>r<digits>` are the ones the focus gives forwarded streams.
fn is_focus_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('p') else { return false };
    match rest.split_once('r') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// A session-initiate's contents, checked: one BUNDLE transport with credentials and a
/// fingerprint, and an accepted description per content.
struct Offer {
    ufrag: String,
    pwd: String,
    fingerprint: crate::jingle::Fingerprint,
    candidates: Vec<String>,
    contents: Vec<(Content, RtpDescription)>,
}

impl Offer {
    fn from_contents(contents: &[Content]) -> Result<Offer, String> {
        let t = contents
            .iter()
            .filter_map(|c| c.transport.as_ref())
            .find(|t| t.ufrag.is_some() && t.pwd.is_some() && t.fingerprint.is_some())
            .ok_or(
                "the offer needs an ICE-UDP transport with ufrag, pwd and a DTLS fingerprint (XEP-0176, XEP-0320)",
            )?;
        let mut candidates: Vec<String> = Vec::new();
        for c in contents.iter().filter_map(|c| c.transport.as_ref()).flat_map(|t| &t.candidates) {
            let line = c.to_sdp();
            if c.component == 1 && !candidates.contains(&line) {
                candidates.push(line);
            }
        }
        let mut accepted = Vec::new();
        for c in contents {
            if is_focus_name(&c.name) {
                return Err(format!("content name {} is reserved for streams the focus adds", c.name));
            }
            let Some(d) = &c.description else { continue };
            accepted.push((c.clone(), negotiate::accept_description(d).map_err(|e| e.0)?));
        }
        if accepted.is_empty() {
            return Err("the offer has no RTP content".into());
        }
        Ok(Offer {
            ufrag: t.ufrag.clone().unwrap_or_default(),
            pwd: t.pwd.clone().unwrap_or_default(),
            fingerprint: t.fingerprint.clone().ok_or("no fingerprint")?,
            candidates,
            contents: accepted,
        })
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
