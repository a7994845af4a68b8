//! What the running server advertises in disco#info (its own, an account's and the call
//! focus's) matches xep/doap.xml: every feature belongs to a listed XEP, and every listed
//! XEP with a disco feature advertises it.

mod support;

use std::collections::BTreeSet;

use minidom::Element;
use support::start;

/// Disco features and the XEP that defines each.
const FEATURE_XEP: &[(&str, &str)] = &[
    ("http://jabber.org/protocol/disco#info", "0030"),
    ("http://jabber.org/protocol/disco#items", "0030"),
    ("urn:xmpp:ping", "0199"),
    ("jabber:iq:version", "0092"),
    ("jabber:iq:last", "0012"),
    ("vcard-temp", "0054"),
    ("jabber:iq:register", "0077"),
    ("msgoffline", "0160"),
    ("urn:xmpp:carbons:2", "0280"),
    ("urn:xmpp:extdisco:2", "0215"),
    ("urn:xmpp:blocking", "0191"),
    ("urn:xmpp:mam:2", "0313"),
    // The focus (xep/jingle-conferences.md).
    ("http://jabber.org/protocol/commands", "0050"),
    ("urn:xmpp:jingle:1", "0166"),
    ("urn:xmpp:jingle:apps:rtp:1", "0167"),
    ("urn:xmpp:jingle:apps:rtp:audio", "0167"),
    ("urn:xmpp:jingle:apps:rtp:video", "0167"),
    ("urn:xmpp:jingle:transports:ice-udp:1", "0176"),
    ("urn:xmpp:jingle:apps:dtls:0", "0320"),
    ("urn:xmpp:jingle:apps:rtp:rtcp-fb:0", "0293"),
    ("urn:xmpp:jingle:apps:rtp:rtp-hdrext:0", "0294"),
    ("urn:xmpp:jingle:apps:grouping:0", "0338"),
    ("urn:xmpp:jingle:apps:rtp:ssma:0", "0339"),
];

/// Features of proposals that have no XEP number for the DOAP to name yet.
const PROPOSALS: &[&str] = &["urn:xmpp:jingle:av-conferences:0"];

fn doap_xeps() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/xep/doap.xml")).unwrap();
    let root: Element = text.parse().expect("doap.xml parses");
    let mut out = BTreeSet::new();
    let mut stack = vec![&root];
    while let Some(el) = stack.pop() {
        if el.name() == "xep" {
            if let Some(url) = el.attr_ns("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "resource") {
                if let Some(n) = url.rsplit("xep-").next().and_then(|s| s.strip_suffix(".html")) {
                    out.insert(n.to_string());
                }
            }
        }
        stack.extend(el.children());
    }
    out
}

#[tokio::test]
async fn advertised_features_match_the_doap() {
    let xeps = doap_xeps();
    assert!(xeps.contains("0030") && xeps.contains("0199"), "{xeps:?}");
    let t = start("").await;
    let mut c = support::account(&t, "doap", "r").await;
    let mut features = BTreeSet::new();
    // The server's features, those it answers for an account (XEP-0313 lives there), and
    // the call focus's.
    for to in ["localhost", "doap@localhost", "focus.localhost"] {
        c.send(&format!("<iq type='get' id='i' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"))
            .await;
        let reply = c.expect(|e| e.attr("id") == Some("i")).await;
        let query = reply.get_child("query", "http://jabber.org/protocol/disco#info").unwrap();
        features
            .extend(query.children().filter(|e| e.name() == "feature").filter_map(|e| e.attr("var")).map(String::from));
    }
    for f in features.iter().filter(|f| !PROPOSALS.contains(&f.as_str())) {
        let xep = FEATURE_XEP
            .iter()
            .find(|(var, _)| var == f)
            .unwrap_or_else(|| panic!("advertised feature {f} has no XEP in this test's table"));
        assert!(xeps.contains(xep.1), "{f} is advertised but XEP-{} is not in xep/doap.xml", xep.1);
    }
    for (var, xep) in FEATURE_XEP {
        if xeps.contains(*xep) {
            assert!(features.contains(*var), "XEP-{xep} is in doap.xml but {var} is not advertised");
        }
    }
}
