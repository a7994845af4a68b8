//! What a persistent room keeps in the store (tree `muc_rooms`, key: the room's node).
//! Occupants and roles are not stored: they live only as long as the visit (§5.1).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::affiliation::Affiliation;
use super::config::RoomConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersistedRoom {
    pub config: RoomConfig,
    pub affiliations: BTreeMap<String, AffEntry>,
    pub subject: Subject,
}

/// A bare JID's affiliation, with the nick it registered (§7.10) and the reason given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffEntry {
    pub affiliation: Affiliation,
    #[serde(default)]
    pub nick: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub text: String,
    /// The nick of whoever set it (the subject message comes from `room/nick`).
    pub nick: String,
}
