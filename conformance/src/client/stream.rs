//! An XML stream over any byte transport (TCP, TLS), used during negotiation.

use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ClientError;
use crate::framer::{Frame, Framer};
use crate::template::SCANSION_NS;

pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";

/// A byte transport: plain TCP before STARTTLS, TLS after.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

pub type BoxIo = Box<dyn Io>;

/// Serialises a stanza for the wire, without the scenario-only `scansion:` attributes.
pub fn serialize(el: &Element) -> Result<String, ClientError> {
    let mut el = el.clone();
    strip_scansion(&mut el);
    let mut out = Vec::new();
    el.write_to(&mut out).map_err(|e| ClientError::Protocol(format!("cannot serialise stanza: {e}")))?;
    String::from_utf8(out).map_err(|_| ClientError::Protocol("stanza is not UTF-8".into()))
}

fn strip_scansion(el: &mut Element) {
    el.attrs_mut().retain(|ns, _, _| ns.as_str() != SCANSION_NS);
    for child in el.children_mut() {
        strip_scansion(child);
    }
}

/// Describes a `<stream:error/>` for reports: its condition and text.
pub fn describe_stream_error(el: &Element) -> String {
    let condition = el
        .children()
        .find(|c| c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| "undefined-condition".into());
    let text = el.children().find(|c| c.name() == "text").map(|t| t.text());
    match text {
        Some(t) if !t.is_empty() => format!("{condition} ({t})"),
        _ => condition,
    }
}

/// Reads frames from and writes text to one transport.
pub struct XmlStream {
    pub io: BoxIo,
    pub framer: Framer,
    timeout: Duration,
}

impl XmlStream {
    pub fn new(io: BoxIo, timeout: Duration) -> Self {
        Self { io, framer: Framer::new(), timeout }
    }

    pub async fn write(&mut self, text: &str) -> Result<(), ClientError> {
        self.io.write_all(text.as_bytes()).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Next frame from the server, within the negotiation timeout.
    pub async fn next_frame(&mut self, waiting_for: &str) -> Result<Frame, ClientError> {
        match tokio::time::timeout(self.timeout, self.read_frame()).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(waiting_for.to_string())),
        }
    }

    async fn read_frame(&mut self) -> Result<Frame, ClientError> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(frame) = self.framer.next_frame()? {
                return Ok(frame);
            }
            let n = self.io.read(&mut buf).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.framer.feed(&buf[..n])?;
        }
    }

    /// Next top-level element; a stream error or the end of the stream is an error.
    pub async fn next_element(&mut self, waiting_for: &str) -> Result<Element, ClientError> {
        match self.next_frame(waiting_for).await? {
            Frame::Element(el) if el.is("error", NS_STREAMS) => {
                Err(ClientError::StreamError(describe_stream_error(&el)))
            }
            Frame::Element(el) => Ok(el),
            Frame::Header => {
                Err(ClientError::Protocol(format!("second stream header while waiting for {waiting_for}")))
            }
            Frame::End => Err(ClientError::Closed),
        }
    }

    /// Opens (or restarts) the stream and returns `<stream:features/>`.
    pub async fn open(&mut self, domain: &str) -> Result<Element, ClientError> {
        self.framer = Framer::new();
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='{NS_STREAMS}' to='{}' version='1.0' xml:lang='en'>",
            domain.replace(['\'', '<', '&'], "")
        );
        self.write(&header).await?;
        match self.next_frame("stream header").await? {
            Frame::Header => {}
            Frame::Element(el) if el.is("error", NS_STREAMS) => {
                return Err(ClientError::StreamError(describe_stream_error(&el)))
            }
            _ => return Err(ClientError::Protocol("expected a stream header".into())),
        }
        let features = self.next_element("stream features").await?;
        if !features.is("features", NS_STREAMS) {
            return Err(ClientError::Protocol(format!("expected <stream:features/>, got <{}/>", features.name())));
        }
        Ok(features)
    }
}
