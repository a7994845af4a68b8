//! Roster items and their `jabber:iq:roster` XML (RFC 6121 §2.1): building items,
//! queries and pushes, and parsing client roster gets and sets with the validation of
//! §2.3.3 (and §2.4.3, which reuses it), each failure carrying its exact stanza error.

use jid::{BareJid, Jid};
use minidom::rxml::NcName;
use minidom::Element;
use serde::{Deserialize, Serialize};

use super::error::RosterError;
use super::subscription::{ItemState, Subscription};
use super::version::RosterVersion;
use super::NS_ROSTER;

/// Bounds on what a client may store, so one account cannot grow the server's memory
/// or storage without limit. RFC 6121 leaves the values to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest `name` attribute, in bytes of UTF-8.
    pub max_name_bytes: usize,
    /// Longest group name, in bytes of UTF-8.
    pub max_group_bytes: usize,
    /// Most groups on one item.
    pub max_groups: usize,
    /// Most items in one roster.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_name_bytes: 1024, max_group_bytes: 1024, max_groups: 64, max_items: 5000 }
    }
}

/// One contact in an account's roster, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterItem {
    /// The contact's bare JID, the item's key.
    #[serde(with = "bare_jid_as_string")]
    pub jid: BareJid,
    /// The handle the account gave the contact.
    pub name: Option<String>,
    /// Groups, unique and non-empty, in the order the client gave them.
    pub groups: Vec<String>,
    /// Subscription state and pre-approval.
    pub state: ItemState,
}

/// Serde helpers storing a `BareJid` as its string (the `jid` crate's own serde support
/// is behind a feature the workspace does not enable).
mod bare_jid_as_string {
    use jid::BareJid;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(jid: &BareJid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(jid.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BareJid, D::Error> {
        let text = String::deserialize(d)?;
        BareJid::new(&text).map_err(D::Error::custom)
    }
}

/// An attribute name; every caller passes a constant XML name, which a unit test checks.
fn attr(name: &'static str) -> NcName {
    NcName::try_from(name).expect("constant attribute names are valid XML names")
}

impl RosterItem {
    /// A new item without name or groups.
    pub fn new(jid: BareJid, state: ItemState) -> Self {
        Self { jid, name: None, groups: Vec::new(), state }
    }

    /// The `<item/>` for roster results and pushes: subscription, `ask` while a request
    /// is pending out, `approved` while pre-approved. Pending-in stays server-side.
    pub fn to_element(&self) -> Element {
        let sub = self.state.subscription();
        Element::builder("item", NS_ROSTER)
            .attr(attr("jid"), self.jid.as_str())
            .attr(attr("name"), self.name.as_deref())
            .attr(attr("subscription"), sub.attr_value())
            .attr(attr("ask"), sub.pending_out().then_some("subscribe"))
            .attr(attr("approved"), self.state.approved().then_some("true"))
            .append_all(self.groups.iter().map(|g| Element::builder("group", NS_ROSTER).append(g.clone())))
            .build()
    }

    /// Reads an `<item/>` as a server sends it (a result or push), for tests and tools.
    /// Pending-in is not on the wire, so it comes back as not pending.
    pub fn from_element(el: &Element, limits: &Limits) -> Result<Self, RosterError> {
        let fields = ItemFields::parse(el, limits)?;
        let to_from = match fields.subscription.unwrap_or("none") {
            "none" => (false, false),
            "to" => (true, false),
            "from" => (false, true),
            "both" => (true, true),
            _ => return Err(RosterError::BadSubscription),
        };
        let ask = el.attr("ask") == Some("subscribe");
        let sub = Subscription::from_flags(to_from.0, to_from.1, ask, false).ok_or(RosterError::BadSubscription)?;
        let state = ItemState::new(sub, el.attr("approved") == Some("true")).ok_or(RosterError::BadSubscription)?;
        Ok(Self { jid: fields.jid, name: fields.name, groups: fields.groups, state })
    }
}

/// The `<item subscription='remove'/>` pushed after a removal (§2.5.2).
pub fn removal_element(jid: &BareJid) -> Element {
    Element::builder("item", NS_ROSTER).attr(attr("jid"), jid.as_str()).attr(attr("subscription"), "remove").build()
}

/// A `<query xmlns='jabber:iq:roster'/>` holding `items`, with `ver` when given: the
/// payload of a roster result (all items) or a roster push (one item).
pub fn query_element(ver: Option<RosterVersion>, items: impl IntoIterator<Item = Element>) -> Element {
    Element::builder("query", NS_ROSTER).attr(attr("ver"), ver.map(|v| v.to_string())).append_all(items).build()
}

/// A client's roster get (§2.1.3): only its cached version matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterGet {
    /// The `ver` attribute, absent when the client does not support versioning.
    pub ver: Option<String>,
}

/// Reads the `<query/>` of a roster get.
pub fn parse_roster_get(query: &Element) -> Result<RosterGet, RosterError> {
    if !query.is("query", NS_ROSTER) {
        return Err(RosterError::NotRosterQuery);
    }
    Ok(RosterGet { ver: query.attr("ver").map(str::to_owned) })
}

/// A validated client roster set (§2.3, §2.4, §2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterSet {
    /// Add or update the item: name and groups replace the old ones.
    Update {
        /// The contact.
        jid: BareJid,
        /// The new name; an empty `name` attribute counts as none.
        name: Option<String>,
        /// The new groups.
        groups: Vec<String>,
    },
    /// `subscription='remove'`: delete the item.
    Remove {
        /// The contact.
        jid: BareJid,
    },
}

/// Reads the `<query/>` of a roster set. Client-sent `ask` and `approved` attributes,
/// and `subscription` values other than `remove`, are ignored as §2.1.2 requires.
pub fn parse_roster_set(query: &Element, limits: &Limits) -> Result<RosterSet, RosterError> {
    if !query.is("query", NS_ROSTER) {
        return Err(RosterError::NotRosterQuery);
    }
    let mut items = query.children().filter(|c| c.is("item", NS_ROSTER));
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(RosterError::ItemCount);
    };
    let fields = ItemFields::parse(item, limits)?;
    Ok(if fields.subscription == Some("remove") {
        RosterSet::Remove { jid: fields.jid }
    } else {
        RosterSet::Update { jid: fields.jid, name: fields.name, groups: fields.groups }
    })
}

/// The attributes and groups common to items in both directions, validated.
struct ItemFields<'a> {
    jid: BareJid,
    name: Option<String>,
    groups: Vec<String>,
    subscription: Option<&'a str>,
}

impl<'a> ItemFields<'a> {
    fn parse(item: &'a Element, limits: &Limits) -> Result<Self, RosterError> {
        let raw = item.attr("jid").ok_or(RosterError::MissingJid)?;
        let jid = Jid::new(raw).map_err(|_| RosterError::JidMalformed)?;
        let jid = BareJid::try_from(jid).map_err(|_| RosterError::FullJid)?;
        let name = item.attr("name").filter(|n| !n.is_empty());
        if name.is_some_and(|n| n.len() > limits.max_name_bytes) {
            return Err(RosterError::NameTooLong);
        }
        let mut groups: Vec<String> = Vec::new();
        for group in item.children().filter(|c| c.is("group", NS_ROSTER)) {
            let text = group.text();
            if text.is_empty() {
                return Err(RosterError::EmptyGroup);
            }
            if text.len() > limits.max_group_bytes {
                return Err(RosterError::GroupTooLong);
            }
            if groups.contains(&text) {
                return Err(RosterError::DuplicateGroup);
            }
            if groups.len() == limits.max_groups {
                return Err(RosterError::TooManyGroups);
            }
            groups.push(text);
        }
        Ok(Self { jid, name: name.map(str::to_owned), groups, subscription: item.attr("subscription") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_are_valid() {
        for name in ["jid", "name", "subscription", "ask", "approved", "ver"] {
            assert_eq!(attr(name).as_str(), name);
        }
    }
}
