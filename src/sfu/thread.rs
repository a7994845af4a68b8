//! The SFU's IO shell: one UDP socket and one OS thread running [`Sfu`].
//!
//! The thread blocks on the socket with a read timeout no later than str0m's next timer
//! (and at most [`MAX_WAIT`], so commands are picked up promptly), then reads what else
//! the socket holds without blocking and hands it to the core as one batch. Commands arrive on a
//! bounded std channel; events leave on a bounded tokio channel with `try_send`, so
//! neither side ever waits for the other. What the core sends leaves through an [`Outbox`]:
//! a batch's datagrams in a few `sendmmsg` calls on Linux, never blocking.
//!
//! With ICE-TCP on (`tcp_listen`), the TCP listener and its connections are non-blocking
//! and polled once per turn of the loop ([`TcpMedia`]): TCP media waits at most
//! [`MAX_WAIT`] more than UDP, acceptable for a fallback path.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use str0m::net::Protocol;

use super::tcp::TcpMedia;
use super::udp::Outbox;
use super::{Command, Event, Sfu, SfuConfig};

const MAX_WAIT: Duration = Duration::from_millis(5);
/// The shortest wait on the socket, also used while datagrams wait for room to be sent.
const MIN_WAIT: Duration = Duration::from_micros(100);
/// Most datagrams read into one batch. A batch's forwarded packets leave together at its
/// end, so this bounds the delay batching adds (at 10 publishers x 50 subscribers, 16
/// datagrams are ~500 forwarded packets, ~3 ms of work); it is also how often commands
/// and timers are looked at on a busy socket.
const READ_BATCH: usize = 16;
/// Commands queued for the SFU thread before the focus is told it is overloaded.
pub const COMMAND_QUEUE: usize = 4096;

/// The focus's side of the SFU.
pub struct SfuHandle {
    pub commands: SyncSender<Command>,
    /// The ICE host candidate clients send media to.
    pub candidate: SocketAddr,
    /// The ICE-TCP passive candidate, when TCP is on.
    pub tcp_candidate: Option<SocketAddr>,
    /// The DTLS certificate fingerprint of every participant's transport.
    pub fingerprint: (String, Vec<u8>),
}

/// Bind the socket and start the SFU thread. It stops when every `SfuHandle` clone of the
/// command sender is dropped.
pub fn spawn(config: &SfuConfig, events: tokio::sync::mpsc::Sender<Event>) -> std::io::Result<SfuHandle> {
    let socket = UdpSocket::bind(config.listen)?;
    let bound = socket.local_addr()?;
    let candidate = match config.public {
        Some(p) if p.port() == 0 => SocketAddr::new(p.ip(), bound.port()),
        Some(p) => p,
        None if bound.ip().is_unspecified() => SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port()),
        None => bound,
    };
    let mut sfu = Sfu::new(candidate, Instant::now())?;
    sfu.set_last_n(config.last_n);
    let mut tcp = None;
    if let Some(listen) = config.tcp_listen {
        let listener = TcpListener::bind(listen)?;
        let bound = listener.local_addr()?;
        // Announced like the UDP candidate: the public IP when set, else the bound one.
        let ip = match config.public {
            Some(p) => p.ip(),
            None if bound.ip().is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            None => bound.ip(),
        };
        sfu.set_tcp(SocketAddr::new(ip, bound.port()));
        tracing::info!(%bound, "SFU listening for ICE-TCP media");
        tcp = Some(TcpMedia::new(listener)?);
    }
    let tcp_candidate = sfu.local_tcp_addr();
    let fingerprint = sfu.fingerprint();
    let (tx, rx) = sync_channel(COMMAND_QUEUE);
    std::thread::Builder::new().name("amphi-sfu".into()).spawn(move || run(socket, tcp, sfu, rx, events))?;
    tracing::info!(%bound, %candidate, "SFU listening for media");
    Ok(SfuHandle { commands: tx, candidate, tcp_candidate, fingerprint })
}

fn run(
    socket: UdpSocket,
    mut tcp: Option<TcpMedia>,
    mut sfu: Sfu,
    commands: Receiver<Command>,
    events: tokio::sync::mpsc::Sender<Event>,
) {
    let mut buf = vec![0u8; 2000];
    let mut outbox = Outbox::default();
    loop {
        let now = Instant::now();
        loop {
            match commands.try_recv() {
                Ok(cmd) => sfu.command(now, cmd),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        sfu.timeout(Instant::now());
        if let Some(tcp) = tcp.as_mut() {
            tcp.poll(Instant::now(), |from, packet| sfu.receive(Instant::now(), Protocol::Tcp, from, packet));
        }
        flush(&socket, &mut outbox, tcp.as_mut(), &mut sfu, &events);
        // Datagrams the kernel had no room for are retried after the shortest wait.
        let longest = if outbox.pending() > 0 { MIN_WAIT } else { MAX_WAIT };
        let wait = sfu
            .next_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(MAX_WAIT)
            .clamp(MIN_WAIT, longest);
        if socket.set_nonblocking(false).is_err() || socket.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        // Wait for a datagram, then take what else the socket holds without waiting, as
        // one batch: each subscriber's `Rtc` runs once for all it was forwarded. Back to
        // commands and timers at least every READ_BATCH datagrams, so a busy socket never
        // starves str0m's timers.
        sfu.begin_batch();
        let mut read = 0;
        while read < READ_BATCH {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    read += 1;
                    sfu.datagram(Instant::now(), from, &buf[..n]);
                    if read == 1 && socket.set_nonblocking(true).is_err() {
                        return;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    break
                }
                // ICMP port unreachable from a departed peer shows up here on Linux.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => read += 1,
                Err(e) => {
                    tracing::warn!("SFU socket: {e}");
                    break;
                }
            }
        }
        sfu.end_batch(Instant::now());
        flush(&socket, &mut outbox, tcp.as_mut(), &mut sfu, &events);
    }
}

/// Send what the core has to send (UDP datagrams together, see [`Outbox`]) and pass its
/// events on.
fn flush(
    socket: &UdpSocket,
    outbox: &mut Outbox,
    mut tcp: Option<&mut TcpMedia>,
    sfu: &mut Sfu,
    events: &tokio::sync::mpsc::Sender<Event>,
) {
    while let Some(t) = sfu.poll_transmit() {
        if t.proto == Protocol::Udp {
            outbox.push(t.destination, t.contents);
        } else if let Some(tcp) = tcp.as_deref_mut() {
            tcp.send(t.destination, &t.contents);
        }
    }
    let dropped = outbox.dropped;
    outbox.send(socket);
    if outbox.dropped > dropped {
        tracing::debug!(dropped = outbox.dropped - dropped, total = outbox.dropped, "SFU datagrams dropped");
    }
    while let Some(e) = sfu.poll_event() {
        if events.try_send(e).is_err() {
            tracing::warn!("the focus is not keeping up with SFU events; one was dropped");
        }
    }
}
