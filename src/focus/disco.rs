//! XEP-0030 for the focus: what `focus.<domain>` and each `call@focus.<domain>` are.

use minidom::Element;

use super::conference::{END_CALL, NS_CALL, NS_COMMANDS};
use crate::jingle::ns;
use crate::xml::{ns as xmlns, AttrExt};

/// Features of the focus and of every call (XEP-0521 §"Discovering support"), and
/// XEP-0050: a call's moderators end it with the `end-call` command.
pub const FEATURES: &[&str] = &[
    xmlns::DISCO_INFO,
    NS_COMMANDS,
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

/// The disco#info answer; `call` is the call's name when asked about a call, and
/// `participants` how many sessions it has now (a XEP-0128 form, `FORM_TYPE`
/// `urn:amphi:call:0`: whether the call is in progress, for the room's occupants, who may
/// ask their call's JID even as guests).
pub fn info(call: Option<&str>, node: Option<&str>, participants: Option<usize>) -> Element {
    let mut q = Element::builder("query", xmlns::DISCO_INFO);
    if let Some(n) = node {
        q = q.a("node", n);
    }
    if call.is_some() && node == Some(END_CALL) {
        // XEP-0050 §2.3: what the command node is.
        return q
            .append(
                Element::builder("identity", xmlns::DISCO_INFO)
                    .a("category", "automation")
                    .a("type", "command-node")
                    .a("name", "End the call for everyone"),
            )
            .append(Element::builder("feature", xmlns::DISCO_INFO).a("var", NS_COMMANDS))
            .append(Element::builder("feature", xmlns::DISCO_INFO).a("var", "jabber:x:data"))
            .build();
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
    if let (Some(_), Some(n)) = (call, participants) {
        let field = |var: &str, ty: Option<&str>, value: String| {
            let mut f = Element::builder("field", xmlns::DATA_FORMS).a("var", var);
            if let Some(ty) = ty {
                f = f.a("type", ty);
            }
            f.append(Element::builder("value", xmlns::DATA_FORMS).append(value)).build()
        };
        q = q.append(
            Element::builder("x", xmlns::DATA_FORMS)
                .a("type", "result")
                .append(field("FORM_TYPE", Some("hidden"), NS_CALL.to_string()))
                .append(field("participants", None, n.to_string())),
        );
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

/// disco#items on the XEP-0050 commands node: the commands the asker may run.
pub fn command_list(items: Vec<Element>) -> Element {
    Element::builder("query", xmlns::DISCO_ITEMS).a("node", NS_COMMANDS).append_all(items).build()
}
