//! What the two XEP-0313 archives share — rooms (`muc::archive`) and accounts
//! (`modules::mam`): parsing a query (the standard form and XEP-0059 RSM), choosing a page
//! from the matching ids, and writing results and `<fin/>`.
//!
//! Archive ids are u64s shown as 16 hex digits; each archive keeps them in ascending order,
//! so paging is index arithmetic over a list of ids.

use jid::Jid;
use minidom::Element;

use crate::error::StanzaError;
use crate::muc::form::{self, Field};
use crate::xml::{ns as xns, AttrExt};

pub const NS_MAM: &str = "urn:xmpp:mam:2";
pub const NS_RSM: &str = "http://jabber.org/protocol/rsm";
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";

/// Page size when the client does not say, and the most it may ask for.
pub const DEFAULT_MAX: usize = 50;
pub const LIMIT_MAX: usize = 250;

/// A parsed `<query xmlns='urn:xmpp:mam:2'/>`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub queryid: Option<String>,
    pub with: Option<Jid>,
    /// Inclusive bounds in milliseconds since the epoch.
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    /// Exclusive id bounds (RSM `<after/>`/`<before/>` or the after-id/before-id fields).
    pub after: Option<u64>,
    pub before: Option<u64>,
    /// `<before/>` without `<after/>`: the page nearest the end (an empty `<before/>` asks
    /// for the last page).
    pub backwards: bool,
    pub max: usize,
    /// §4.1.2 `<flip-page/>`: the page's messages newest first.
    pub flip: bool,
}

/// Archive id as sent on the wire.
pub fn id_str(id: u64) -> String {
    format!("{id:016x}")
}

fn parse_id(s: &str) -> Result<u64, StanzaError> {
    u64::from_str_radix(s.trim(), 16)
        .map_err(|_| StanzaError::item_not_found().with_text("no message with that id in the archive"))
}

impl Query {
    pub fn parse(q: &Element) -> Result<Query, StanzaError> {
        let fields = q.get_child("x", xns::DATA_FORMS).map(form::values).unwrap_or_default();
        let field = |n: &str| fields.get(n).and_then(|v| v.first()).filter(|v| !v.is_empty()).cloned();
        let time = |n: &str| -> Result<Option<u64>, StanzaError> {
            field(n)
                .map(|v| {
                    crate::muc::history::parse_datetime(&v)
                        .map(|s| s * 1000)
                        .ok_or_else(|| StanzaError::bad_request().with_text(format!("{n} is not a date-time")))
                })
                .transpose()
        };
        let (start_ms, end_ms) = (time("start")?, time("end")?.map(|e| e + 999));
        let with = field("with").map(|w| Jid::new(w.trim())).transpose().map_err(|_| StanzaError::jid_malformed())?;
        let rsm = q.get_child("set", NS_RSM);
        let rsm_text = |n: &str| rsm.and_then(|s| s.get_child(n, NS_RSM)).map(|e| e.text());
        let max = rsm_text("max").and_then(|m| m.trim().parse().ok()).unwrap_or(DEFAULT_MAX).min(LIMIT_MAX);
        let after = rsm_text("after")
            .or_else(|| field("after-id"))
            .filter(|s| !s.is_empty())
            .map(|s| parse_id(&s))
            .transpose()?;
        let before_el = rsm_text("before");
        let before = before_el
            .clone()
            .or_else(|| field("before-id"))
            .filter(|s| !s.is_empty())
            .map(|s| parse_id(&s))
            .transpose()?;
        Ok(Query {
            queryid: q.attr("queryid").map(String::from),
            with,
            start_ms,
            end_ms,
            after,
            before,
            backwards: before_el.is_some() && after.is_none(),
            max,
            flip: q.has_child("flip-page", NS_MAM),
        })
    }

    pub fn in_time(&self, at_ms: u64) -> bool {
        self.start_ms.is_none_or(|s| at_ms >= s) && self.end_ms.is_none_or(|e| at_ms <= e)
    }
}

/// The chosen page: `matching[start..end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub start: usize,
    pub end: usize,
    pub complete: bool,
}

/// Choose the page from the ids matching the filters (ascending). The after/before ids
/// must exist in the archive (the caller checks: `item-not-found`).
pub fn page(matching: &[u64], q: &Query) -> Page {
    let lo = q.after.map(|a| matching.partition_point(|&id| id <= a)).unwrap_or(0);
    let hi = q.before.map(|b| matching.partition_point(|&id| id < b)).unwrap_or(matching.len()).max(lo);
    if q.backwards {
        let start = hi.saturating_sub(q.max).max(lo);
        Page { start, end: hi, complete: start == lo }
    } else {
        let end = (lo + q.max).min(hi);
        Page { start: lo, end, complete: end == hi }
    }
}

/// One `<message><result><forwarded>` for the querying client.
pub fn result_message(from: &str, q: &Query, id: u64, at_ms: u64, orig: Element) -> Element {
    let sid = id_str(id);
    let mut result = Element::builder("result", NS_MAM).a("id", sid.as_str());
    if let Some(qid) = &q.queryid {
        result = result.a("queryid", qid.as_str());
    }
    let forwarded = Element::builder("forwarded", NS_FORWARD)
        .append(Element::builder("delay", xns::DELAY).a("stamp", crate::stanza::datetime(at_ms / 1000)).build())
        .append(orig)
        .build();
    Element::builder("message", xns::CLIENT)
        .a("from", from)
        .a("id", format!("mam-{sid}"))
        .append(result.append(forwarded).build())
        .build()
}

/// `<fin/>` with the RSM `<set/>` describing `matching[page]`.
pub fn fin(q: &Query, matching: &[u64], p: &Page) -> Element {
    let mut set = Element::builder("set", NS_RSM);
    if p.end > p.start {
        set = set
            .append(
                Element::builder("first", NS_RSM)
                    .a("index", p.start.to_string())
                    .append(id_str(matching[p.start]))
                    .build(),
            )
            .append(Element::builder("last", NS_RSM).append(id_str(matching[p.end - 1])).build());
    }
    set = set.append(Element::builder("count", NS_RSM).append(matching.len().to_string()).build());
    let mut fin = Element::builder("fin", NS_MAM);
    if p.complete {
        fin = fin.a("complete", "true");
    }
    if let Some(qid) = &q.queryid {
        fin = fin.a("queryid", qid.as_str());
    }
    fin.append(set.build()).build()
}

/// The form fields a client may filter on (XEP-0313 §4.1.1), for a query `get`.
pub fn query_fields() -> Element {
    let x = form::build(
        "form",
        None,
        vec![
            Field::hidden("FORM_TYPE", NS_MAM),
            Field::jid("with", "", ""),
            Field::text("start", "", ""),
            Field::text("end", "", ""),
            Field::text("before-id", "", ""),
            Field::text("after-id", "", ""),
        ],
    );
    Element::builder("query", NS_MAM).append(x).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(max: usize) -> Query {
        Query { max, ..Query::default() }
    }

    #[test]
    fn paging_forwards_backwards_and_last_page() {
        let ids: Vec<u64> = (1..=10).collect();
        assert_eq!(page(&ids, &q(4)), Page { start: 0, end: 4, complete: false });
        assert_eq!(page(&ids, &Query { after: Some(8), ..q(4) }), Page { start: 8, end: 10, complete: true });
        // Empty <before/>: the last page.
        assert_eq!(page(&ids, &Query { backwards: true, ..q(3) }), Page { start: 7, end: 10, complete: false });
        assert_eq!(
            page(&ids, &Query { backwards: true, before: Some(3), ..q(5) }),
            Page { start: 0, end: 2, complete: true }
        );
        assert_eq!(page(&[], &q(5)), Page { start: 0, end: 0, complete: true });
    }

    #[test]
    fn parses_form_and_rsm() {
        let el: Element = "<query xmlns='urn:xmpp:mam:2' queryid='f'><x xmlns='jabber:x:data' type='submit'>\
            <field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>\
            <field var='with'><value>a@b</value></field>\
            <field var='start'><value>2026-01-01T00:00:00Z</value></field></x>\
            <set xmlns='http://jabber.org/protocol/rsm'><max>7</max><before/></set></query>"
            .parse()
            .unwrap();
        let q = Query::parse(&el).unwrap();
        assert_eq!(q.queryid.as_deref(), Some("f"));
        assert_eq!(q.with.unwrap().to_string(), "a@b");
        assert!(q.start_ms.is_some() && q.end_ms.is_none());
        assert_eq!(q.max, 7);
        assert!(q.backwards && q.before.is_none());
        let bad: Element = "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>\
            <after>zz</after></set></query>"
            .parse()
            .unwrap();
        assert!(Query::parse(&bad).is_err());
    }
}
