//! The subscription state machine: what a server does with each of the four
//! subscription presence types, sent by a local account (outbound, RFC 6121 Appendix
//! A.2) or received for one (inbound, Appendix A.3), plus pre-approvals (§3.4).
//!
//! Each function takes the local account's [`Relation`] with the peer and returns an
//! [`Outcome`]: plain data the IO shell executes. Nothing here reads a clock or touches
//! storage, so every row of the RFC's tables is a one-line unit test.

use super::subscription::{ItemState, Relation, Subscription};

/// The four presence types that manage subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionKind {
    /// Ask for the peer's presence.
    Subscribe,
    /// Grant the peer's request (or pre-approve one).
    Subscribed,
    /// Stop receiving the peer's presence.
    Unsubscribe,
    /// Deny the peer's request or revoke its subscription.
    Unsubscribed,
}

impl SubscriptionKind {
    /// The `type` attribute of the presence stanza.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Subscribed => "subscribed",
            Self::Unsubscribe => "unsubscribe",
            Self::Unsubscribed => "unsubscribed",
        }
    }

    /// Reads a presence `type` attribute; `None` for every other presence type.
    pub fn from_type_attr(value: &str) -> Option<Self> {
        Some(match value {
            "subscribe" => Self::Subscribe,
            "subscribed" => Self::Subscribed,
            "unsubscribe" => Self::Unsubscribe,
            "unsubscribed" => Self::Unsubscribed,
            _ => return None,
        })
    }
}

/// Which way the stanza travels relative to the local account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by one of the local account's resources, to the peer.
    Outbound,
    /// Received from the peer, for the local account.
    Inbound,
}

/// Server features that change the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Subscription pre-approval (RFC 6121 §3.4), advertised with the
    /// `urn:xmpp:features:pre-approval` stream feature.
    pub pre_approval: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self { pre_approval: true }
    }
}

/// Where the stanza that caused the transition goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// Nowhere: the server absorbs it.
    Drop,
    /// Outbound: route it to the peer's bare JID, `from` stamped with the account's bare JID.
    Route,
    /// Inbound: deliver it to every available resource of the account. Offline
    /// subscribe requests are kept through [`PendingRequest::Store`].
    Deliver,
}

/// What happens to the roster item in storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemChange {
    /// Nothing to write.
    Unchanged,
    /// A new item (no name, no groups) in [`Outcome::relation`]'s state.
    Created,
    /// The existing item's state becomes [`Outcome::relation`]'s.
    Updated,
    /// The item is deleted.
    Removed,
}

/// The account's own presence sent to the peer as a consequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceToPeer {
    /// Nothing.
    Nothing,
    /// After forwarding: the current presence of each available resource of the
    /// account (RFC 6121 §3.1.5), or one `unavailable` when none is online.
    Available,
    /// Before forwarding, while the peer is still subscribed: `unavailable` from each
    /// available resource of the account (§3.2.2, §3.3.3).
    Unavailable,
}

/// What happens to the stored copy of the peer's subscribe request, which the server
/// redelivers whenever the account comes online until it is answered (§3.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingRequest {
    /// Leave it as it is (stored or not).
    Keep,
    /// Store this subscribe stanza (with its status text and extensions).
    Store,
    /// Delete the stored request.
    Discard,
}

/// Everything the shell must do after one subscription stanza, in this order:
/// persist (`item`, `request`); send `presence` if it is `Unavailable`; `forward`;
/// send `auto_reply`; send `presence` if it is `Available`; roster push if `roster_push`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The relation after the stanza (equal to the one before when nothing changed).
    pub relation: Relation,
    /// What to write for the roster item.
    pub item: ItemChange,
    /// Push the item to the account's interested resources (and bump the roster
    /// version): the item is new, gone, or changed in what clients see.
    pub roster_push: bool,
    /// Where the stanza goes.
    pub forward: Forward,
    /// A presence of this type the server sends to the peer on the account's behalf.
    pub auto_reply: Option<SubscriptionKind>,
    /// The account's presence sent to the peer.
    pub presence: PresenceToPeer,
    /// The stored request from the peer.
    pub request: PendingRequest,
}

impl Outcome {
    /// Derives the storage, push, request and presence effects from the two relations,
    /// so they can never disagree with the state change itself.
    pub(crate) fn between(before: Relation, after: Relation, forward: Forward) -> Self {
        let item = match (before.item(), after.item()) {
            (None, None) => ItemChange::Unchanged,
            (None, Some(_)) => ItemChange::Created,
            (Some(_), None) => ItemChange::Removed,
            (Some(a), Some(b)) if a == b => ItemChange::Unchanged,
            (Some(_), Some(_)) => ItemChange::Updated,
        };
        let roster_push = match (before.item(), after.item()) {
            (Some(a), Some(b)) => a.wire_view() != b.wire_view(),
            (a, b) => a.is_some() != b.is_some(),
        };
        let (was, is) = (before.subscription(), after.subscription());
        let request = match (was.pending_in(), is.pending_in()) {
            (false, true) => PendingRequest::Store,
            (true, false) => PendingRequest::Discard,
            _ => PendingRequest::Keep,
        };
        let presence = match (was.from(), is.from()) {
            (false, true) => PresenceToPeer::Available,
            (true, false) => PresenceToPeer::Unavailable,
            _ => PresenceToPeer::Nothing,
        };
        Self { relation: after, item, roster_push, forward, auto_reply: None, presence, request }
    }

    /// An outcome that changes nothing and forwards nothing.
    fn ignore(rel: Relation) -> Self {
        Self::between(rel, rel, Forward::Drop)
    }

    /// Moves to `next`, forwarding the stanza only if the state really changed (the
    /// rule of every table row except outbound subscribe and unsubscribe).
    fn move_if_changed(rel: Relation, next: Subscription, forward: Forward) -> Self {
        if rel.subscription() == next {
            Self::ignore(rel)
        } else {
            Self::between(rel, rel.moved_to(next), forward)
        }
    }
}

/// Runs the transition for `kind` travelling in `direction`.
pub fn process(direction: Direction, kind: SubscriptionKind, rel: Relation, policy: Policy) -> Outcome {
    use SubscriptionKind as K;
    match (direction, kind) {
        (Direction::Outbound, K::Subscribe) => outbound_subscribe(rel),
        (Direction::Outbound, K::Subscribed) => outbound_subscribed(rel, policy),
        (Direction::Outbound, K::Unsubscribe) => outbound_unsubscribe(rel),
        (Direction::Outbound, K::Unsubscribed) => outbound_unsubscribed(rel),
        (Direction::Inbound, K::Subscribe) => inbound_subscribe(rel),
        (Direction::Inbound, K::Subscribed) => inbound_subscribed(rel),
        (Direction::Inbound, K::Unsubscribe) => inbound_unsubscribe(rel),
        (Direction::Inbound, K::Unsubscribed) => inbound_unsubscribed(rel),
    }
}

/// The account asks for the peer's presence (§3.1.2, table A.2.1). Always routed, so
/// a peer that lost its state can answer again; creates the item if there is none.
pub fn outbound_subscribe(rel: Relation) -> Outcome {
    let now = rel.subscription();
    let next = if now.to() { now } else { now.with(None, None, Some(true), None).unwrap_or(now) };
    Outcome::between(rel, rel.moved_to(next), Forward::Route)
}

/// The account approves the peer's request (§3.1.5, table A.2.3), or pre-approves a
/// request not yet made (§3.4.2) when `policy.pre_approval` is on.
pub fn outbound_subscribed(rel: Relation, policy: Policy) -> Outcome {
    let now = rel.subscription();
    if now.pending_in() {
        let next = now.with(None, Some(true), None, Some(false)).unwrap_or(now);
        return Outcome::between(rel, rel.moved_to(next), Forward::Route);
    }
    if now.from() || !policy.pre_approval || rel.approved() {
        return Outcome::ignore(rel);
    }
    // Pre-approval: noted on the item (created with state None if needed), never routed.
    let approved = ItemState::new(now, true).unwrap_or(ItemState::plain(now));
    Outcome::between(rel, Relation::Item(approved), Forward::Drop)
}

/// The account stops receiving the peer's presence or withdraws its request (§3.3.2,
/// table A.2.2). Always routed.
pub fn outbound_unsubscribe(rel: Relation) -> Outcome {
    let now = rel.subscription();
    let next = now.with(Some(false), None, Some(false), None).unwrap_or(now);
    Outcome::between(rel, rel.moved_to(next), Forward::Route)
}

/// The account denies the peer's request or cancels its subscription (§3.2.2, table
/// A.2.4); on a pre-approved item it cancels the pre-approval and is not routed.
pub fn outbound_unsubscribed(rel: Relation) -> Outcome {
    if let Relation::Item(state) = rel {
        if state.approved() {
            return Outcome::between(rel, Relation::Item(state.without_approval()), Forward::Drop);
        }
    }
    let now = rel.subscription();
    let next = now.with(None, Some(false), None, Some(false)).unwrap_or(now);
    Outcome::move_if_changed(rel, next, Forward::Route)
}

/// The peer asks for the account's presence (§3.1.3, table A.3.1).
///
/// Already subscribed: answered `subscribed` by the server (and the account's presence
/// resent, as the peer's server evidently lost it). Pre-approved: answered and granted
/// at once (§3.4). Otherwise delivered and stored for redelivery; a peer not in the
/// roster gets no roster item.
pub fn inbound_subscribe(rel: Relation) -> Outcome {
    let now = rel.subscription();
    if now.from() {
        let mut out = Outcome::ignore(rel);
        out.auto_reply = Some(SubscriptionKind::Subscribed);
        out.presence = PresenceToPeer::Available;
        return out;
    }
    if rel.approved() {
        let next = now.with(None, Some(true), None, None).unwrap_or(now);
        let mut out = Outcome::between(rel, rel.moved_to(next), Forward::Drop);
        out.auto_reply = Some(SubscriptionKind::Subscribed);
        return out;
    }
    let next = now.with(None, None, None, Some(true)).unwrap_or(now);
    Outcome::move_if_changed(rel, next, Forward::Deliver)
}

/// The peer approved the account's request (§3.1.6, table A.3.3); ignored unless a
/// request was pending.
pub fn inbound_subscribed(rel: Relation) -> Outcome {
    let now = rel.subscription();
    if !now.pending_out() {
        return Outcome::ignore(rel);
    }
    let next = now.with(Some(true), None, Some(false), None).unwrap_or(now);
    Outcome::move_if_changed(rel, next, Forward::Deliver)
}

/// The peer stops receiving the account's presence or withdraws its request (§3.3.3,
/// table A.3.2).
pub fn inbound_unsubscribe(rel: Relation) -> Outcome {
    let now = rel.subscription();
    let next = now.with(None, Some(false), None, Some(false)).unwrap_or(now);
    Outcome::move_if_changed(rel, next, Forward::Deliver)
}

/// The peer denied the account's request or cancelled its subscription (§3.2.3, table
/// A.3.4).
pub fn inbound_unsubscribed(rel: Relation) -> Outcome {
    let now = rel.subscription();
    let next = now.with(Some(false), None, Some(false), None).unwrap_or(now);
    Outcome::move_if_changed(rel, next, Forward::Deliver)
}
