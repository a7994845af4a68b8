//! ICE-TCP (RFC 6544): media over TCP for clients whose network lets no UDP through. The
//! SFU announces one `tcptype passive` host candidate; clients connect to it and send
//! STUN, DTLS, RTP and RTCP as RFC 4571 frames (a 16-bit big-endian length, then the
//! packet). str0m's ICE agent pairs TCP candidates like UDP ones: the SFU core only needs
//! each packet with its protocol, and tells where to send with `Protocol::Tcp`.
//!
//! [`Framer`] is the sans-IO decoder. [`TcpMedia`] is the IO side, run on the SFU thread
//! with non-blocking sockets polled between UDP reads: a fallback path, so simplicity
//! wins over the last millisecond of latency.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Largest packet accepted in a frame. Media packets stay under the path MTU and str0m's
/// DTLS records under 1200 bytes; anything much larger is not ours.
pub const MAX_PACKET: usize = 4096;
/// Open TCP media connections at most; more are refused until some close.
pub const MAX_CONNECTIONS: usize = 1024;
/// Bytes queued towards one connection at most: beyond, packets are dropped (late media
/// is useless; the client's congestion control sees the loss).
const MAX_QUEUED: usize = 512 * 1024;
/// A connection that has sent nothing for this long is closed (clients send consent
/// checks every few seconds).
const IDLE: Duration = Duration::from_secs(30);

/// The frame was larger than [`MAX_PACKET`]: the stream cannot be trusted any further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTooLarge(pub usize);

/// RFC 4571 de-framing of one TCP stream.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete packet, `None` when more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, FrameTooLarge> {
        let Some(head) = self.buf.get(..2) else { return Ok(None) };
        let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
        if len > MAX_PACKET {
            return Err(FrameTooLarge(len));
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let packet = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Ok(Some(packet))
    }
}

/// `packet` as an RFC 4571 frame appended to `out`; `false` (nothing appended) when it
/// does not fit the 16-bit length.
pub fn frame(packet: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(len) = u16::try_from(packet.len()) else { return false };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    true
}

struct Connection {
    stream: TcpStream,
    framer: Framer,
    /// Framed bytes not yet taken by the socket.
    queued: Vec<u8>,
    last_read: Instant,
    /// Some packet of it was accepted by a participant: it is a client, not a stranger.
    known: bool,
}

/// The SFU's TCP listener and its connections, by the client's address.
pub struct TcpMedia {
    listener: TcpListener,
    connections: HashMap<SocketAddr, Connection>,
}

impl TcpMedia {
    pub fn new(listener: TcpListener) -> std::io::Result<TcpMedia> {
        listener.set_nonblocking(true)?;
        Ok(TcpMedia { listener, connections: HashMap::new() })
    }

    /// Accept new connections, read what every connection has, and hand each packet to
    /// `deliver` (which says whether a participant accepted it). A connection whose first
    /// packet nobody accepts, that breaks framing, or that stays silent is closed.
    pub fn poll(&mut self, now: Instant, mut deliver: impl FnMut(SocketAddr, &[u8]) -> bool) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.connections.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "too many TCP media connections; refusing one");
                        continue;
                    }
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let c = Connection {
                        stream,
                        framer: Framer::default(),
                        queued: Vec::new(),
                        last_read: now,
                        known: false,
                    };
                    self.connections.insert(peer, c);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("TCP media accept: {e}");
                    break;
                }
            }
        }
        let mut closed = Vec::new();
        let mut buf = [0u8; 8192];
        for (peer, c) in self.connections.iter_mut() {
            let alive = loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => break false,
                    Ok(n) => {
                        c.last_read = now;
                        c.framer.push(&buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break false,
                }
            };
            let mut ok = alive && now.saturating_duration_since(c.last_read) < IDLE;
            while ok {
                match c.framer.next_packet() {
                    Ok(Some(packet)) => {
                        let accepted = deliver(*peer, &packet);
                        c.known |= accepted;
                        ok = c.known;
                    }
                    Ok(None) => break,
                    Err(FrameTooLarge(n)) => {
                        tracing::debug!(%peer, n, "TCP media frame too large; closing");
                        ok = false;
                    }
                }
            }
            ok = ok && flush(c);
            if !ok {
                closed.push(*peer);
            }
        }
        for peer in closed {
            self.connections.remove(&peer);
        }
    }

    /// Queue one packet towards `peer` and write what the socket takes now.
    pub fn send(&mut self, peer: SocketAddr, packet: &[u8]) {
        let Some(c) = self.connections.get_mut(&peer) else { return };
        if c.queued.len() + packet.len() + 2 > MAX_QUEUED {
            return;
        }
        if frame(packet, &mut c.queued) && !flush(c) {
            self.connections.remove(&peer);
        }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }
}

/// Write queued bytes until the socket would block; `false` when the connection failed.
fn flush(c: &mut Connection) -> bool {
    while !c.queued.is_empty() {
        match c.stream.write(&c.queued) {
            Ok(0) => return false,
            Ok(n) => {
                c.queued.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_come_out_whole_and_in_order() {
        let mut wire = Vec::new();
        assert!(frame(b"stun", &mut wire));
        assert!(frame(&[7u8; 1200], &mut wire));
        assert!(frame(b"", &mut wire));
        for cut in 0..wire.len() {
            let mut f = Framer::default();
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                f.push(part);
                while let Some(p) = f.next_packet().unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(got, vec![b"stun".to_vec(), vec![7u8; 1200], Vec::new()], "cut at {cut}");
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_and_a_partial_one_waits() {
        let mut f = Framer::default();
        f.push(&[0x00]);
        assert_eq!(f.next_packet(), Ok(None), "half a length");
        f.push(&[0x05, 1, 2]);
        assert_eq!(f.next_packet(), Ok(None), "2 of 5 bytes");
        let mut big = Framer::default();
        big.push(&[0xff, 0xff]);
        assert_eq!(big.next_packet(), Err(FrameTooLarge(0xffff)));
        assert!(!frame(&vec![0u8; 70_000], &mut Vec::new()), "beyond 16 bits");
    }
}
