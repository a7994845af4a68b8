//! Guest sign-ins for people following a participant invitation link.
//!
//! The HTTP side verifies the signed link, then asks for a guest login bound to that one
//! room. A guest is not an account: nothing is stored, the credentials live in memory, can
//! be used for one sign-in within `UNUSED_TTL`, and the session they open may only talk to
//! its room (see `Session::guest_room`) and to the server (ping, disco). Nobody but the room
//! can address a guest. Guest usernames start with `guest-`, which registration refuses.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jid::BareJid;

use crate::sasl::credentials::random_bytes;
use crate::sasl::Credentials;

/// Prefix of every guest username; in-band registration refuses it.
pub const PREFIX: &str = "guest-";
/// How long issued credentials stay usable before the first sign-in.
pub const UNUSED_TTL: Duration = Duration::from_secs(600);

struct Guest {
    credentials: Credentials,
    room: BareJid,
    display_name: String,
    issued: Instant,
    used: bool,
}

#[derive(Default)]
pub struct Guests {
    entries: Mutex<HashMap<String, Guest>>,
}

/// What the web client needs to sign in.
#[derive(Debug, Clone)]
pub struct GuestLogin {
    pub jid: String,
    pub password: String,
    pub room: BareJid,
    pub display_name: String,
}

impl Guests {
    /// Issue a one-time guest login for `room` on `domain`.
    pub fn issue(&self, domain: &str, room: BareJid, display_name: &str) -> GuestLogin {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let username = format!("{PREFIX}{}", b64.encode(random_bytes(9)).to_ascii_lowercase().replace(['-', '_'], "x"));
        let password = b64.encode(random_bytes(24));
        // The minimum iteration count: the password is random and single-use.
        let credentials = Credentials::derive(&password, 4096);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        entries.retain(|_, g| g.used || now.duration_since(g.issued) < UNUSED_TTL);
        entries.insert(
            username.clone(),
            Guest { credentials, room: room.clone(), display_name: display_name.to_string(), issued: now, used: false },
        );
        GuestLogin { jid: format!("{username}@{domain}"), password, room, display_name: display_name.to_string() }
    }

    /// Credentials of an unused, unexpired guest (for SASL).
    pub fn credentials(&self, username: &str) -> Option<Credentials> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(username).filter(|g| !g.used && g.issued.elapsed() < UNUSED_TTL).map(|g| g.credentials.clone())
    }

    /// The guest signed in: the login is spent. Returns its room and display name.
    pub fn consume(&self, username: &str) -> Option<(BareJid, String)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let g = entries.get_mut(username)?;
        g.used = true;
        Some((g.room.clone(), g.display_name.clone()))
    }

    /// The guest's session ended: forget it.
    pub fn remove(&self, username: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(username);
    }

    pub fn is_guest(username: &str) -> bool {
        username.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sign_in_per_login() {
        let g = Guests::default();
        let room = BareJid::new("room@conference.localhost").unwrap();
        let login = g.issue("localhost", room.clone(), "Ada");
        let user = login.jid.split('@').next().unwrap().to_string();
        assert!(Guests::is_guest(&user));
        let creds = g.credentials(&user).unwrap();
        assert!(creds.verify_password(&login.password));
        assert_eq!(g.consume(&user), Some((room, "Ada".into())));
        assert!(g.credentials(&user).is_none(), "spent");
        g.remove(&user);
        assert!(g.consume(&user).is_none());
    }
}
