//! A byte-level XMPP stream framer and a few stanza helpers.
//!
//! The load generator only needs to cut the server's stream into the stream header and top-level
//! stanzas, then peek at a name, an attribute or a child's text. A full XML parser would cost the
//! generator more CPU per stanza than some servers spend routing it, so this module scans bytes:
//! it finds `<`, finds the matching `>` outside quoted attribute values and tracks the depth.
//! It trusts the server to send well-formed XML (the servers under test do); it never panics on
//! malformed input, it returns an error or frames garbage that the caller ignores.

use memchr::{memchr, memmem};
use std::borrow::Cow;

/// The framer refuses to buffer more than this without finding a complete stanza.
const MAX_BUFFER: usize = 4 << 20;

/// One unit cut from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The `<stream:stream ...>` header (start tag only).
    Open(&'a [u8]),
    /// A complete top-level element, start tag to end tag.
    Stanza(&'a [u8]),
    /// `</stream:stream>`.
    Close,
}

/// Why the stream cannot be framed.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// An end tag or self-closed element before the stream header.
    NotInStream,
    /// A `<!` construct other than a comment or CDATA (DTDs are not XMPP).
    Unsupported,
    /// More than [`MAX_BUFFER`] bytes without a complete stanza.
    TooLarge,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::NotInStream => write!(f, "element outside the stream"),
            FrameError::Unsupported => write!(f, "unsupported XML construct"),
            FrameError::TooLarge => write!(f, "stanza larger than {MAX_BUFFER} bytes"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Incremental framer: feed bytes with [`Framer::read_buffer`], take frames with [`Framer::next`].
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// First byte not yet handed out as (part of) a frame.
    start: usize,
    /// Where scanning resumes; an incomplete tag is rescanned from its `<`.
    scan: usize,
    /// 0 outside the stream, 1 inside the stream, 2+ inside a stanza.
    depth: u32,
    /// Offset of the current top-level stanza's `<`.
    stanza_start: usize,
}

impl Framer {
    /// Forgets all state, as after STARTTLS or SASL success (a new stream follows).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.scan = 0;
        self.depth = 0;
        self.stanza_start = 0;
    }

    /// Drops consumed bytes and returns the buffer for a `read_buf` call to append to.
    pub fn read_buffer(&mut self) -> Result<&mut Vec<u8>, FrameError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.stanza_start = self.stanza_start.saturating_sub(self.start);
            self.start = 0;
        }
        if self.buf.len() > MAX_BUFFER {
            return Err(FrameError::TooLarge);
        }
        self.buf.reserve(16 * 1024);
        Ok(&mut self.buf)
    }

    /// Appends bytes (tests feed chunks this way).
    #[cfg(test)]
    pub fn feed(&mut self, data: &[u8]) -> Result<(), FrameError> {
        self.read_buffer()?.extend_from_slice(data);
        Ok(())
    }

    /// The next complete frame, or `None` when more bytes are needed.
    pub fn next(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        loop {
            let Some(off) = memchr(b'<', &self.buf[self.scan..]) else {
                self.scan = self.buf.len();
                if self.depth <= 1 {
                    self.start = self.scan; // whitespace keepalives between stanzas
                }
                return Ok(None);
            };
            let lt = self.scan + off;
            let rest = &self.buf[lt..];
            if rest.len() < 2 {
                self.scan = lt;
                return Ok(None);
            }
            let skip_to = match rest[1] {
                b'?' => find(rest, b"?>").map(|e| e + 2),
                b'!' if rest.starts_with(b"<!--") => find(rest, b"-->").map(|e| e + 3),
                b'!' if rest.starts_with(b"<![CDATA[") => find(rest, b"]]>").map(|e| e + 3),
                b'!' if rest.len() < 9 && (b"<![CDATA[".starts_with(rest) || b"<!--".starts_with(rest)) => None,
                b'!' => return Err(FrameError::Unsupported),
                _ => {
                    let Some(gt) = tag_end(rest) else {
                        self.scan = lt;
                        return Ok(None);
                    };
                    let end = lt + gt + 1;
                    self.scan = end;
                    if let Some(cut) = self.on_tag(lt, end)? {
                        return Ok(Some(match cut {
                            Cut::Open(a, b) => Frame::Open(&self.buf[a..b]),
                            Cut::Stanza(a, b) => Frame::Stanza(&self.buf[a..b]),
                            Cut::Close => Frame::Close,
                        }));
                    }
                    continue;
                }
            };
            match skip_to {
                Some(len) => {
                    self.scan = lt + len;
                    if self.depth <= 1 {
                        self.start = self.scan;
                    }
                }
                None => {
                    self.scan = lt;
                    return Ok(None);
                }
            }
        }
    }

    /// Updates the depth for the tag at `lt..end`; returns a frame's bounds when one is complete.
    fn on_tag(&mut self, lt: usize, end: usize) -> Result<Option<Cut>, FrameError> {
        let closing = self.buf[lt + 1] == b'/';
        let empty = !closing && self.buf[end - 2] == b'/';
        if closing || empty {
            if self.depth == 0 {
                return Err(FrameError::NotInStream);
            }
            if closing {
                self.depth -= 1;
            }
            match self.depth {
                0 => {
                    self.start = end;
                    Ok(Some(Cut::Close))
                }
                1 => {
                    let from = if empty { lt } else { self.stanza_start };
                    self.start = end;
                    Ok(Some(Cut::Stanza(from, end)))
                }
                _ => Ok(None),
            }
        } else {
            self.depth += 1;
            match self.depth {
                1 => {
                    self.start = end;
                    Ok(Some(Cut::Open(lt, end)))
                }
                2 => {
                    self.stanza_start = lt;
                    Ok(None)
                }
                _ => Ok(None),
            }
        }
    }
}

/// A frame's bounds in the buffer (owning no borrow, so `next` can loop after computing it).
enum Cut {
    Open(usize, usize),
    Stanza(usize, usize),
    Close,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memmem::find(hay, needle)
}

/// Offset of the `>` closing the tag that starts at `tag[0] == b'<'`, skipping quoted values.
fn tag_end(tag: &[u8]) -> Option<usize> {
    let mut quote = 0u8;
    for (i, &b) in tag.iter().enumerate().skip(1) {
        match (quote, b) {
            (0, b'"') | (0, b'\'') => quote = b,
            (0, b'>') => return Some(i),
            (q, b) if q == b => quote = 0,
            _ => {}
        }
    }
    None
}

/// True if `hay` contains `needle` anywhere.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memmem::find(hay, needle).is_some()
}

/// The element name of a stanza (`message`, `iq`, `stream:features`...).
pub fn name(stanza: &[u8]) -> &[u8] {
    let body = stanza.get(1..).unwrap_or_default();
    let end = body.iter().position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>')).unwrap_or(body.len());
    &body[..end]
}

/// An attribute of the stanza's start tag, unescaped.
pub fn attr<'a>(stanza: &'a [u8], key: &str) -> Option<Cow<'a, str>> {
    let tag = &stanza[..tag_end(stanza).unwrap_or(stanza.len())];
    let mut i = 1 + name(stanza).len();
    loop {
        while i < tag.len() && tag[i].is_ascii_whitespace() {
            i += 1;
        }
        let eq = i + memchr(b'=', tag.get(i..)?)?;
        let k = tag[i..eq].trim_ascii();
        let q = *tag.get(eq + 1..)?.iter().find(|b| !b.is_ascii_whitespace())?;
        let vstart = eq + 1 + tag[eq + 1..].iter().position(|&b| b == q)? + 1;
        let vend = vstart + memchr(q, tag.get(vstart..)?)?;
        if k == key.as_bytes() {
            return Some(unescape(&tag[vstart..vend]));
        }
        i = vend + 1;
    }
}

/// The text of the first child element named `child` (no namespace prefix), unescaped.
/// Returns `Some("")` for an empty element.
pub fn child_text<'a>(stanza: &'a [u8], child: &str) -> Option<Cow<'a, str>> {
    let mut from = 1;
    loop {
        let lt = from + memchr(b'<', stanza.get(from..)?)?;
        let rest = &stanza[lt + 1..];
        from = lt + 1;
        if !rest.starts_with(child.as_bytes()) {
            continue;
        }
        match rest.get(child.len()) {
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/') => {}
            _ => continue,
        }
        let gt = lt + tag_end(&stanza[lt..])?;
        if stanza[gt - 1] == b'/' {
            return Some(Cow::Borrowed(""));
        }
        let end = gt + 1 + memchr(b'<', &stanza[gt + 1..])?;
        return Some(unescape(&stanza[gt + 1..end]));
    }
}

/// Resolves the five predefined entities and numeric character references.
pub fn unescape(raw: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(raw);
    if !text.contains('&') {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Escapes text for use in character data or a quoted attribute value.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Vec<String> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c).expect("feed");
            while let Some(fr) = f.next().expect("frame") {
                out.push(match fr {
                    Frame::Open(b) => format!("open:{}", String::from_utf8_lossy(b)),
                    Frame::Stanza(b) => format!("stanza:{}", String::from_utf8_lossy(b)),
                    Frame::Close => "close".into(),
                });
            }
        }
        out
    }

    #[test]
    fn frames_header_stanzas_and_close() {
        let got = frames(&[
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'>\n <presence/>",
            b"<message to='a'><body>x &lt; y</body></message> </stream:stream>",
        ]);
        assert_eq!(
            got,
            vec![
                "open:<stream:stream xmlns='jabber:client'>",
                "stanza:<presence/>",
                "stanza:<message to='a'><body>x &lt; y</body></message>",
                "close",
            ]
        );
    }

    #[test]
    fn byte_by_byte_gives_the_same_frames() {
        let doc: &[u8] =
            b"<stream:stream a=\"x>y\"><iq id='1'><q a='>'/><!-- c > --><![CDATA[<no>]]></iq></stream:stream>";
        let chunks: Vec<&[u8]> = doc.chunks(1).collect();
        assert_eq!(frames(&chunks), frames(&[doc]));
        assert_eq!(frames(&[doc])[1], "stanza:<iq id='1'><q a='>'/><!-- c > --><![CDATA[<no>]]></iq>");
    }

    #[test]
    fn rejects_end_tag_outside_stream_and_dtd() {
        let mut f = Framer::default();
        f.feed(b"</iq>").expect("feed");
        assert_eq!(f.next(), Err(FrameError::NotInStream));
        let mut f = Framer::default();
        f.feed(b"<!DOCTYPE x>").expect("feed");
        assert_eq!(f.next(), Err(FrameError::Unsupported));
    }

    #[test]
    fn reset_starts_a_new_stream() {
        let mut f = Framer::default();
        f.feed(b"<stream:stream><proceed/>").expect("feed");
        assert!(matches!(f.next(), Ok(Some(Frame::Open(_)))));
        assert!(matches!(f.next(), Ok(Some(Frame::Stanza(_)))));
        f.reset();
        f.feed(b"<stream:stream>").expect("feed");
        assert!(matches!(f.next(), Ok(Some(Frame::Open(_)))));
    }

    #[test]
    fn helpers_read_names_attributes_and_text() {
        let s: &[u8] =
            b"<message from=\"r@c/n&apos;1\" type='groupchat'><x/><body>a&amp;b&#x41;</body><subject/></message>";
        assert_eq!(name(s), b"message");
        assert_eq!(attr(s, "from").as_deref(), Some("r@c/n'1"));
        assert_eq!(attr(s, "type").as_deref(), Some("groupchat"));
        assert_eq!(attr(s, "to"), None);
        assert_eq!(child_text(s, "body").as_deref(), Some("a&bA"));
        assert_eq!(child_text(s, "subject").as_deref(), Some(""));
        assert_eq!(child_text(s, "bod"), None);
        assert_eq!(name(b"<presence/>"), b"presence");
        assert_eq!(attr(b"<presence/>", "type"), None);
    }

    #[test]
    fn escape_round_trips() {
        let t = "a<b>&'\"";
        assert_eq!(unescape(escape(t).as_bytes()), t);
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }
}
