//! Sign-ins in progress, sans-IO: the state, nonce and PKCE verifier (RFC 7636, S256) of
//! each authorization request, kept in memory between `/sso/<id>/start` and the callback.
//!
//! Each is single use (taken out on the callback, whatever happens next), lives ten
//! minutes, and their number is bounded so a flood of starts cannot grow memory. The
//! browser that started a sign-in holds a random binding value in a cookie; the callback
//! must bring it back, so a callback URL sent to someone else (login CSRF) is refused.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a sign-in may take at the provider.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// Sign-ins in progress at once, across all browsers.
pub const MAX_PENDING: usize = 10_000;

/// 32 random bytes, base64url: for state, nonce, verifier and tokens alike.
pub fn random_token() -> String {
    B64URL.encode(crate::sasl::credentials::random_bytes(32))
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
pub fn pkce_challenge(verifier: &str) -> String {
    B64URL.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// One authorization request waiting for its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub issuer_id: String,
    pub nonce: String,
    pub verifier: String,
    /// The cookie value of the browser that started it.
    pub browser: String,
    started: Instant,
}

/// The sign-ins in progress, by state.
#[derive(Debug, Default)]
pub struct PendingLogins {
    by_state: HashMap<String, Pending>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeError {
    /// Unknown, already used or expired state.
    Unknown,
    /// The state exists but another browser started it.
    OtherBrowser,
}

impl PendingLogins {
    /// Remember a new sign-in; returns its state, or `None` when too many are in progress.
    pub fn begin(&mut self, issuer_id: &str, browser: &str, now: Instant) -> Option<(String, Pending)> {
        if self.by_state.len() >= MAX_PENDING {
            self.by_state.retain(|_, p| now.duration_since(p.started) < PENDING_LIFETIME);
            if self.by_state.len() >= MAX_PENDING {
                return None;
            }
        }
        let state = random_token();
        let pending = Pending {
            issuer_id: issuer_id.to_string(),
            nonce: random_token(),
            verifier: random_token(),
            browser: browser.to_string(),
            started: now,
        };
        self.by_state.insert(state.clone(), pending.clone());
        Some((state, pending))
    }

    /// Take the sign-in of `state` out: it can be used once only, even when the browser
    /// check then fails (a leaked callback URL is then worthless to everyone).
    pub fn take(&mut self, state: &str, browser: Option<&str>, now: Instant) -> Result<Pending, TakeError> {
        let p = self.by_state.remove(state).ok_or(TakeError::Unknown)?;
        if now.duration_since(p.started) >= PENDING_LIFETIME {
            return Err(TakeError::Unknown);
        }
        let same = browser.is_some_and(|b| {
            aws_lc_rs::constant_time::verify_slices_are_equal(b.as_bytes(), p.browser.as_bytes()).is_ok()
        });
        if !same {
            return Err(TakeError::OtherBrowser);
        }
        Ok(p)
    }

    pub fn len(&self) -> usize {
        self.by_state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_state.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token());
    }

    #[test]
    fn a_state_is_used_once_by_its_own_browser_within_ten_minutes() {
        let mut p = PendingLogins::default();
        let t0 = Instant::now();
        let (state, pending) = p.begin("agents", "b1", t0).unwrap();
        assert_ne!(pending.nonce, pending.verifier);
        assert_eq!(p.take(&state, Some("b1"), t0).unwrap().issuer_id, "agents");
        assert_eq!(p.take(&state, Some("b1"), t0), Err(TakeError::Unknown), "replayed");
        let (state, _) = p.begin("agents", "b1", t0).unwrap();
        assert_eq!(p.take(&state, Some("b2"), t0), Err(TakeError::OtherBrowser));
        assert_eq!(p.take(&state, Some("b1"), t0), Err(TakeError::Unknown), "spent by the failed try");
        let (state, _) = p.begin("agents", "b1", t0).unwrap();
        assert_eq!(p.take(&state, None, t0), Err(TakeError::OtherBrowser));
        let (state, _) = p.begin("agents", "b1", t0).unwrap();
        assert_eq!(p.take(&state, Some("b1"), t0 + PENDING_LIFETIME), Err(TakeError::Unknown), "expired");
        assert!(p.is_empty());
    }

    #[test]
    fn the_number_in_progress_is_bounded_and_expired_ones_make_room() {
        let mut p = PendingLogins::default();
        let t0 = Instant::now();
        for _ in 0..MAX_PENDING {
            p.begin("a", "b", t0).unwrap();
        }
        assert!(p.begin("a", "b", t0 + Duration::from_secs(1)).is_none());
        assert!(p.begin("a", "b", t0 + PENDING_LIFETIME).is_some());
        assert_eq!(p.len(), 1);
    }
}
