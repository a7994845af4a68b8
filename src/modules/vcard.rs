//! XEP-0054: vcard-temp. Each account stores one vCard; anyone may read it, only the
//! owner may change it.

use minidom::Element;

use super::iq::Target;
use crate::c2s::session::Session;
use crate::error::StanzaError;
use crate::xml::{ns, write};

pub const FEATURES: &[&str] = &[ns::VCARD];

pub async fn handle(
    session: &mut Session,
    target: &Target,
    set: bool,
    payload: &Element,
) -> Result<Option<Element>, StanzaError> {
    let store = &session.server.store;
    let owner = match target {
        Target::OwnAccount => session.username.clone(),
        Target::Account(user) if !set => user.clone(),
        Target::Account(_) => return Err(StanzaError::forbidden().with_text("only the owner may change a vCard")),
        _ => return Err(StanzaError::service_unavailable()),
    };
    if set {
        let xml = String::from_utf8(write::element_bytes(payload)).map_err(|_| StanzaError::bad_request())?;
        store.vcards.put(owner.as_bytes(), &xml).map_err(internal)?;
        store.flush().await.map_err(internal)?;
        return Ok(None);
    }
    if !crate::accounts::exists(store, &owner) {
        return Err(StanzaError::service_unavailable());
    }
    match store.vcards.get::<String>(owner.as_bytes()).map_err(internal)? {
        Some(xml) => xml.parse::<Element>().map(Some).map_err(|_| StanzaError::internal_server_error()),
        None => Ok(Some(Element::bare("vCard", ns::VCARD))),
    }
}

fn internal(e: crate::store::StoreError) -> StanzaError {
    tracing::error!("vCard storage: {e}");
    StanzaError::internal_server_error()
}
