//! A bounded in-memory cache of per-account values derived from sled (the message
//! archive's positions and preferences, read on every archived message).
//!
//! sled stays the truth: an entry is loaded from it on first use, under the cache's lock,
//! so two callers never load and overwrite each other's changes; dropping an entry (the
//! cache full, the account removed) only costs the next caller a reload. Hence correct
//! across restarts with no saving of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Clones share the entries (the `Store` is cloned into every task).
pub struct AccountCache<V> {
    entries: Arc<Mutex<HashMap<String, V>>>,
    capacity: usize,
}

impl<V> Clone for AccountCache<V> {
    fn clone(&self) -> Self {
        AccountCache { entries: self.entries.clone(), capacity: self.capacity }
    }
}

impl<V> AccountCache<V> {
    pub fn new(capacity: usize) -> AccountCache<V> {
        AccountCache { entries: Arc::new(Mutex::new(HashMap::new())), capacity: capacity.max(1) }
    }

    /// Run `f` on `user`'s entry, loading it with `load` first if absent. `load` runs
    /// under the lock (a few B-tree reads, once per account); an error is returned and
    /// nothing cached.
    pub fn with<R, E>(
        &self,
        user: &str,
        load: impl FnOnce() -> Result<V, E>,
        f: impl FnOnce(&mut V) -> R,
    ) -> Result<R, E> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = entries.get_mut(user) {
            return Ok(f(v));
        }
        let mut v = load()?;
        let r = f(&mut v);
        if entries.len() >= self.capacity {
            // Any entry will do: it is reloaded when next needed.
            if let Some(k) = entries.keys().next().cloned() {
                entries.remove(&k);
            }
        }
        entries.insert(user.to_string(), v);
        Ok(r)
    }

    /// Change `user`'s entry if it is cached (else the next load reads the change from sled).
    pub fn update_if_cached(&self, user: &str, f: impl FnOnce(&mut V)) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = entries.get_mut(user) {
            f(v);
        }
    }

    /// Forget `user`'s entry: the next use reloads it from sled.
    pub fn invalidate(&self, user: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(user);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_once_then_reuses_and_stays_bounded() {
        let c = AccountCache::<u32>::new(2);
        let mut loads = 0;
        for _ in 0..3 {
            let v = c
                .with(
                    "a",
                    || {
                        loads += 1;
                        Ok::<_, ()>(7)
                    },
                    |v| {
                        *v += 1;
                        *v
                    },
                )
                .unwrap();
            assert!(v >= 8);
        }
        assert_eq!(loads, 1);
        assert_eq!(c.with("a", || Ok::<_, ()>(0), |v| *v).unwrap(), 10);
        c.with("b", || Ok::<_, ()>(0), |_| ()).unwrap();
        c.with("c", || Ok::<_, ()>(0), |_| ()).unwrap();
        assert_eq!(c.len(), 2);
        c.invalidate("c");
        assert!(c.with("c", || Err::<u32, _>("down"), |v| *v).is_err());
        c.update_if_cached("zzz", |v| *v = 1);
        assert_eq!(c.len(), 1);
    }
}
