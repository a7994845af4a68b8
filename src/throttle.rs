//! Fixed-window counters for failed sign-ins and registrations, per account and per address.
//! Time is passed in, so the logic is tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle { limit, window, entries: Mutex::new(HashMap::new()) }
    }

    /// Seconds to wait if `key` is over its limit now.
    pub fn blocked(&self, key: &str, now: Instant) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(&(start, count)) if count >= self.limit && now.duration_since(start) < self.window => {
                Some((self.window - now.duration_since(start)).as_secs().max(1))
            }
            _ => None,
        }
    }

    pub fn record(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the map small: forget expired windows when it grows.
        if entries.len() > 100_000 {
            let window = self.window;
            entries.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let e = entries.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_then_forgets() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        t.record("a", t0);
        assert_eq!(t.blocked("a", t0), None);
        t.record("a", t0);
        assert_eq!(t.blocked("a", t0 + Duration::from_secs(10)), Some(50));
        assert_eq!(t.blocked("b", t0), None);
        assert_eq!(t.blocked("a", t0 + Duration::from_secs(61)), None);
        t.record("a", t0 + Duration::from_secs(61));
        assert_eq!(t.blocked("a", t0 + Duration::from_secs(61)), None);
    }
}
