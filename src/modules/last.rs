//! XEP-0012: Last Activity. To the server: its uptime. To an account: 0 when online,
//! else the time since it last went offline — only for the account itself and contacts
//! it shares its presence with (§4: others get forbidden).

use minidom::Element;

use super::iq::Target;
use crate::c2s::session::Session;
use crate::error::StanzaError;
use crate::stanza::now_secs;
use crate::xml::{ns, AttrExt};

pub const FEATURES: &[&str] = &[ns::LAST];

/// What is stored when an account's last resource goes offline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LastActivity {
    pub at: u64,
    pub status: String,
}

pub fn query(session: &Session, target: &Target) -> Result<Option<Element>, StanzaError> {
    let (seconds, status) = match target {
        Target::Server => (session.server.started.elapsed().as_secs(), String::new()),
        Target::OwnAccount => (0, String::new()),
        Target::Account(user) => {
            if !crate::accounts::exists(&session.server.store, user) {
                return Err(StanzaError::service_unavailable());
            }
            if !super::roster::shares_presence_with(&session.server, user, &session.bare_str()) {
                return Err(StanzaError::forbidden().with_text("only contacts subscribed to this account may ask"));
            }
            let online = session
                .server
                .registry
                .resources(&format!("{user}@{}", session.server.domain()))
                .iter()
                .any(|r| r.available);
            if online {
                (0, String::new())
            } else {
                match session.server.store.last_activity.get::<LastActivity>(user.as_bytes()) {
                    Ok(Some(l)) => (now_secs().saturating_sub(l.at), l.status),
                    _ => return Err(StanzaError::item_not_found()),
                }
            }
        }
        _ => return Err(StanzaError::service_unavailable()),
    };
    let mut q = Element::builder("query", ns::LAST).a("seconds", seconds.to_string());
    if !status.is_empty() {
        q = q.append(status);
    }
    Ok(Some(q.build()))
}
