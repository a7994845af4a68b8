//! A session's outbound queue: bounded, never blocking a sender, one receiver.
//!
//! Not tokio's `mpsc`: its channel allocates about 1 KiB when it is created (cache-padded
//! sender and receiver state, a first block of 32 slots) and keeps it for the session's
//! life, while most sessions sit idle with nothing queued. Here an idle session's queue is
//! one allocation of about 100 bytes; the buffer grows while stanzas are waiting and is
//! given back by [`Receiver::shrink`] when the connection goes idle.
//!
//! Semantics are `mpsc`'s where the server relies on them: `try_send` fails with
//! [`TrySendError::Full`] at capacity and [`TrySendError::Closed`] once the receiver is
//! gone (its pending items are dropped); `recv` returns `None` once every sender is gone
//! and the queue is empty. `recv` is cancel safe: an item is only taken by a poll that
//! returns it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the receiver (one waiter: `notify_one` keeps a permit if it is not waiting).
    ready: Notify,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver_alive: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A queue of at most `capacity` items.
pub fn queue<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State { items: VecDeque::new(), senders: 1, receiver_alive: true }),
        ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds `capacity` items: the receiver is not keeping up.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// The queue is empty (whether or not senders remain).
#[derive(Debug, PartialEq, Eq)]
pub struct Empty;

pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut s = self.shared.lock();
        if !s.receiver_alive {
            return Err(TrySendError::Closed(item));
        }
        if s.items.len() >= self.shared.capacity {
            return Err(TrySendError::Full(item));
        }
        s.items.push_back(item);
        drop(s);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut s = self.shared.lock();
            s.senders -= 1;
            s.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue::Sender")
    }
}

pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item; None when the queue is empty and every sender is gone.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut s = self.shared.lock();
                if let Some(item) = s.items.pop_front() {
                    return Some(item);
                }
                if s.senders == 0 {
                    return None;
                }
            }
            self.shared.ready.notified().await;
        }
    }

    pub fn try_recv(&mut self) -> Result<T, Empty> {
        self.shared.lock().items.pop_front().ok_or(Empty)
    }

    /// Give back the buffer's spare capacity (all of it when nothing is queued).
    pub fn shrink(&mut self) {
        self.shared.lock().items.shrink_to_fit();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let pending = {
            let mut s = self.shared.lock();
            s.receiver_alive = false;
            std::mem::take(&mut s.items)
        };
        // Dropped outside the lock: an item's destructor never runs under it.
        drop(pending);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue::Receiver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn bounded_ordered_and_closes_both_ways() {
        let (tx, mut rx) = queue::<u32>(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(Empty));
        rx.shrink();
        let tx2 = tx.clone();
        drop(tx);
        tx2.try_send(4).unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Some(4), "items outlive the senders");
        assert_eq!(rx.recv().await, None);

        let (tx, rx) = queue::<u32>(4);
        drop(rx);
        assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_and_a_cancelled_recv_loses_nothing() {
        let (tx, mut rx) = queue::<u32>(8);
        // Cancelled while waiting: nothing is taken.
        assert!(tokio::time::timeout(Duration::from_millis(10), rx.recv()).await.is_err());
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx.recv().await)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.try_send(7).unwrap();
        tx.try_send(8).unwrap();
        assert_eq!(waiter.await.unwrap(), (Some(7), Some(8)));
    }
}
