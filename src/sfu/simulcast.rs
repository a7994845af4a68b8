//! Simulcast, per receiver: which layer of a publisher's track to forward, and how to
//! rewrite its packets so the receiver sees one continuous stream across layer switches
//! (sequence numbers, timestamps, VP8 picture ids). Pure state, unit-tested here.
//!
//! A publisher announces layers with a XEP-0339 `SIM` source group (low to high). A
//! switch happens only at a keyframe of the target layer (the SFU asks for one with PLI).
//! Single-layer tracks use the same code: layer 0 from the first packet, no rewriting
//! beyond the sequence-number rebase.
//!
//! Nothing reaches a simulcast receiver until a keyframe arrives, and nothing makes the
//! receiver ask for one (it has no packets to miss), so the SFU's own request must not be
//! lost. It can be: a publisher ignores requests that follow its last one too closely
//! (libwebrtc drops those within 300 ms), the keyframe may arrive while the receiver is
//! not yet connected, or the request may go to a layer the publisher only starts later.
//! So while a receiver waits for a layer the request is repeated, with backoff
//! ([`Rewriter::keyframe_due`]), until that layer's keyframe has been forwarded.

use std::time::{Duration, Instant};

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

/// The first sequence number a receiver sees (room for slightly reordered packets).
pub const SEQ_START: i64 = 1000;
/// Timestamp step put between the last packet of the old layer and the new one (one
/// 30 fps frame at 90 kHz), so the receiver's jitter buffer sees time moving forward.
const SWITCH_TS_STEP: u32 = 3000;
/// First repeat of a keyframe request: past libwebrtc's 300 ms throttle on requests.
pub const KEYFRAME_RETRY_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between repeats (a publisher that never sends the layer is not flooded).
pub const KEYFRAME_RETRY_MAX: Duration = Duration::from_secs(4);

/// Rewriting state of one forwarded track towards one receiver.
#[derive(Debug, Clone)]
pub struct Rewriter {
    /// Layers the track has (1 = not simulcast).
    pub layers: usize,
    /// The layer being forwarded; `None` before the first packet (or keyframe).
    pub layer: Option<usize>,
    /// The layer to switch to at its next keyframe.
    pub target: usize,
    /// The highest layer the receiver wants (e.g. small for a thumbnail).
    pub max: usize,
    seq_offset: i64,
    next_seq: i64,
    ts_offset: u32,
    last_ts: u32,
    /// VP8 picture id / TL0PICIDX continuity (simulcast only).
    pid_offset: u16,
    tl0_offset: u8,
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
    /// The codec has no keyframe detection here: the first layer it starts on stays.
    blind: bool,
    /// Keyframe request repeats: the target they are for, when the next is due, and the
    /// wait after it.
    retry_for: Option<usize>,
    retry_at: Option<Instant>,
    retry_wait: Duration,
}

/// Where and how to write one packet towards the receiver.
#[derive(Debug)]
pub struct Rewritten {
    pub seq: u64,
    pub timestamp: u32,
    pub vp8_patch: Option<Vp8Patch>,
}

impl Rewriter {
    pub fn new(layers: usize) -> Rewriter {
        Rewriter {
            layers: layers.max(1),
            layer: None,
            target: 0,
            max: usize::MAX,
            seq_offset: 0,
            next_seq: SEQ_START,
            ts_offset: 0,
            last_ts: 0,
            pid_offset: 0,
            tl0_offset: 0,
            last_pid: None,
            last_tl0: None,
            blind: false,
            retry_for: None,
            retry_at: None,
            retry_wait: KEYFRAME_RETRY_FIRST,
        }
    }

    pub fn is_simulcast(&self) -> bool {
        self.layers > 1
    }

    /// Whether the receiver waits for a keyframe: of any layer up to the target before
    /// anything was forwarded, or of the target to switch to it.
    pub fn wants_keyframe(&self) -> bool {
        self.is_simulcast() && !self.blind && self.layer != Some(self.target)
    }

    /// Whether to ask the publisher for a keyframe of the target layer again now. The
    /// first request is made by whoever sets the target (subscribe, connect, layer
    /// choice), so the clock starts here; repeats come after 0.5, 1, 2, 4, 4... s, and
    /// stop once the layer flows.
    pub fn keyframe_due(&mut self, now: Instant) -> bool {
        if !self.wants_keyframe() {
            self.retry_for = None;
            return false;
        }
        if self.retry_for != Some(self.target) {
            self.retry_for = Some(self.target);
            self.retry_wait = KEYFRAME_RETRY_FIRST;
            self.retry_at = Some(now + KEYFRAME_RETRY_FIRST);
            return false;
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return false;
        }
        self.retry_wait = (self.retry_wait * 2).min(KEYFRAME_RETRY_MAX);
        self.retry_at = Some(now + self.retry_wait);
        true
    }

    /// A packet of `layer` arrived (extended sequence number `seq`, RTP `timestamp`,
    /// `payload`; `keyframe`: whether it starts a keyframe, `None` when the codec does not
    /// say). `None`: do not forward it.
    ///
    /// A simulcast receiver starts at the first keyframe of the target layer or of any
    /// layer below it (a picture sooner; the switch up follows at the target's keyframe),
    /// and switches only at a keyframe of the target. Without keyframe detection it starts
    /// on the first packet of the target layer and stays there.
    pub fn packet(
        &mut self,
        layer: usize,
        seq: i64,
        timestamp: u32,
        payload: &[u8],
        keyframe: Option<bool>,
    ) -> Option<Rewritten> {
        if self.layer != Some(layer) {
            let may_start = match (self.is_simulcast(), keyframe, self.layer) {
                (false, _, current) => current.is_none(),
                (true, None, None) => layer == self.target,
                (true, None, Some(_)) => false,
                (true, Some(key), None) => key && layer <= self.target,
                (true, Some(key), Some(_)) => key && layer == self.target,
            };
            if !may_start {
                return None;
            }
            self.blind = self.is_simulcast() && keyframe.is_none();
            match self.layer {
                None => {
                    self.seq_offset = SEQ_START - seq;
                    self.ts_offset = 0;
                }
                Some(_) => {
                    self.seq_offset = self.next_seq - seq;
                    self.ts_offset = self.last_ts.wrapping_add(SWITCH_TS_STEP).wrapping_sub(timestamp);
                }
            }
            self.layer = Some(layer);
            if self.is_simulcast() {
                if let Ok(d) = Vp8Descriptor::parse(payload) {
                    if let (Some(pid), Some(last)) = (d.picture_id(), self.last_pid) {
                        self.pid_offset = last.wrapping_add(1).wrapping_sub(pid);
                    }
                    if let (Some(t), Some(last)) = (d.tl0_pic_idx(), self.last_tl0) {
                        self.tl0_offset = last.wrapping_add(1).wrapping_sub(t);
                    }
                }
            }
        }
        let out = seq + self.seq_offset;
        if out < 0 {
            return None;
        }
        self.next_seq = self.next_seq.max(out + 1);
        let ts = timestamp.wrapping_add(self.ts_offset);
        self.last_ts = ts;
        let vp8_patch = if self.is_simulcast() { self.vp8_patch(payload) } else { None };
        Some(Rewritten { seq: out as u64, timestamp: ts, vp8_patch })
    }

    fn vp8_patch(&mut self, payload: &[u8]) -> Option<Vp8Patch> {
        let d = Vp8Descriptor::parse(payload).ok()?;
        let tl0 = d.tl0_pic_idx().map(|t| t.wrapping_add(self.tl0_offset));
        let pid = d.picture_id().map(|p| p.wrapping_add(self.pid_offset));
        // The patch keeps the descriptor's 15- or 7-bit picture id: try 15 bits, then 7.
        for mask in [0x7fff_u16, 0x7f] {
            let mut b = d.patch();
            if let Some(p) = pid {
                b = b.picture_id(p & mask);
            }
            if let Some(t) = tl0 {
                b = b.tl0_pic_idx(t);
            }
            if let Ok(patch) = b.build() {
                self.last_pid = pid.map(|p| p & mask);
                self.last_tl0 = tl0;
                return Some(patch);
            }
        }
        None
    }
}

/// The layer to aim for: the highest one the receiver wants whose measured bitrate fits
/// its share of the bandwidth estimate; the lowest when nothing fits or nothing is known.
/// `rates[i]` is layer i's incoming bitrate (0 = the publisher is not sending it now).
/// A layer the publisher is not sending is never chosen while another one flows: the
/// fallback is the lowest layer that flows (0 while nothing is measured).
///
/// `current` is the present target. Every switch costs a keyframe, and measured rates and
/// estimates wobble, so a layer above it is taken only with 20% headroom, and the current
/// one is kept while it still fits at all: no flapping between two layers.
pub fn choose(rates: &[u64], max: usize, share: Option<u64>, current: usize) -> usize {
    let lowest = rates.iter().position(|r| *r > 0).unwrap_or(0);
    let Some(share) = share else { return lowest };
    let top = max.min(rates.len().saturating_sub(1));
    let fits = |l: usize, budget: u64| rates[l] > 0 && rates[l] <= budget;
    let up = (0..=top).rev().find(|&l| fits(l, share - share / 5));
    match up {
        Some(l) if l > current => l,
        _ if current <= top && fits(current, share) => current,
        _ => (0..=top).rev().find(|&l| fits(l, share)).unwrap_or(lowest),
    }
}

/// A layer's measured rate smoothed over the last few measurements (keyframes make single
/// windows jump), except that a layer that stopped is seen at once.
pub fn smooth_rate(previous: u64, measured: u64) -> u64 {
    if measured == 0 || previous == 0 {
        measured
    } else {
        (previous * 2 + measured) / 3
    }
}

/// The bitrate worth probing for towards a receiver of this track: its best layer the
/// receiver wants (that flows), or the single layer's rate.
pub fn wanted_rate(rates: &[u64], max: usize) -> u64 {
    let top = max.min(rates.len().saturating_sub(1));
    rates.iter().take(top + 1).rev().find(|r| **r > 0).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VP8 payload: descriptor with a 15-bit picture id, TL0PICIDX and TID (RFC 7741
    /// §4.2), then one byte of VP8 payload header (bit 0 clear = keyframe).
    pub fn vp8(pid: u16, tl0: u8, keyframe: bool) -> Vec<u8> {
        vec![0x90, 0xe0, 0x80 | (pid >> 8) as u8, pid as u8, tl0, 0x00, if keyframe { 0x00 } else { 0x01 }]
    }

    #[test]
    fn a_single_layer_is_rebased_and_forwarded_from_the_first_packet() {
        let mut r = Rewriter::new(1);
        let a = r.packet(0, 70_000, 5, &[1], Some(false)).unwrap();
        let b = r.packet(0, 70_001, 6, &[1], Some(false)).unwrap();
        assert_eq!((a.seq, b.seq), (SEQ_START as u64, SEQ_START as u64 + 1));
        assert_eq!((a.timestamp, b.timestamp), (5, 6));
        assert!(a.vp8_patch.is_none());
        // A reordered packet from just before the first one still fits.
        assert_eq!(r.packet(0, 69_999, 4, &[1], Some(false)).unwrap().seq, SEQ_START as u64 - 1);
    }

    #[test]
    fn simulcast_waits_for_a_keyframe_of_the_target_and_stays_continuous_across_switches() {
        let mut r = Rewriter::new(3);
        assert!(r.packet(0, 10, 100, &vp8(7, 1, false), Some(false)).is_none(), "no keyframe yet");
        assert!(r.packet(1, 500, 9000, &vp8(300, 9, true), Some(true)).is_none(), "not the target layer");
        let first = r.packet(0, 11, 200, &vp8(8, 1, true), Some(true)).unwrap();
        assert_eq!(first.seq, SEQ_START as u64);
        let second = r.packet(0, 12, 3200, &vp8(9, 1, false), Some(false)).unwrap();
        // Switch up to layer 2: its own numbering is hidden from the receiver.
        r.target = 2;
        assert!(r.packet(2, 9_000, 777_000, &vp8(20_000, 200, false), Some(false)).is_none(), "waits for a keyframe");
        assert!(r.packet(0, 13, 6200, &vp8(10, 2, false), Some(false)).is_some(), "the old layer flows until then");
        let switched = r.packet(2, 9_001, 780_000, &vp8(20_001, 200, true), Some(true)).unwrap();
        assert_eq!(switched.seq, second.seq + 2);
        assert_eq!(switched.timestamp, 6200 + SWITCH_TS_STEP);
        assert!(switched.vp8_patch.is_some());
        assert_eq!(r.last_pid, Some(11), "picture ids continue after 10");
        assert_eq!(r.last_tl0, Some(3));
        assert!(r.packet(0, 14, 9200, &vp8(11, 2, false), Some(false)).is_none(), "the old layer is dropped now");
        let next = r.packet(2, 9_002, 783_000, &vp8(20_002, 200, false), Some(false)).unwrap();
        assert_eq!((next.seq, next.timestamp), (switched.seq + 1, switched.timestamp + 3000));
        assert_eq!(r.last_pid, Some(12));
        let _ = first;
    }

    #[test]
    fn the_chosen_layer_fits_the_share_and_the_preference() {
        let rates = [150_000, 500_000, 1_500_000];
        assert_eq!(choose(&rates, usize::MAX, None, 0), 0, "unknown bandwidth: lowest");
        assert_eq!(choose(&rates, usize::MAX, Some(2_000_000), 0), 2);
        assert_eq!(choose(&rates, usize::MAX, Some(700_000), 0), 1);
        assert_eq!(choose(&rates, usize::MAX, Some(100_000), 0), 0, "nothing fits: lowest");
        assert_eq!(choose(&rates, 1, Some(9_000_000), 0), 1, "the receiver wants at most layer 1");
        assert_eq!(choose(&[150_000, 0, 1_500_000], 1, Some(9_000_000), 0), 0, "a paused layer is skipped");
        assert_eq!(choose(&[0, 500_000, 1_500_000], usize::MAX, None, 0), 1, "unknown bandwidth: lowest that flows");
        assert_eq!(choose(&[0, 500_000, 1_500_000], 0, Some(100_000), 0), 1, "nothing fits: lowest that flows");
        assert_eq!(choose(&[0, 0, 0], usize::MAX, Some(100_000), 0), 0, "nothing measured yet");
    }

    #[test]
    fn layers_do_not_flap_around_the_estimate() {
        let rates = [150_000, 500_000, 1_500_000];
        assert_eq!(choose(&rates, usize::MAX, Some(550_000), 0), 0, "up to layer 1 only with headroom");
        assert_eq!(choose(&rates, usize::MAX, Some(625_000), 0), 1);
        assert_eq!(choose(&rates, usize::MAX, Some(550_000), 1), 1, "kept while it fits");
        assert_eq!(choose(&rates, usize::MAX, Some(450_000), 1), 0, "down once it does not");
        assert_eq!(choose(&rates, 0, Some(9_000_000), 2), 0, "a lower ceiling goes down at once");
        assert_eq!(choose(&[150_000, 500_000, 0], usize::MAX, Some(9_000_000), 2), 1, "the current layer stopped");
        assert_eq!(smooth_rate(0, 500), 500);
        assert_eq!(smooth_rate(300, 900), 500, "a keyframe window is damped");
        assert_eq!(smooth_rate(500, 0), 0, "a stopped layer shows at once");
    }

    #[test]
    fn the_rate_to_probe_for_is_the_best_wanted_layer_that_flows() {
        assert_eq!(wanted_rate(&[150_000, 500_000, 1_500_000], usize::MAX), 1_500_000);
        assert_eq!(wanted_rate(&[150_000, 500_000, 1_500_000], 1), 500_000);
        assert_eq!(wanted_rate(&[150_000, 500_000, 0], usize::MAX), 500_000, "a paused top layer");
        assert_eq!(wanted_rate(&[], usize::MAX), 0);
    }

    #[test]
    fn a_receiver_starts_on_a_lower_layer_keyframe_and_switches_up_at_the_targets() {
        let mut r = Rewriter::new(2);
        r.target = 1;
        assert!(r.packet(0, 10, 100, &vp8(7, 1, false), Some(false)).is_none(), "no keyframe yet");
        let first = r.packet(0, 11, 3100, &vp8(8, 1, true), Some(true)).unwrap();
        assert_eq!((first.seq, r.layer), (SEQ_START as u64, Some(0)), "a picture at once, from layer 0");
        assert!(r.wants_keyframe(), "still waiting for the target");
        assert!(r.packet(1, 900, 3100, &vp8(500, 4, false), Some(false)).is_none());
        let up = r.packet(1, 901, 6100, &vp8(501, 4, true), Some(true)).unwrap();
        assert_eq!((up.seq, r.layer), (first.seq + 1, Some(1)));
        assert!(!r.wants_keyframe());
        // Once started, a keyframe below the target is no reason to go down.
        assert!(r.packet(0, 12, 9100, &vp8(9, 1, true), Some(true)).is_none());
    }

    #[test]
    fn keyframe_requests_repeat_with_backoff_until_the_layer_flows() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut r = Rewriter::new(2);
        // The first request was made on subscribing: the clock starts.
        assert!(!r.keyframe_due(t0));
        assert!(!r.keyframe_due(ms(300)), "within libwebrtc's throttle");
        assert!(r.keyframe_due(ms(500)));
        assert!(!r.keyframe_due(ms(1400)));
        assert!(r.keyframe_due(ms(1500)), "then after 1 s");
        assert!(r.keyframe_due(ms(3500)), "then after 2 s");
        assert!(!r.keyframe_due(ms(7400)));
        assert!(r.keyframe_due(ms(7500)), "then after 4 s");
        assert!(r.keyframe_due(ms(11_500)), "at most 4 s apart");
        // A new target starts over (its first request is made with the change).
        r.target = 1;
        assert!(!r.keyframe_due(ms(11_600)));
        assert!(r.keyframe_due(ms(12_100)));
        // The layer flows: no more requests.
        r.packet(1, 5, 100, &vp8(1, 1, true), Some(true)).unwrap();
        assert!(!r.keyframe_due(ms(60_000)));
        // A single-layer receiver never waits for keyframes here (it asks itself).
        let mut single = Rewriter::new(1);
        assert!(!single.keyframe_due(t0) && !single.keyframe_due(ms(60_000)));
    }

    #[test]
    fn without_keyframe_detection_the_first_target_layer_starts_and_stays() {
        let mut r = Rewriter::new(2);
        assert!(r.packet(1, 50, 100, &[1], None).is_none(), "not the target");
        assert_eq!(r.packet(0, 7, 100, &[1], None).unwrap().seq, SEQ_START as u64);
        r.target = 1;
        assert!(r.packet(1, 51, 3100, &[1], None).is_none(), "no switch without keyframe detection");
        assert!(!r.wants_keyframe(), "and no keyframe requests for one");
        assert!(r.packet(0, 8, 3100, &[1], None).is_some());
    }
}
