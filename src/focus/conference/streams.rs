//! The streams of a call: what each participant sends (its own contents) and what the
//! focus forwards to it (content-add / content-remove, accepted with content-accept).

use minidom::Element;

use super::offer::is_focus_name;
use super::{error, negotiate, Conferences, Forwarded, Output, Outs, Publication};
use crate::error::StanzaError;
use crate::jingle::{Action, Content, Jingle};
use crate::sfu::{Command, ParticipantId};

impl Conferences {
    pub(super) fn publications(&self, id: ParticipantId) -> Vec<String> {
        self.participants
            .get(&id)
            .map(|p| p.publications.iter().map(|x| x.content.clone()).collect())
            .unwrap_or_default()
    }

    /// Send `to` a content-add for `publisher`'s contents `contents`.
    pub(super) fn offer_streams(
        &mut self,
        to: ParticipantId,
        publisher: ParticipantId,
        contents: &[String],
        out: &mut Outs,
    ) {
        if contents.is_empty() || to == publisher {
            return;
        }
        let owner = self.owner_entity(publisher, to);
        let Some(pubr) = self.participants.get(&publisher) else { return };
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
            users: owner.into_iter().collect(),
            ..Jingle::default()
        };
        for (x, (out_ssrc, out_rtx)) in pubs.into_iter().zip(ssrcs) {
            let name = format!("p{publisher}r{}", p.next_content);
            let msid = format!("amphi-{publisher} {}", x.content);
            let cname = format!("amphi-{publisher}");
            let content = negotiate::forwarded_content(
                &name,
                x.description.media,
                p.receive.get(&x.description.media),
                &x.description,
                out_ssrc,
                out_rtx,
                &msid,
                &cname,
                transport.clone(),
            );
            if content.description.as_ref().is_none_or(|d| d.payload_types.is_empty()) {
                // The receiver has no codec in common with the publisher for this stream.
                continue;
            }
            p.next_content += 1;
            j.contents.push(content);
            p.forwarded
                .insert(name, Forwarded { publisher, content: x.content.clone(), accepted: false, out_ssrc, out_rtx });
        }
        if j.contents.is_empty() {
            return;
        }
        j.bundle = j.contents.iter().map(|c| c.name.clone()).collect();
        let (from, to_jid) = (p.focus_jid.clone(), p.jid.clone());
        let iq = self.iq_set(&from, &to_jid, j.to_element());
        out.push(Output::Send(iq));
    }

    /// `wanted` if no stream of the session uses it yet, else a fresh random SSRC.
    pub(super) fn unused_ssrc(&mut self, wanted: u32, used: &mut Vec<u32>) -> u32 {
        let mut ssrc = wanted;
        while ssrc == 0 || used.contains(&ssrc) {
            let mut b = [0u8; 4];
            (self.random)(&mut b);
            ssrc = u32::from_be_bytes(b);
        }
        used.push(ssrc);
        ssrc
    }

    pub(super) fn content_accept(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
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
    pub(super) fn content_add(&mut self, iq: &Element, id: ParticipantId, jingle: Jingle) -> Outs {
        let mut accepted = Vec::new();
        let owned = self.participants.get(&id).map_or(0, |p| p.own.len());
        if owned + jingle.contents.len() > crate::jingle::limits::CONTENTS {
            let e = StanzaError::resource_constraint().with_text("too many contents in this session");
            return vec![error(iq, e, None)];
        }
        for (i, c) in jingle.contents.iter().enumerate() {
            let Some(d) = &c.description else { continue };
            let known = self.participants.get(&id).is_some_and(|p| p.own.contains_key(&c.name))
                || jingle.contents[..i].iter().any(|o| o.name == c.name);
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
    pub(super) fn start_publication(&mut self, id: ParticipantId, x: Publication, out: &mut Outs) {
        let Some(p) = self.participants.get_mut(&id) else { return };
        out.push(Output::Sfu(Command::Publish { participant: id, track: x.track.clone() }));
        let name = x.content.clone();
        p.publications.push(x);
        for other in self.calls.get(&p.call).cloned().unwrap_or_default() {
            self.offer_streams(other, id, std::slice::from_ref(&name), out);
        }
    }

    /// Stop forwarding a stream of `id`; the others get content-remove.
    pub(super) fn stop_publication(&mut self, id: ParticipantId, name: &str, out: &mut Outs) -> Option<Publication> {
        let p = self.participants.get_mut(&id)?;
        let i = p.publications.iter().position(|x| x.content == name)?;
        let x = p.publications.remove(i);
        out.push(Output::Sfu(Command::Unpublish { participant: id, ssrc: x.track.ssrc }));
        self.retract(id, std::slice::from_ref(&x.content), None, out);
        Some(x)
    }

    /// New sources on a participant's content (XEP-0339 in description-info), e.g. a camera
    /// switched to another device: a new SSRC is a new stream for the others.
    pub(super) fn description_info(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
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
    pub(super) fn content_modify(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
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

    pub(super) fn content_remove(&mut self, id: ParticipantId, jingle: &Jingle, out: &mut Outs) {
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
    pub(super) fn retract(
        &mut self,
        publisher: ParticipantId,
        contents: &[String],
        only: Option<ParticipantId>,
        out: &mut Outs,
    ) {
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
}
