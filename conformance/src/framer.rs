//! Sans-IO XML stream framer: bytes in, stream header / top-level elements out.
//!
//! An XMPP stream is one long XML document whose root (`<stream:stream>`) never closes until the
//! session ends, so a DOM parser cannot be used directly. The framer feeds bytes to
//! `rxml::Parser` (namespace-aware, no DTD) and assembles each depth-1 child into a
//! `minidom::Element`. It never touches a socket, so it is tested with plain byte slices.

use minidom::Element;
use rxml::{Event, Parse, Parser};

/// Bytes buffered without producing a complete top-level element before the framer gives up.
/// Conformance servers must not send stanzas this large to a test client.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// Element nesting below the stream root past which the framer refuses the stream.
const MAX_DEPTH: usize = 128;

/// Something the framer recognised in the byte stream.
#[derive(Debug)]
pub enum Frame {
    /// The opening `<stream:stream>` tag.
    Header,
    /// A complete child of the stream root: a stanza, `<stream:features>`, `<stream:error>`...
    Element(Element),
    /// The closing `</stream:stream>`.
    End,
}

/// Why the byte stream could not be framed.
#[derive(Debug, thiserror::Error)]
pub enum FramerError {
    #[error("server sent XML that is not well-formed: {0}")]
    Xml(String),
    #[error("element nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_PENDING} bytes without a complete element")]
    TooLarge,
}

/// Incremental framer; create a new one on every stream restart (after STARTTLS and SASL).
pub struct Framer {
    parser: Parser,
    buf: Vec<u8>,
    /// Open elements below the stream root, innermost last.
    stack: Vec<Element>,
    /// True once the stream header was seen.
    in_stream: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    pub fn new() -> Self {
        Self { parser: Parser::new(), buf: Vec::new(), stack: Vec::new(), in_stream: false }
    }

    /// Appends bytes read from the network.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), FramerError> {
        if self.buf.len() + data.len() > MAX_PENDING {
            return Err(FramerError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Returns the next complete frame, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramerError> {
        loop {
            let mut slice: &[u8] = &self.buf;
            let before = slice.len();
            let result = self.parser.parse(&mut slice, false);
            let consumed = before - slice.len();
            self.buf.drain(..consumed);
            let event = match result {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(Some(Frame::End)),
                Err(rxml::error::EndOrError::NeedMoreData) => return Ok(None),
                Err(rxml::error::EndOrError::Error(e)) => return Err(FramerError::Xml(e.to_string())),
            };
            if let Some(frame) = self.handle(event)? {
                return Ok(Some(frame));
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<Option<Frame>, FramerError> {
        match event {
            Event::XmlDeclaration(..) => Ok(None),
            Event::StartElement(_, (ns, name), attrs) => {
                if !self.in_stream {
                    self.in_stream = true;
                    return Ok(Some(Frame::Header));
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(FramerError::TooDeep);
                }
                let mut el = Element::builder(name.as_str(), ns.as_str()).build();
                *el.attrs_mut() = attrs;
                self.stack.push(el);
                Ok(None)
            }
            Event::EndElement(_) => match self.stack.pop() {
                None => Ok(Some(Frame::End)),
                Some(el) => match self.stack.last_mut() {
                    Some(parent) => {
                        parent.append_child(el);
                        Ok(None)
                    }
                    None => Ok(Some(Frame::Element(el))),
                },
            },
            Event::Text(_, text) => {
                // Whitespace between stanzas (keepalives) has no parent and is dropped.
                if let Some(top) = self.stack.last_mut() {
                    top.append_text_node(text);
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Framer) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = framer.next_frame().expect("valid xml") {
            let end = matches!(f, Frame::End);
            out.push(f);
            if end {
                break;
            }
        }
        out
    }

    #[test]
    fn frames_header_stanzas_and_end_across_chunks() {
        let doc = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' id='abc' version='1.0'> \
            <message to='a@b'><body>hi &amp; bye</body></message>\n<presence/></stream:stream>";
        let mut framer = Framer::new();
        let mut got = Vec::new();
        for chunk in doc.chunks(7) {
            framer.feed(chunk).unwrap();
            got.extend(frames(&mut framer));
        }
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(matches!(got[0], Frame::Header), "{got:?}");
        match &got[1] {
            Frame::Element(el) => {
                assert!(el.is("message", "jabber:client"));
                let body = el.get_child("body", "jabber:client").unwrap();
                assert_eq!(body.text(), "hi & bye");
            }
            other => panic!("expected message, got {other:?}"),
        }
        assert!(matches!(&got[2], Frame::Element(el) if el.name() == "presence"));
        assert!(matches!(got[3], Frame::End));
    }

    #[test]
    fn rejects_malformed_xml() {
        let mut framer = Framer::new();
        framer.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a></b>").unwrap();
        let mut result = Ok(None);
        for _ in 0..10 {
            result = framer.next_frame();
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
    }
}
