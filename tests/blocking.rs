//! XEP-0191 Blocking Command over real sockets: the list (get, block, unblock, unblock
//! all, pushes to the resources that asked for it) and its enforcement both ways.

mod support;

use minidom::Element;
use support::{start, Client, TestServer};

const NS: &str = "urn:xmpp:blocking";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

async fn login(t: &TestServer, user: &str, resource: &str) -> Client {
    let mut c = Client::connect_tls(t, false).await;
    c.register(user, "pw").await;
    c.login_plain(user, "pw", resource).await;
    c
}

/// Send an iq and wait for its answer.
async fn ask(c: &mut Client, id: &str, xml: &str) -> Element {
    c.send(xml).await;
    c.expect(|e| e.name() == "iq" && e.attr("id") == Some(id)).await
}

fn items(el: &Element, name: &str) -> Vec<String> {
    el.get_child(name, NS)
        .map(|l| l.children().filter_map(|i| i.attr("jid")).map(String::from).collect())
        .unwrap_or_default()
}

fn condition(el: &Element) -> Option<String> {
    el.get_child("error", "jabber:client")
        .and_then(|e| e.children().find(|c| c.ns() == STANZAS).map(|c| c.name().to_string()))
}

/// A ping round trip: whatever arrives before its answer is returned (to prove that
/// nothing else came).
async fn drain(c: &mut Client) -> Vec<Element> {
    c.send("<iq type='get' id='drain' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let mut seen = Vec::new();
    loop {
        let el = c.next().await.expect("stream open");
        if el.attr("id") == Some("drain") {
            return seen;
        }
        seen.push(el);
    }
}

#[tokio::test]
async fn blocklist_get_block_unblock_with_pushes() {
    let t = start("").await;
    let mut r1 = login(&t, "alice", "one").await;
    let mut r2 = Client::connect_tls(&t, false).await;
    r2.login_plain("alice", "pw", "two").await;

    let list = ask(&mut r1, "l1", "<iq type='get' id='l1'><blocklist xmlns='urn:xmpp:blocking'/></iq>").await;
    assert_eq!(list.attr("type"), Some("result"));
    assert!(items(&list, "blocklist").is_empty());

    // No items: bad-request (§3.3). A malformed JID: jid-malformed.
    let empty = ask(&mut r1, "b0", "<iq type='set' id='b0'><block xmlns='urn:xmpp:blocking'/></iq>").await;
    assert_eq!(condition(&empty).as_deref(), Some("bad-request"));
    let bad =
        ask(&mut r1, "b9", "<iq type='set' id='b9'><block xmlns='urn:xmpp:blocking'><item jid='@@'/></block></iq>")
            .await;
    assert_eq!(condition(&bad).as_deref(), Some("jid-malformed"));

    r1.send(
        "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='Spam@LocalHost'/>\
         <item jid='evil.example'/></block></iq>",
    )
    .await;
    // r1 asked for the list: it gets the push (and the result).
    let mut got_result = false;
    let mut push = None;
    while !(got_result && push.is_some()) {
        let el = r1.next().await.unwrap();
        if el.attr("id") == Some("b1") {
            assert_eq!(el.attr("type"), Some("result"));
            got_result = true;
        } else if el.has_child("block", NS) {
            assert_eq!(el.attr("type"), Some("set"));
            push = Some(el);
        }
    }
    let push = push.unwrap();
    assert_eq!(items(&push, "block"), vec!["spam@localhost".to_string(), "evil.example".to_string()]);
    // r2 never asked: no push.
    assert!(drain(&mut r2).await.iter().all(|e| !e.has_child("block", NS)));

    let list = ask(&mut r2, "l2", "<iq type='get' id='l2'><blocklist xmlns='urn:xmpp:blocking'/></iq>").await;
    assert_eq!(items(&list, "blocklist"), vec!["evil.example".to_string(), "spam@localhost".to_string()]);

    // Now both resources are interested.
    r1.send("<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'><item jid='spam@localhost'/></unblock></iq>")
        .await;
    let p = r2.expect(|e| e.has_child("unblock", NS)).await;
    assert_eq!(items(&p, "unblock"), vec!["spam@localhost".to_string()]);
    r1.expect(|e| e.attr("id") == Some("u1")).await;

    // Unblock all: an empty <unblock/>, pushed as such.
    r1.send("<iq type='set' id='u2'><unblock xmlns='urn:xmpp:blocking'/></iq>").await;
    let p = r2.expect(|e| e.has_child("unblock", NS)).await;
    assert!(items(&p, "unblock").is_empty());
    let list = ask(&mut r2, "l3", "<iq type='get' id='l3'><blocklist xmlns='urn:xmpp:blocking'/></iq>").await;
    assert!(items(&list, "blocklist").is_empty());
    assert!(t.server.store.blocklist.get("alice").is_none());
}

#[tokio::test]
async fn blocked_contact_is_cut_off_both_ways() {
    let t = start("").await;
    let mut alice = login(&t, "alice", "home").await;
    let mut bob = login(&t, "bob", "phone").await;
    // Bob subscribes to Alice; both available.
    alice.send("<presence/>").await;
    bob.send("<presence/>").await;
    bob.send("<presence to='alice@localhost' type='subscribe'/>").await;
    alice.expect(|e| e.name() == "presence" && e.attr("type") == Some("subscribe")).await;
    alice.send("<presence to='bob@localhost' type='subscribed'/>").await;
    bob.expect(|e| {
        e.name() == "presence" && e.attr("from") == Some("alice@localhost/home") && e.attr("type").is_none()
    })
    .await;

    let r = ask(
        &mut alice,
        "b",
        "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block></iq>",
    )
    .await;
    assert_eq!(r.attr("type"), Some("result"), "{r:?}");
    // §3.3: Bob sees Alice go offline.
    let gone = bob.expect(|e| e.name() == "presence" && e.attr("from") == Some("alice@localhost/home")).await;
    assert_eq!(gone.attr("type"), Some("unavailable"));

    // Bob → Alice: message and iq get answered with service-unavailable; presence dropped.
    bob.send("<message to='alice@localhost' type='chat' id='m1'><body>hey</body></message>").await;
    let err = bob.expect(|e| e.attr("id") == Some("m1")).await;
    assert_eq!(err.attr("type"), Some("error"));
    assert_eq!(condition(&err).as_deref(), Some("service-unavailable"));
    let err =
        ask(&mut bob, "v", "<iq type='get' id='v' to='alice@localhost/home'><query xmlns='jabber:iq:version'/></iq>")
            .await;
    assert_eq!(condition(&err).as_deref(), Some("service-unavailable"));
    let err = ask(&mut bob, "vc", "<iq type='get' id='vc' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>").await;
    assert_eq!(condition(&err).as_deref(), Some("service-unavailable"));
    bob.send("<presence to='alice@localhost/home'><status>hello?</status></presence>").await;
    bob.send("<presence/>").await;
    assert!(drain(&mut bob).await.iter().all(|e| e.attr("type") != Some("error")));
    let seen = drain(&mut alice).await;
    assert!(seen.iter().all(|e| e.attr("from").is_none_or(|f| !f.starts_with("bob@"))), "{seen:?}");

    // Alice → Bob: not-acceptable with <blocked/> (§3.6).
    alice.send("<message to='bob@localhost/phone' type='chat' id='m2'><body>hi</body></message>").await;
    let err = alice.expect(|e| e.attr("id") == Some("m2")).await;
    assert_eq!(condition(&err).as_deref(), Some("not-acceptable"));
    assert!(err.get_child("error", "jabber:client").unwrap().has_child("blocked", "urn:xmpp:blocking:errors"));

    // Unblocked: messages flow again and Bob gets Alice's presence back (§3.4).
    ask(&mut alice, "u", "<iq type='set' id='u'><unblock xmlns='urn:xmpp:blocking'/></iq>").await;
    let back = bob.expect(|e| e.name() == "presence" && e.attr("from") == Some("alice@localhost/home")).await;
    assert_eq!(back.attr("type"), None);
    bob.send("<message to='alice@localhost' type='chat' id='m3'><body>again</body></message>").await;
    let m = alice.expect(|e| e.name() == "message").await;
    assert_eq!(m.get_child("body", "jabber:client").unwrap().text(), "again");
}

#[tokio::test]
async fn full_jid_and_domain_items_match_as_the_xep_says() {
    let t = start("").await;
    let mut carol = login(&t, "carol", "desk").await;
    let mut phone = login(&t, "dave", "phone").await;
    let mut laptop = Client::connect_tls(&t, false).await;
    laptop.login_plain("dave", "pw", "laptop").await;
    carol.send("<presence/>").await;
    ask(
        &mut carol,
        "b",
        "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='dave@localhost/phone'/></block></iq>",
    )
    .await;
    phone.send("<message to='carol@localhost' type='chat' id='p'><body>from phone</body></message>").await;
    assert_eq!(condition(&phone.expect(|e| e.attr("id") == Some("p")).await).as_deref(), Some("service-unavailable"));
    laptop.send("<message to='carol@localhost' type='chat' id='l'><body>from laptop</body></message>").await;
    let m = carol.expect(|e| e.name() == "message").await;
    assert_eq!(m.attr("from"), Some("dave@localhost/laptop"));

    // A domain item covers everyone there (here: this server's own users).
    ask(&mut carol, "d", "<iq type='set' id='d'><block xmlns='urn:xmpp:blocking'><item jid='localhost'/></block></iq>")
        .await;
    laptop.send("<message to='carol@localhost' type='chat' id='l2'><body>again</body></message>").await;
    assert_eq!(condition(&laptop.expect(|e| e.attr("id") == Some("l2")).await).as_deref(), Some("service-unavailable"));
}

#[tokio::test]
async fn blocking_is_advertised_on_server_and_account() {
    let t = start("").await;
    let mut c = login(&t, "erin", "r").await;
    for (id, to) in [("s", "localhost"), ("a", "erin@localhost")] {
        let r = ask(
            &mut c,
            id,
            &format!("<iq type='get' id='{id}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
        )
        .await;
        let q = r.get_child("query", "http://jabber.org/protocol/disco#info").unwrap();
        assert!(q.children().any(|f| f.attr("var") == Some(NS)), "{to}: {r:?}");
    }
}
