//! amphi: a conferencing server that speaks XMPP.
//!
//! Layers, from the socket inwards: [`c2s`] (transport and the connection task),
//! [`xml`] (incremental framing), [`c2s::negotiation`] and [`sasl`] (sans-IO stream
//! negotiation), [`c2s::session`] (an authenticated client), [`router`] (sessions and
//! delivery), [`modules`] (one file per RFC/XEP), [`roster`] (the sans-IO RFC 6121
//! core) and [`store`] (sled). See ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod archive;
pub mod auth;
pub mod c2s;
pub mod component;
pub mod config;
pub mod error;
pub mod focus;
pub mod guests;
pub mod http;
pub mod jingle;
pub mod modules;
pub mod muc;
pub mod oidc;
pub mod roster;
pub mod router;
pub mod sasl;
pub mod server;
pub mod sfu;
pub mod stanza;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod upload;
pub mod xml;
