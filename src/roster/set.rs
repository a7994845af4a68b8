//! Applying a validated roster set to the stored roster (RFC 6121 §2.3-§2.5): what to
//! store, what to push, and what a removal sends to the contact.

use jid::BareJid;
use minidom::Element;

use super::error::RosterError;
use super::item::{removal_element, Limits, RosterItem, RosterSet};
use super::subscription::{ItemState, Relation, Subscription};
use super::transition::{PendingRequest, PresenceToPeer, SubscriptionKind};

/// What the shell does after a successful roster set, in this order: store or delete
/// the item and the request; send `presence` (only ever `Unavailable`); send each of
/// `send_to_peer` from the account's bare JID to the contact; reply with an empty
/// result; push [`SetOutcome::push_element`] with a new version to every interested
/// resource, including the one that sent the set (§2.3.2). A set always pushes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOutcome {
    /// The contact the set is about.
    pub jid: BareJid,
    /// The item to store, or `None` when it was removed.
    pub item: Option<RosterItem>,
    /// The relation with the contact afterwards.
    pub relation: Relation,
    /// Subscription stanzas to send to the contact (removal cancels both directions).
    pub send_to_peer: Vec<SubscriptionKind>,
    /// Presence sent to the contact before `send_to_peer`.
    pub presence: PresenceToPeer,
    /// The stored subscribe request from the contact.
    pub request: PendingRequest,
}

impl SetOutcome {
    /// The `<item/>` of the roster push: the stored item, or a `subscription='remove'`.
    pub fn push_element(&self) -> Element {
        match &self.item {
            Some(item) => item.to_element(),
            None => removal_element(&self.jid),
        }
    }
}

/// Applies `set` to the contact's current item (`existing`), knowing whether a request
/// from the contact is stored without an item and how many items the roster holds.
pub fn apply_set(
    existing: Option<&RosterItem>,
    request_stored: bool,
    set: RosterSet,
    roster_len: usize,
    limits: &Limits,
) -> Result<SetOutcome, RosterError> {
    match set {
        RosterSet::Update { jid, name, groups } => {
            let state = match existing {
                Some(item) => item.state,
                None if roster_len >= limits.max_items => return Err(RosterError::RosterFull),
                // A stored request becomes the new item's pending-in (§3.1.3).
                None if request_stored => ItemState::plain(Subscription::NonePendingIn),
                None => ItemState::plain(Subscription::None),
            };
            let item = RosterItem { jid: jid.clone(), name, groups, state };
            Ok(SetOutcome {
                jid,
                item: Some(item),
                relation: Relation::Item(state),
                send_to_peer: Vec::new(),
                presence: PresenceToPeer::Nothing,
                request: PendingRequest::Keep,
            })
        }
        RosterSet::Remove { jid } => {
            let item = existing.ok_or(RosterError::ItemNotFound)?;
            Ok(removal(jid, item.state.subscription()))
        }
    }
}

/// §2.5.2: removing an item cancels the subscription both ways, so neither server
/// keeps sending presence for a contact the account no longer lists.
fn removal(jid: BareJid, sub: Subscription) -> SetOutcome {
    let mut send_to_peer = Vec::new();
    if sub.to() || sub.pending_out() {
        send_to_peer.push(SubscriptionKind::Unsubscribe);
    }
    if sub.from() || sub.pending_in() {
        send_to_peer.push(SubscriptionKind::Unsubscribed);
    }
    SetOutcome {
        jid,
        item: None,
        relation: Relation::NoItem,
        send_to_peer,
        presence: if sub.from() { PresenceToPeer::Unavailable } else { PresenceToPeer::Nothing },
        request: if sub.pending_in() { PendingRequest::Discard } else { PendingRequest::Keep },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subscription as S;
    use SubscriptionKind as K;

    fn jid() -> BareJid {
        BareJid::new("nurse@example.com").unwrap()
    }

    fn update(name: &str) -> RosterSet {
        RosterSet::Update { jid: jid(), name: Some(name.into()), groups: vec!["Servants".into()] }
    }

    fn item(sub: S) -> RosterItem {
        RosterItem::new(jid(), ItemState::plain(sub))
    }

    #[test]
    fn add_new_item_starts_at_none() {
        let out = apply_set(None, false, update("Nurse"), 0, &Limits::default()).unwrap();
        let stored = out.item.clone().unwrap();
        assert_eq!(stored.state, ItemState::plain(S::None));
        assert_eq!(stored.name.as_deref(), Some("Nurse"));
        assert_eq!(out.push_element().attr("subscription"), Some("none"));
        assert!(out.send_to_peer.is_empty());
        assert_eq!(out.request, PendingRequest::Keep);
    }

    #[test]
    fn add_after_stored_request_keeps_pending_in() {
        let out = apply_set(None, true, update("Nurse"), 0, &Limits::default()).unwrap();
        assert_eq!(out.relation, Relation::Item(ItemState::plain(S::NonePendingIn)));
        assert_eq!(out.request, PendingRequest::Keep);
    }

    #[test]
    fn update_keeps_subscription_and_approval() {
        let mut old = RosterItem::new(jid(), ItemState::new(S::To, true).unwrap());
        old.name = Some("Old".into());
        let out = apply_set(Some(&old), false, update("New"), 1, &Limits::default()).unwrap();
        let stored = out.item.unwrap();
        assert_eq!(stored.state, old.state);
        assert_eq!(stored.name.as_deref(), Some("New"));
        assert_eq!(stored.groups, ["Servants"]);
    }

    #[test]
    fn full_roster_refuses_new_items_but_not_updates() {
        let limits = Limits { max_items: 2, ..Limits::default() };
        assert_eq!(apply_set(None, false, update("x"), 2, &limits), Err(RosterError::RosterFull));
        assert!(apply_set(Some(&item(S::Both)), false, update("x"), 2, &limits).is_ok());
    }

    #[test]
    fn removing_unknown_item_is_item_not_found() {
        let set = RosterSet::Remove { jid: jid() };
        assert_eq!(apply_set(None, true, set, 0, &Limits::default()), Err(RosterError::ItemNotFound));
    }

    #[test]
    fn removal_cancels_each_direction_that_exists() {
        use PendingRequest::{Discard, Keep};
        use PresenceToPeer::{Nothing, Unavailable};
        let rows = [
            (S::None, vec![], Nothing, Keep),
            (S::NonePendingOut, vec![K::Unsubscribe], Nothing, Keep),
            (S::NonePendingIn, vec![K::Unsubscribed], Nothing, Discard),
            (S::NonePendingOutIn, vec![K::Unsubscribe, K::Unsubscribed], Nothing, Discard),
            (S::To, vec![K::Unsubscribe], Nothing, Keep),
            (S::ToPendingIn, vec![K::Unsubscribe, K::Unsubscribed], Nothing, Discard),
            (S::From, vec![K::Unsubscribed], Unavailable, Keep),
            (S::FromPendingOut, vec![K::Unsubscribe, K::Unsubscribed], Unavailable, Keep),
            (S::Both, vec![K::Unsubscribe, K::Unsubscribed], Unavailable, Keep),
        ];
        for (sub, sends, presence, request) in rows {
            let set = RosterSet::Remove { jid: jid() };
            let out = apply_set(Some(&item(sub)), false, set, 1, &Limits::default()).unwrap();
            assert_eq!(out.item, None, "{sub:?}");
            assert_eq!(out.relation, Relation::NoItem, "{sub:?}");
            assert_eq!(out.send_to_peer, sends, "{sub:?}");
            assert_eq!(out.presence, presence, "{sub:?}");
            assert_eq!(out.request, request, "{sub:?}");
            let push = out.push_element();
            assert_eq!(push.attr("subscription"), Some("remove"));
            assert_eq!(push.attr("jid"), Some("nurse@example.com"));
        }
    }
}
