//! XEP-0421 occupant ids: the same account gets the same id in a room across visits and
//! nicks, and the id reveals nothing about the account. HMAC-SHA-256 of room and bare JID
//! under a per-service secret kept in the store.

use aws_lc_rs::hmac;
use base64::Engine;

pub fn occupant_id(secret: &[u8], room: &str, bare: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut msg = Vec::with_capacity(room.len() + bare.len() + 1);
    msg.extend_from_slice(room.as_bytes());
    msg.push(0);
    msg.extend_from_slice(bare.as_bytes());
    let tag = hmac::sign(&key, &msg);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_and_distinct() {
        let a = super::occupant_id(b"k", "r@c", "a@x");
        assert_eq!(a, super::occupant_id(b"k", "r@c", "a@x"));
        assert_ne!(a, super::occupant_id(b"k", "r@c", "b@x"));
        assert_ne!(a, super::occupant_id(b"k", "s@c", "a@x"));
        assert_ne!(a, super::occupant_id(b"j", "r@c", "a@x"));
    }
}
