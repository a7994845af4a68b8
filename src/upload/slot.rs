//! Upload slots as plain data (XEP-0363): slot ids, file name and content-type checks, and
//! the HMAC token that authorises one PUT.
//!
//! The server keeps no state between the slot request and the upload: everything the PUT
//! must honour (slot, file name, size, content type, uploader, expiry) is signed into the
//! token the client sends back in its `Authorization` header. Verification recomputes the
//! HMAC and compares in constant time (`aws_lc_rs::hmac::verify`). The key lives in
//! `data_dir/uploads/secret`, so slots survive a restart.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

/// Length of a slot id: 18 random bytes, base64url (144 bits, not guessable).
pub const ID_LEN: usize = 24;

/// What one PUT may upload, as signed into its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: String,
    pub filename: String,
    pub size: u64,
    /// The content type the client announced; empty when it announced none.
    pub content_type: String,
    /// The uploader's bare JID (for the quota).
    pub uploader: String,
    /// Unix time after which the PUT is refused.
    pub expires: u64,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the Authorization header does not hold an upload token")]
    Malformed,
    #[error("the upload token does not match this slot")]
    BadSignature,
    #[error("the upload slot has expired; request a new one")]
    Expired,
}

/// A new random slot id.
pub fn new_id() -> String {
    B64.encode(crate::sasl::credentials::random_bytes(18))
}

/// Whether `id` looks like one of ours (so it can be used as a file name safely).
pub fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A file name we accept: one path segment, no control characters, not hidden, at most
/// 255 bytes. The reason is shown to the client.
pub fn check_filename(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("the file name must have between 1 and 255 bytes");
    }
    if name.starts_with('.') || name.trim() != name {
        return Err("the file name must not start with a dot or with or end in spaces");
    }
    if name.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '\u{2028}' | '\u{2029}')) {
        return Err("the file name must not contain slashes or control characters");
    }
    Ok(())
}

/// A MIME type `type/subtype` with optional parameters, printable ASCII, at most 255 bytes.
pub fn valid_content_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    ct.len() <= 255
        && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence.split_once('/').is_some_and(|(t, s)| token(t) && token(s))
}

/// Whether two content types name the same media type (case-insensitive, spaces around
/// parameters ignored).
pub fn same_content_type(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split(';').map(|p| p.trim().to_ascii_lowercase()).collect::<Vec<_>>();
    norm(a) == norm(b)
}

/// Types a browser may show inline: ones that cannot run script. Everything else is
/// served as an attachment (and every file under a sandboxing CSP anyway).
pub fn inline_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    (essence.starts_with("image/") && essence != "image/svg+xml")
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
        || essence == "text/plain"
        || essence == "application/pdf"
}

pub use crate::http::percent_encode;

/// `Content-Disposition` (RFC 6266) with an ASCII fallback name and the real name in
/// `filename*`, so no quote or control character of a name can break the header.
pub fn content_disposition(filename: &str, inline: bool) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", percent_encode(filename))
}

impl Slot {
    fn message(&self) -> Vec<u8> {
        format!(
            "amphi-upload-v1\0{}\0{}\0{}\0{}\0{}\0{}",
            self.id, self.filename, self.size, self.content_type, self.uploader, self.expires
        )
        .into_bytes()
    }

    /// The token for the `Authorization: Bearer` header:
    /// `v1.<expires>.<size>.<content type>.<uploader>.<hmac>` (strings base64url).
    pub fn token(&self, key: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let tag = hmac::sign(&key, &self.message());
        format!(
            "v1.{}.{}.{}.{}.{}",
            self.expires,
            self.size,
            B64.encode(&self.content_type),
            B64.encode(&self.uploader),
            B64.encode(tag.as_ref())
        )
    }

    /// Check a token for the slot `id` and file `filename` named by the URL; on success,
    /// the slot it was issued for.
    pub fn verify(key: &[u8], id: &str, filename: &str, token: &str, now: u64) -> Result<Slot, TokenError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [version, expires, size, ct, uploader, tag] = parts[..] else {
            return Err(TokenError::Malformed);
        };
        let text = |s: &str| B64.decode(s).ok().and_then(|b| String::from_utf8(b).ok());
        let (Some(expires), Some(size), Some(content_type), Some(uploader), Ok(tag)) =
            (expires.parse().ok(), size.parse().ok(), text(ct), text(uploader), B64.decode(tag))
        else {
            return Err(TokenError::Malformed);
        };
        if version != "v1" {
            return Err(TokenError::Malformed);
        }
        let slot = Slot { id: id.to_string(), filename: filename.to_string(), size, content_type, uploader, expires };
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        hmac::verify(&key, &slot.message(), &tag).map_err(|_| TokenError::BadSignature)?;
        if now > slot.expires {
            return Err(TokenError::Expired);
        }
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> Slot {
        Slot {
            id: new_id(),
            filename: "tr\u{e8}s \"cool\".jpg".into(),
            size: 1234,
            content_type: "image/jpeg".into(),
            uploader: "ada@localhost".into(),
            expires: 1000,
        }
    }

    #[test]
    fn token_round_trip_and_tampering() {
        let key = b"0123456789abcdef0123456789abcdef";
        let s = slot();
        assert!(valid_id(&s.id));
        let t = s.token(key);
        assert_eq!(Slot::verify(key, &s.id, &s.filename, &t, 999), Ok(s.clone()));
        assert_eq!(Slot::verify(key, &s.id, &s.filename, &t, 1001), Err(TokenError::Expired));
        assert_eq!(Slot::verify(key, &s.id, "other.jpg", &t, 999), Err(TokenError::BadSignature));
        assert_eq!(Slot::verify(b"another key", &s.id, &s.filename, &t, 999), Err(TokenError::BadSignature));
        // A bigger size or another content type in the token breaks the signature.
        let bigger = t.replacen(".1234.", ".99999.", 1);
        assert_eq!(Slot::verify(key, &s.id, &s.filename, &bigger, 999), Err(TokenError::BadSignature));
        let later = t.replacen("v1.1000.", "v1.5000.", 1);
        assert_eq!(Slot::verify(key, &s.id, &s.filename, &later, 999), Err(TokenError::BadSignature));
        assert_eq!(Slot::verify(key, &s.id, &s.filename, "v1.x", 999), Err(TokenError::Malformed));
        assert_eq!(Slot::verify(key, &s.id, &s.filename, "", 999), Err(TokenError::Malformed));
    }

    #[test]
    fn names_and_types() {
        assert!(check_filename("photo 1.jpg").is_ok());
        assert!(check_filename("été.png").is_ok());
        for bad in ["", "../x", "a/b", "a\\b", ".htaccess", "a\nb", " x", &"a".repeat(256)] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
        assert!(valid_content_type("image/jpeg"));
        assert!(valid_content_type("text/plain; charset=utf-8"));
        assert!(!valid_content_type("image"));
        assert!(!valid_content_type("text/plain\r\nX: y"));
        assert!(same_content_type("Text/Plain; charset=UTF-8", "text/plain;charset=utf-8"));
        assert!(!inline_type("text/html") && !inline_type("image/svg+xml") && inline_type("image/png"));
        assert!(!valid_id("../../etc/passwd") && !valid_id(""));
    }

    #[test]
    fn disposition_cannot_break_the_header() {
        let d = content_disposition("a\"b\\c\u{e9}.txt", false);
        assert_eq!(d, "attachment; filename=\"a_b_c_.txt\"; filename*=UTF-8''a%22b%5Cc%C3%A9.txt");
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
