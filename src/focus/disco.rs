//! XEP-0030 for the focus: what `focus.<domain>` and each `call@focus.<domain>` are.

use minidom::Element;

use crate::jingle::ns;
use crate::xml::{ns as xmlns, AttrExt};

/// Features of the focus and of every call (XEP-0521 §"Discovering support").
pub const FEATURES: &[&str] = &[
    xmlns::DISCO_INFO,
    ns::JINGLE,
    ns::RTP,
    ns::RTP_AUDIO,
    ns::RTP_VIDEO,
    ns::ICE_UDP,
    ns::DTLS,
    ns::RTCP_FB,
    ns::HDREXT,
    ns::GROUPING,
    ns::SSMA,
    ns::AV_CONFERENCES,
];

/// The disco#info answer; `call` is the call's name when asked about a call.
pub fn info(call: Option<&str>, node: Option<&str>) -> Element {
    let mut q = Element::builder("query", xmlns::DISCO_INFO);
    if let Some(n) = node {
        q = q.a("node", n);
    }
    let name = match call {
        Some(c) => format!("Call {c}"),
        None => "Calls (Jingle focus)".to_string(),
    };
    q = q.append(
        Element::builder("identity", xmlns::DISCO_INFO)
            .a("category", "conference")
            .a("type", "audio-video")
            .a("name", name),
    );
    for f in FEATURES {
        q = q.append(Element::builder("feature", xmlns::DISCO_INFO).a("var", *f));
    }
    q.build()
}

/// disco#items of the focus: the calls in progress.
pub fn items(domain: &str, calls: &[String]) -> Element {
    let mut q = Element::builder("query", xmlns::DISCO_ITEMS);
    for c in calls {
        q = q.append(
            Element::builder("item", xmlns::DISCO_ITEMS).a("jid", format!("{c}@{domain}")).a("name", c.clone()),
        );
    }
    q.build()
}
