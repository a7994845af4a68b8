//! Signed invitation links, sans-IO: `/meeting/signin/<role>/<room>/hash/<signature>`.
//!
//! The signature is HMAC-SHA256 with the server's secret over the role, the room and the
//! room's key version. Changing any of the three breaks it; regenerating a room's links
//! bumps its version, which revokes every link signed before. Verification is constant
//! time (`aws_lc_rs::hmac::verify`).

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// What a link lets its holder be in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Moderator,
    Participant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "moderator" => Some(Role::Moderator),
            "participant" => Some(Role::Participant),
            _ => None,
        }
    }
}

/// The signed message: a fixed label, then length-prefixed fields, so no two different
/// (role, room, version) triples can produce the same bytes.
fn message(role: Role, room: &str, version: u64) -> Vec<u8> {
    let mut m = b"amphi invitation v1".to_vec();
    m.extend_from_slice(&version.to_be_bytes());
    for field in [role.as_str(), room] {
        m.extend_from_slice(&(field.len() as u32).to_be_bytes());
        m.extend_from_slice(field.as_bytes());
    }
    m
}

pub fn sign(secret: &[u8], role: Role, room: &str, version: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    URL_SAFE_NO_PAD.encode(hmac::sign(&key, &message(role, room, version)).as_ref())
}

pub fn verify(secret: &[u8], role: Role, room: &str, version: u64, signature: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &message(role, room, version), &tag).is_ok()
}

/// The path of a link; the room is percent-encoded as one path segment.
pub fn path(secret: &[u8], role: Role, room: &str, version: u64) -> String {
    let segment = super::percent_encode(room);
    format!("/meeting/signin/{}/{segment}/hash/{}", role.as_str(), sign(secret, role, room, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_link_verifies() {
        let sig = sign(SECRET, Role::Participant, "team", 0);
        assert!(verify(SECRET, Role::Participant, "team", 0, &sig));
        assert_eq!(sig.len(), 43);
    }

    #[test]
    fn changing_anything_breaks_it() {
        let sig = sign(SECRET, Role::Participant, "team", 0);
        assert!(!verify(SECRET, Role::Moderator, "team", 0, &sig), "role");
        assert!(!verify(SECRET, Role::Participant, "team2", 0, &sig), "room");
        assert!(!verify(SECRET, Role::Participant, "team", 1, &sig), "regenerated");
        assert!(!verify(b"another secret", Role::Participant, "team", 0, &sig), "secret");
        let mut altered = sig.clone().into_bytes();
        altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
        assert!(!verify(SECRET, Role::Participant, "team", 0, &String::from_utf8(altered).unwrap()));
        assert!(!verify(SECRET, Role::Participant, "team", 0, ""));
        assert!(!verify(SECRET, Role::Participant, "team", 0, "not base64 !"));
        assert!(!verify(SECRET, Role::Participant, "team", 0, &sig[..42]), "truncated");
    }

    #[test]
    fn fields_cannot_slide() {
        // Length prefixes: ("participant", "x") and a room that embeds the role differ.
        assert_ne!(message(Role::Participant, "ab", 0), message(Role::Participant, "a", 0));
    }

    #[test]
    fn paths_encode_the_room() {
        let p = path(SECRET, Role::Moderator, "réunion 1", 3);
        assert!(p.starts_with("/meeting/signin/moderator/r%C3%A9union%201/hash/"), "{p}");
    }
}
