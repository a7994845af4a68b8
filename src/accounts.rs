//! Account management shared by the CLI and in-band registration.

use crate::sasl::Credentials;
use crate::stanza::now_secs;
use crate::store::{Account, Store, StoreError};

/// Create `username` with `password`; false if it exists. Flushed before returning.
pub async fn create(store: &Store, username: &str, password: &str, iterations: u32) -> Result<bool, StoreError> {
    let account = Account { credentials: derive(password, iterations).await, created: now_secs() };
    let created = store.accounts.insert_new(username.as_bytes(), &account)?;
    if created {
        store.flush().await?;
    }
    Ok(created)
}

/// Replace the password; false if there is no such account.
pub async fn set_password(store: &Store, username: &str, password: &str, iterations: u32) -> Result<bool, StoreError> {
    let Some(mut account) = store.accounts.get::<Account>(username.as_bytes())? else {
        return Ok(false);
    };
    account.credentials = derive(password, iterations).await;
    store.accounts.put(username.as_bytes(), &account)?;
    store.flush().await?;
    Ok(true)
}

pub async fn remove(store: &Store, username: &str) -> Result<bool, StoreError> {
    let existed = store.remove_account(username)?;
    store.flush().await?;
    Ok(existed)
}

pub fn list(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(store.accounts.keys()?.into_iter().filter_map(|k| String::from_utf8(k).ok()).collect())
}

/// An account here or a user who signed in through the directory (see `crate::auth`).
pub fn exists(store: &Store, username: &str) -> bool {
    let key = username.as_bytes();
    store.accounts.contains(key).unwrap_or(false) || store.directory_users.contains(key).unwrap_or(false)
}

/// PBKDF2 is deliberately slow; keep it off the async worker threads.
async fn derive(password: &str, iterations: u32) -> Credentials {
    let owned = password.to_string();
    match tokio::task::spawn_blocking(move || Credentials::derive(&owned, iterations)).await {
        Ok(c) => c,
        // The blocking pool is gone (runtime shutting down): derive here instead.
        Err(_) => Credentials::derive(password, iterations),
    }
}
