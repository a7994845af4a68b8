//! Subscription states of RFC 6121 Appendix A, the pre-approval flag (§3.4), and the
//! three ways a local account can relate to a remote bare JID.
//!
//! Every state here is seen from the local account: "to" means the account receives
//! the peer's presence, "from" means the peer receives the account's presence,
//! "pending out" means the account asked and the peer has not answered, "pending in"
//! means the peer asked and the account has not answered.
//!
//! The types make invalid combinations unrepresentable: `Subscription` has exactly the
//! nine states of Appendix A.1, and `ItemState` refuses a pre-approval where it has no
//! meaning (a peer that already has, or is asking for, a subscription).

use serde::{Deserialize, Serialize};

/// One of the nine subscription states of RFC 6121 Appendix A.1.
///
/// Serialised as the plain variant name (`"NonePendingOut"`), so stored data stays
/// readable and a future version can add fields around it without a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Subscription {
    /// Neither side is subscribed, nothing is pending.
    None,
    /// "None + Pending Out": the account asked for the peer's presence.
    NonePendingOut,
    /// "None + Pending In": the peer asked for the account's presence.
    NonePendingIn,
    /// "None + Pending Out+In": both asked, neither answered.
    NonePendingOutIn,
    /// The account receives the peer's presence.
    To,
    /// "To + Pending In": the account receives the peer's presence; the peer asked back.
    ToPendingIn,
    /// The peer receives the account's presence.
    From,
    /// "From + Pending Out": the peer receives the account's presence; the account asked back.
    FromPendingOut,
    /// Mutual subscription.
    Both,
}

impl Subscription {
    /// All nine states, in the order of the RFC's tables.
    pub const ALL: [Subscription; 9] = [
        Subscription::None,
        Subscription::NonePendingOut,
        Subscription::NonePendingIn,
        Subscription::NonePendingOutIn,
        Subscription::To,
        Subscription::ToPendingIn,
        Subscription::From,
        Subscription::FromPendingOut,
        Subscription::Both,
    ];

    /// Builds a state from its four flags; `None` for the combinations Appendix A
    /// excludes (a pending request in a direction that is already subscribed).
    pub fn from_flags(to: bool, from: bool, pending_out: bool, pending_in: bool) -> Option<Self> {
        use Subscription as S;
        Some(match (to, from, pending_out, pending_in) {
            (false, false, false, false) => S::None,
            (false, false, true, false) => S::NonePendingOut,
            (false, false, false, true) => S::NonePendingIn,
            (false, false, true, true) => S::NonePendingOutIn,
            (true, false, false, false) => S::To,
            (true, false, false, true) => S::ToPendingIn,
            (false, true, false, false) => S::From,
            (false, true, true, false) => S::FromPendingOut,
            (true, true, false, false) => S::Both,
            _ => return None,
        })
    }

    /// The account is subscribed to the peer's presence.
    pub fn to(self) -> bool {
        matches!(self, Self::To | Self::ToPendingIn | Self::Both)
    }

    /// The peer is subscribed to the account's presence.
    pub fn from(self) -> bool {
        matches!(self, Self::From | Self::FromPendingOut | Self::Both)
    }

    /// The account's request to the peer awaits an answer (`ask='subscribe'` on the wire).
    pub fn pending_out(self) -> bool {
        matches!(self, Self::NonePendingOut | Self::NonePendingOutIn | Self::FromPendingOut)
    }

    /// The peer's request awaits the account's answer (never shown on the wire).
    pub fn pending_in(self) -> bool {
        matches!(self, Self::NonePendingIn | Self::NonePendingOutIn | Self::ToPendingIn)
    }

    /// The value of the `subscription` attribute of `jabber:iq:roster` items.
    pub fn attr_value(self) -> &'static str {
        match (self.to(), self.from()) {
            (true, true) => "both",
            (true, false) => "to",
            (false, true) => "from",
            (false, false) => "none",
        }
    }

    /// A copy with some flags changed; `None` when the result would be invalid.
    pub(crate) fn with(
        self,
        to: Option<bool>,
        from: Option<bool>,
        pending_out: Option<bool>,
        pending_in: Option<bool>,
    ) -> Option<Self> {
        Self::from_flags(
            to.unwrap_or(self.to()),
            from.unwrap_or(self.from()),
            pending_out.unwrap_or(self.pending_out()),
            pending_in.unwrap_or(self.pending_in()),
        )
    }
}

/// The subscription part of a roster item: its state plus the pre-approval flag.
///
/// A pre-approval (RFC 6121 §3.4) only exists while the peer neither has nor asks for
/// a subscription (states None, None + Pending Out, To): once it asks, the approval is
/// used up. The constructor enforces that, and so does deserialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawItemState")]
pub struct ItemState {
    subscription: Subscription,
    approved: bool,
}

/// The unchecked shape `ItemState` is read from, validated by `TryFrom`.
#[derive(Deserialize)]
struct RawItemState {
    subscription: Subscription,
    #[serde(default)]
    approved: bool,
}

impl TryFrom<RawItemState> for ItemState {
    type Error = &'static str;
    fn try_from(raw: RawItemState) -> Result<Self, Self::Error> {
        ItemState::new(raw.subscription, raw.approved).ok_or("pre-approval stored for a state that cannot carry one")
    }
}

impl ItemState {
    /// A state without pre-approval.
    pub fn plain(subscription: Subscription) -> Self {
        Self { subscription, approved: false }
    }

    /// A state with the given pre-approval flag; `None` if the state cannot carry it.
    pub fn new(subscription: Subscription, approved: bool) -> Option<Self> {
        (!approved || Self::can_be_approved(subscription)).then_some(Self { subscription, approved })
    }

    /// Whether a pre-approval is meaningful in this state (§3.4: None, None + Pending Out, To).
    pub fn can_be_approved(subscription: Subscription) -> bool {
        !subscription.from() && !subscription.pending_in()
    }

    /// The subscription state.
    pub fn subscription(self) -> Subscription {
        self.subscription
    }

    /// The account has pre-approved the peer's future request (`approved='true'`).
    pub fn approved(self) -> bool {
        self.approved
    }

    /// The same item in another subscription state; a pre-approval survives only where
    /// it is still meaningful.
    pub fn with_subscription(self, subscription: Subscription) -> Self {
        Self { subscription, approved: self.approved && Self::can_be_approved(subscription) }
    }

    /// The same state with the pre-approval removed.
    pub fn without_approval(self) -> Self {
        Self::plain(self.subscription)
    }

    /// What a client sees of this state (subscription, ask, approved): pending-in is
    /// server-side only, so a change to it alone does not warrant a roster push.
    pub fn wire_view(self) -> (&'static str, bool, bool) {
        (self.subscription.attr_value(), self.subscription.pending_out(), self.approved)
    }
}

/// How the local account relates to one remote bare JID.
///
/// RFC 6121 §3.1.3 keeps an incoming request from someone who is not in the roster
/// without creating a roster item for them: `PendingInOnly` is that record. The shell
/// builds a `Relation` from what it stored with [`Relation::load`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Relation {
    /// No roster item and no stored request.
    NoItem,
    /// No roster item, but a stored subscription request from the peer ("None + Pending In").
    PendingInOnly,
    /// A roster item in this state.
    Item(ItemState),
}

impl Relation {
    /// The relation for a stored roster item (if any) and whether a request from the
    /// peer is stored. A roster item carries its own pending-in flag and wins.
    pub fn load(item: Option<ItemState>, request_stored: bool) -> Self {
        match item {
            Some(state) => Self::Item(state),
            None if request_stored => Self::PendingInOnly,
            None => Self::NoItem,
        }
    }

    /// The Appendix A state, whether or not a roster item exists.
    pub fn subscription(self) -> Subscription {
        match self {
            Self::NoItem => Subscription::None,
            Self::PendingInOnly => Subscription::NonePendingIn,
            Self::Item(state) => state.subscription(),
        }
    }

    /// The roster item's state, if there is an item.
    pub fn item(self) -> Option<ItemState> {
        match self {
            Self::Item(state) => Some(state),
            _ => None,
        }
    }

    /// The account has pre-approved the peer.
    pub fn approved(self) -> bool {
        self.item().is_some_and(ItemState::approved)
    }

    /// The relation after moving to `next`. An existing item keeps existing (and its
    /// pre-approval where still valid); without one, only a state that the account
    /// itself has a stake in (anything beyond None / None + Pending In) creates an item.
    pub fn moved_to(self, next: Subscription) -> Self {
        match self {
            Self::Item(state) => Self::Item(state.with_subscription(next)),
            Self::NoItem | Self::PendingInOnly => match next {
                Subscription::None => Self::NoItem,
                Subscription::NonePendingIn => Self::PendingInOnly,
                other => Self::Item(ItemState::plain(other)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subscription as S;

    #[test]
    fn flags_round_trip_for_all_nine_states() {
        for s in S::ALL {
            let back = S::from_flags(s.to(), s.from(), s.pending_out(), s.pending_in());
            assert_eq!(back, Some(s), "{s:?}");
        }
    }

    #[test]
    fn exactly_nine_of_sixteen_flag_combinations_are_valid() {
        let mut valid = 0;
        for bits in 0u8..16 {
            let f = |n: u8| bits & (1 << n) != 0;
            if S::from_flags(f(0), f(1), f(2), f(3)).is_some() {
                valid += 1;
            }
        }
        assert_eq!(valid, 9);
        // The seven excluded ones pend in a direction already subscribed.
        assert_eq!(S::from_flags(true, false, true, false), None);
        assert_eq!(S::from_flags(false, true, false, true), None);
        assert_eq!(S::from_flags(true, true, true, true), None);
    }

    #[test]
    fn attr_values_follow_to_and_from() {
        let expected = ["none", "none", "none", "none", "to", "to", "from", "from", "both"];
        for (s, want) in S::ALL.into_iter().zip(expected) {
            assert_eq!(s.attr_value(), want, "{s:?}");
        }
    }

    #[test]
    fn pre_approval_only_where_meaningful() {
        let allowed: Vec<S> = S::ALL.into_iter().filter(|s| ItemState::new(*s, true).is_some()).collect();
        assert_eq!(allowed, vec![S::None, S::NonePendingOut, S::To]);
        for s in S::ALL {
            assert!(ItemState::new(s, false).is_some());
        }
    }

    #[test]
    fn pre_approval_dropped_when_state_no_longer_allows_it() {
        let approved = ItemState::new(S::None, true).unwrap();
        assert!(approved.with_subscription(S::To).approved());
        assert!(!approved.with_subscription(S::From).approved());
        assert!(!approved.with_subscription(S::NonePendingIn).approved());
    }

    #[test]
    fn serde_uses_plain_names_and_rejects_invalid_approval() {
        let state = ItemState::new(S::NonePendingOut, true).unwrap();
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, r#"{"subscription":"NonePendingOut","approved":true}"#);
        assert_eq!(serde_json::from_str::<ItemState>(&json).unwrap(), state);
        let old = r#"{"subscription":"Both"}"#;
        assert_eq!(serde_json::from_str::<ItemState>(old).unwrap(), ItemState::plain(S::Both));
        let bad = r#"{"subscription":"From","approved":true}"#;
        assert!(serde_json::from_str::<ItemState>(bad).is_err());
        let rel = Relation::PendingInOnly;
        let json = serde_json::to_string(&rel).unwrap();
        assert_eq!(json, r#""PendingInOnly""#);
        assert_eq!(serde_json::from_str::<Relation>(&json).unwrap(), rel);
    }

    #[test]
    fn relation_load_and_moves() {
        assert_eq!(Relation::load(None, false), Relation::NoItem);
        assert_eq!(Relation::load(None, true), Relation::PendingInOnly);
        let item = ItemState::plain(S::To);
        assert_eq!(Relation::load(Some(item), true), Relation::Item(item));
        assert_eq!(Relation::NoItem.moved_to(S::NonePendingIn), Relation::PendingInOnly);
        assert_eq!(Relation::PendingInOnly.moved_to(S::None), Relation::NoItem);
        assert_eq!(Relation::PendingInOnly.moved_to(S::From), Relation::Item(ItemState::plain(S::From)));
        let none_item = Relation::Item(ItemState::plain(S::NonePendingIn));
        assert_eq!(none_item.moved_to(S::None), Relation::Item(ItemState::plain(S::None)));
    }

    #[test]
    fn wire_view_hides_pending_in() {
        let a = ItemState::plain(S::None).wire_view();
        let b = ItemState::plain(S::NonePendingIn).wire_view();
        assert_eq!(a, b);
        assert_ne!(a, ItemState::plain(S::NonePendingOut).wire_view());
    }
}
