//! XEP-0030 Service Discovery for the server and for accounts, with XEP-0157 contact
//! addresses (XEP-0128 extended info) and the XEP-0115 hash of the server's info.

use minidom::Element;

use super::iq::Target;
use crate::c2s::session::Session;
use crate::config::ContactConfig;
use crate::error::StanzaError;
use crate::xml::{ns, AttrExt};

pub const FEATURES: &[&str] = &[ns::DISCO_INFO, ns::DISCO_ITEMS];

/// The node of our XEP-0115 entity capabilities.
pub const CAPS_NODE: &str = "https://github.com/amphi-xmpp/amphi";

/// XEP-0115 §5.1 verification string of the server's disco#info, SHA-1, base64.
pub fn caps_ver(contact: &ContactConfig) -> String {
    use base64::Engine;
    let mut s = String::from("server/im//amphi<");
    for f in super::server_features() {
        s.push_str(f);
        s.push('<');
    }
    if let Some(form) = contact_form(contact) {
        s.push_str(ns::SERVERINFO);
        s.push('<');
        let mut fields: Vec<(String, Vec<String>)> = form
            .children()
            .filter_map(|f| {
                let var = f.attr("var")?;
                (var != "FORM_TYPE").then(|| (var.to_string(), f.children().map(|v| v.text()).collect()))
            })
            .collect();
        fields.sort();
        for (var, mut values) in fields {
            s.push_str(&var);
            s.push('<');
            values.sort();
            for v in values {
                s.push_str(&v);
                s.push('<');
            }
        }
    }
    let hash = crate::sasl::HashAlg::Sha1.hash(s.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// The `<c/>` element advertised in stream features (XEP-0115 §6.3).
pub fn caps_element(contact: &ContactConfig) -> Element {
    Element::builder("c", ns::CAPS).a("hash", "sha-1").a("node", CAPS_NODE).a("ver", caps_ver(contact)).build()
}

pub fn info(session: &Session, target: &Target, query: &Element) -> Result<Option<Element>, StanzaError> {
    // The hash computed once at start (`Server::caps`), not again per query.
    let caps_node = format!("{CAPS_NODE}#{}", session.server.caps.attr("ver").unwrap_or_default());
    let node = query.attr("node");
    if node.is_some_and(|n| n != caps_node || *target != Target::Server) {
        return Err(StanzaError::item_not_found().with_text("no such node"));
    }
    let (category, kind, features) = match target {
        Target::Server => ("server", "im", super::server_features()),
        Target::OwnAccount => ("account", "registered", super::account_features()),
        Target::Account(user) if crate::accounts::exists(&session.server.store, user) => {
            ("account", "registered", super::account_features())
        }
        _ => return Err(StanzaError::service_unavailable()),
    };
    let mut q = Element::builder("query", ns::DISCO_INFO).append(
        Element::builder("identity", ns::DISCO_INFO).a("category", category).a("type", kind).a("name", "amphi").build(),
    );
    for f in features {
        q = q.append(Element::builder("feature", ns::DISCO_INFO).a("var", f).build());
    }
    if *target == Target::Server {
        if let Some(form) = contact_form(&session.server.config.contact) {
            q = q.append(form);
        }
    }
    Ok(Some(q.build()))
}

pub fn items(session: &Session, target: &Target, query: &Element) -> Result<Option<Element>, StanzaError> {
    if query.attr("node").is_some() {
        return Err(StanzaError::item_not_found().with_text("no such node"));
    }
    match target {
        Target::Server | Target::OwnAccount => {}
        Target::Account(user) if crate::accounts::exists(&session.server.store, user) => {}
        _ => return Err(StanzaError::service_unavailable()),
    }
    let mut q = Element::builder("query", ns::DISCO_ITEMS);
    if *target == Target::Server {
        if let Some(muc) = &session.server.muc {
            q = q.append(
                Element::builder("item", ns::DISCO_ITEMS).a("jid", muc.domain.as_str()).a("name", "Chatrooms").build(),
            );
        }
        if let Some(upload) = &session.server.upload {
            q = q.append(
                Element::builder("item", ns::DISCO_ITEMS)
                    .a("jid", upload.domain.as_str())
                    .a("name", "HTTP File Upload")
                    .build(),
            );
        }
    }
    Ok(Some(q.build()))
}

/// XEP-0157: a `serverinfo` data form, or none when no address is configured.
pub fn contact_form(c: &ContactConfig) -> Option<Element> {
    let fields = [
        ("abuse-addresses", &c.abuse),
        ("admin-addresses", &c.admin),
        ("feedback-addresses", &c.feedback),
        ("sales-addresses", &c.sales),
        ("security-addresses", &c.security),
        ("support-addresses", &c.support),
    ];
    if fields.iter().all(|(_, v)| v.is_empty()) {
        return None;
    }
    let mut form = Element::builder("x", ns::DATA_FORMS).a("type", "result").append(
        Element::builder("field", ns::DATA_FORMS)
            .a("var", "FORM_TYPE")
            .a("type", "hidden")
            .append(Element::builder("value", ns::DATA_FORMS).append(ns::SERVERINFO).build())
            .build(),
    );
    for (var, values) in fields {
        if values.is_empty() {
            continue;
        }
        let mut field = Element::builder("field", ns::DATA_FORMS).a("var", var);
        for v in values {
            field = field.append(Element::builder("value", ns::DATA_FORMS).append(v.as_str()).build());
        }
        form = form.append(field.build());
    }
    Some(form.build())
}
