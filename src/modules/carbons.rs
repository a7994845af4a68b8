//! XEP-0280 Message Carbons: every resource that enabled carbons gets a copy of the
//! one-to-one messages its account sends and receives on other resources.

use minidom::Element;

use crate::router::{self, Resource};
use crate::server::Server;
use crate::xml::{ns, AttrExt};

pub const NS: &str = "urn:xmpp:carbons:2";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_HINTS: &str = "urn:xmpp:hints";

pub const FEATURES: &[&str] = &[NS];

/// `<enable/>` or `<disable/>`: the new setting, or None for another payload.
pub fn toggle(payload: &Element) -> Option<bool> {
    match payload.name() {
        "enable" if payload.ns() == NS => Some(true),
        "disable" if payload.ns() == NS => Some(false),
        _ => None,
    }
}

/// §6: chat messages, and normal ones with a body, unless marked private or no-copy.
/// MUC messages (groupchat) never, nor errors.
pub fn eligible(msg: &Element) -> bool {
    let ty = msg.attr("type").unwrap_or("normal");
    let kind_ok = ty == "chat" || (ty == "normal" && msg.has_child("body", ns::CLIENT));
    kind_ok
        && !msg.has_child("private", NS)
        && !msg.has_child("no-copy", NS_HINTS)
        && !msg.has_child("received", NS)
        && !msg.has_child("sent", NS)
}

/// Copy `msg` to `user`'s carbons-enabled resources other than those in `skip`.
/// `direction` is "sent" or "received".
pub fn copy(server: &Server, user_bare: &str, msg: &Element, direction: &str, skip: &[&str]) {
    copy_to(&server.registry.resources(user_bare), user_bare, msg, direction, skip);
}

/// [`copy`] with the account's resources already looked up (the routing path has them).
pub fn copy_to(resources: &[Resource], user_bare: &str, msg: &Element, direction: &str, skip: &[&str]) {
    let targets: Vec<&Resource> =
        resources.iter().filter(|r| r.carbons && !skip.contains(&r.resource.as_str())).collect();
    if targets.is_empty() {
        return;
    }
    let wrapped = Element::builder(direction, NS)
        .append(Element::builder("forwarded", NS_FORWARD).append(msg.clone()).build())
        .build();
    for r in targets {
        let copy = Element::builder("message", ns::CLIENT)
            .a("from", user_bare)
            .a("to", format!("{user_bare}/{}", r.resource))
            .a("type", msg.attr("type").unwrap_or("normal"))
            .append(wrapped.clone())
            .build();
        router::send(r, copy);
    }
}
