//! Hostile input over real sockets: each violation gets the RFC 6120 stream error with a
//! text, the connection is closed, and the server keeps serving others.

mod support;

use std::time::Duration;

use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> TestServer {
    support::start("auth_timeout = '1s'\nmax_stanza_size = 10000\nmax_depth = 10").await
}

use support::HEADER;

/// Send `input`, then read until the server closes the stream or the connection.
async fn exchange(addr: std::net::SocketAddr, input: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(input).await.unwrap();
    read_until_closed(&mut s).await
}

async fn read_until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.ends_with(b"</stream:stream>") {
                    break;
                }
            }
            Err(_) => panic!("server did not close the stream; got: {}", String::from_utf8_lossy(&out)),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_stream_error(reply: &str, condition: &str) {
    let needle = format!("<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'");
    assert!(reply.contains("<stream:error"), "no stream error in {reply}");
    assert!(reply.contains(&needle), "expected {condition} in {reply}");
    assert!(reply.contains("<text"), "a stream error carries a text: {reply}");
    assert!(reply.ends_with("</stream:stream>"), "stream not closed: {reply}");
}

/// The server still answers a well-behaved client with stream features.
async fn assert_still_serving(addr: std::net::SocketAddr) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(HEADER.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("</stream:features>") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("<starttls"));
}

#[tokio::test]
async fn garbage_is_not_well_formed() {
    let t = start().await;
    assert_stream_error(&exchange(t.starttls, b"\x16\x03\x01 hello").await, "not-well-formed");
    let reply = exchange(t.starttls, format!("{HEADER}<message><body>x</bod></message>").as_bytes()).await;
    assert_stream_error(&reply, "not-well-formed");
    assert_still_serving(t.starttls).await;
}

#[tokio::test]
async fn wrong_namespace_and_host() {
    let t = start().await;
    let reply =
        exchange(t.starttls, b"<stream:stream xmlns:stream='urn:example:wrong' to='localhost' version='1.0'>").await;
    assert_stream_error(&reply, "invalid-namespace");
    let reply = exchange(t.starttls, HEADER.replace("to='localhost'", "to='example.net'").as_bytes()).await;
    assert_stream_error(&reply, "host-unknown");
    assert!(reply.starts_with("<?xml"), "the header comes before the error: {reply}");
    let reply = exchange(t.starttls, HEADER.replace("'localhost' version='1.0'>", "'localhost'>").as_bytes()).await;
    assert_stream_error(&reply, "unsupported-version");
    assert_still_serving(t.starttls).await;
}

#[tokio::test]
async fn dtd_and_entities_are_restricted() {
    let t = start().await;
    let reply =
        exchange(t.starttls, b"<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>").await;
    assert_stream_error(&reply, "restricted-xml");
    let reply = exchange(t.starttls, format!("{HEADER}<!-- a comment -->").as_bytes()).await;
    assert_stream_error(&reply, "restricted-xml");
    let reply = exchange(t.starttls, format!("{HEADER}<message><body>&xxe;</body></message>").as_bytes()).await;
    assert_stream_error(&reply, "not-well-formed");
    assert_still_serving(t.starttls).await;
}

#[tokio::test]
async fn oversized_and_deep_stanzas_are_policy_violations() {
    let t = start().await;
    let big = format!("{HEADER}<message><body>{}</body></message>", "a".repeat(20_000));
    let reply = exchange(t.starttls, big.as_bytes()).await;
    assert_stream_error(&reply, "policy-violation");
    assert!(reply.contains("10000"), "the text names the limit: {reply}");
    let deep = format!("{HEADER}{}", "<a>".repeat(50));
    assert_stream_error(&exchange(t.starttls, deep.as_bytes()).await, "policy-violation");
    assert_still_serving(t.starttls).await;
}

#[tokio::test]
async fn stanzas_before_authentication_are_refused() {
    let t = start().await;
    let reply =
        exchange(t.starttls, format!("{HEADER}<message to='a@localhost'><body>x</body></message>").as_bytes()).await;
    assert_stream_error(&reply, "not-authorized");
}

#[tokio::test]
async fn plain_before_tls_needs_encryption() {
    let t = start().await;
    let mut s = TcpStream::connect(t.starttls).await.unwrap();
    s.write_all(HEADER.as_bytes()).await.unwrap();
    s.write_all(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("</failure>") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.contains("<encryption-required"), "{got}");
    // The features before TLS offer nothing but STARTTLS (RFC 6120 §5.3.1).
    assert!(!got.contains("<mechanisms"), "{got}");
}

#[tokio::test]
async fn idle_unauthenticated_connection_times_out() {
    let t = start().await;
    let started = std::time::Instant::now();
    let reply = exchange(t.starttls, HEADER.as_bytes()).await;
    assert_stream_error(&reply, "connection-timeout");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed too early");
}
