//! Parsing and building `<jingle/>`: real-world offers in, the same data back out.

use super::*;
use minidom::Element;

/// A session-initiate as a browser-based client sends it (SDP converted to Jingle).
pub const OFFER: &str = r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s1" initiator="alice@localhost/web">
  <content creator="initiator" name="0" senders="both">
    <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
      <payload-type id="111" name="opus" clockrate="48000" channels="2">
        <parameter name="minptime" value="10"/><parameter name="useinbandfec" value="1"/>
        <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="transport-cc"/>
      </payload-type>
      <payload-type id="0" name="PCMU" clockrate="8000"/>
      <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="1" uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"/>
      <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="9" uri="urn:example:unknown"/>
      <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1111"><parameter name="cname" value="c1"/><parameter name="msid" value="s a1"/></source>
      <rtcp-mux/>
    </description>
    <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="uf1" pwd="pw1pw1pw1pw1pw1pw1pw1pw">
      <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">AB:CD:EF:01</fingerprint>
      <candidate component="1" foundation="1" generation="0" id="c1" ip="127.0.0.1" port="40000" priority="2130706431" protocol="udp" type="host"/>
    </transport>
  </content>
  <content creator="initiator" name="1" senders="both">
    <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
      <payload-type id="96" name="VP8" clockrate="90000">
        <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack"/>
        <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack" subtype="pli"/>
        <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="goog-lntf"/>
      </payload-type>
      <payload-type id="97" name="rtx" clockrate="90000"><parameter name="apt" value="96"/></payload-type>
      <payload-type id="102" name="H265" clockrate="90000"/>
      <payload-type id="103" name="rtx" clockrate="90000"><parameter name="apt" value="102"/></payload-type>
      <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="2222"><parameter name="cname" value="c1"/></source>
      <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="2223"><parameter name="cname" value="c1"/></source>
      <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="2222"/><source ssrc="2223"/></ssrc-group>
      <rtcp-mux/>
    </description>
    <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="uf1" pwd="pw1pw1pw1pw1pw1pw1pw1pw">
      <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">AB:CD:EF:01</fingerprint>
    </transport>
  </content>
  <group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics="BUNDLE"><content name="0"/><content name="1"/></group>
</jingle>"#;

fn parse(xml: &str) -> Result<Jingle, JingleError> {
    Jingle::parse(&xml.parse::<Element>().expect("test XML"))
}

#[test]
fn parses_a_browser_offer() {
    let j = parse(OFFER).unwrap();
    assert_eq!(j.action, Some(Action::SessionInitiate));
    assert_eq!(j.sid, "s1");
    assert_eq!(j.bundle, vec!["0", "1"]);
    assert_eq!(j.contents.len(), 2);
    let audio = j.contents[0].description.as_ref().unwrap();
    assert_eq!(audio.media, Media::Audio);
    assert_eq!(audio.payload_types[0].name, "opus");
    assert_eq!(audio.payload_types[0].channels, 2);
    assert_eq!(audio.payload_types[0].parameter("useinbandfec"), Some("1"));
    assert_eq!(audio.payload_types[0].rtcp_fbs, vec![RtcpFb::new("transport-cc", None)]);
    assert_eq!(audio.sources[0].parameter("msid"), Some("s a1"));
    assert!(audio.rtcp_mux);
    let t = j.contents[0].transport.as_ref().unwrap();
    assert_eq!(t.ufrag.as_deref(), Some("uf1"));
    let fp = t.fingerprint.as_ref().unwrap();
    assert_eq!(
        (fp.hash.as_str(), fp.setup.as_str(), fp.value.as_slice()),
        ("sha-256", "actpass", &[0xAB, 0xCD, 0xEF, 1][..])
    );
    assert_eq!(t.candidates[0].to_sdp(), "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host");
    let video = j.contents[1].description.as_ref().unwrap();
    assert_eq!(video.rtx_of(2222), Some(2223));
    assert_eq!(video.primary_sources().map(|s| s.ssrc).collect::<Vec<_>>(), vec![2222]);
}

#[test]
fn round_trips() {
    let j = parse(OFFER).unwrap();
    let again = Jingle::parse(&j.to_element()).unwrap();
    assert_eq!(j, again);
}

#[test]
fn refuses_bad_numbers_and_oversized_input() {
    let bad_pt = OFFER.replace(r#"id="111""#, r#"id="300""#);
    assert!(parse(&bad_pt).is_err());
    let bad_ip = OFFER.replace(r#"ip="127.0.0.1""#, r#"ip="not-an-ip""#);
    assert!(parse(&bad_ip).is_err());
    let bad_fp = OFFER.replace("AB:CD:EF:01", "ZZ:CD");
    assert!(parse(&bad_fp).is_err());
    let long_name = OFFER.replace(r#"name="0" senders"#, r#"name="a-content-name-longer-than-16" senders"#);
    assert!(parse(&long_name).is_err());
    let many: String = (0..40).map(|i| format!(r#"<content creator="initiator" name="c{i}"/>"#)).collect();
    let xml = format!(r#"<jingle xmlns="urn:xmpp:jingle:1" action="content-add" sid="s">{many}</jingle>"#);
    assert!(parse(&xml).is_err());
    assert!(parse(r#"<jingle xmlns="urn:xmpp:jingle:1" sid="s"/>"#).is_err(), "action is required");
}

#[test]
fn reads_session_info_reason_and_users() {
    let j = parse(
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="s">
             <mute xmlns="urn:xmpp:jingle:apps:rtp:info:1" creator="initiator" name="0"/>
             <reason><gone/><text>bye</text></reason>
             <conference-info xmlns="urn:xmpp:coin:1"><users><user entity="xmpp:bob@localhost"/></users></conference-info>
           </jingle>"#,
    )
    .unwrap();
    assert_eq!(j.info, vec![SessionInfo { kind: "mute".into(), name: Some("0".into()) }]);
    assert_eq!(j.reason.as_deref(), Some("gone"));
    assert_eq!(j.users, vec!["xmpp:bob@localhost"]);
    assert_eq!(Jingle::parse(&j.to_element()).unwrap(), j);
}
