//! Client-to-server connections: the accept loop and one task per connection.

mod connection;
pub mod negotiation;
pub mod queue;
pub mod session;
pub mod sm;
pub mod websocket;

pub use connection::accept_loop;
