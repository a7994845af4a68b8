//! Sending the SFU's UDP datagrams: on Linux a read batch's datagrams (often hundreds, one
//! per subscriber and forwarded packet) leave in a few `sendmmsg(2)` calls instead of one
//! `sendto` each, the system call having been ~44 % of the SFU's CPU. Elsewhere they are
//! sent one by one.
//!
//! Sends never block (`MSG_DONTWAIT`). When the kernel refuses for lack of room
//! (`EAGAIN`, `ENOBUFS`) the unsent datagrams stay queued and are tried again on the
//! loop's next turn, which the thread then makes short: a momentarily full send buffer
//! delays media by a fraction of a millisecond instead of losing it. The queue is bounded
//! ([`MAX_PENDING`]); past it the oldest datagrams are dropped and counted, as stale media
//! is worth less than fresh. A datagram the kernel rejects for any other reason (an
//! address of the wrong family, a refused destination) is dropped and counted.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};

/// Datagrams kept for a retry at most: ~80 ms of forwarding at 10 publishers x 50
/// subscribers. Beyond it the socket is not draining and older packets are dropped.
const MAX_PENDING: usize = 8192;
/// Datagrams per `sendmmsg` call; the kernel takes at most `UIO_MAXIOV` (1024).
#[cfg(target_os = "linux")]
const PER_CALL: usize = 1024;

/// UDP datagrams waiting to leave, in order.
#[derive(Default)]
pub struct Outbox {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Datagrams dropped: queue overflow or a send error other than lack of room.
    pub dropped: u64,
    /// Send system calls made (for the benchmark and tests: datagrams per call).
    pub calls: u64,
}

impl Outbox {
    pub fn push(&mut self, to: SocketAddr, datagram: Vec<u8>) {
        if self.queue.len() >= MAX_PENDING {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back((to, datagram));
    }

    /// Datagrams still waiting (the kernel had no room): the loop should come back soon.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Send what the socket takes now without waiting; the rest stays queued.
    pub fn send(&mut self, socket: &UdpSocket) {
        while !self.queue.is_empty() {
            self.calls += 1;
            match self.send_some(socket) {
                Ok(0) => return,
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(Refused::NoRoom) => return,
                Err(Refused::Other(e)) => {
                    // The first queued datagram failed; the rest may be fine.
                    if let Some((to, _)) = self.queue.pop_front() {
                        tracing::debug!(%to, "SFU send: {e}");
                    }
                    self.dropped += 1;
                }
                Err(Refused::Interrupted) => {}
            }
        }
    }

    /// One `sendmmsg` over the head of the queue: how many datagrams left.
    #[cfg(target_os = "linux")]
    fn send_some(&self, socket: &UdpSocket) -> Result<usize, Refused> {
        use rustix::io::Errno;
        use rustix::net::addr::SocketAddrArg;
        use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
        use std::io::IoSlice;

        let n = self.queue.len().min(PER_CALL);
        let head = self.queue.iter().take(n);
        let addrs: Vec<SocketAddrAny> = head.clone().map(|(to, _)| to.as_any()).collect();
        let iovs: Vec<[IoSlice<'_>; 1]> = head.map(|(_, d)| [IoSlice::new(d)]).collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = (0..n).map(|_| Default::default()).collect();
        let mut msgs: Vec<MMsgHdr<'_>> = addrs
            .iter()
            .zip(&iovs)
            .zip(controls.iter_mut())
            .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
            .collect();
        // A partial count is success: an error after the first datagram is reported by the
        // next call, which starts at the datagram that failed.
        match sendmmsg(socket, &mut msgs, SendFlags::DONTWAIT) {
            Ok(sent) => Ok(sent),
            Err(e) if e == Errno::AGAIN || e == Errno::NOBUFS => Err(Refused::NoRoom),
            Err(Errno::INTR) => Err(Refused::Interrupted),
            Err(e) => Err(Refused::Other(e.into())),
        }
    }

    /// One `send_to` (the socket may be in blocking mode here; off Linux the loop accepts
    /// that, as the SFU did before batching).
    #[cfg(not(target_os = "linux"))]
    fn send_some(&self, socket: &UdpSocket) -> Result<usize, Refused> {
        use std::io::ErrorKind;
        let Some((to, d)) = self.queue.front() else { return Ok(0) };
        match socket.send_to(d, to) {
            Ok(_) => Ok(1),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Err(Refused::NoRoom),
            Err(e) if e.kind() == ErrorKind::Interrupted => Err(Refused::Interrupted),
            Err(e) => Err(Refused::Other(e)),
        }
    }
}

enum Refused {
    /// `EAGAIN`/`ENOBUFS`: keep the datagrams for the next turn.
    NoRoom,
    Interrupted,
    Other(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bound() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    #[test]
    fn every_datagram_arrives_whole_in_order_at_its_destination() {
        let (tx, a, b) = (bound(), bound(), bound());
        let mut out = Outbox::default();
        for i in 0..300u16 {
            let to = if i % 3 == 0 { &a } else { &b };
            out.push(to.local_addr().unwrap(), vec![(i % 251) as u8; 1 + usize::from(i)]);
        }
        out.send(&tx);
        assert_eq!(out.pending(), 0);
        assert_eq!(out.dropped, 0);
        if cfg!(target_os = "linux") {
            assert_eq!(out.calls, 1, "one sendmmsg for the batch");
        }
        let mut buf = [0u8; 2000];
        for i in (0..300u16).filter(|i| i % 3 == 0) {
            let (n, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!(from, tx.local_addr().unwrap());
            assert_eq!(&buf[..n], &vec![(i % 251) as u8; 1 + usize::from(i)][..]);
        }
        for i in (0..300u16).filter(|i| i % 3 != 0) {
            let n = b.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &vec![(i % 251) as u8; 1 + usize::from(i)][..]);
        }
    }

    #[test]
    fn a_rejected_datagram_is_dropped_and_the_rest_still_leave() {
        let (tx, a) = (bound(), bound());
        let mut out = Outbox::default();
        out.push(a.local_addr().unwrap(), b"first".to_vec());
        // An IPv6 destination on an IPv4 socket: refused by the kernel (EAFNOSUPPORT).
        out.push("[::1]:9".parse().unwrap(), b"lost".to_vec());
        out.push(a.local_addr().unwrap(), b"last".to_vec());
        out.send(&tx);
        assert_eq!((out.pending(), out.dropped), (0, 1));
        let mut buf = [0u8; 64];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"last");
    }

    #[test]
    fn past_the_bound_the_oldest_are_dropped() {
        let mut out = Outbox::default();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for i in 0..MAX_PENDING + 5 {
            out.push(to, i.to_le_bytes().to_vec());
        }
        assert_eq!((out.pending(), out.dropped), (MAX_PENDING, 5));
        assert_eq!(out.queue.front().map(|(_, d)| d.clone()), Some(5usize.to_le_bytes().to_vec()));
    }
}
