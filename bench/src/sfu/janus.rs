//! Joining a Janus VideoRoom through its REST API (janus.transport.http): a Janus session
//! and a videoroom handle per participant; publishers `join` then `publish` with an SDP
//! offer; subscribers `join` as `ptype: subscriber` to every publisher's feed in one
//! PeerConnection (Janus 1.x multistream), answer Janus's offer and `start`.
//!
//! Asynchronous plugin replies arrive as events on the session's long poll
//! (`GET /janus/<session>`), matched by transaction.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};
use str0m::rtp::Ssrc;
use str0m::Rtc;

use super::http;
use crate::bail;
use crate::conn::{Error, Result};

static TRANSACTION: AtomicU64 = AtomicU64::new(1);

/// One Janus session with one videoroom handle.
pub struct Handle {
    addr: String,
    session: u64,
    handle: u64,
    timeout: Duration,
}

fn transaction() -> String {
    format!("t{}", TRANSACTION.fetch_add(1, Ordering::Relaxed))
}

fn id_of(reply: &Value, what: &str) -> Result<u64> {
    if reply["janus"] != "success" {
        bail!("Janus refused {what}: {reply}");
    }
    reply["data"]["id"].as_u64().ok_or_else(|| Error(format!("no id in Janus's reply to {what}: {reply}")))
}

impl Handle {
    /// A new session with the videoroom plugin attached.
    pub async fn attach(addr: &str, timeout: Duration) -> Result<Handle> {
        let created =
            http::call(addr, "/janus", Some(&json!({"janus": "create", "transaction": transaction()})), timeout)
                .await?;
        let session = id_of(&created, "create")?;
        let body = json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": transaction()});
        let attached = http::call(addr, &format!("/janus/{session}"), Some(&body), timeout).await?;
        let handle = id_of(&attached, "attach")?;
        Ok(Handle { addr: addr.to_owned(), session, handle, timeout })
    }

    /// A plugin message; synchronous requests return their reply, asynchronous ones
    /// (`ack`) the event Janus sends later for the same transaction.
    pub async fn message(&self, body: Value, jsep: Option<Value>) -> Result<Value> {
        let tx = transaction();
        let mut req = json!({"janus": "message", "transaction": tx, "body": body});
        if let Some(j) = jsep {
            req["jsep"] = j;
        }
        let path = format!("/janus/{}/{}", self.session, self.handle);
        let reply = http::call(&self.addr, &path, Some(&req), self.timeout).await?;
        match reply["janus"].as_str() {
            Some("success") => return plugin_result(reply),
            Some("ack") => {}
            _ => bail!("Janus refused {body}: {reply}"),
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        while tokio::time::Instant::now() < deadline {
            let path = format!("/janus/{}?maxev=10", self.session);
            let events = http::call(&self.addr, &path, None, self.timeout + Duration::from_secs(35)).await?;
            let list = match events {
                Value::Array(v) => v,
                one => vec![one],
            };
            for e in list {
                if e["transaction"] == tx.as_str() {
                    return plugin_result(e);
                }
            }
        }
        bail!("Janus sent no answer to {body} within {:?}", self.timeout)
    }
}

/// The plugin's data of a reply, with the JSEP (if any) under "jsep"; a plugin error is an Err.
fn plugin_result(reply: Value) -> Result<Value> {
    let mut data = reply["plugindata"]["data"].clone();
    if data.get("error").is_some() || data.is_null() {
        bail!("Janus videoroom error: {reply}");
    }
    if let Some(j) = reply.get("jsep") {
        data["jsep"] = j.clone();
    }
    Ok(data)
}

/// Creates room `room` for `publishers` publishers: no bitrate cap, Opus and VP8, no
/// extra events, so Janus does nothing the SFU under comparison does not.
pub async fn create_room(addr: &str, room: u64, publishers: usize, timeout: Duration) -> Result<Handle> {
    let h = Handle::attach(addr, timeout).await?;
    let body = json!({
        "request": "create", "room": room, "publishers": publishers + 1, "bitrate": 0,
        "audiocodec": "opus", "videocodec": "vp8", "notify_joining": false,
        "audiolevel_event": false, "transport_wide_cc_ext": true, "permanent": false,
    });
    let r = h.message(body, None).await?;
    if r["videoroom"] != "created" {
        bail!("room not created: {r}");
    }
    Ok(h)
}

/// Joins as a publisher and publishes audio and video from `rtc`; returns the feed id and
/// the audio and video send SSRCs.
pub async fn publish(
    addr: &str,
    room: u64,
    name: &str,
    rtc: &mut Rtc,
    timeout: Duration,
) -> Result<(Handle, u64, Ssrc, Ssrc)> {
    let h = Handle::attach(addr, timeout).await?;
    let joined =
        h.message(json!({"request": "join", "ptype": "publisher", "room": room, "display": name}), None).await?;
    let Some(feed) = joined["id"].as_u64() else { bail!("no feed id in {joined}") };
    let mut api = rtc.sdp_api();
    let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let Some((offer, pending)) = api.apply() else { bail!("str0m made no offer") };
    let jsep = json!({"type": "offer", "sdp": offer.to_sdp_string(), "trickle": false});
    let r = h.message(json!({"request": "publish", "audio": true, "video": true}), Some(jsep)).await?;
    let Some(sdp) = r["jsep"]["sdp"].as_str() else { bail!("no SDP answer from Janus: {r}") };
    if std::env::var_os("AMPHI_BENCH_SDP").is_some() {
        eprintln!("offer:\n{}\nanswer:\n{sdp}", offer.to_sdp_string());
    }
    let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| Error(format!("Janus's answer: {e}")))?;
    rtc.sdp_api().accept_answer(pending, answer).map_err(|e| Error(format!("Janus's answer: {e}")))?;
    let mut d = rtc.direct_api();
    let a = d.stream_tx_by_mid(audio, None).map(|s| s.ssrc());
    let v = d.stream_tx_by_mid(video, None).map(|s| s.ssrc());
    let (Some(a), Some(v)) = (a, v) else { bail!("no send streams after negotiation") };
    Ok((h, feed, a, v))
}

/// Subscribes to every feed in one PeerConnection and answers Janus's offer from `rtc`.
pub async fn subscribe(addr: &str, room: u64, feeds: &[u64], rtc: &mut Rtc, timeout: Duration) -> Result<Handle> {
    let h = Handle::attach(addr, timeout).await?;
    let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
    let join = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
    // "No such feed" until Janus has seen the publisher's DTLS complete: ask again.
    let mut tries = 0;
    let r = loop {
        match h.message(join.clone(), None).await {
            Err(e) if e.0.contains("\"error_code\":428") && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => break r?,
        }
    };
    let Some(sdp) = r["jsep"]["sdp"].as_str() else { bail!("no SDP offer from Janus: {r}") };
    let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| Error(format!("Janus's offer: {e}")))?;
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| Error(format!("Janus's offer: {e}")))?;
    let jsep = json!({"type": "answer", "sdp": answer.to_sdp_string(), "trickle": false});
    let started = h.message(json!({"request": "start"}), Some(jsep)).await?;
    if started["started"] != "ok" {
        bail!("subscription not started: {started}");
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_errors_are_errors() {
        let ok = json!({"janus": "event", "plugindata": {"data": {"videoroom": "joined", "id": 7}}, "jsep": {"type": "answer"}});
        let d = plugin_result(ok).expect("data");
        assert_eq!((d["id"].as_u64(), d["jsep"]["type"].as_str()), (Some(7), Some("answer")));
        assert!(plugin_result(json!({"plugindata": {"data": {"error_code": 426, "error": "No such room"}}})).is_err());
        assert!(id_of(&json!({"janus": "error"}), "create").is_err());
        assert_eq!(id_of(&json!({"janus": "success", "data": {"id": 5}}), "create").ok(), Some(5));
    }
}
