//! Who may take part in a room's call, through the real server's client sockets: only the
//! room's occupants join it, only its moderators mute others, and leaving the room (or the
//! room's end) ends the call session. See xep/jingle-conferences.md, "Admission".

mod support;

use minidom::Element;
use support::{audio_offer as offer, signed_in, start, Client};

const JINGLE: &str = "urn:xmpp:jingle:1";
const ROOM: &str = "standup@conference.localhost";
const CALL: &str = "standup@focus.localhost";

fn jingle(el: &Element) -> Option<&Element> {
    el.get_child("jingle", JINGLE)
}

fn action(el: &Element) -> Option<String> {
    jingle(el).and_then(|j| j.attr("action")).map(str::to_string)
}

/// Enter the room as `nick`; the first to enter creates it and accepts the default
/// configuration (an instant room, unlocked for the others).
async fn enter(c: &mut Client, nick: &str, create: bool) {
    c.send(&format!("<presence to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
    let me = format!("{ROOM}/{nick}");
    c.expect(|e| e.name() == "presence" && e.attr("from") == Some(me.as_str())).await;
    if create {
        c.send(&format!(
            "<iq type='set' id='cfg' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ))
        .await;
        assert_eq!(c.expect(|e| e.attr("id") == Some("cfg")).await.attr("type"), Some("result"));
    }
}

/// Send a session-initiate and return the iq's answer.
async fn call(c: &mut Client, to: &str, sid: &str, ssrc: u32) -> Element {
    c.send(&format!("<iq type='set' id='init-{sid}' to='{to}'>{}</iq>", offer(sid, ssrc))).await;
    let id = format!("init-{sid}");
    c.expect(|e| e.attr("id") == Some(id.as_str())).await
}

/// Enter the room (see [`enter`]), then join its call with session `sid`, which the focus accepts.
async fn in_call(c: &mut Client, nick: &str, create: bool, sid: &str, ssrc: u32) {
    enter(c, nick, create).await;
    assert_eq!(call(c, CALL, sid, ssrc).await.attr("type"), Some("result"));
}

/// The content name and XEP-0298 user entity of the (first) stream a content-add brings.
fn added(el: &Element) -> (String, String) {
    let j = jingle(el).expect("a jingle element");
    let name = j.get_child("content", JINGLE).and_then(|c| c.attr("name")).unwrap_or_default();
    let entity = j
        .get_child("conference-info", "urn:xmpp:coin:1")
        .and_then(|ci| ci.get_child("users", "urn:xmpp:coin:1"))
        .and_then(|u| u.get_child("user", "urn:xmpp:coin:1"))
        .and_then(|u| u.attr("entity"))
        .unwrap_or_default();
    (name.to_string(), entity.to_string())
}

fn reason(el: &Element) -> (String, String) {
    let r = jingle(el).and_then(|j| j.get_child("reason", JINGLE)).expect("a reason");
    let condition = r.children().find(|c| c.name() != "text").map(|c| c.name().to_string()).unwrap_or_default();
    let text = r.get_child("text", JINGLE).map(Element::text).unwrap_or_default();
    (condition, text)
}

#[tokio::test]
async fn only_the_rooms_occupants_join_its_call() {
    let t = start("").await;
    let mut alice = signed_in(&t, "alice").await;
    let mut bob = signed_in(&t, "bob").await;

    let r = call(&mut alice, CALL, "early", 111).await;
    assert_eq!(r.attr("type"), Some("error"));
    assert!(String::from(&r).contains("item-not-found"), "no room, no call: {}", String::from(&r));

    enter(&mut alice, "alice", true).await;
    let r = call(&mut bob, CALL, "sb", 222).await;
    let text = String::from(&r);
    assert_eq!(r.attr("type"), Some("error"));
    assert!(text.contains("forbidden") && text.contains("join the room standup first"), "{text}");

    let r = call(&mut alice, CALL, "sa", 111).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    alice.expect(|e| action(e).as_deref() == Some("session-accept")).await;

    // Once in the room, bob may join too.
    enter(&mut bob, "bob", false).await;
    assert_eq!(call(&mut bob, CALL, "sb2", 222).await.attr("type"), Some("result"));
    bob.expect(|e| action(e).as_deref() == Some("session-accept")).await;
}

#[tokio::test]
async fn moderators_mute_others_and_the_room_ends_its_call() {
    let t = start("").await;
    let mut alice = signed_in(&t, "alice").await;
    let mut bob = signed_in(&t, "bob").await;
    in_call(&mut alice, "alice", true, "sa", 111).await; // the owner: a moderator
    in_call(&mut bob, "bob", false, "sb", 222).await; // a participant

    // The room is semi-anonymous: bob sees alice's stream under her occupant JID, alice
    // (a moderator) sees bob's real JID.
    let (at_bob, entity) = added(&bob.expect(|e| action(e).as_deref() == Some("content-add")).await);
    assert_eq!(entity, format!("xmpp:{ROOM}/alice"));
    let (at_alice, entity) = added(&alice.expect(|e| action(e).as_deref() == Some("content-add")).await);
    assert_eq!(entity, "xmpp:bob@localhost");

    let mute = |sid: &str, name: &str| {
        format!(
            "<iq type='set' id='mute' to='{CALL}'><jingle xmlns='{JINGLE}' action='session-info' sid='{sid}'>\
             <mute xmlns='urn:xmpp:jingle:apps:rtp:info:1' creator='responder' name='{name}'/></jingle></iq>"
        )
    };
    bob.send(&mute("sb", &at_bob)).await;
    let r = bob.expect(|e| e.attr("id") == Some("mute")).await;
    assert!(String::from(&r).contains("forbidden"), "a participant may not mute others: {}", String::from(&r));

    alice.send(&mute("sa", &at_alice)).await;
    assert_eq!(alice.expect(|e| e.attr("id") == Some("mute")).await.attr("type"), Some("result"));
    let told = bob.expect(|e| action(e).as_deref() == Some("session-info")).await;
    assert!(String::from(&told).contains("name='0'"), "bob hears of it on his own content: {}", String::from(&told));

    // Bob leaves the room: his call session ends, alice loses his stream.
    bob.send(&format!("<presence type='unavailable' to='{ROOM}/bob'/>")).await;
    let end = bob.expect(|e| action(e).as_deref() == Some("session-terminate")).await;
    assert_eq!(end.attr("from"), Some(CALL));
    assert_eq!(reason(&end).0, "gone");
    let removed = alice.expect(|e| action(e).as_deref() == Some("content-remove")).await;
    assert!(String::from(&removed).contains(&at_alice));

    // Alice destroys the room: the call ends for her too.
    alice
        .send(&format!(
            "<iq type='set' id='destroy' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <destroy><reason>done</reason></destroy></query></iq>"
        ))
        .await;
    let end = alice.expect(|e| action(e).as_deref() == Some("session-terminate")).await;
    assert_eq!(reason(&end), ("success".to_string(), "the room was destroyed".to_string()));
    let r = call(&mut alice, CALL, "again", 111).await;
    assert!(String::from(&r).contains("item-not-found"), "{}", String::from(&r));
}

#[tokio::test]
async fn a_kick_or_a_lost_connection_ends_the_call_session() {
    let t = start("").await;
    let mut alice = signed_in(&t, "alice").await;
    let mut bob = signed_in(&t, "bob").await;
    let mut carol = signed_in(&t, "carol").await;
    in_call(&mut alice, "alice", true, "sa", 111).await;
    in_call(&mut bob, "bob", false, "sb", 222).await;
    in_call(&mut carol, "carol", false, "sc", 333).await;

    // The owner kicks bob: his session ends, alice no longer receives his stream.
    alice
        .send(&format!(
            "<iq type='set' id='kick' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item nick='bob' role='none'/></query></iq>"
        ))
        .await;
    let end = bob.expect(|e| action(e).as_deref() == Some("session-terminate")).await;
    assert_eq!(reason(&end), ("gone".to_string(), "you are no longer in the room".to_string()));
    alice.expect(|e| action(e).as_deref() == Some("content-remove")).await;
    assert_eq!(t.server.focus.as_ref().map(|f| f.call_size("standup")), Some(2));

    // Carol's connection drops without a word: her session's unavailable presence (RFC 6121
    // §4.6.3) takes her out of the room, and so out of the call.
    carol.send("<presence/>").await;
    drop(carol);
    alice.expect(|e| action(e).as_deref() == Some("content-remove")).await;
    assert_eq!(t.server.focus.as_ref().map(|f| f.call_size("standup")), Some(1));

    // Dave never sent broadcast presence, so his end sends no unavailable: the room finds
    // out when it cannot deliver to him, and the call follows.
    let mut dave = signed_in(&t, "dave").await;
    in_call(&mut dave, "dave", false, "sd", 444).await;
    alice.expect(|e| action(e).as_deref() == Some("content-add")).await;
    drop(dave);
    let size = || t.server.focus.as_ref().map(|f| f.call_size("standup"));
    for i in 0..50 {
        if size() == Some(1) {
            break;
        }
        alice.send(&format!("<message type='groupchat' to='{ROOM}' id='m{i}'><body>anyone?</body></message>")).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(size(), Some(1), "dave left the call once the room noticed he was gone");
    alice.expect(|e| action(e).as_deref() == Some("content-remove")).await;
}

const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// Run the `end-call` command (XEP-0050) on the call: `execute`, and with a session id
/// `complete`. Returns the iq's answer.
async fn end_call(c: &mut Client, id: &str, session: Option<&str>) -> Element {
    let attrs = match session {
        Some(s) => format!("action='complete' sessionid='{s}'"),
        None => "action='execute'".to_string(),
    };
    c.send(&format!("<iq type='set' id='{id}' to='{CALL}'><command xmlns='{COMMANDS}' node='end-call' {attrs}/></iq>"))
        .await;
    c.expect(|e| e.attr("id") == Some(id)).await
}

#[tokio::test]
async fn a_moderator_ends_the_call_for_everyone_and_the_room_stays() {
    let t = start("").await;
    let mut alice = signed_in(&t, "alice").await;
    let mut bob = signed_in(&t, "bob").await;
    let mut carol = signed_in(&t, "carol").await;
    let mut dave = signed_in(&t, "dave").await;
    in_call(&mut alice, "alice", true, "sa", 111).await; // the owner: a moderator
    in_call(&mut bob, "bob", false, "sb", 222).await;
    in_call(&mut carol, "carol", false, "sc", 333).await;

    // Only moderators see the command, and only they may run it.
    let list = |id: &str| {
        format!(
            "<iq type='get' id='{id}' to='{CALL}'><query xmlns='http://jabber.org/protocol/disco#items' \
             node='{COMMANDS}'/></iq>"
        )
    };
    alice.send(&list("l1")).await;
    assert!(String::from(&alice.expect(|e| e.attr("id") == Some("l1")).await).contains("node='end-call'"));
    bob.send(&list("l2")).await;
    assert!(!String::from(&bob.expect(|e| e.attr("id") == Some("l2")).await).contains("end-call"));
    for (c, who) in [(&mut bob, "a participant"), (&mut dave, "someone outside the room")] {
        let r = end_call(c, "e1", Some("any")).await;
        let text = String::from(&r);
        assert_eq!(r.attr("type"), Some("error"), "{who}: {text}");
        assert!(text.contains("forbidden") && text.contains("only the moderators of room standup"), "{who}: {text}");
    }
    assert_eq!(t.server.focus.as_ref().map(|f| f.call_size("standup")), Some(3));

    // The owner: a confirmation, then everyone's session ends with the moderator's reason.
    let form = end_call(&mut alice, "e2", None).await;
    let cmd = form.get_child("command", COMMANDS).expect("a command");
    assert_eq!(cmd.attr("status"), Some("executing"), "{}", String::from(&form));
    let session = cmd.attr("sessionid").expect("a session id").to_string();
    let done = end_call(&mut alice, "e3", Some(&session)).await;
    assert_eq!(done.get_child("command", COMMANDS).and_then(|c| c.attr("status")), Some("completed"));
    for c in [&mut alice, &mut bob, &mut carol] {
        let end = c.expect(|e| action(e).as_deref() == Some("session-terminate")).await;
        assert_eq!(end.attr("from"), Some(CALL));
        assert_eq!(reason(&end), ("success".to_string(), "the moderator ended the call".to_string()));
        let by = jingle(&end)
            .and_then(|j| j.get_child("reason", JINGLE))
            .and_then(|r| r.get_child("ended-by-moderator", "urn:amphi:call:0"))
            .and_then(|m| m.attr("by"));
        assert_eq!(by, Some(format!("{ROOM}/alice").as_str()));
    }
    assert_eq!(t.server.focus.as_ref().map(|f| f.call_size("standup")), Some(0));

    // The room and its chat stay, and a new call can start in it.
    bob.send(&format!("<message type='groupchat' to='{ROOM}' id='after'><body>still here</body></message>")).await;
    alice.expect(|e| e.name() == "message" && e.attr("id") == Some("after")).await;
    assert_eq!(call(&mut bob, CALL, "sb2", 222).await.attr("type"), Some("result"));
    bob.expect(|e| action(e).as_deref() == Some("session-accept")).await;
}

#[tokio::test]
async fn a_participant_the_focus_cannot_reach_is_removed_from_the_call() {
    let t = start("").await;
    let mut alice = signed_in(&t, "alice").await;
    let mut dave = signed_in(&t, "dave").await;
    in_call(&mut alice, "alice", true, "sa", 111).await;
    in_call(&mut dave, "dave", false, "sd", 444).await;
    alice.expect(|e| action(e).as_deref() == Some("content-add")).await;

    // Dave's connection ends without a word and without any broadcast presence: neither the
    // room nor the focus hears of it. The next thing the focus has for him (alice's mute,
    // relayed to her receivers) cannot be delivered, and that takes him out of the call;
    // no room message is needed.
    drop(dave);
    let size = || t.server.focus.as_ref().map(|f| f.call_size("standup"));
    for i in 0..50 {
        if size() == Some(1) {
            break;
        }
        alice
            .send(&format!(
                "<iq type='set' id='m{i}' to='{CALL}'><jingle xmlns='{JINGLE}' action='session-info' sid='sa'>\
                 <mute xmlns='urn:xmpp:jingle:apps:rtp:info:1' creator='initiator' name='0'/></jingle></iq>"
            ))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(size(), Some(1), "dave left the call once the focus could not reach him");
    let removed = alice.expect(|e| action(e).as_deref() == Some("content-remove")).await;
    assert_eq!(removed.attr("from"), Some(CALL));
}
