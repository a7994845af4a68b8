//! An established client session: a reader task queues what the server sends, the runner
//! writes stanzas and takes them off the queue with a timeout.

use std::time::Duration;

use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::stream::{self, describe_stream_error, BoxIo, XmlStream, NS_STREAMS};
use super::{authenticate, bind, secure_stream, ClientError, ServerOpts};
use crate::framer::Frame;

/// What the reader task hands to the scenario runner.
#[derive(Debug)]
pub enum Incoming {
    Stanza(Element),
    /// The stream ended; the text says how (stream error, close, I/O error).
    Closed(String),
}

/// An authenticated, bound client session.
pub struct Session {
    pub jid: String,
    /// Stream features offered after authentication (for tracing).
    pub features: Element,
    writer: WriteHalf<BoxIo>,
    rx: mpsc::Receiver<Incoming>,
    reader: JoinHandle<()>,
}

impl Session {
    /// Connects, authenticates and binds `resource` (or a server-chosen one).
    pub async fn connect(
        opts: &ServerOpts,
        username: &str,
        password: &str,
        resource: Option<&str>,
    ) -> Result<Session, ClientError> {
        let (mut xs, features) = secure_stream(opts).await?;
        authenticate(&mut xs, &features, opts, username, password).await?;
        let (jid, features) = bind(&mut xs, &opts.domain, resource).await?;
        let XmlStream { io, framer, .. } = xs;
        let (mut read, writer) = tokio::io::split(io);
        let (tx, rx) = mpsc::channel(1024);
        let reader = tokio::spawn(async move {
            let mut framer = framer;
            let mut buf = vec![0u8; 16384];
            loop {
                loop {
                    let frame = match framer.next_frame() {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(Incoming::Closed(e.to_string())).await;
                            return;
                        }
                    };
                    let item = match frame {
                        Frame::Element(el) if el.is("error", NS_STREAMS) => {
                            Incoming::Closed(format!("stream error: {}", describe_stream_error(&el)))
                        }
                        Frame::Element(el) => Incoming::Stanza(el),
                        Frame::End => Incoming::Closed("server closed the stream".into()),
                        Frame::Header => Incoming::Closed("unexpected stream header".into()),
                    };
                    let last = matches!(item, Incoming::Closed(_));
                    if tx.send(item).await.is_err() || last {
                        return;
                    }
                }
                let closed = match read.read(&mut buf).await {
                    Ok(0) => "connection closed by server".to_string(),
                    Ok(n) => match framer.feed(&buf[..n]) {
                        Ok(()) => continue,
                        Err(e) => e.to_string(),
                    },
                    Err(e) => format!("read error: {e}"),
                };
                let _ = tx.send(Incoming::Closed(closed)).await;
                return;
            }
        });
        Ok(Session { jid, features, writer, rx, reader })
    }

    pub async fn send(&mut self, el: &Element) -> Result<(), ClientError> {
        let text = stream::serialize(el)?;
        self.writer.write_all(text.as_bytes()).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// Next thing that arrived, or `None` if nothing did within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<Incoming> {
        match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(item)) => Some(item),
            Ok(None) => Some(Incoming::Closed("reader stopped".into())),
            Err(_) => None,
        }
    }

    /// Closes the stream and waits (up to `wait`) for the server to close its side, so that the
    /// server has processed the disconnect (unavailable presence, offline state) before the
    /// scenario goes on. Stanzas still arriving are dropped.
    pub async fn close(mut self, wait: Duration) -> Vec<Element> {
        let _ = self.writer.write_all(b"</stream:stream>").await;
        let _ = self.writer.flush().await;
        let mut leftover = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(item)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            match item {
                Incoming::Stanza(el) => leftover.push(el),
                Incoming::Closed(_) => break,
            }
        }
        let _ = self.writer.shutdown().await;
        self.reader.abort();
        leftover
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
