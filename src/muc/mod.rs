//! XEP-0045 Multi-User Chat service on `conference.<domain>` (placeholder until the MUC
//! issue lands: every stanza gets service-unavailable).

use minidom::Element;
use std::sync::Arc;

use crate::error::StanzaError;
use crate::server::Server;

/// The MUC service. `route` receives every stanza addressed to the service's domain,
/// with `from` already stamped by the sender's session.
pub struct MucService {
    pub domain: String,
}

impl MucService {
    pub fn new(domain: String) -> MucService {
        MucService { domain }
    }

    /// Handle a stanza for the service or one of its rooms. Must not block: room work
    /// runs in room actors; this only hands the stanza over.
    pub fn route(&self, server: &Arc<Server>, stanza: Element) {
        if crate::stanza::may_bounce(&stanza) {
            let reply = crate::stanza::error_reply(&stanza, StanzaError::service_unavailable(), None);
            if let Ok(Some(to)) = crate::stanza::to(&reply) {
                crate::modules::message::deliver_to_resource(server, &to, reply);
            }
        }
    }
}
