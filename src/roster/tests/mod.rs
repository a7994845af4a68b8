//! Scenario tests of the roster core, one file per concern; unit tests of single
//! types live beside them.

mod appendix_a;
mod cases;
mod item_xml;

use super::subscription::{ItemState, Relation, Subscription};
use super::{stream_features, Policy, NS_PRE_APPROVAL, NS_ROSTER_VER};

/// A roster item in state `s`, not pre-approved.
fn item(s: Subscription) -> Relation {
    Relation::Item(ItemState::plain(s))
}

/// A pre-approved roster item in state `s` (None, None + Pending Out or To).
fn approved(s: Subscription) -> Relation {
    Relation::Item(ItemState::new(s, true).unwrap())
}

#[test]
fn stream_features_follow_policy() {
    let on = stream_features(Policy { pre_approval: true });
    assert!(on[0].is("ver", NS_ROSTER_VER));
    assert!(on[1].is("sub", NS_PRE_APPROVAL));
    assert_eq!(stream_features(Policy { pre_approval: false }).len(), 1);
}
