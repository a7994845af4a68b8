//! The focus as a state machine: Jingle iqs in, SFU commands and stanzas out.

use minidom::Element;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::conference::{Conferences, FocusInfo, Membership, Output, RoomOccupant, Rooms};
use crate::jingle::{self, Action, Jingle, Media, Senders};
use crate::sfu::{Codec, Command, Event, PayloadSpec, TrackSpec};

/// The MUC rooms as the tests arrange them: room → session → occupant.
#[derive(Clone, Default)]
struct Table(Arc<Mutex<HashMap<String, HashMap<String, RoomOccupant>>>>);

impl Rooms for Table {
    fn membership(&self, call: &str, jid: &str) -> Membership {
        match self.0.lock().unwrap().get(call) {
            None => Membership::NoRoom,
            Some(room) => room.get(jid).cloned().map_or(Membership::Outsider, Membership::Occupant),
        }
    }
}

impl Table {
    fn room(&self, call: &str) {
        self.0.lock().unwrap().entry(call.to_string()).or_default();
    }

    fn enter(&self, call: &str, jid: &str, nick: &str, moderator: bool, sees_jids: bool) {
        let o = RoomOccupant { occupant_jid: format!("{call}@conference.localhost/{nick}"), moderator, sees_jids };
        self.0.lock().unwrap().entry(call.to_string()).or_default().insert(jid.to_string(), o);
    }

    fn leave(&self, call: &str, jid: &str) {
        if let Some(room) = self.0.lock().unwrap().get_mut(call) {
            room.remove(jid);
        }
    }
}

/// A focus whose "standup" room holds every test user as a participant of a
/// non-anonymous room (everyone sees real JIDs).
fn focus() -> Conferences {
    let table = Table::default();
    for who in [ALICE, BOB, CAROL, "a@localhost/1", "b@localhost/1", "c@localhost/1", "d@localhost/1"] {
        let nick = who.split('@').next().unwrap();
        table.enter("standup", who, nick, false, true);
    }
    focus_with(table)
}

fn focus_with(table: Table) -> Conferences {
    let info = FocusInfo {
        domain: "focus.localhost".into(),
        candidate: "192.0.2.1:10000".parse().unwrap(),
        tcp_candidate: None,
        fingerprint: ("sha-256".into(), vec![1, 2, 3]),
        max_participants: 3,
    };
    let mut n = 0u8;
    Conferences::new(
        info,
        Box::new(move |b: &mut [u8]| {
            b.iter_mut().for_each(|x| {
                n = n.wrapping_add(1);
                *x = n;
            })
        }),
        Box::new(table),
    )
}

fn iq(from: &str, to: &str, jingle: &str) -> Element {
    format!(r#"<iq xmlns="jabber:client" type="set" id="i1" from="{from}" to="{to}">{jingle}</iq>"#).parse().unwrap()
}

/// The offer of tests in `jingle::tests`, with its sid and SSRCs made unique per participant.
fn offer(sid: &str, base: u32) -> String {
    jingle::tests::OFFER
        .replace(r#"sid="s1""#, &format!(r#"sid="{sid}""#))
        .replace("1111", &(base + 1).to_string())
        .replace("2222", &(base + 2).to_string())
        .replace("2223", &(base + 3).to_string())
}

fn sent(out: &[Output]) -> Vec<(String, String, Option<Jingle>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(el) => Some((
                el.attr("to").unwrap_or_default().to_string(),
                el.attr("type").unwrap_or_default().to_string(),
                el.get_child("jingle", jingle::ns::JINGLE).map(|j| Jingle::parse(j).unwrap()),
            )),
            Output::Sfu(_) => None,
        })
        .collect()
}

fn commands(out: &[Output]) -> Vec<Command> {
    out.iter()
        .filter_map(|o| match o {
            Output::Sfu(c) => Some(c.clone()),
            Output::Send(_) => None,
        })
        .collect()
}

const ALICE: &str = "alice@localhost/web";
const BOB: &str = "bob@localhost/web";
const CALL: &str = "standup@focus.localhost";

#[test]
fn session_initiate_joins_the_sfu_and_is_accepted() {
    let mut f = focus();
    let out = f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    let stanzas = sent(&out);
    assert_eq!(stanzas[0].1, "result");
    let cmds = commands(&out);
    let Command::Join(spec) = &cmds[0] else { panic!("expected Join, got {cmds:?}") };
    assert_eq!(spec.call, "standup");
    assert_eq!((spec.remote_ufrag.as_str(), spec.remote_is_dtls_client), ("uf1", true));
    assert_eq!(spec.remote_fingerprint, ("sha-256".to_string(), vec![0xAB, 0xCD, 0xEF, 1]));
    assert_eq!(
        spec.payloads,
        vec![
            PayloadSpec { pt: 111, rtx: None, codec: Codec::Opus },
            PayloadSpec { pt: 96, rtx: Some(97), codec: Codec::Vp8 }
        ],
        "PCMU and H265 (and H265's RTX) are not forwarded"
    );
    assert_eq!(spec.extensions, vec![(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_string())]);
    assert_eq!(
        spec.tracks,
        vec![
            TrackSpec { mid: "0".into(), audio: true, ssrc: 1001, rtx: None, layers: vec![] },
            TrackSpec { mid: "1".into(), audio: false, ssrc: 1002, rtx: Some(1003), layers: vec![] }
        ]
    );
    assert_eq!(spec.candidates, vec!["candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"]);
    // The session-accept: same contents, the focus only receives on them, its transport.
    let (to, ty, Some(accept)) = &stanzas[1] else { panic!("no session-accept") };
    assert_eq!((to.as_str(), ty.as_str()), (ALICE, "set"));
    assert_eq!(accept.action, Some(Action::SessionAccept));
    assert_eq!(accept.bundle, vec!["0", "1"]);
    let video = &accept.contents[1];
    assert_eq!(video.senders, Senders::Initiator);
    let d = video.description.as_ref().unwrap();
    assert_eq!(d.payload_types.iter().map(|p| p.id).collect::<Vec<_>>(), vec![96, 97]);
    assert_eq!(d.payload_types[0].rtcp_fbs.len(), 2, "goog-lntf is dropped");
    let t = video.transport.as_ref().unwrap();
    assert_eq!(t.ufrag.as_ref().map(String::len), Some(6));
    assert_eq!(t.fingerprint.as_ref().unwrap().setup, "passive");
    assert_eq!(t.candidates[0].port, 10000);
    assert_eq!(f.call_size("standup"), 1);
}

#[test]
fn a_second_participant_gets_content_add_both_ways_and_accept_subscribes() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    let out = f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let adds: Vec<_> =
        sent(&out).into_iter().filter(|s| s.2.as_ref().is_some_and(|j| j.action == Some(Action::ContentAdd))).collect();
    assert_eq!(adds.len(), 2);
    let to_bob = adds.iter().find(|s| s.0 == BOB).and_then(|s| s.2.clone()).unwrap();
    assert_eq!(to_bob.sid, "b");
    assert_eq!(to_bob.users, vec!["xmpp:alice@localhost"]);
    assert_eq!(to_bob.contents.len(), 2);
    let video = &to_bob.contents[1];
    assert_eq!((video.senders, video.creator), (Senders::Responder, jingle::Creator::Responder));
    let d = video.description.as_ref().unwrap();
    assert_eq!(d.media, Media::Video);
    assert_eq!(d.sources.iter().map(|s| s.ssrc).collect::<Vec<_>>(), vec![1002, 1003]);
    assert_eq!(d.ssrc_groups[0].ssrcs, vec![1002, 1003]);
    assert!(d.sources[0].parameter("msid").is_some());
    assert!(adds.iter().any(|s| s.0 == ALICE && s.2.as_ref().unwrap().sid == "a"));
    // No forwarding before the client accepts.
    assert!(!commands(&out).iter().any(|c| matches!(c, Command::Subscribe { .. })));
    let names: String =
        to_bob.contents.iter().map(|c| format!(r#"<content creator="responder" name="{}"/>"#, c.name)).collect();
    let out = f.handle_iq(&iq(
        BOB,
        CALL,
        &format!(r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-accept" sid="b">{names}</jingle>"#),
    ));
    let subs: Vec<_> = commands(&out)
        .into_iter()
        .filter_map(|c| match c {
            Command::Subscribe { subscriber, publisher, ssrc, out_rtx, .. } => {
                Some((subscriber, publisher, ssrc, out_rtx))
            }
            _ => None,
        })
        .collect();
    assert_eq!(subs, vec![(2, 1, 1001, None), (2, 1, 1002, Some(1003))]);
}

#[test]
fn leaving_removes_the_streams_at_the_others() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let out = f.handle_iq(&iq(
        ALICE,
        CALL,
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-terminate" sid="a"><reason><success/></reason></jingle>"#,
    ));
    let removes: Vec<_> = sent(&out)
        .into_iter()
        .filter(|s| s.2.as_ref().is_some_and(|j| j.action == Some(Action::ContentRemove)))
        .collect();
    assert_eq!(removes.len(), 1);
    assert_eq!(removes[0].0, BOB);
    assert_eq!(removes[0].2.as_ref().unwrap().contents.len(), 2);
    assert!(commands(&out).contains(&Command::Leave { participant: 1 }));
    assert_eq!(f.call_size("standup"), 1);
    // The session is gone: further actions on it are unknown-session.
    let out = f.handle_iq(&iq(ALICE, CALL, r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="a"/>"#));
    let Output::Send(err) = &out[0] else { panic!() };
    assert_eq!(err.attr("type"), Some("error"));
    assert!(String::from(err).contains("unknown-session"));
}

#[test]
fn a_dead_network_ends_the_session_and_tells_the_others() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let out = f.handle_event(Event::Gone(2));
    let s = sent(&out);
    assert!(s.iter().any(|(to, _, j)| to == ALICE && j.as_ref().unwrap().action == Some(Action::ContentRemove)));
    let term = s.iter().find(|(to, _, _)| to == BOB).and_then(|x| x.2.clone()).unwrap();
    assert_eq!((term.action, term.reason.as_deref()), (Some(Action::SessionTerminate), Some("connectivity-error")));
}

#[test]
fn screen_share_is_a_content_add_forwarded_to_the_others() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let screen = r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-add" sid="a">
      <content creator="initiator" name="screen" senders="initiator">
        <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
          <payload-type id="96" name="VP8" clockrate="90000"/>
          <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="5555"/>
        </description>
      </content></jingle>"#;
    let out = f.handle_iq(&iq(ALICE, CALL, screen));
    assert!(commands(&out).contains(&Command::Publish {
        participant: 1,
        track: TrackSpec { mid: "screen".into(), audio: false, ssrc: 5555, rtx: None, layers: vec![] }
    }));
    let s = sent(&out);
    assert!(s
        .iter()
        .any(|(to, _, j)| to == ALICE && j.as_ref().is_some_and(|j| j.action == Some(Action::ContentAccept))));
    let add = s.iter().find(|(to, _, _)| to == BOB).and_then(|x| x.2.clone()).unwrap();
    assert_eq!(add.action, Some(Action::ContentAdd));
    assert_eq!(add.contents[0].description.as_ref().unwrap().sources[0].ssrc, 5555);
    // Stopping the share removes it at Bob.
    let stop = r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-remove" sid="a"><content creator="initiator" name="screen"/></jingle>"#;
    let out = f.handle_iq(&iq(ALICE, CALL, stop));
    assert!(commands(&out).contains(&Command::Unpublish { participant: 1, ssrc: 5555 }));
    assert!(sent(&out)
        .iter()
        .any(|(to, _, j)| to == BOB && j.as_ref().is_some_and(|j| j.action == Some(Action::ContentRemove))));
}

#[test]
fn mute_is_relayed_with_the_receivers_content_names() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    let out = f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let to_bob = sent(&out)
        .into_iter()
        .find(|s| s.0 == BOB && s.2.as_ref().is_some_and(|j| j.action == Some(Action::ContentAdd)))
        .unwrap();
    let audio_name = to_bob.2.unwrap().contents[0].name.clone();
    let mute = r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="a"><mute xmlns="urn:xmpp:jingle:apps:rtp:info:1" creator="initiator" name="0"/></jingle>"#;
    let out = f.handle_iq(&iq(ALICE, CALL, mute));
    let info = sent(&out).into_iter().find(|s| s.0 == BOB).and_then(|s| s.2).unwrap();
    assert_eq!(info.info, vec![jingle::SessionInfo { kind: "mute".into(), name: Some(audio_name) }]);
}

#[test]
fn refusals() {
    let mut f = focus();
    let err = |out: Vec<Output>| match &out[0] {
        Output::Send(el) if el.attr("type") == Some("error") => String::from(el),
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(err(f.handle_iq(&iq(ALICE, "focus.localhost", &offer("a", 1000)))).contains("item-not-found"));
    assert!(err(f.handle_iq(&iq(ALICE, "x@elsewhere", &offer("a", 1000)))).contains("item-not-found"));
    let audio_pcmu_only = r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="p">
      <content creator="initiator" name="0"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
      <payload-type id="0" name="PCMU" clockrate="8000"/></description>
      <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="u" pwd="p"><fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">AB</fingerprint></transport>
      </content></jingle>"#;
    assert!(err(f.handle_iq(&iq(ALICE, CALL, audio_pcmu_only))).contains("not-acceptable"));
    let no_transport = offer("t", 1).replace("ufrag=\"uf1\"", "");
    assert!(err(f.handle_iq(&iq(ALICE, CALL, &no_transport))).contains("not-acceptable"));
    let twice = offer("t2", 1).replace(r#"name="1" senders"#, r#"name="0" senders"#);
    assert!(err(f.handle_iq(&iq(ALICE, CALL, &twice))).contains("used twice"));
    // A full call.
    for (i, who) in ["a@localhost/1", "b@localhost/1", "c@localhost/1"].iter().enumerate() {
        f.handle_iq(&iq(who, CALL, &offer(&format!("s{i}"), 1000 * (i as u32 + 1))));
    }
    assert!(err(f.handle_iq(&iq("d@localhost/1", CALL, &offer("d", 9000)))).contains("resource-constraint"));
    // A second session-initiate with the same sid.
    assert!(err(f.handle_iq(&iq("a@localhost/1", CALL, &offer("s0", 1000)))).contains("bad-request"));
}

#[test]
fn disco_describes_the_focus_and_its_calls() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    let mut get = |to: &str, ns: &str| -> Element {
        let el: Element = format!(
            r#"<iq xmlns="jabber:client" type="get" id="d" from="{ALICE}" to="{to}"><query xmlns="{ns}"/></iq>"#
        )
        .parse()
        .unwrap();
        match f.handle_iq(&el).remove(0) {
            Output::Send(e) => e,
            o => panic!("{o:?}"),
        }
    };
    let info = String::from(&get(CALL, "http://jabber.org/protocol/disco#info"));
    assert!(
        info.contains("'conference'")
            && info.contains("'audio-video'")
            && info.contains("urn:xmpp:jingle:av-conferences:0"),
        "{info}"
    );
    assert!(info.contains("<field var='participants'><value>1</value></field>"), "{info}");
    let service = String::from(&get("focus.localhost", "http://jabber.org/protocol/disco#info"));
    assert!(!service.contains("participants"), "{service}");
    let items = String::from(&get("focus.localhost", "http://jabber.org/protocol/disco#items"));
    assert!(items.contains("standup@focus.localhost"), "{items}");
    let other = String::from(&get(CALL, "jabber:iq:version"));
    assert!(other.contains("service-unavailable"));
}

#[test]
fn camera_off_and_on_and_a_new_camera_travel_as_content_remove_and_add() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let actions_at_bob = |out: &[Output]| -> Vec<Action> {
        sent(out).into_iter().filter(|s| s.0 == BOB).filter_map(|s| s.2.and_then(|j| j.action)).collect()
    };
    // Camera off: content-modify senders="none" on content "1".
    let off = r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-modify" sid="a"><content creator="initiator" name="1" senders="none"/></jingle>"#;
    let out = f.handle_iq(&iq(ALICE, CALL, off));
    assert_eq!(actions_at_bob(&out), vec![Action::ContentRemove]);
    assert!(commands(&out).contains(&Command::Unpublish { participant: 1, ssrc: 1002 }));
    // Camera on again: the same stream comes back.
    let on = off.replace(r#"senders="none""#, r#"senders="both""#);
    let out = f.handle_iq(&iq(ALICE, CALL, &on));
    assert_eq!(actions_at_bob(&out), vec![Action::ContentAdd]);
    // Another camera, another SSRC (description-info): remove the old stream, add the new.
    let switch = r#"<jingle xmlns="urn:xmpp:jingle:1" action="description-info" sid="a"><content creator="initiator" name="1">
        <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="7777"/></description>
      </content></jingle>"#;
    let out = f.handle_iq(&iq(ALICE, CALL, switch));
    assert_eq!(actions_at_bob(&out), vec![Action::ContentRemove, Action::ContentAdd]);
    assert!(commands(&out).contains(&Command::Publish {
        participant: 1,
        track: TrackSpec { mid: "1".into(), audio: false, ssrc: 7777, rtx: None, layers: vec![] }
    }));
    // The same sources again change nothing.
    let out = f.handle_iq(&iq(ALICE, CALL, switch));
    assert_eq!(actions_at_bob(&out), Vec::<Action>::new());
    // Clients may not take the focus's own content names.
    let bad = r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-add" sid="a"><content creator="initiator" name="p2r9" senders="initiator">
        <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><payload-type id="96" name="VP8" clockrate="90000"/></description></content></jingle>"#;
    let Output::Send(e) = &f.handle_iq(&iq(ALICE, CALL, bad))[0] else { panic!() };
    assert!(String::from(e).contains("conflict"));
}

#[test]
fn colliding_ssrcs_are_renamed_towards_the_receiver() {
    let mut f = focus();
    // Bob publishes the same SSRCs as Alice (by chance, or on purpose).
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    let out = f.handle_iq(&iq(BOB, CALL, &offer("b", 1000)));
    let to_bob = sent(&out)
        .into_iter()
        .find(|s| s.0 == BOB && s.2.as_ref().is_some_and(|j| j.action == Some(Action::ContentAdd)))
        .unwrap()
        .2
        .unwrap();
    let ssrcs: Vec<u32> =
        to_bob.contents.iter().flat_map(|c| c.description.as_ref().unwrap().sources.iter().map(|s| s.ssrc)).collect();
    assert_eq!(ssrcs.len(), 3);
    assert!(ssrcs.iter().all(|s| ![1001, 1002, 1003].contains(s)), "{ssrcs:?}");
    let names: String =
        to_bob.contents.iter().map(|c| format!(r#"<content creator="responder" name="{}"/>"#, c.name)).collect();
    let out = f.handle_iq(&iq(
        BOB,
        CALL,
        &format!(r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-accept" sid="b">{names}</jingle>"#),
    ));
    let subs: Vec<(u32, u32)> = commands(&out)
        .into_iter()
        .filter_map(|c| match c {
            Command::Subscribe { ssrc, out_ssrc, .. } => Some((ssrc, out_ssrc)),
            _ => None,
        })
        .collect();
    assert_eq!(subs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1001, 1002], "the SFU still reads Alice's SSRCs");
    assert_eq!(subs.iter().map(|s| s.1).collect::<Vec<_>>(), ssrcs[..2].to_vec(), "and writes the announced ones");
}

#[test]
fn a_simulcast_publisher_is_one_stream_for_the_receivers() {
    let mut f = focus();
    let sim = offer("a", 1000).replace(
        r#"<ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="1002"/><source ssrc="1003"/></ssrc-group>"#,
        r#"<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1004"/><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1005"/>
           <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1006"/>
           <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="SIM"><source ssrc="1002"/><source ssrc="1004"/><source ssrc="1006"/></ssrc-group>
           <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="1002"/><source ssrc="1003"/></ssrc-group>
           <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="1004"/><source ssrc="1005"/></ssrc-group>"#,
    );
    let out = f.handle_iq(&iq(ALICE, CALL, &sim));
    let Command::Join(spec) = &commands(&out)[0] else { panic!() };
    assert_eq!(spec.tracks[1].layers, vec![(1002, Some(1003)), (1004, Some(1005)), (1006, None)]);
    let out = f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let to_bob = sent(&out)
        .into_iter()
        .find(|s| s.0 == BOB && s.2.as_ref().is_some_and(|j| j.action == Some(Action::ContentAdd)))
        .and_then(|s| s.2)
        .unwrap();
    let video = to_bob.contents[1].description.as_ref().unwrap();
    assert_eq!(video.sources.iter().map(|s| s.ssrc).collect::<Vec<_>>(), vec![1002, 1003], "one stream, no SIM group");
    assert!(video.ssrc_groups.iter().all(|g| g.semantics == "FID"));
}

/// Alice, Bob and Carol in one call; returns the content names Bob and Carol got for
/// Alice's audio.
fn three(f: &mut Conferences) -> (String, String) {
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    let out_b = f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let out_c = f.handle_iq(&iq(CAROL, CALL, &offer("c", 3000)));
    let audio_name = |out: &[Output], who: &str| {
        sent(out)
            .into_iter()
            .filter(|s| s.0 == who)
            .filter_map(|s| s.2)
            .find(|j| j.action == Some(Action::ContentAdd) && j.users == vec!["xmpp:alice@localhost"])
            .map(|j| j.contents[0].name.clone())
            .unwrap()
    };
    (audio_name(&out_b, BOB), audio_name(&out_c, CAROL))
}

const CAROL: &str = "carol@localhost/web";

#[test]
fn only_moderators_mute_others_and_the_muted_and_the_others_are_told() {
    let table = Table::default();
    for (who, nick) in [(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")] {
        table.enter("standup", who, nick, false, true);
    }
    let mut f = focus_with(table.clone());
    let (at_bob, at_carol) = three(&mut f);
    let mute = |name: &str| {
        format!(
            r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="b"><mute xmlns="urn:xmpp:jingle:apps:rtp:info:1" creator="responder" name="{name}"/></jingle>"#
        )
    };
    let out = f.handle_iq(&iq(BOB, CALL, &mute(&at_bob)));
    let Output::Send(e) = &out[0] else { panic!() };
    assert!(String::from(e).contains("forbidden"), "a participant, not a moderator");
    assert!(commands(&out).is_empty());

    // Bob is made moderator in the room: the focus asks at each action, not at join.
    table.enter("standup", BOB, "bob", true, true);
    let out = f.handle_iq(&iq(BOB, CALL, &mute(&at_bob)));
    assert!(commands(&out).contains(&Command::SetForwarding { publisher: 1, audio: true, enabled: false }));
    let s = sent(&out);
    let told = |who: &str| s.iter().find(|x| x.0 == who).and_then(|x| x.2.clone()).map(|j| j.info).unwrap_or_default();
    assert_eq!(told(ALICE), vec![jingle::SessionInfo { kind: "mute".into(), name: Some("0".into()) }]);
    assert_eq!(told(CAROL), vec![jingle::SessionInfo { kind: "mute".into(), name: Some(at_carol) }]);
}

#[test]
fn a_receiver_sets_its_simulcast_ceiling() {
    let mut f = focus();
    let (at_bob, _) = three(&mut f);
    let layer = format!(
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="b"><layer xmlns="urn:amphi:jingle:layer:0" name="{at_bob}" max="0"/><layer xmlns="urn:amphi:jingle:layer:0" name="nope" max="1"/></jingle>"#
    );
    let out = f.handle_iq(&iq(BOB, CALL, &layer));
    assert_eq!(commands(&out), vec![Command::PreferLayer { subscriber: 2, mid: at_bob, max: 0 }]);
}

#[test]
fn the_room_ends_the_call_or_removes_an_occupant() {
    let mut f = focus();
    three(&mut f);
    let out = f.remove_occupant("standup", "bob@localhost");
    let s = sent(&out);
    let term = s.iter().find(|x| x.0 == BOB).and_then(|x| x.2.clone()).unwrap();
    assert_eq!((term.action, term.reason.as_deref()), (Some(Action::SessionTerminate), Some("gone")));
    assert!(s.iter().any(|x| x.0 == ALICE && x.2.as_ref().is_some_and(|j| j.action == Some(Action::ContentRemove))));
    assert_eq!(f.call_size("standup"), 2);
    assert_eq!(reason_text(&out, BOB).as_deref(), Some("you are no longer in the room"));
    let out = f.end_call("standup", "the room was destroyed");
    assert_eq!(reason_text(&out, ALICE).as_deref(), Some("the room was destroyed"));
    let terms = sent(&out)
        .into_iter()
        .filter(|x| x.2.as_ref().is_some_and(|j| j.action == Some(Action::SessionTerminate)))
        .count();
    assert_eq!(terms, 2);
    assert_eq!(commands(&out).iter().filter(|c| matches!(c, Command::Leave { .. })).count(), 2);
    assert_eq!(f.call_size("standup"), 0);
}

#[test]
fn no_common_codec_no_stream_and_a_passive_client_makes_the_focus_active() {
    let mut f = focus();
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    // Bob offers only VP9 video: Alice's VP8 is not offered to him, her audio is.
    let vp9 =
        offer("b", 2000).replace(r#"name="VP8""#, r#"name="VP9""#).replace(r#"setup="actpass""#, r#"setup="passive""#);
    let out = f.handle_iq(&iq(BOB, CALL, &vp9));
    let s = sent(&out);
    let accept = s
        .iter()
        .find(|x| x.0 == BOB && x.2.as_ref().is_some_and(|j| j.action == Some(Action::SessionAccept)))
        .and_then(|x| x.2.clone())
        .unwrap();
    assert_eq!(accept.contents[0].transport.as_ref().unwrap().fingerprint.as_ref().unwrap().setup, "active");
    let Command::Join(spec) = commands(&out).into_iter().find(|c| matches!(c, Command::Join(_))).unwrap() else {
        panic!()
    };
    assert!(!spec.remote_is_dtls_client);
    let add = s
        .iter()
        .find(|x| x.0 == BOB && x.2.as_ref().is_some_and(|j| j.action == Some(Action::ContentAdd)))
        .and_then(|x| x.2.clone())
        .unwrap();
    assert_eq!(add.contents.len(), 1);
    assert_eq!(add.contents[0].description.as_ref().unwrap().media, Media::Audio);
}

/// The `<reason><text/>` of the session-terminate sent to `to`.
fn reason_text(out: &[Output], to: &str) -> Option<String> {
    out.iter().find_map(|o| match o {
        Output::Send(el) if el.attr("to") == Some(to) => el
            .get_child("jingle", jingle::ns::JINGLE)
            .filter(|j| j.attr("action") == Some("session-terminate"))
            .and_then(|j| j.get_child("reason", jingle::ns::JINGLE))
            .and_then(|r| r.get_child("text", jingle::ns::JINGLE))
            .map(Element::text),
        _ => None,
    })
}

fn error_text(out: &[Output]) -> String {
    match out {
        [Output::Send(el)] if el.attr("type") == Some("error") => String::from(el),
        other => panic!("expected one error and nothing else, got {other:?}"),
    }
}

#[test]
fn only_occupants_of_the_room_join_its_call() {
    let table = Table::default();
    table.room("standup");
    let mut f = focus_with(table.clone());
    // Not in the room: forbidden, and nothing reaches the SFU.
    let e = error_text(&f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000))));
    assert!(e.contains("forbidden") && e.contains("join the room standup first"), "{e}");
    // No such room.
    let e = error_text(&f.handle_iq(&iq(ALICE, "nowhere@focus.localhost", &offer("a", 1000))));
    assert!(e.contains("item-not-found") && e.contains("no room nowhere"), "{e}");
    // Another device of an occupant's account is not in the room.
    table.enter("standup", ALICE, "alice", false, false);
    let e = error_text(&f.handle_iq(&iq("alice@localhost/phone", CALL, &offer("a", 1000))));
    assert!(e.contains("forbidden"), "{e}");
    // In the room (the call's name is case-insensitive, as the room's is).
    let out = f.handle_iq(&iq(ALICE, "StandUp@focus.localhost", &offer("a", 1000)));
    assert!(matches!(commands(&out)[..], [Command::Join(ref spec)] if spec.call == "standup"));
    assert_eq!(f.call_size("standup"), 1);
}

#[test]
fn in_a_semi_anonymous_room_streams_are_named_by_occupant_jid() {
    let table = Table::default();
    table.enter("standup", ALICE, "alice", true, true); // a moderator: sees real JIDs
    table.enter("standup", BOB, "bob the builder", false, false);
    table.enter("standup", CAROL, "carol", false, false);
    let mut f = focus_with(table.clone());
    f.handle_iq(&iq(ALICE, CALL, &offer("a", 1000)));
    let out = f.handle_iq(&iq(BOB, CALL, &offer("b", 2000)));
    let users_at = |out: &[Output], who: &str| {
        sent(out)
            .into_iter()
            .filter(|s| s.0 == who)
            .filter_map(|s| s.2)
            .find(|j| j.action == Some(Action::ContentAdd))
            .map(|j| j.users)
            .unwrap()
    };
    assert_eq!(users_at(&out, BOB), vec!["xmpp:standup@conference.localhost/alice"]);
    assert_eq!(users_at(&out, ALICE), vec!["xmpp:bob@localhost"], "a moderator sees the real JID");
    // A publisher the room no longer knows (leaving) is not named at all.
    table.leave("standup", BOB);
    let out = f.handle_iq(&iq(CAROL, CALL, &offer("c", 3000)));
    let at_carol: Vec<Vec<String>> = sent(&out)
        .into_iter()
        .filter(|s| s.0 == CAROL)
        .filter_map(|s| s.2)
        .filter(|j| j.action == Some(Action::ContentAdd))
        .map(|j| j.users)
        .collect();
    assert_eq!(at_carol, vec![vec!["xmpp:standup@conference.localhost/alice".to_string()], vec![]]);
    // A nick with characters a URI does not allow is percent-encoded (RFC 5122).
    table.enter("standup", BOB, "bob the/builder?", false, false);
    let screen = r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-add" sid="b">
      <content creator="initiator" name="screen" senders="initiator">
        <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
          <payload-type id="96" name="VP8" clockrate="90000"/>
          <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="5555"/>
        </description>
      </content></jingle>"#;
    let out = f.handle_iq(&iq(BOB, CALL, screen));
    assert_eq!(users_at(&out, CAROL), vec!["xmpp:standup@conference.localhost/bob%20the%2Fbuilder%3F"]);
}

/// An ad-hoc command iq (XEP-0050) from `from` to the call.
fn command(from: &str, attrs: &str) -> Element {
    format!(
        r#"<iq xmlns="jabber:client" type="set" id="c1" from="{from}" to="{CALL}"><command xmlns="http://jabber.org/protocol/commands" node="end-call" {attrs}/></iq>"#
    )
    .parse()
    .unwrap()
}

#[test]
fn a_moderator_ends_the_call_for_everyone_and_the_room_stays() {
    let table = Table::default();
    table.enter("standup", ALICE, "alice", true, true);
    table.enter("standup", BOB, "bob", false, true);
    table.enter("standup", CAROL, "carol", false, true);
    table.enter("standup", "dave@localhost/web", "dave", false, true);
    let mut f = focus_with(table.clone());
    three(&mut f);

    // Not a moderator, or not in the room: forbidden, nothing happens.
    for who in [BOB, "eve@localhost/web"] {
        let e = error_text(&f.handle_iq(&command(who, r#"action="execute""#)));
        assert!(e.contains("forbidden") && e.contains("only the moderators of room standup"), "{e}");
        let e = error_text(&f.handle_iq(&command(who, r#"action="complete" sessionid="x""#)));
        assert!(e.contains("forbidden"), "{e}");
    }
    assert_eq!(f.call_size("standup"), 3);

    // A moderator: first a confirmation form, then the end.
    let out = f.handle_iq(&command(ALICE, r#"action="execute""#));
    let [Output::Send(form)] = &out[..] else { panic!("{out:?}") };
    let c = form.get_child("command", "http://jabber.org/protocol/commands").unwrap();
    assert_eq!((form.attr("type"), c.attr("status")), (Some("result"), Some("executing")));
    assert!(String::from(form).contains("for its 3 participant(s)"), "{}", String::from(form));
    let session = c.attr("sessionid").unwrap().to_string();
    assert_eq!(f.call_size("standup"), 3, "asking is not ending");

    let out = f.handle_iq(&command(ALICE, &format!(r#"action="complete" sessionid="{session}""#)));
    let Output::Send(done) = &out[0] else { panic!() };
    assert!(String::from(done).contains("status='completed'"), "{}", String::from(done));
    let terms: Vec<String> = sent(&out)
        .into_iter()
        .filter(|x| x.2.as_ref().is_some_and(|j| j.action == Some(Action::SessionTerminate)))
        .map(|x| x.0)
        .collect();
    assert_eq!(terms, [ALICE, BOB, CAROL]);
    assert_eq!(reason_text(&out, BOB).as_deref(), Some("the moderator ended the call"));
    let marker = out.iter().find_map(|o| match o {
        Output::Send(el) if el.attr("to") == Some(CAROL) => Some(String::from(el)),
        _ => None,
    });
    assert!(marker.unwrap().contains("ended-by-moderator"));
    let actions: Vec<Action> = sent(&out).into_iter().filter_map(|x| x.2.and_then(|j| j.action)).collect();
    assert!(!actions.contains(&Action::ContentRemove), "everyone goes: no content-remove among them");
    assert_eq!(commands(&out).iter().filter(|c| matches!(c, Command::Leave { .. })).count(), 3);
    assert_eq!(f.call_size("standup"), 0);

    // The room stays, so its call can start again.
    let out = f.handle_iq(&iq("dave@localhost/web", CALL, &offer("d", 4000)));
    assert!(matches!(commands(&out)[..], [Command::Join(_)]));
    // Cancel, and unknown actions.
    let out = f.handle_iq(&command(ALICE, r#"action="cancel" sessionid="s""#));
    let Output::Send(canceled) = &out[0] else { panic!("{out:?}") };
    assert!(String::from(canceled).contains("status='canceled'"));
    assert!(error_text(&f.handle_iq(&command(ALICE, r#"action="next" sessionid="s""#))).contains("bad-action"));
    assert_eq!(f.call_size("standup"), 1);
}

#[test]
fn the_end_call_command_is_listed_for_moderators_only() {
    let table = Table::default();
    table.enter("standup", ALICE, "alice", true, true);
    table.enter("standup", BOB, "bob", false, true);
    let mut f = focus_with(table);
    let mut items = |from: &str| -> String {
        let el: Element = format!(
            r#"<iq xmlns="jabber:client" type="get" id="d" from="{from}" to="{CALL}"><query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands"/></iq>"#
        )
        .parse()
        .unwrap();
        let Output::Send(e) = f.handle_iq(&el).remove(0) else { panic!() };
        String::from(&e)
    };
    assert!(items(ALICE).contains("node='end-call'"), "{}", items(ALICE));
    assert!(!items(BOB).contains("end-call"));
    let info: Element = format!(
        r#"<iq xmlns="jabber:client" type="get" id="d" from="{BOB}" to="{CALL}"><query xmlns="http://jabber.org/protocol/disco#info" node="end-call"/></iq>"#
    )
    .parse()
    .unwrap();
    let Output::Send(e) = f.handle_iq(&info).remove(0) else { panic!() };
    assert!(String::from(&e).contains("command-node"));
}
