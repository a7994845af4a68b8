//! XEP-0215 External Service Discovery: the STUN/TURN servers of `[turn]`, so clients
//! can reach the SFU from behind strict firewalls.
//!
//! TURN services without static credentials get temporary ones from the shared secret,
//! in coturn's `use-auth-secret` scheme ("TURN REST API"): the username is
//! `<expiry unix time>:<bare JID>` and the password base64(HMAC-SHA1(secret, username)).
//! coturn recomputes the password and refuses usernames whose time has passed, so
//! nothing is stored here and nothing needs revoking.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use minidom::Element;

use crate::c2s::session::Session;
use crate::config::{ExternalService, TurnConfig};
use crate::error::StanzaError;
use crate::stanza::{datetime, now_secs};
use crate::xml::AttrExt;

pub const NS: &str = "urn:xmpp:extdisco:2";

pub const FEATURES: &[&str] = &[NS];

/// coturn's TURN REST credentials for `user`, valid until `expires` (Unix time).
pub fn rest_credentials(secret: &str, user: &str, expires: u64) -> (String, String) {
    let username = format!("{expires}:{user}");
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let password = B64.encode(hmac::sign(&key, username.as_bytes()).as_ref());
    (username, password)
}

fn is_turn(s: &ExternalService) -> bool {
    s.kind.starts_with("turn")
}

/// The `<service/>` element for `s`, with credentials for `user` where it has some.
fn service(config: &TurnConfig, s: &ExternalService, user: &str, now: u64) -> Element {
    let mut b = Element::builder("service", NS)
        .a("type", s.kind.as_str())
        .a("host", s.host.as_str())
        .a("port", s.port.to_string());
    if !s.transport.is_empty() {
        b = b.a("transport", s.transport.as_str());
    }
    if !s.name.is_empty() {
        b = b.a("name", s.name.as_str());
    }
    if !s.username.is_empty() {
        b = b.a("username", s.username.as_str()).a("password", s.password.0.as_str()).a("restricted", "1");
    } else if is_turn(s) && !config.secret.0.is_empty() {
        let expires = now + config.ttl.as_secs();
        let (username, password) = rest_credentials(&config.secret.0, user, expires);
        b = b.a("username", username).a("password", password).a("expires", datetime(expires)).a("restricted", "1");
    }
    b.build()
}

/// §3.1/§3.2: every service, or those of the requested `type`.
pub fn list(config: &TurnConfig, query: &Element, user: &str, now: u64) -> Element {
    let wanted = query.attr("type");
    let mut q = Element::builder("services", NS);
    if let Some(t) = wanted {
        q = q.a("type", t);
    }
    for s in config.services.iter().filter(|s| wanted.is_none_or(|t| t == s.kind)) {
        q = q.append(service(config, s, user, now));
    }
    q.build()
}

/// §3.3: credentials for one service, named by host and type (and port, if given).
pub fn credentials(config: &TurnConfig, query: &Element, user: &str, now: u64) -> Result<Element, StanzaError> {
    let Some(want) = query.get_child("service", NS) else {
        return Err(StanzaError::bad_request().with_text("name the service: <service host='…' type='…'/>"));
    };
    let port = want.attr("port").and_then(|p| p.parse::<u16>().ok());
    let found = config.services.iter().find(|s| {
        want.attr("host") == Some(s.host.as_str())
            && want.attr("type").is_none_or(|t| t == s.kind)
            && port.is_none_or(|p| p == s.port)
    });
    match found {
        Some(s) => Ok(Element::builder("credentials", NS).append(service(config, s, user, now)).build()),
        None => Err(StanzaError::item_not_found().with_text("no such service")),
    }
}

/// The iq handler: `services` or `credentials` addressed to the server.
pub fn handle(session: &Session, payload: &Element) -> Result<Option<Element>, StanzaError> {
    let config = &session.server.config.turn;
    let user = session.bare_str();
    match payload.name() {
        "services" => Ok(Some(list(config, payload, &user, now_secs()))),
        "credentials" => credentials(config, payload, &user, now_secs()).map(Some),
        _ => Err(StanzaError::service_unavailable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config() -> TurnConfig {
        let svc = |kind: &str, port, username: &str| ExternalService {
            kind: kind.into(),
            host: "turn.example.org".into(),
            port,
            transport: "udp".into(),
            username: username.into(),
            password: Secret(if username.is_empty() { String::new() } else { "pw".into() }),
            name: String::new(),
        };
        TurnConfig {
            services: vec![svc("stun", 3478, ""), svc("turn", 3478, ""), svc("turns", 5349, "static")],
            secret: Secret("0123456789abcdef".into()),
            ttl: std::time::Duration::from_secs(3600),
        }
    }

    #[test]
    fn coturn_rest_credentials() {
        // Expected value from `printf '1000:ada@localhost' | openssl dgst -sha1 -hmac secret -binary | base64`.
        let (u, p) = rest_credentials("secret", "ada@localhost", 1000);
        assert_eq!(u, "1000:ada@localhost");
        assert_eq!(p, "R/Mo6Hdc3mi8YeKaUMNxwaizhrM=");
        assert_ne!(p, rest_credentials("other", "ada@localhost", 1000).1);
    }

    #[test]
    fn lists_filters_and_credentials() {
        let c = config();
        let all = list(&c, &Element::bare("services", NS), "ada@localhost", 100);
        let items: Vec<&Element> = all.children().collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].attr("username"), None, "STUN needs no credentials");
        assert_eq!(items[1].attr("username"), Some("3700:ada@localhost"));
        assert_eq!(items[1].attr("expires"), Some("1970-01-01T01:01:40Z"));
        assert_eq!(items[2].attr("username"), Some("static"));
        let q: Element = "<services xmlns='urn:xmpp:extdisco:2' type='turn'/>".parse().unwrap();
        assert_eq!(list(&c, &q, "ada@localhost", 100).children().count(), 1);
        let q: Element =
            "<credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.org' type='turns'/></credentials>"
                .parse()
                .unwrap();
        let r = credentials(&c, &q, "ada@localhost", 100).unwrap();
        assert_eq!(r.children().next().unwrap().attr("port"), Some("5349"));
        let q: Element = "<credentials xmlns='urn:xmpp:extdisco:2'><service host='nope' type='turn'/></credentials>"
            .parse()
            .unwrap();
        assert_eq!(credentials(&c, &q, "ada@localhost", 100).unwrap_err().condition, "item-not-found");
    }
}
