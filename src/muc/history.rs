//! Discussion history sent on join (XEP-0045 §7.2.15): the last messages, limited by what
//! the joining client asks (`maxchars`, `maxstanzas`, `seconds`, `since`).

use minidom::Element;
use std::collections::VecDeque;

use super::ns;
use crate::xml::{ns as xns, AttrExt};

pub struct Entry {
    /// The message as broadcast, without `to`.
    pub message: Element,
    pub at_ms: u64,
    /// Serialised length, for `maxchars`.
    pub chars: usize,
}

pub struct History {
    entries: VecDeque<Entry>,
    capacity: usize,
    /// Serialised bytes held; bounded by [`MAX_BYTES`] whatever the message count.
    bytes: usize,
}

/// The most history one room keeps in memory, in serialised bytes: large stanzas (up to
/// `c2s.max_stanza_size` each) must not make a room's memory grow with its history length.
pub const MAX_BYTES: usize = 1024 * 1024;

/// The client's `<history/>` request; `None` fields are unlimited.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Request {
    pub maxchars: Option<usize>,
    pub maxstanzas: Option<usize>,
    pub seconds: Option<u64>,
    pub since_ms: Option<u64>,
}

impl Request {
    /// Read `<x xmlns='…muc'><history …/></x>` from a join presence.
    pub fn from_join(x: Option<&Element>) -> Request {
        let Some(h) = x.and_then(|x| x.get_child("history", ns::MUC)) else {
            return Request::default();
        };
        let num = |a: &str| h.attr(a).and_then(|v| v.trim().parse::<u64>().ok());
        Request {
            maxchars: num("maxchars").map(|n| n as usize),
            maxstanzas: num("maxstanzas").map(|n| n as usize),
            seconds: num("seconds"),
            since_ms: h.attr("since").and_then(parse_datetime).map(|s| s * 1000),
        }
    }
}

impl History {
    pub fn new(capacity: usize) -> History {
        History { entries: VecDeque::new(), capacity, bytes: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.entries.len() > capacity {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.chars;
        }
    }

    pub fn push(&mut self, message: Element, at_ms: u64) {
        if self.capacity == 0 {
            return;
        }
        let chars = crate::xml::write::element_bytes(&message).len();
        while !self.entries.is_empty() && (self.entries.len() >= self.capacity || self.bytes + chars > MAX_BYTES) {
            self.pop_oldest();
        }
        self.bytes += chars;
        self.entries.push_back(Entry { message, at_ms, chars });
    }

    /// Replace the message with this stanza-id by what `f` makes of it (retraction);
    /// `None` leaves it. Returns whether a message was replaced.
    pub fn replace(&mut self, stanza_id: &str, f: impl Fn(&Element) -> Option<Element>) -> bool {
        for e in self.entries.iter_mut() {
            let id = e.message.get_child("stanza-id", ns::SID).and_then(|s| s.attr("id"));
            if id == Some(stanza_id) {
                if let Some(new) = f(&e.message) {
                    let chars = crate::xml::write::element_bytes(&new).len();
                    self.bytes = self.bytes - e.chars + chars;
                    e.message = new;
                    e.chars = chars;
                    return true;
                }
            }
        }
        false
    }

    /// The messages to send, oldest first, each with its `<delay/>` (XEP-0203).
    pub fn select(&self, req: &Request, now_ms: u64, room: &str) -> Vec<Element> {
        let mut picked = Vec::new();
        let mut chars = 0usize;
        for e in self.entries.iter().rev() {
            if req.maxstanzas.is_some_and(|n| picked.len() >= n) {
                break;
            }
            if req.seconds.is_some_and(|s| now_ms.saturating_sub(e.at_ms) > s.saturating_mul(1000)) {
                break;
            }
            if req.since_ms.is_some_and(|s| e.at_ms < s) {
                break;
            }
            if req.maxchars.is_some_and(|m| chars + e.chars > m) {
                break;
            }
            chars += e.chars;
            picked.push(e);
        }
        picked
            .into_iter()
            .rev()
            .map(|e| {
                let mut m = e.message.clone();
                m.append_child(
                    Element::builder("delay", xns::DELAY)
                        .a("from", room)
                        .a("stamp", crate::stanza::datetime(e.at_ms / 1000))
                        .build(),
                );
                m
            })
            .collect()
    }
}

/// XEP-0082 date-time (`2026-11-25T08:00:00Z`, optional fraction and offset) to Unix seconds.
pub fn parse_datetime(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|v| v.parse::<i64>().ok());
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs).ok()
}

/// Howard Hinnant's days_from_civil (inverse of the one in `stanza.rs`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> Element {
        Element::builder("message", xns::CLIENT)
            .append(Element::builder("body", xns::CLIENT).append(i.to_string()).build())
            .build()
    }

    #[test]
    fn datetime_round_trip() {
        assert_eq!(parse_datetime("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_datetime("2023-11-14T22:13:20.123Z"), Some(1_700_000_000));
        assert_eq!(parse_datetime("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
        assert_eq!(parse_datetime("junk"), None);
    }

    #[test]
    fn limits() {
        let mut h = History::new(5);
        for i in 0..8 {
            h.push(msg(i), i as u64 * 1000);
        }
        assert_eq!(h.len(), 5);
        let body =
            |v: Vec<Element>| v.iter().map(|m| m.get_child("body", xns::CLIENT).unwrap().text()).collect::<Vec<_>>();
        assert_eq!(body(h.select(&Request::default(), 8000, "r@c")), ["3", "4", "5", "6", "7"]);
        let two = Request { maxstanzas: Some(2), ..Default::default() };
        assert_eq!(body(h.select(&two, 8000, "r@c")), ["6", "7"]);
        let secs = Request { seconds: Some(2), ..Default::default() };
        assert_eq!(body(h.select(&secs, 8000, "r@c")), ["6", "7"]);
        let since = Request { since_ms: Some(5000), ..Default::default() };
        assert_eq!(body(h.select(&since, 8000, "r@c")), ["5", "6", "7"]);
        let none = Request { maxchars: Some(0), ..Default::default() };
        assert!(h.select(&none, 8000, "r@c").is_empty());
        assert!(h.select(&Request::default(), 8000, "r@c")[0].has_child("delay", xns::DELAY));
    }

    #[test]
    fn bytes_are_bounded() {
        let mut h = History::new(1000);
        let big = Element::builder("message", xns::CLIENT)
            .append(Element::builder("body", xns::CLIENT).append("x".repeat(300 * 1024)).build())
            .build();
        for i in 0..10 {
            h.push(big.clone(), i);
        }
        assert_eq!(h.len(), 3);
        assert!(h.bytes <= MAX_BYTES);
    }
}
