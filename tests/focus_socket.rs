//! The focus through the real server: Jingle over client sockets to `room@focus.localhost`.

mod support;

use minidom::Element;
use support::{audio_offer as offer, signed_in, start, Client};

const JINGLE: &str = "urn:xmpp:jingle:1";

/// Only a room's occupants may join its call (tests/call_access.rs): enter
/// `room@conference.localhost`, the first one creating it as an instant room.
async fn enter_room(c: &mut Client, nick: &str, create: bool) {
    c.send(&format!(
        "<presence to='room@conference.localhost/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    ))
    .await;
    let me = format!("room@conference.localhost/{nick}");
    c.expect(|e| e.name() == "presence" && e.attr("from") == Some(me.as_str())).await;
    if create {
        c.send(
            "<iq type='set' id='cfg' to='room@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>",
        )
        .await;
        c.expect(|e| e.attr("id") == Some("cfg")).await;
    }
}

fn jingle_action(el: &Element) -> Option<String> {
    el.get_child("jingle", JINGLE).and_then(|j| j.attr("action")).map(str::to_string)
}

#[tokio::test]
async fn two_clients_join_a_call_and_see_each_others_streams() {
    let t = start("").await;
    let mut alice = signed_in(&t, "alice").await;
    let mut bob = signed_in(&t, "bob").await;
    enter_room(&mut alice, "alice", true).await;
    enter_room(&mut bob, "bob", false).await;

    alice
        .send("<iq type='get' id='d1' to='focus.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        .await;
    let info = alice.expect(|e| e.attr("id") == Some("d1")).await;
    assert_eq!(info.attr("type"), Some("result"));
    assert!(String::from(&info).contains("urn:xmpp:jingle:av-conferences:0"));

    alice.send(&format!("<iq type='set' id='j1' to='room@focus.localhost'>{}</iq>", offer("sa", 111))).await;
    let ack = alice.expect(|e| e.attr("id") == Some("j1")).await;
    assert_eq!(ack.attr("type"), Some("result"), "{ack:?}");
    let accept = alice.expect(|e| jingle_action(e).as_deref() == Some("session-accept")).await;
    assert_eq!(accept.attr("from"), Some("room@focus.localhost"));
    let transport = accept
        .get_child("jingle", JINGLE)
        .and_then(|j| j.get_child("content", JINGLE))
        .and_then(|c| c.get_child("transport", "urn:xmpp:jingle:transports:ice-udp:1"))
        .expect("a transport in session-accept");
    let candidate = transport.get_child("candidate", "urn:xmpp:jingle:transports:ice-udp:1").unwrap();
    assert_eq!(candidate.attr("ip"), Some("127.0.0.1"));
    assert_ne!(candidate.attr("port"), Some("0"), "the SFU's real port is announced");
    let id = accept.attr("id").unwrap().to_string();
    alice.send(&format!("<iq type='result' id='{id}' to='room@focus.localhost'/>")).await;

    bob.send(&format!("<iq type='set' id='j2' to='room@focus.localhost'>{}</iq>", offer("sb", 222))).await;
    bob.expect(|e| jingle_action(e).as_deref() == Some("session-accept")).await;
    let add_at_bob = bob.expect(|e| jingle_action(e).as_deref() == Some("content-add")).await;
    assert!(String::from(&add_at_bob).contains("ssrc='111'"), "{}", String::from(&add_at_bob));
    let add_at_alice = alice.expect(|e| jingle_action(e).as_deref() == Some("content-add")).await;
    assert!(String::from(&add_at_alice).contains("ssrc='222'"));

    let name = add_at_bob
        .get_child("jingle", JINGLE)
        .and_then(|j| j.get_child("content", JINGLE))
        .unwrap()
        .attr("name")
        .unwrap()
        .to_string();
    bob.send(&format!(
        "<iq type='set' id='j3' to='room@focus.localhost'><jingle xmlns='{JINGLE}' action='content-accept' sid='sb'>\
         <content creator='responder' name='{name}'/></jingle></iq>"
    ))
    .await;
    assert_eq!(bob.expect(|e| e.attr("id") == Some("j3")).await.attr("type"), Some("result"));

    alice
        .send(&format!(
            "<iq type='set' id='j4' to='room@focus.localhost'><jingle xmlns='{JINGLE}' action='session-terminate' sid='sa'>\
             <reason><success/></reason></jingle></iq>"
        ))
        .await;
    let removed = bob.expect(|e| jingle_action(e).as_deref() == Some("content-remove")).await;
    assert!(String::from(&removed).contains(&name));
}

#[test]
fn media_config_is_checked_and_named_in_errors() {
    use amphi::config::Config;
    let base = "[server]\ndomain = 'localhost'\n[media]\n";
    let ok = Config::parse("t", &format!("{base}listen = '127.0.0.1:0'\npublic_address = '203.0.113.5'\nlast_n = 4\n"))
        .unwrap();
    assert_eq!(ok.media.public_ip().unwrap(), Some("203.0.113.5:0".parse().unwrap()));
    assert_eq!(ok.focus_domain().as_deref(), Some("focus.localhost"));
    let err = Config::parse("t", &format!("{base}public_address = 'not an address'\n")).unwrap_err().to_string();
    assert!(err.contains("media.public_address"), "{err}");
    let err = Config::parse("t", &format!("{base}lastn = 1\n")).unwrap_err().to_string();
    assert!(err.contains("lastn"), "unknown keys are refused: {err}");
    let off = Config::parse("t", &format!("{base}enabled = false\n")).unwrap();
    assert_eq!(off.focus_domain(), None);
}
