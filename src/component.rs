//! XEP-0114 Jabber Component Protocol: external services (bots, gateways) that own a domain,
//! connect over TCP with a shared secret, and exchange stanzas with local users.
//!
//! Components speak `jabber:component:accept`; stanzas are moved to and from
//! `jabber:client` at this boundary, so the rest of the server sees one namespace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::error::{StanzaError, StreamCondition, StreamError};
use crate::server::Server;
use crate::xml::{ns, write, Framer, FramerEvent, Limits};

pub const NS_ACCEPT: &str = "jabber:component:accept";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connected components by domain.
#[derive(Default)]
pub struct Components {
    links: Mutex<HashMap<String, mpsc::Sender<Element>>>,
}

impl Components {
    /// Queue a stanza for the component serving `domain`; false if none is connected
    /// (or it stopped reading).
    pub fn send(&self, domain: &str, stanza: Element) -> bool {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links.get(domain).is_some_and(|tx| tx.try_send(stanza).is_ok())
    }

    pub fn is_connected(&self, domain: &str) -> bool {
        self.links.lock().unwrap_or_else(|e| e.into_inner()).contains_key(domain)
    }
}

pub async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    let mut shutdown = server.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.recv() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let server = server.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(server, tcp).await {
                        tracing::info!(%peer, "component connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("component accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve(server: Arc<Server>, mut tcp: TcpStream) -> Result<(), String> {
    let limits = Limits { max_stanza_size: server.config.c2s.max_stanza_size, max_depth: server.config.c2s.max_depth };
    let mut framer = Framer::new(limits);
    let mut buf = vec![0u8; 16 * 1024];
    let id = hex(&crate::sasl::credentials::random_bytes(8));
    // 1. Header and handshake (XEP-0114 §3).
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut domain: Option<String> = None;
        loop {
            while let Some(ev) = framer.next_event().map_err(StreamError::from)? {
                match ev {
                    FramerEvent::StreamOpen(attrs) => {
                        let to = attrs.get("to").cloned().unwrap_or_default();
                        let header = stream_header(&to, &id);
                        tcp.write_all(&header)
                            .await
                            .map_err(|e| StreamError::new(StreamCondition::InternalServerError, e.to_string()))?;
                        if attrs.get("xmlns").map(String::as_str) != Some(NS_ACCEPT) {
                            return Err(StreamError::new(
                                StreamCondition::InvalidNamespace,
                                format!("components use {NS_ACCEPT}"),
                            ));
                        }
                        if !server.config.components.secrets.contains_key(&to) {
                            return Err(StreamError::new(
                                StreamCondition::HostUnknown,
                                format!("no component is configured for {to}"),
                            ));
                        }
                        domain = Some(to);
                    }
                    FramerEvent::Element(el) if el.name() == "handshake" => {
                        let Some(d) = domain.clone() else {
                            return Err(StreamError::new(
                                StreamCondition::NotAuthorized,
                                "handshake before the header",
                            ));
                        };
                        let secret = &server.config.components.secrets[&d];
                        let expected = hex(&crate::sasl::HashAlg::Sha1.hash(format!("{id}{secret}").as_bytes()));
                        let given = el.text().trim().to_ascii_lowercase();
                        if !crate::sasl::credentials::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                            return Err(StreamError::new(StreamCondition::NotAuthorized, "wrong component secret"));
                        }
                        return Ok(d);
                    }
                    _ => return Err(StreamError::new(StreamCondition::NotAuthorized, "complete the handshake first")),
                }
            }
            let n = tcp
                .read(&mut buf)
                .await
                .map_err(|e| StreamError::new(StreamCondition::InternalServerError, e.to_string()))?;
            if n == 0 {
                return Err(StreamError::new(StreamCondition::InternalServerError, "closed during the handshake"));
            }
            framer.feed(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| Err(StreamError::new(StreamCondition::ConnectionTimeout, "no handshake in time")));
    let domain = match handshake {
        Ok(d) => d,
        Err(e) => return close(&mut tcp, e).await,
    };
    let (tx, mut rx) = mpsc::channel::<Element>(server.config.c2s.send_queue);
    let registered = {
        let mut links = server.components.links.lock().unwrap_or_else(|e| e.into_inner());
        !links.contains_key(&domain) && links.insert(domain.clone(), tx).is_none()
    };
    if !registered {
        return close(&mut tcp, StreamError::new(StreamCondition::Conflict, "this component is already connected"))
            .await;
    }
    tracing::info!(%domain, "component connected");
    let _ = tcp.write_all(&write::element_bytes(&Element::bare("handshake", NS_ACCEPT))).await;
    let result = run(&server, &mut tcp, &mut framer, &mut buf, &mut rx, &domain).await;
    server.components.links.lock().unwrap_or_else(|e| e.into_inner()).remove(&domain);
    tracing::info!(%domain, "component disconnected");
    match result {
        Ok(()) => {
            let _ = tcp.write_all(write::STREAM_CLOSE).await;
            Ok(())
        }
        Err(e) => close(&mut tcp, e).await,
    }
}

async fn run(
    server: &Arc<Server>,
    tcp: &mut TcpStream,
    framer: &mut Framer,
    buf: &mut [u8],
    rx: &mut mpsc::Receiver<Element>,
    domain: &str,
) -> Result<(), StreamError> {
    let mut shutdown = server.shutdown.subscribe();
    loop {
        while let Some(ev) = framer.next_event().map_err(StreamError::from)? {
            match ev {
                FramerEvent::Element(el) => inbound(server, domain, el).await?,
                FramerEvent::StreamClose => return Ok(()),
                FramerEvent::StreamOpen(_) => {
                    return Err(StreamError::new(StreamCondition::NotWellFormed, "unexpected stream header"))
                }
            }
        }
        tokio::select! {
            read = tcp.read(buf) => match read {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => framer.feed(&buf[..n]),
            },
            out = rx.recv() => match out {
                Some(el) => {
                    let el = renamespace(&el, ns::CLIENT, NS_ACCEPT);
                    tcp.write_all(&write::element_bytes(&el)).await.map_err(|e| StreamError::new(StreamCondition::InternalServerError, e.to_string()))?;
                }
                None => return Ok(()),
            },
            _ = shutdown.recv() => return Err(StreamError::new(StreamCondition::SystemShutdown, "the server is shutting down")),
        }
    }
}

/// A stanza from the component: check its `from`, then route it like a local one.
async fn inbound(server: &Arc<Server>, domain: &str, el: Element) -> Result<(), StreamError> {
    if el.ns() != NS_ACCEPT || !matches!(el.name(), "message" | "presence" | "iq") {
        return Err(StreamError::new(StreamCondition::UnsupportedStanzaType, format!("unexpected <{}/>", el.name())));
    }
    let el = renamespace(&el, NS_ACCEPT, ns::CLIENT);
    let from_ok = crate::stanza::from(&el).is_some_and(|f| f.domain().as_str() == domain);
    if !from_ok {
        return Err(StreamError::new(StreamCondition::InvalidFrom, format!("stanzas must come from {domain}")));
    }
    let to = match crate::stanza::to(&el) {
        Ok(Some(to)) => to,
        _ => {
            bounce(server, domain, &el, StanzaError::jid_malformed());
            return Ok(());
        }
    };
    match el.name() {
        "message" => {
            if let Err(e) = crate::modules::message::route(server, el.clone(), &to).await {
                bounce(server, domain, &el, e);
            }
        }
        "presence" => crate::modules::presence::deliver(server, &to, &el),
        _ => {
            let delivered = match (to.node(), to.resource()) {
                (Some(_), Some(_)) => crate::modules::message::deliver_to_resource(server, &to, el.clone()),
                _ => false,
            };
            if !delivered {
                bounce(server, domain, &el, StanzaError::service_unavailable());
            }
        }
    }
    Ok(())
}

fn bounce(server: &Server, domain: &str, el: &Element, error: StanzaError) {
    if crate::stanza::may_bounce(el) {
        server.components.send(domain, crate::stanza::error_reply(el, error, None));
    }
}

/// The same element with `from` namespace replaced by `to` throughout (children that
/// inherited the stanza namespace included).
pub fn renamespace(el: &Element, from: &str, to: &str) -> Element {
    let name_ns = if el.ns() == from { to.to_string() } else { el.ns() };
    let mut out = Element::bare(el.name(), name_ns);
    *out.attrs_mut() = el.attrs().clone();
    for node in el.nodes() {
        match node {
            minidom::Node::Element(child) => {
                out.append_child(renamespace(child, from, to));
            }
            minidom::Node::Text(t) => out.append_text_node(t.clone()),
        }
    }
    out
}

fn stream_header(from: &str, id: &str) -> Vec<u8> {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_ACCEPT}' xmlns:stream='{}' from='{}' id='{}'>",
        ns::STREAM,
        write::escape(from),
        write::escape(id)
    )
    .into_bytes()
}

async fn close(tcp: &mut TcpStream, err: StreamError) -> Result<(), String> {
    let mut out = write::element_bytes(&err.to_element());
    out.extend_from_slice(write::STREAM_CLOSE);
    let _ = tcp.write_all(&out).await;
    Err(err.text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
