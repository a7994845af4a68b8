//! Why a roster request was refused, and the stanza error each reason maps to
//! (RFC 6121 §2.1.5, §2.3.3, §2.5.3; conditions and types from RFC 6120 §8.3.3).

use thiserror::Error;

/// A roster get or set the server refuses. `Clone + PartialEq` so tests assert the
/// exact reason; [`RosterError::condition`] and [`RosterError::error_type`] give the
/// `<error/>` to send, and `Display` its `<text/>`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The payload is not `<query xmlns='jabber:iq:roster'/>`.
    #[error("expected <query xmlns='jabber:iq:roster'/>")]
    NotRosterQuery,
    /// A roster set must carry exactly one `<item/>` (§2.3.3).
    #[error("a roster set carries exactly one <item/>")]
    ItemCount,
    /// The `<item/>` has no `jid` attribute.
    #[error("the item has no 'jid' attribute")]
    MissingJid,
    /// The `jid` attribute is not a valid JID.
    #[error("the item's 'jid' attribute is not a valid JID")]
    JidMalformed,
    /// Roster items are keyed by bare JIDs.
    #[error("the item's 'jid' must be a bare JID")]
    FullJid,
    /// Two `<group/>` elements with the same name (§2.3.3).
    #[error("the item names the same group twice")]
    DuplicateGroup,
    /// A `<group/>` without text (§2.3.3).
    #[error("a group name is empty")]
    EmptyGroup,
    /// The `name` attribute is longer than the server allows (§2.3.3).
    #[error("the item's name is too long")]
    NameTooLong,
    /// A group name is longer than the server allows (§2.3.3).
    #[error("a group name is too long")]
    GroupTooLong,
    /// More groups on one item than the server allows.
    #[error("the item is in too many groups")]
    TooManyGroups,
    /// The roster already holds as many items as the server allows.
    #[error("the roster is full")]
    RosterFull,
    /// Removing an item that is not in the roster (§2.5.3).
    #[error("no such item in the roster")]
    ItemNotFound,
    /// A roster request addressed to another account (§2.1.5, §2.3.3).
    #[error("only the account itself may read or change its roster")]
    Forbidden,
    /// An item from the server with an unknown subscription state (parsing pushes).
    #[error("unknown subscription state")]
    BadSubscription,
}

impl RosterError {
    /// The defined condition element, in `urn:ietf:params:xml:ns:xmpp-stanzas`.
    pub fn condition(&self) -> &'static str {
        match self {
            Self::NotRosterQuery
            | Self::ItemCount
            | Self::MissingJid
            | Self::FullJid
            | Self::DuplicateGroup
            | Self::BadSubscription => "bad-request",
            Self::JidMalformed => "jid-malformed",
            Self::EmptyGroup | Self::NameTooLong | Self::GroupTooLong | Self::TooManyGroups => "not-acceptable",
            Self::RosterFull => "policy-violation",
            Self::ItemNotFound => "item-not-found",
            Self::Forbidden => "forbidden",
        }
    }

    /// The `type` attribute of the `<error/>` element.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::ItemNotFound => "cancel",
            Self::Forbidden => "auth",
            _ => "modify",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_and_types() {
        let cases = [
            (RosterError::ItemCount, "bad-request", "modify"),
            (RosterError::DuplicateGroup, "bad-request", "modify"),
            (RosterError::EmptyGroup, "not-acceptable", "modify"),
            (RosterError::NameTooLong, "not-acceptable", "modify"),
            (RosterError::JidMalformed, "jid-malformed", "modify"),
            (RosterError::ItemNotFound, "item-not-found", "cancel"),
            (RosterError::Forbidden, "forbidden", "auth"),
            (RosterError::RosterFull, "policy-violation", "modify"),
        ];
        for (err, condition, kind) in cases {
            assert_eq!((err.condition(), err.error_type()), (condition, kind), "{err:?}");
            assert!(!err.to_string().is_empty());
        }
    }
}
