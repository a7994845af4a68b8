//! XEP-0313 Message Archive Management for accounts over real sockets: both sides'
//! archives, stanza-ids, filters, RSM paging, preferences, the size cap, and `enabled`.

mod support;

use minidom::Element;
use support::{start, start_with, Client, TestServer};

const MAM: &str = "urn:xmpp:mam:2";
const RSM: &str = "http://jabber.org/protocol/rsm";
const SID: &str = "urn:xmpp:sid:0";

async fn login(t: &TestServer, user: &str, resource: &str) -> Client {
    let mut c = Client::connect_tls(t, false).await;
    c.register(user, "pw").await;
    c.login_plain(user, "pw", resource).await;
    c
}

/// Run a query (`inner`: form and RSM set); returns (result messages, iq result).
async fn query(c: &mut Client, id: &str, inner: &str) -> (Vec<Element>, Element) {
    c.send(&format!("<iq type='set' id='{id}'><query xmlns='{MAM}' queryid='q-{id}'>{inner}</query></iq>")).await;
    let mut results = Vec::new();
    loop {
        let el = c.next().await.expect("stream open");
        if el.name() == "iq" && el.attr("id") == Some(id) {
            return (results, el);
        }
        if let Some(r) = el.get_child("result", MAM) {
            assert_eq!(r.attr("queryid"), Some(format!("q-{id}").as_str()));
            results.push(el);
        }
    }
}

fn body(result: &Element) -> String {
    let fwd = result.get_child("result", MAM).unwrap().get_child("forwarded", "urn:xmpp:forward:0").unwrap();
    assert!(fwd.has_child("delay", "urn:xmpp:delay"));
    fwd.get_child("message", "jabber:client").unwrap().get_child("body", "jabber:client").unwrap().text()
}

fn bodies(results: &[Element]) -> Vec<String> {
    results.iter().map(body).collect()
}

fn result_id(result: &Element) -> String {
    result.get_child("result", MAM).unwrap().attr("id").unwrap().to_string()
}

fn fin(iq: &Element) -> &Element {
    assert_eq!(iq.attr("type"), Some("result"), "{iq:?}");
    iq.get_child("fin", MAM).unwrap()
}

fn rsm(iq: &Element, name: &str) -> Option<String> {
    fin(iq).get_child("set", RSM).unwrap().get_child(name, RSM).map(|e| e.text())
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>"
    );
    for (var, value) in fields {
        s.push_str(&format!("<field var='{var}'><value>{value}</value></field>"));
    }
    s + "</x>"
}

/// Alice sends `n` chats to Bob ("m1".."mn"); Bob reads each. Returns Bob's stanza-ids.
async fn chat(alice: &mut Client, bob: &mut Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 1..=n {
        alice.send(&format!("<message to='bob@localhost' type='chat' id='c{i}'><body>m{i}</body></message>")).await;
        let m = bob.expect(|e| e.name() == "message").await;
        let sid = m.get_child("stanza-id", SID).expect("a stanza-id on the delivered message");
        assert_eq!(sid.attr("by"), Some("bob@localhost"));
        ids.push(sid.attr("id").unwrap().to_string());
    }
    ids
}

#[tokio::test]
async fn both_sides_archive_with_stanza_ids() {
    let t = start("").await;
    let mut alice = login(&t, "alice", "a").await;
    let mut bob = login(&t, "bob", "b").await;
    bob.send("<presence/>").await;
    let ids = chat(&mut alice, &mut bob, 3).await;
    // Not archived: no body (a chat state), and the no-store hint.
    alice
        .send(
            "<message to='bob@localhost' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        )
        .await;
    alice
        .send("<message to='bob@localhost' type='chat'><body>skip</body><no-store xmlns='urn:xmpp:hints'/></message>")
        .await;
    // A forged stanza-id in Bob's name is removed.
    alice.send(&format!(
        "<message to='bob@localhost' type='chat'><body>m4</body><stanza-id xmlns='{SID}' by='bob@localhost' id='forged'/></message>"
    ))
    .await;
    let last = bob.expect(|e| e.get_child("body", "jabber:client").is_some_and(|b| b.text() == "m4")).await;
    let sids: Vec<&str> = last.children().filter(|c| c.is("stanza-id", SID)).filter_map(|c| c.attr("id")).collect();
    assert_eq!(sids.len(), 1);
    assert_ne!(sids[0], "forged");

    let (results, iq) = query(&mut bob, "q1", "").await;
    assert_eq!(bodies(&results), vec!["m1", "m2", "m3", "m4"]);
    assert_eq!(result_id(&results[0]), ids[0], "the result id is the delivered stanza-id");
    assert_eq!(results[0].attr("to"), Some("bob@localhost/b"));
    assert_eq!(results[0].attr("from"), Some("bob@localhost"));
    assert_eq!(fin(&iq).attr("complete"), Some("true"));
    assert_eq!(rsm(&iq, "count").as_deref(), Some("4"));
    assert_eq!(rsm(&iq, "first").as_deref(), Some(ids[0].as_str()));

    // Alice's own archive has what she sent, filtered by `with`.
    let (results, _) = query(&mut alice, "q2", &form(&[("with", "bob@localhost")])).await;
    assert_eq!(bodies(&results), vec!["m1", "m2", "m3", "m4"]);
    let (results, _) = query(&mut alice, "q3", &form(&[("with", "carol@localhost")])).await;
    assert!(results.is_empty());

    // Offline: Bob's archive keeps what arrives while he is away.
    bob.send("</stream:stream>").await;
    while bob.next().await.is_some() {}
    alice.send("<message to='bob@localhost' type='chat'><body>while away</body></message>").await;
    let mut bob = login(&t, "bob", "b2").await;
    let (results, _) =
        query(&mut bob, "q4", "<set xmlns='http://jabber.org/protocol/rsm'><before/><max>1</max></set>").await;
    assert_eq!(bodies(&results), vec!["while away"]);
}

#[tokio::test]
async fn paging_and_time_filters() {
    let t = start("").await;
    let mut alice = login(&t, "alice", "a").await;
    let mut bob = login(&t, "bob", "b").await;
    bob.send("<presence/>").await;
    let ids = chat(&mut alice, &mut bob, 5).await;

    let (r, iq) = query(&mut bob, "p1", &format!("<set xmlns='{RSM}'><max>2</max></set>")).await;
    assert_eq!(bodies(&r), vec!["m1", "m2"]);
    assert_eq!(fin(&iq).attr("complete"), None);
    let last = rsm(&iq, "last").unwrap();
    assert_eq!(last, ids[1]);
    let (r, _) = query(&mut bob, "p2", &format!("<set xmlns='{RSM}'><max>2</max><after>{last}</after></set>")).await;
    assert_eq!(bodies(&r), vec!["m3", "m4"]);
    // The last page, then the one before it.
    let (r, iq) = query(&mut bob, "p3", &format!("<set xmlns='{RSM}'><max>2</max><before/></set>")).await;
    assert_eq!(bodies(&r), vec!["m4", "m5"]);
    assert_eq!(rsm(&iq, "first").as_deref(), Some(ids[3].as_str()));
    let (r, iq) =
        query(&mut bob, "p4", &format!("<set xmlns='{RSM}'><max>3</max><before>{}</before></set>", ids[3])).await;
    assert_eq!(bodies(&r), vec!["m1", "m2", "m3"]);
    assert_eq!(fin(&iq).attr("complete"), Some("true"));
    // Flipped: newest first.
    let (r, _) = query(&mut bob, "p5", &format!("<set xmlns='{RSM}'><max>2</max><before/></set><flip-page/>")).await;
    assert_eq!(bodies(&r), vec!["m5", "m4"]);
    // after-id in the form.
    let (r, _) = query(&mut bob, "p6", &form(&[("after-id", &ids[3])])).await;
    assert_eq!(bodies(&r), vec!["m5"]);
    // Unknown id: item-not-found.
    let (_, iq) = query(&mut bob, "p7", &format!("<set xmlns='{RSM}'><after>00000000000000ff</after></set>")).await;
    assert_eq!(iq.attr("type"), Some("error"));
    assert!(iq
        .get_child("error", "jabber:client")
        .unwrap()
        .has_child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"));

    // start/end.
    let (r, _) = query(&mut bob, "t1", &form(&[("start", "2100-01-01T00:00:00Z")])).await;
    assert!(r.is_empty());
    let (r, _) = query(&mut bob, "t2", &form(&[("end", "2000-01-01T00:00:00Z")])).await;
    assert!(r.is_empty());
    let (r, _) =
        query(&mut bob, "t3", &form(&[("start", "2000-01-01T00:00:00Z"), ("end", "2100-01-01T00:00:00Z")])).await;
    assert_eq!(r.len(), 5);
    let (_, iq) = query(&mut bob, "t4", &form(&[("start", "yesterday")])).await;
    assert_eq!(iq.attr("type"), Some("error"));

    // The form itself.
    bob.send(&format!("<iq type='get' id='f'><query xmlns='{MAM}'/></iq>")).await;
    let f = bob.expect(|e| e.attr("id") == Some("f")).await;
    let x = f.get_child("query", MAM).unwrap().get_child("x", "jabber:x:data").unwrap();
    assert!(x.children().any(|c| c.attr("var") == Some("with")));
}

#[tokio::test]
async fn preferences_decide_what_is_kept() {
    let t = start("").await;
    let mut alice = login(&t, "alice", "a").await;
    let mut bob = login(&t, "bob", "b").await;
    bob.send("<presence/>").await;
    bob.send(&format!("<iq type='get' id='g'><prefs xmlns='{MAM}'/></iq>")).await;
    let p = bob.expect(|e| e.attr("id") == Some("g")).await;
    assert_eq!(p.get_child("prefs", MAM).unwrap().attr("default"), Some("always"));

    bob.send(&format!("<iq type='set' id='s'><prefs xmlns='{MAM}' default='never'><always/><never/></prefs></iq>"))
        .await;
    let p = bob.expect(|e| e.attr("id") == Some("s")).await;
    assert_eq!(p.get_child("prefs", MAM).unwrap().attr("default"), Some("never"));
    alice.send("<message to='bob@localhost' type='chat'><body>not kept</body></message>").await;
    let m = bob.expect(|e| e.name() == "message").await;
    assert!(!m.has_child("stanza-id", SID), "not archived, so no stanza-id");

    bob.send(&format!(
        "<iq type='set' id='s2'><prefs xmlns='{MAM}' default='never'><always><jid>alice@localhost</jid></always><never/></prefs></iq>"
    ))
    .await;
    bob.expect(|e| e.attr("id") == Some("s2")).await;
    alice.send("<message to='bob@localhost' type='chat'><body>kept</body></message>").await;
    bob.expect(|e| e.name() == "message").await;
    let (r, _) = query(&mut bob, "q", "").await;
    assert_eq!(bodies(&r), vec!["kept"]);
    // Alice's default is still "always": she has both.
    let (r, _) = query(&mut alice, "qa", "").await;
    assert_eq!(bodies(&r), vec!["not kept", "kept"]);

    bob.send(&format!("<iq type='set' id='bad'><prefs xmlns='{MAM}' default='sometimes'/></iq>")).await;
    let e = bob.expect(|e| e.attr("id") == Some("bad")).await;
    assert_eq!(e.attr("type"), Some("error"));
}

#[tokio::test]
async fn size_cap_drops_the_oldest() {
    let t = start_with("", "[archive]\nmax_messages_per_user = 3\n").await;
    let mut alice = login(&t, "alice", "a").await;
    let mut bob = login(&t, "bob", "b").await;
    bob.send("<presence/>").await;
    chat(&mut alice, &mut bob, 5).await;
    let (r, iq) = query(&mut bob, "q", "").await;
    assert_eq!(bodies(&r), vec!["m3", "m4", "m5"]);
    assert_eq!(rsm(&iq, "count").as_deref(), Some("3"));
    let (r, _) = query(&mut alice, "qa", "").await;
    assert_eq!(r.len(), 3);
}

/// The archive's positions live in memory and are read again from the store when the
/// cache drops them (as after a restart): ids keep ascending and the cap counts right.
#[tokio::test]
async fn positions_reload_from_the_store() {
    let t = start_with("", "[archive]\nmax_messages_per_user = 3\n").await;
    let mut alice = login(&t, "alice", "a").await;
    let mut bob = login(&t, "bob", "b").await;
    bob.send("<presence/>").await;
    let mut ids = chat(&mut alice, &mut bob, 2).await;
    for user in ["alice", "bob"] {
        t.server.store.mam_index.invalidate(user);
    }
    ids.extend(chat(&mut alice, &mut bob, 3).await);
    let numeric: Vec<u64> = ids.iter().map(|i| u64::from_str_radix(i, 16).unwrap()).collect();
    assert!(numeric.windows(2).all(|w| w[0] < w[1]), "ids ascend across the reload: {ids:?}");
    let (r, iq) = query(&mut bob, "q", "").await;
    assert_eq!(bodies(&r), vec!["m1", "m2", "m3"], "the two oldest (first m1, m2) pruned");
    assert_eq!(rsm(&iq, "count").as_deref(), Some("3"));
    t.server.store.mam_index.invalidate("bob");
    chat(&mut alice, &mut bob, 1).await;
    let (r, _) = query(&mut bob, "q2", "").await;
    assert_eq!(bodies(&r), vec!["m2", "m3", "m1"]);
}

#[tokio::test]
async fn disabled_archive_keeps_nothing() {
    let t = start_with("", "[archive]\nenabled = false\n").await;
    let mut alice = login(&t, "alice", "a").await;
    let mut bob = login(&t, "bob", "b").await;
    bob.send("<presence/>").await;
    alice.send("<message to='bob@localhost' type='chat'><body>hi</body></message>").await;
    let m = bob.expect(|e| e.name() == "message").await;
    assert!(!m.has_child("stanza-id", SID));
    let (r, iq) = query(&mut bob, "q", "").await;
    assert!(r.is_empty());
    assert_eq!(rsm(&iq, "count").as_deref(), Some("0"));
}

#[tokio::test]
async fn a_message_routed_again_after_stream_management_is_archived_once() {
    let t = start("resume_timeout = '1s'").await;
    let mut alice = login(&t, "alice", "a").await;
    let mut bob = login(&t, "bob", "b").await;
    bob.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>").await;
    bob.expect(|e| e.name() == "enabled").await;
    bob.send("<presence/>").await;
    alice.send("<message to='bob@localhost/b' type='chat'><body>unacked</body></message>").await;
    let first = bob.expect(|e| e.name() == "message").await;
    let id = first.get_child("stanza-id", SID).unwrap().attr("id").unwrap().to_string();
    drop(bob);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let mut back = login(&t, "bob", "c").await;
    back.send("<presence/>").await;
    let again = back.expect(|e| e.name() == "message").await;
    assert_eq!(again.get_child("stanza-id", SID).unwrap().attr("id"), Some(id.as_str()), "the same archive id");
    let (r, _) = query(&mut back, "q", "").await;
    assert_eq!(bodies(&r), vec!["unacked"]);
}
