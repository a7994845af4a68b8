//! XEP-0077 In-Band Registration after sign-in: read the registration, change the
//! password, cancel the account. (Registration before sign-in is part of stream
//! negotiation.)

use minidom::Element;

use super::iq::reply_to;
use crate::c2s::session::Session;
use crate::error::{StanzaError, StreamCondition, StreamError};
use crate::router::Outbound;
use crate::xml::ns;

pub const FEATURES: &[&str] = &[ns::REGISTER];

pub async fn iq(session: &mut Session, iq: &Element, set: bool) {
    let Some(query) = iq.get_child("query", ns::REGISTER) else {
        return;
    };
    if !set {
        let q = Element::builder("query", ns::REGISTER)
            .append(Element::bare("registered", ns::REGISTER))
            .append(Element::builder("username", ns::REGISTER).append(session.username.as_str()).build())
            .build();
        return session.send(reply_to(session, iq, Some(q)));
    }
    let server = session.server.clone();
    if query.has_child("remove", ns::REGISTER) {
        match crate::accounts::remove(&server.store, &session.username).await {
            Ok(_) => {
                tracing::info!(user = %session.username, "account removed by its owner");
                session.send(reply_to(session, iq, None));
                // XEP-0077 §3.2: the server then closes every stream of the account.
                for r in server.registry.resources(&session.bare_str()) {
                    let _ = r.tx.try_send(Outbound::Close(Box::new(StreamError::new(
                        StreamCondition::NotAuthorized,
                        "the account was removed",
                    ))));
                }
            }
            Err(e) => {
                tracing::error!("removing account: {e}");
                session.bounce(iq, StanzaError::internal_server_error());
            }
        }
        return;
    }
    let field = |name| query.get_child(name, ns::REGISTER).map(|e| e.text());
    match (field("username"), field("password")) {
        (Some(u), Some(p)) if !p.is_empty() => {
            if crate::sasl::normalize_username(u.trim()).as_deref() != Some(session.username.as_str()) {
                return session
                    .bounce(iq, StanzaError::bad_request().with_text("you can only change your own password"));
            }
            match crate::accounts::set_password(
                &server.store,
                &session.username,
                &p,
                server.config.auth.scram_iterations,
            )
            .await
            {
                Ok(true) => session.send(reply_to(session, iq, None)),
                Ok(false) => session.bounce(iq, StanzaError::item_not_found()),
                Err(e) => {
                    tracing::error!("changing password: {e}");
                    session.bounce(iq, StanzaError::internal_server_error());
                }
            }
        }
        _ => session.bounce(iq, StanzaError::bad_request().with_text("give username and password, or <remove/>")),
    }
}
