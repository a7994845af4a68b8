//! Simulcast, per receiver: which layer of a publisher's track to forward, and how to
//! rewrite its packets so the receiver sees one continuous stream across layer switches
//! (sequence numbers, timestamps, VP8 picture ids). Pure state, unit-tested here.
//!
//! A publisher announces layers with a XEP-0339 `SIM` source group (low to high). A
//! switch happens only at a keyframe of the target layer (the SFU asks for one with PLI).
//! Single-layer tracks use the same code: layer 0 from the first packet, no rewriting
//! beyond the sequence-number rebase.

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

/// The first sequence number a receiver sees (room for slightly reordered packets).
pub const SEQ_START: i64 = 1000;
/// Timestamp step put between the last packet of the old layer and the new one (one
/// 30 fps frame at 90 kHz), so the receiver's jitter buffer sees time moving forward.
const SWITCH_TS_STEP: u32 = 3000;

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
        }
    }

    pub fn is_simulcast(&self) -> bool {
        self.layers > 1
    }

    /// A packet of `layer` arrived (extended sequence number `seq`, RTP `timestamp`,
    /// `payload`, `keyframe` if it starts a keyframe). `None`: do not forward it.
    pub fn packet(
        &mut self,
        layer: usize,
        seq: i64,
        timestamp: u32,
        payload: &[u8],
        keyframe: bool,
    ) -> Option<Rewritten> {
        if self.layer != Some(layer) {
            let may_start = if self.is_simulcast() { layer == self.target && keyframe } else { self.layer.is_none() };
            if !may_start {
                return None;
            }
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
pub fn choose(rates: &[u64], max: usize, share: Option<u64>) -> usize {
    let Some(share) = share else { return 0 };
    let top = max.min(rates.len().saturating_sub(1));
    (0..=top).rev().find(|&l| rates[l] > 0 && rates[l] <= share).unwrap_or(0)
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
        let a = r.packet(0, 70_000, 5, &[1], false).unwrap();
        let b = r.packet(0, 70_001, 6, &[1], false).unwrap();
        assert_eq!((a.seq, b.seq), (SEQ_START as u64, SEQ_START as u64 + 1));
        assert_eq!((a.timestamp, b.timestamp), (5, 6));
        assert!(a.vp8_patch.is_none());
        // A reordered packet from just before the first one still fits.
        assert_eq!(r.packet(0, 69_999, 4, &[1], false).unwrap().seq, SEQ_START as u64 - 1);
    }

    #[test]
    fn simulcast_waits_for_a_keyframe_of_the_target_and_stays_continuous_across_switches() {
        let mut r = Rewriter::new(3);
        assert!(r.packet(0, 10, 100, &vp8(7, 1, false), false).is_none(), "no keyframe yet");
        assert!(r.packet(1, 500, 9000, &vp8(300, 9, true), true).is_none(), "not the target layer");
        let first = r.packet(0, 11, 200, &vp8(8, 1, true), true).unwrap();
        assert_eq!(first.seq, SEQ_START as u64);
        let second = r.packet(0, 12, 3200, &vp8(9, 1, false), false).unwrap();
        // Switch up to layer 2: its own numbering is hidden from the receiver.
        r.target = 2;
        assert!(r.packet(2, 9_000, 777_000, &vp8(20_000, 200, false), false).is_none(), "waits for a keyframe");
        assert!(r.packet(0, 13, 6200, &vp8(10, 2, false), false).is_some(), "the old layer flows until then");
        let switched = r.packet(2, 9_001, 780_000, &vp8(20_001, 200, true), true).unwrap();
        assert_eq!(switched.seq, second.seq + 2);
        assert_eq!(switched.timestamp, 6200 + SWITCH_TS_STEP);
        assert!(switched.vp8_patch.is_some());
        assert_eq!(r.last_pid, Some(11), "picture ids continue after 10");
        assert_eq!(r.last_tl0, Some(3));
        assert!(r.packet(0, 14, 9200, &vp8(11, 2, false), false).is_none(), "the old layer is dropped now");
        let next = r.packet(2, 9_002, 783_000, &vp8(20_002, 200, false), false).unwrap();
        assert_eq!((next.seq, next.timestamp), (switched.seq + 1, switched.timestamp + 3000));
        assert_eq!(r.last_pid, Some(12));
        let _ = first;
    }

    #[test]
    fn the_chosen_layer_fits_the_share_and_the_preference() {
        let rates = [150_000, 500_000, 1_500_000];
        assert_eq!(choose(&rates, usize::MAX, None), 0, "unknown bandwidth: lowest");
        assert_eq!(choose(&rates, usize::MAX, Some(2_000_000)), 2);
        assert_eq!(choose(&rates, usize::MAX, Some(600_000)), 1);
        assert_eq!(choose(&rates, usize::MAX, Some(100_000)), 0, "nothing fits: lowest");
        assert_eq!(choose(&rates, 1, Some(9_000_000)), 1, "the receiver wants at most layer 1");
        assert_eq!(choose(&[150_000, 0, 1_500_000], 1, Some(9_000_000)), 0, "a paused layer is skipped");
    }
}
