//! Roster versioning (RFC 6121 §2.6): a per-account counter that grows with every
//! change a client can see, and the choice of answer to a roster get that carries a
//! `ver`.
//!
//! Each stored item (and each removal, kept as a tombstone) remembers the version that
//! last changed it. A client at version `v` then needs exactly the pushes for entries
//! newer than `v`, as long as the tombstones newer than `v` have not been pruned.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A roster version. On the wire it is the decimal number; clients treat it as opaque.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RosterVersion(u64);

impl RosterVersion {
    /// The version of a roster that has never changed.
    pub const INITIAL: RosterVersion = RosterVersion(0);

    /// A version with this number.
    pub fn new(n: u64) -> Self {
        Self(n)
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The version after one more change. Saturates rather than wrap, so versions never
    /// go backwards (2^64 changes will not happen, but no input can make it panic).
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// Reads a `ver` attribute this server produced; `None` for anything else (the empty
    /// string a client without cache sends, another server's format, garbage).
    pub fn parse(ver: &str) -> Option<Self> {
        if ver.is_empty() || ver.len() > 20 || !ver.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ver.parse().ok().map(Self)
    }
}

impl fmt::Display for RosterVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the server knows about an account's roster history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version after the latest change.
    pub current: RosterVersion,
    /// Every removal newer than this is still recorded as a tombstone; older ones were
    /// pruned, so clients older than this must get the full roster.
    pub tombstones_since: RosterVersion,
}

/// How to answer a roster get (§2.6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetAnswer {
    /// The whole roster in the result, with `ver` = current.
    Full,
    /// The client is current: an empty result, nothing else.
    UpToDate,
    /// An empty result, then one push per item or tombstone newer than `since`, oldest
    /// first, each with its own version as `ver` (see [`changes_since`]).
    Pushes {
        /// The client's version.
        since: RosterVersion,
    },
}

/// Chooses the answer to a roster get whose `ver` attribute is `client_ver`.
pub fn answer_get(client_ver: Option<&str>, info: VersionInfo) -> GetAnswer {
    let Some(client) = client_ver.and_then(RosterVersion::parse) else {
        return GetAnswer::Full;
    };
    if client == info.current {
        GetAnswer::UpToDate
    } else if client > info.current || client < info.tombstones_since {
        // From the future (a reset store) or older than our history: start over.
        GetAnswer::Full
    } else {
        GetAnswer::Pushes { since: client }
    }
}

/// The entries (items or tombstones, tagged with their versions) a client at `since`
/// is missing, oldest first, so that its version ends at the newest one pushed.
pub fn changes_since<T>(
    since: RosterVersion,
    entries: impl IntoIterator<Item = (RosterVersion, T)>,
) -> Vec<(RosterVersion, T)> {
    let mut newer: Vec<_> = entries.into_iter().filter(|(v, _)| *v > since).collect();
    newer.sort_by_key(|(v, _)| *v);
    newer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> RosterVersion {
        RosterVersion::new(n)
    }

    const INFO: VersionInfo = VersionInfo { current: RosterVersion(10), tombstones_since: RosterVersion(4) };

    #[test]
    fn counter_only_grows() {
        assert_eq!(RosterVersion::INITIAL.next(), v(1));
        assert!(v(1).next() > v(1));
        assert_eq!(v(u64::MAX).next(), v(u64::MAX));
    }

    #[test]
    fn ver_strings_round_trip_and_reject_foreign_ones() {
        assert_eq!(v(42).to_string(), "42");
        assert_eq!(RosterVersion::parse("42"), Some(v(42)));
        for bad in ["", " 1", "+1", "-1", "ver14", "1.0", "99999999999999999999999", "18446744073709551616"] {
            assert_eq!(RosterVersion::parse(bad), None, "{bad:?}");
        }
        assert_eq!(RosterVersion::parse("18446744073709551615"), Some(v(u64::MAX)));
    }

    #[test]
    fn answers() {
        assert_eq!(answer_get(None, INFO), GetAnswer::Full);
        assert_eq!(answer_get(Some(""), INFO), GetAnswer::Full);
        assert_eq!(answer_get(Some("garbage"), INFO), GetAnswer::Full);
        assert_eq!(answer_get(Some("10"), INFO), GetAnswer::UpToDate);
        assert_eq!(answer_get(Some("11"), INFO), GetAnswer::Full);
        assert_eq!(answer_get(Some("3"), INFO), GetAnswer::Full);
        assert_eq!(answer_get(Some("4"), INFO), GetAnswer::Pushes { since: v(4) });
        assert_eq!(answer_get(Some("9"), INFO), GetAnswer::Pushes { since: v(9) });
    }

    #[test]
    fn fresh_roster_is_up_to_date_at_zero() {
        let info = VersionInfo { current: RosterVersion::INITIAL, tombstones_since: RosterVersion::INITIAL };
        assert_eq!(answer_get(Some("0"), info), GetAnswer::UpToDate);
        assert_eq!(answer_get(Some(""), info), GetAnswer::Full);
    }

    #[test]
    fn changes_are_newer_and_in_order() {
        let entries = [(v(7), "c"), (v(2), "a"), (v(10), "d"), (v(5), "b")];
        assert_eq!(changes_since(v(4), entries), vec![(v(5), "b"), (v(7), "c"), (v(10), "d")]);
        assert!(changes_since(v(10), entries).is_empty());
    }
}
