//! Incremental, bounded XML framing of an XMPP stream (sans-IO).
//!
//! Bytes go in with [`Framer::feed`]; [`Framer::next_event`] hands out the stream header,
//! each complete top-level element (a stanza or a negotiation element) and the stream close.
//! Everything the RFC 6120 §11 "restricted XML" forbids (comments, processing instructions,
//! DTDs, entity declarations, undeclared entities) is refused by the underlying rxml parser;
//! the framer adds the limits a server needs: the size of one top-level element in bytes,
//! and its nesting depth. Limits are checked while the element is still arriving, so an
//! endless element never grows memory past the limit.

use minidom::Element;
use rxml::{Event, Parse, Parser};
use std::collections::BTreeMap;

use super::ns;

/// Bounds applied to every top-level element.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum size of one top-level element, in bytes as received.
    pub max_stanza_size: usize,
    /// Maximum nesting depth below the stream element (a stanza is depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_stanza_size: 256 * 1024, max_depth: 64 }
    }
}

/// What the framer produced.
#[derive(Debug)]
pub enum FramerEvent {
    /// `<stream:stream ...>` with its attributes (unqualified names only, plus `xml:lang`
    /// under the key `xml:lang`).
    StreamOpen(BTreeMap<String, String>),
    /// A complete child of the stream element.
    Element(Element),
    /// `</stream:stream>`.
    StreamClose,
}

/// Why the stream cannot go on; each maps to one stream error condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not XML, or XML that breaks well-formedness or namespace rules.
    NotWellFormed(String),
    /// XML that RFC 6120 §11.1 forbids (DTD, comments, PIs, entity declarations).
    RestrictedXml(String),
    /// The root element is not `stream` in the streams namespace.
    InvalidNamespace(String),
    /// A top-level element grew past `max_stanza_size`.
    TooLarge(usize),
    /// Elements nested deeper than `max_depth`.
    TooDeep(usize),
}

/// The incremental framer. One per stream; call [`Framer::reset`] after a stream restart
/// (STARTTLS, SASL success), as RFC 6120 §4.3.3 requires a fresh parser.
///
/// An idle stream can be [parked](Framer::park): between two stanzas the parser's state is
/// fully described by the stream header, so the parser (whose token buffers alone take
/// 16 KiB) is dropped and rebuilt from the saved header when bytes arrive again.
pub struct Framer {
    /// `None` while parked.
    parser: Option<Box<Parser>>,
    buf: Vec<u8>,
    /// How much of `buf` the parser has consumed (compacted on the next `feed`, so that
    /// parsing a batch of stanzas does not move the rest of the batch after each event).
    pos: usize,
    limits: Limits,
    /// Elements under construction; `stack[0]` is the top-level child of the stream.
    stack: Vec<Element>,
    in_stream: bool,
    /// Bytes consumed by the current top-level element so far.
    stanza_bytes: usize,
    failed: Option<FrameError>,
    /// The raw bytes of the stream header: read for its default namespace declaration (the
    /// parser resolves namespaces and does not report declarations), and replayed into a
    /// fresh parser when a parked framer wakes. Empty when too long to keep.
    header_raw: Vec<u8>,
    /// Whether the parser has consumed nothing but whitespace since the last top-level
    /// element (or the header) ended, so it holds no partial token and may be dropped.
    clean: bool,
}

/// Longest stream header kept for replay; a longer one (never seen from real clients)
/// just means the framer is not parked.
const MAX_HEADER: usize = 4096;

impl Framer {
    pub fn new(limits: Limits) -> Self {
        Framer {
            parser: Some(Box::default()),
            buf: Vec::new(),
            pos: 0,
            limits,
            stack: Vec::new(),
            in_stream: false,
            stanza_bytes: 0,
            failed: None,
            header_raw: Vec::new(),
            clean: false,
        }
    }

    /// Start over for a restarted stream. Unparsed bytes are dropped: after STARTTLS and
    /// SASL success the peer must wait for our answer before sending more.
    pub fn reset(&mut self) {
        *self = Framer::new(self.limits);
    }

    /// Hand received bytes to the framer.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not parsed yet (whitespace keepalives count until parsed).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Free the parser and buffers of a stream that sits between stanzas; the next bytes
    /// fed bring them back. Returns false (and keeps everything) in the middle of an
    /// element, before the header, after an error, or with unparsed bytes.
    pub fn park(&mut self) -> bool {
        if !self.in_stream
            || !self.clean
            || !self.stack.is_empty()
            || self.failed.is_some()
            || self.pending() > 0
            || self.header_raw.is_empty()
        {
            return false;
        }
        self.parser = None;
        self.buf = Vec::new();
        self.pos = 0;
        self.stack = Vec::new();
        true
    }

    /// Whether the parser is currently dropped (see [`Framer::park`]).
    pub fn is_parked(&self) -> bool {
        self.parser.is_none()
    }

    /// A fresh parser that has read the saved stream header, as the dropped one had.
    fn unpark(&self) -> Result<Box<Parser>, FrameError> {
        let mut parser: Box<Parser> = Box::default();
        let mut input: &[u8] = &self.header_raw;
        loop {
            match parser.parse(&mut input, false) {
                Ok(Some(Event::StartElement(..))) => return Ok(parser),
                Ok(Some(_)) => {}
                // The same bytes parsed into this stream's header before.
                _ => return Err(FrameError::NotWellFormed("the stream header could not be read again".into())),
            }
        }
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<FramerEvent>, FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.parse();
        if let Err(err) = &result {
            self.failed = Some(err.clone());
            self.buf.clear();
            self.pos = 0;
            self.stack.clear();
        }
        result
    }

    fn parse(&mut self) -> Result<Option<FramerEvent>, FrameError> {
        if self.parser.is_none() {
            if self.pending() == 0 {
                return Ok(None);
            }
            self.parser = Some(self.unpark()?);
        }
        loop {
            let Some(parser) = self.parser.as_mut() else { return Ok(None) };
            let mut input: &[u8] = &self.buf[self.pos..];
            let before = input.len();
            let result = parser.parse(&mut input, false);
            let consumed = before - input.len();
            let chunk = &self.buf[self.pos..self.pos + consumed];
            if !self.in_stream && self.header_raw.len() < MAX_HEADER {
                self.header_raw.extend_from_slice(chunk);
            }
            if self.in_stream
                && self.stack.is_empty()
                && !chunk.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                self.clean = false;
            }
            self.pos += consumed;
            if !self.stack.is_empty() || consumed > 0 && self.in_stream {
                self.stanza_bytes += consumed;
            }
            let event = match result {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(None),
                Err(rxml::error::EndOrError::NeedMoreData) => {
                    let unparsed = self.pending();
                    if unparsed == 0 {
                        self.pos = 0;
                        self.buf.clear();
                        // Give back what a large stanza made the buffer grow to.
                        if self.buf.capacity() > 8192 {
                            self.buf = Vec::new();
                        }
                    }
                    // A partial token also counts against the limit: a peer must not be able
                    // to make us buffer an endless attribute value or name.
                    if self.stanza_bytes + unparsed > self.limits.max_stanza_size {
                        return Err(FrameError::TooLarge(self.limits.max_stanza_size));
                    }
                    return Ok(None);
                }
                Err(rxml::error::EndOrError::Error(err)) => return Err(classify(err)),
            };
            if let Some(out) = self.handle(event)? {
                return Ok(Some(out));
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<Option<FramerEvent>, FrameError> {
        match event {
            Event::XmlDeclaration(..) => Ok(None),
            Event::StartElement(_, (namespace, name), attrs) => {
                if !self.in_stream {
                    return self.open_stream(namespace.as_str(), name.as_str(), attrs).map(Some);
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(FrameError::TooDeep(self.limits.max_depth));
                }
                if self.stack.is_empty() {
                    self.stanza_bytes = 0;
                }
                self.check_size()?;
                let mut el = Element::bare(name.as_str(), namespace.as_str());
                *el.attrs_mut() = attrs;
                self.stack.push(el);
                Ok(None)
            }
            Event::Text(_, text) => {
                if !self.stack.is_empty() {
                    self.check_size_with(text.len())?;
                    if let Some(top) = self.stack.last_mut() {
                        top.append_text_node(text);
                    }
                } else if !text.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
                    // RFC 6120 §11.7 allows whitespace between stanzas (keepalives), nothing else.
                    return Err(FrameError::NotWellFormed("text is not allowed between stanzas".into()));
                }
                Ok(None)
            }
            Event::EndElement(_) => match self.stack.pop() {
                None => {
                    self.in_stream = false;
                    Ok(Some(FramerEvent::StreamClose))
                }
                Some(el) => {
                    self.check_size()?;
                    match self.stack.last_mut() {
                        Some(parent) => {
                            parent.append_child(el);
                            Ok(None)
                        }
                        None => {
                            self.stanza_bytes = 0;
                            self.clean = true;
                            Ok(Some(FramerEvent::Element(el)))
                        }
                    }
                }
            },
        }
    }

    fn open_stream(&mut self, namespace: &str, name: &str, attrs: rxml::AttrMap) -> Result<FramerEvent, FrameError> {
        if name != "stream" || namespace != ns::STREAM {
            return Err(FrameError::InvalidNamespace(format!(
                "the root element must be <stream:stream xmlns:stream='{}'>",
                ns::STREAM
            )));
        }
        self.in_stream = true;
        self.stanza_bytes = 0;
        let mut map = BTreeMap::new();
        for ((attr_ns, attr_name), value) in attrs.iter() {
            if attr_ns.is_none() {
                map.insert(attr_name.to_string(), value.clone());
            } else if attr_ns.as_str() == rxml::XMLNS_XML {
                map.insert(format!("xml:{}", attr_name), value.clone());
            }
        }
        // The content namespace (RFC 6120 §4.8.2): reported as "xmlns", empty if undeclared.
        map.insert("xmlns".into(), default_namespace(&self.header_raw).unwrap_or_default());
        if self.header_raw.len() >= MAX_HEADER {
            // Possibly cut short: not replayable, so this stream is never parked.
            self.header_raw = Vec::new();
        }
        self.header_raw.shrink_to_fit();
        self.clean = true;
        Ok(FramerEvent::StreamOpen(map))
    }

    fn check_size(&self) -> Result<(), FrameError> {
        self.check_size_with(0)
    }

    fn check_size_with(&self, extra: usize) -> Result<(), FrameError> {
        if self.stanza_bytes + extra > self.limits.max_stanza_size {
            Err(FrameError::TooLarge(self.limits.max_stanza_size))
        } else {
            Ok(())
        }
    }

    /// The default namespace the peer declared on its stream header; stanzas without their
    /// own `xmlns` inherit it, so the session checks it is `jabber:client`.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// The value of a default namespace declaration (`xmlns='...'`) in the last start tag of
/// `raw` (the stream header, already checked well-formed by the parser).
fn default_namespace(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let tag = &text[text.rfind("<stream")?..];
    let mut rest = tag;
    while let Some(i) = rest.find("xmlns") {
        let after = rest[i + 5..].trim_start();
        if let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            let end = value[1..].find(quote)?;
            return Some(value[1..1 + end].to_string());
        }
        rest = &rest[i + 5..];
    }
    None
}

fn classify(err: rxml::Error) -> FrameError {
    let text = err.to_string();
    match err {
        rxml::Error::RestrictedXml(_) => FrameError::RestrictedXml(text),
        // "<!" not followed by "[CDATA[" or "--": a DOCTYPE or ENTITY declaration, the
        // constructs RFC 6120 §11.1 names, so restricted-xml rather than not-well-formed.
        rxml::Error::InvalidSyntax(msg) if msg.contains("cdata or comment section start") => {
            FrameError::RestrictedXml("DTDs and entity declarations are not allowed".into())
        }
        _ => FrameError::NotWellFormed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>";

    fn framer() -> Framer {
        Framer::new(Limits { max_stanza_size: 1024, max_depth: 8 })
    }

    fn drain(f: &mut Framer) -> Result<Vec<FramerEvent>, FrameError> {
        let mut out = Vec::new();
        while let Some(ev) = f.next_event()? {
            out.push(ev);
        }
        Ok(out)
    }

    #[test]
    fn header_then_stanza_byte_by_byte() {
        let mut f = framer();
        let input = format!("{HEADER}<message to='a@b'><body>hi &amp; bye</body></message> </stream:stream>");
        let mut events = Vec::new();
        for b in input.as_bytes() {
            f.feed(&[*b]);
            events.extend(drain(&mut f).unwrap());
        }
        assert_eq!(events.len(), 3);
        match &events[0] {
            FramerEvent::StreamOpen(attrs) => {
                assert_eq!(attrs.get("to").map(String::as_str), Some("localhost"));
                assert_eq!(attrs.get("xml:lang").map(String::as_str), Some("en"));
                assert_eq!(attrs.get("xmlns").map(String::as_str), Some("jabber:client"));
            }
            other => panic!("{other:?}"),
        }
        match &events[1] {
            FramerEvent::Element(el) => {
                assert!(el.is("message", "jabber:client"));
                assert_eq!(el.get_child("body", "jabber:client").unwrap().text(), "hi & bye");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(events[2], FramerEvent::StreamClose));
    }

    #[test]
    fn oversized_stanza_is_refused_before_it_completes() {
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        drain(&mut f).unwrap();
        f.feed(b"<message><body>");
        f.feed(&vec![b'a'; 2000]);
        assert_eq!(drain(&mut f).unwrap_err(), FrameError::TooLarge(1024));
    }

    #[test]
    fn endless_attribute_is_refused() {
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        drain(&mut f).unwrap();
        f.feed(b"<message to='");
        f.feed(&vec![b'a'; 2000]);
        assert!(drain(&mut f).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        f.feed("<a>".repeat(20).as_bytes());
        assert_eq!(drain(&mut f).unwrap_err(), FrameError::TooDeep(8));
    }

    #[test]
    fn dtd_and_entities_are_restricted() {
        let mut f = framer();
        f.feed(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><stream:stream>");
        let e = drain(&mut f).unwrap_err();
        assert!(matches!(e, FrameError::RestrictedXml(_)), "{e:?}");
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        f.feed(b"<message><body>&xxe;</body></message>");
        assert!(drain(&mut f).is_err());
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        f.feed(b"<!-- hi -->");
        assert!(matches!(drain(&mut f).unwrap_err(), FrameError::RestrictedXml(_)));
    }

    #[test]
    fn garbage_and_wrong_root() {
        let mut f = framer();
        f.feed(b"\x00\x01garbage");
        assert!(matches!(drain(&mut f).unwrap_err(), FrameError::NotWellFormed(_)));
        let mut f = framer();
        f.feed(b"<stream:stream xmlns:stream='urn:wrong'>");
        assert!(matches!(drain(&mut f).unwrap_err(), FrameError::InvalidNamespace(_)));
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        f.feed(b"<a></b>");
        assert!(matches!(drain(&mut f).unwrap_err(), FrameError::NotWellFormed(_)));
    }

    #[test]
    fn whitespace_keepalive_between_stanzas() {
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        f.feed(b"\n \n<presence/>\t");
        let ev = drain(&mut f).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn parked_framer_wakes_with_the_header_namespaces() {
        let mut f = framer();
        let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:x='urn:x' \
            xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        f.feed(header.as_bytes());
        f.feed(b"<presence/> \n");
        assert_eq!(drain(&mut f).unwrap().len(), 2);
        assert!(f.park() && f.is_parked());
        assert!(drain(&mut f).unwrap().is_empty(), "nothing fed, nothing parsed");
        f.feed(b"<message to='a@b'><body>1</body></message><x:y/></stream:stream>");
        let ev = drain(&mut f).unwrap();
        assert!(!f.is_parked());
        assert!(matches!(&ev[0], FramerEvent::Element(el) if el.is("message", "jabber:client")));
        assert!(matches!(&ev[1], FramerEvent::Element(el) if el.is("y", "urn:x")));
        assert!(matches!(ev[2], FramerEvent::StreamClose));
    }

    #[test]
    fn no_parking_inside_an_element_or_a_token() {
        let mut f = framer();
        assert!(!f.park(), "before the header");
        f.feed(HEADER.as_bytes());
        drain(&mut f).unwrap();
        f.feed(b"<message><bo");
        drain(&mut f).unwrap();
        assert!(!f.park(), "inside an element");
        f.feed(b"dy>x</body></message><mess");
        assert_eq!(drain(&mut f).unwrap().len(), 1);
        assert!(!f.park(), "inside a start tag");
        f.feed(b"age/>");
        assert_eq!(drain(&mut f).unwrap().len(), 1);
        assert!(f.park());
        f.feed(b"<message><body>");
        f.feed(&vec![b'a'; 2000]);
        assert_eq!(drain(&mut f).unwrap_err(), FrameError::TooLarge(1024), "limits apply after waking");
    }

    #[test]
    fn batch_of_stanzas_in_one_feed() {
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        f.feed("<presence/>".repeat(50).as_bytes());
        assert_eq!(drain(&mut f).unwrap().len(), 51);
        f.feed(b"<iq type='get' id='1'/>");
        assert_eq!(drain(&mut f).unwrap().len(), 1);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn reset_accepts_a_new_header() {
        let mut f = framer();
        f.feed(HEADER.as_bytes());
        drain(&mut f).unwrap();
        f.reset();
        f.feed(HEADER.as_bytes());
        assert!(matches!(drain(&mut f).unwrap()[0], FramerEvent::StreamOpen(_)));
    }
}
