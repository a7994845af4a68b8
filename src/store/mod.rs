//! Storage: sled behind a small typed API.
//!
//! Each kind of data has its own tree; values are JSON behind a one-byte format version, so
//! a later release can read what an earlier one wrote. Anything a user creates is written
//! and flushed ([`Store::flush`]) before the server acknowledges it, so it survives a crash.

use serde::{de::DeserializeOwned, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::sasl::Credentials;

pub mod cache;

const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    #[error("stored value in {tree} is unreadable: {message}")]
    Corrupt { tree: &'static str, message: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A typed tree.
#[derive(Clone)]
pub struct Table {
    name: &'static str,
    tree: sled::Tree,
}

impl Table {
    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.tree.get(key)? {
            Some(bytes) => decode(self.name, &bytes).map(Some),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<()> {
        self.tree.insert(key, encode(value))?;
        Ok(())
    }

    /// Insert only if absent; returns false when the key already existed.
    pub fn insert_new<T: Serialize>(&self, key: &[u8], value: &T) -> Result<bool> {
        Ok(self.tree.compare_and_swap(key, None as Option<&[u8]>, Some(encode(value)))?.is_ok())
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.tree.contains_key(key)?)
    }

    pub fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(self.tree.remove(key)?.is_some())
    }

    /// All values whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(prefix) {
            let (k, v) = entry?;
            out.push((k.to_vec(), decode(self.name, &v)?));
        }
        Ok(out)
    }

    pub fn remove_prefix(&self, prefix: &[u8]) -> Result<usize> {
        let mut n = 0;
        for key in self.tree.scan_prefix(prefix).keys() {
            self.tree.remove(key?)?;
            n += 1;
        }
        Ok(n)
    }

    pub fn count_prefix(&self, prefix: &[u8]) -> usize {
        self.tree.scan_prefix(prefix).keys().count()
    }

    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        self.tree.iter().keys().map(|k| Ok(k?.to_vec())).collect()
    }

    /// The first entry whose key starts with `prefix` (one B-tree seek).
    pub fn first_in<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Option<(Vec<u8>, T)>> {
        match self.tree.scan_prefix(prefix).next().transpose()? {
            Some((k, v)) => Ok(Some((k.to_vec(), decode(self.name, &v)?))),
            None => Ok(None),
        }
    }

    /// The last entry whose key starts with `prefix` (one B-tree seek).
    pub fn last_in<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Option<(Vec<u8>, T)>> {
        match self.tree.scan_prefix(prefix).next_back().transpose()? {
            Some((k, v)) => Ok(Some((k.to_vec(), decode(self.name, &v)?))),
            None => Ok(None),
        }
    }

    /// Keys in `[from, to]`, in key order.
    pub fn keys_between(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.tree.range(from..=to).keys().map(|k| Ok(k?.to_vec())).collect()
    }

    /// Entries in `[from, to]`, in key order.
    pub fn scan_between<T: DeserializeOwned>(&self, from: &[u8], to: &[u8]) -> Result<Vec<(Vec<u8>, T)>> {
        let mut out = Vec::new();
        for entry in self.tree.range(from..=to) {
            let (k, v) = entry?;
            out.push((k.to_vec(), decode(self.name, &v)?));
        }
        Ok(out)
    }

    /// The first `n` keys starting with `prefix`, in key order.
    pub fn first_keys(&self, prefix: &[u8], n: usize) -> Result<Vec<Vec<u8>>> {
        self.tree.scan_prefix(prefix).keys().take(n).map(|k| Ok(k?.to_vec())).collect()
    }

    /// Remove these keys in one atomic batch (one write, however many keys).
    pub fn remove_many(&self, keys: &[Vec<u8>]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k.as_slice());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

/// A `user \0 item` table also held in memory, for small per-user sets read on every
/// routed stanza (the blocklist): a check is a hash lookup, and a user with an empty set
/// costs nothing but that lookup. Writes go to sled and memory under one lock.
#[derive(Clone)]
pub struct SetTable {
    table: Table,
    sets: Arc<RwLock<HashMap<String, Arc<BTreeSet<String>>>>>,
}

impl SetTable {
    fn load(table: Table) -> Result<SetTable> {
        let mut sets: HashMap<String, BTreeSet<String>> = HashMap::new();
        for key in table.keys()? {
            let Some(i) = key.iter().position(|&b| b == 0) else { continue };
            let (Ok(user), Some(item)) = (String::from_utf8(key[..i].to_vec()), pair_other(&key)) else {
                continue;
            };
            sets.entry(user).or_default().insert(item);
        }
        let sets = sets.into_iter().map(|(u, s)| (u, Arc::new(s))).collect();
        Ok(SetTable { table, sets: Arc::new(RwLock::new(sets)) })
    }

    /// The user's set, `None` when empty.
    pub fn get(&self, user: &str) -> Option<Arc<BTreeSet<String>>> {
        self.sets.read().unwrap_or_else(|e| e.into_inner()).get(user).cloned()
    }

    /// Add items; returns those that were not there yet.
    pub fn insert(&self, user: &str, items: &[String]) -> Result<Vec<String>> {
        let mut sets = self.sets.write().unwrap_or_else(|e| e.into_inner());
        let mut set = sets.get(user).map(|s| (**s).clone()).unwrap_or_default();
        let mut added = Vec::new();
        for item in items {
            if !set.contains(item) {
                self.table.put(&pair_key(user, item), &())?;
                set.insert(item.clone());
                added.push(item.clone());
            }
        }
        if !set.is_empty() {
            sets.insert(user.to_string(), Arc::new(set));
        }
        Ok(added)
    }

    /// Remove items (all of them when `items` is `None`); returns those that were there.
    pub fn remove(&self, user: &str, items: Option<&[String]>) -> Result<Vec<String>> {
        let mut sets = self.sets.write().unwrap_or_else(|e| e.into_inner());
        let Some(current) = sets.get(user).cloned() else {
            return Ok(Vec::new());
        };
        let mut set = (*current).clone();
        let gone: Vec<String> = match items {
            None => set.iter().cloned().collect(),
            Some(items) => items.iter().filter(|i| set.contains(*i)).cloned().collect(),
        };
        for item in &gone {
            self.table.remove(&pair_key(user, item))?;
            set.remove(item);
        }
        if set.is_empty() {
            sets.remove(user);
        } else {
            sets.insert(user.to_string(), Arc::new(set));
        }
        Ok(gone)
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    // Serialising our own plain data types to JSON cannot fail.
    serde_json::to_writer(&mut out, value).expect("serialising a stored value");
    out
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_V1, rest)) => {
            serde_json::from_slice(rest).map_err(|e| StoreError::Corrupt { tree, message: e.to_string() })
        }
        _ => Err(StoreError::Corrupt { tree, message: "unknown format version".into() }),
    }
}

/// A stored account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Account {
    pub credentials: Credentials,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// The whole database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    pub accounts: Table,
    /// `user` → what the directory said at the last sign-in (`auth::DirectoryEntry`): users
    /// of an external backend, who have no SCRAM keys in `accounts`.
    pub directory_users: Table,
    /// `user \0 contact` → roster item.
    pub roster: Table,
    /// `user` → roster version counter.
    pub roster_versions: Table,
    /// `user \0 contact` → pending inbound subscription request (stanza XML).
    pub subscription_requests: Table,
    /// `user \0 seq(8 bytes BE)` → offline message (stanza XML).
    pub offline: Table,
    /// `user` → vCard XML.
    pub vcards: Table,
    /// `user` → last logout (seconds since epoch, status text).
    pub last_activity: Table,
    /// room localpart → invitation key version (u64); bumping it revokes the room's links.
    pub invite_keys: Table,
    /// MUC: `room node` → persistent room (config, affiliations, subject).
    pub muc_rooms: Table,
    /// MUC: `room node \0 id(8 bytes BE)` → archived message (XEP-0313).
    pub muc_archive: Table,
    /// MUC: service-wide values (the occupant-id secret).
    pub muc_meta: Table,
    /// XEP-0191: `user \0 jid` → (); mirrored in memory.
    pub blocklist: SetTable,
    /// XEP-0313: `user \0 id(8 bytes BE)` → archived one-to-one message; the id is a
    /// microsecond timestamp made unique per user, so a time range is a key range.
    pub mam_archive: Table,
    /// XEP-0313: `user` → archiving preferences.
    pub mam_prefs: Table,
    /// XEP-0313: each active account's archive positions and preferences, held in
    /// memory so archiving a message reads nothing (`modules::mam`).
    pub mam_index: cache::AccountCache<crate::modules::mam::Cached>,
    /// Single sign-on: SHA-256 of an amphi sign-in token → its account, issuer and expiry
    /// (`oidc::tokens`). The token itself is never stored.
    pub sso_tokens: Table,
    /// Single sign-on: `user` → the (issuer id, subject) the name is bound to (`oidc::accounts`).
    pub sso_bindings: Table,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = sled::Config::new().path(path).open()?;
        Self::from_db(db)
    }

    /// A throwaway store for tests.
    pub fn temporary() -> Result<Store> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Store> {
        let t = |name: &'static str| -> Result<Table> { Ok(Table { name, tree: db.open_tree(name)? }) };
        Ok(Store {
            accounts: t("accounts")?,
            directory_users: t("directory_users")?,
            roster: t("roster")?,
            roster_versions: t("roster_versions")?,
            subscription_requests: t("subscription_requests")?,
            offline: t("offline")?,
            vcards: t("vcards")?,
            last_activity: t("last_activity")?,
            invite_keys: t("invite_keys")?,
            muc_rooms: t("muc_rooms")?,
            muc_archive: t("muc_archive")?,
            muc_meta: t("muc_meta")?,
            blocklist: SetTable::load(t("blocklist")?)?,
            mam_archive: t("mam_archive")?,
            mam_prefs: t("mam_prefs")?,
            mam_index: cache::AccountCache::new(crate::modules::mam::CACHED_ACCOUNTS),
            sso_tokens: t("sso_tokens")?,
            sso_bindings: t("sso_bindings")?,
            db,
        })
    }

    /// Make every write so far durable. Call before acknowledging a change.
    pub async fn flush(&self) -> Result<()> {
        // Not sled's flush_async: with many flushes at once it can wait on its own
        // thread pool and never finish. A blocking flush on tokio's blocking pool cannot.
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(r) => r.map(|_| ()).map_err(StoreError::from),
            Err(_) => self.flush_blocking(),
        }
    }

    pub fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// A fresh, monotonically increasing number (offline message order, roster versions).
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Delete an account and everything it owns.
    pub fn remove_account(&self, user: &str) -> Result<bool> {
        let existed = self.accounts.remove(user.as_bytes())? | self.directory_users.remove(user.as_bytes())?;
        let prefix = pair_prefix(user);
        self.roster.remove_prefix(&prefix)?;
        self.subscription_requests.remove_prefix(&prefix)?;
        self.offline.remove_prefix(&prefix)?;
        self.roster_versions.remove(user.as_bytes())?;
        self.vcards.remove(user.as_bytes())?;
        self.last_activity.remove(user.as_bytes())?;
        self.blocklist.remove(user, None)?;
        self.mam_archive.remove_prefix(&prefix)?;
        self.mam_prefs.remove(user.as_bytes())?;
        self.mam_index.invalidate(user);
        let existed = existed | self.sso_bindings.remove(user.as_bytes())?;
        crate::oidc::tokens::revoke_all(self, user)?;
        Ok(existed)
    }
}

/// Key of a (user, other) pair: `user \0 other`. A NUL cannot occur in a JID.
pub fn pair_key(user: &str, other: &str) -> Vec<u8> {
    let mut k = pair_prefix(user);
    k.extend_from_slice(other.as_bytes());
    k
}

pub fn pair_prefix(user: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 1);
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k
}

/// The second half of a pair key.
pub fn pair_other(key: &[u8]) -> Option<String> {
    let i = key.iter().position(|&b| b == 0)?;
    String::from_utf8(key[i + 1..].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_round_trip_and_prefix_scan() {
        let s = Store::temporary().unwrap();
        s.roster.put(&pair_key("a", "b@x"), &"one".to_string()).unwrap();
        s.roster.put(&pair_key("a", "c@x"), &"two".to_string()).unwrap();
        s.roster.put(&pair_key("ab", "d@x"), &"other".to_string()).unwrap();
        let items: Vec<(Vec<u8>, String)> = s.roster.scan(&pair_prefix("a")).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(pair_other(&items[0].0).as_deref(), Some("b@x"));
        assert!(s.accounts.insert_new(b"k", &1u32).unwrap());
        assert!(!s.accounts.insert_new(b"k", &2u32).unwrap());
        assert_eq!(s.accounts.get::<u32>(b"k").unwrap(), Some(1));
    }

    #[test]
    fn set_table_mirrors_sled() {
        let s = Store::temporary().unwrap();
        let items = vec!["b@x".to_string(), "x".to_string()];
        assert_eq!(s.blocklist.insert("a", &items).unwrap(), items);
        assert!(s.blocklist.insert("a", &items[..1]).unwrap().is_empty());
        assert!(s.blocklist.get("a").unwrap().contains("x"));
        assert!(s.blocklist.get("ab").is_none());
        let reloaded = SetTable::load(s.blocklist.table.clone()).unwrap();
        assert_eq!(reloaded.get("a").unwrap().len(), 2);
        assert_eq!(s.blocklist.remove("a", Some(&items[1..])).unwrap(), vec!["x".to_string()]);
        assert_eq!(s.blocklist.remove("a", None).unwrap(), vec!["b@x".to_string()]);
        assert!(s.blocklist.get("a").is_none());
        assert!(SetTable::load(s.blocklist.table.clone()).unwrap().get("a").is_none());
    }

    #[test]
    fn corrupt_value_is_an_error_not_a_panic() {
        let s = Store::temporary().unwrap();
        s.vcards.tree.insert(b"x", b"\x09junk".to_vec()).unwrap();
        assert!(s.vcards.get::<String>(b"x").is_err());
    }
}
