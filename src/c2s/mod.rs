//! Client-to-server connections: the accept loop and one task per connection.

mod connection;
pub mod negotiation;
pub mod session;
pub mod sm;
pub mod websocket;

pub use connection::accept_loop;
