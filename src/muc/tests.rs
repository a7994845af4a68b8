//! Unit tests of the sans-IO room core: stanzas in, [`Output`] out, no sockets or store.

use jid::BareJid;
use minidom::Element;
use std::sync::Arc;

use super::affiliation::{Affiliation, Role};
use super::config::RoomConfig;
use super::ns;
use super::room::{Limits, Output, Room};
use crate::xml::ns as xns;

pub(super) const ROOM: &str = "room@conference.localhost";

pub(super) fn new_room() -> Room {
    let mut n = 0u64;
    Room::new(
        BareJid::new(ROOM).unwrap(),
        RoomConfig::default(),
        Limits { max_occupants: 100, max_history: 50, service_full: Default::default() },
        Arc::from(&b"test secret"[..]),
        Box::new(move || {
            n += 1;
            n
        }),
    )
}

pub(super) fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

pub(super) fn send(room: &mut Room, xml: &str) -> Output {
    let mut out = Output::default();
    room.handle(parse(xml), 1_000_000, &mut out);
    out
}

pub(super) fn join_xml(who: &str, nick: &str, extra: &str) -> String {
    format!(
        "<presence xmlns='jabber:client' from='{who}' to='{ROOM}/{nick}'><x xmlns='{}'>{extra}</x></presence>",
        ns::MUC
    )
}

pub(super) fn join(room: &mut Room, who: &str, nick: &str) -> Output {
    send(room, &join_xml(who, nick, ""))
}

/// A room created by alice@x/a (nick "alice") and unlocked as an instant room.
pub(super) fn open_room() -> Room {
    let mut room = new_room();
    join(&mut room, "alice@x/a", "alice");
    let out = send(
        &mut room,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='c' from='alice@x/a' to='{ROOM}'><query xmlns='{}'><x xmlns='jabber:x:data' type='submit'/></query></iq>",
            ns::MUC_OWNER
        ),
    );
    assert!(out.sends.iter().any(|(_, e)| e.attr("type") == Some("result")));
    room
}

pub(super) fn to<'a>(out: &'a Output, jid: &str) -> Vec<&'a Element> {
    out.sends.iter().filter(|(j, _)| j.as_str() == jid).map(|(_, e)| e).collect()
}

/// The error condition of the (only) error sent to `jid`.
pub(super) fn error_of(out: &Output, jid: &str) -> Option<String> {
    to(out, jid).into_iter().find(|e| e.attr("type") == Some("error")).and_then(|e| {
        let err = e.get_child("error", xns::CLIENT)?;
        err.children().find(|c| c.ns() == xns::STANZAS_ERR && c.name() != "text").map(|c| c.name().to_string())
    })
}

pub(super) fn codes(p: &Element) -> Vec<u16> {
    p.get_child("x", ns::MUC_USER)
        .map(|x| x.children().filter(|c| c.name() == "status").filter_map(|c| c.attr("code")?.parse().ok()).collect())
        .unwrap_or_default()
}

pub(super) fn item(p: &Element) -> &Element {
    p.get_child("x", ns::MUC_USER).and_then(|x| x.get_child("item", ns::MUC_USER)).expect("an item")
}

pub(super) fn admin(room: &mut Room, from: &str, items: &str) -> Output {
    send(
        room,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='a' from='{from}' to='{ROOM}'><query xmlns='{}'>{items}</query></iq>",
            ns::MUC_ADMIN
        ),
    )
}

#[test]
fn creating_a_room_gives_201_and_locks_it_until_configured() {
    let mut room = new_room();
    let out = join(&mut room, "alice@x/a", "alice");
    let mine = to(&out, "alice@x/a");
    let self_presence = mine.iter().find(|e| e.name() == "presence").unwrap();
    assert_eq!(codes(self_presence), vec![110, 201]);
    assert_eq!(item(self_presence).attr("affiliation"), Some("owner"));
    assert_eq!(item(self_presence).attr("role"), Some("moderator"));
    // The subject comes last, even when empty (§7.2.16).
    assert!(mine.last().unwrap().has_child("subject", xns::CLIENT));
    let out = join(&mut room, "bob@x/b", "bob");
    assert_eq!(error_of(&out, "bob@x/b").as_deref(), Some("item-not-found"));
    let mut room = open_room();
    let out = join(&mut room, "bob@x/b", "bob");
    assert!(error_of(&out, "bob@x/b").is_none());
    assert_eq!(to(&out, "alice@x/a").len(), 1, "alice hears of bob once");
}

#[test]
fn join_refusals_carry_the_xep_errors() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    assert_eq!(error_of(&join(&mut room, "carol@x/c", "bob"), "carol@x/c").as_deref(), Some("conflict"));
    let out = send(&mut room, &format!("<presence xmlns='jabber:client' from='carol@x/c' to='{ROOM}'/>"));
    assert_eq!(error_of(&out, "carol@x/c").as_deref(), Some("jid-malformed"));

    room.config.members_only = true;
    assert_eq!(error_of(&join(&mut room, "carol@x/c", "carol"), "carol@x/c").as_deref(), Some("registration-required"));
    room.config.members_only = false;

    room.config.password = "secret".into();
    assert_eq!(error_of(&join(&mut room, "carol@x/c", "carol"), "carol@x/c").as_deref(), Some("not-authorized"));
    let ok = send(&mut room, &join_xml("carol@x/c", "carol", "<password>secret</password>"));
    assert!(error_of(&ok, "carol@x/c").is_none());
    room.config.password.clear();

    admin(&mut room, "alice@x/a", "<item affiliation='outcast' jid='dave@x'/>");
    assert_eq!(error_of(&join(&mut room, "dave@x/d", "dave"), "dave@x/d").as_deref(), Some("forbidden"));

    room.config.max_users = 3;
    let out = join(&mut room, "erin@x/e", "erin");
    assert_eq!(error_of(&out, "erin@x/e").as_deref(), Some("service-unavailable"));
}

#[test]
fn semi_anonymous_rooms_show_jids_to_moderators_only() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let out = join(&mut room, "carol@x/c", "carol");
    let to_alice = to(&out, "alice@x/a");
    let to_bob = to(&out, "bob@x/b");
    assert_eq!(item(to_alice[0]).attr("jid"), Some("carol@x/c"));
    assert_eq!(item(to_bob[0]).attr("jid"), None);
    let self_presence = to(&out, "carol@x/c").into_iter().find(|e| codes(e).contains(&110)).unwrap();
    assert_eq!(item(self_presence).attr("jid"), Some("carol@x/c"));
    assert!(self_presence.get_child("occupant-id", ns::OCCUPANT_ID).is_some());
}

#[test]
fn nick_change_sends_303_then_the_new_presence() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let out = join(&mut room, "bob@x/b", "robert");
    let seen = to(&out, "alice@x/a");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].attr("type"), Some("unavailable"));
    assert_eq!(seen[0].attr("from"), Some("room@conference.localhost/bob"));
    assert_eq!(codes(seen[0]), vec![303]);
    assert_eq!(item(seen[0]).attr("nick"), Some("robert"));
    assert_eq!(seen[1].attr("from"), Some("room@conference.localhost/robert"));
    let own = to(&out, "bob@x/b");
    assert_eq!(codes(own[0]), vec![110, 303]);
    // The unavailable a session sends on disconnect to the nick it first used is its exit.
    let out = send(
        &mut room,
        &format!("<presence xmlns='jabber:client' type='unavailable' from='bob@x/b' to='{ROOM}/bob'/>"),
    );
    assert!(!room.occupants.contains_key("robert"));
    assert_eq!(to(&out, "alice@x/a")[0].attr("from"), Some("room@conference.localhost/robert"));
}

#[test]
fn registration_reserves_a_nick_that_joins_enforce_with_210() {
    let mut room = open_room();
    let reg = |from: &str, nick: &str| {
        format!("<iq xmlns='jabber:client' type='set' id='r' from='{from}' to='{ROOM}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{}</value></field><field var='muc#register_roomnick'><value>{nick}</value></field></x></query></iq>", ns::MUC_REGISTER)
    };
    let out = send(&mut room, &reg("bob@x/b", "Bobby"));
    assert_eq!(to(&out, "bob@x/b")[0].attr("type"), Some("result"));
    assert!(out.save);
    assert_eq!(room.affiliation("bob@x"), Affiliation::Member);
    assert_eq!(error_of(&send(&mut room, &reg("carol@x/c", "Bobby")), "carol@x/c").as_deref(), Some("conflict"));
    assert_eq!(error_of(&join(&mut room, "carol@x/c", "Bobby"), "carol@x/c").as_deref(), Some("conflict"));
    let out = join(&mut room, "bob@x/b", "bob");
    let own = to(&out, "bob@x/b").into_iter().find(|e| codes(e).contains(&110)).unwrap();
    assert_eq!(own.attr("from"), Some("room@conference.localhost/Bobby"));
    assert_eq!(codes(own), vec![110, 210]);
    // Reserved-nick discovery (§7.12).
    let out = send(&mut room, &format!("<iq xmlns='jabber:client' type='get' id='n' from='bob@x/b2' to='{ROOM}'><query xmlns='{}' node='x-roomuser-item'/></iq>", xns::DISCO_INFO));
    let q = to(&out, "bob@x/b2")[0].get_child("query", xns::DISCO_INFO).unwrap();
    assert_eq!(q.get_child("identity", xns::DISCO_INFO).unwrap().attr("name"), Some("Bobby"));
}

#[test]
fn voice_requests_go_to_moderators_and_approval_grants_voice() {
    let mut room = open_room();
    room.config.moderated = true;
    join(&mut room, "bob@x/b", "bob");
    let request = format!("<message xmlns='jabber:client' from='bob@x/b' to='{ROOM}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{}</value></field><field var='muc#role'><value>participant</value></field></x></message>", ns::MUC_REQUEST);
    let out = send(&mut room, &request);
    let form = to(&out, "alice@x/a")[0];
    assert!(form.get_child("x", xns::DATA_FORMS).is_some());
    assert!(to(&out, "bob@x/b").is_empty());
    let approve = format!("<message xmlns='jabber:client' from='alice@x/a' to='{ROOM}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{}</value></field><field var='muc#role'><value>participant</value></field><field var='muc#roomnick'><value>bob</value></field><field var='muc#request_allow'><value>true</value></field></x></message>", ns::MUC_REQUEST);
    send(&mut room, &approve);
    assert_eq!(room.occupants["bob"].role, Role::Participant);
}

#[test]
fn groupchat_gets_stanza_id_and_is_history_for_later_joins() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let msg = |i: u32| {
        format!("<message xmlns='jabber:client' type='groupchat' from='bob@x/b' to='{ROOM}' id='m{i}'><body>hello {i}</body><stanza-id xmlns='urn:xmpp:sid:0' by='{ROOM}' id='forged'/></message>")
    };
    for i in 0..3 {
        let out = send(&mut room, &msg(i));
        let got = to(&out, "alice@x/a")[0];
        let sid = got.get_child("stanza-id", ns::SID).unwrap();
        assert_ne!(sid.attr("id"), Some("forged"));
        assert_eq!(got.children().filter(|c| c.name() == "stanza-id").count(), 1);
        assert_eq!(got.attr("from"), Some("room@conference.localhost/bob"));
    }
    let out = send(&mut room, &join_xml("carol@x/c", "carol", "<history maxstanzas='2'/>"));
    let bodies: Vec<String> =
        to(&out, "carol@x/c").iter().filter_map(|e| e.get_child("body", xns::CLIENT).map(|b| b.text())).collect();
    assert_eq!(bodies, ["hello 1", "hello 2"]);
    // Not an occupant: not-acceptable.
    let out = send(
        &mut room,
        &format!("<message xmlns='jabber:client' type='groupchat' from='eve@x/e' to='{ROOM}'><body>x</body></message>"),
    );
    assert_eq!(error_of(&out, "eve@x/e").as_deref(), Some("not-acceptable"));
}

#[test]
fn moderated_rooms_need_voice_and_subject_rules() {
    let mut room = open_room();
    room.config.moderated = true;
    join(&mut room, "bob@x/b", "bob");
    assert_eq!(room.occupants["bob"].role, Role::Visitor);
    let body =
        format!("<message xmlns='jabber:client' type='groupchat' from='bob@x/b' to='{ROOM}'><body>hi</body></message>");
    assert_eq!(error_of(&send(&mut room, &body), "bob@x/b").as_deref(), Some("forbidden"));
    let out = admin(&mut room, "alice@x/a", "<item nick='bob' role='participant'/>");
    assert_eq!(item(to(&out, "alice@x/a")[0]).attr("role"), Some("participant"));
    assert!(error_of(&send(&mut room, &body), "bob@x/b").is_none());
    let subject = format!(
        "<message xmlns='jabber:client' type='groupchat' from='bob@x/b' to='{ROOM}'><subject>new</subject></message>"
    );
    assert_eq!(error_of(&send(&mut room, &subject), "bob@x/b").as_deref(), Some("forbidden"));
    room.config.change_subject = true;
    let out = send(&mut room, &subject);
    assert!(out.save);
    assert_eq!(room.subject.text, "new");
}

#[test]
fn role_and_affiliation_permissions() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    join(&mut room, "carol@x/c", "carol");
    // A participant cannot kick.
    let out = admin(&mut room, "bob@x/b", "<item nick='carol' role='none'/>");
    assert_eq!(error_of(&out, "bob@x/b").as_deref(), Some("forbidden"));
    // An admin grants membership but not ownership, and cannot touch the owner.
    admin(&mut room, "alice@x/a", "<item affiliation='admin' jid='bob@x'/>");
    assert_eq!(room.affiliation("bob@x"), Affiliation::Admin);
    assert_eq!(room.occupants["bob"].role, Role::Moderator);
    let out = admin(&mut room, "bob@x/b", "<item affiliation='owner' jid='carol@x'/>");
    assert_eq!(error_of(&out, "bob@x/b").as_deref(), Some("forbidden"));
    let out = admin(&mut room, "bob@x/b", "<item affiliation='none' jid='alice@x'/>");
    assert_eq!(error_of(&out, "bob@x/b").as_deref(), Some("not-allowed"));
    // A moderator cannot kick an owner.
    let out = admin(&mut room, "bob@x/b", "<item nick='alice' role='none'/>");
    assert_eq!(error_of(&out, "bob@x/b").as_deref(), Some("not-allowed"));
    // The last owner stays.
    let out = admin(&mut room, "alice@x/a", "<item affiliation='member' jid='alice@x'/>");
    assert_eq!(error_of(&out, "alice@x/a").as_deref(), Some("conflict"));
    // Kick: 307 with actor and reason, to everyone, 110 for the kicked.
    let out = admin(&mut room, "bob@x/b", "<item nick='carol' role='none'><reason>spam</reason></item>");
    let kicked = to(&out, "carol@x/c")[0];
    assert_eq!(codes(kicked), vec![110, 307]);
    assert_eq!(codes(to(&out, "alice@x/a")[0]), vec![307]);
    assert_eq!(item(kicked).get_child("reason", ns::MUC_USER).unwrap().text(), "spam");
    assert!(!room.occupants.contains_key("carol"));
    // Ban of a present occupant: 301; the ban is saved.
    join(&mut room, "carol@x/c", "carol");
    let out = admin(&mut room, "alice@x/a", "<item affiliation='outcast' jid='carol@x'/>");
    assert!(out.save);
    assert_eq!(codes(to(&out, "carol@x/c")[0]), vec![110, 301]);
    // A non-admin cannot read the lists; an admin can.
    let get = |from: &str, what: &str| {
        format!("<iq xmlns='jabber:client' type='get' id='l' from='{from}' to='{ROOM}'><query xmlns='{}'><item affiliation='{what}'/></query></iq>", ns::MUC_ADMIN)
    };
    join(&mut room, "dave@x/d", "dave");
    assert_eq!(error_of(&send(&mut room, &get("dave@x/d", "outcast")), "dave@x/d").as_deref(), Some("forbidden"));
    let out = send(&mut room, &get("bob@x/b", "outcast"));
    let q = to(&out, "bob@x/b")[0].get_child("query", ns::MUC_ADMIN).unwrap();
    assert_eq!(q.children().next().unwrap().attr("jid"), Some("carol@x"));
}

#[test]
fn members_only_switch_removes_non_members_with_322() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    admin(&mut room, "alice@x/a", "<item affiliation='member' jid='carol@x'/>");
    join(&mut room, "carol@x/c", "carol");
    let out = send(
        &mut room,
        &format!("<iq xmlns='jabber:client' type='set' id='c' from='alice@x/a' to='{ROOM}'><query xmlns='{}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{}</value></field><field var='muc#roomconfig_membersonly'><value>1</value></field><field var='muc#roomconfig_whois'><value>anyone</value></field></x></query></iq>", ns::MUC_OWNER, ns::MUC_ROOMCONFIG),
    );
    assert_eq!(codes(to(&out, "bob@x/b")[0]), vec![110, 322]);
    assert!(!room.occupants.contains_key("bob"));
    assert!(room.occupants.contains_key("carol"));
    let notice = to(&out, "carol@x/c").into_iter().find(|e| e.name() == "message").unwrap();
    assert_eq!(codes(notice), vec![104, 172]);
}

#[test]
fn private_messages_follow_allowpm() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let pm = |nick: &str| {
        format!(
            "<message xmlns='jabber:client' type='chat' from='bob@x/b' to='{ROOM}/{nick}'><body>psst</body></message>"
        )
    };
    let out = send(&mut room, &pm("alice"));
    let got = to(&out, "alice@x/a")[0];
    assert_eq!(got.attr("from"), Some("room@conference.localhost/bob"));
    assert!(got.has_child("x", ns::MUC_USER));
    assert_eq!(error_of(&send(&mut room, &pm("nobody")), "bob@x/b").as_deref(), Some("item-not-found"));
    room.config.allow_pm = super::config::AllowPm::None;
    assert_eq!(error_of(&send(&mut room, &pm("alice")), "bob@x/b").as_deref(), Some("not-allowed"));
}

#[test]
fn destroy_tells_each_occupant_the_alternate_venue() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let out = send(
        &mut room,
        &format!("<iq xmlns='jabber:client' type='set' id='d' from='alice@x/a' to='{ROOM}'><query xmlns='{}'><destroy jid='new@conference.localhost'><reason>moved</reason></destroy></query></iq>", ns::MUC_OWNER),
    );
    assert!(out.destroyed);
    let p = to(&out, "bob@x/b")[0];
    let d = p.get_child("x", ns::MUC_USER).unwrap().get_child("destroy", ns::MUC_USER).unwrap();
    assert_eq!(d.attr("jid"), Some("new@conference.localhost"));
    assert!(room.is_finished());
}

#[test]
fn self_ping_and_leaving() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let ping = |from: &str, nick: &str| {
        format!("<iq xmlns='jabber:client' type='get' id='p' from='{from}' to='{ROOM}/{nick}'><ping xmlns='urn:xmpp:ping'/></iq>")
    };
    assert_eq!(to(&send(&mut room, &ping("bob@x/b", "bob")), "bob@x/b")[0].attr("type"), Some("result"));
    assert_eq!(error_of(&send(&mut room, &ping("eve@x/e", "bob")), "eve@x/e").as_deref(), Some("not-acceptable"));
    let out = send(
        &mut room,
        &format!("<presence xmlns='jabber:client' type='unavailable' from='bob@x/b' to='{ROOM}/bob'/>"),
    );
    assert_eq!(codes(to(&out, "bob@x/b")[0]), vec![110]);
    assert_eq!(to(&out, "alice@x/a")[0].attr("type"), Some("unavailable"));
    send(
        &mut room,
        &format!("<presence xmlns='jabber:client' type='unavailable' from='alice@x/a' to='{ROOM}/alice'/>"),
    );
    assert!(room.is_finished(), "a temporary room ends with its last occupant");
}

#[test]
fn moderation_replaces_history_with_a_tombstone() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let out = send(
        &mut room,
        &format!(
            "<message xmlns='jabber:client' type='groupchat' from='bob@x/b' to='{ROOM}'><body>bad</body></message>"
        ),
    );
    let sid = to(&out, "alice@x/a")[0].get_child("stanza-id", ns::SID).unwrap().attr("id").unwrap().to_string();
    let moderate = |from: &str| {
        format!("<iq xmlns='jabber:client' type='set' id='mod' from='{from}' to='{ROOM}'><moderate id='{sid}' xmlns='{}'><retract xmlns='{}'/><reason>rude</reason></moderate></iq>", ns::MODERATE, ns::RETRACT)
    };
    assert_eq!(error_of(&send(&mut room, &moderate("bob@x/b")), "bob@x/b").as_deref(), Some("forbidden"));
    let out = send(&mut room, &moderate("alice@x/a"));
    let notice = to(&out, "bob@x/b").into_iter().find(|e| e.name() == "message").unwrap();
    assert_eq!(notice.get_child("retract", ns::RETRACT).unwrap().attr("id"), Some(sid.as_str()));
    assert_eq!(out.tombstones.len(), 1);
    let out = join(&mut room, "carol@x/c", "carol");
    assert!(to(&out, "carol@x/c").iter().all(|e| !e.has_child("body", xns::CLIENT)));
}

#[test]
fn shutdown_tells_occupants_332() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let mut out = Output::default();
    room.shutdown(&mut out);
    for who in ["alice@x/a", "bob@x/b"] {
        let p = to(&out, who)[0];
        assert_eq!(p.attr("type"), Some("unavailable"));
        assert_eq!(codes(p), vec![110, 332]);
    }
}

#[test]
fn config_form_round_trip_and_logging_codes() {
    let mut config = RoomConfig { archiving: false, ..Default::default() };
    let form = config.to_form(&["alice@x".into()], &[], 50);
    let values = super::form::values(&form);
    assert_eq!(values["muc#roomconfig_roomowners"], ["alice@x"]);
    assert_eq!(values["muc#roomconfig_enablearchiving"], ["0"]);
    let submit = parse(&format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{}</value></field><field var='muc#roomconfig_enablearchiving'><value>1</value></field><field var='muc#roomconfig_historylength'><value>500</value></field><field var='muc#roomconfig_allowpm'><value>moderators</value></field></x>",
        ns::MUC_ROOMCONFIG
    ));
    let done = config.apply_form(&submit, 50).unwrap();
    assert_eq!(done.codes, vec![104, 170]);
    assert_eq!(config.history_length, 50, "capped by the service");
    assert_eq!(config.allow_pm, super::config::AllowPm::Moderators);
    let bad = parse(
        "<x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_whois'><value>everyone</value></field></x>",
    );
    assert_eq!(config.apply_form(&bad, 50).unwrap_err().condition, "bad-request");
    let no_secret = parse("<x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field></x>");
    assert_eq!(config.apply_form(&no_secret, 50).unwrap_err().condition, "not-acceptable");
}

#[test]
fn archive_pages_with_rsm() {
    use super::archive::{self, Archived, MamRequest};
    let store = crate::store::Store::temporary().unwrap();
    let room = BareJid::new(ROOM).unwrap();
    for i in 1..=7u64 {
        let m = format!(
            "<message xmlns='jabber:client' from='{ROOM}/n{}' type='groupchat'><body>m{i}</body></message>",
            i % 2
        );
        let a = Archived {
            id: i,
            at_ms: i * 1000,
            nick: format!("n{}", i % 2),
            real: "x@y".into(),
            occupant_id: "o".into(),
            xml: m,
            retracted: false,
        };
        archive::append(&store, "room", &a).unwrap();
    }
    let index = archive::Index::load(&store, "room");
    assert_eq!(index.len(), 7);
    let ask = |query: &str| {
        let iq = parse(&format!(
            "<iq xmlns='jabber:client' type='set' id='q' from='bob@x/b' to='{ROOM}'><query xmlns='{}' queryid='z'>{query}</query></iq>",
            ns::MAM
        ));
        let req = MamRequest { iq, requester: jid::FullJid::new("bob@x/b").unwrap(), whois: false };
        let sent = archive::answer(&store, &room, &index, &req);
        let (fin, items) = sent.split_last().unwrap();
        let bodies: Vec<String> = items
            .iter()
            .map(|(_, m)| {
                let r = m.get_child("result", ns::MAM).unwrap();
                let f = r.get_child("forwarded", ns::FORWARD).unwrap();
                f.get_child("message", xns::CLIENT).unwrap().get_child("body", xns::CLIENT).unwrap().text()
            })
            .collect();
        (fin.1.clone(), bodies)
    };
    let rsm = |inner: &str| format!("<set xmlns='{}'>{inner}</set>", ns::RSM);
    let (fin, bodies) = ask(&rsm("<max>3</max>"));
    assert_eq!(bodies, ["m1", "m2", "m3"]);
    let f = fin.get_child("fin", ns::MAM).unwrap();
    assert_eq!(f.attr("complete"), None);
    let set = f.get_child("set", ns::RSM).unwrap();
    assert_eq!(set.get_child("count", ns::RSM).unwrap().text(), "7");
    let last = set.get_child("last", ns::RSM).unwrap().text();
    let (fin, bodies) = ask(&rsm(&format!("<max>10</max><after>{last}</after>")));
    assert_eq!(bodies, ["m4", "m5", "m6", "m7"]);
    assert_eq!(fin.get_child("fin", ns::MAM).unwrap().attr("complete"), Some("true"));
    let (_, bodies) = ask(&rsm("<max>2</max><before/>"));
    assert_eq!(bodies, ["m6", "m7"]);
    let with = format!("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{}</value></field><field var='with'><value>{ROOM}/n0</value></field></x>", ns::MAM);
    assert_eq!(ask(&with).1, ["m2", "m4", "m6"]);
    let start =
        "<x xmlns='jabber:x:data' type='submit'><field var='start'><value>1970-01-01T00:00:05Z</value></field></x>";
    assert_eq!(ask(start).1, ["m5", "m6", "m7"]);
    let (err, bodies) = ask(&rsm("<after>ffff</after>"));
    assert!(bodies.is_empty());
    assert_eq!(err.attr("type"), Some("error"));
}

#[test]
fn affiliation_change_of_an_absent_user_is_told_to_moderators_only() {
    let mut room = open_room();
    join(&mut room, "bob@x/b", "bob");
    let out = admin(&mut room, "alice@x/a", "<item affiliation='outcast' jid='eve@x'/>");
    let note = to(&out, "alice@x/a").into_iter().find(|e| e.name() == "message").unwrap();
    assert_eq!(item(note).attr("jid"), Some("eve@x"));
    assert_eq!(codes(note), vec![301]);
    assert!(to(&out, "bob@x/b").is_empty(), "a participant in a semi-anonymous room sees no JIDs");
}

#[test]
fn presence_broadcast_hides_visitors_from_others() {
    let mut room = open_room();
    room.config.moderated = true;
    room.config.presence_broadcast = vec!["moderator".into(), "participant".into()];
    let out = join(&mut room, "bob@x/b", "bob");
    assert!(to(&out, "alice@x/a").is_empty(), "a visitor's join is not broadcast");
    assert!(to(&out, "bob@x/b").iter().any(|e| codes(e).contains(&110)), "but it hears of itself");
    let out = join(&mut room, "carol@x/c", "carol");
    let carol_sees: Vec<_> = to(&out, "carol@x/c").into_iter().filter(|e| e.name() == "presence").collect();
    assert_eq!(carol_sees.len(), 2, "alice and carol herself, not the visitor bob");
    // Voice makes bob a participant: now everyone sees him.
    let out = admin(&mut room, "alice@x/a", "<item nick='bob' role='participant'/>");
    assert_eq!(to(&out, "carol@x/c").len(), 1);
}
