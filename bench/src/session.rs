//! An established session driven by two tasks: a reader that frames stanzas and hands them to
//! a workload's handler, and a writer that batches outgoing stanzas into few TLS records.
//!
//! The reader answers the server's `get`/`set` IQs itself (pings, roster pushes), routes IQ
//! replies to [`Session::iq`] callers and fires one-shot [`Session::expect`] waiters, so workloads
//! only see what they measure.

use crate::conn::{Error, Io, Result, Tls};
use crate::xml::{self, Frame, Framer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Called by the reader for every stanza that is not an IQ; may answer through the writer.
pub type Handler = Box<dyn FnMut(&[u8], &Writer) + Send>;

/// A handler that ignores everything (idle sessions, set-up phases).
pub fn ignore() -> Handler {
    Box::new(|_, _| {})
}

/// Queues bytes for the session's writer task.
///
/// The queue is unbounded: the generator bounds what it has in flight itself (windows, fixed
/// rates), and a bounded queue could not be fed from the synchronous handler.
#[derive(Clone)]
pub struct Writer(mpsc::UnboundedSender<Vec<u8>>);

impl Writer {
    /// Returns false once the connection is gone.
    pub fn send(&self, data: impl Into<Vec<u8>>) -> bool {
        self.0.send(data.into()).is_ok()
    }
}

type Predicate = Box<dyn Fn(&[u8]) -> bool + Send>;

/// When a matching stanza arrived, and the stanza.
pub type Arrival = (Instant, Vec<u8>);

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>,
    waiters: Mutex<Vec<(Predicate, oneshot::Sender<Arrival>)>>,
    has_waiters: AtomicBool,
    closed: AtomicBool,
    next_id: AtomicU64,
}

/// A bound, available session running on its own tasks.
pub struct Session {
    /// The full JID the server bound.
    pub jid: String,
    pub writer: Writer,
    shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl Session {
    /// Takes over an established connection (its framer may already hold the next bytes).
    pub fn start(io: Io<Tls>, jid: String, handler: Handler) -> Session {
        let (rd, wr) = tokio::io::split(io.stream);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer(tx);
        let shared = Arc::new(Shared::default());
        tokio::spawn(write_loop(wr, rx));
        let reader = tokio::spawn(read_loop(rd, io.framer, handler, writer.clone(), shared.clone()));
        Session { jid, writer, shared, reader: Mutex::new(Some(reader)) }
    }

    /// The bare JID (`user@domain`).
    pub fn bare(&self) -> &str {
        self.jid.split('/').next().unwrap_or(&self.jid)
    }

    pub fn send(&self, data: impl Into<Vec<u8>>) -> bool {
        self.writer.send(data)
    }

    /// True while the server has not closed the stream.
    pub fn alive(&self) -> bool {
        !self.shared.closed.load(Ordering::Relaxed)
    }

    /// Sends an IQ built by `build(id)` and waits for its reply.
    pub async fn iq(&self, build: impl FnOnce(&str) -> String, timeout: Duration) -> Result<Vec<u8>> {
        let id = format!("q{}", self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id.clone(), tx);
        self.send(build(&id));
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Error(format!("{}: connection closed awaiting IQ {id}", self.jid))),
            Err(_) => {
                lock(&self.shared.pending).remove(&id);
                Err(Error(format!("{}: no reply to IQ {id} within {timeout:?}", self.jid)))
            }
        }
    }

    /// Arms a one-shot waiter: resolves with the arrival time and a copy of the first stanza
    /// matching `pred`. Arm it before sending whatever provokes the stanza.
    pub fn expect(&self, pred: impl Fn(&[u8]) -> bool + Send + 'static) -> oneshot::Receiver<Arrival> {
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.waiters).push((Box::new(pred), tx));
        self.shared.has_waiters.store(true, Ordering::Release);
        rx
    }

    /// Ends the stream and waits up to `timeout` for the server to close its side.
    pub async fn close(&self, timeout: Duration) {
        self.send(&b"</stream:stream>"[..]);
        let Some(reader) = lock(&self.reader).take() else {
            return;
        };
        let abort = reader.abort_handle();
        if tokio::time::timeout(timeout, reader).await.is_err() {
            abort.abort();
        }
    }
}

impl Drop for Session {
    /// A session dropped without [`Session::close`] stops reading, which drops the last writer
    /// handle, so the writer task shuts the connection down.
    fn drop(&mut self) {
        if let Some(reader) = lock(&self.reader).take() {
            reader.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn write_loop(mut wr: WriteHalf<Tls>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_loop(
    mut rd: ReadHalf<Tls>,
    mut framer: Framer,
    mut handler: Handler,
    writer: Writer,
    shared: Arc<Shared>,
) {
    'outer: loop {
        loop {
            match framer.next() {
                Ok(Some(Frame::Stanza(s))) => dispatch(s, &mut handler, &writer, &shared),
                Ok(Some(Frame::Open(_))) => {}
                Ok(Some(Frame::Close)) | Err(_) => break 'outer,
                Ok(None) => break,
            }
        }
        let Ok(buf) = framer.read_buffer() else { break };
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    shared.closed.store(true, Ordering::Relaxed);
    lock(&shared.pending).clear();
}

fn dispatch(s: &[u8], handler: &mut Handler, writer: &Writer, shared: &Shared) {
    if xml::name(s) == b"iq" {
        let id = xml::attr(s, "id").unwrap_or_default();
        match xml::attr(s, "type").as_deref() {
            Some("get" | "set") => {
                let to = xml::attr(s, "from").map(|f| format!(" to='{}'", xml::escape(&f))).unwrap_or_default();
                let id = xml::escape(&id);
                let ping_or_set = xml::contains(s, b"urn:xmpp:ping") || xml::attr(s, "type").as_deref() == Some("set");
                writer.send(if ping_or_set {
                    format!("<iq type='result' id='{id}'{to}/>")
                } else {
                    format!(
                        "<iq type='error' id='{id}'{to}><error type='cancel'><service-unavailable \
                         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
                    )
                });
            }
            _ => {
                if let Some(tx) = lock(&shared.pending).remove(id.as_ref()) {
                    let _ = tx.send(s.to_vec());
                }
            }
        }
        return;
    }
    if shared.has_waiters.load(Ordering::Acquire) {
        let now = Instant::now();
        let mut waiters = lock(&shared.waiters);
        let mut i = 0;
        while i < waiters.len() {
            if (waiters[i].0)(s) {
                let (_, tx) = waiters.swap_remove(i);
                let _ = tx.send((now, s.to_vec()));
            } else {
                i += 1;
            }
        }
        shared.has_waiters.store(!waiters.is_empty(), Ordering::Release);
    }
    handler(s, writer);
}
