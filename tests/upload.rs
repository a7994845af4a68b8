//! XEP-0363 HTTP File Upload over real sockets: a slot requested over XMPP, the file PUT
//! and fetched back over HTTP/1.1 (a raw client, so every header is seen as sent), and
//! the refusals: too large, bad names, bad or reused tokens, wrong type, quota, expiry.

mod support;

use minidom::Element;
use support::{start_with, Client, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "urn:xmpp:http:upload:0";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

async fn server() -> TestServer {
    start_with("", "[http]\nlisten = ['127.0.0.1:0']\n[upload]\nmax_file_size = 4194304\nquota = 5000000\n").await
}

async fn signed_in(t: &TestServer, user: &str) -> Client {
    let mut c = Client::connect_tls(t, false).await;
    c.register(user, "pw").await;
    c.login_plain(user, "pw", "r").await;
    c
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection. `url` is absolute (http://host:port/path).
async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let port = authority.rsplit(':').next().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading a body it refuses.
    let _ = tcp.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

struct SlotUrls {
    put: String,
    get: String,
    auth: String,
}

async fn request(c: &mut Client, id: &str, filename: &str, size: usize, content_type: &str) -> Element {
    let filename = filename.replace('&', "&amp;").replace('\'', "&apos;").replace('<', "&lt;");
    c.send(&format!(
        "<iq type='get' id='{id}' to='upload.localhost'><request xmlns='{NS}' filename='{filename}' \
         size='{size}' content-type='{content_type}'/></iq>"
    ))
    .await;
    c.expect(|e| e.attr("id") == Some(id)).await
}

fn slot(reply: &Element) -> SlotUrls {
    assert_eq!(reply.attr("type"), Some("result"), "{reply:?}");
    assert_eq!(reply.attr("from"), Some("upload.localhost"));
    let slot = reply.get_child("slot", NS).unwrap();
    let put = slot.get_child("put", NS).unwrap();
    let header = put.get_child("header", NS).unwrap();
    assert_eq!(header.attr("name"), Some("Authorization"));
    SlotUrls {
        put: put.attr("url").unwrap().to_string(),
        get: slot.get_child("get", NS).unwrap().attr("url").unwrap().to_string(),
        auth: header.text(),
    }
}

fn error_condition(reply: &Element) -> String {
    let e = reply.get_child("error", "jabber:client").expect("an error reply");
    e.children().find(|c| c.ns() == STANZAS && c.name() != "text").unwrap().name().to_string()
}

#[tokio::test]
async fn discovered_then_uploaded_and_served() {
    let t = server().await;
    let mut c = signed_in(&t, "ada").await;
    c.send("<iq type='get' id='items' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
        .await;
    let items = c.expect(|e| e.attr("id") == Some("items")).await;
    let q = items.get_child("query", "http://jabber.org/protocol/disco#items").unwrap();
    assert!(q.children().any(|i| i.attr("jid") == Some("upload.localhost")), "{items:?}");
    c.send(
        "<iq type='get' id='info' to='upload.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    .await;
    let info = c.expect(|e| e.attr("id") == Some("info")).await;
    let q = info.get_child("query", "http://jabber.org/protocol/disco#info").unwrap();
    let id = q.get_child("identity", "http://jabber.org/protocol/disco#info").unwrap();
    assert_eq!((id.attr("category"), id.attr("type")), (Some("store"), Some("file")));
    assert!(q.children().any(|f| f.attr("var") == Some(NS)));
    let form = q.get_child("x", "jabber:x:data").unwrap();
    let max = form.children().find(|f| f.attr("var") == Some("max-file-size")).unwrap();
    assert_eq!(max.get_child("value", "jabber:x:data").unwrap().text(), "4194304");

    let content = b"hello, \xc3\xa9t\xc3\xa9\n".repeat(10);
    let s = slot(&request(&mut c, "s1", "très \"cool\".txt", content.len(), "text/plain").await);
    assert!(s.put.contains("/upload/") && s.put.ends_with("/tr%C3%A8s%20%22cool%22.txt"), "{}", s.put);
    assert_eq!(s.put, s.get);
    let len = content.len().to_string();
    let put = http(
        "PUT",
        &s.put,
        &[("Authorization", &s.auth), ("Content-Length", &len), ("Content-Type", "text/plain")],
        &content,
    )
    .await;
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let got = http("GET", &s.get, &[("Origin", "https://elsewhere.example")], b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, content);
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(got.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        got.header("content-disposition"),
        Some("inline; filename=\"tr_s _cool_.txt\"; filename*=UTF-8''tr%C3%A8s%20%22cool%22.txt")
    );
    assert!(got.header("content-security-policy").unwrap().contains("sandbox"));
    let head = http("HEAD", &s.get, &[], b"").await;
    assert_eq!((head.status, head.header("content-length")), (200, Some(len.as_str())));
    // The wrong name under a real slot is not found.
    let other = s.get.rsplit_once('/').unwrap().0.to_string() + "/other.txt";
    assert_eq!(http("GET", &other, &[], b"").await.status, 404);
    // A slot is used once.
    let again = http("PUT", &s.put, &[("Authorization", &s.auth), ("Content-Length", &len)], &content).await;
    assert_eq!(again.status, 409);
    // CORS preflight for a browser uploading with the Authorization header.
    let pre =
        http("OPTIONS", &s.put, &[("Origin", "https://web.example"), ("Access-Control-Request-Method", "PUT")], b"")
            .await;
    assert!(pre.status == 204 || pre.status == 200, "{}", pre.status);
    assert!(pre.header("access-control-allow-headers").unwrap().contains("Authorization"));
    assert!(pre.header("access-control-allow-methods").unwrap().contains("PUT"));

    // HTML is never shown inline.
    let html = b"<script>alert(1)</script>";
    let s = slot(&request(&mut c, "s2", "page.html", html.len(), "text/html").await);
    let n = html.len().to_string();
    let put =
        http("PUT", &s.put, &[("Authorization", &s.auth), ("Content-Length", &n), ("Content-Type", "text/html")], html)
            .await;
    assert_eq!(put.status, 201);
    let got = http("GET", &s.get, &[], b"").await;
    assert!(got.header("content-disposition").unwrap().starts_with("attachment;"));
}

#[tokio::test]
async fn refusals() {
    let t = server().await;
    let mut c = signed_in(&t, "bob").await;
    // Too large for the service: not-acceptable with the limit.
    let r = request(&mut c, "big", "big.bin", 4194305, "application/octet-stream").await;
    assert_eq!(error_condition(&r), "not-acceptable");
    let too_large = r.get_child("error", "jabber:client").unwrap().get_child("file-too-large", NS).unwrap();
    assert_eq!(too_large.get_child("max-file-size", NS).unwrap().text(), "4194304");
    // Names that could escape or mislead.
    for (i, bad) in ["../etc/passwd", ".hidden", "a/b.txt"].iter().enumerate() {
        let r = request(&mut c, &format!("n{i}"), bad, 10, "text/plain").await;
        assert_eq!(error_condition(&r), "not-acceptable", "{bad}");
    }
    let r = request(&mut c, "z", "zero.txt", 0, "text/plain").await;
    assert_eq!(error_condition(&r), "bad-request");

    let s = slot(&request(&mut c, "ok", "ten.bin", 10, "application/octet-stream").await);
    let ct = ("Content-Type", "application/octet-stream");
    // No token, a forged token, a token for another size.
    let none = http("PUT", &s.put, &[("Content-Length", "10"), ct], b"0123456789").await;
    assert_eq!(none.status, 403);
    let mut forged = s.auth.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let r = http("PUT", &s.put, &[("Authorization", &forged), ("Content-Length", "10"), ct], b"0123456789").await;
    assert_eq!(r.status, 403);
    let bigger = s.auth.replacen(".10.", ".20.", 1);
    let r = http("PUT", &s.put, &[("Authorization", &bigger), ("Content-Length", "20"), ct], &[b'x'; 20]).await;
    assert_eq!(r.status, 403, "the size is signed");
    // More bytes than the slot: refused before storing anything.
    let r = http("PUT", &s.put, &[("Authorization", &s.auth), ("Content-Length", "20"), ct], &[b'x'; 20]).await;
    assert_eq!(r.status, 413);
    // Another content type than announced.
    let r = http(
        "PUT",
        &s.put,
        &[("Authorization", &s.auth), ("Content-Length", "10"), ("Content-Type", "text/html")],
        b"0123456789",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(http("GET", &s.get, &[], b"").await.status, 404, "nothing stored by refused uploads");
    // The right request still works afterwards.
    let r = http("PUT", &s.put, &[("Authorization", &s.auth), ("Content-Length", "10"), ct], b"0123456789").await;
    assert_eq!(r.status, 201);

    // Guests (invitation links) and other servers' users may not upload.
    let up = t.server.upload.clone().unwrap();
    let payload: Element = format!("<request xmlns='{NS}' filename='a.txt' size='1'/>").parse().unwrap();
    for who in ["guest-abc@localhost/web", "eve@elsewhere.example/x"] {
        let from = jid::Jid::new(who).unwrap();
        let e = up.request_slot(&from, &payload, 0).unwrap_err();
        assert_eq!(e.error.condition, "forbidden", "{who}");
    }
}

#[tokio::test]
async fn large_streamed_upload_quota_and_expiry() {
    let t = server().await;
    let mut c = signed_in(&t, "cy").await;
    // 3 MB: above axum's default 2 MB body limit, streamed to disk.
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let s = slot(&request(&mut c, "l", "big.bin", content.len(), "application/octet-stream").await);
    let len = content.len().to_string();
    let put = http(
        "PUT",
        &s.put,
        &[("Authorization", &s.auth), ("Content-Length", &len), ("Content-Type", "application/octet-stream")],
        &content,
    )
    .await;
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let got = http("GET", &s.get, &[], b"").await;
    assert_eq!(got.body.len(), content.len());
    assert!(got.body == content, "the file comes back unchanged");
    assert!(got.header("content-disposition").unwrap().starts_with("attachment;"));

    // The quota (5 000 000 bytes) counts what is stored.
    let r = request(&mut c, "q", "more.bin", 2_500_000, "application/octet-stream").await;
    assert_eq!(error_condition(&r), "resource-constraint");
    let r = request(&mut c, "q2", "fits.bin", 1_000_000, "application/octet-stream").await;
    slot(&r);

    // Expiry: a file uploaded long ago is deleted by the periodic task, and frees quota.
    let dir = t.dir.path().join("uploads");
    let id = s.get.split('/').rev().nth(1).unwrap();
    let meta_path = dir.join(format!("{id}.meta"));
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["created"] = 1_000.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    t.server.upload.as_ref().unwrap().expire_now().await;
    assert_eq!(http("GET", &s.get, &[], b"").await.status, 404);
    assert!(!dir.join(format!("{id}.data")).exists());
    let r = request(&mut c, "q3", "more.bin", 2_500_000, "application/octet-stream").await;
    slot(&r);
}
