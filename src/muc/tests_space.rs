//! Unit tests of space-bound rooms (`space.rs`): the decision, the form, and joins parked
//! for the directory and admitted by `Room::admit`, with no directory and no sockets.

use jid::FullJid;
use minidom::Element;
use std::collections::BTreeMap;

use super::affiliation::Affiliation;
use super::config::RoomConfig;
use super::ns;
use super::persist::PersistedRoom;
use super::room::{Output, Room};
use super::space::{Answer, Profile, Space, SpaceRole, Verdict};
use super::tests::{admin, codes, error_of, item, join, open_room, send, to, ROOM};
use crate::auth::DirectoryEntry;
use crate::xml::ElementExt;

fn entry(groups: &[&str], profile: &[(&str, &str)]) -> DirectoryEntry {
    let mut p: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (a, v) in profile {
        p.entry(a.to_string()).or_default().push(v.to_string());
    }
    DirectoryEntry {
        dn: "uid=u,ou=people,dc=example,dc=org".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        group_dns: groups.iter().map(|g| format!("cn={g},ou=groups,dc=example,dc=org")).collect(),
        profile: p,
        from_ldap: true,
        ..Default::default()
    }
}

fn space(groups: &[&str], profiles: &[&str], members: &[&str]) -> Space {
    Space {
        groups: groups.iter().map(|g| g.to_string()).collect(),
        profiles: profiles.iter().map(|p| Profile::parse(p).unwrap()).collect(),
        members: members.iter().map(|m| m.to_string()).collect(),
        role: SpaceRole::Moderator,
        ..Default::default()
    }
}

/// Submit the owner form with these fields, as alice (the owner).
fn configure(room: &mut Room, fields: &[(&str, &[&str])]) -> Output {
    let mut x = format!("<field var='FORM_TYPE'><value>{}</value></field>", ns::MUC_ROOMCONFIG);
    for (var, values) in fields {
        x.push_str(&format!("<field var='{var}'>"));
        for v in *values {
            x.push_str(&format!("<value>{v}</value>"));
        }
        x.push_str("</field>");
    }
    send(
        room,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='cfg' from='alice@x/a' to='{ROOM}'><query xmlns='{}'><x xmlns='jabber:x:data' type='submit'>{x}</x></query></iq>",
            ns::MUC_OWNER
        ),
    )
}

/// A room owned by alice@x, bound to the group "agents".
fn bound_room() -> Room {
    let mut room = open_room();
    room.local_domain = "x".into();
    let out = configure(&mut room, &[("amphi#space_groups", &["agents"])]);
    assert!(out.sends.iter().any(|(_, e)| e.attr("type") == Some("result")));
    assert!(room.config.members_only, "binding a room makes it members-only");
    room
}

fn full(s: &str) -> FullJid {
    FullJid::new(s).unwrap()
}

fn admit(room: &mut Room, who: &str, answer: Answer) -> Output {
    let mut out = Output::default();
    room.admit(&full(who), answer, 1_000_000, &mut out);
    out
}

fn self_presence<'a>(out: &'a Output, who: &str) -> &'a Element {
    to(out, who).into_iter().find(|e| e.name() == "presence" && codes(e).contains(&110)).expect("a self-presence")
}

#[test]
fn decision_by_group_dn_profile_and_member() {
    let s = space(&["Agents", "cn=Support\\2C EU,ou=groups,dc=example,dc=org"], &["title=Inspecteur"], &["m@x"]);
    let yes = Verdict::Qualifies;
    let no = Verdict::DoesNotQualify;
    assert_eq!(s.decide("u@x", &Answer::Entry(entry(&["agents"], &[]))), yes, "names compare without case");
    assert_eq!(s.decide("u@x", &Answer::Entry(entry(&["Support\\2C EU"], &[]))), yes, "or by DN");
    assert_eq!(s.decide("u@x", &Answer::Entry(entry(&["sales"], &[("title", "inspecteur")]))), yes);
    assert_eq!(s.decide("u@x", &Answer::Entry(entry(&["sales"], &[("title", "directeur")]))), no);
    assert_eq!(s.decide("u@x", &Answer::Entry(entry(&["sales"], &[("department", "inspecteur")]))), no);
    assert_eq!(s.decide("u@x", &Answer::NoEntry), no);
    assert_eq!(s.decide("u@x", &Answer::Unavailable), Verdict::Unknown);
    // Listed by name: no directory needed, even when it is down.
    assert_eq!(s.decide("m@x", &Answer::NoEntry), yes);
    assert_eq!(s.decide("m@x", &Answer::Unavailable), yes);
    // Guests, remote and unknown JIDs never qualify, listed or not.
    assert_eq!(s.decide("m@x", &Answer::NotLocal), no);
    assert_eq!(s.decide("u@x", &Answer::NotLocal), no);
    assert!(!Space::default().is_bound());
}

#[test]
fn form_fields_parse_validate_and_round_trip() {
    let s = Space::default();
    let groups = ["agents\nsales".to_string(), " agents ".into(), "".into()];
    let got = s.from_form(Some(&groups), None, None, Some("participant")).unwrap();
    assert_eq!(got.groups, ["agents", "sales"], "lines, trimmed, without duplicates");
    assert_eq!(got.role, SpaceRole::Participant);
    let bad_profile = ["title".to_string()];
    assert_eq!(s.from_form(None, Some(&bad_profile), None, None).unwrap_err().condition, "bad-request");
    let bad_jid = ["not a jid@@".to_string()];
    assert_eq!(s.from_form(None, None, Some(&bad_jid), None).unwrap_err().condition, "jid-malformed");
    assert_eq!(s.from_form(None, None, None, Some("owner")).unwrap_err().condition, "bad-request");
    let ok = s.from_form(None, None, Some(&["Bob@X".to_string()]), None).unwrap();
    assert_eq!(ok.members, ["bob@x"], "normalised");
    assert!(ok.check_members("x").is_ok());
    for m in ["guest-abc@x", "bob@elsewhere", "x"] {
        let sp = Space { members: vec![m.into()], ..Default::default() };
        assert_eq!(sp.check_members("x").unwrap_err().condition, "not-acceptable", "{m}");
    }
    // The owner form shows the binding and takes it back unchanged.
    let mut config =
        RoomConfig { space: space(&["agents"], &["departmentNumber=42"], &["bob@x"]), ..Default::default() };
    let form = config.to_form(&[], &[], 50);
    let vars: Vec<&str> = form.children().filter_map(|f| f.attr("var")).collect();
    for v in ["amphi#space_groups", "amphi#space_profiles", "amphi#space_members", "amphi#space_role"] {
        assert!(vars.contains(&v), "{v} in the form");
    }
    let before = config.clone();
    let mut submit = form.clone();
    submit.set("type", "submit");
    config.apply_form(&submit, 50).unwrap();
    assert_eq!(config.space, before.space);
    assert!(config.members_only);
}

#[test]
fn a_group_member_is_parked_then_enters_as_moderator_and_member() {
    let mut room = bound_room();
    let out = join(&mut room, "bob@x/b", "bob");
    assert_eq!(out.lookups, vec![full("bob@x/b")], "the shell is asked for bob's entry");
    assert!(to(&out, "bob@x/b").is_empty(), "nothing yet: the join waits");
    // A repeated join while waiting asks nothing more.
    assert!(join(&mut room, "bob@x/b", "bob").lookups.is_empty());
    let out = admit(&mut room, "bob@x/b", Answer::Entry(entry(&["agents"], &[])));
    let me = self_presence(&out, "bob@x/b");
    assert_eq!(item(me).attr("role"), Some("moderator"));
    assert_eq!(item(me).attr("affiliation"), Some("member"));
    assert!(out.save, "the membership is stored");
    assert!(room.config.space.granted.contains("bob@x"));
    // Standard clients see bob in the member list.
    let list = send(
        &mut room,
        &format!("<iq xmlns='jabber:client' type='get' id='l' from='alice@x/a' to='{ROOM}'><query xmlns='{}'><item affiliation='member'/></query></iq>", ns::MUC_ADMIN),
    );
    let q = to(&list, "alice@x/a")[0].get_child("query", ns::MUC_ADMIN).unwrap();
    assert_eq!(q.children().filter_map(|i| i.attr("jid")).collect::<Vec<_>>(), ["bob@x"]);
}

#[test]
fn a_non_member_is_refused_and_a_member_who_left_the_space_loses_the_membership() {
    let mut room = bound_room();
    join(&mut room, "carol@x/c", "carol");
    let out = admit(&mut room, "carol@x/c", Answer::Entry(entry(&["sales"], &[])));
    assert_eq!(error_of(&out, "carol@x/c").as_deref(), Some("registration-required"));
    assert!(room.affiliation("carol@x") == Affiliation::None && !room.occupants.contains_key("carol"));
    // bob qualified once, then left the group (or the owner narrowed the binding).
    join(&mut room, "bob@x/b", "bob");
    admit(&mut room, "bob@x/b", Answer::Entry(entry(&["agents"], &[])));
    send(&mut room, &format!("<presence xmlns='jabber:client' type='unavailable' from='bob@x/b' to='{ROOM}/bob'/>"));
    join(&mut room, "bob@x/b", "bob");
    let out = admit(&mut room, "bob@x/b", Answer::Entry(entry(&["sales"], &[])));
    assert_eq!(error_of(&out, "bob@x/b").as_deref(), Some("registration-required"));
    let text =
        to(&out, "bob@x/b")[0].get_child("error", crate::xml::ns::CLIENT).unwrap().children().last().unwrap().text();
    assert!(text.contains("réservé") && text.contains("reserved"), "{text}");
    assert_eq!(room.affiliation("bob@x"), Affiliation::None, "the materialised membership is dropped");
    assert!(out.save);
}

#[test]
fn narrowing_takes_effect_at_the_next_join() {
    let mut room = open_room();
    room.local_domain = "x".into();
    configure(&mut room, &[("amphi#space_groups", &["agents", "sales"])]);
    join(&mut room, "carol@x/c", "carol");
    assert!(error_of(&admit(&mut room, "carol@x/c", Answer::Entry(entry(&["sales"], &[]))), "carol@x/c").is_none());
    send(
        &mut room,
        &format!("<presence xmlns='jabber:client' type='unavailable' from='carol@x/c' to='{ROOM}/carol'/>"),
    );
    configure(&mut room, &[("amphi#space_groups", &["agents"])]);
    join(&mut room, "carol@x/c", "carol");
    let out = admit(&mut room, "carol@x/c", Answer::Entry(entry(&["sales"], &[])));
    assert_eq!(error_of(&out, "carol@x/c").as_deref(), Some("registration-required"));
}

#[test]
fn owners_admins_and_hand_added_members_keep_their_rights() {
    let mut room = bound_room();
    admin(&mut room, "alice@x/a", "<item affiliation='admin' jid='erin@x'/><item affiliation='member' jid='dave@x'/>");
    // The owner's and an admin's joins need no directory.
    assert!(join(&mut room, "alice@x/a2", "alice").lookups.is_empty());
    let out = join(&mut room, "erin@x/e", "erin");
    assert!(out.lookups.is_empty() && error_of(&out, "erin@x/e").is_none());
    // A member added by hand enters as an ordinary member when the space does not list
    // them, and even when the directory is down; the membership stays.
    join(&mut room, "dave@x/d", "dave");
    let out = admit(&mut room, "dave@x/d", Answer::Entry(entry(&["sales"], &[])));
    assert_eq!(item(self_presence(&out, "dave@x/d")).attr("role"), Some("participant"));
    assert_eq!(room.affiliation("dave@x"), Affiliation::Member);
    assert!(!room.config.space.granted.contains("dave@x"));
    send(&mut room, &format!("<presence xmlns='jabber:client' type='unavailable' from='dave@x/d' to='{ROOM}/dave'/>"));
    join(&mut room, "dave@x/d", "dave");
    assert!(error_of(&admit(&mut room, "dave@x/d", Answer::Unavailable), "dave@x/d").is_none());
}

#[test]
fn directory_down_gives_a_clear_error_and_keeps_the_membership() {
    let mut room = bound_room();
    join(&mut room, "bob@x/b", "bob");
    admit(&mut room, "bob@x/b", Answer::Entry(entry(&["agents"], &[])));
    send(&mut room, &format!("<presence xmlns='jabber:client' type='unavailable' from='bob@x/b' to='{ROOM}/bob'/>"));
    join(&mut room, "bob@x/b", "bob");
    let out = admit(&mut room, "bob@x/b", Answer::Unavailable);
    assert_eq!(error_of(&out, "bob@x/b").as_deref(), Some("service-unavailable"));
    assert_eq!(room.affiliation("bob@x"), Affiliation::Member, "not dropped on a guess");
}

#[test]
fn profiles_members_and_the_participant_role() {
    let mut room = open_room();
    room.local_domain = "x".into();
    let out = configure(
        &mut room,
        &[
            ("amphi#space_profiles", &["title=inspecteur"]),
            ("amphi#space_members", &["frank@x"]),
            ("amphi#space_role", &["participant"]),
        ],
    );
    assert!(error_of(&out, "alice@x/a").is_none());
    join(&mut room, "gina@x/g", "gina");
    let out = admit(&mut room, "gina@x/g", Answer::Entry(entry(&[], &[("title", "Inspecteur")])));
    assert_eq!(item(self_presence(&out, "gina@x/g")).attr("role"), Some("participant"));
    // An individual member enters without a lookup.
    let out = join(&mut room, "frank@x/f", "frank");
    assert!(out.lookups.is_empty());
    assert_eq!(item(self_presence(&out, "frank@x/f")).attr("affiliation"), Some("member"));
}

#[test]
fn guests_and_remote_jids_never_enter() {
    let mut room = bound_room();
    let out = configure(&mut room, &[("amphi#space_members", &["guest-abc@x"])]);
    assert_eq!(error_of(&out, "alice@x/a").as_deref(), Some("not-acceptable"));
    let out = configure(&mut room, &[("amphi#space_members", &["eve@elsewhere"])]);
    assert_eq!(error_of(&out, "alice@x/a").as_deref(), Some("not-acceptable"));
    assert!(room.config.space.members.is_empty(), "a refused form changes nothing");
    for who in ["guest-abc@x/w", "eve@elsewhere/e"] {
        let out = join(&mut room, who, "intruder");
        assert_eq!(out.lookups.len(), 1, "the shell is asked, and answers NotLocal");
        assert_eq!(error_of(&admit(&mut room, who, Answer::NotLocal), who).as_deref(), Some("registration-required"));
    }
}

#[test]
fn a_join_abandoned_while_waiting_is_forgotten() {
    let mut room = bound_room();
    join(&mut room, "bob@x/b", "bob");
    assert!(!room.awaiting.is_empty() && !room.is_finished(), "a waiting join keeps the room");
    send(&mut room, &format!("<presence xmlns='jabber:client' type='unavailable' from='bob@x/b' to='{ROOM}/bob'/>"));
    let out = admit(&mut room, "bob@x/b", Answer::Entry(entry(&["agents"], &[])));
    assert!(out.sends.is_empty() && !room.occupants.contains_key("bob"));
}

#[test]
fn unbinding_keeps_the_space_members_as_ordinary_members() {
    let mut room = bound_room();
    join(&mut room, "bob@x/b", "bob");
    admit(&mut room, "bob@x/b", Answer::Entry(entry(&["agents"], &[])));
    configure(&mut room, &[("amphi#space_groups", &[])]);
    assert!(!room.config.space.is_bound());
    assert_eq!(room.affiliation("bob@x"), Affiliation::Member);
    assert!(room.config.space.granted.is_empty());
}

#[test]
fn rooms_stored_before_spaces_load_unbound() {
    let old = r#"{"config":{"name":"old","members_only":false},"affiliations":{"a@x":{"affiliation":"owner"}},"subject":{"text":"","nick":""}}"#;
    let saved: PersistedRoom = serde_json::from_str(old).unwrap();
    assert!(!saved.config.space.is_bound());
    assert_eq!(saved.config.space.role, SpaceRole::Moderator);
    assert!(saved.config.space.granted.is_empty());
    // And a bound room survives the round trip.
    let mut room = bound_room();
    join(&mut room, "bob@x/b", "bob");
    admit(&mut room, "bob@x/b", Answer::Entry(entry(&["agents"], &[])));
    let back: PersistedRoom = serde_json::from_str(&serde_json::to_string(&room.snapshot()).unwrap()).unwrap();
    assert_eq!(back.config.space, room.config.space);
    assert!(back.config.space.granted.contains("bob@x"));
}
