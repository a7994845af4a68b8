//! The cases RFC 6121's tables leave to the prose: contacts not in the roster, server
//! auto-replies, presence side effects, stored requests, pre-approval (§3.4), an
//! exhaustive consistency check, and a two-account flow.

use super::super::subscription::{ItemState, Relation, Subscription as S};
use super::super::transition::*;
use super::{approved, item};
use Direction::{Inbound, Outbound};
use SubscriptionKind::{Subscribe, Subscribed, Unsubscribe, Unsubscribed};

const NO_PRE_APPROVAL: Policy = Policy { pre_approval: false };

#[test]
fn inbound_subscribe_from_stranger_stores_request_without_item() {
    let out = inbound_subscribe(Relation::NoItem);
    assert_eq!(out.relation, Relation::PendingInOnly);
    assert_eq!((out.item, out.roster_push), (ItemChange::Unchanged, false));
    assert_eq!((out.forward, out.request), (Forward::Deliver, PendingRequest::Store));
    assert_eq!(out.auto_reply, None);
    // Asking again changes nothing and is not delivered twice.
    let again = inbound_subscribe(out.relation);
    assert_eq!((again.forward, again.request), (Forward::Drop, PendingRequest::Keep));
}

#[test]
fn inbound_subscribe_stores_request_for_listed_contact_too() {
    for s in [S::None, S::NonePendingOut, S::To] {
        let out = inbound_subscribe(item(s));
        assert_eq!(out.request, PendingRequest::Store, "{s:?}");
        assert_eq!(out.presence, PresenceToPeer::Nothing, "{s:?}");
    }
}

#[test]
fn inbound_subscribe_when_already_subscribed_is_answered_by_server() {
    for s in [S::From, S::FromPendingOut, S::Both] {
        let out = inbound_subscribe(item(s));
        assert_eq!(out.auto_reply, Some(Subscribed), "{s:?}");
        assert_eq!(out.presence, PresenceToPeer::Available, "{s:?}");
        assert_eq!((out.forward, out.roster_push), (Forward::Drop, false), "{s:?}");
        assert_eq!(out.relation, item(s));
    }
}

#[test]
fn approving_sends_presence_and_clears_request() {
    for (s, after) in [(S::NonePendingIn, S::From), (S::NonePendingOutIn, S::FromPendingOut), (S::ToPendingIn, S::Both)]
    {
        let out = outbound_subscribed(item(s), Policy::default());
        assert_eq!(out.relation, item(after));
        assert_eq!(out.presence, PresenceToPeer::Available, "{s:?}");
        assert_eq!(out.request, PendingRequest::Discard, "{s:?}");
        assert!(out.roster_push);
    }
    // Approving a stranger's stored request creates the item (state From).
    let out = outbound_subscribed(Relation::PendingInOnly, Policy::default());
    assert_eq!((out.relation, out.item), (item(S::From), ItemChange::Created));
    assert_eq!((out.forward, out.request), (Forward::Route, PendingRequest::Discard));
}

#[test]
fn losing_from_sends_unavailable_first() {
    for s in [S::From, S::FromPendingOut, S::Both] {
        assert_eq!(outbound_unsubscribed(item(s)).presence, PresenceToPeer::Unavailable);
        assert_eq!(inbound_unsubscribe(item(s)).presence, PresenceToPeer::Unavailable);
    }
    for s in [S::None, S::NonePendingIn, S::To, S::ToPendingIn] {
        assert_eq!(outbound_unsubscribed(item(s)).presence, PresenceToPeer::Nothing);
        assert_eq!(outbound_unsubscribe(item(s)).presence, PresenceToPeer::Nothing);
    }
}

#[test]
fn denying_or_withdrawn_request_from_stranger_forgets_it() {
    let out = outbound_unsubscribed(Relation::PendingInOnly);
    assert_eq!((out.relation, out.forward), (Relation::NoItem, Forward::Route));
    assert_eq!((out.request, out.roster_push), (PendingRequest::Discard, false));
    let out = inbound_unsubscribe(Relation::PendingInOnly);
    assert_eq!((out.relation, out.forward), (Relation::NoItem, Forward::Deliver));
    assert_eq!(out.request, PendingRequest::Discard);
}

#[test]
fn outbound_subscribe_creates_item_with_ask() {
    let out = outbound_subscribe(Relation::NoItem);
    assert_eq!((out.relation, out.item), (item(S::NonePendingOut), ItemChange::Created));
    assert!(out.roster_push);
    let out = outbound_subscribe(Relation::PendingInOnly);
    assert_eq!(out.relation, item(S::NonePendingOutIn));
    assert_eq!(out.request, PendingRequest::Keep);
}

#[test]
fn pre_approval_is_noted_not_routed() {
    for s in [S::None, S::NonePendingOut, S::To] {
        let out = outbound_subscribed(item(s), Policy::default());
        assert_eq!(out.relation, approved(s), "{s:?}");
        assert_eq!((out.forward, out.roster_push), (Forward::Drop, true), "{s:?}");
        assert_eq!(out.item, ItemChange::Updated);
        // Repeating it changes nothing.
        let again = outbound_subscribed(out.relation, Policy::default());
        assert_eq!((again.relation, again.roster_push), (approved(s), false));
    }
    let out = outbound_subscribed(Relation::NoItem, Policy::default());
    assert_eq!((out.relation, out.item), (approved(S::None), ItemChange::Created));
    assert!(out.roster_push);
}

#[test]
fn pre_approval_ignored_when_disabled_or_already_subscribed() {
    for rel in [Relation::NoItem, item(S::None), item(S::To)] {
        let out = outbound_subscribed(rel, NO_PRE_APPROVAL);
        assert_eq!((out.relation, out.forward, out.roster_push), (rel, Forward::Drop, false));
    }
    for s in [S::From, S::FromPendingOut, S::Both] {
        let out = outbound_subscribed(item(s), Policy::default());
        assert_eq!((out.relation, out.forward, out.roster_push), (item(s), Forward::Drop, false));
    }
}

#[test]
fn pre_approved_subscribe_is_granted_by_server() {
    for (s, after) in [(S::None, S::From), (S::NonePendingOut, S::FromPendingOut), (S::To, S::Both)] {
        let out = inbound_subscribe(approved(s));
        assert_eq!(out.relation, item(after), "{s:?}: approval used up");
        assert_eq!(out.auto_reply, Some(Subscribed));
        assert_eq!((out.forward, out.roster_push), (Forward::Drop, true));
        assert_eq!(out.presence, PresenceToPeer::Available);
        assert_eq!(out.request, PendingRequest::Keep, "never stored");
    }
}

#[test]
fn unsubscribed_cancels_pre_approval_without_routing() {
    for s in [S::None, S::NonePendingOut, S::To] {
        let out = outbound_unsubscribed(approved(s));
        assert_eq!(out.relation, item(s));
        assert_eq!((out.forward, out.roster_push), (Forward::Drop, true));
    }
}

#[test]
fn pre_approval_survives_unrelated_changes() {
    assert_eq!(outbound_subscribe(approved(S::None)).relation, approved(S::NonePendingOut));
    assert_eq!(inbound_subscribed(approved(S::NonePendingOut)).relation, approved(S::To));
    assert_eq!(inbound_unsubscribed(approved(S::To)).relation, approved(S::None));
    assert_eq!(outbound_unsubscribe(approved(S::To)).relation, approved(S::None));
}

/// Every relation an account can have with a contact.
fn all_relations() -> Vec<Relation> {
    let mut all = vec![Relation::NoItem, Relation::PendingInOnly];
    for s in S::ALL {
        all.push(item(s));
        if ItemState::can_be_approved(s) {
            all.push(approved(s));
        }
    }
    all
}

#[test]
fn effects_are_consistent_for_every_input() {
    let kinds = [Subscribe, Subscribed, Unsubscribe, Unsubscribed];
    for rel in all_relations() {
        for dir in [Outbound, Inbound] {
            for kind in kinds {
                for policy in [Policy::default(), NO_PRE_APPROVAL] {
                    let out = process(dir, kind, rel, policy);
                    let ctx = format!("{dir:?} {kind:?} {rel:?} {policy:?}");
                    let wrong_way = if dir == Outbound { Forward::Deliver } else { Forward::Route };
                    assert_ne!(out.forward, wrong_way, "{ctx}");
                    assert!(!out.roster_push || out.item != ItemChange::Unchanged, "{ctx}");
                    assert_eq!(out.item == ItemChange::Unchanged, rel.item() == out.relation.item(), "{ctx}");
                    assert_ne!(out.item, ItemChange::Removed, "{ctx}: only a roster set removes");
                    let pending = out.relation.subscription().pending_in();
                    assert!(out.request != PendingRequest::Store || pending, "{ctx}");
                    assert!(out.request != PendingRequest::Discard || !pending, "{ctx}");
                    if out.auto_reply.is_some() {
                        assert_eq!((dir, kind), (Inbound, Subscribe), "{ctx}");
                    }
                }
            }
        }
    }
}

#[test]
fn kind_parses_presence_type() {
    for kind in [Subscribe, Subscribed, Unsubscribe, Unsubscribed] {
        assert_eq!(SubscriptionKind::from_type_attr(kind.as_str()), Some(kind));
    }
    for other in ["", "probe", "unavailable", "error", "Subscribe"] {
        assert_eq!(SubscriptionKind::from_type_attr(other), None);
    }
}

/// Romeo and Juliet on one server: each stanza is processed outbound on the sender's
/// side and, if routed, inbound on the receiver's side, as the router would.
#[test]
fn mutual_subscription_flow_between_two_accounts() {
    let policy = Policy::default();
    let (mut romeo, mut juliet) = (Relation::NoItem, Relation::NoItem);
    let send = |from: &mut Relation, to: &mut Relation, kind| {
        let out = process(Outbound, kind, *from, policy);
        *from = out.relation;
        if out.forward == Forward::Route {
            let inbound = process(Inbound, kind, *to, policy);
            *to = inbound.relation;
            return Some(inbound);
        }
        None
    };
    send(&mut romeo, &mut juliet, Subscribe);
    assert_eq!((romeo, juliet), (item(S::NonePendingOut), Relation::PendingInOnly));
    send(&mut juliet, &mut romeo, Subscribed);
    assert_eq!((romeo, juliet), (item(S::To), item(S::From)));
    let back = send(&mut juliet, &mut romeo, Subscribe).unwrap();
    assert_eq!(back.forward, Forward::Deliver);
    send(&mut romeo, &mut juliet, Subscribed);
    assert_eq!((romeo, juliet), (item(S::Both), item(S::Both)));
    send(&mut romeo, &mut juliet, Unsubscribe);
    assert_eq!((romeo, juliet), (item(S::From), item(S::To)));
    send(&mut romeo, &mut juliet, Unsubscribed);
    assert_eq!((romeo, juliet), (item(S::None), item(S::None)));
}
