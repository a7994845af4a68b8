//! Serialisation of what we send. Elements go through minidom's writer (which escapes);
//! the stream header is the one piece that cannot be a complete element, so it is written
//! here with every attribute value escaped.

use minidom::Element;

use super::ns;

/// Serialise one element (a stanza or a negotiation element).
pub fn element_bytes(el: &Element) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing to a Vec cannot fail for IO reasons; minidom only fails on invalid names,
    // which our own elements never carry and parsed ones were validated on the way in.
    if el.write_to(&mut out).is_err() {
        out.clear();
    }
    out
}

/// Escape an attribute value or text for inclusion in hand-written XML.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The server's stream header (RFC 6120 §4.7). `to` is echoed only when the peer gave a
/// `from`, as §4.7.2 says.
pub fn stream_header(from: &str, to: Option<&str>, id: &str, lang: &str, default_ns: &str) -> Vec<u8> {
    let mut s = String::with_capacity(256);
    s.push_str("<?xml version='1.0'?><stream:stream xmlns='");
    s.push_str(&escape(default_ns));
    s.push_str("' xmlns:stream='");
    s.push_str(ns::STREAM);
    s.push_str("' from='");
    s.push_str(&escape(from));
    if let Some(to) = to {
        s.push_str("' to='");
        s.push_str(&escape(to));
    }
    s.push_str("' id='");
    s.push_str(&escape(id));
    s.push_str("' version='1.0' xml:lang='");
    s.push_str(&escape(lang));
    s.push_str("'>");
    s.into_bytes()
}

pub const STREAM_CLOSE: &[u8] = b"</stream:stream>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_escapes_values() {
        let h = String::from_utf8(stream_header("localhost", Some("a'b"), "x<y", "en", "jabber:client")).unwrap();
        assert!(h.contains("to='a&apos;b'"));
        assert!(h.contains("id='x&lt;y'"));
    }

    #[test]
    fn element_round_trip_escapes_text() {
        let el = Element::builder("body", ns::CLIENT).append("<&>").build();
        let s = String::from_utf8(element_bytes(&el)).unwrap();
        assert!(s.contains("&lt;&amp;&gt;"), "{s}");
    }
}
