//! Every row of RFC 6121 tables A.2.1-A.2.4 (outbound) and A.3.1-A.3.4 (inbound),
//! written out literally, each checked with a roster item and, for the states a
//! contact outside the roster can be in, without one.

use super::super::subscription::{ItemState, Relation, Subscription as S};
use super::super::transition::*;

/// One table row: existing state, whether the stanza is routed/delivered, new state
/// (`None` meaning "no state change").
type Row = (S, bool, Option<S>);

const NO_PRE_APPROVAL: Policy = Policy { pre_approval: false };

fn run(dir: Direction, kind: SubscriptionKind, rel: Relation) -> Outcome {
    process(dir, kind, rel, NO_PRE_APPROVAL)
}

/// Checks a table against relations that hold a roster item, and, for the two states
/// a contact outside the roster can be in, against those too.
fn check_table(dir: Direction, kind: SubscriptionKind, table: [Row; 9]) {
    let sent = if dir == Direction::Outbound { Forward::Route } else { Forward::Deliver };
    let rows: Vec<S> = table.iter().map(|r| r.0).collect();
    assert_eq!(rows, S::ALL, "table must list the nine states in order");
    for (existing, forwarded, new) in table {
        let want = new.unwrap_or(existing);
        let want_forward = if forwarded { sent } else { Forward::Drop };
        let ctx = format!("{dir:?} {kind:?} from {existing:?}");

        let before = Relation::Item(ItemState::plain(existing));
        let out = run(dir, kind, before);
        assert_eq!(out.relation, Relation::Item(ItemState::plain(want)), "{ctx}");
        assert_eq!(out.forward, want_forward, "{ctx}");
        let want_item = if new.is_some() { ItemChange::Updated } else { ItemChange::Unchanged };
        assert_eq!(out.item, want_item, "{ctx}");
        // A push whenever what the client sees changes; pending-in is not visible.
        let visible = |s: S| (s.to(), s.from(), s.pending_out());
        assert_eq!(out.roster_push, visible(existing) != visible(want), "{ctx}");

        let outside = match existing {
            S::None => Relation::NoItem,
            S::NonePendingIn => Relation::PendingInOnly,
            _ => continue,
        };
        let out = run(dir, kind, outside);
        assert_eq!(out.relation.subscription(), want, "{ctx}, not in roster");
        assert_eq!(out.forward, want_forward, "{ctx}, not in roster");
        let item_now = !matches!(want, S::None | S::NonePendingIn);
        assert_eq!(out.relation.item().is_some(), item_now, "{ctx}, not in roster");
        assert_eq!(out.item == ItemChange::Created, item_now, "{ctx}, not in roster");
        assert_eq!(out.roster_push, item_now, "{ctx}, not in roster");
    }
}

use Direction::{Inbound, Outbound};
use SubscriptionKind::{Subscribe, Subscribed, Unsubscribe, Unsubscribed};

#[test]
fn a_2_1_outbound_subscribe() {
    check_table(
        Outbound,
        Subscribe,
        [
            (S::None, true, Some(S::NonePendingOut)),
            (S::NonePendingOut, true, None),
            (S::NonePendingIn, true, Some(S::NonePendingOutIn)),
            (S::NonePendingOutIn, true, None),
            (S::To, true, None),
            (S::ToPendingIn, true, None),
            (S::From, true, Some(S::FromPendingOut)),
            (S::FromPendingOut, true, None),
            (S::Both, true, None),
        ],
    );
}

#[test]
fn a_2_2_outbound_unsubscribe() {
    check_table(
        Outbound,
        Unsubscribe,
        [
            (S::None, true, None),
            (S::NonePendingOut, true, Some(S::None)),
            (S::NonePendingIn, true, None),
            (S::NonePendingOutIn, true, Some(S::NonePendingIn)),
            (S::To, true, Some(S::None)),
            (S::ToPendingIn, true, Some(S::NonePendingIn)),
            (S::From, true, None),
            (S::FromPendingOut, true, Some(S::From)),
            (S::Both, true, Some(S::From)),
        ],
    );
}

#[test]
fn a_2_3_outbound_subscribed() {
    check_table(
        Outbound,
        Subscribed,
        [
            (S::None, false, None),
            (S::NonePendingOut, false, None),
            (S::NonePendingIn, true, Some(S::From)),
            (S::NonePendingOutIn, true, Some(S::FromPendingOut)),
            (S::To, false, None),
            (S::ToPendingIn, true, Some(S::Both)),
            (S::From, false, None),
            (S::FromPendingOut, false, None),
            (S::Both, false, None),
        ],
    );
}

#[test]
fn a_2_4_outbound_unsubscribed() {
    check_table(
        Outbound,
        Unsubscribed,
        [
            (S::None, false, None),
            (S::NonePendingOut, false, None),
            (S::NonePendingIn, true, Some(S::None)),
            (S::NonePendingOutIn, true, Some(S::NonePendingOut)),
            (S::To, false, None),
            (S::ToPendingIn, true, Some(S::To)),
            (S::From, true, Some(S::None)),
            (S::FromPendingOut, true, Some(S::NonePendingOut)),
            (S::Both, true, Some(S::To)),
        ],
    );
}

#[test]
fn a_3_1_inbound_subscribe() {
    check_table(
        Inbound,
        Subscribe,
        [
            (S::None, true, Some(S::NonePendingIn)),
            (S::NonePendingOut, true, Some(S::NonePendingOutIn)),
            (S::NonePendingIn, false, None),
            (S::NonePendingOutIn, false, None),
            (S::To, true, Some(S::ToPendingIn)),
            (S::ToPendingIn, false, None),
            (S::From, false, None),
            (S::FromPendingOut, false, None),
            (S::Both, false, None),
        ],
    );
}

#[test]
fn a_3_2_inbound_unsubscribe() {
    check_table(
        Inbound,
        Unsubscribe,
        [
            (S::None, false, None),
            (S::NonePendingOut, false, None),
            (S::NonePendingIn, true, Some(S::None)),
            (S::NonePendingOutIn, true, Some(S::NonePendingOut)),
            (S::To, false, None),
            (S::ToPendingIn, true, Some(S::To)),
            (S::From, true, Some(S::None)),
            (S::FromPendingOut, true, Some(S::NonePendingOut)),
            (S::Both, true, Some(S::To)),
        ],
    );
}

#[test]
fn a_3_3_inbound_subscribed() {
    check_table(
        Inbound,
        Subscribed,
        [
            (S::None, false, None),
            (S::NonePendingOut, true, Some(S::To)),
            (S::NonePendingIn, false, None),
            (S::NonePendingOutIn, true, Some(S::ToPendingIn)),
            (S::To, false, None),
            (S::ToPendingIn, false, None),
            (S::From, false, None),
            (S::FromPendingOut, true, Some(S::Both)),
            (S::Both, false, None),
        ],
    );
}

#[test]
fn a_3_4_inbound_unsubscribed() {
    check_table(
        Inbound,
        Unsubscribed,
        [
            (S::None, false, None),
            (S::NonePendingOut, true, Some(S::None)),
            (S::NonePendingIn, false, None),
            (S::NonePendingOutIn, true, Some(S::NonePendingIn)),
            (S::To, true, Some(S::None)),
            (S::ToPendingIn, true, Some(S::NonePendingIn)),
            (S::From, false, None),
            (S::FromPendingOut, true, Some(S::From)),
            (S::Both, true, Some(S::From)),
        ],
    );
}
