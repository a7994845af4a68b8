//! Small helpers over stanzas kept as minidom elements: addresses, types, replies.

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use crate::error::StanzaError;
use crate::xml::{ns, AttrExt, ElementExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Presence,
    Iq,
}

pub fn kind(el: &Element) -> Option<Kind> {
    if el.ns() != ns::CLIENT {
        return None;
    }
    match el.name() {
        "message" => Some(Kind::Message),
        "presence" => Some(Kind::Presence),
        "iq" => Some(Kind::Iq),
        _ => None,
    }
}

pub fn stanza_type(el: &Element) -> Option<&str> {
    el.attr("type")
}

/// The `to` address: `Ok(None)` if absent, `Err` if malformed.
pub fn to(el: &Element) -> Result<Option<Jid>, jid::Error> {
    el.attr("to").map(Jid::new).transpose()
}

pub fn from(el: &Element) -> Option<Jid> {
    el.attr("from").and_then(|s| Jid::new(s).ok())
}

/// The error reply to `stanza` (RFC 6120 §8.3.1). Addresses are swapped; for iq the
/// payload is dropped (it may be large and the RFC makes it optional), for message and
/// presence the children are kept so the sender can tell which one failed.
pub fn error_reply(stanza: &Element, error: StanzaError, by: Option<&str>) -> Element {
    let mut b = Element::builder(stanza.name(), ns::CLIENT).a("type", "error");
    if let Some(id) = stanza.attr("id") {
        b = b.a("id", id);
    }
    if let Some(from) = stanza.attr("from") {
        b = b.a("to", from);
    }
    if let Some(to) = stanza.attr("to") {
        b = b.a("from", to);
    }
    if stanza.name() != "iq" {
        for child in stanza.children().filter(|c| c.name() != "error") {
            b = b.append(child.clone());
        }
    }
    b.append(error.to_element(by)).build()
}

/// Whether a stanza may be answered with an error: never answer an error with an error
/// (RFC 6120 §8.3.1), nor iq results.
pub fn may_bounce(el: &Element) -> bool {
    let ty = stanza_type(el);
    ty != Some("error") && !(el.name() == "iq" && ty == Some("result"))
}

/// Address a stanza: set `from` and `to`.
pub fn readdress(el: &mut Element, from: &str, to: Option<&str>) {
    el.set("from", from);
    match to {
        Some(t) => el.set("to", t),
        None => el.unset("to"),
    }
}

pub fn bare_str(j: &BareJid) -> String {
    j.to_string()
}

pub fn full_str(j: &FullJid) -> String {
    j.to_string()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// XEP-0082 date-time in UTC for a Unix timestamp.
pub fn datetime(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(datetime(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(datetime(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn error_reply_swaps_and_keeps_payload_for_messages() {
        let m: Element =
            "<message xmlns='jabber:client' from='a@x/r' to='b@x' id='1'><body>hi</body></message>".parse().unwrap();
        let e = error_reply(&m, StanzaError::service_unavailable(), None);
        assert_eq!(e.attr("to"), Some("a@x/r"));
        assert_eq!(e.attr("from"), Some("b@x"));
        assert_eq!(e.attr("type"), Some("error"));
        assert!(e.has_child("body", ns::CLIENT));
        assert!(e.get_child("error", ns::CLIENT).unwrap().has_child("service-unavailable", ns::STANZAS_ERR));
        assert!(!may_bounce(&e));
    }
}
