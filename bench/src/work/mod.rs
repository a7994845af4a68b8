//! The workloads, one file each. Each ensures its accounts, measures, records its numbers
//! through [`crate::metrics::Output`] and closes what it opened.

pub mod idle;
pub mod login;
pub mod message;
pub mod muc;
pub mod presence;

use std::sync::OnceLock;
use std::time::Instant;

/// The generator's clock origin: timestamps carried in stanza bodies are nanoseconds since it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`] at `at`.
pub fn nanos_at(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64
}

/// Nanoseconds since [`epoch`] now.
pub fn now_nanos() -> u64 {
    nanos_at(Instant::now())
}

/// Splits a marker `b:RUN:TAG:NANOS` into `(tag, nanos)` if it belongs to run `run`.
pub fn parse_marker(text: &str, run: &str) -> Option<(u64, u64)> {
    let rest = text.strip_prefix("b:")?.strip_prefix(run)?.strip_prefix(':')?;
    let (tag, ts) = rest.split_once(':')?;
    Some((tag.parse().ok()?, ts.trim().parse().ok()?))
}

/// Builds the marker that [`parse_marker`] reads.
pub fn marker(run: &str, tag: u64, nanos: u64) -> String {
    format!("b:{run}:{tag}:{nanos}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_reject_other_runs() {
        let m = marker("ab12", 7, 12345);
        assert_eq!(parse_marker(&m, "ab12"), Some((7, 12345)));
        assert_eq!(parse_marker(&m, "ab1"), None);
        assert_eq!(parse_marker("hello", "ab12"), None);
        assert!(now_nanos() >= nanos_at(epoch()));
    }
}
