//! SASL OAUTHBEARER (RFC 7628) on the server side, sans-IO.
//!
//! The client's one message is a GS2 header and key/value pairs separated by `\x01`:
//! `n,a=user@domain,\x01auth=Bearer <token>\x01\x01`. The server asks its caller whether
//! the token is good ([`super::Step::NeedToken`]); a bad token is answered, as §3.2.2
//! requires, with a challenge carrying a JSON error, which the client acknowledges with a
//! lone `\x01` before the server sends the failure. Channel binding (`p=`) is not
//! supported: the token is bound to an account, and the stream is already TLS.

use super::Failure;

/// A bearer token from the client. `Debug` hides it: it signs someone in.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(pub String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(hidden)")
    }
}

/// The parsed initial client response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// The authorization identity (`a=`), unescaped, when the client gave one.
    pub authzid: Option<String>,
    pub token: BearerToken,
}

/// The error challenge of §3.2.2.
pub const INVALID_TOKEN: &[u8] = br#"{"status":"invalid_token"}"#;

/// Parse `gs2-header kvsep *kvpair kvsep`.
pub fn parse(data: &[u8]) -> Result<ClientResponse, Failure> {
    let text = std::str::from_utf8(data).map_err(|_| Failure::IncorrectEncoding)?;
    let (gs2, rest) = text.split_once('\x01').ok_or(Failure::MalformedRequest)?;
    let mut header = gs2.splitn(3, ',');
    let (Some(cbind), Some(authzid), Some("")) = (header.next(), header.next(), header.next()) else {
        return Err(Failure::MalformedRequest);
    };
    // "n": the client does not support channel binding; "y": it does but we did not offer
    // it (we never offer it for OAUTHBEARER, so "y" is no downgrade). "p=": not supported.
    if !matches!(cbind, "n" | "y") {
        return Err(Failure::MalformedRequest);
    }
    let authzid = match authzid {
        "" => None,
        a => Some(unescape_saslname(a.strip_prefix("a=").ok_or(Failure::MalformedRequest)?)?),
    };
    // Key/value pairs, each ended by \x01, then one more \x01.
    let pairs = rest.strip_suffix('\x01').ok_or(Failure::MalformedRequest)?;
    if !pairs.is_empty() && !pairs.ends_with('\x01') {
        return Err(Failure::MalformedRequest);
    }
    let mut token = None;
    for pair in pairs.split_terminator('\x01') {
        let (key, value) = pair.split_once('=').ok_or(Failure::MalformedRequest)?;
        if key == "auth" {
            let (scheme, credentials) = value.split_once(' ').ok_or(Failure::MalformedRequest)?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.is_some() {
                return Err(Failure::MalformedRequest);
            }
            token = Some(credentials.trim_start_matches(' ').to_string());
        }
    }
    let token = token.filter(|t| !t.is_empty()).ok_or(Failure::MalformedRequest)?;
    Ok(ClientResponse { authzid, token: BearerToken(token) })
}

/// RFC 5801 saslname: `=2C` is ',' and `=3D` is '='; any other '=' is an error.
fn unescape_saslname(s: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(Failure::MalformedRequest),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `authzid` names `user` on `domain` (a bare JID, or the bare localpart).
pub fn authzid_matches(authzid: &str, user: &str, domain: &str) -> bool {
    let (node, host) = match authzid.split_once('@') {
        Some((n, h)) => (n, Some(h)),
        None => (authzid, None),
    };
    host.is_none_or(|h| h.eq_ignore_ascii_case(domain)) && super::normalize_username(node).is_some_and(|n| n == user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs2_header_and_token() {
        let r = parse(b"n,a=alice@localhost,\x01host=localhost\x01port=5222\x01auth=Bearer tok-1\x01\x01").unwrap();
        assert_eq!(r.authzid.as_deref(), Some("alice@localhost"));
        assert_eq!(r.token, BearerToken("tok-1".into()));
        let r = parse(b"n,,\x01auth=bearer  tok-2\x01\x01").unwrap();
        assert_eq!((r.authzid, r.token.0.as_str()), (None, "tok-2"));
        assert_eq!(parse(b"y,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01").unwrap().authzid.as_deref(), Some("a,b=c"));
        assert!(!format!("{r:?}", r = parse(b"n,,\x01auth=Bearer secret\x01\x01").unwrap()).contains("secret"));
    }

    #[test]
    fn malformed_responses() {
        for bad in [
            &b""[..],
            b"\x01",
            b"n,,",
            b"p=tls-exporter,,\x01auth=Bearer t\x01\x01",
            b"n,alice,\x01auth=Bearer t\x01\x01",
            b"n,a=bad=zz,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Basic dXNlcg==\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01host=x\x01\x01",
            b"n,,\x01auth=Bearer t\x01",
            b"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",
            b"n,,\x01novalue\x01\x01",
        ] {
            assert_eq!(parse(bad).unwrap_err(), Failure::MalformedRequest, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"n,,\x01auth=Bearer \xff\x01\x01").unwrap_err(), Failure::IncorrectEncoding);
    }

    #[test]
    fn authzid_must_name_the_token_account() {
        assert!(authzid_matches("alice@localhost", "alice", "localhost"));
        assert!(authzid_matches("Alice@LOCALHOST", "alice", "localhost"));
        assert!(authzid_matches("alice", "alice", "localhost"));
        assert!(!authzid_matches("bob@localhost", "alice", "localhost"));
        assert!(!authzid_matches("alice@elsewhere.example", "alice", "localhost"));
        assert!(!authzid_matches("alice@localhost/res", "alice", "localhost"));
    }
}
