//! The service-wide participant capacity (`http.capacity`): once reached, new joins get a
//! MUC error with a text, and people already in meetings go on.

mod support;

use support::start_with;

#[tokio::test]
async fn joins_beyond_capacity_are_refused_with_a_text() {
    let t = start_with("", "[http]\ncapacity = 1").await;
    let mut ada = support::account(&t, "ada", "r").await;
    // A join without the MUC extension makes an unlocked instant room at once.
    ada.send("<presence to='one@conference.localhost/Ada'/>").await;
    let me = ada.expect(|e| e.name() == "presence" && e.attr("from") == Some("one@conference.localhost/Ada")).await;
    assert_ne!(me.attr("type"), Some("error"), "{me:?}");

    let mut bob = support::account(&t, "bob", "r").await;
    bob.send("<presence to='two@conference.localhost/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    let refused = bob.expect(|e| e.name() == "presence").await;
    assert_eq!(refused.attr("type"), Some("error"), "{refused:?}");
    let error = refused.get_child("error", "jabber:client").unwrap();
    assert!(error.has_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    let text = error.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas").unwrap().text();
    assert!(text.contains("Capacity reached") && text.contains("Capacité atteinte"), "{text}");

    // The meeting in progress goes on.
    ada.send("<message to='one@conference.localhost' type='groupchat' id='g'><body>still here</body></message>").await;
    let echo = ada.expect(|e| e.name() == "message" && e.has_child("body", "jabber:client")).await;
    assert_eq!(echo.get_child("body", "jabber:client").unwrap().text(), "still here");
}
