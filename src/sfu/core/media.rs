//! What flows: each RTP packet to the subscribers of its track, keyframe requests,
//! simulcast layers chosen from bandwidth estimates, the dominant speaker.

use std::collections::HashMap;
use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::media::{KeyframeRequestKind, Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, SeqNo, Ssrc, Vp8Descriptor};

use super::Sfu;
use crate::sfu::simulcast;
use crate::sfu::{Codec, Event, ParticipantId};

/// What an audio stream costs a receiver, for the bandwidth it should probe for (Opus with
/// headers, generously).
const AUDIO_RATE: u64 = 64_000;

impl Sfu {
    /// Ask a publisher for keyframes of one track (or all its video), every layer.
    pub(super) fn request_keyframes(&mut self, publisher: ParticipantId, ssrc: Option<u32>) {
        self.request_layer_keyframes(publisher, ssrc, None, KeyframeRequestKind::Pli);
    }

    /// Ask a publisher for keyframes of one track (or all its video) and, for simulcast,
    /// of one layer (or all layers).
    pub(super) fn request_layer_keyframes(
        &mut self,
        publisher: ParticipantId,
        ssrc: Option<u32>,
        layer: Option<usize>,
        kind: KeyframeRequestKind,
    ) {
        let Some(p) = self.participants.get_mut(&publisher) else { return };
        tracing::debug!(publisher, ?ssrc, ?layer, ?kind, "keyframe request");
        for t in p.tracks.iter().filter(|t| !t.audio && ssrc.is_none_or(|s| s == t.ssrc)) {
            let single = [(t.ssrc, t.rtx)];
            let layers = if t.layers.is_empty() { &single[..] } else { &t.layers[..] };
            for (i, (l, _)) in layers.iter().enumerate() {
                if layer.is_none_or(|x| x == i) {
                    if let Some(rx) = p.rtc.direct_api().stream_rx(&Ssrc::from(*l)) {
                        rx.request_keyframe(kind);
                    }
                }
            }
        }
        self.dirty.push(publisher);
    }

    /// The bandwidth estimate towards a subscriber, as str0m reports it (tests set it).
    pub fn set_estimate(&mut self, subscriber: ParticipantId, bits_per_second: u64) {
        if let Some(s) = self.participants.get_mut(&subscriber) {
            s.estimate = Some(bits_per_second);
        }
        self.choose_layers();
    }

    /// Measured incoming bitrate per layer SSRC, over the time since the last update.
    pub(super) fn update_rates(&mut self, now: Instant) {
        let Some(since) = self.last_rates.replace(now) else { return };
        let secs = now.saturating_duration_since(since).as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        for p in self.participants.values_mut() {
            // A layer with no bytes in the window is paused: its rate drops to 0.
            for (ssrc, rate) in p.layer_rates.iter_mut() {
                let bytes = p.layer_bytes.remove(ssrc).unwrap_or(0);
                *rate = simulcast::smooth_rate(*rate, (bytes as f64 * 8.0 / secs) as u64);
            }
            // Layers heard for the first time.
            for (ssrc, bytes) in p.layer_bytes.drain() {
                p.layer_rates.insert(ssrc, (bytes as f64 * 8.0 / secs) as u64);
            }
        }
    }

    /// Pick each subscriber's simulcast layers from its bandwidth estimate, shared equally
    /// among the video it receives, and its preferences; ask for a keyframe on a change.
    /// Also tell its bandwidth estimator what it would receive at best, so str0m probes
    /// up to that rate and the estimate can grow past what flows now.
    pub(super) fn choose_layers(&mut self) {
        let mut requests = Vec::new();
        let ids: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for id in ids {
            let Some(s) = self.participants.get(&id) else { continue };
            let video = s.subscriptions.values().filter(|x| !x.audio).count().max(1);
            let share = s.estimate.map(|e| e / video as u64);
            let mut desired = 0;
            let mut choices: Vec<(Mid, usize)> = Vec::new();
            for (m, x) in &s.subscriptions {
                let rates = self.layer_rates(x.publisher, x.ssrc);
                desired += if x.audio { AUDIO_RATE } else { simulcast::wanted_rate(&rates, x.rw.max) };
                if x.rw.is_simulcast() {
                    choices.push((*m, simulcast::choose(&rates, x.rw.max, share, x.rw.target)));
                }
            }
            let Some(s) = self.participants.get_mut(&id) else { continue };
            if self.bwe && s.connected && desired > 0 {
                // Probing overshoots a little on purpose: a layer that just fits is chosen.
                s.rtc.bwe().set_bitrate(Bitrate::ZERO, Bitrate::bps(desired + desired / 4));
            }
            for (mid, target) in choices {
                if let Some(x) = s.subscriptions.get_mut(&mid) {
                    if x.rw.target != target {
                        x.rw.target = target;
                        requests.push((x.publisher, x.ssrc, target));
                    }
                }
            }
        }
        for (publisher, ssrc, layer) in requests {
            self.request_layer_keyframes(publisher, Some(ssrc), Some(layer), KeyframeRequestKind::Pli);
        }
    }

    /// Measured incoming bitrate (bits/s) per SSRC a participant sends, for metrics.
    pub fn incoming_rates(&self, participant: ParticipantId) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self
            .participants
            .get(&participant)
            .map(|p| p.layer_rates.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Incoming bitrate of each layer of a publisher's track, low to high (one entry for a
    /// single-layer track).
    pub(super) fn layer_rates(&self, publisher: ParticipantId, ssrc: u32) -> Vec<u64> {
        let Some(p) = self.participants.get(&publisher) else { return Vec::new() };
        let Some(t) = p.tracks.iter().find(|t| t.ssrc == ssrc) else { return Vec::new() };
        if t.layers.is_empty() {
            return vec![p.layer_rates.get(&ssrc).copied().unwrap_or(0)];
        }
        t.layers.iter().map(|(l, _)| p.layer_rates.get(l).copied().unwrap_or(0)).collect()
    }

    /// Repeat the keyframe request of every simulcast subscriber still waiting for its
    /// layer (see `simulcast.rs`): a lost or ignored request would otherwise leave it
    /// without a picture until the publisher's next keyframe of its own, which may never
    /// come.
    pub(super) fn retry_keyframes(&mut self, now: Instant) {
        let mut requests = Vec::new();
        for (id, s) in self.participants.iter_mut() {
            if !s.connected {
                continue;
            }
            for (mid, x) in s.subscriptions.iter_mut() {
                if !x.audio && x.rw.keyframe_due(now) {
                    tracing::debug!(subscriber = id, %mid, target = x.rw.target, "no keyframe yet: asking again");
                    requests.push((x.publisher, x.ssrc, x.rw.target));
                }
            }
        }
        requests.sort_unstable();
        requests.dedup();
        for (publisher, ssrc, layer) in requests {
            let flowing = self.participants.get(&publisher).is_some_and(|p| p.forward_video && p.connected);
            if flowing && self.in_last_n(publisher) {
                self.request_layer_keyframes(publisher, Some(ssrc), Some(layer), KeyframeRequestKind::Pli);
            }
        }
    }

    /// Whether a publisher's video is forwarded under last-N.
    fn in_last_n(&self, publisher: ParticipantId) -> bool {
        if self.last_n == 0 {
            return true;
        }
        let Some(p) = self.participants.get(&publisher) else { return false };
        let rank = self.recency.get(&p.call).and_then(|o| o.iter().position(|x| *x == publisher));
        rank.is_some_and(|r| r < self.last_n)
    }

    /// Write one received RTP packet to every subscriber of its track.
    pub(super) fn forward(&mut self, now: Instant, publisher: ParticipantId, pkt: RtpPacket) {
        let Some(p) = self.participants.get_mut(&publisher) else { return };
        let Some(&(ssrc, layer)) = p.layer_of.get(&*pkt.header.ssrc) else { return };
        let Some(track) = p.tracks.iter().find(|t| t.ssrc == ssrc) else { return };
        let (audio, simulcast) = (track.audio, !track.layers.is_empty());
        *p.layer_bytes.entry(*pkt.header.ssrc).or_default() += pkt.payload.len() as u64;
        if audio {
            if let Some(level) = pkt.header.ext_vals.audio_level {
                let loud = (127 + i32::from(level).clamp(-127, 0)) as f32;
                p.loudness = p.loudness * 0.9 + loud * 0.1;
            }
        }
        if (audio && !p.forward_audio) || (!audio && !p.forward_video) {
            return;
        }
        if !audio && self.last_n > 0 {
            let rank = self.recency.get(&p.call).and_then(|o| o.iter().position(|x| *x == publisher));
            if rank.is_none_or(|r| r >= self.last_n) {
                return;
            }
        }
        let Some(codec) = p.payloads.iter().find(|s| s.pt == *pkt.header.payload_type).map(|s| s.codec) else {
            return;
        };
        let Some(routes) = self.routes.get(&(publisher, ssrc)) else { return };
        // Only VP8 layers can be switched (keyframe detection, picture-id rewriting).
        let keyframe = (simulcast && codec == Codec::Vp8)
            .then(|| Vp8Descriptor::parse(&pkt.payload).is_ok_and(|d| d.starts_keyframe(&pkt.payload)));
        let ext = ExtensionValues {
            audio_level: pkt.header.ext_vals.audio_level,
            voice_activity: pkt.header.ext_vals.voice_activity,
            video_orientation: pkt.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let seq = *pkt.seq_no as i64;
        for r in routes {
            let Some(s) = self.participants.get_mut(&r.subscriber) else { continue };
            if !s.connected {
                continue;
            }
            let Some(pt) = s.payloads.iter().find(|x| x.codec == codec).map(|x| x.pt) else { continue };
            let Some(sub) = s.subscriptions.get_mut(&r.mid) else { continue };
            let before = sub.rw.layer;
            let Some(out) = sub.rw.packet(layer, seq, pkt.header.timestamp, &pkt.payload, keyframe) else {
                continue;
            };
            if before != sub.rw.layer {
                tracing::debug!(subscriber = r.subscriber, mid = %r.mid, publisher, ?before, layer, "forwarding starts on a layer");
            }
            let mut api = s.rtc.direct_api();
            let Some(tx) = api.stream_tx(&Ssrc::from(r.out_ssrc)) else { continue };
            let mut w = RtpWrite::new(Pt::from(pt), SeqNo::from(out.seq), out.timestamp, now, pkt.payload.clone())
                .marker(pkt.header.marker)
                .ext_vals(ext.clone())
                .nackable(!audio);
            if let Some(patch) = out.vp8_patch {
                w = w.vp8_patch(patch);
            }
            tx.write_rtp(w);
            self.forwarded += 1;
            if !s.fed {
                s.fed = true;
                self.fed.push(r.subscriber);
            }
        }
    }

    /// Tell the focus when a call's loudest participant changes.
    pub(super) fn dominant_speakers(&mut self) {
        let mut loudest: HashMap<&str, (ParticipantId, f32)> = HashMap::new();
        for (id, p) in &self.participants {
            let e = loudest.entry(p.call.as_str()).or_insert((*id, -1.0));
            if p.loudness > e.1 {
                *e = (*id, p.loudness);
            }
        }
        let mut changes = Vec::new();
        for (call, (id, level)) in loudest {
            if level > 20.0 && self.dominant.get(call) != Some(&id) {
                changes.push((call.to_string(), id));
            }
        }
        for (call, id) in changes {
            self.dominant.insert(call.clone(), id);
            let order = self.recency.entry(call.clone()).or_default();
            let was = order.iter().position(|x| *x == id);
            order.retain(|x| *x != id);
            order.insert(0, id);
            if self.last_n > 0 && was.is_none_or(|r| r >= self.last_n) {
                // Its video starts flowing again: subscribers need a keyframe to show it.
                self.request_keyframes(id, None);
            }
            self.events.push_back(Event::DominantSpeaker { call, participant: id });
        }
    }
}
