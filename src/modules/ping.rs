//! XEP-0199: XMPP Ping. The iq dispatcher answers pings to the server and the account.
use crate::xml::ns;
pub const FEATURES: &[&str] = &[ns::PING];
