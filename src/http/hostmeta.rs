//! XEP-0156 discovery: `/.well-known/host-meta` (XRD) and `host-meta.json` (JRD) name the
//! WebSocket endpoint, so a web client given only a domain finds where to connect.

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Peer;
use crate::xml::AttrExt;

const REL_WEBSOCKET: &str = "urn:xmpp:alt-connections:websocket";
const NS_XRD: &str = "http://docs.oasis-open.org/ns/xri/xrd-1.0";

/// The WebSocket URL as seen by this client: the Host it asked for, `wss` when the request
/// came over TLS (or through a local proxy that says it terminated TLS).
pub fn websocket_url(peer: &Peer, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    // A Host header is client input that ends up in a URL: allow host names, IPv4/IPv6
    // literals and a port, nothing else.
    if host.is_empty() || host.len() > 255 || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return None;
    }
    let proxied_tls =
        peer.addr.ip().is_loopback() && headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https");
    let scheme = if peer.tls || proxied_tls { "wss" } else { "ws" };
    Some(format!("{scheme}://{host}/xmpp-websocket"))
}

pub async fn xml(ConnectInfo(peer): ConnectInfo<Peer>, headers: HeaderMap) -> Response {
    let Some(url) = websocket_url(&peer, &headers) else {
        return (StatusCode::BAD_REQUEST, "missing or invalid Host header").into_response();
    };
    let link = minidom::Element::builder("Link", NS_XRD).a("rel", REL_WEBSOCKET).a("href", url).build();
    let xrd = minidom::Element::builder("XRD", NS_XRD).append(link).build();
    let body = format!("<?xml version='1.0' encoding='utf-8'?>\n{}", String::from(&xrd));
    (
        [
            (header::CONTENT_TYPE, "application/xrd+xml; charset=utf-8"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub async fn json(ConnectInfo(peer): ConnectInfo<Peer>, headers: HeaderMap) -> Response {
    let Some(url) = websocket_url(&peer, &headers) else {
        return (StatusCode::BAD_REQUEST, "missing or invalid Host header").into_response();
    };
    let body = serde_json::json!({ "links": [{ "rel": REL_WEBSOCKET, "href": url }] });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4], tls: bool) -> Peer {
        Peer { addr: (ip, 1234).into(), tls }
    }

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, h.parse().unwrap());
        m
    }

    #[test]
    fn scheme_follows_the_listener() {
        assert_eq!(
            websocket_url(&peer([10, 0, 0, 1], true), &host("meet.example.org")).as_deref(),
            Some("wss://meet.example.org/xmpp-websocket")
        );
        assert_eq!(
            websocket_url(&peer([127, 0, 0, 1], false), &host("localhost:5280")).as_deref(),
            Some("ws://localhost:5280/xmpp-websocket")
        );
    }

    #[test]
    fn forwarded_proto_only_from_loopback() {
        let mut h = host("meet.example.org");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(websocket_url(&peer([127, 0, 0, 1], false), &h).unwrap().starts_with("wss:"));
        assert!(websocket_url(&peer([10, 0, 0, 1], false), &h).unwrap().starts_with("ws:"));
    }

    #[test]
    fn hostile_host_is_refused() {
        assert_eq!(websocket_url(&peer([127, 0, 0, 1], false), &host("a\"b")), None);
        assert_eq!(websocket_url(&peer([127, 0, 0, 1], false), &host("evil/x")), None);
        assert_eq!(websocket_url(&peer([127, 0, 0, 1], false), &HeaderMap::new()), None);
    }
}
