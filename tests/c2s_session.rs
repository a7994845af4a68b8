//! Signed-in sessions over real TLS sockets: registration, SASL, binding conflicts, the
//! server's ping of silent clients.

mod support;

use base64::Engine;
use std::time::Duration;
use support::{start, Client};

#[tokio::test]
async fn register_then_scram_over_direct_tls_and_plain_over_starttls() {
    let t = start("").await;
    let mut c = Client::connect_tls(&t, false).await;
    let reg = c.register("juliet", "r0méo").await;
    assert_eq!(reg.attr("type"), Some("result"));
    // The same name again is a conflict (XEP-0077 §3.1).
    let mut c2 = Client::connect_tls(&t, false).await;
    let again = c2.register("juliet", "other").await;
    assert!(again
        .get_child("error", "jabber:client")
        .unwrap()
        .has_child("conflict", "urn:ietf:params:xml:ns:xmpp-stanzas"));

    let mut d = Client::connect_tls(&t, true).await;
    d.login_scram("juliet", "r0méo").await.unwrap();
    d.open().await;
    assert_eq!(d.bind("balcony").await, "juliet@localhost/balcony");

    let mut p = Client::connect_tls(&t, false).await;
    assert_eq!(p.login_plain("juliet", "r0méo", "garden").await, "juliet@localhost/garden");

    let mut wrong = Client::connect_tls(&t, true).await;
    assert!(wrong.login_scram("juliet", "wrong").await.unwrap_err().contains("not-authorized"));
}

#[tokio::test]
async fn same_resource_replaces_the_older_session() {
    let t = start("").await;
    let mut a = support::account(&t, "romeo", "phone").await;
    let mut b = Client::connect_tls(&t, false).await;
    b.login_plain("romeo", "pw", "phone").await;
    assert!(a.next().await.is_none(), "the old session is closed");
    assert_eq!(a.closed_with.as_deref(), Some("conflict"));
    // The new session works.
    b.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let pong = b.expect(|e| e.attr("id") == Some("p1")).await;
    assert_eq!(pong.attr("type"), Some("result"));
}

#[tokio::test]
async fn silent_client_is_pinged_then_dropped() {
    let t = start("ping_interval = '1s'\nping_timeout = '1s'").await;
    let mut a = Client::connect_tls(&t, true).await;
    a.register("nurse", "pw").await;
    a.login_plain("nurse", "pw", "r").await;
    let ping = a.next_within(Duration::from_secs(3)).await.unwrap();
    assert!(ping.has_child("ping", "urn:xmpp:ping"), "{ping:?}");
    assert_eq!(ping.attr("type"), Some("get"));
    // Not answering: the server gives up.
    assert!(a.next_within(Duration::from_secs(3)).await.is_none());
    assert_eq!(a.closed_with.as_deref(), Some("connection-timeout"));

    // A client that answers stays.
    let mut b = Client::connect_tls(&t, true).await;
    b.login_plain("nurse", "pw", "s").await;
    let ping = b.next_within(Duration::from_secs(3)).await.unwrap();
    let id = ping.attr("id").unwrap().to_string();
    b.send(&format!("<iq type='result' id='{id}' to='localhost'/>")).await;
    let next = b.next_within(Duration::from_secs(3)).await.unwrap();
    assert!(next.has_child("ping", "urn:xmpp:ping"), "pinged again after the next quiet period, not dropped");
}

#[tokio::test]
async fn guests_reach_only_their_room() {
    let t = start("").await;
    let room = jid::BareJid::new("meeting@conference.localhost").unwrap();
    let login = t.server.guests.issue("localhost", room, "Ada");
    let user = login.jid.split('@').next().unwrap().to_string();

    let mut member = support::account(&t, "host", "r").await;
    // Nobody can take a guest name by registration.
    let mut squatter = Client::connect_tls(&t, false).await;
    let reg = squatter.register("guest-abc", "pw").await;
    assert_eq!(reg.attr("type"), Some("error"));

    let mut g = Client::connect_tls(&t, false).await;
    let full = g.login_plain(&user, &login.password, "web").await;
    assert!(full.starts_with("guest-"));
    g.send("<iq type='get' id='ros'><query xmlns='jabber:iq:roster'/></iq>").await;
    let r = g.expect(|e| e.attr("id") == Some("ros")).await;
    assert!(r
        .get_child("error", "jabber:client")
        .unwrap()
        .has_child("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    g.send("<message id='m1' to='host@localhost' type='chat'><body>spam</body></message>").await;
    let r = g.expect(|e| e.attr("id") == Some("m1")).await;
    assert_eq!(r.attr("type"), Some("error"));
    // The room's call on the focus is reachable; another room's call is not.
    g.send("<iq type='get' id='f1' to='meeting@focus.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    assert_eq!(g.expect(|e| e.attr("id") == Some("f1")).await.attr("type"), Some("result"));
    g.send(
        "<iq type='get' id='f2' to='other@focus.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    .await;
    let r = g.expect(|e| e.attr("id") == Some("f2")).await;
    assert!(r
        .get_child("error", "jabber:client")
        .unwrap()
        .has_child("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    g.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    assert_eq!(g.expect(|e| e.attr("id") == Some("p")).await.attr("type"), Some("result"));
    // Members cannot reach the guest directly either.
    member.send(&format!("<message id='m2' to='{full}' type='chat'><body>hi</body></message>")).await;
    let r = member.expect(|e| e.attr("id") == Some("m2")).await;
    assert_eq!(r.attr("type"), Some("error"));
    member.send(&format!("<iq id='v' type='get' to='{full}'><query xmlns='jabber:iq:version'/></iq>")).await;
    assert_eq!(member.expect(|e| e.attr("id") == Some("v")).await.attr("type"), Some("error"));

    // The login is single-use.
    let mut again = Client::connect_tls(&t, false).await;
    let data = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{}", login.password));
    again.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{data}</auth>")).await;
    assert_eq!(again.next().await.unwrap().name(), "failure");
}

#[tokio::test]
async fn carbons_copy_sent_and_received_messages() {
    let t = start("").await;
    let mut phone = support::account(&t, "ada", "phone").await;
    let mut laptop = Client::connect_tls(&t, false).await;
    laptop.login_plain("ada", "pw", "laptop").await;
    let mut bob = support::account(&t, "bob", "desk").await;
    laptop.send("<inactive xmlns='urn:xmpp:csi:0'/>").await;
    laptop.send("<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>").await;
    assert_eq!(laptop.expect(|e| e.attr("id") == Some("c")).await.attr("type"), Some("result"));

    phone.send("<message to='bob@localhost/desk' type='chat' id='s1'><body>hi bob</body></message>").await;
    bob.expect(|e| e.name() == "message").await;
    let sent = laptop.expect(|e| e.name() == "message").await;
    let inner = sent
        .get_child("sent", "urn:xmpp:carbons:2")
        .and_then(|s| s.get_child("forwarded", "urn:xmpp:forward:0"))
        .and_then(|f| f.get_child("message", "jabber:client"))
        .expect("a sent carbon");
    assert_eq!(sent.attr("from"), Some("ada@localhost"));
    assert_eq!(inner.attr("from"), Some("ada@localhost/phone"));

    bob.send("<message to='ada@localhost/phone' type='chat' id='r1'><body>hi ada</body></message>").await;
    phone.expect(|e| e.name() == "message").await;
    let received = laptop.expect(|e| e.name() == "message").await;
    assert!(received.has_child("received", "urn:xmpp:carbons:2"), "{received:?}");

    // A private message is not copied.
    phone.send("<message to='bob@localhost/desk' type='chat' id='p1'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>").await;
    bob.expect(|e| e.name() == "message").await;
    laptop.send("<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let next = laptop.expect(|e| e.name() == "message" || e.attr("id") == Some("after")).await;
    assert_eq!(next.attr("id"), Some("after"), "no carbon of a private message");
}

#[tokio::test]
async fn stream_management_resumes_a_dropped_session() {
    let t = start("resume_timeout = '1s'").await;
    let mut bob = support::account(&t, "bob", "desk").await;
    let mut ada = support::account(&t, "ada", "phone").await;
    ada.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>").await;
    let enabled = ada.expect(|e| e.name() == "enabled").await;
    let id = enabled.attr("id").expect("a resumption id").to_string();
    ada.send("<presence/>").await;
    for i in 0..3 {
        bob.send(&format!("<message to='ada@localhost/phone' type='chat'><body>m{i}</body></message>")).await;
    }
    for _ in 0..3 {
        ada.expect(|e| e.name() == "message").await;
    }
    // Count what the client sent so far (presence) and ask for an ack.
    ada.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let a = ada.expect(|e| e.name() == "a").await;
    assert_eq!(a.attr("h"), Some("1"));
    drop(ada); // the network dies: no </stream:stream>
    tokio::time::sleep(Duration::from_millis(200)).await;
    bob.send("<message to='ada@localhost/phone' type='chat'><body>while away</body></message>").await;

    let mut again = Client::connect_tls(&t, false).await;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0ada\0pw");
    again.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")).await;
    assert_eq!(again.next().await.unwrap().name(), "success");
    let features = again.open().await;
    assert!(features.has_child("sm", "urn:xmpp:sm:3"));
    // The client handled two stanzas: its own presence echoed back, and m0.
    again.send(&format!("<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='2'/>")).await;
    let resumed = again.next().await.unwrap();
    assert_eq!(resumed.name(), "resumed", "{resumed:?}");
    assert_eq!(resumed.attr("h"), Some("1"), "one stanza (presence) from the client; <r/> is not counted");
    let mut bodies = Vec::new();
    while bodies.len() < 3 {
        let m = again.expect(|e| e.name() == "message").await;
        bodies.push(m.get_child("body", "jabber:client").unwrap().text());
    }
    assert_eq!(bodies, ["m1", "m2", "while away"], "acknowledged m0 is not resent; the rest arrives in order");
}

#[tokio::test]
async fn unresumed_session_ends_and_its_messages_go_offline() {
    let t = start("resume_timeout = '1s'").await;
    let mut bob = support::account(&t, "bob", "desk").await;
    let mut ada = support::account(&t, "ada", "phone").await;
    ada.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>").await;
    ada.expect(|e| e.name() == "enabled").await;
    ada.send("<presence/>").await;
    bob.send("<message to='ada@localhost/phone' type='chat'><body>unseen</body></message>").await;
    ada.expect(|e| e.name() == "message").await;
    drop(ada);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let mut back = Client::connect_tls(&t, false).await;
    back.login_plain("ada", "pw", "laptop").await;
    back.send("<presence/>").await;
    let m = back.expect(|e| e.name() == "message").await;
    assert_eq!(m.get_child("body", "jabber:client").unwrap().text(), "unseen");
    assert!(m.has_child("delay", "urn:xmpp:delay"), "stored offline, with a delay stamp");
}

/// Several pairs subscribe to each other at the same moment, on a multi-threaded runtime
/// like the real server's: each account's roster changes must not overwrite each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_mutual_subscriptions_end_in_both() {
    let t = start("").await;
    let rounds = (0..12).map(|round| mutual_pair(&t, round));
    futures_util::future::join_all(rounds).await;
}

async fn mutual_pair(t: &support::TestServer, round: usize) {
    {
        let (a, b) = (format!("hub{round}"), format!("leaf{round}"));
        let mut ca = support::account(t, &a, "r").await;
        let mut cb = support::account(t, &b, "r").await;
        for c in [&mut ca, &mut cb] {
            c.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq><presence/>").await;
        }
        // Both ask and both approve at once, as a bulk-import tool would.
        let (ja, jb) = (format!("{a}@localhost"), format!("{b}@localhost"));
        let to_b = format!("<presence to='{jb}' type='subscribe'/><presence to='{jb}' type='subscribed'/>");
        let to_a = format!("<presence to='{ja}' type='subscribe'/><presence to='{ja}' type='subscribed'/>");
        tokio::join!(ca.send(&to_b), cb.send(&to_a));
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (c, other) in [(&mut ca, &jb), (&mut cb, &ja)] {
            c.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>").await;
            let r = c.expect(|e| e.attr("id") == Some("r1")).await;
            let item = r
                .get_child("query", "jabber:iq:roster")
                .and_then(|q| q.children().find(|i| i.attr("jid") == Some(other.as_str())))
                .unwrap_or_else(|| panic!("round {round}: no item for {other}"));
            assert_eq!(item.attr("subscription"), Some("both"), "round {round}: {other}");
        }
    }
}
