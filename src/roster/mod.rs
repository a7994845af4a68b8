//! Roster and presence subscriptions (RFC 6121 §2, §3, Appendix A), as a sans-IO core.
//!
//! Everything here is plain data and pure functions: the router loads what it stored
//! for an account and a contact, asks this module what the RFC says to do, and carries
//! out the answer (store, push, route, deliver, reply). No sockets, storage or clocks.
//!
//! - [`subscription`]: the nine states of Appendix A.1, the pre-approval flag, and the
//!   [`Relation`] of an account to a contact (including a request from a contact who
//!   is not in the roster, which §3.1.3 keeps without creating an item).
//! - [`transition`]: the eight subscription cases (outbound and inbound subscribe,
//!   subscribed, unsubscribe, unsubscribed) as functions returning an [`Outcome`].
//! - [`item`]: roster items, their `jabber:iq:roster` XML, and validation of client
//!   roster sets with the exact stanza error for each fault ([`RosterError`]).
//! - [`set`]: applying a roster set or removal to the stored roster.
//! - [`version`]: roster versioning (§2.6).

pub mod error;
pub mod item;
pub mod set;
pub mod subscription;
pub mod transition;
pub mod version;

#[cfg(test)]
mod tests;

use minidom::Element;

pub use error::RosterError;
pub use item::{
    parse_roster_get, parse_roster_set, query_element, removal_element, Limits, RosterGet, RosterItem, RosterSet,
};
pub use set::{apply_set, SetOutcome};
pub use subscription::{ItemState, Relation, Subscription};
pub use transition::{
    process, Direction, Forward, ItemChange, Outcome, PendingRequest, Policy, PresenceToPeer, SubscriptionKind,
};
pub use version::{answer_get, changes_since, GetAnswer, RosterVersion, VersionInfo};

/// The roster namespace (RFC 6121 §2.1).
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// Stream feature announcing roster versioning (RFC 6121 §2.6.1).
pub const NS_ROSTER_VER: &str = "urn:xmpp:features:rosterver";
/// Stream feature announcing subscription pre-approval (RFC 6121 §3.4.1).
pub const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";

/// The stream features this module supports, for the post-bind `<stream:features/>`:
/// `<ver xmlns='urn:xmpp:features:rosterver'/>` always, and
/// `<sub xmlns='urn:xmpp:features:pre-approval'/>` when the policy enables pre-approval.
pub fn stream_features(policy: Policy) -> Vec<Element> {
    let mut features = vec![Element::bare("ver", NS_ROSTER_VER)];
    if policy.pre_approval {
        features.push(Element::bare("sub", NS_PRE_APPROVAL));
    }
    features
}
