//! Joining amphi's call the documented way (xep/jingle-conferences.md): sign in, enter the
//! room `R@conference.<domain>`, `session-initiate` to `R@focus.<domain>`, read the focus's
//! transport from `session-accept`, and answer each `content-add` with `content-accept`.
//!
//! The generator's byte-level XML helpers are enough: the focus's stanzas are well formed
//! and only a few attributes are read from them.

use std::time::Duration;

use str0m::config::Fingerprint;
use str0m::{Candidate, IceCreds, Rtc};
use tokio::sync::mpsc;

use super::peer::{Cmd, OPUS, VP8, VP8_RTX};
use crate::conn::{self, Io, Result, Target, Tls};
use crate::{bail, xml};

const JINGLE: &str = "urn:xmpp:jingle:1";

/// One participant's signalling connection.
pub struct Signal {
    io: Io<Tls>,
    pub jid: String,
    timeout: Duration,
    /// content-adds that arrived while waiting for something else (before session-accept).
    backlog: Vec<Vec<u8>>,
}

/// The focus's transport from session-accept.
pub struct FocusTransport {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint: Fingerprint,
    /// True when the focus is the DTLS server (`setup="passive"`).
    pub passive: bool,
    pub candidate: Candidate,
}

/// A stream the focus offers in a content-add.
#[derive(Debug, PartialEq, Eq)]
pub struct Offered {
    pub name: String,
    pub video: bool,
    pub ssrc: u32,
    pub rtx: Option<u32>,
}

impl Signal {
    pub async fn sign_in(t: &Target, user: &str, password: &str) -> Result<Signal> {
        let (io, jid) = conn::establish(t, user, password).await?;
        Ok(Signal { io, jid, timeout: t.timeout, backlog: Vec::new() })
    }

    pub async fn send(&mut self, s: &str) -> Result<()> {
        self.io.send(s.as_bytes()).await
    }

    /// The next stanza; requests from others (pings, the focus's Jingle actions) are
    /// acknowledged here and still returned.
    pub async fn next(&mut self) -> Result<Vec<u8>> {
        let s = self.io.stanza(Duration::from_secs(24 * 3600)).await?;
        if xml::name(&s) == b"iq" && matches!(xml::attr(&s, "type").as_deref(), Some("set" | "get")) {
            let id = xml::escape(&xml::attr(&s, "id").unwrap_or_default()).into_owned();
            let to = xml::escape(&xml::attr(&s, "from").unwrap_or_default()).into_owned();
            self.send(&format!("<iq type='result' id='{id}' to='{to}'/>")).await?;
        }
        Ok(s)
    }

    /// The next stanza that `pred` accepts, within the target's timeout.
    pub async fn wait(&mut self, what: &str, pred: impl Fn(&[u8]) -> bool) -> Result<Vec<u8>> {
        let timeout = self.timeout;
        let found = async {
            loop {
                let s = self.next().await?;
                if xml::name(&s) == b"iq" && xml::attr(&s, "type").as_deref() == Some("error") {
                    bail!("{}: error while waiting for {what}: {}", self.jid, String::from_utf8_lossy(&s));
                }
                if pred(&s) {
                    return Ok(s);
                }
                if jingle_action(&s).as_deref() == Some("content-add") {
                    self.backlog.push(s);
                }
            }
        };
        match tokio::time::timeout(timeout, found).await {
            Ok(r) => r,
            Err(_) => bail!("{}: no {what} within {timeout:?}", self.jid),
        }
    }

    /// Enters the room (the first participant creates it and accepts the default config).
    pub async fn enter_room(&mut self, room: &str, nick: &str, create: bool) -> Result<()> {
        let me = format!("{room}/{nick}");
        self.send(&format!("<presence to='{me}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await?;
        self.wait("self-presence from the room", |s| {
            xml::name(s) == b"presence" && xml::attr(s, "from").as_deref() == Some(me.as_str())
        })
        .await?;
        if create {
            self.send(&format!(
                "<iq type='set' id='cfg1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                 <x xmlns='jabber:x:data' type='submit'/></query></iq>"
            ))
            .await?;
            self.wait("room configuration result", |s| xml::attr(s, "id").as_deref() == Some("cfg1")).await?;
        }
        Ok(())
    }

    /// Sends session-initiate for `rtc` (publishing with `sources` = (audio, video, rtx)
    /// SSRCs, or receiving only) and returns the focus's transport from session-accept.
    pub async fn initiate(
        &mut self,
        call: &str,
        sid: &str,
        rtc: &mut Rtc,
        port: u16,
        sources: Option<(u32, u32, u32)>,
    ) -> Result<FocusTransport> {
        let (creds, fp) = {
            let api = rtc.direct_api();
            (api.local_ice_credentials(), api.local_dtls_fingerprint().clone())
        };
        let offer = offer(sid, &creds, &fp, port, sources);
        self.send(&format!("<iq type='set' id='ji1' to='{call}'>{offer}</iq>")).await?;
        self.wait("result of session-initiate", |s| xml::attr(s, "id").as_deref() == Some("ji1")).await?;
        let accept = self.wait("session-accept", |s| jingle_action(s).as_deref() == Some("session-accept")).await?;
        parse_transport(&accept)
    }

    /// Accepts a stream the focus added.
    pub async fn content_accept(&mut self, call: &str, sid: &str, name: &str, n: u64) -> Result<()> {
        self.send(&format!(
            "<iq type='set' id='ca{n}' to='{call}'><jingle xmlns='{JINGLE}' action='content-accept' sid='{sid}'>\
             <content creator='responder' name='{}'/></jingle></iq>",
            xml::escape(name)
        ))
        .await
    }

    /// Until the connection ends: a subscriber accepts every stream the focus adds and
    /// tells its peer to expect it; a publisher (`accept` false) leaves them unanswered,
    /// so nothing is forwarded to it.
    pub async fn serve(mut self, call: String, sid: String, accept: bool, peer: mpsc::UnboundedSender<Cmd>) {
        let mut n = 0;
        let mut backlog = std::mem::take(&mut self.backlog).into_iter();
        loop {
            let s = match backlog.next() {
                Some(s) => s,
                None => match self.next().await {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
            if !accept || jingle_action(&s).as_deref() != Some("content-add") {
                continue;
            }
            for o in offered(&s) {
                n += 1;
                let cmd = Cmd::ExpectRx { mid: o.name.clone(), video: o.video, ssrc: o.ssrc, rtx: o.rtx };
                if peer.send(cmd).is_err() || self.content_accept(&call, &sid, &o.name, n).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Applies the focus's transport to our Rtc: we are the controlling ICE agent and the DTLS
/// client (the focus answers `passive` to our `actpass`).
pub fn connect(rtc: &mut Rtc, t: FocusTransport) -> Result<()> {
    rtc.add_remote_candidate(t.candidate);
    let mut api = rtc.direct_api();
    api.set_remote_ice_credentials(IceCreds { ufrag: t.ufrag, pass: t.pwd });
    api.set_remote_fingerprint(t.fingerprint);
    api.set_ice_controlling(true);
    api.start_dtls(t.passive).map_err(|e| conn::Error(format!("DTLS: {e}")))
}

/// Declares what a publisher sends on contents "a" and "v".
pub fn declare_sending(rtc: &mut Rtc, (audio, video, rtx): (u32, u32, u32)) {
    use str0m::media::{MediaKind, Mid};
    use str0m::rtp::Ssrc;
    let mut api = rtc.direct_api();
    api.declare_media(Mid::from("a"), MediaKind::Audio);
    api.declare_stream_tx(Ssrc::from(audio), None, Mid::from("a"), None);
    api.declare_media(Mid::from("v"), MediaKind::Video);
    api.declare_stream_tx(Ssrc::from(video), Some(Ssrc::from(rtx)), Mid::from("v"), None);
    api.enable_twcc_feedback();
}

fn jingle_action(s: &[u8]) -> Option<String> {
    let at = memchr::memmem::find(s, b"<jingle ")?;
    xml::attr(&s[at..], "action").map(|a| a.into_owned())
}

/// Each `<tag ` element start in `s`, as the slice from its `<`.
fn starts<'a>(s: &'a [u8], tag: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    let needle = format!("<{tag} ").into_bytes();
    memchr::memmem::find_iter(s, &needle).map(move |at| &s[at..]).collect::<Vec<_>>().into_iter()
}

fn parse_transport(accept: &[u8]) -> Result<FocusTransport> {
    let bad = |what: &str| conn::Error(format!("session-accept without {what}: {}", String::from_utf8_lossy(accept)));
    let tr = starts(accept, "transport").next().ok_or_else(|| bad("a transport"))?;
    let ufrag = xml::attr(tr, "ufrag").ok_or_else(|| bad("ufrag"))?.into_owned();
    let pwd = xml::attr(tr, "pwd").ok_or_else(|| bad("pwd"))?.into_owned();
    let fp = starts(tr, "fingerprint").next().ok_or_else(|| bad("a fingerprint"))?;
    let hash = xml::attr(fp, "hash").ok_or_else(|| bad("a hash"))?.into_owned();
    let passive = xml::attr(fp, "setup").as_deref() != Some("active");
    let text = xml::child_text(tr, "fingerprint").ok_or_else(|| bad("fingerprint text"))?;
    let bytes = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).map_err(|_| bad("a hex fingerprint")))
        .collect::<Result<Vec<u8>>>()?;
    let c = starts(tr, "candidate").next().ok_or_else(|| bad("a candidate"))?;
    let ip = xml::attr(c, "ip").ok_or_else(|| bad("a candidate ip"))?;
    let port = xml::attr(c, "port").ok_or_else(|| bad("a candidate port"))?;
    let addr = format!("{ip}:{port}").parse().map_err(|_| bad("a candidate address"))?;
    let candidate = Candidate::host(addr, "udp").map_err(|e| conn::Error(format!("candidate: {e}")))?;
    Ok(FocusTransport { ufrag, pwd, fingerprint: Fingerprint { hash_func: hash, bytes }, passive, candidate })
}

/// The streams of a content-add: each `<content creator=…>` with its description's media,
/// its first source and the RTX from its FID group.
pub fn offered(s: &[u8]) -> Vec<Offered> {
    let contents: Vec<usize> = memchr::memmem::find_iter(s, b"<content ").collect();
    let mut out = Vec::new();
    for (i, &at) in contents.iter().enumerate() {
        let end = contents.get(i + 1).copied().unwrap_or(s.len());
        let c = &s[at..end];
        if xml::attr(c, "creator").is_none() {
            continue; // a BUNDLE group's <content name=…/>
        }
        let (Some(name), Some(desc)) = (xml::attr(c, "name"), starts(c, "description").next()) else { continue };
        let video = xml::attr(desc, "media").as_deref() == Some("video");
        let fid: Vec<u32> = match memchr::memmem::find(c, b"semantics='FID'")
            .or_else(|| memchr::memmem::find(c, b"semantics=\"FID\""))
        {
            Some(g) => {
                starts(&c[g..], "source").filter_map(|src| xml::attr(src, "ssrc")?.parse().ok()).take(2).collect()
            }
            None => Vec::new(),
        };
        let first = starts(c, "source").find_map(|src| xml::attr(src, "ssrc")?.parse().ok());
        let (ssrc, rtx) = match (fid.as_slice(), first) {
            ([p, r], _) => (*p, Some(*r)),
            (_, Some(p)) => (p, None),
            _ => continue,
        };
        out.push(Offered { name: name.into_owned(), video, ssrc, rtx });
    }
    out
}

/// A session-initiate with an audio content "a" and a video content "v" in one BUNDLE
/// group, as a browser would offer them (Opus; VP8 with RTX; NACK, PLI, FIR, TWCC; the
/// header extensions at str0m's standard ids), with sources when publishing.
fn offer(sid: &str, creds: &IceCreds, fp: &Fingerprint, port: u16, sources: Option<(u32, u32, u32)>) -> String {
    let hex: Vec<String> = fp.bytes.iter().map(|b| format!("{b:02X}")).collect();
    let transport = format!(
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='{}' pwd='{}'>\
         <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='{}' setup='actpass'>{}</fingerprint>\
         <candidate component='1' foundation='1' generation='0' id='c1' ip='127.0.0.1' port='{port}' \
         priority='2130706431' protocol='udp' type='host'/></transport>",
        xml::escape(&creds.ufrag),
        xml::escape(&creds.pass),
        xml::escape(&fp.hash_func),
        hex.join(":")
    );
    let fb = |t: &str, sub: Option<&str>| {
        let sub = sub.map(|s| format!(" subtype='{s}'")).unwrap_or_default();
        format!("<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='{t}'{sub}/>")
    };
    let ext = |id: u8, uri: &str| {
        format!("<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='{id}' uri='{uri}'/>")
    };
    let exts = [
        ext(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        ext(2, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        ext(3, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
        ext(4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
    ]
    .concat();
    let src = |ssrc: u32| {
        format!(
            "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{ssrc}'><parameter name='cname' value='bench'/>\
             <parameter name='msid' value='bench-{sid} t{ssrc}'/></source>"
        )
    };
    let (audio_src, video_src) = match sources {
        Some((a, v, r)) => (
            src(a),
            format!(
                "{}{}<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>\
                 <source ssrc='{v}'/><source ssrc='{r}'/></ssrc-group>",
                src(v),
                src(r)
            ),
        ),
        None => (String::new(), String::new()),
    };
    let tcc = fb("transport-cc", None);
    format!(
        "<jingle xmlns='{JINGLE}' action='session-initiate' sid='{sid}'>\
         <content creator='initiator' name='a' senders='both'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
         <payload-type id='{OPUS}' name='opus' clockrate='48000' channels='2'>{tcc}</payload-type>\
         {exts}{audio_src}<rtcp-mux/></description>{transport}</content>\
         <content creator='initiator' name='v' senders='both'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <payload-type id='{VP8}' name='VP8' clockrate='90000'>{}{}{}{tcc}</payload-type>\
         <payload-type id='{VP8_RTX}' name='rtx' clockrate='90000'><parameter name='apt' value='{VP8}'/></payload-type>\
         {exts}{video_src}<rtcp-mux/></description>{transport}</content>\
         <group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='a'/><content name='v'/></group>\
         </jingle>",
        fb("nack", None),
        fb("nack", Some("pli")),
        fb("ccm", Some("fir")),
    )
}

/// The publisher's SSRCs (audio, video, RTX) for participant `i`.
pub fn ssrcs(i: usize) -> (u32, u32, u32) {
    let base = 0x1000_0000 + i as u32 * 16;
    (base + 1, base + 2, base + 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_streams_from_a_content_add() {
        let add = br#"<iq type='set' from='r@focus.localhost'><jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='s'>
          <content creator='responder' name='p1r1' senders='responder'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>
            <payload-type id='111' name='opus'/><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='11'><parameter name='cname' value='c'/></source>
          </description></content>
          <content creator='responder' name='p1r2' senders='responder'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>
            <source ssrc='12'/><source ssrc='13'/><ssrc-group semantics='FID'><source ssrc='12'/><source ssrc='13'/></ssrc-group>
          </description></content>
          <group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='a'/><content name='p1r1'/></group>
        </jingle></iq>"#;
        assert_eq!(jingle_action(add).as_deref(), Some("content-add"));
        assert_eq!(
            offered(add),
            vec![
                Offered { name: "p1r1".into(), video: false, ssrc: 11, rtx: None },
                Offered { name: "p1r2".into(), video: true, ssrc: 12, rtx: Some(13) },
            ]
        );
    }

    #[test]
    fn reads_the_focus_transport() {
        let accept = br#"<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'><content name='a'>
          <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='uf' pwd='pw'>
          <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='passive'>0A:FF</fingerprint>
          <candidate component='1' ip='127.0.0.1' port='10000' protocol='udp' type='host'/></transport></content></jingle></iq>"#;
        let t = parse_transport(accept).expect("transport");
        assert_eq!((t.ufrag.as_str(), t.pwd.as_str(), t.passive), ("uf", "pw", true));
        assert_eq!(t.fingerprint.bytes, vec![0x0a, 0xff]);
        assert_eq!(t.candidate.addr().port(), 10000);
        assert!(parse_transport(b"<iq type='set'/>").is_err());
    }

    #[test]
    fn offers_parse_back() {
        let rtc = super::super::peer::new_rtc(std::time::Instant::now());
        let mut rtc = rtc;
        let (creds, fp) = {
            let api = rtc.direct_api();
            (api.local_ice_credentials(), api.local_dtls_fingerprint().clone())
        };
        let o = offer("s1", &creds, &fp, 4000, Some(ssrcs(0)));
        assert!(o.contains("semantics='FID'") && o.contains("name='VP8'"));
        assert_eq!(
            offered(format!("<iq>{}</iq>", o.replace("creator='initiator'", "creator='responder'")).as_bytes()).len(),
            2
        );
    }
}
